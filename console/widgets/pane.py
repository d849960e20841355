"""What every live pane shares: a border naming it, the age of its data,
a visible stale/unreachable state, and a table that redraws only changes."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from console.readings import STATE_MARK, duration
from console.vocabulary import Snapshot, State
from console.text import inert, plain
from console.widgets import colours
from console.widgets.colours import Colours
from console.widgets.table import ReadingTable, Row, same


def state_cell(state: State, colour: Colours) -> Text:
    return plain(STATE_MARK[state], colour.state(state))


SUMMARY_MAX_LINES = 4  # the rest of the pane is for its table


class LivePane(Vertical):
    """A pane fed with snapshots of one or more sources of its kinds."""

    can_focus = False
    TITLE = ""
    KINDS: tuple[str, ...] = ()
    COLUMNS: Sequence[tuple[str, int | None]] = ()

    def __init__(self, stale_after: float = 10.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stale_after = stale_after
        self.snapshots: dict[tuple[str, str], Snapshot] = {}
        self._freshness = ""
        self.stale = False  # no reading newer than stale_after (set each tick)
        self._summary_shown: Text | None = None
        self.border_title = self.TITLE
        self.expected: int | None = None  # sources feeding this pane, once known

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first reading…", classes="summary", markup=False, shrink=False)
        yield ReadingTable(self.COLUMNS)

    @property
    def table(self) -> ReadingTable:
        return self.query_one(ReadingTable)

    def on_mount(self) -> None:
        self._ready = True
        colours.follow_theme(self, self._recolour)
        if self.snapshots:
            self._render_readings()

    @property
    def colours(self) -> Colours:
        """The theme's colours now: summaries and rows take their styles from it."""
        return colours.of(self)

    def _recolour(self) -> None:
        if self.snapshots:
            self._render_readings()  # only what changed colour is redrawn

    def take(self, snapshot: Snapshot) -> None:
        """A new reading arrived: redraw only if what is shown changes."""
        self.snapshots[snapshot.key] = snapshot
        if getattr(self, "_ready", False):  # a fast source can answer before the pane is mounted
            self._render_readings()

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
        if not self.snapshots:
            return False
        return (now - min(s.taken_at for s in self.snapshots.values())).total_seconds() > self.stale_after

    def freshness(self, now: datetime) -> str:
        if not self.snapshots:
            return "– not configured" if self.expected == 0 else "◌ waiting"
        down = [s.name for s in self.snapshots.values() if not s.reachable]
        oldest = min(s.taken_at for s in self.snapshots.values())
        age = (now - oldest).total_seconds()
        if age > self.stale_after:
            return f"◌ stale {duration(age)}"
        if down:
            return "✖ unreachable: " + inert(", ".join(sorted(down)), 40)
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

    def rows(self) -> list[Row]:
        return []

    def ordered(self, *kinds: str) -> list[Snapshot]:
        return [s for (kind, _), s in sorted(self.snapshots.items()) if kind in (kinds or self.KINDS)]
