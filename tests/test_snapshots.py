"""SVG snapshots of the whole screen, at 80x24 (tabs) and 160x48 (the grid
of six), for every shipped theme. Clocks are frozen, readings scripted and
toasts cleared, so a difference is a change in what the screen shows.

After an intended change: ``pytest tests/test_snapshots.py --snapshot-update``
and look at the new SVGs before committing them."""

from __future__ import annotations

import pytest

from test_layout import console_app, settle

SIZES = [(80, 24), (160, 48)]
THEMES = ["dark", "light", "war-room", "ansi"]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("theme", THEMES)
def test_whole_screen(snap_compare, theme, size):
    assert snap_compare(console_app(theme_name=theme), terminal_size=size, run_before=settle)
