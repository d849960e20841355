"""The timeline: everything that happened, newest last, and the scribe's
input line. It renders journal events; writing them is the app's job."""

from __future__ import annotations

from typing import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input

from console.incident import tags
from console.incident.export import describe
from console.incident.state import CHANGE_KINDS, extends
from console.text import plain
from console.widgets import colours
from console.widgets.table import ReadingTable

# Each kind of entry in a theme colour (the theme variable, and bold or not);
# a kind not listed is dim.
KIND_COLOUR = {"threshold.crossed": ("state-warning", False), "source.lost": ("state-critical", False),
               "source.state": ("state-warning", False),
               "source.recovered": ("state-ok", False), "action": ("text-accent", True),
               "command": ("text-accent", False), "probe": ("text-secondary", False),
               "update.sent": ("text-primary", False)}
NOTE_EDITS = ("note.corrected", "note.struck", "note.pinned")
# Not shown as rows: a note's edits are shown on the note, a moment is
# travelled to (t) from the entry it belongs to.
HIDDEN = (*NOTE_EDITS, "moment")


class TimelinePane(Vertical):
    TITLE = "6 Timeline"
    BINDINGS = [
        Binding("e", "edit('correct')", "Correct", id="timeline.correct"),
        Binding("x", "edit('strike')", "Strike", id="timeline.strike"),
        Binding("asterisk", "edit('pin')", "Pin", id="timeline.pin"),
        # The table's own Enter selects the row (on_data_table_row_selected);
        # listed here so the help and the keymap name it, not the footer (full at 80 columns).
        Binding("enter", "open_entry", "Whole entry", show=False, id="timeline.open"),
        Binding("t", "travel", "As then", show=False, id="timeline.travel"),
        Binding("escape", "leave_input", "Done", show=False, id="timeline.leave"),
    ]

    class NoteWritten(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class NoteEdit(Message):
        """``how`` is "correct", "strike" or "pin", on note ``note_id``."""

        def __init__(self, note_id: str, how: str) -> None:
            super().__init__()
            self.note_id, self.how = note_id, how

    class EntryOpened(Message):
        """The operator asked to read entry ``event_id`` whole."""

        def __init__(self, event_id: str) -> None:
            super().__init__()
            self.event_id = event_id

    class TravelRequested(Message):
        """The operator asked to see the panes as they were at entry ``event_id``."""

        def __init__(self, event_id: str) -> None:
            super().__init__()
            self.event_id = event_id

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = self.TITLE
        self._count = 0
        self._shown: tuple[tuple, object] | None = None  # the events and incident shown, to add to them
        self._notes: dict[str, object] = {}  # the note events shown, by id: redrawn when edited

    def compose(self) -> ComposeResult:
        yield ReadingTable((("UTC", 8), ("Who", 10), ("What", 400)), cursor=True, id="events")
        yield Input(placeholder=f"n: note, tagged {tags.hint()}", id="scribe")

    @property
    def table(self) -> ReadingTable:
        return self.query_one("#events", ReadingTable)

    def on_mount(self) -> None:
        colours.follow_theme(self, self._recolour)

    def _recolour(self) -> None:
        if self._shown is not None:
            events, incident = self._shown
            self._shown = None  # every row again, in the new colours
            self.show(events, incident)

    def show(self, events: Iterable, incident) -> None:
        """Every event, oldest first; notes shown as corrected, struck, pinned.

        When ``events`` are the ones shown before with more after them (an
        append), only the new rows are made and only the notes they edit are
        redrawn: an entry costs the same at the 10,000th as at the first."""
        events = tuple(events)
        before, self._shown = self._shown, (events, incident)
        if before is not None and extends(events, before[0]):
            added = events[len(before[0]):]
            edited = {event.data.get("note_id") for event in added if event.kind in NOTE_EDITS}
            changed = [(note_id, self._cells(self._notes[note_id], incident))
                       for note_id in edited if isinstance(note_id, str) and note_id in self._notes]
            self._show_rows(self._rows(added, incident), changed)
        else:
            self._notes = {}
            self._show_rows(self._rows(events, incident))

    def _rows(self, events: Iterable, incident) -> list:
        rows = []
        for event in events:
            if event.kind in HIDDEN:
                continue
            if event.kind == "note":
                self._notes[event.id] = event
            rows.append((event.id, self._cells(event, incident)))
        return rows

    def _cells(self, event, incident) -> tuple:
        colour = colours.of(self)
        style = colour.style(*KIND_COLOUR[event.kind]) if event.kind in KIND_COLOUR else (
            "" if event.kind == "note" else "dim")
        text = describe(event, incident)
        if event.data.get("undoes") and event.kind in CHANGE_KINDS:
            text += f" (took back {event.data.get('undone') or 'a change'})"
        if event.kind == "note":
            note = incident.note(event.id) if incident is not None else None
            if note is not None:
                text = "Note: " + note.text + (" (corrected)" if note.corrected else "")
                style = "strike dim" if note.struck else ("bold" if note.pinned else "")
                if note.pinned:
                    text = "📌 " + text
        return (plain(f"{event.at:%H:%M:%S}", "dim"), plain(event.user, limit=10), plain(text, style, limit=400))

    def _show_rows(self, added: list, changed: list | None = None) -> None:
        """``added`` after the rows shown (all the rows, when ``changed`` is
        None), ``changed`` redrawn in place; the cursor stays at the end if
        it was there."""
        count = self._count + len(added) if changed is not None else len(added)
        at_end = self.table.cursor_row >= self._count - 1
        if changed is None:
            self.table.sync(added)
        else:
            self.table.extend(added, changed)
        if count != self._count:
            self._count = count
            self.border_subtitle = f"{self._count} entries"
            if at_end:
                self.table.move_cursor(row=self.table.row_count - 1)

    def focus_input(self) -> None:
        self.query_one("#scribe", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        event.input.value = ""
        if text:
            self.post_message(self.NoteWritten(text))
        else:
            self.table.focus()

    def action_leave_input(self) -> None:
        self.table.focus()

    def action_edit(self, how: str) -> None:
        key = self._current_id()
        if key is not None:
            self.post_message(self.NoteEdit(key, how))

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        self.action_open_entry()

    def action_open_entry(self) -> None:
        key = self._current_id()
        if key is not None:
            self.post_message(self.EntryOpened(key))

    def action_travel(self) -> None:
        key = self._current_id()
        if key is not None:
            self.post_message(self.TravelRequested(key))

    def _current_id(self) -> str | None:
        row = self.table.cursor_row
        if row < 0 or row >= self.table.row_count:
            return None
        return str(self.table.coordinate_to_cell_key((row, 0)).row_key.value)
