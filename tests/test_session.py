"""The headless incident session: the incident's logic without a screen."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from console import config
from console.incident.journal import Journal
from console.incident.session import IncidentSession, Refusal
from console.thresholds import DEFAULTS, judge
from console.vocabulary import Snapshot, State, unreachable, utcnow
from scripted import Clock

START = datetime(2026, 11, 30, 14, 0, tzinfo=timezone.utc)
POOL = "postgres-pool-exhausted"


def _session(tmp_path, read_only=False, text="refresh: 1\n"):
    clock = Clock(START)
    journal = Journal(tmp_path / "incident.json", operator={"user": "oncall"}, clock=clock)
    return IncidentSession(config.parse(text, "t.yaml", env={}), journal, clock, read_only=read_only), clock


def _pg(ratio, **metrics):
    return judge(Snapshot("postgres", "primary", State.OK, utcnow(),
                          metrics={"connections_ratio": ratio, **metrics}), DEFAULTS)


def _kinds(session):
    return [e.kind for e in session.events()]


def test_declare_reads_severity_then_title(tmp_path):
    session, _ = _session(tmp_path)
    session.declare("p1 Checkout returns 502")
    incident = session.incident()
    assert (incident.severity, incident.title, incident.status) == ("P1", "Checkout returns 502", "Investigating")


@pytest.mark.parametrize("answer, severity, title", [
    ("Checkout returns 502", "P2", "Checkout returns 502"),   # no severity: the default
    ("P1", "P2", "P1"),                                       # a severity alone is a title
    ("SEV2 disk full", "SEV2", "disk full"),
])
def test_declare_without_a_clear_severity(tmp_path, answer, severity, title):
    session, _ = _session(tmp_path)
    session.declare(answer)
    assert (session.incident().severity, session.incident().title) == (severity, title)


def test_declare_needs_a_title(tmp_path):
    session, _ = _session(tmp_path)
    with pytest.raises(Refusal):
        session.declare("   ")
    assert _kinds(session) == []


def test_status_advances_in_order_and_stops_at_resolved(tmp_path):
    session, clock = _session(tmp_path)
    with pytest.raises(Refusal, match="declare"):
        session.advance_status()
    session.declare("P1 x")
    said = []
    for minute in (1, 2, 3):
        clock.at(minute)
        said.append(session.advance_status())
    assert said == ["Identified", "Monitoring", "Resolved"]
    with pytest.raises(Refusal, match="resolved"):
        session.advance_status()


def test_severity_and_roles_are_checked(tmp_path):
    session, _ = _session(tmp_path)
    with pytest.raises(Refusal, match="not a severity"):
        session.set_severity("P9")
    with pytest.raises(Refusal, match="not a role"):
        session.assign("janitor", "bob")
    session.set_severity("sev1")
    session.assign("commander", " alice ")
    assert session.incident().severity == "SEV1" and session.incident().commander == "alice"


def test_observe_journals_crossings_once(tmp_path):
    session, _ = _session(tmp_path)
    assert session.observe(_pg(0.5)).events == ()
    # Damped (issue 13): a crossing is journaled at its second reading in a row.
    assert session.observe(_pg(0.95)).events == ()
    crossed = session.observe(_pg(0.95))
    assert [e.data["state"] for e in crossed.events] == ["critical"]
    assert session.observe(_pg(0.96)).events == ()
    assert session.observe(unreachable("postgres", "primary", "timed out")).events == ()  # one failed poll
    lost = session.observe(unreachable("postgres", "primary", "timed out"))
    assert [e.kind for e in lost.events] == ["source.lost"]


def test_a_restarted_session_remembers_crossings(tmp_path):
    session, _ = _session(tmp_path)
    session.observe(_pg(0.95))
    session.close()
    again, _ = _session(tmp_path)
    assert again.observe(_pg(0.95)).events == ()


def test_observe_suggests_and_ticks_from_live_data(tmp_path):
    session, _ = _session(tmp_path)
    session.load_playbooks()
    assert POOL in {p.id for p in session.playbooks}
    first = session.observe(_pg(0.97, connections_total=97, max_connections=100))
    assert POOL in {p.id for p in first.suggestions}
    assert session.observe(_pg(0.97, connections_total=97, max_connections=100)).suggestions == ()
    session.start_playbook(POOL)
    playbook, ticks = session.checklist()
    assert playbook.id == POOL and set(ticks) == {s.id for s in playbook.steps}


def test_plan_step_decides_tick_copy_probe_confirm_refuse(tmp_path):
    session, _ = _session(tmp_path)
    session.load_playbooks()
    playbook = session.desk.by_id[POOL]
    by_kind = {}
    for step in playbook.steps:
        by_kind.setdefault(step.kind, step)
    check = by_kind["check"]
    assert session.plan_step(playbook, check, "run").how == "tick"
    assert session.incident().ticked(POOL, check.id)
    assert session.plan_step(playbook, check, "toggle").how == "untick"
    assert not session.incident().ticked(POOL, check.id)
    assert session.plan_step(playbook, by_kind["probe"], "run").how == "probe"
    mutating = by_kind.get("action") or by_kind["command"]
    assert session.plan_step(playbook, mutating, "run").how in ("confirm", "copy")
    read_only, _ = _session(tmp_path / "ro", read_only=True)
    read_only.load_playbooks()
    if "action" in by_kind:
        plan = read_only.plan_step(playbook, by_kind["action"], "run")
        assert plan.how == "refuse" and "read-only" in plan.why


def test_notes_are_edited_with_history(tmp_path):
    session, clock = _session(tmp_path)
    event = session.note("  db at 90% #finding ")
    clock.at(1)
    session.edit_note(event.id, "correct", "db at 95% #finding")
    session.edit_note(event.id, "pin")
    note = session.incident().note(event.id)
    assert note.text == "db at 95% #finding" and note.pinned and note.corrected
    with pytest.raises(Refusal):
        session.edit_note("no-such-id", "strike")
    assert session.note("   ") is None


def test_a_session_without_a_journal_still_observes(tmp_path):
    session = IncidentSession(config.parse("refresh: 1\n", "t.yaml", env={}))
    assert session.observe(_pg(0.95)).events == ()
    assert session.incident().declared is False


async def test_check_once_judges_every_source_as_the_console_does(tmp_path):
    from scripted import ScriptedSource

    session, _ = _session(tmp_path)
    calm = ScriptedSource("redis", "cache", metrics={"connected_clients": 1, "maxclients": 100})
    full = ScriptedSource("postgres", "primary", metrics={"connections_ratio": 0.97})
    snapshots = await session.check_once([calm, full])
    assert {s.name: s.state for s in snapshots} == {"cache": State.OK, "primary": State.CRITICAL}
    assert [e.data["metric"] for e in session.events() if e.kind == "threshold.crossed"] == ["connections_ratio"]


def test_a_note_from_a_shell_lands_in_the_journal_a_session_reads(tmp_path):
    session, _ = _session(tmp_path)
    session.declare("P1 x")
    event, where = IncidentSession.note_to(tmp_path / "incident.json", "from the deploy hook #action")
    session.refresh()
    assert event.id in {e.id for e in session.events()}
    assert session.incident().note(event.id).text == "from the deploy hook #action"
