"""The status update composer: a template filled from the incident, one
key to copy it (OSC 52, works over SSH) and journal it as sent."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from console.screens.modal import Modal
from textual.widgets import Label, TextArea

from console.incident.updates import CHANNELS
from console.text import plain


class UpdateComposer(Modal[tuple[str, str] | None]):
    """Dismisses with (channel, text) to send, or None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="update.cancel"),
        Binding("ctrl+s", "send", "Copy & journal", id="update.send"),
        Binding("tab", "next_channel", "Next channel", id="update.channel"),
    ]
    DEFAULT_CSS = """
    UpdateComposer { align: center middle; }
    UpdateComposer > Vertical { width: 90%; height: 80%; border: round $primary; padding: 0 1; background: $surface; }
    UpdateComposer TextArea { height: 1fr; }
    """

    def __init__(self, compose_text, channel: str = CHANNELS[0]) -> None:
        super().__init__()
        self.compose_text = compose_text  # channel -> text, filled from the incident
        self.channel = channel

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("", id="channel")
            yield TextArea(self.compose_text(self.channel), id="text", soft_wrap=True)
            yield Label(plain("Ctrl+S copies it to your clipboard and journals it · Tab: next channel · "
                              "Esc: cancel", "dim"))

    def on_mount(self) -> None:
        self._label()
        self.query_one(TextArea).focus()

    def _label(self) -> None:
        self.query_one("#channel", Label).update(plain(
            "Status update: " + "  ".join(f"[{c}]" if c == self.channel else c for c in CHANNELS), "bold"))

    def action_next_channel(self) -> None:
        self.channel = CHANNELS[(CHANNELS.index(self.channel) + 1) % len(CHANNELS)]
        self.query_one(TextArea).text = self.compose_text(self.channel)
        self._label()

    def action_send(self) -> None:
        self.dismiss((self.channel, self.query_one(TextArea).text))

    def action_cancel(self) -> None:
        self.dismiss(None)
