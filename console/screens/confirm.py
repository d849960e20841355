"""Typed confirmation: a change to someone's production system needs the
target's name typed out, not a reflexive `y`.

What will run is shown exactly, line by line (the argv word by word, or the
script with each value as a reference and the values listed beside it), and
every line is inert text: a value is data here too, never markup or escapes.
"""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from console.screens.modal import Modal
from textual.widgets import Input, Label, Static

from console.text import inert, plain


class ConfirmTyped(Modal[str | None]):
    """Dismisses with what was typed (the caller checks it), or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]
    DEFAULT_CSS = """
    ConfirmTyped { align: center middle; }
    ConfirmTyped > Vertical { width: 90%; max-width: 110; height: auto; border: heavy $error; padding: 1 2;
                              background: $surface; }
    ConfirmTyped #what { margin: 1 0; padding: 0 1; background: $boost; max-height: 60vh; overflow-y: auto; }
    ConfirmTyped .match { color: $success; }
    ConfirmTyped .nomatch { color: $error; }
    """

    def __init__(self, title: str, what: str | Sequence[str], expected: str) -> None:
        super().__init__()
        self.title_text, self.expected = title, expected
        self.what = [what] if isinstance(what, str) else list(what)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(plain(self.title_text, "bold"))
            yield Static(shown_exactly(self.what), id="what")
            yield Label(plain(f"Type {self.expected!r} to confirm, Escape to cancel:"))
            yield Input(id="typed")
            yield Label("", id="feedback")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        ok = event.value.strip() == self.expected
        feedback = self.query_one("#feedback", Label)
        feedback.update(plain("✔ matches: Enter runs it" if ok else "✖ does not match yet"))
        feedback.set_class(ok, "match")
        feedback.set_class(not ok, "nomatch")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


def shown_exactly(lines: Sequence[str]) -> Text:
    """Each line inert and whole: wrapped, never cut, so nothing that will run is hidden."""
    text = Text("\n").join(Text(inert(line, 2000)) for line in lines)
    text.no_wrap = False
    return text
