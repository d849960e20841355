"""Flapping damping (issue 13): a change is the incident's once it held for
the configured readings in a row; a ratio over too few requests cannot
breach; a playbook is suggested once. And what the console saw itself is
journaled as the console's, not the operator's."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import pytest

from console import config
from console.config import PrometheusTarget, ServiceTarget
from console.incident.export import postmortem_markdown
from console.incident.journal import Journal
from console.incident.session import IncidentSession
from console.located import Invalid
from console.sources import poll_judged
from console.sources.errors import PrometheusErrors, ScrapedErrors
from console.thresholds import DEFAULTS, judge
from console.vocabulary import Snapshot, State, unreachable, utcnow
from httpfaults import FaultServer, Reply, json_reply
from scripted import Clock

START = datetime(2026, 11, 30, 14, 0, tzinfo=timezone.utc)
ERRORS = ("errors", "payments-api")
HIGH_ERRORS = "high-error-rate"
POOL = "postgres-pool-exhausted"


def _session(tmp_path, text: str = "refresh: 1\n", user: str = "oncall"):
    journal = Journal(tmp_path / "incident.json", operator={"user": user, "ssh_client": "10.0.0.9"},
                      clock=Clock(START))
    return IncidentSession(config.parse(text, "t.yaml", env={}), journal, Clock(START))


def _errors(ratio, requests: float | None = 600, limits=DEFAULTS) -> Snapshot:
    """An error-rates reading over ``requests`` requests, judged."""
    details = {"notes": ()} if requests is None else {"notes": (), "window_requests": requests}
    return judge(Snapshot(*ERRORS, State.OK, utcnow(), details=details, metrics={
        "error_ratio": ratio, "request_rate": None if requests is None else requests / 60,
        "p95_latency_s": 0.1, "via": "prometheus"}), limits)


def _pg(ratio) -> Snapshot:
    return judge(Snapshot("postgres", "primary", State.OK, utcnow(), metrics={"connections_ratio": ratio}), DEFAULTS)


def _crossings(session) -> list[tuple[str, str | None]]:
    return [(e.kind, e.data.get("state")) for e in session.events()
            if e.kind in ("threshold.crossed", "source.lost", "source.recovered")]


# ---- a change must hold ------------------------------------------------------------------

def test_a_flapping_source_journals_nothing_until_a_change_holds(tmp_path):
    session = _session(tmp_path)
    session.observe(_errors(0.0))
    for _ in range(8):  # the walk: critical and back, 8 times in 8 minutes
        session.observe(_errors(0.06))
        session.observe(_errors(0.0))
    assert _crossings(session) == []
    session.observe(_errors(0.06))
    assert session.observe(_errors(0.07)).events[0].data["state"] == "critical"
    assert session.observe(_errors(0.0)).events == ()
    assert [e.data["state"] for e in session.observe(_errors(0.0)).events] == ["ok"]
    assert _crossings(session) == [("threshold.crossed", "critical"), ("threshold.crossed", "ok")]


def test_how_many_readings_a_change_needs_is_the_configs(tmp_path):
    session = _session(tmp_path, "damping:\n  readings: 3\n")
    session.observe(_errors(0.0))
    assert session.observe(_errors(0.06)).events == ()
    assert session.observe(_errors(0.06)).events == ()
    assert [e.data["state"] for e in session.observe(_errors(0.06)).events] == ["critical"]
    undamped = _session(tmp_path / "one", "damping: {readings: 1}\n")
    undamped.observe(_errors(0.0))
    assert [e.data["state"] for e in undamped.observe(_errors(0.06)).events] == ["critical"]


def test_a_source_is_lost_and_recovered_only_when_it_holds(tmp_path):
    # The first look is taken as it is (nothing earlier to hold it against:
    # `status`, and a console started in the middle of an incident).
    down = _session(tmp_path / "down")
    assert [e.kind for e in down.observe(unreachable("redis", "cache", "refused")).events] == ["source.lost"]
    assert down.observe(_pg(0.95)).events[0].data["state"] == "critical"
    session = _session(tmp_path)
    session.observe(_pg(0.1))
    session.observe(unreachable("postgres", "primary", "timed out after 3s"))
    session.observe(_pg(0.1))  # one failed poll between two good ones
    assert _crossings(session) == []
    session.observe(unreachable("postgres", "primary", "timed out after 3s"))
    session.observe(unreachable("postgres", "primary", "timed out after 3s"))
    session.observe(_pg(0.1))
    assert _crossings(session) == [("source.lost", None)]
    session.observe(_pg(0.1))
    assert _crossings(session) == [("source.lost", None), ("source.recovered", None)]


def test_the_pane_reads_raw_and_the_record_goes_by_what_settled(tmp_path):
    session = _session(tmp_path)
    session.observe(_errors(0.0))
    session.observe(_errors(0.06))
    raw, settled = session.latest[ERRORS], session.crossings.settled(ERRORS)
    assert raw.state is State.CRITICAL and raw.metrics["error_ratio"] == 0.06
    # The ratio that backs the settled state, not the flap.
    assert settled.state is State.OK and settled.metrics["error_ratio"] == 0.0
    session.observe(_errors(0.07))
    assert session.crossings.settled(ERRORS).state is State.CRITICAL


def test_no_reading_of_a_metric_is_neither_a_breach_nor_a_recovery(tmp_path):
    session = _session(tmp_path)
    session.observe(_errors(0.06))  # first look: critical
    for _ in range(3):
        session.observe(_errors(None, requests=0))  # no traffic at all
        session.observe(_errors(0.0, requests=5))  # too few requests to judge
    assert _crossings(session) == [("threshold.crossed", "critical")]
    assert session.crossings.settled(ERRORS).state is State.CRITICAL


# ---- too few requests --------------------------------------------------------------------

def test_a_ratio_over_too_few_requests_cannot_breach():
    # The walk's numbers: one 5xx in 17 requests.
    quiet = _errors(1 / 17, requests=17)
    assert quiet.state is State.OK and quiet.breaches == ()
    assert quiet.details["unjudged"] == ("error_ratio",)
    assert "error_ratio not judged: 17 requests in the window" in " ".join(quiet.details["notes"])
    busy = _errors(2 / 40, requests=40)
    assert busy.state is State.CRITICAL and [b.metric for b in busy.breaches] == ["error_ratio"]
    assert "unjudged" not in busy.details
    unknown_count = _errors(0.06, requests=None)  # a custom query: judged, a real outage is not hidden
    assert unknown_count.state is State.CRITICAL


def test_min_requests_is_the_configs_and_survives_a_threshold_override():
    judged_all = config.parse("damping: {min_requests: 0}\n", env={}).thresholds
    assert _errors(1 / 17, requests=17, limits=judged_all).state is State.CRITICAL
    strict = config.parse("damping: {min_requests: 100}\n", env={}).thresholds
    assert _errors(2 / 40, requests=40, limits=strict).state is State.OK
    overridden = config.parse("thresholds:\n  errors.error_ratio: {warning: 0.02, critical: 0.1}\n",
                              env={}).thresholds
    assert overridden["errors.error_ratio"].min_requests == 20
    assert _errors(0.5, requests=4, limits=overridden).state is State.OK


def test_a_quiet_service_with_one_error_flaps_nothing(tmp_path):
    session = _session(tmp_path)
    session.load_playbooks()
    seen = [session.observe(_errors(ratio, requests=17)) for ratio in [0.0, 1 / 17] * 8]
    assert _crossings(session) == [] and not any(o.suggestions for o in seen)


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as c:
        yield c


def _exposition(ok: int, failed: int) -> str:
    return ("# TYPE http_requests_total counter\n"
            f'http_requests_total{{status="200"}} {ok}\nhttp_requests_total{{status="500"}} {failed}\n')


async def test_a_scraped_ratio_knows_its_requests(client):
    bodies = iter([_exposition(100, 3), _exposition(116, 4)])  # 17 requests, one 5xx
    now = [0.0]
    with FaultServer({"/metrics": lambda path, query: Reply(200, next(bodies))}) as service:
        source = ScrapedErrors(ServiceTarget("payments-api", service.url("/health"), metrics=service.url("/metrics")),
                               client, clock=lambda: now[0])
        await poll_judged(source, DEFAULTS)
        now[0] = 2.0
        snap = await poll_judged(source, DEFAULTS)
    assert snap.metrics["error_ratio"] == pytest.approx(1 / 17)
    assert snap.details["window_requests"] == 17
    assert snap.state is State.OK and snap.details["unjudged"] == ("error_ratio",)


async def test_a_prometheus_ratio_knows_its_requests(client):
    def answer(path, query):
        promql = query.get("query", "")
        value = "0.1" if "histogram_quantile" in promql else "0.0588" if "5.." in promql else str(17 / 60)
        return json_reply({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1763800000, value]}]}})

    with FaultServer({"/api/v1/query": answer}) as prom:
        source = PrometheusErrors(ServiceTarget("payments-api", "http://api.invalid/"),
                                  PrometheusTarget(prom.url(""), 2.0), client)
        snap = await poll_judged(source, DEFAULTS)
    assert snap.details["window_requests"] == pytest.approx(17)
    assert snap.state is State.OK
    assert "window_requests" not in snap.to_json()["metrics"]  # status --json is unchanged


# ---- the config --------------------------------------------------------------------------

@pytest.mark.parametrize("text, line, message", [
    ("damping:\n  readings: 0\n", 2, "'damping.readings' must be a whole number from 1 to 100, not 0"),
    ("damping:\n  min_requests: -1\n", 2, "'damping.min_requests' must be a whole number from 0 to 1000000"),
    ("damping:\n  readings: 2.5\n", 2, "'damping.readings' must be an integer, not float"),
    ("refresh: 1\ndamping:\n  reading: 2\n", 3, "unknown key 'reading' (did you mean 'readings'?)"),
    ("damping: 2\n", 1, "'damping' must be a mapping"),
])
def test_damping_config_problems_are_located(text, line, message):
    with pytest.raises(Invalid) as raised:
        config.parse(text, "c.yaml", env={})
    assert any(p.line == line and message in p.message for p in raised.value.problems), raised.value.problems


def test_damping_defaults():
    cfg = config.parse("refresh: 1\n", env={})
    assert (cfg.damping.readings, cfg.damping.min_requests) == (2, 20)
    assert cfg.thresholds["errors.error_ratio"].min_requests == 20


# ---- suggestions -------------------------------------------------------------------------

def _suggested(observation) -> set[str]:
    return {p.id for p in observation.suggestions}


def test_a_flapping_ratio_suggests_nothing_and_a_held_one_once(tmp_path):
    session = _session(tmp_path)
    session.load_playbooks()
    session.observe(_errors(0.0))
    assert not any(_suggested(session.observe(_errors(r))) for r in [0.06, 0.0] * 4)
    session.observe(_errors(0.06))
    assert HIGH_ERRORS in _suggested(session.observe(_errors(0.06)))
    for ratio in [0.0, 0.0, 0.06, 0.06, 0.08]:  # over, back, and over again: said once is enough
        assert HIGH_ERRORS not in _suggested(session.observe(_errors(ratio)))
    said = [e for e in session.events() if e.kind == "playbook.suggested"]
    assert [e.data["playbook"] for e in said] == [HIGH_ERRORS]


def test_a_started_playbook_is_not_suggested(tmp_path):
    session = _session(tmp_path)
    session.load_playbooks()
    session.start_playbook(HIGH_ERRORS)
    assert not any(HIGH_ERRORS in _suggested(session.observe(_errors(0.06))) for _ in range(3))


def test_a_restarted_console_does_not_suggest_again(tmp_path):
    session = _session(tmp_path)
    session.load_playbooks()
    assert HIGH_ERRORS in _suggested(session.observe(_errors(0.06)))
    session.close()
    again = _session(tmp_path)
    again.load_playbooks()
    assert not any(_suggested(again.observe(_errors(0.07))) for _ in range(3))


def test_a_step_is_not_ticked_on_a_flap(tmp_path):
    session = _session(tmp_path)
    session.load_playbooks()
    session.observe(_pg(0.95))
    session.start_playbook(POOL)
    assert "connections-recovered" not in session.observe(_pg(0.5)).ticks
    assert not session.incident().ticked(POOL, "connections-recovered")
    assert "connections-recovered" in session.observe(_pg(0.5)).ticks


# ---- the console's own observations are the console's -------------------------------------

def test_what_the_console_saw_is_the_consoles(tmp_path):
    session = _session(tmp_path, user="alice")
    session.load_playbooks()
    session.observe(_pg(0.95))  # crossed, and suggests the pool playbook
    session.start_playbook(POOL)
    session.note("looking at the pool")
    session.observe(_pg(0.5))
    session.observe(_pg(0.5))  # back to ok, and the recovery step ticks itself
    session.observe(unreachable("postgres", "primary", "timed out"))
    session.observe(unreachable("postgres", "primary", "timed out"))
    session.observe(_pg(0.5))
    session.observe(_pg(0.5))
    by = {(e.kind, e.data.get("state")): e.user for e in session.events()}
    assert by == {("threshold.crossed", "critical"): "console", ("playbook.suggested", None): "console",
                  ("playbook.started", None): "alice", ("note", None): "alice",
                  ("threshold.crossed", "ok"): "console", ("playbook.tick", None): "console",
                  ("source.lost", None): "console", ("source.recovered", None): "console",
                  ("moment", None): "console"}  # the panes' readings kept for time travel
    consoles = [e for e in session.events() if e.user == "console"]
    assert all(e.operator["ssh_client"] is None for e in consoles)  # not alice's address either
    text = postmortem_markdown(session.events(), START)
    crossed = next(line for line in text.splitlines() if "primary connections" in line and "critical" in line)
    assert crossed.endswith("— console")
    assert any(line.endswith("— alice") and "looking at the pool" in line for line in text.splitlines())


def test_a_journal_written_before_keeps_its_attribution_and_is_remembered(tmp_path):
    # What consoles wrote before issue 13: their crossings under the operator.
    old = {"events": {"1": {"id": "a1", "at": "2026-11-30T14:00:00.000000Z", "kind": "threshold.crossed",
                            "operator": {"user": "oncall", "ssh_client": "10.0.0.9"},
                            "data": {"source": "primary", "kind": "postgres", "metric": "connections_ratio",
                                     "value": 0.95, "limit": 0.9, "state": "critical", "previous": "ok"}}}}
    (tmp_path / "incident.json").write_text(json.dumps(old))
    session = _session(tmp_path)
    assert session.observe(_pg(0.95)).events == ()  # already journaled: not again
    session.observe(_pg(0.1))
    session.observe(_pg(0.1))
    assert [(e.data["state"], e.user) for e in session.events()
            if e.kind != "moment"] == [("critical", "oncall"), ("ok", "console")]


# ---- damping never hides a problem that persists (red-team finding) ------------------------

def test_a_ratio_swinging_between_warning_and_critical_is_an_outage(tmp_path):
    # Above its limit at every reading, but never the same severity twice in
    # a row: counting exact repeats kept this "ok" for ever. Not-ok of any
    # severity counts, and the worst of the run is what is reported.
    session = _session(tmp_path)
    session.observe(_errors(0.0))
    assert session.observe(_errors(0.02)).events == ()  # warning: one reading is a flap
    crossed = session.observe(_errors(0.06)).events  # critical: the second not-ok reading in a row
    assert [(e.data["state"], e.data["previous"], e.data["value"]) for e in crossed] == [("critical", "ok", 0.06)]
    for i in range(200):
        session.observe(_errors(0.02 if i % 2 == 0 else 0.06))
        assert session.crossings.settled(ERRORS).state is State.CRITICAL
    assert _crossings(session) == [("threshold.crossed", "critical")]


def test_the_worst_of_the_run_is_reported_with_its_own_value_and_limit(tmp_path):
    session = _session(tmp_path, "damping: {readings: 3}\n")
    session.observe(_errors(0.0))
    session.observe(_errors(0.02))
    session.observe(_errors(0.07))
    crossed = session.observe(_errors(0.03)).events  # third not-ok in a row; the critical one was before
    assert [(e.data["state"], e.data["value"], e.data["limit"]) for e in crossed] == [("critical", 0.07, 0.05)]
    settled = session.crossings.settled(ERRORS)
    assert settled.state is State.CRITICAL and settled.metrics["error_ratio"] == 0.07


def test_warning_and_critical_move_on_their_own_readings_and_never_to_ok(tmp_path):
    session = _session(tmp_path)
    session.observe(_errors(0.0))
    session.observe(_errors(0.02))
    session.observe(_errors(0.02))
    assert session.crossings.settled(ERRORS).state is State.WARNING
    for ratio in [0.06, 0.02, 0.0, 0.06, 0.0, 0.02]:  # neither critical nor ok ever holds
        assert session.observe(_errors(ratio)).events == ()
    assert session.crossings.settled(ERRORS).state is State.WARNING
    session.observe(_errors(0.06))
    assert [e.data["state"] for e in session.observe(_errors(0.07)).events] == ["critical"]
    session.observe(_errors(0.0))
    assert [e.data["state"] for e in session.observe(_errors(0.0)).events] == ["ok"]


def test_one_bad_reading_among_good_ones_is_still_a_flap(tmp_path):
    session = _session(tmp_path)
    session.observe(_errors(0.0))
    for ratio in [0.0, 0.0, 0.06, 0.0, 0.0, 0.02, 0.0, 0.0, 0.06, 0.0]:
        session.observe(_errors(ratio))
    session.observe(_pg(0.1))
    for reachable in [True, True, False, True, True, True, False, True, True]:
        session.observe(_pg(0.1) if reachable else unreachable("postgres", "primary", "timed out"))
    assert _crossings(session) == []
    assert session.crossings.settled(ERRORS).state is State.OK


def test_a_source_failing_every_other_poll_is_lost_and_stays_lost(tmp_path):
    # A run of failures never forms, yet it is down half the time: lost once
    # N of its last 2N polls failed; back only after N good polls in a row.
    session = _session(tmp_path)
    session.observe(_pg(0.1))
    down = unreachable("postgres", "primary", "connection refused")
    session.observe(down)
    session.observe(_pg(0.1))
    assert [e.kind for e in session.observe(down).events] == ["source.lost"]
    for i in range(200):
        assert session.observe(_pg(0.1) if i % 2 == 0 else down).events == ()
    assert _crossings(session) == [("source.lost", None)]
    assert session.crossings.settled(("postgres", "primary")).state is State.UNREACHABLE
    session.observe(_pg(0.1))
    assert [e.kind for e in session.observe(_pg(0.1)).events] == ["source.recovered"]


def test_an_own_state_swinging_between_severities_settles_not_ok():
    # The state a source gives itself (a wrong HTTP status, no data), with no
    # metric behind it: damped the same way.
    from console.incident.crossings import Crossings

    crossings = Crossings(readings=2)
    crossings.observe(Snapshot("http", "web", State.OK, utcnow()))
    for i in range(20):
        crossings.observe(Snapshot("http", "web", State.CRITICAL if i % 2 else State.WARNING, utcnow()))
        assert crossings.settled(("http", "web")).state is (State.OK if i == 0 else State.CRITICAL)
