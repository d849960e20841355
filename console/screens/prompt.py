"""A one-line question answered by typing: notes, corrections, titles."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from console.screens.modal import Modal
from textual.widgets import Input, Label

from console.text import plain


class Prompt(Modal[str | None]):
    """Ask for one line; dismisses with the text, or None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]
    DEFAULT_CSS = """
    Prompt { align: center middle; }
    Prompt > Vertical { width: 80%; max-width: 100; height: auto; border: round $primary; padding: 1 2;
                        background: $surface; }
    Prompt Label { width: 100%; }
    Prompt .hint { color: $text-muted; }
    """

    def __init__(self, question: str, value: str = "", hint: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.question, self.value, self.hint, self.placeholder = question, value, hint, placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(plain(self.question, "bold"))
            yield Input(value=self.value, placeholder=self.placeholder, id="answer", select_on_focus=False)
            if self.hint:
                yield Label(plain(self.hint), classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
