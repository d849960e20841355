"""Themes: the shipped ones, user themes, a broken theme file falling back
with a located message, per-environment themes, NO_COLOR, and the config's
keymap checked as path:line."""

from __future__ import annotations

import pytest
from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.widgets import Static

from console import config, themes
from console.readings import STATE_MARK
from console.sources.base import State
from console.widgets.pane import LivePane
from console.located import Invalid
from test_layout import CONFIG, console_app, settle

SHIPPED = {"dark", "light", "war-room", "ansi"}


def test_shipped_themes_load():
    found, problems = themes.discover(themes.SHIPPED)
    assert set(found) == SHIPPED and problems == []
    assert found["light"].dark is False


def test_ansi_theme_uses_only_the_terminals_16_colours():
    spec = themes.read(themes.SHIPPED / "ansi.yaml")
    assert spec.ansi
    colours = list(spec.colors.values()) + [v for k, v in spec.variables.items() if not k.endswith("-style")]
    assert colours and all(c.startswith("ansi_") for c in colours)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_theme_sets_the_state_colours(name):
    spec = themes.read(themes.SHIPPED / f"{name}.yaml")
    assert {"state-ok", "state-warning", "state-critical", "state-unreachable", "state-stale"} <= set(spec.variables)


def _user_theme(tmp_path, monkeypatch, text: str, name: str = "mine.yaml"):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    folder = tmp_path / "incident-console" / "themes"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


async def test_a_user_theme_is_offered_and_used(tmp_path, monkeypatch):
    _user_theme(tmp_path, monkeypatch, "name: night-shift\ncolors:\n  primary: '#884400'\n"
                                       "variables:\n  state-critical: '#ff00ff'\n")
    app = console_app(theme_name="night-shift")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "night-shift"
        assert app.get_css_variables()["state-critical"] == "#ff00ff"


async def test_a_broken_theme_file_falls_back_to_the_default_with_a_located_message(tmp_path, monkeypatch):
    path = _user_theme(tmp_path, monkeypatch, "name: broken\ncolors:\n  primary: '#123456'\n"
                                              "  warning: not-a-colour\n")
    app = console_app(theme_name="broken")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "dark"
        messages = [n.message for n in app._notifications]
        assert f"{path}:4: 'not-a-colour' is not a colour" in messages
        assert any("no theme named 'broken'; using 'dark'" in m for m in messages)


def test_theme_file_problems_carry_lines(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("name: t\ndark: maybe\ncolors:\n  primary: '#fff'\n  sparkle: '#000'\nextra: 1\n")
    with pytest.raises(Invalid) as raised:
        themes.read(path)
    assert str(raised.value).splitlines() == [
        f"{path}:2: 'dark' must be true or false",
        f"{path}:5: unknown colour 'sparkle' (primary, secondary, warning, error, success, accent, "
        "foreground, background, surface, panel, boost)",
        f"{path}:6: unknown key 'extra' (name, dark, ansi, colors, variables)",
    ]


@pytest.mark.parametrize("name", sorted(SHIPPED))
async def test_theme_chosen_by_name(name):
    app = console_app(theme_name=name)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == name
        assert name in app.available_themes and "textual-dark" in app.available_themes  # palette lists both


async def test_the_environment_can_choose_its_theme_and_banner_label():
    text = CONFIG.replace("{name: production, banner: red}",
                          "{name: production, banner: red, theme: war-room, label: PROD EU}") + "theme: light\n"
    cfg = config.parse(text, "t.yaml", env={})
    assert cfg.chosen_theme == "war-room"
    app = console_app(text, theme_name=cfg.theme)  # the CLI passes --theme or the top-level theme
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "war-room"
        assert app.query_one("#header")._shown.plain.startswith(" PROD EU ")


async def test_no_color_is_respected_and_states_still_read(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = console_app(theme_name="war-room")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.no_color
        screen = app.export_screenshot()
        assert "✖&#160;crit" in screen or "✖ crit" in screen  # the critical PostgreSQL, in words
        assert "●&#160;ok" in screen or "● ok" in screen


def test_keymap_in_the_config_is_checked_with_lines():
    text = "keymap:\n  zoom: f5\n  zooom: f6\n  quit: ctrl+nope+q\n  help: 3\n"
    with pytest.raises(Invalid) as raised:
        config.parse(text, "c.yaml", env={})
    assert str(raised.value).splitlines() == [
        "c.yaml:3: unknown binding id 'zooom' (did you mean 'zoom'?)",
        "c.yaml:4: keymap 'quit': 'ctrl+nope+q': unknown modifier 'nope' (ctrl, shift, alt, meta, super, hyper)",
        "c.yaml:5: keymap 'help' must be a key string such as 'ctrl+n'",
    ]
    assert config.parse("keymap:\n  zoom: f5\n  incident.note: 'n, ctrl+n'\n", "c.yaml", env={}).keymap == (
        ("zoom", "f5"), ("incident.note", "n,ctrl+n"))


def _state_marks(app) -> list[tuple[State, Style]]:
    """Every state mark the panes show (their summaries and their tables), with its Rich style."""
    by_mark = {mark: state for state, mark in STATE_MARK.items()}
    found = []
    for pane in app.query(LivePane):
        summary = pane.query_one(".summary", Static).content
        if isinstance(summary, Text):
            for span in summary.spans:
                head = summary.plain[span.start:span.end]
                found += [(state, span.style) for mark, state in by_mark.items() if head.startswith(mark)]
        for row in range(pane.table.row_count):
            found += [(by_mark[cell.plain], cell.style) for cell in pane.table.get_row_at(row)
                      if isinstance(cell, Text) and cell.plain in by_mark]
    return [(state, Style.parse(style) if isinstance(style, str) else style) for state, style in found]


def _theme_state_colour(name: str, state: State):
    spec = themes.read(themes.SHIPPED / f"{name}.yaml")
    return Color.parse(spec.variables[f"state-{state.value}"]).rich_color


def _assert_marks_in(app, name: str) -> None:
    marks = _state_marks(app)
    assert {State.OK, State.CRITICAL} <= {state for state, _ in marks}  # the scripted readings
    for state, style in marks:
        assert style.color == _theme_state_colour(name, state), (name, state, style)


@pytest.mark.parametrize("name", sorted(SHIPPED))
async def test_panes_draw_states_in_the_themes_own_colours(name):
    app = console_app(theme_name=name)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        _assert_marks_in(app, name)


async def test_a_theme_switch_recolours_the_panes_without_a_new_reading():
    app = console_app(theme_name="dark")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        readings = {id(s) for pane in app.query(LivePane) for s in pane.snapshots.values()}
        _assert_marks_in(app, "dark")
        app.theme = "light"  # what the palette's theme switcher does
        await pilot.pause()
        await pilot.pause()
        assert {id(s) for pane in app.query(LivePane) for s in pane.snapshots.values()} == readings
        _assert_marks_in(app, "light")
