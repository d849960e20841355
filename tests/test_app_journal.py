"""The scribe at the keyboard: notes, declaring, status changes, corrections,
the update composer, and entries written by another process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from console import config
from console.app import IncidentConsole
from console.incident.journal import Journal
from console.incident.state import Incident
from console.widgets.header import IncidentHeader
from console.widgets.timeline import TimelinePane
from screen import wait

CFG = config.parse("refresh: 5\n", "t.yaml", env={})




def _app(path, clock=None):
    journal = Journal(path, operator={"user": "alice", "ssh_client": "10.0.0.7"}, clock=clock)
    return IncidentConsole(CFG, sources=[], journal=journal, clock=clock), journal


def _kinds(journal):
    return [e.kind for e in journal.events()]


async def test_declare_note_and_status_are_journaled(tmp_path):
    app, journal = _app(tmp_path / "i.json")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("D")
        await pilot.press(*"P1 Checkout down", "enter")
        await pilot.press("n")
        await pilot.press(*"pool at 95% #finding", "enter")
        # `s` opens the status list on the current status (issue 13: it no
        # longer advances blindly); Down, Enter chooses the next one.
        await pilot.press("escape", "s")
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
        assert _kinds(journal) == ["incident.declared", "incident.status", "note", "incident.status"]
        incident = Incident.from_events(journal.events(), datetime.now(timezone.utc))
        assert (incident.title, incident.severity, incident.status) == ("Checkout down", "P1", "Identified")
        assert incident.notes[0].tags == ("finding",)
        header = app.query_one(IncidentHeader)._shown.plain
        assert "Checkout down" in header and "Identified" in header and "P1" in header
        timeline = app.query_one(TimelinePane)
        assert timeline.table.row_count == 4


async def test_notes_are_corrected_and_struck_with_history_kept(tmp_path):
    app, journal = _app(tmp_path / "i.json")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("n", *"db is fine", "enter", "escape")
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        await pilot.press(*["backspace"] * 4, *"down", "enter")
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        assert _kinds(journal) == ["note", "note.corrected", "note.struck"]
        note = Incident.from_events(journal.events(), datetime.now(timezone.utc)).notes[0]
        assert [v.text for v in note.versions] == ["db is fine", "db is down"] and note.struck
        cell = app.query_one(TimelinePane).table.get_row(note.id)[2]
        assert "db is down" in cell.plain and "strike" in str(cell.style)


async def test_update_composer_copies_and_journals(tmp_path):
    app, journal = _app(tmp_path / "i.json")
    copied = []
    app.copy_to_clipboard = copied.append
    async with app.run_test(size=(160, 48)) as pilot:
        journal.append("incident.declared", title="Checkout down", severity="P1")
        await pilot.press("u")
        await pilot.pause()
        await pilot.press("tab")  # status page
        await pilot.press("ctrl+s")
        await pilot.pause()
    sent = [e for e in journal.events() if e.kind == "update.sent"]
    assert len(sent) == 1 and sent[0].data["channel"] == "status-page"
    assert copied == [sent[0].data["text"]] and "checkout down" in copied[0].lower()


async def test_overdue_update_shows_in_the_header(tmp_path):
    now = [datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)]
    app, journal = _app(tmp_path / "i.json", clock=lambda: now[0])
    async with app.run_test(size=(160, 48)) as pilot:
        journal.append("incident.declared", title="Outage", severity="P0")
        now[0] += timedelta(minutes=16)
        app._tick()
        await pilot.pause()
        assert "UPDATE OVERDUE 1 min" in app.query_one(IncidentHeader)._shown.plain


async def test_entries_from_another_process_appear_within_a_second(tmp_path):
    path = tmp_path / "i.json"
    app, journal = _app(path)
    async with app.run_test(size=(160, 48)) as pilot:
        subprocess.run([sys.executable, "-m", "console", "note", "--incident", str(path), "deploy 4.2 rolled back"],
                       check=True, capture_output=True)
        timeline = app.query_one(TimelinePane)
        started = asyncio.get_running_loop().time()
        await wait(pilot, lambda: timeline.table.row_count == 1, timeout=3)
        assert asyncio.get_running_loop().time() - started < 1.5


async def test_threshold_crossings_and_lost_sources_are_journaled_once(tmp_path):
    from scripted import ScriptedSource

    source = ScriptedSource("postgres", "primary", metrics={"connections_ratio": 0.5}, timeout=0.3)
    app, journal = _app(tmp_path / "i.json")
    app.sources = [source]
    app.config = config.parse("refresh: 0.2\n", "t.yaml", env={})
    async with app.run_test(size=(160, 48)) as pilot:
        await wait(pilot, lambda: source.polls >= 2)
        source.metrics = {"connections_ratio": 0.96}
        await wait(pilot, lambda: "threshold.crossed" in _kinds(journal))
        await wait(pilot, lambda: source.polls >= 8)
        source.hang = True
        await wait(pilot, lambda: "source.lost" in _kinds(journal))
        source.hang = False
        await wait(pilot, lambda: "source.recovered" in _kinds(journal))
    crossed = [e for e in journal.events() if e.kind == "threshold.crossed"]
    assert len(crossed) == 1 and crossed[0].data["kind"] == "postgres" and crossed[0].data["state"] == "critical"
    assert _kinds(journal).count("source.lost") == 1


async def test_demo_incident_walk_exports_matching_times(tmp_path):
    """Declare, acknowledge, notes, status changes, a playbook tick, resolve:
    the post-mortem's timeline and TTA/TTM/TTR say what happened."""
    from console.incident.export import postmortem_markdown

    start = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)
    now = [start]
    app, journal = _app(tmp_path / "walk.json", clock=lambda: now[0])
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("D", *"P1 Checkout returns 502", "enter")
        now[0] = start + timedelta(minutes=3)
        await pilot.press("a")
        now[0] = start + timedelta(minutes=5)
        await pilot.press("n", *"pool exhausted by a leak #root-cause", "enter", "escape")
        # `s` opens the status list on the current status (issue 13: no blind
        # advance); Down, Enter chooses the next one.
        await pilot.press("s", "down", "enter")  # Identified
        now[0] = start + timedelta(minutes=20)
        await pilot.press("s", "down", "enter")  # Monitoring: mitigated
        journal.append("playbook.tick", playbook="postgres-pool-exhausted", step="connections-recovered", auto=True)
        now[0] = start + timedelta(minutes=45)
        await pilot.press("s", "down", "enter")  # Resolved
        await pilot.pause()
    doc = postmortem_markdown(journal.events(), start + timedelta(hours=1))
    assert "**Time to acknowledge (TTA):** 3 min" in doc
    assert "**Time to mitigate (TTM):** 20 min" in doc
    assert "**Time to resolve (TTR):** 45 min" in doc
    assert "pool exhausted by a leak" in doc.split("## Root Cause")[1]
    journal_shown = doc.split("## Appendix: Full Journal (UTC)")[1]
    assert journal_shown.index("09:00:00") < journal_shown.index("09:03:00") < journal_shown.index("09:45:00")
    assert "Status: Resolved" in journal_shown
    timeline = doc.split("## Timeline\n")[1].split("##")[0]
    assert timeline.index("**09:03 UTC** - Acknowledged") < timeline.index("**09:45 UTC** - Resolved")


async def test_a_refused_write_is_on_screen_and_nothing_is_lost(tmp_path):
    import shutil

    directory = tmp_path / "incidents"
    path = directory / "journal.json"
    app, journal = _app(path)
    shown = []
    app.notify = lambda message, **kw: shown.append((message, kw.get("severity")))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("n", *"before", "enter")
        shutil.rmtree(directory)
        directory.write_text("not a directory")  # every write now fails
        await pilot.press(*"while the disk refuses", "enter")
        await pilot.pause()
        assert any(sev == "error" and str(directory) in msg for msg, sev in shown)
        assert app.main.timeline.table.row_count == 2  # shown, though only in memory
        directory.unlink()
        await wait(pilot, lambda: not journal.pending, timeout=6)  # retried on the refresh timer
    texts = [e.data["text"] for e in Journal(path).events()]
    assert texts == ["before", "while the disk refuses"]
