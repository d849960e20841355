"""Time travel (issue 14): the journal keeps, bounded, what the panes read at
each milestone and alarm, and the timeline opens the panes as they were."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path

from console.incident import moments
from console.incident.journal import Journal
from console.incident.session import IncidentSession
from console.screens.moment import MomentScreen
from console.vocabulary import Breach, Snapshot, State
from scripted import Clock
from test_layout import FROZEN, console_app, settle

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from moments_size import scripted_incident  # noqa: E402

OPERATOR = {"user": "oncall", "ssh_client": None}
# What README.md states: one 2-hour incident at 1 s refresh, flapping.
STATED_TOTAL = 1_500_000


def postgres(connections: int) -> dict:
    return {"connections_total": connections, "max_connections": 40, "connections_ratio": connections / 40,
            "connections_by_state": {"idle": 2, "active": connections - 2}, "idle_in_transaction": 0,
            "blocked_sessions": 0, "longest_transaction_s": 3.0}


def pg_source(app):
    return next(s for s in app.sources if s.kind == "postgres")


def pg_summary(screen) -> str:
    return screen.query_one("PostgresPane")._summary_shown.plain


async def test_a_past_moment_shows_what_was_read_then_not_now(tmp_path):
    clock = Clock(FROZEN)
    journal = Journal(tmp_path / "incident.json", OPERATOR, clock=clock)
    app = console_app(journal=journal)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)  # readings A: 38/40 connections, critical at first look: a crossing and its moment
        session = app.session
        clock.at(2)
        session.declare("P1 Checkout returns 502")
        app.show_journal()
        # Readings B, then a milestone that keeps them.
        pg_source(app).metrics = postgres(12)
        app.action_refresh_now()
        deadline = asyncio.get_running_loop().time() + 5
        while session.latest[("postgres", "primary")].metrics["connections_total"] != 12:
            assert asyncio.get_running_loop().time() < deadline, "reading B never arrived"
            await pilot.pause(0.05)
        clock.at(5)
        session.acknowledge()
        app.show_journal()
        await pilot.pause()
        assert "12/40 conns" in pg_summary(app.main)

        crossing = next(e for e in journal.events() if e.kind == "threshold.crossed")
        table = app.main.timeline.table
        table.focus()
        table.move_cursor(row=table.get_row_index(crossing.id))
        await pilot.press("t")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, MomentScreen)
        banner = str(screen.query_one("#banner").render())
        assert "AS AT 10:00:00 UTC — recorded, not live" in banner
        assert "38/40 conns" in pg_summary(screen) and "12/40" not in pg_summary(screen)
        assert "recorded" in str(screen.query_one("PostgresPane").border_subtitle)

        # Nothing that changes anything works here: no confirmation, no prompt.
        await pilot.press("3", "K", "D", "a", "s")
        await pilot.pause()
        assert app.screen is screen
        assert not [e for e in journal.events() if e.kind == "incident.acknowledged"][1:]

        last = len(screen.moments) - 1
        for _ in range(last - screen.index):
            await pilot.press("right_square_bracket")
            await pilot.pause()
        assert screen.moment.what == "incident.acknowledged"
        assert "12/40 conns" in pg_summary(screen)
        assert "AS AT 10:05:00 UTC" in str(screen.query_one("#banner").render())
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert screen.moment.what == "incident.status"  # declared at 10:02 is followed by Investigating
        assert "38/40 conns" in pg_summary(screen)

        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main
        # From the entry, whole: `t` there travels too.
        declared = next(e for e in journal.events() if e.kind == "incident.declared")
        table.focus()
        table.move_cursor(row=table.get_row_index(declared.id))
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, MomentScreen) and app.screen.moment.event_id == declared.id


def snapshot(name: str, state: State = State.OK, **metrics) -> Snapshot:
    return Snapshot("postgres", name, state, FROZEN, metrics=metrics)


def test_one_moment_is_bounded_and_keeps_scalars_only():
    wide = {f"metric_{i}": i + 0.123456789 for i in range(100)}
    latest = {("postgres", f"db{i:02}"): Snapshot(
        "postgres", f"db{i:02}", State.CRITICAL if i == 40 else State.OK, FROZEN, error="x" * 5000,
        metrics={**wide, "by_state": {"idle": 3}, "role": "p" * 500},
        details={"sessions": [{"pid": n} for n in range(1000)]},
        breaches=(Breach("metric_1", 1.123456, 1.0, State.CRITICAL),)) for i in range(50)}
    data = moments.record("e1", latest)
    assert len(data["readings"]) <= moments.MAX_SOURCES
    assert len(json.dumps(data["readings"], separators=(",", ":"))) <= moments.MAX_BYTES
    assert any(r["name"] == "db40" for r in data["readings"]), "the critical source is kept first"
    for reading in data["readings"]:
        assert len(reading["metrics"]) <= moments.MAX_METRICS
        assert "by_state" not in reading["metrics"] and "details" not in reading
        assert len(reading["error"]) <= moments.MAX_ERROR
        assert all(not isinstance(v, float) or len(repr(v)) <= 8 for v in reading["metrics"].values())
    # Rebuilt as snapshots the panes take.
    rebuilt = moments.readings(data, FROZEN)
    assert rebuilt[0].metrics["metric_0"] == 0.1235
    assert any(s.breaches and s.breaches[0].state is State.CRITICAL for s in rebuilt)


def test_the_incident_budget_keeps_milestones_and_thins_alarms():
    budget = moments.Budget()
    at = FROZEN
    kept_alarms = 0
    for second in range(20_000):
        at = FROZEN + timedelta(seconds=second)
        if budget.allows("threshold.crossed", at):
            budget.spend("threshold.crossed", at)
            kept_alarms += 1
    assert kept_alarms == moments.ALARM_MOMENTS
    assert budget.allows("incident.mitigated", at)
    assert not budget.allows("note", at)
    for _ in range(moments.MAX_MOMENTS - moments.ALARM_MOMENTS):
        budget.spend("incident.status", at)
    assert not budget.allows("incident.status", at)  # never past the total


def test_old_journals_travel_nowhere_and_restarted_consoles_keep_counting(tmp_path):
    path = tmp_path / "incident.json"
    clock = Clock(FROZEN)
    journal = Journal(path, OPERATOR, clock=clock)
    journal.append("incident.declared", title="old", severity="P2")  # written before moments existed
    session = IncidentSession(None, journal, clock=clock)
    note = session.note("looking")
    assert session.travel(note.id) == ([], None)
    clock.at(0.5)
    session.observe(snapshot("primary", State.CRITICAL, connections_ratio=0.95))
    session.acknowledge()
    journal.close()
    again = IncidentSession(None, Journal(path, OPERATOR, clock=lambda: FROZEN + timedelta(minutes=1)))
    assert again.moment_budget.kept == 2
    kept, index = again.travel(note.id)
    assert index is None  # nothing kept at or before the note
    later = again.note("after")
    assert kept[again.travel(later.id)[1]].what == "incident.acknowledged"
    again.close()


def test_a_two_hour_flapping_incident_journal_stays_under_the_stated_bound(tmp_path):
    size = scripted_incident(tmp_path / "incident.json", minutes=120)
    journal = Journal(tmp_path / "incident.json", OPERATOR)
    events = journal.events()
    journal.close()
    kept = [e for e in events if e.kind == moments.KIND]
    crossings = [e for e in events if e.kind == "threshold.crossed"]
    assert len(crossings) > 1000 and moments.THIN_FROM < len(kept) <= moments.MAX_MOMENTS
    kinds = {e.id: e.kind for e in events}
    assert set(moments.MILESTONES) <= {kinds[e.data["at"]] for e in kept}, "every milestone keeps its moment"
    assert all(len(json.dumps(e.to_document())) <= moments.MAX_BYTES + 500 for e in kept)
    assert size < STATED_TOTAL, f"{size:,} bytes"
