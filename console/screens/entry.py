"""One timeline entry, whole: a probe's output, a refused action, a long
note, which the timeline's row cuts. Every line inert, the whole scrollable;
what it shows comes from the session (``IncidentSession.entry``)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Static

from console.screens.modal import Modal
from console.text import inert, plain


# Safety bounds only: a field this console journals is a few thousand characters at most.
LINE_LIMIT = 20_000
MAX_LINES = 2_000


TRAVEL = "travel"  # dismissed with this: open the panes as they were at this entry


class EntryScreen(Modal[str | None]):
    BINDINGS = [Binding("escape,enter", "close", "Close", id="entry.close"),
                Binding("t", "travel", "As then", id="entry.travel")]
    DEFAULT_CSS = """
    EntryScreen { align: center middle; }
    EntryScreen > Vertical { width: 90%; max-width: 160; height: 90%; border: round $accent;
                             background: $surface; padding: 0 1; }
    EntryScreen #parts { height: 1fr; }
    EntryScreen .part-title { text-style: bold; color: $accent; margin-top: 1; }
    EntryScreen .part-text { background: $boost; padding: 0 1; }
    EntryScreen #keys { dock: bottom; height: 1; color: $text-muted; }
    """

    def __init__(self, title: str, parts: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text, self.parts = title, parts

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Text(inert(self.title_text, 160))
            with VerticalScroll(id="parts"):
                for heading, text in self.parts:
                    if heading:
                        yield Label(plain(heading, limit=200), classes="part-title")
                    yield Static(whole(text), classes="part-text")
            yield Label(plain("↑↓ PgUp PgDn scroll · t the panes as they were then · Esc or Enter closes"), id="keys")

    def on_mount(self) -> None:
        self.query_one("#parts", VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_travel(self) -> None:
        self.dismiss(TRAVEL)


def whole(text: str) -> Text:
    """Every line, each inert and wrapped, never cut: the journal already
    bounds what it keeps (console/incident/journal.py OUTPUT_LIMIT)."""
    lines = text.splitlines() or [""]
    if len(lines) > MAX_LINES:  # another writer's entry is not bounded by our journal
        lines = lines[:MAX_LINES] + [f"… {len(lines) - MAX_LINES} more lines not shown"]
    shown = Text("\n").join(Text(inert(line, LINE_LIMIT)) for line in lines)
    shown.no_wrap = False
    return shown
