"""A DataTable that redraws only what changed, with a cursor and a sort.

Over SSH every redraw costs bytes: a 20-row table is about 5 KB, one cell a
few dozen. Rows are keyed; a sync compares each cell with what is shown and
updates only the cells that differ. Cells are always ``rich.text.Text``
(DataTable would parse a ``str`` as markup).

The cursor stays on its row (by key) while rows come and go, as in htop and
pg_activity; ``<``/``>`` move the sort column and a click on a header sorts
by it (again: the other way). Numbers sort as numbers, with their units.

A table never lets its pane's edge cut a reading (``200 · 13m`` was 13 ms):
columns are shown left to right, the earlier ones mattering more, each at
least as wide as it says; what does not fit is hidden, not clipped. A cell
longer than its column ends after its last whole word, with an ellipsis,
and never inside a number.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Region
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from console.text import inert

Row = tuple[str, Sequence[Text]]
CACHED_CELLS = 1500  # DataTable's defaults: 10,000 cells, 1,000 rows
CACHED_ROWS = 200
LEAST_TEXT = 8


class Column(NamedTuple):
    """A column as a pane declares it; a plain ``(label, width)`` tuple is one too."""

    label: str
    width: int | None
    # The narrowest it may be cut to. None: shown whole or not at all, but the
    # last column (a note, an event) can be cut to LEAST_TEXT.
    least: int | None = None
    # Shown only when every column before it has its full width: what is
    # for a wider screen (the query first, its database after it).
    wide: bool = False


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


# A number with what is written on it: 13ms, 0.5s, 192.168.0.1, 12↻, 4.1M
# (an address's port, after its colon, may go: ``10.0.0.5…``).
NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d.,]*[a-zµ%↻]*(?!\w)", re.IGNORECASE)
DANGLING = " ·/,;:=-–>(|"  # nothing to end on before the ellipsis


def fit(cell: Text, width: int) -> Text:
    """``cell`` in ``width`` cells: whole, or up to the end of its last word
    that fits, then ``…``. A word too long is cut inside, but never inside a
    number (``200 · 13ms`` reads ``200…``, never ``200 · 13m``)."""
    if cell.cell_len <= width:
        return cell
    if width <= 1:
        return Text("…"[:max(width, 0)], style=cell.style)
    text, room = cell.plain, width - 1
    end = 0
    while end < len(text) and cell_len(text[:end + 1]) <= room:
        end += 1
    # At the end of a word, unless that leaves less than half the room
    # (``app unavailable_replicas…`` must not read ``app…``).
    words = [m.end() for m in re.finditer(r"\S+", text) if m.end() <= end]
    cut = words[-1] if words and words[-1] * 2 >= end else end
    if cut == end:
        for number in NUMBER.finditer(text):
            if number.start() < cut < number.end():
                cut = number.start()
    while cut > 0 and text[cut - 1] in DANGLING:
        cut -= 1
    out = cell[:cut]
    out.append("…")
    return out


def plan(columns: Sequence[tuple], room: int) -> list[int]:
    """How wide each column's text is in ``room`` cells, 0 for a hidden one.

    Columns are taken left to right, each at its least width (a space
    between two), until the next does not fit; the rest are hidden. What is
    left widens them, left to right, up to their own width. The first column
    is always shown."""
    last = len(columns) - 1
    specs = []
    for i, column in enumerate(Column(*c) for c in columns):
        width = column.width if column.width is not None else 40
        least = column.least if column.least is not None else (min(width, LEAST_TEXT) if i == last else width)
        specs.append((width, min(least, width), column.wide))
    widths = [0] * len(specs)
    used = full = 0  # cells taken at least widths, and at full widths
    for i, (width, least, wide) in enumerate(specs):
        gap = 1 if i else 0
        if i and (used if not wide else full) + gap + least > room:
            break
        widths[i] = min(least, room) if i == 0 else least
        used, full = used + gap + least, full + gap + width
    left = room - used
    for i, (width, _, _) in enumerate(specs):
        if widths[i] and left > 0:
            grow = min(left, width - widths[i])
            widths[i] += grow
            left -= grow
    return widths


def same(a: Text, b: Text) -> bool:
    """Equal as shown. ``Text.__eq__`` ignores the base style, so a row that
    only turned red (or struck) would otherwise never be redrawn."""
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans


class ReadingTable(DataTable):
    DEFAULT_CSS = """
    ReadingTable { height: 1fr; scrollbar-size: 1 1; }
    """

    class Fitted(Message):
        """Which columns show, or how wide, changed (a pane that draws to a
        column's width, like a sparkline, redraws)."""

        def __init__(self, table: "ReadingTable") -> None:
            super().__init__()
            self.table = table

    def __init__(self, columns: Sequence[tuple], cursor: bool = True, **kwargs) -> None:
        self._in_order: list | None = []  # see add_row
        self._lines: list | None = []
        # No cell padding: columns carry one space of their own, which buys the
        # last (widest) column eight more characters in a half-width pane.
        super().__init__(cursor_type="row", zebra_stripes=False, show_cursor=cursor, cell_padding=0, **kwargs)
        # DataTable keys its render caches by a table-wide count of changes, so
        # after each refresh every entry is one no frame will ask for again;
        # at its sizes (10,000 cells) they grew RSS for hours before filling
        # (issue 16, traced with tracemalloc). A frame needs the rows on
        # screen, a few hundred cells at 160x48.
        self._cell_render_cache = LRUCache(CACHED_CELLS)
        self._row_render_cache = LRUCache(CACHED_ROWS)
        self._row_renderable_cache = LRUCache(CACHED_ROWS)
        self._line_cache = LRUCache(CACHED_ROWS)
        self._columns = columns
        self._shown: dict[str, tuple[Text, ...]] = {}
        self._order: list[str] = []
        self.filter_text = ""  # `/`: only rows containing it (any cell, any case) are shown
        self._given: dict[str, Sequence[Text]] = {}  # every row given, by key, in order, filtered or not
        self.sort_column: int | None = None  # None: the order the source gave (what matters first)
        self.sort_reverse = False
        self._widths: list[int] | None = None  # the text width of each column (0: hidden); None: all whole

    def on_mount(self) -> None:
        last = len(self._columns) - 1
        for i, (label, width, *_) in enumerate(self._columns):
            # A str label would be parsed as markup; Redis columns are named by the config.
            self.add_column(self._label(i), key=label, width=width if width is None or i == last else width + 1)

    # ---- fitting the pane --------------------------------------------------
    def on_resize(self) -> None:
        self._fit()

    def _room(self) -> int:
        """The cells the columns can use: the content width, less the
        vertical scrollbar when the rows will need one."""
        width, height = self.size
        if len(self._order) + (1 if self.show_header else 0) > height:
            width -= self.styles.scrollbar_size_vertical
        return width

    def _fit(self) -> None:
        room = self._room()
        if room <= 0 or not self.columns:
            return  # not laid out (a hidden tab): keep what it had
        widths = plan(self._columns, room)
        if widths == self._widths:
            return
        self._widths = widths
        shown = [i for i, width in enumerate(widths) if width]
        for i, column in enumerate(self.ordered_columns):
            column.width = widths[i] + (1 if widths[i] and i != shown[-1] else 0)
        self._update_count += 1
        self._clear_caches()
        self._require_update_dimensions = True
        self.refresh()
        self.post_message(self.Fitted(self))

    def shown_width(self, index: int) -> int | None:
        """How many cells column ``index`` shows (0: hidden); None before the table is fitted."""
        return None if self._widths is None else self._widths[index]

    def _compute_row_renderables(self, row_index: int):
        # The one place a cell meets its column: cut at a word, never in a number.
        renderables = super()._compute_row_renderables(row_index)
        if self._widths is not None:
            for i, (cell, width) in enumerate(zip(renderables.cells, self._widths)):
                if isinstance(cell, Text):
                    renderables.cells[i] = fit(cell, width)
        return renderables

    def _render_cell(self, row_index: int, column_index: int, base_style, width: int, *args, **kwargs):
        if width <= 0:
            # A hidden column draws nothing: Rich would give it one empty
            # segment without a style, which the NO_COLOR filter cannot take.
            row = self.rows.get(self._row_locations.get_key(row_index)) if row_index >= 0 else None
            return [[]] * max(1, row.height if row is not None else self.header_height)
        return super()._render_cell(row_index, column_index, base_style, width, *args, **kwargs)

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
        column = self.sort_column
        for _ in range(count):  # a hidden column is passed over: its ▲ would not show
            if column is None:
                column = 0 if step > 0 else count - 1
            else:
                column = (column + step) % count
            if self.shown_width(column) != 0:
                break
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
        self.sync(list(self._given.items()))

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
        self._given = dict(rows)
        if self.filter_text:
            wanted = self.filter_text.casefold()
            rows = [row for row in rows if any(wanted in cell.plain.casefold() for cell in row[1])]
        rows = self._sorted(rows)
        order = [key for key, _ in rows]
        if order != self._order:
            changed = self._rebuild(rows)
            self._fit()  # more rows may bring a scrollbar, fewer take it away
            return changed
        changed = 0
        labels = [label for label, *_ in self._columns]
        for key, cells in rows:
            before = self._shown[key]
            for i, cell in enumerate(cells):
                if not same(before[i], cell):
                    self.update_cell(key, labels[i], cell)
                    changed += 1
            if changed:
                self._shown[key] = tuple(cells)
        return changed

    def extend(self, added: Sequence[Row], changed: Sequence[Row] = ()) -> None:
        """Rows ``added`` after the others, and rows ``changed`` in place, all
        else as it is: what a record that only grows shows (the timeline).
        Costs the rows given, not the table's length; a sorted table, or a
        filter that a changed row now passes or fails, takes :meth:`sync`."""
        given = self._given
        fresh = self.sort_column is not None or any(key in given for key, _ in added)
        given.update(changed)
        given.update(added)
        wanted = self.filter_text.casefold()

        def passes(cells: Sequence[Text]) -> bool:
            return not wanted or any(wanted in cell.plain.casefold() for cell in cells)

        if fresh or any((key in self._shown) != passes(cells) for key, cells in changed):
            self.sync(list(given.items()))
            return
        labels = [label for label, *_ in self._columns]
        for key, cells in changed:
            before = self._shown.get(key)
            if before is None:
                continue
            for i, cell in enumerate(cells):
                if not same(before[i], cell):
                    self.update_cell(key, labels[i], cell)
            self._shown[key] = tuple(cells)
        grew = False
        for key, cells in added:
            if passes(cells):
                self.add_row(*cells, key=key)
                self._shown[key] = tuple(cells)
                self._order.append(key)
                grew = True
        if grew:
            self._fit()

    # ---- rows in order, kept as they are added --------------------------------
    # DataTable rebuilds its list of rows in order, and the y offset of each,
    # from scratch after every change: at 10,000 timeline rows that is ~10 ms
    # per appended entry. Rows here are only ever added at the end, one line
    # high, or all cleared, so the two lists are kept as they grow; anything
    # else (a removed or sorted row, a taller one) gives them back to DataTable.
    def add_row(self, *cells, height: int | None = 1, key: str | None = None, label=None) -> RowKey:
        row_key = super().add_row(*cells, height=height, key=key, label=label)
        if self._in_order is not None:
            if height == 1 and label is None:
                self._in_order.append(self.rows[row_key])
                self._lines.append((row_key, 0))
            else:
                self._in_order = self._lines = None
        return row_key

    def clear(self, columns: bool = False):
        self._in_order, self._lines = [], []
        return super().clear(columns)

    def remove_row(self, row_key) -> None:
        self._in_order = self._lines = None
        super().remove_row(row_key)

    def sort(self, *args, **kwargs):
        self._in_order = self._lines = None
        return super().sort(*args, **kwargs)

    @property
    def ordered_rows(self):
        return self._in_order if self._in_order is not None else super().ordered_rows

    @property
    def _y_offsets(self):
        return self._lines if self._lines is not None else super()._y_offsets

    def _get_row_region(self, row_index: int) -> Region:
        # Every row one line high (see add_row): its y is its index, not a
        # sum over every row above it (10,000 at the timeline's end).
        if self._in_order is None or not self.is_valid_row_index(row_index):
            return super()._get_row_region(row_index)
        width = sum(column.get_render_width(self) for column in self.columns.values()) + \
            self._row_label_column_width
        return Region(0, self._row_y(row_index), max(self.size.width, width), 1)

    def _get_cell_region(self, coordinate) -> Region:
        if self._in_order is None or not self.is_valid_coordinate(coordinate):
            return super()._get_cell_region(coordinate)
        row_index, column_index = coordinate
        x = sum(column.get_render_width(self) for column in self.ordered_columns[:column_index]) + \
            self._row_label_column_width
        width = self.columns[self._column_locations.get_key(column_index)].get_render_width(self)
        return Region(x, self._row_y(row_index), width, 1)

    def _row_y(self, row_index: int) -> int:
        return row_index + (self.header_height if self.show_header else 0)

    def _update_dimensions(self, new_rows) -> None:
        # DataTable measures every cell of every new row to size auto-width
        # columns; a table whose columns all have their width (ours, but for
        # a last column of None) needs none of it, and measuring 10,000
        # timeline rows took seconds.
        if not any(column.auto_width for column in self.columns.values()):
            new_rows = [key for key in new_rows if (row := self.rows.get(key)) is not None and row.auto_height]
        super()._update_dimensions(new_rows)

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self.sync(list(self._given.items()))

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
