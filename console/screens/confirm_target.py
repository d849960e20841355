"""The typed confirmation of a step whose confirmation is its own value
(``confirm: '{pid}'``): the value is asked once, here, not once to fill the
step and again to confirm it.

As it is typed (or put in the line from the panes' list: ↓, then Enter),
what it would hit is shown (the session that pid is, from the last refresh)
above exactly what runs. Picking from the list only fills the line: the
operator still presses Enter on the line, with the target in front of them.
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
    """Dismisses with the value typed (the runner checks it), or None."""

    # Fits 80x24 with the session, the line and a few choices; the box never outgrows the screen.
    DEFAULT_CSS = """
    ConfirmTarget > Vertical#confirm-target { border: heavy $error; padding: 0 1; max-height: 100%; }
    ConfirmTarget #what { margin: 1 0 0 0; padding: 0 1; background: $boost; max-height: 40vh; overflow-y: auto; }
    ConfirmTarget OptionList#choices { max-height: 6; margin-top: 0; }
    """

    def __init__(self, title: str, name: str, shown_for: Callable[[str], Sequence[str]],
                 choices: list[tuple[str, str]] | None = None) -> None:
        super().__init__(f"{title}: type the {name.replace('_', ' ')} to act on; Enter runs it, Escape cancels",
                         choices=choices, choices_hint="from the last refresh (Down to choose, Enter puts it in "
                         "the line):", validate=self._problem)
        self.name_asked, self.shown_for = name, shown_for

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-target"):
            yield Label(plain(self.question, "bold"))
            yield Static(shown_exactly(self._what("")), id="what")
            yield Input(id="answer", select_on_focus=False)
            yield Label("", id="problem")
            if self.choices:
                yield Label(plain(self.choices_hint), classes="hint")
                yield OptionList(id="choices")

    def _what(self, value: str) -> Sequence[str]:
        if not value.strip():
            return [f"what the {self.name_asked.replace('_', ' ')} would hit is shown here as you type it"]
        return self.shown_for(value.strip())

    def _problem(self, value: str) -> str | None:
        return None if value.strip() else f"type the {self.name_asked.replace('_', ' ')} first"

    def on_input_changed(self, event: Input.Changed) -> None:
        # Prompt's own handler runs after this one (Textual calls each class's): it narrows the list.
        self.query_one("#what", Static).update(shown_exactly(self._what(event.value)))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        # Fills the line, runs nothing: Enter on the line, with the target shown, does.
        event.stop()
        event.prevent_default()  # not Prompt's handler, which answers with the pick
        line = self.query_one(Input)
        line.value = self.choices[int(event.option.id or 0)][0]
        line.cursor_position = len(line.value)
        line.focus()

    def answer(self, text: str) -> None:
        super().answer(text.strip())
