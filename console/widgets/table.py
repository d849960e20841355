"""A DataTable that redraws only what changed.

Over SSH every redraw costs bytes: a 20-row table is about 5 KB, one cell a
few dozen. Rows are keyed; a sync compares each cell with what is shown and
updates only the cells that differ. Cells are always ``rich.text.Text``
(DataTable would parse a ``str`` as markup).
"""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from console.text import inert

Row = tuple[str, Sequence[Text]]


def same(a: Text, b: Text) -> bool:
    """Equal as shown. ``Text.__eq__`` ignores the base style, so a row that
    only turned red (or struck) would otherwise never be redrawn."""
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans


class ReadingTable(DataTable):
    DEFAULT_CSS = """
    ReadingTable { height: 1fr; scrollbar-size: 1 1; }
    """

    def __init__(self, columns: Sequence[tuple[str, int | None]], cursor: bool = False, **kwargs) -> None:
        # No cell padding: columns carry one space of their own, which buys the
        # last (widest) column eight more characters in a half-width pane.
        super().__init__(cursor_type="row", zebra_stripes=False, show_cursor=cursor, cell_padding=0, **kwargs)
        self._columns = columns
        self._shown: dict[str, tuple[Text, ...]] = {}
        self._order: list[str] = []
        self.filter_text = ""  # `/`: only rows containing it (any cell, any case) are shown
        self._given: Sequence[Row] = ()

    def on_mount(self) -> None:
        last = len(self._columns) - 1
        for i, (label, width) in enumerate(self._columns):
            # A str label would be parsed as markup; Redis columns are named by the config.
            self.add_column(Text(inert(label, 60)), key=label, width=width if width is None or i == last else width + 1)

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
        self.clear()
        self._shown = {}
        for key, cells in rows:
            self.add_row(*cells, key=key)
            self._shown[key] = tuple(cells)
        self._order = [key for key, _ in rows]
        return sum(len(cells) for _, cells in rows) or 1
