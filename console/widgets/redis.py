"""Redis: a metric per row, an instance per column.

Enter on a metric's row opens the detail that explains it (the clients
behind ``clients``, the entries behind ``slowlog``) of one instance:
rows are metrics, not instances, so a row names one, the first configured
instance that answers (the leftmost live column). An instance that stops
answering keeps its last values, dimmed, instead of turning into ``–``.
"""

from __future__ import annotations

from typing import Callable, Mapping

from rich.style import Style
from rich.text import Text

from console.drill import RowRef
from console.readings import STATE_MARK, duration, millis, number, percent, size
from console.vocabulary import Snapshot
from console.text import inert, plain
from console.widgets.pane import LivePane, dimmed
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

# The detail Enter opens from each row: the view that explains that reading.
DETAILS = {"clients": "clients", "blocked": "clients", "rejected conns": "clients", "memory": "memory",
           "evictions/s": "memory", "role · lag": "replication", "slowlog": "slowlog"}
OTHER_DETAIL = "keyspace"  # hit rate, ops/s, ping: where the traffic goes


class RedisPane(LivePane):
    TITLE = "4 Redis"
    KINDS = ("redis",)

    def __init__(self, instances: tuple[str, ...] = (), **kwargs) -> None:
        self.instances = instances or ("redis",)
        # Two instances share a half-width pane: each can give up cells to the next.
        self.COLUMNS = (("", 15, 11),) + tuple((name[:18], 18, 9) for name in self.instances)
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
        refs: dict[str, RowRef] = {}
        target = self._drilled_instance(by_name)
        breach = self.colours.style("state-critical", bold=True)
        for label, metrics, reading in READINGS:
            cells = [plain(label, "bold")]
            cells += [self._cell(by_name.get(name), reading, metrics, breach) for name in self.instances]
            rows.append((label, tuple(cells)))
            if target is not None:
                refs[label] = RowRef("redis", target, DETAILS.get(label, OTHER_DETAIL))
        self.refs = refs
        return rows

    def _cell(self, snap: Snapshot | None, reading: Callable[[Mapping], str], metrics: tuple[str, ...],
              breach: Style) -> Text:
        """The reading now, else the last one that was read, dimmed."""
        shown = snap if snap is None or snap.reachable else self.last_good.get(snap.key)
        if shown is None:
            return plain("–", "dim")
        breached = any(b.metric in metrics for b in shown.breaches)
        cell = plain(reading(shown.metrics), breach if breached else "")
        return cell if shown is snap else dimmed((cell,))[0]

    def _drilled_instance(self, by_name: Mapping[str, Snapshot]) -> str | None:
        """The first instance that answers, else the first heard of (its
        detail then says why it cannot be read)."""
        heard = [name for name in self.instances if name in by_name]
        return next((name for name in heard if by_name[name].reachable), heard[0] if heard else None)
