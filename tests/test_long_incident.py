"""A long incident costs each new entry, not the incident's length (issue 16):
the incident is replayed from the entries added since, and the timeline adds
their rows and redraws only the notes they edit. Each quick way must show
exactly what the whole way shows."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

from hypothesis import HealthCheck, given, settings, strategies as st

from console import config
from console.app import IncidentConsole
from console.incident.journal import Event, Journal, new_event
from console.incident.state import Incident, Replay, extends
from console.widgets.timeline import TimelinePane

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
ALICE = MappingProxyType({"user": "alice", "ssh_client": None})
CFG = config.parse("refresh: 60\n", "t.yaml", env={})

KINDS = ["note", "note.corrected", "note.struck", "note.pinned", "incident.declared", "incident.status",
         "incident.severity", "playbook.tick", "threshold.crossed", "update.sent", "incident.status.undo"]


def _events(seed: int, count: int) -> list[Event]:
    """A random incident: notes and their edits (some of notes that do not
    exist, some with fields of the wrong type), status changes, ticks."""
    rng = random.Random(seed)
    events: list[Event] = []
    notes: list[str] = []
    for i in range(count):
        at = T0 + timedelta(seconds=i)
        kind = rng.choice(KINDS)
        target = rng.choice(notes) if notes and rng.random() < 0.9 else "nope"
        data = {
            "note": {"text": f"note {i} #finding", "tags": ["finding"], "pinned": rng.random() < 0.2},
            "note.corrected": {"note_id": target, "text": f"corrected {i}" if rng.random() < 0.9 else 7},
            "note.struck": {"note_id": target},
            "note.pinned": {"note_id": target, "pinned": rng.random() < 0.5},
            "incident.declared": {"title": f"t{i}", "severity": "P2"},
            "incident.status": {"status": rng.choice(["Identified", "Monitoring", "Resolved"])},
            "incident.severity": {"severity": rng.choice(["P1", "P3", ["not", "text"]])},
            "playbook.tick": {"playbook": "pb", "step": rng.randint(0, 3), "auto": False},
            "threshold.crossed": {"source": "db", "kind": "postgres", "metric": "m", "value": 1.0, "limit": 0.5,
                                  "state": rng.choice(["warning", "ok"]), "previous": "ok"},
            "update.sent": {"channel": "slack", "text": f"update {i}"},
            "incident.status.undo": {},
        }[kind]
        event = new_event(kind, ALICE, at, **data)
        if kind == "note":
            notes.append(event.id)
        events.append(event)
    return events


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 120), max_size=6))
def test_an_incident_replayed_piece_by_piece_is_the_incident_replayed_whole(seed, cuts):
    events = _events(seed, 120)
    replay = Replay()
    taken = 0
    for cut in sorted(cuts) + [len(events)]:
        replay.take(events[taken:cut])
        taken = max(taken, cut)
        now = T0 + timedelta(hours=1)
        piecewise, whole = replay.incident(now), Incident.from_events(events[:taken], now)
        assert piecewise == whole
        assert all(piecewise.note(note.id) == note for note in whole.notes)
        assert piecewise.note("nope") is None


def test_extends_is_by_identity_and_order():
    events = tuple(_events(1, 10))
    assert extends(events, events[:4]) and extends(events, ()) and extends(events, events)
    assert not extends(events[:4], events)
    assert not extends(events, events[1:5])  # the same length of prefix, other events
    copy = tuple(Event(e.id, e.at, e.kind, e.operator, e.data) for e in events[:4])
    assert not extends(events, copy)  # equal is not the same: an entry merged in replays


def _rows(pane: TimelinePane) -> list[tuple[str, tuple]]:
    table = pane.table
    out = []
    for index in range(table.row_count):
        key = table.coordinate_to_cell_key((index, 0)).row_key.value
        out.append((key, tuple((cell.plain, str(cell.style)) for cell in table.get_row_at(index))))
    return out


async def test_a_timeline_grown_entry_by_entry_shows_what_a_timeline_drawn_whole_shows(tmp_path):
    """Notes, their corrections, strikes and pins, appended one by one (with a
    filter on for part of it), then the same journal opened fresh."""
    events = _events(7, 160)
    path = tmp_path / "i.json"
    journal = Journal(path, operator=ALICE)
    app = IncidentConsole(CFG, sources=[], journal=journal)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(TimelinePane)
        for i, event in enumerate(events):
            journal.add(event)
            if i % 7 == 0 or i > 150:
                app.show_journal()
            if i == 60:
                pane.table.set_filter("note")
            if i == 110:
                pane.table.set_filter("")
        app.show_journal()
        await pilot.pause()
        grown, count = _rows(pane), pane.border_subtitle
    journal.close()

    fresh_journal = Journal(path, operator=ALICE)
    fresh = IncidentConsole(CFG, sources=[], journal=fresh_journal)
    async with fresh.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        pane = fresh.query_one(TimelinePane)
        whole = _rows(pane)
        assert count == pane.border_subtitle
    fresh_journal.close()
    assert grown == whole
    assert any("(corrected)" in cells[2][0] for _, cells in whole)
    assert any("strike" in cells[2][1] for _, cells in whole)


async def test_an_entry_merged_before_the_last_one_shown_takes_its_place_in_time(tmp_path):
    """Another host's entry (issue 17) can be older than what is shown: the
    timeline is drawn again, in order, not appended to."""
    journal = Journal(tmp_path / "i.json", operator=ALICE)
    app = IncidentConsole(CFG, sources=[], journal=journal)
    async with app.run_test(size=(120, 40)) as pilot:
        late = journal.note("written here")
        app.show_journal()
        earlier = new_event("note", {"user": "bob", "ssh_client": None}, late.at - timedelta(seconds=5),
                            text="written elsewhere, earlier", tags=[], pinned=False)
        journal.add(earlier)
        app.show_journal()
        await pilot.pause()
        keys = [key for key, _ in _rows(app.query_one(TimelinePane))]
        assert keys.index(earlier.id) < keys.index(late.id)
    journal.close()

