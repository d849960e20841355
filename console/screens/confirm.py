"""Typed confirmation: a change to someone's production system needs the
target's name typed out, not a reflexive `y`."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from console.text import plain


class ConfirmTyped(ModalScreen[str | None]):
    """Dismisses with what was typed (the caller checks it), or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]
    DEFAULT_CSS = """
    ConfirmTyped { align: center middle; }
    ConfirmTyped > Vertical { width: 90%; max-width: 110; height: auto; border: heavy $error; padding: 1 2;
                              background: $surface; }
    ConfirmTyped #what { margin: 1 0; padding: 0 1; background: $boost; }
    ConfirmTyped .match { color: $success; }
    ConfirmTyped .nomatch { color: $error; }
    """

    def __init__(self, title: str, what: str, expected: str) -> None:
        super().__init__()
        self.title_text, self.what, self.expected = title, what, expected

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(plain(self.title_text, "bold"))
            yield Static(plain(self.what, limit=2000), id="what")
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
