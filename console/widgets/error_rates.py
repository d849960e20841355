"""Error rates per service: 5xx ratio, request rate, p95, and a trend."""

from __future__ import annotations

from collections import deque

from rich.text import Text

from console.readings import duration, number, percent
from console.vocabulary import Snapshot
from console.text import plain
from console.widgets.pane import LivePane, state_cell
from console.widgets.table import Row

HISTORY = 12
# A sparkline as text so it can sit in a table cell (Textual's Sparkline is a
# whole widget); eight block heights, scaled to the window's own maximum.
BARS = "▁▂▃▄▅▆▇█"


def sparkline(values) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return ""
    top = max(known) or 1.0
    return "".join(" " if v is None else BARS[min(7, int(v / top * 7.999))] for v in values)


class ErrorRatesPane(LivePane):
    TITLE = "2 Error rates"
    KINDS = ("errors",)
    COLUMNS = (("State", 7), ("Service", 16), ("5xx", 6), ("5xx trend", HISTORY), ("req/s", 6), ("p95", 5),
               ("Note", 60))

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history: dict[str, deque] = {}

    def take(self, snapshot: Snapshot) -> None:
        # Bounded per service, so a long incident cannot grow memory.
        self.history.setdefault(snapshot.name, deque(maxlen=HISTORY)).append(
            snapshot.metrics.get("error_ratio") if snapshot.reachable else None)
        super().take(snapshot)

    def summary(self) -> Text:
        snaps = self.ordered()
        if not snaps:
            return plain("no error-rate sources")
        worst = max(snaps, key=lambda s: s.metrics.get("error_ratio") or 0)
        return plain(f"highest 5xx: {worst.name} {percent(worst.metrics.get('error_ratio'))}")

    def snapshot_rows(self, snap: Snapshot) -> list[Row]:
        m = snap.metrics
        colour = self.colours
        notes = snap.error or "; ".join(snap.details.get("notes", ()))
        return [("service", (
            state_cell(snap.state, colour), plain(snap.name), plain(percent(m.get("error_ratio"))),
            plain(sparkline(self.history.get(snap.name, ())), colour.style("state-critical")),
            plain(number(m.get("request_rate"))), plain(duration(m.get("p95_latency_s"))),
            plain(notes, "dim")))]

    def unreachable_rows(self, snap: Snapshot) -> list[Row]:
        return [(f"{snap.kind}:{snap.name}:service", (
            state_cell(snap.state, self.colours), plain(snap.name), plain("–"), plain(""), plain("–"),
            plain("–"), plain(snap.error or "", "dim")))]
