"""A step says how its last run ended, and keeps saying it (issue 13):
✔ or ✖, when, rows or exit status, in the list and in one line under it; a
refused confirmation never leaves it "running…"; a long, wide probe output
stays inside the pane, below a step list that stays visible, one line per row."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from console import config
from console.app import IncidentConsole
from console.incident.journal import Journal
from console.playbooks.output import row_count, table
from console.playbooks.runner import StepResult
from console.widgets.playbook import PlaybookPane, StepOutcome
from screen import wait
from test_layout import CONFIG, FROZEN, scripted_sources, settle

BOOK = """\
id: outcome-book
title: Outcome book
severity: P2
symptoms: [steps that say how they ended]
steps:
  - id: who
    title: Who holds the connections
    kind: probe
    probe: redis
    source: cache
    query: CLIENT LIST
  - id: fine
    title: A command that works
    kind: command
    runnable: true
    command: "true"
  - id: broken
    title: A command that fails
    kind: command
    runnable: true
    command: "exit 3"
  - id: look
    title: Look at the dashboards
    kind: check
"""
# Wide rows, and more of them than half a pane holds.
COLUMNS = ("pid", "usename", "application_name", "client_addr", "state", "query")
ROWS = [(10000 + i, "checkout", "checkout-api", "10.0.0.17", "idle in transaction",
         "SELECT email FROM customers WHERE id = $1") for i in range(60)]
WIDE = table(COLUMNS, ROWS) + row_count(len(ROWS), False)
AT = datetime(2026, 11, 22, 10, 0, 5, tzinfo=timezone.utc)


def test_an_outcome_says_when_and_how_many_rows_or_which_exit_status():
    probe = StepOutcome.of(StepResult(True, WIDE, None, 24.0), AT)
    assert (probe.ok, probe.mark) == (True, "✔")
    assert probe.line == "✔ ran at 10:00:05 · 60 rows · 24.0ms"
    one = StepOutcome.of(StepResult(True, "n\n-\n1\n(1 row)", None, 3.0), AT)
    assert "· 1 row ·" in one.line
    failed = StepOutcome.of(StepResult(False, "", "exit status 3", 1500.0, 3), AT)
    assert failed.mark == "✖" and failed.line == "✖ failed at 10:00:05 · exit 3 · 1.50s"
    broken = StepOutcome.of(StepResult(False, "", "connection refused", 5.0), AT)
    assert broken.line == "✖ failed at 10:00:05 · connection refused · 5.0ms"
    refused = StepOutcome.refused("not confirmed: type 'x' exactly", AT)
    assert refused.mark == "✖" and refused.line.startswith("✖ refused at 10:00:05: not confirmed")
    assert StepOutcome.running(AT).mark == "…"


def _app(tmp_path) -> tuple[IncidentConsole, Journal]:
    books = tmp_path / "books"
    books.mkdir()
    (books / "outcome.yaml").write_text(BOOK)
    cfg = config.parse(CONFIG + f"playbooks: [{books}]\n", str(tmp_path / "c.yaml"), env={})
    journal = Journal(tmp_path / "incident.json", operator={"user": "oncall", "ssh_client": "127.0.0.1"},
                      clock=lambda: FROZEN)
    return IncidentConsole(cfg, sources=scripted_sources(), clock=lambda: FROZEN, journal=journal), journal


async def _open_book(pilot, app) -> None:
    await settle(pilot)
    app.main.start_playbook("outcome-book")
    await pilot.pause()


async def _run(pilot, app, step_id: str) -> PlaybookPane:
    pane = app.query_one(PlaybookPane)
    pane.table.focus()
    pane.table.move_cursor(row=[s.id for s in pane.playbook.steps].index(step_id))
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()
    return pane


def _outcome_line(pane) -> str:
    return pane.query_one("#step-outcome").visual.plain


def _tick_cell(pane, step_id: str) -> str:
    return pane.table.get_row(step_id)[0].plain


async def _confirm(pilot, app, typed: str) -> None:
    await wait(pilot, lambda: len(app.screen_stack) > 1, what="the confirmation")
    await pilot.press(*typed, "enter")


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_a_long_wide_probe_output_stays_in_the_pane_under_a_visible_step_list(tmp_path, size):
    app, _ = _app(tmp_path)

    async def probe(playbook, step):
        return StepResult(True, WIDE, None, 24.0)

    async with app.run_test(size=size) as pilot:
        await _open_book(pilot, app)
        app.session.runner.probe = probe
        app.main.action_focus_pane("playbook")
        await pilot.pause()
        pane = await _run(pilot, app, "who")
        await wait(pilot, lambda: "60 rows" in _outcome_line(pane), what="the probe's outcome")
        await pilot.pause()
        assert _outcome_line(pane) == "✔ ran at 10:00:00 · 60 rows · 24.0ms"
        assert _tick_cell(pane, "who") == "[ ] ✔"
        inside = pane.content_region
        steps, view = pane.table.region, pane.query_one("#step-view").region
        # The list keeps its header and at least three steps; the output box
        # takes at most half the pane, and all of it is inside the pane.
        assert steps.height >= 4 and inside.contains_region(steps)
        assert 0 < view.height <= inside.height // 2 + 1 and inside.contains_region(view)
        # One line per row, never wrapped: the box scrolls sideways instead.
        output = pane.query_one("#step-output")
        assert output.virtual_size.height == len(WIDE.splitlines())
        assert output.virtual_size.width > view.width
        assert pane.query_one("#step-view").max_scroll_x > 0


async def test_a_refused_confirmation_says_refused_not_running(tmp_path):
    app, journal = _app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await _open_book(pilot, app)
        pane = await _run(pilot, app, "fine")
        await _confirm(pilot, app, "something else")
        await wait(pilot, lambda: any(e.kind == "command" for e in journal.events()), what="the refusal")
        await pilot.pause()
        assert "running" not in _outcome_line(pane)
        assert _outcome_line(pane).startswith("✖ refused at 10:00:00: not confirmed")
        assert "running" not in pane.query_one("#step-output").visual.plain
        assert _tick_cell(pane, "fine") == "[ ] ✖"


async def test_a_command_that_ran_keeps_its_exit_status_beside_the_step(tmp_path):
    app, journal = _app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await _open_book(pilot, app)
        pane = await _run(pilot, app, "fine")
        await _confirm(pilot, app, "fine")  # a command is confirmed by its step id
        await wait(pilot, lambda: "exit 0" in _outcome_line(pane), what="the command's outcome")
        assert _outcome_line(pane).startswith("✔ ran at 10:00:00 · exit 0")
        pane = await _run(pilot, app, "broken")
        await _confirm(pilot, app, "broken")
        await wait(pilot, lambda: "exit 3" in _outcome_line(pane), what="the failure")
        assert _outcome_line(pane).startswith("✖ failed at 10:00:00 · exit 3")
        # Both stay: in the list, and in the line under it when the cursor comes back.
        assert (_tick_cell(pane, "fine"), _tick_cell(pane, "broken")) == ("[ ] ✔", "[ ] ✖")
        pane.table.move_cursor(row=1)
        await pilot.pause()
        assert _outcome_line(pane).startswith("✔ ran at 10:00:00 · exit 0")
        pane.table.move_cursor(row=3)
        await pilot.pause()
        assert _outcome_line(pane) == "a check: space ticks it"
