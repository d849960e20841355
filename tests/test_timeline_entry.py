"""A timeline entry longer than its row is read whole (issue 13): Enter on
it opens every line of it, inert and scrollable, even a probe's output that
no zoom could show."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static

from console import config
from console.app import IncidentConsole
from console.incident.journal import Journal
from console.widgets.timeline import TimelinePane

CFG = config.parse("refresh: 5\n", "t.yaml", env={})
OUTPUT = "\n".join([" pid | state | query", *(f"{n:4} | idle  | SELECT {n}" for n in range(80)),
                    "[bold]not markup[/bold] \x1b[2J end-of-output"])


async def test_enter_on_a_timeline_entry_shows_it_whole_and_inert(tmp_path):
    journal = Journal(tmp_path / "i.json", operator={"user": "alice", "ssh_client": "10.0.0.7"})
    app = IncidentConsole(CFG, sources=[], journal=journal)
    async with app.run_test(size=(80, 24)) as pilot:
        journal.append("note", text="first", tags=[], pinned=False)
        probe = journal.append("probe", playbook="pool", step="sessions", source="primary",
                               query="SELECT pid, state, query FROM pg_stat_activity", ok=True, output=OUTPUT)
        journal.append("note", text="after", tags=[], pinned=False)
        app.show_journal()
        await pilot.press("6")
        await pilot.pause()
        timeline = app.query_one(TimelinePane)
        timeline.table.move_cursor(row=1)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is not app.main
        shown = "\n".join(str(w.render()) for w in app.screen.query(Static))
        assert "  79 | idle  | SELECT 79" in shown and "end-of-output" in shown
        assert "[bold]not markup[/bold]" in shown and "\x1b" not in shown
        assert "alice (10.0.0.7) · probe" in str(app.screen.query_one("Vertical").border_title)
        parts = app.screen.query_one("#parts", VerticalScroll)
        assert parts.max_scroll_y > 0  # longer than the screen: it scrolls
        await pilot.press("end")
        await pilot.pause()
        assert parts.scroll_y == parts.max_scroll_y
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main
        assert timeline.table.coordinate_to_cell_key((1, 0)).row_key.value == probe.id
