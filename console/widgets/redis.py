"""Redis: a metric per row, an instance per column."""

from __future__ import annotations

from typing import Callable, Mapping

from rich.text import Text

from console.readings import STATE_MARK, duration, millis, number, percent, size
from console.vocabulary import Snapshot
from console.text import inert, plain
from console.widgets.pane import LivePane
from console.widgets.table import Row


def _of(a: str, b: str, fmt: Callable = number) -> Callable[[Mapping], str]:
    return lambda m: f"{fmt(m.get(a))} / {fmt(m.get(b)) if m.get(b) else '∞'}"


# label, the metrics it shows (a breach of any highlights it), how it reads
READINGS: tuple[tuple[str, tuple[str, ...], Callable[[Mapping], str]], ...] = (
    ("clients", ("clients_ratio", "connected_clients"), _of("connected_clients", "maxclients")),
    ("blocked", ("blocked_clients",), lambda m: number(m.get("blocked_clients"))),
    ("memory", ("memory_ratio", "used_memory"), _of("used_memory", "maxmemory", size)),
    ("evictions/s", ("evictions_per_sec",), lambda m: number(m.get("evictions_per_sec"))),
    ("hit rate", ("hit_rate",), lambda m: percent(m.get("hit_rate"))),
    ("ops/s", ("ops_per_sec",), lambda m: number(m.get("ops_per_sec"))),
    ("rejected conns", ("rejected_connections_per_sec",), lambda m: number(m.get("rejected_connections"), 0)),
    ("role · lag", ("replication_lag_s",), lambda m: f"{m.get('role', '–')} · {duration(m.get('replication_lag_s'))}"),
    ("slowlog", ("slowlog_len",), lambda m: number(m.get("slowlog_len"))),
    ("ping", ("ping_ms",), lambda m: millis(m.get("ping_ms"))),
)


class RedisPane(LivePane):
    TITLE = "4 Redis"
    KINDS = ("redis",)

    def __init__(self, instances: tuple[str, ...] = (), **kwargs) -> None:
        self.instances = instances or ("redis",)
        self.COLUMNS = (("", 15),) + tuple((name[:18], 18) for name in self.instances)
        super().__init__(**kwargs)

    def summary(self) -> Text:
        text, colour = Text(), self.colours
        for snap in self.ordered():
            if text:
                text.append("  ")
            text.append(f"{STATE_MARK[snap.state]} {inert(snap.name, 30)}", colour.state(snap.state))
            if snap.error:
                text.append(" " + plain(snap.error, limit=120).plain, colour.style("state-critical"))
        return text

    def rows(self) -> list[Row]:
        by_name: dict[str, Snapshot] = {s.name: s for s in self.ordered()}
        rows: list[Row] = []
        breach = self.colours.style("state-critical", bold=True)
        for label, metrics, reading in READINGS:
            cells = [plain(label, "bold")]
            for name in self.instances:
                snap = by_name.get(name)
                if snap is None or not snap.reachable:
                    cells.append(plain("–", "dim"))
                else:
                    breached = any(b.metric in metrics for b in snap.breaches)
                    cells.append(plain(reading(snap.metrics), breach if breached else ""))
            rows.append((label, tuple(cells)))
        return rows
