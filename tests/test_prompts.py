"""Prompts that do what is typed and say what they want (issue 13).

The role prompt was prefilled with the operator's name and typing appended
to it (`rootalice is commander`); an invalid severity closed the prompt; a
step by pid asked for the pid twice and never showed the session it would
hit; a terminate-by-state step showed no count.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from textual.widgets import Input, Label, OptionList, Static

from console import config
from console.app import IncidentConsole
from console.incident.journal import Journal
from console.incident.state import Incident
from console.screens.prompt import Prompt
from console.vocabulary import Snapshot, State
from console.widgets.playbook import PlaybookPane
from test_drill_screen import drill_app, ready
from test_layout import FROZEN

CFG = config.parse("refresh: 5\n", "t.yaml", env={})
BOOK = "postgres-pool-exhausted"
SESSIONS = [
    {"pid": 202, "state": "idle in transaction", "state_s": 700.0, "xact_s": 705.0, "query": "UPDATE orders",
     "user": "bob", "application": "worker", "database": "shop", "client": "10.0.0.9:5123"},
    {"pid": 203, "state": "idle in transaction", "state_s": 900.0, "query": "[bold]x\x1b[31m", "user": "eve",
     "application": "cron", "database": "shop"},
    {"pid": 204, "state": "idle in transaction", "state_s": 30.0, "query": "SELECT 1", "user": "bob",
     "application": "worker", "database": "shop"},
    {"pid": 101, "state": "active", "state_s": 5.0, "query_s": 5.0, "query": "SELECT slow()", "user": "alice",
     "application": "api", "database": "shop"},
]


def _app(tmp_path):
    journal = Journal(tmp_path / "i.json", operator={"user": "alice"})
    return IncidentConsole(CFG, sources=[], journal=journal), journal


def _problem(screen) -> str:
    label = screen.query_one("#problem", Label)
    return str(label.render()) if label.display else ""


async def test_the_role_prompt_suggests_the_operator_and_typing_replaces_it(tmp_path):
    app, journal = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.action_role("commander")
        await pilot.pause()
        line = app.screen.query_one(Input)
        assert line.value == "" and line.placeholder == "alice"
        await pilot.press(*"bob", "enter")
        await pilot.pause()
        app.main.action_role("scribe")
        await pilot.pause()
        await pilot.press("enter")  # the suggestion
        await pilot.pause()
        app.main.action_role("communications")
        await pilot.pause()
        await pilot.press("-", "enter")  # nobody
        await pilot.pause()
    roles = Incident.from_events(journal.events(), datetime.now(timezone.utc)).roles
    assert dict(roles) == {"commander": "bob", "scribe": "alice"}


async def test_an_invalid_severity_keeps_the_prompt_open_and_says_what_is_valid(tmp_path):
    app, journal = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.session.declare("P1 Checkout down")
        app.main.action_severity()
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        listed = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any(s.startswith("P1") and "● now" in s for s in listed) and any(s.startswith("SEV4") for s in listed)
        await pilot.press(*"high", "enter")
        await pilot.pause()
        assert isinstance(app.screen, Prompt)
        assert "P0–P3" in _problem(app.screen) and "SEV1–SEV4" in _problem(app.screen)
        await pilot.press(*["backspace"] * 4, *"p0", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, Prompt)
    assert [e.data["severity"] for e in journal.events() if e.kind == "incident.severity"] == ["P0"]


async def test_a_declaration_with_a_severity_that_is_none_is_not_taken_as_a_title(tmp_path):
    app, journal = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("D", *"P7 Checkout down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, Prompt) and "P0–P3" in _problem(app.screen)
        assert journal.events() == ()
        await pilot.press("home", "delete", "delete", *"P1", "enter")
        await pilot.pause()
    incident = Incident.from_events(journal.events(), datetime.now(timezone.utc))
    assert (incident.severity, incident.title) == ("P1", "Checkout down")


async def _step(pilot, app, step_id: str) -> None:
    app.main.start_playbook(BOOK)
    await pilot.pause()
    pane = app.query_one(PlaybookPane)
    pane.table.focus()
    pane.table.move_cursor(row=[s.id for s in app.session.desk.by_id[BOOK].steps].index(step_id))
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()


def _pool_app(tmp_path):
    """The shipped pool playbook over a PostgreSQL-shaped source showing SESSIONS."""
    journal = Journal(tmp_path / "i.json", operator={"user": "oncall"})
    app, pg = drill_app(journal=journal)
    pg.details = {"sessions": SESSIONS}
    return app, pg, journal


def _what(screen) -> str:
    return str(screen.query_one("#what", Static).render())


async def test_a_step_by_pid_asks_for_it_once_and_shows_the_session_it_will_hit(tmp_path):
    app, pg, journal = _pool_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await _step(pilot, app, "terminate-one-backend")
        confirmation = app.screen
        await pilot.press(*"203")
        await pilot.pause()
        shown = _what(app.screen)
        assert app.screen is confirmation  # asked once: the confirmation itself, not "which pid?" first
        assert "pid 203 is this session" in shown and "eve" in shown and "cron" in shown
        assert "idle in transaction for 15m" in shown and "[bold]x" in shown and "\x1b" not in shown
        assert "terminate_backend pid 203 on primary" in shown
        await pilot.press(*["backspace"] * 3, *"9999")
        await pilot.pause()
        assert "not among the 4 sessions of the last refresh (10:00:00 UTC" in _what(app.screen)
        # A pick from the list fills the line and runs nothing; nor does Enter after it:
        # the pid must be typed again, on a line no list fills.
        await pilot.press(*["backspace"] * 4, "2", "0", "2", "down", "enter")
        await pilot.pause()
        assert app.screen is confirmation and app.screen.query_one("#answer", Input).value == "202"
        assert "bob" in _what(app.screen) and pg.signalled == []
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.screen is confirmation and pg.signalled == []
        assert "picked from the list, not typed" in _problem(app.screen)
        await pilot.press(*"202", "enter")  # typed: runs
        await pilot.pause(0.2)
        assert app.screen is app.main
    actions = [e for e in journal.events() if e.kind == "action"]
    assert len(pg.signalled) == 1 and pg.signalled[0][1] == [202]
    assert actions[0].data["ok"] is True and actions[0].data["confirmed_by"] == "202"


async def test_a_pid_picked_from_the_list_never_runs_without_being_typed(tmp_path):
    # Red team: Down, Enter, Enter picked the first pid and terminated it, nothing typed.
    app, pg, journal = _pool_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await _step(pilot, app, "terminate-one-backend")
        confirmation = app.screen
        await pilot.press("down", "enter", "enter", "enter")
        await pilot.pause(0.2)
        assert app.screen is confirmation and pg.signalled == []
        picked = app.screen.query_one("#answer", Input).value
        assert picked and picked != "101" and f"pid {picked} is this session" in _what(app.screen)  # still shown
        # Picking again (Enter on a row) fills, never runs.
        app.screen.query_one("#answer", Input).focus()
        await pilot.press("down", "enter", "enter")
        await pilot.pause(0.2)
        assert app.screen is confirmation and pg.signalled == []
        # Typed again, but not the pid picked: the runner refuses it, and says so in the journal.
        await pilot.press(*"101", "enter")
        await pilot.pause(0.2)
    assert pg.signalled == [] and not [e for e in journal.events() if e.kind == "action" and e.data.get("ok")]
    refused = [e for e in journal.events() if e.kind == "action"]
    assert len(refused) == 1 and refused[0].data["ok"] is False and refused[0].data["confirmed_by"] == "101"
    assert "not confirmed" in refused[0].data["refused"]


async def test_a_pid_typed_by_hand_runs_on_enter(tmp_path):
    app, pg, journal = _pool_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await _step(pilot, app, "terminate-one-backend")
        await pilot.press(*"203", "enter")
        await pilot.pause(0.2)
        assert app.screen is app.main
    actions = [e for e in journal.events() if e.kind == "action"]
    assert pg.signalled[0][1] == [203] and actions[0].data["confirmed_by"] == "203"


async def test_a_terminate_by_state_step_counts_and_previews_the_sessions_at_the_last_refresh(tmp_path):
    from console.screens.confirm import ConfirmTyped

    app, pg, journal = _pool_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await _step(pilot, app, "terminate-idle-in-transaction")
        assert isinstance(app.screen, ConfirmTyped)
        shown = "\n".join(app.screen.what)
        assert "2 sessions matched at the last refresh (10:00:00 UTC" in shown
        assert "the count when it runs may differ" in shown
        assert "pid 202" in shown and "pid 203" in shown and "pid 204" not in shown and "pid 101" not in shown
        await pilot.press("escape")


def test_the_preview_says_when_the_reading_cut_the_list_and_filters_like_the_signal():
    from console.incident.targets import signal_preview

    snap = Snapshot("postgres", "primary", State.OK, FROZEN, metrics={"connections_total": 900},
                    details={"sessions": SESSIONS})
    lines = signal_preview({"state": "idle in transaction", "user": "bob"}, snap, "primary",
                           FROZEN + timedelta(seconds=4))
    assert lines[0].startswith("at least 2 sessions matched") and "4.0s ago" in lines[0]
    lines = signal_preview({"state": "idle in transaction", "older_than_s": 600, "pids": [203]}, snap, "primary",
                           FROZEN)
    assert lines[0].startswith("at least 1 session matched") and "pid 203" in lines[1]
    down = replace(snap, state=State.UNREACHABLE)
    assert "not known" in signal_preview({"pid": "1"}, down, "primary", FROZEN)[0]
    assert "no reading" in signal_preview({"pid": "1"}, None, "primary", FROZEN)[0]
