"""The focused pane's title is readable in every shipped theme (issue 13: the
light theme drew it near-black on dark blue): its colours as drawn on screen
reach the WCAG AA contrast of 4.5:1."""

from __future__ import annotations

import pytest
from rich.color import Color as RichColor
from rich.terminal_theme import TerminalTheme

from console import themes
from test_layout import console_app, settle

SHIPPED = sorted(themes.discover(themes.SHIPPED)[0])
# The ANSI theme leaves the palette to the terminal: judge it on xterm's own
# colours, on a dark terminal (the theme says dark: true).
XTERM = TerminalTheme(
    (0, 0, 0), (229, 229, 229),
    [(0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205),
     (229, 229, 229)],
    [(127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255),
     (255, 255, 255)])


def luminance(rgb) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = rgb
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(foreground, background) -> float:
    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_is_computed_as_wcag_says():
    assert round(contrast((0, 0, 0), (255, 255, 255)), 1) == 21.0
    assert round(contrast((0x77, 0x77, 0x77), (255, 255, 255)), 2) == 4.48


def rgb(colour: RichColor, foreground: bool):
    return tuple(colour.get_truecolor(XTERM, foreground=foreground))


@pytest.mark.parametrize("theme", SHIPPED)
@pytest.mark.parametrize("pane_id", ["services", "playbook"])
async def test_the_focused_pane_title_reaches_4_5_to_1(theme, pane_id):
    app = console_app(theme_name=theme)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.main.action_focus_pane(pane_id)
        await pilot.pause()
        await pilot.pause()
        pane = app.query_one(f"#{pane_id}")
        assert pane.has_focus_within
        top = app.screen._compositor.render_strips()[pane.region.y]
        title = str(pane.border_title).split(" · ")[0]
        drawn = [segment for segment in top if title in segment.text]
        assert drawn, f"the title {title!r} is not drawn in {theme}"
        style = drawn[0].style
        # Both colours named: a terminal default could be anything.
        assert style.color is not None and style.bgcolor is not None
        assert not style.color.is_default and not style.bgcolor.is_default
        ratio = contrast(rgb(style.color, True), rgb(style.bgcolor, False))
        assert ratio >= 4.5, f"{theme}: the focused title is {style.color.name} on {style.bgcolor.name}, {ratio:.2f}:1"
