"""Error rates per service: 5xx ratio, request rate, p95, and a trend."""

from __future__ import annotations

from collections import deque
from typing import Iterable, Sequence

from rich.text import Text
from textual.css.query import NoMatches

from console.readings import duration, number, percent
from console.vocabulary import Snapshot, State
from console.text import plain
from console.widgets.colours import Colours
from console.widgets.pane import LivePane, state_cell
from console.widgets.table import Row

HISTORY = 12
# A sparkline as text so it can sit in a table cell (Textual's Sparkline is a
# whole widget); eight block heights, scaled to the window's own maximum.
BARS = "▁▂▃▄▅▆▇█"
TREND_COLUMN = 3
# An error-rates source that answered without one number is not "ok": it
# may watch the wrong job, or no traffic at all. Said in the State column
# (its 7 cells) until State itself can say it.

Sample = tuple[float | None, State]  # a reading's 5xx ratio and its state


def newest(samples: Sequence, width: int | None) -> list:
    """The last ``width`` samples: a narrow column shows now, not the past."""
    if width is None or width >= len(samples):
        return list(samples)
    return list(samples)[len(samples) - width:] if width > 0 else []


def sparkline(values: Iterable[float | None], width: int | None = None) -> str:
    """Bars for the newest ``width`` values (all of them when None), scaled to
    the largest shown; a missing value is a blank."""
    shown = newest(list(values), width)
    known = [v for v in shown if v is not None]
    if not known:
        return ""
    top = max(known) or 1.0
    return "".join(" " if v is None else BARS[min(7, int(v / top * 7.999))] for v in shown)


def trend(samples: Sequence[Sample], width: int | None, colour: Colours) -> Text:
    """The sparkline, each bar in the colour of the state its reading had."""
    shown = newest(samples, width)
    bars = sparkline([value for value, _ in shown])
    text = Text(no_wrap=True, overflow="crop")
    for bar, (_, state) in zip(bars, shown):
        text.append(bar, colour.state(state))
    return text


class ErrorRatesPane(LivePane):
    TITLE = "2 Error rates"
    KINDS = ("errors",)
    COLUMNS = (("State", 7), ("Service", 16), ("5xx", 6), ("5xx trend", HISTORY, 4), ("req/s", 6), ("p95", 5),
               ("Note", 60))

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history: dict[str, deque[Sample]] = {}

    def take(self, snapshot: Snapshot) -> None:
        # Bounded per service, so a long incident cannot grow memory.
        value = snapshot.metrics.get("error_ratio") if snapshot.reachable else None
        self.history.setdefault(snapshot.name, deque(maxlen=HISTORY)).append((value, snapshot.state))
        super().take(snapshot)

    def on_reading_table_fitted(self) -> None:
        # How much of the trend column shows depends on the table's width.
        if self.snapshots and getattr(self, "_ready", False):
            self._render_readings()

    def summary(self) -> Text:
        snaps = self.ordered()
        if not snaps:
            return plain("no error-rate sources")
        worst = max(snaps, key=lambda s: s.metrics.get("error_ratio") or 0)
        line = f"highest 5xx: {worst.name} {percent(worst.metrics.get('error_ratio'))}"
        empty = [s.name for s in snaps if _no_data(s)]
        return plain(line + (f" · no data: {', '.join(empty)}" if empty else ""))

    def snapshot_rows(self, snap: Snapshot) -> list[Row]:
        m = snap.metrics
        colour = self.colours
        notes = snap.error or "; ".join(snap.details.get("notes", ()))
        if _no_data(snap):
            notes = f"no data: {notes}"
        state = state_cell(snap.state, colour)  # unknown has a mark and a colour of its own
        return [("service", (
            state, plain(snap.name), plain(percent(m.get("error_ratio"))),
            trend(self.history.get(snap.name, ()), self.trend_width(), colour),
            plain(number(m.get("request_rate"))), plain(duration(m.get("p95_latency_s"))),
            plain(notes, "dim")))]

    def unreachable_rows(self, snap: Snapshot) -> list[Row]:
        return [(f"{snap.kind}:{snap.name}:service", (
            state_cell(snap.state, self.colours), plain(snap.name), plain("–"), plain(""), plain("–"),
            plain("–"), plain(snap.error or "", "dim")))]

    def trend_width(self) -> int:
        """How many cells of the trend column are on screen: all of it, or
        what a narrow pane leaves of it (before any layout: all)."""
        try:
            width = self.table.shown_width(TREND_COLUMN)
        except NoMatches:
            return HISTORY
        return HISTORY if width is None else width


def _no_data(snap: Snapshot) -> bool:
    return snap.reachable and bool(snap.details.get("no_data"))
