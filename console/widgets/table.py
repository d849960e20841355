"""A DataTable that redraws only what changed, with a cursor and a sort.

Over SSH every redraw costs bytes: a 20-row table is about 5 KB, one cell a
few dozen. Rows are keyed; a sync compares each cell with what is shown and
updates only the cells that differ. Cells are always ``rich.text.Text``
(DataTable would parse a ``str`` as markup).

The cursor stays on its row (by key) while rows come and go, as in htop and
pg_activity; ``<``/``>`` move the sort column and a click on a header sorts
by it (again: the other way). Numbers sort as numbers, with their units.
"""

from __future__ import annotations

import re
from typing import Sequence

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from console.text import inert

Row = tuple[str, Sequence[Text]]


UNITS = {"": 1.0, "%": 1.0, "ms": 1e-3, "µs": 1e-6, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0,
         "b": 1.0, "k": 1e3, "kb": 1024.0, "kib": 1024.0, "mb": 1024.0 ** 2, "mib": 1024.0 ** 2,
         "g": 1e9, "gb": 1024.0 ** 3, "gib": 1024.0 ** 3, "/s": 1.0}
LEADING_NUMBER = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*([a-zµ%/]*)", re.IGNORECASE)


def sort_key(cell: Text) -> tuple:
    """Numbers (with a unit: 13 ms, 2m, 4.1 MB) before words, each in order."""
    text = cell.plain
    match = LEADING_NUMBER.match(text)
    if match:
        scale = UNITS.get(match.group(2).lower(), 1.0)
        return (0, float(match.group(1)) * scale, text.casefold())
    return (1, 0.0, text.casefold())


def same(a: Text, b: Text) -> bool:
    """Equal as shown. ``Text.__eq__`` ignores the base style, so a row that
    only turned red (or struck) would otherwise never be redrawn."""
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans


class ReadingTable(DataTable):
    DEFAULT_CSS = """
    ReadingTable { height: 1fr; scrollbar-size: 1 1; }
    """

    def __init__(self, columns: Sequence[tuple[str, int | None]], cursor: bool = True, **kwargs) -> None:
        # No cell padding: columns carry one space of their own, which buys the
        # last (widest) column eight more characters in a half-width pane.
        super().__init__(cursor_type="row", zebra_stripes=False, show_cursor=cursor, cell_padding=0, **kwargs)
        self._columns = columns
        self._shown: dict[str, tuple[Text, ...]] = {}
        self._order: list[str] = []
        self.filter_text = ""  # `/`: only rows containing it (any cell, any case) are shown
        self._given: Sequence[Row] = ()
        self.sort_column: int | None = None  # None: the order the source gave (what matters first)
        self.sort_reverse = False

    def on_mount(self) -> None:
        last = len(self._columns) - 1
        for i, (label, width) in enumerate(self._columns):
            # A str label would be parsed as markup; Redis columns are named by the config.
            self.add_column(self._label(i), key=label, width=width if width is None or i == last else width + 1)

    def _label(self, index: int) -> Text:
        label = inert(self._columns[index][0], 60)
        if index == self.sort_column:
            label += " ▼" if self.sort_reverse else " ▲"
        return Text(label)

    # ---- the cursor -------------------------------------------------------
    def current_key(self) -> str | None:
        """The key of the row under the cursor, if there is one."""
        if not self._order or not self.show_cursor:
            return None
        row = min(max(self.cursor_row, 0), len(self._order) - 1)
        return self._order[row]

    # ---- sorting -----------------------------------------------------------
    def sort_step(self, step: int) -> None:
        """`<`/`>`: the sort column one to the left or right (from none: the first or last)."""
        count = len(self._columns)
        if self.sort_column is None:
            column = 0 if step > 0 else count - 1
        else:
            column = (self.sort_column + step) % count
        self.sort_by(column, reverse=self.sort_reverse)

    def invert_sort(self) -> None:
        self.sort_by(self.sort_column if self.sort_column is not None else 0, reverse=not self.sort_reverse)

    def sort_by(self, column: int | None, reverse: bool = False) -> None:
        before = self.sort_column
        self.sort_column, self.sort_reverse = column, reverse
        for index in {before, column} - {None}:
            self.columns[self.ordered_columns[index].key].label = self._label(index)
        self._require_update_dimensions = True
        self.refresh()
        self.sync(self._given)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        index = event.column_index
        self.sort_by(index, reverse=not self.sort_reverse if index == self.sort_column else False)

    def _sorted(self, rows: Sequence[Row]) -> Sequence[Row]:
        if self.sort_column is None:
            return rows
        column = self.sort_column
        return sorted(rows, key=lambda row: sort_key(row[1][column]) if column < len(row[1]) else (2,),
                      reverse=self.sort_reverse)

    def update_cell(self, row_key, column_key, value, *, update_width: bool = False) -> None:
        """As DataTable's, but repaint only the changed row: the stock method
        repaints the whole table, which over SSH is every row, every time."""
        if update_width:
            return super().update_cell(row_key, column_key, value, update_width=True)
        row_key = RowKey(row_key) if isinstance(row_key, str) else row_key
        column_key = ColumnKey(column_key) if isinstance(column_key, str) else column_key
        super_data = self._data[row_key]
        if column_key not in super_data:
            return super().update_cell(row_key, column_key, value)
        super_data[column_key] = value
        self._update_count += 1  # keys DataTable's render caches
        self.refresh_row(self.get_row_index(row_key))

    def sync(self, rows: Sequence[Row]) -> int:
        """Show ``rows``; returns how many cells were redrawn (0: nothing changed)."""
        self._given = rows
        if self.filter_text:
            wanted = self.filter_text.casefold()
            rows = [row for row in rows if any(wanted in cell.plain.casefold() for cell in row[1])]
        rows = self._sorted(rows)
        order = [key for key, _ in rows]
        if order != self._order:
            return self._rebuild(rows)
        changed = 0
        labels = [label for label, _ in self._columns]
        for key, cells in rows:
            before = self._shown[key]
            for i, cell in enumerate(cells):
                if not same(before[i], cell):
                    self.update_cell(key, labels[i], cell)
                    changed += 1
            if changed:
                self._shown[key] = tuple(cells)
        return changed

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self.sync(self._given)

    def _rebuild(self, rows: Sequence[Row]) -> int:
        # The cursor follows its row, not its position: a session that ends
        # above the one being looked at must not move the cursor to another.
        current, row_before = self.current_key(), self.cursor_row
        self.clear()
        self._shown = {}
        for key, cells in rows:
            self.add_row(*cells, key=key)
            self._shown[key] = tuple(cells)
        self._order = [key for key, _ in rows]
        if self._order:
            at = self._order.index(current) if current in self._order else min(row_before, len(self._order) - 1)
            self.move_cursor(row=max(at, 0), animate=False, scroll=False)
        return sum(len(cells) for _, cells in rows) or 1
