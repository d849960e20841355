"""Layouts at any terminal size, zoom, pane jumps, `/` filter, `?` help, `:`
palette, and a key rebound from the config's keymap (Pilot)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from textual.command import CommandPalette
from textual.widgets import Input

from console import config
from console.app import IncidentConsole
from console.screens.main import GRID_ORDER, PANES
from console.keymap import BINDING_IDS
from console.screens.help import HelpScreen
from scripted import ScriptedSource

FROZEN = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
CONFIG = ("refresh: 3600\nenvironment: {name: production, banner: red}\n"
          "redis:\n  - name: cache\n    url: redis://127.0.0.1:1/0\n")


class FrozenSource(ScriptedSource):
    """Readings taken at the frozen time, so their age never depends on
    when the test runs."""

    async def poll(self):
        return replace(await super().poll(), taken_at=FROZEN)


def scripted_sources() -> list[ScriptedSource]:
    """Fixed readings: one of each kind, PostgreSQL past its critical limit."""
    return [
        FrozenSource("http", "checkout-api", metrics={"status_code": 200, "latency_ms": 12.0}),
        FrozenSource("http", "payments-api", metrics={"status_code": 200, "latency_ms": 31.0}),
        FrozenSource("errors", "checkout-api", metrics={"error_ratio": 0.002, "request_rate": 20.0,
                                                          "p95_latency_s": 0.08}),
        FrozenSource("postgres", "primary", metrics={
            "connections_total": 38, "max_connections": 40, "connections_ratio": 0.95,
            "connections_by_state": {"idle": 30, "active": 8}, "idle_in_transaction": 0,
            "blocked_sessions": 0, "longest_transaction_s": 3.0}),
        FrozenSource("redis", "cache", metrics={"connected_clients": 5, "maxclients": 100, "hit_rate": 0.5,
                                                  "used_memory": 1048576, "maxmemory": 0, "ops_per_sec": 12}),
    ]


def console_app(text: str = CONFIG, **kwargs) -> IncidentConsole:
    cfg = config.parse(text, "t.yaml", env={})
    return IncidentConsole(cfg, sources=scripted_sources(), clock=lambda: FROZEN, **kwargs)


async def settle(pilot, timeout: float = 5.0) -> None:
    """Every source read, playbooks loaded, toasts gone: a still screen."""
    app = pilot.app
    deadline = asyncio.get_running_loop().time() + timeout
    while len(app.session.latest) < 5 or app.session.desk is None:
        assert asyncio.get_running_loop().time() < deadline, "sources never answered"
        await pilot.pause(0.05)
    await pilot.pause(0.1)
    app.clear_notifications()
    app._tick()
    for box in app.query(Input):
        box.cursor_blink = False
    await pilot.pause()


def shown(app) -> set[str]:
    return {pane_id for pane_id in PANES if app.query_one(f"#{pane_id}").region.area > 0}


async def test_full_grid_shows_all_six_panes_at_160x48():
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert shown(app) == set(PANES)
        assert not app.query_one("#pane-tabs").display
        regions = [app.query_one(f"#{p}").region for p in GRID_ORDER]
        assert all(r.width >= 50 and r.height >= 20 for r in regions)
        assert not any(a.overlaps(b) for i, a in enumerate(regions) for b in regions[i + 1:])


async def test_80x24_shows_one_pane_as_tabs_and_every_pane_is_reachable():
    app = console_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.query_one("#pane-tabs").display
        for number, pane_id in enumerate(PANES, 1):
            await pilot.press(str(number))
            await pilot.pause()
            assert shown(app) == {pane_id}
            pane = app.query_one(f"#{pane_id}")
            assert pane.region.width == 80 and pane.region.height >= 15
            assert app.focused in pane.query("*")
        await pilot.press("right_square_bracket")  # next pane wraps around
        await pilot.pause()
        assert shown(app) == {"services"}


async def test_resizing_re_lays_out():
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert len(shown(app)) == 1
        await pilot.resize_terminal(130, 40)
        await pilot.pause(0.2)
        assert shown(app) == set(PANES)


async def test_critical_pane_is_marked_in_its_tab():
    app = console_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app._tick()
        assert str(app.query_one("#tab-postgres").label) == "3 PostgreSQL ✖"
        assert str(app.query_one("#tab-redis").label) == "4 Redis"


async def test_zoom_a_pane_to_full_screen_and_back():
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("4", "z")
        await pilot.pause()
        assert shown(app) == {"redis"}
        assert app.query_one("#redis").region.width == 160
        await pilot.press("z")
        await pilot.pause()
        assert shown(app) == set(PANES)


async def test_slash_filters_the_focused_table():
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        table = app.query_one("#services").table
        assert table.row_count == 2
        await pilot.press("1", "slash")
        assert app.focused.id == "filter"
        await pilot.press(*"PAY")
        assert table.row_count == 1 and table.get_row_at(0)[1].plain == "payments-api"
        assert "/PAY" in app.query_one("#services").border_title
        await pilot.press("enter")  # keeps the filter, back to the table
        assert app.focused is table and table.row_count == 1
        app.query_one("#services").take(next(iter(app.query_one("#services").snapshots.values())))
        assert table.row_count == 1  # a new reading stays filtered
        await pilot.press("slash", "escape")  # Esc clears it
        assert table.row_count == 2 and app.focused is table


async def test_help_lists_the_focused_pane_and_the_app_and_the_palette():
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("6", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.text().plain
        for words in ("6 Timeline", "Correct", "Strike", "Zoom", "Filter", "Refresh", "Help",
                      "Declare incident", "Resolve incident", "Export post-mortem", "Go to pane 3 PostgreSQL"):
            assert words in text, words
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_colon_opens_the_command_palette():
    app = console_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("colon")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)


async def test_a_key_rebound_in_the_config_works_and_shows_in_help():
    app = console_app(CONFIG + "keymap:\n  zoom: f5\n  pane.redis: ctrl+r,4\n")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("z")
        await pilot.pause()
        assert shown(app) == set(PANES)  # z is no longer zoom
        await pilot.press("ctrl+r", "f5")
        await pilot.pause()
        assert shown(app) == {"redis"}
        await pilot.press("question_mark")
        assert "f5" in app.screen.text().plain


def test_every_binding_has_an_id_the_keymap_knows():
    from console.screens import confirm, picker, prompt, update
    from console.screens.entry import EntryScreen
    from console.screens.detail import DetailScreen
    from console.screens.help import HelpScreen
    from console.screens.moment import MomentScreen
    from console.widgets.pane import LivePane
    from console.widgets.playbook import PlaybookPane
    from console.widgets.timeline import TimelinePane

    ids = []
    from console.screens.main import MainScreen

    for owner in (IncidentConsole, MainScreen, PlaybookPane, TimelinePane, HelpScreen, confirm.ConfirmTyped,
                  picker.PlaybookPicker, picker.Choices, EntryScreen, MomentScreen, prompt.Prompt, update.UpdateComposer, DetailScreen, LivePane,
                  *LivePane.__subclasses__()):
        for binding in owner.__dict__.get("BINDINGS", ()):
            assert binding.id, f"{owner.__name__}: {binding.key} has no id"
            ids.append(binding.id)
    assert sorted(ids) == sorted(set(ids)), "duplicate binding ids"
    assert set(ids) == set(BINDING_IDS)


def test_animations_are_off():
    assert console_app().animation_level == "none"


@pytest.mark.slow
def test_console_quits_cleanly_when_the_terminal_hangs_up(tmp_path):
    """The SSH session drops: the pty's master closes, the kernel sends
    SIGHUP; the console leaves through its own quit (journal closed) and
    leaves nothing running."""
    import os
    import pty
    import select
    import sys
    import time

    cfg = tmp_path / "c.yaml"
    cfg.write_text("environment: {name: staging}\n")
    journal = tmp_path / "incident.json"
    pid, fd = pty.fork()
    if pid == 0:
        env = {**os.environ, "TERM": "xterm-256color", "XDG_CONFIG_HOME": str(tmp_path)}
        os.execvpe(sys.executable, [sys.executable, "-m", "console", "--config", str(cfg),
                                    "--incident", str(journal)], env)
    seen = b""
    deadline = time.monotonic() + 20
    while b"Quit" not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    assert b"Quit" in seen, "the console never drew its footer"
    os.close(fd)  # the terminal goes away
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError("the console kept running after the terminal hung up")
    # 0: it quit through the app (as `q` does); SIGHUP unwinding would be 129.
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_readme_names_every_binding_id():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [i for i in BINDING_IDS if f"`{i}`" not in readme]
    assert not missing, f"README.md does not list the binding ids {missing}"
