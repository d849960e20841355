"""From 80x24 up, the incident's state, the data's state and the main keys
stay on screen (issue 13): the header keeps severity, status, the next
update's countdown and the clock; the footer keeps Declare, Status, Update
and Help whichever pane has the focus; toasts are small, one at a time, and
cover no border (where a pane says ✖ unreachable or ◌ stale), no header,
no tab strip and no footer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from textual.geometry import Region
from textual.widgets._footer import FooterKey
from textual.widgets._toast import Toast, ToastRack

from console import config
from console.app import IncidentConsole
from console.incident.journal import Journal
from console.screens.main import PANES
from test_layout import CONFIG, FROZEN, scripted_sources, settle

SIZES = [(80, 24), (100, 30), (120, 40), (160, 48)]
TITLE = "Checkout API returns 502 for a third of all requests since the deploy"
MAIN_KEYS = ("D", "s", "u", "question_mark")


def _app(tmp_path, declared_ago: timedelta | None = timedelta(seconds=30), read_only=False) -> IncidentConsole:
    cfg = config.parse(CONFIG, str(tmp_path / "c.yaml"), env={})
    journal = Journal(tmp_path / "incident.json", operator={"user": "oncall", "ssh_client": "127.0.0.1"},
                      clock=lambda: FROZEN - (declared_ago or timedelta()))
    if declared_ago is not None:
        journal.append("incident.declared", title=TITLE, severity="P1")
        journal.append("incident.role", role="commander", person="alice")
    return IncidentConsole(cfg, sources=scripted_sources(), clock=lambda: FROZEN, journal=journal,
                           read_only=read_only)


def screen_lines(app) -> list[str]:
    return ["".join(segment.text for segment in strip) for strip in app.screen._compositor.render_strips()]


async def _ready(pilot) -> None:
    await settle(pilot)
    pilot.app.show_journal()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_header_keeps_severity_status_countdown_and_clock(tmp_path, size):
    app = _app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await _ready(pilot)
        top = screen_lines(app)[0]
        for part in ("PRODUCTION", " P1 ", "Investigating", "next update 14 min", "10:00 UTC"):
            assert part in top, f"{part!r} not in the header at {size}: {top!r}"
        assert "Checkout" in top  # the title, cut to the room left
        assert app.main.header._shown.cell_len <= size[0]
        if size[0] >= 120:
            assert "IC alice" in top


async def test_read_only_and_overdue_fit_in_80_columns(tmp_path):
    app = _app(tmp_path, declared_ago=timedelta(minutes=16), read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await _ready(pilot)
        top = screen_lines(app)[0]
        for part in ("PRODUCTION", "READ-ONLY", " P1 ", "Investigating", "OVERDUE 1 min", "10:00 UTC"):
            assert part in top, f"{part!r} not in {top!r}"


async def test_the_header_without_an_incident_says_how_to_declare_one(tmp_path):
    app = _app(tmp_path, declared_ago=None, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await _ready(pilot)
        top = screen_lines(app)[0]
        assert "READ-ONLY" in top and "10:00 UTC" in top and "D" in top.split("READ-ONLY")[1]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("pane", ["services", "playbook", "timeline"])
async def test_the_footer_keeps_the_main_keys_whatever_has_the_focus(tmp_path, size, pane):
    app = _app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await _ready(pilot)
        app.main.action_focus_pane(pane)
        await pilot.pause()
        await pilot.pause()
        keys = {key.key: key.region for key in app.screen.query(FooterKey)}
        for key in MAIN_KEYS:
            region = keys.get(key)
            assert region is not None, f"{key} is not in the footer"
            assert region.width > 0 and region.right <= size[0], f"{key} is cut off at {size} ({pane}): {region}"
        bottom = screen_lines(app)[-1]
        for words in ("D Declare", "s Status", "u Update", "? Help"):
            assert words in bottom, f"{words!r} not in the footer at {size} ({pane}): {bottom!r}"


def _borders(app) -> list[Region]:
    """The rows and columns where each pane on screen draws its border."""
    rings = []
    for pane_id in PANES:
        region = app.query_one(f"#{pane_id}").region
        if region.area:
            x, y, width, height = region
            rings += [Region(x, y, width, 1), Region(x, y + height - 1, width, 1),
                      Region(x, y, 1, height), Region(x + width - 1, y, 1, height)]
    return rings


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_toasts_are_small_one_at_a_time_and_cover_no_state(tmp_path, size):
    app = _app(tmp_path)
    async with app.run_test(size=size, notifications=True) as pilot:
        await _ready(pilot)
        width, height = size
        for n in range(6):
            app.notify(f"message {n}: " + "a toast long enough to wrap over several lines " * 3,
                       title="refused" if n % 2 else "", severity="error" if n == 5 else "information",
                       timeout=30 if n == 2 else 10)
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        rack = app.screen.get_child_by_type(ToastRack)
        toasts = list(rack.query(Toast))
        assert len(toasts) == 6
        drawn = "\n".join(screen_lines(app))
        assert "message 5" in drawn and not any(f"message {n}" in drawn for n in range(5))
        covered = Region.from_union([t.region for t in toasts])
        assert covered.height <= 4 and covered.width <= max(width * 0.5, 50)
        assert covered.bottom <= height - 2  # above the footer and the panes' bottom border
        keep_clear = [Region(0, 0, width, 1), Region(0, height - 1, width, 1), *_borders(app)]
        tabs = app.query_one("#pane-tabs")
        if tabs.display:
            keep_clear.append(tabs.region)
        for region in keep_clear:
            assert not covered.overlaps(region), f"a toast {covered} covers {region} at {size}"
        # The newest gone, the one still due shows again.
        toasts[-1]._expire()
        for toast in toasts[3:5]:
            toast._expire()
        await pilot.pause(0.2)
        drawn = "\n".join(screen_lines(app))
        assert "message 2" in drawn and "message 5" not in drawn


async def test_the_key_line_is_rebuilt_only_when_its_keys_change(tmp_path, monkeypatch):
    """Issue 16: Textual's Footer mounted all its keys again on every focus
    change and binding check (~20 ms and a full layout per key press). The
    panes whose keys are the same: nothing is rebuilt; a pane with other
    keys is."""
    from console.widgets.footer import KeyLine

    rebuilt = []
    real = KeyLine.recompose

    async def counting(self):
        rebuilt.append(self.screen.focused)
        return await real(self)

    monkeypatch.setattr(KeyLine, "recompose", counting)
    app = _app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await _ready(pilot)
        app.main.action_focus_pane("services")
        await pilot.pause()
        await pilot.pause()
        rebuilt.clear()
        for pane in ("errors", "redis", "services", "errors"):  # the same keys in the footer
            app.main.action_focus_pane(pane)
            await pilot.pause()
        for _ in range(3):
            await pilot.press("down")
        await pilot.pause()
        assert rebuilt == []
        app.main.action_focus_pane("timeline")
        await pilot.pause()
        await pilot.pause()
        assert rebuilt, "another pane's keys never reached the key line"
        bottom = screen_lines(app)[-1]
        assert "Correct" in bottom or "Strike" in bottom, bottom
