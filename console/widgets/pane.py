"""What every live pane shares: a border naming it, the age of its data,
a visible stale/unreachable state, and a table that redraws only changes.

Its rows are things to drill into: each row's key names its source and the
row in that source's terms (:class:`console.drill.RowRef`), Enter asks the
app to open it, and a pane's own keys (``C``, ``K``, ``l``) ask for a change
or a view of the row under the cursor. ``Space`` pauses the pane: readings
still arrive (the incident still sees them), the table stops moving. A source
that stops answering leaves its last rows on screen, dimmed, with their age.
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from console.drill import RowRef
from console.readings import STATE_MARK, duration
from console.vocabulary import Snapshot, State
from console.text import inert, plain
from console.widgets import colours
from console.widgets.colours import Colours
from console.widgets.table import ReadingTable, Row, same


def state_cell(state: State, colour: Colours) -> Text:
    return plain(STATE_MARK[state], colour.state(state))


SUMMARY_MAX_LINES = 4  # the rest of the pane is for its table


def dimmed(cells: Sequence[Text]) -> tuple[Text, ...]:
    """Cells of a reading that is no longer current: kept, but visibly old."""
    out = []
    for cell in cells:
        cell = cell.copy()
        cell.stylize("dim")
        out.append(cell)
    return tuple(out)


class RowRequested(Message):
    """Enter (``key`` "enter") or a pane's row key on the row under the cursor."""

    def __init__(self, pane: "LivePane", ref: RowRef, key: str) -> None:
        super().__init__()
        self.pane, self.ref, self.key = pane, ref, key


class LivePane(Vertical):
    """A pane fed with snapshots of one or more sources of its kinds."""

    can_focus = False
    TITLE = ""
    KINDS: tuple[str, ...] = ()
    COLUMNS: Sequence[tuple[str, int | None]] = ()
    BINDINGS = [
        Binding("space", "pause", "Pause", show=False, id="pane.pause"),
        Binding("less_than_sign", "sort(-1)", "Sort ←", show=False, id="pane.sort_left"),
        Binding("greater_than_sign", "sort(1)", "Sort →", show=False, id="pane.sort_right"),
        Binding("I", "invert_sort", "Invert sort", show=False, id="pane.sort_invert"),
    ]
    # A pane's own keys on the row under the cursor: key -> what the help says.
    # The row's source decides what each does (a Change or an Opening of its Detail).
    ROW_KEYS: Sequence[tuple[str, str]] = ()
    # Showing a moment kept in the journal (console/screens/moment.py), not
    # a source: its age label must never say live or stale.
    recorded = False

    def __init_subclass__(cls, **kwargs) -> None:
        if "ROW_KEYS" in cls.__dict__:
            cls.BINDINGS = [*cls.__dict__.get("BINDINGS", ()), *(
                Binding(key, f"row_key({key!r})", description, show=False, id=f"row.{cls.__name__.removesuffix('Pane').lower()}.{key}")
                for key, description in cls.ROW_KEYS)]
        super().__init_subclass__(**kwargs)

    def __init__(self, stale_after: float = 10.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stale_after = stale_after
        self.snapshots: dict[tuple[str, str], Snapshot] = {}
        self._freshness = ""
        self.stale = False  # no reading newer than stale_after (set each tick)
        self._summary_shown: Text | None = None
        self.border_title = self.TITLE
        self.expected: int | None = None  # sources feeding this pane, once known
        self.paused = False
        self.last_good: dict[tuple[str, str], Snapshot] = {}  # shown, dimmed, while a source is down
        self.refs: dict[str, RowRef] = {}

    def on_mount(self) -> None:
        self._ready = True
        colours.follow_theme(self, self._recolour)
        if self.snapshots:
            self._render_readings()

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first reading…", classes="summary", markup=False, shrink=False)
        yield ReadingTable(self.COLUMNS)

    @property
    def table(self) -> ReadingTable:
        return self.query_one(ReadingTable)

    @property
    def colours(self) -> Colours:
        """The theme's colours now: summaries and rows take their styles from it."""
        return colours.of(self)

    def _recolour(self) -> None:
        if self.snapshots:
            self._render_readings()  # only what changed colour is redrawn

    def take(self, snapshot: Snapshot) -> None:
        """A new reading arrived: redraw only if what is shown changes (and
        not at all while paused: the reading is kept for when it resumes)."""
        self.snapshots[snapshot.key] = snapshot
        if snapshot.reachable:
            self.last_good[snapshot.key] = snapshot
        if getattr(self, "_ready", False) and not self.paused:  # a fast source can answer before mounting
            self._render_readings()

    # ---- rows to drill into -----------------------------------------------
    def rows(self) -> list[Row]:
        """Every source's rows, keyed ``kind:name:row``; a source that is
        down shows its last rows dimmed (its age is in the border)."""
        rows: list[Row] = []
        refs: dict[str, RowRef] = {}
        for snap in self.ordered():
            shown = snap if snap.reachable else self.last_good.get(snap.key)
            if shown is None:
                rows += self.unreachable_rows(snap)
                continue
            for key, cells in self.snapshot_rows(shown):
                full = f"{snap.kind}:{snap.name}:{key}"
                refs[full] = RowRef(snap.kind, snap.name, key)
                rows.append((full, tuple(cells) if shown is snap else self.kept(snap, cells)))
        self.refs = refs
        return rows

    def snapshot_rows(self, snap: Snapshot) -> list[Row]:
        """One source's rows, keyed by row ids that source understands."""
        return []

    def kept(self, snap: Snapshot, cells: Sequence[Text]) -> tuple[Text, ...]:
        """The last good row of a source that is down now: dimmed; where the
        table has them, its State says what is true now and its Note why."""
        kept = list(dimmed(cells))
        labels = [label for label, *_ in self.COLUMNS]
        if labels and labels[0] == "State":
            kept[0] = state_cell(snap.state, self.colours)
        if labels and labels[-1] == "Note" and snap.error:
            kept[-1] = plain(snap.error, self.colours.style("state-critical"))
        return tuple(kept)

    def unreachable_rows(self, snap: Snapshot) -> list[Row]:
        """A source that never answered: nothing to show but that."""
        return []

    def current_ref(self) -> RowRef | None:
        key = self.table.current_key()
        return self.refs.get(key) if key is not None else None

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        self._request("enter")

    def action_row_key(self, key: str) -> None:
        self._request(key)

    def _request(self, key: str) -> None:
        ref = self.current_ref()
        if ref is None:
            self.notify("no row here to open", severity="warning", timeout=3)
            return
        self.post_message(RowRequested(self, ref, key))

    # ---- pause and sort -----------------------------------------------------
    def action_pause(self) -> None:
        self.paused = not self.paused
        self.set_class(self.paused, "-paused")
        self._freshness = ""  # the label says it at once
        if not self.paused and self.snapshots:
            self._render_readings()
        elif self.snapshots:
            self.tick(max(s.taken_at for s in self.snapshots.values()))

    def action_sort(self, step: int) -> None:
        self.table.sort_step(step)

    def action_invert_sort(self) -> None:
        self.table.invert_sort()

    def _render_readings(self) -> None:
        summary = self.summary()
        if self._summary_shown is None or not same(summary, self._summary_shown):
            box = self.query_one(".summary", Static)
            box.update(summary)
            # Its height set outright: an auto height was sometimes measured
            # between two updates and kept (a 2-line summary cut to 1).
            box.styles.height = min(summary.plain.count("\n") + 1, SUMMARY_MAX_LINES)
            self._summary_shown = summary
        self.table.sync(self.rows())
        self._restate()
        self.tick(max(s.taken_at for s in self.snapshots.values()))

    def tick(self, now: datetime) -> None:
        """Called every second: update the age label only when its text changes."""
        label = self.freshness(now)
        if self.paused:
            label = "⏸ paused (Space resumes) · " + label
        self.stale = self.stale_at(now)
        if label != self._freshness:
            self._freshness = label
            self.border_subtitle = Text(label)  # a str would be parsed as markup
            self.set_class(label.startswith("◌"), "-stale")

    def expect(self, count: int) -> None:
        """How many sources feed this pane; none means it says so instead of waiting."""
        self.expected = count
        if count == 0:
            self.query_one(".summary", Static).update(plain(f"nothing configured for {self.TITLE[2:]}", "dim"))

    def stale_at(self, now: datetime) -> bool:
        """No reading newer than ``stale_after``: a source stopped answering."""
        if not self.snapshots or self.recorded:
            return False
        return (now - min(s.taken_at for s in self.snapshots.values())).total_seconds() > self.stale_after

    def freshness(self, now: datetime) -> str:
        if self.recorded:
            return "◷ recorded, not live"
        if not self.snapshots:
            return "– not configured" if self.expected == 0 else "◌ waiting"
        down = [s.name for s in self.snapshots.values() if not s.reachable]
        oldest = min(s.taken_at for s in self.snapshots.values())
        age = (now - oldest).total_seconds()
        if age > self.stale_after:
            return f"◌ stale {duration(age)}"
        if down:
            label = "✖ unreachable: " + inert(", ".join(sorted(down)), 40)
            kept = [self.last_good[s.key].taken_at for s in self.snapshots.values()
                    if not s.reachable and s.key in self.last_good]
            if kept:
                label += f" · dimmed values {duration((now - min(kept)).total_seconds())} old"
            return label
        return "● live"

    def worst(self) -> State:
        state = State.OK
        for snap in self.snapshots.values():
            state = state.worst(snap.state)
        return state

    def _restate(self) -> None:
        worst = self.worst()
        for state in State:
            self.set_class(state is worst, f"-{state.value}")

    # Subclasses say what they show.
    def summary(self) -> Text:
        return Text()

    def ordered(self, *kinds: str) -> list[Snapshot]:
        return [s for (kind, _), s in sorted(self.snapshots.items()) if kind in (kinds or self.KINDS)]
