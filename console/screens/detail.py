"""One row, opened: everything its source read about it, and what can be done.

A :class:`console.drill.Detail` rendered as inert text: its sections as
tables (with a cursor: Enter opens the row under it, as in k9s) or as text
(a query, logs, a body: line by line, never markup or escapes), and a line
of the keys that open another view (``l`` logs) or ask for a change (``K``).
The screen reads nothing itself: opening and changing go through the
``opener`` the main screen hands it (the session does the reading), and a
followed view (logs) asks it again every refresh.
"""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Label, Static

from console.drill import Detail, RowRef, Section
from console.screens.modal import Modal
from console.text import inert, plain

TEXT_LINES = 400  # of a text section (logs keep their newest lines)
LINE_CHARS = 1000
CELL_CHARS = 200


def text_lines(text: str, newest: bool = False) -> Text:
    """Multi-line text from outside, each line inert; past TEXT_LINES, the
    first lines kept (a query's start is what it does), or the newest (logs)."""
    lines = text.splitlines() or [""]
    if len(lines) > TEXT_LINES:
        cut = len(lines) - TEXT_LINES
        lines = ([f"… {cut} earlier lines not shown"] + lines[-TEXT_LINES:]) if newest else \
            (lines[:TEXT_LINES] + [f"… {cut} more lines not shown"])
    shown = Text("\n").join(Text(inert(line, LINE_CHARS)) for line in lines)
    shown.no_wrap = False
    return shown


def keys_line(detail: Detail) -> Text:
    parts = ["Esc back", "r reload"]
    if any(s.drill for s in detail.sections):
        parts.insert(0, "Enter open row")
    parts += [f"{o.key} {o.label}" for o in detail.openings]
    parts += [f"{c.key} {c.label}" for c in detail.changes]
    return plain(" · ".join(parts), "bold", limit=600)


class SectionTable(DataTable):
    """A section's rows; Enter on one that drills opens it."""

    def __init__(self, section: Section, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.section = section

    def on_mount(self) -> None:
        for column in self.section.columns:
            self.add_column(plain(column, "bold", limit=60))
        width = len(self.section.columns)
        for i, row in enumerate(self.section.rows):
            cells = [plain(cell, limit=CELL_CHARS) for cell in (list(row) + [""] * width)[:width]]
            self.add_row(*cells, key=str(i))


class DetailScreen(Modal[None]):
    BINDINGS = [
        Binding("escape", "back", "Back", id="detail.back"),
        Binding("r", "reload", "Reload", id="detail.reload"),
    ]
    DEFAULT_CSS = """
    DetailScreen { align: center middle; }
    DetailScreen > Vertical { width: 100%; height: 100%; border: round $accent; background: $surface;
                              padding: 0 1; }
    DetailScreen #sections { height: 1fr; }
    DetailScreen .section-title { text-style: bold; color: $accent; margin-top: 1; }
    DetailScreen SectionTable { height: auto; max-height: 20; }
    DetailScreen .section-text { background: $boost; padding: 0 1; }
    DetailScreen #keys { dock: bottom; height: auto; background: $boost; }
    """

    def __init__(self, ref: RowRef, detail: Detail, opener: Callable[[RowRef, str], object],
                 reader: Callable[[RowRef], object], follow_every: float = 2.0) -> None:
        super().__init__()
        self.ref, self.detail = ref, detail
        self._opener, self._reader = opener, reader
        self.follow_every = follow_every
        self._reading = False

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Text(inert(self.detail.title, 120))
            yield VerticalScroll(id="sections")
            yield Static(keys_line(self.detail), id="keys")

    async def on_mount(self) -> None:
        await self._fill()
        if self.detail.follow:
            self.set_interval(self.follow_every, self._follow)

    def _follow(self) -> None:
        # Only while seen: a logs view under another detail or a confirmation
        # reads nothing (a red team counted 8 hidden reads in 1.5 s).
        if self.app.screen is self:
            self.action_reload()

    async def _fill(self) -> None:
        box = self.query_one("#sections", VerticalScroll)
        await box.remove_children()
        widgets = []
        newest = bool(self.detail.follow or self.detail.extra.get("newest_last"))
        for section in self.detail.sections:
            widgets.append(Label(plain(section.title, limit=200), classes="section-title"))
            if section.columns:
                widgets.append(SectionTable(section))
            if section.text:
                widgets.append(Static(text_lines(section.text, newest), classes="section-text"))
            if not section.columns and not section.text:
                widgets.append(Label(plain("(nothing)", "dim")))
        await box.mount_all(widgets)
        self.query_one("#keys", Static).update(keys_line(self.detail))
        tables = list(self.query(SectionTable))
        if tables:
            tables[0].focus()
        if self.detail.follow or self.detail.extra.get("newest_last"):
            # After the layout has the new lines: scrolled now, it would stop short.
            self.call_after_refresh(box.scroll_end, animate=False)

    # ---- keys -----------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        table = event.data_table
        if not isinstance(table, SectionTable) or not table.section.drill:
            return
        row = table.section.drill[event.cursor_row]
        if row:
            self._opener(RowRef(self.ref.kind, self.ref.source, row), "enter")

    def on_key(self, event: events.Key) -> None:
        key = event.character if event.character and event.character.isprintable() else event.key
        opening, change = self.detail.opening(key), self.detail.change(key)
        if opening is not None or change is not None:
            event.stop()
            event.prevent_default()
            self._opener(self.ref, key)

    def action_back(self) -> None:
        self.dismiss(None)

    def action_reload(self) -> None:
        if self._reading:
            return  # the last read has not answered: never pile reads on a slow system
        self._reading = True
        self.run_worker(self._reload, group="detail", exclusive=True, exit_on_error=False)

    async def _reload(self) -> None:
        try:
            detail = await self._reader(self.ref)
        finally:
            self._reading = False
        if detail is not None and self.is_attached:
            self.detail = detail
            self.query_one(Vertical).border_title = Text(inert(detail.title, 120))
            await self._fill()
