"""The theme's colours as Rich styles, for the text panes and dialogs draw.

CSS reaches a theme colour by name (``$state-ok``); a ``rich.text.Text`` cannot,
and a fixed Rich name ("green", "yellow") reads badly on a light theme. So the
styles are built here from ``app.theme_variables``, and every widget that draws
coloured text redraws when the theme changes (:func:`follow_theme`): a switch
from the palette recolours the screen at once, not at the next reading.
"""

from __future__ import annotations

from typing import Callable, Mapping

from rich.color import Color as RichColor
from rich.style import Style
from textual.color import Color, ColorParseError
from textual.dom import DOMNode

from console.vocabulary import State

STATE_VARIABLE = {
    State.OK: "state-ok",
    State.UNKNOWN: "state-unknown",
    State.WARNING: "state-warning",
    State.CRITICAL: "state-critical",
    State.UNREACHABLE: "state-unreachable",
}
# The worse states are bold as well: colour is never the only signal.
BOLD_STATES = {State.CRITICAL, State.UNREACHABLE}
# The terminal colours black text reads on (green, yellow, cyan, white and
# their bright forms): their RGB stand-ins are too dark to judge by.
LIGHT_ANSI = {2, 3, 6, 7, 10, 11, 14, 15}


def _colour(value: str | None) -> Color | None:
    if not value:
        return None
    for candidate in (value, value.split()[0]):  # "#ffa62b 50%": the colour, without its alpha
        try:
            return Color.parse(candidate)
        except ColorParseError:
            continue
    return None  # "auto 87%" and the like: no colour of its own


class Colours:
    """Rich styles for one theme's variables."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self.variables = dict(variables)

    def rich(self, variable: str) -> RichColor | None:
        colour = _colour(self.variables.get(variable))
        return None if colour is None else colour.rich_color

    def style(self, variable: str, bold: bool = False) -> Style:
        """Text in the colour of theme variable ``variable`` (e.g. ``state-warning``)."""
        return Style(color=self.rich(variable), bold=bold or None)

    def on(self, variable: str) -> Style:
        """Bold text on the colour of ``variable``, black or white, whichever reads."""
        colour = _colour(self.variables.get(variable))
        if colour is None:
            return Style(bold=True, reverse=True)
        if colour.ansi is not None:  # a 16-colour theme stays within the terminal's own colours
            text = RichColor.parse("black" if colour.ansi in LIGHT_ANSI else "bright_white")
        else:
            light = colour.brightness >= 0.5
            text = RichColor.parse("#000000" if light else "#ffffff")
        return Style(color=text, bgcolor=colour.rich_color, bold=True)

    def state(self, state: State) -> Style:
        return self.style(STATE_VARIABLE[state], bold=state in BOLD_STATES)


_NONE = Colours({})
# The app replaces its variables with a new dict on every theme change, so the
# dict itself tells whether the styles built last are still the theme's; it is
# held here so that its id cannot be reused by another.
_last: tuple[dict, Colours] = ({}, _NONE)


def of(node: DOMNode) -> Colours:
    """The colours of the theme ``node``'s app shows now (none outside an app)."""
    global _last
    try:
        variables = node.app.theme_variables
    except RuntimeError:  # NoActiveAppError: not in a running app (a pane built in a unit test)
        return _NONE
    if variables is not _last[0]:
        _last = (variables, Colours(variables))
    return _last[1]


def follow_theme(node: DOMNode, redraw: Callable[[], object]) -> None:
    """Call ``redraw`` after every theme change; call from ``on_mount``.

    The signal is published after the app's variables are refreshed, and the
    subscription ends when ``node`` is removed."""
    node.app.theme_changed_signal.subscribe(node, lambda _theme: redraw())
