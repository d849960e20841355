from __future__ import annotations

from console.vocabulary import Snapshot, State, unreachable, utcnow
from console.thresholds import DEFAULTS, judge
from console.incident.crossings import Crossings


def _pg(ratio):
    return judge(Snapshot("postgres", "primary", State.OK, utcnow(), metrics={"connections_ratio": ratio}), DEFAULTS)


def test_only_changes_are_events():
    # One reading settles a change here (issue 13 made 2 the default, and
    # tests/test_damping.py tests that): this test is about events, not damping.
    t = Crossings(readings=1)
    assert t.observe(_pg(0.5)) == []
    assert t.observe(_pg(0.5)) == []
    crossed = t.observe(_pg(0.75))
    assert [(k, d["metric"], d["state"], d["previous"]) for k, d in crossed] == [
        ("threshold.crossed", "connections_ratio", "warning", "ok")]
    assert t.observe(_pg(0.76)) == []  # still warning: no new event
    assert t.observe(_pg(0.95))[0][1]["state"] == "critical"
    back = t.observe(_pg(0.2))
    assert back[0][1]["state"] == "ok" and back[0][1]["previous"] == "critical"


def test_lost_and_recovered_once_each():
    t = Crossings(readings=1)  # undamped, as above: damping is tests/test_damping.py
    t.observe(_pg(0.1))
    lost = t.observe(unreachable("postgres", "primary", "timed out after 3s"))
    assert lost == [("source.lost", {"source": "primary", "kind": "postgres", "error": "timed out after 3s"})]
    assert t.observe(unreachable("postgres", "primary", "timed out after 3s")) == []
    assert t.observe(_pg(0.1)) == [("source.recovered", {"source": "primary", "kind": "postgres"})]


def test_a_restarted_console_remembers_what_the_journal_holds(tmp_path):
    from console.incident.journal import Journal

    journal = Journal(tmp_path / "j.json", operator={"user": "u", "ssh_client": None})
    first = Crossings()
    for kind, data in first.observe(_pg(0.95)):
        journal.append(kind, **data)
    again = Crossings()
    again.remember(journal.events())
    assert again.observe(_pg(0.95)) == []  # already journaled before the restart
    # The remembered crossing is a settled state, so going back to ok is damped
    # like any change (issue 13): two readings in a row, not one.
    assert again.observe(_pg(0.1)) == []
    assert again.observe(_pg(0.1))[0][1]["state"] == "ok"


def test_a_health_check_that_fails_is_an_alarm_in_the_journal_and_its_recovery_too():
    """A 503 from a health check has no metric past a limit: it was never
    journaled, so the timeline and the post-mortem missed the first alarm."""
    from console.incident.export import describe

    t = Crossings(readings=2)
    def check(state, error=None):
        return Snapshot("http", "checkout-api", state, utcnow(), error=error)
    assert t.observe(check(State.OK)) == []
    assert t.observe(check(State.CRITICAL, "expected 200, got HTTP 503")) == []  # one reading: a flap
    events = t.observe(check(State.CRITICAL, "expected 200, got HTTP 503"))
    assert events == [("source.state", {"source": "checkout-api", "kind": "http", "state": "critical",
                                        "previous": "ok", "reason": "expected 200, got HTTP 503"})]
    assert t.observe(check(State.CRITICAL)) == []  # once, not per poll
    t.observe(check(State.OK))
    assert [e[1]["state"] for e in t.observe(check(State.OK))] == ["ok"]
    # No data is not an alarm.
    assert t.observe(check(State.UNKNOWN)) == [] and t.observe(check(State.UNKNOWN)) == []


def test_a_failing_health_check_reads_as_such_in_the_post_mortem(tmp_path):
    from console.incident.export import describe
    from console.incident.journal import Journal

    journal = Journal(tmp_path / "i.json", operator={"user": "x"})
    journal.append("source.state", source="checkout-api", kind="http", state="critical", previous="ok",
                   reason="expected 200, got HTTP 503")
    assert describe(journal.events()[-1]) == "checkout-api: ok -> critical: expected 200, got HTTP 503"
