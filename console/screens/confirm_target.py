"""The typed confirmation of a step whose confirmation is its own value
(``confirm: '{pid}'``): the value is asked once, here, not once to fill the
step and again to confirm it.

As it is typed (or put in the line from the panes' list: ↓, then Enter),
what it would hit is shown (the session that pid is, from the last refresh)
above exactly what runs.

Typed by hand, the value is the typed confirmation, as for every other change
in the console. Picked from the list it is not: a pick fills the line and
opens a second line, which no list fills, where the value must be typed again
before Enter runs anything. Enter on a list row never runs anything, and
neither does Enter with that second line empty. The runner still compares
what was typed there with the value.
"""

from __future__ import annotations

from typing import Callable, Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label, OptionList, Static

from console.screens.confirm import shown_exactly
from console.screens.prompt import Prompt
from console.text import plain


class ConfirmTarget(Prompt):
    """Dismisses with (the value, the confirmation typed), which the runner
    checks, or None on Escape."""

    # Fits 80x24 with the session, the line and a few choices; the box never outgrows the screen.
    DEFAULT_CSS = """
    ConfirmTarget > Vertical#confirm-target { border: heavy $error; padding: 0 1; max-height: 100%; }
    ConfirmTarget #what { margin: 1 0 0 0; padding: 0 1; background: $boost; max-height: 40vh; overflow-y: auto; }
    ConfirmTarget OptionList#choices { max-height: 6; margin-top: 0; }
    ConfirmTarget #again-said, ConfirmTarget Input#again { display: none; }
    ConfirmTarget.picked #again-said, ConfirmTarget.picked Input#again { display: block; }
    """

    def __init__(self, title: str, name: str, shown_for: Callable[[str], Sequence[str]],
                 choices: list[tuple[str, str]] | None = None) -> None:
        super().__init__(f"{title}: type the {name.replace('_', ' ')} to act on; Enter runs it, Escape cancels",
                         choices=choices, choices_hint="from the last refresh (Down to choose, Enter puts it in "
                         "the line; a pick must still be typed to run):", validate=self._problem)
        self.name_asked, self.shown_for = name, shown_for
        self.picked = False  # the line was filled from the list since it was last empty

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-target"):
            yield Label(plain(self.question, "bold"))
            yield Static(shown_exactly(self._what("")), id="what")
            yield Input(id="answer", select_on_focus=False)
            yield Label("", id="again-said")
            yield Input(id="again", select_on_focus=False)
            yield Label("", id="problem")
            if self.choices:
                yield Label(plain(self.choices_hint), classes="hint")
                yield OptionList(id="choices")

    @property
    def _said(self) -> str:
        return self.name_asked.replace("_", " ")

    def _what(self, value: str) -> Sequence[str]:
        if not value.strip():
            return [f"what the {self._said} would hit is shown here as you type it"]
        return self.shown_for(value.strip())

    def _problem(self, value: str) -> str | None:
        return None if value.strip() else f"type the {self._said} first"

    def _say(self, problem: str, focus: Input) -> None:
        shown = self.query_one("#problem", Label)
        shown.update(plain("✖ " + problem))
        shown.display = True
        focus.focus()

    def _pick(self, picked: bool) -> None:
        self.picked = picked
        self.set_class(picked, "picked")
        again = self.query_one("#again", Input)
        again.value = ""
        if picked:
            value = self.query_one("#answer", Input).value.strip()
            self.query_one("#again-said", Label).update(plain(
                f"{value} was picked from the list: type the {self._said} again here to run it "
                "(a pick alone runs nothing):"))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "again":
            event.prevent_default()  # not Prompt's handler: what is typed here never narrows the list
            return
        # Prompt's own handler runs after this one (Textual calls each class's): it narrows the list.
        self.query_one("#what", Static).update(shown_exactly(self._what(event.value)))
        if self.picked and not event.value.strip():
            self._pick(False)  # emptied: what is typed from here on is typed

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        # Fills the line, runs nothing: the value must still be typed, on a line no list fills.
        event.stop()
        event.prevent_default()  # not Prompt's handler, which answers with the pick
        line = self.query_one("#answer", Input)
        line.value = self.choices[int(event.option.id or 0)][0]
        line.cursor_position = len(line.value)
        self._pick(True)
        self.query_one("#problem", Label).display = False
        self.query_one("#again", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.prevent_default()  # not Prompt's handler
        value = self.query_one("#answer", Input).value.strip()
        problem = self._problem(value)
        if problem:
            self._say(problem, self.query_one("#answer", Input))
            return
        if not self.picked:
            self.dismiss((value, value))  # typed by hand: the value is the typed confirmation
            return
        again = self.query_one("#again", Input)
        if not again.value.strip():
            self._say(f"{value} was picked from the list, not typed: type the {self._said} again to run it",
                      again)
            return
        self.dismiss((value, again.value.strip()))  # the runner checks it is the value
