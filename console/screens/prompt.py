"""A one-line question answered by typing: notes, corrections, titles.

Given ``choices`` (a step's ``{pid}``, offered from what the panes show), a
list under the line offers them, narrowed by what is typed; Down moves into
it and Enter picks one. Typing something else still answers.

A ``suggestion`` (the role prompt's "you") is shown greyed in the empty line
and is the answer to Enter there; typing replaces it, never appends to it.
Given ``validate``, an answer it finds a problem with keeps the prompt open
and the problem (what would be valid) is said under the line.
"""

from __future__ import annotations

from typing import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from console.screens.modal import Modal
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from console.text import inert, plain

SHOWN_CHOICES = 50


class Prompt(Modal[str | None]):
    """Ask for one line; dismisses with the text, or None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]
    DEFAULT_CSS = """
    Prompt { align: center middle; }
    Prompt > Vertical { width: 80%; max-width: 100; height: auto; border: round $primary; padding: 1 2;
                        background: $surface; }
    Prompt Label { width: 100%; }
    Prompt .hint { color: $text-muted; }
    Prompt #problem { color: $error; display: none; }
    Prompt OptionList { height: auto; max-height: 12; margin-top: 1; }
    """

    def __init__(self, question: str, value: str = "", hint: str = "", placeholder: str = "",
                 choices: list[tuple[str, str]] | None = None, suggestion: str = "",
                 validate: Callable[[str], str | None] | None = None,
                 choices_hint: str = "from the panes (Down to choose, Enter to pick):") -> None:
        super().__init__()
        self.question, self.value, self.hint = question, value, hint
        self.placeholder = placeholder or suggestion
        self.choices = list(choices or ())
        self.suggestion, self.validate, self.choices_hint = suggestion, validate, choices_hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(plain(self.question, "bold"))
            yield Input(value=self.value, placeholder=self.placeholder, id="answer", select_on_focus=False)
            yield Label("", id="problem")
            if self.hint:
                yield Label(plain(self.hint), classes="hint")
            if self.choices:
                yield Label(plain(self.choices_hint), classes="hint")
                yield OptionList(id="choices")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._offer(self.value)

    def _offer(self, typed: str) -> None:
        if not self.choices:
            return
        wanted = typed.strip().casefold()
        shown = [(value, what) for value, what in self.choices
                 if not wanted or wanted in value.casefold() or wanted in what.casefold()][:SHOWN_CHOICES]
        options = self.query_one("#choices", OptionList)
        options.clear_options()
        # The value travels as the option's index into self.choices, never as markup.
        index = {value: i for i, (value, _) in enumerate(self.choices)}
        options.add_options([Option(plain(f"{inert(value, 60)}  {inert(what, 120)}", limit=200),
                                    id=str(index[value])) for value, what in shown])

    def on_input_changed(self, event: Input.Changed) -> None:
        self._offer(event.value)

    def on_key(self, event) -> None:
        if event.key == "down" and self.focused is self.query_one(Input) and self.choices:
            options = self.query_one("#choices", OptionList)
            if options.option_count:
                event.stop()
                options.focus()
                options.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.answer(self.choices[int(event.option.id or 0)][0])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.answer(event.value if event.value.strip() or not self.suggestion else self.suggestion)

    def answer(self, text: str) -> None:
        """Dismiss with ``text``, unless ``validate`` says what is wrong with it."""
        problem = self.validate(text) if self.validate is not None else None
        if problem:
            shown = self.query_one("#problem", Label)
            shown.update(plain("✖ " + problem))
            shown.display = True
            self.query_one(Input).focus()
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
