"""What the journal should hear from the live panes: changes, not polls.

A source lost or recovered, a metric crossing into warning or critical or back
to normal: each is one journal event when it happens, never one per poll.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from console.vocabulary import Snapshot, State

Event = tuple[str, dict[str, Any]]


@dataclass
class Crossings:
    _reachable: dict[tuple[str, str], bool] = field(default_factory=dict)
    _breached: dict[tuple[str, str], dict[str, State]] = field(default_factory=dict)

    def remember(self, events) -> None:
        """Start from what the journal already says (a restarted console must
        not journal the same crossing again)."""
        for event in events:
            data = event.data
            key = (data.get("kind"), data.get("source"))
            if event.kind == "threshold.crossed":
                breached = self._breached.setdefault(key, {})
                if data.get("state") == State.OK.value:
                    breached.pop(data.get("metric"), None)
                else:
                    breached[data.get("metric")] = State(data.get("state"))
            elif event.kind in ("source.lost", "source.recovered"):
                self._reachable[key] = event.kind == "source.recovered"

    def observe(self, snap: Snapshot) -> list[Event]:
        events: list[Event] = []
        key = snap.key
        was = self._reachable.get(key)
        self._reachable[key] = snap.reachable
        if was is not None and was != snap.reachable:
            if snap.reachable:
                events.append(("source.recovered", {"source": snap.name, "kind": snap.kind}))
            else:
                events.append(("source.lost", {"source": snap.name, "kind": snap.kind,
                                               "error": snap.error or "unreachable"}))
        elif was is None and not snap.reachable:  # down from the first look
            events.append(("source.lost", {"source": snap.name, "kind": snap.kind,
                                           "error": snap.error or "unreachable"}))
        if not snap.reachable:
            return events  # thresholds are unknown while it cannot be read
        before = self._breached.get(key, {})
        now = {b.metric: b.state for b in snap.breaches}
        for breach in snap.breaches:
            if before.get(breach.metric) is not breach.state:
                events.append(("threshold.crossed", {
                    "source": snap.name, "kind": snap.kind, "metric": breach.metric, "value": breach.value,
                    "limit": breach.limit, "state": breach.state.value,
                    "previous": before.get(breach.metric, State.OK).value}))
        for metric, state in before.items():
            if metric not in now:
                events.append(("threshold.crossed", {
                    "source": snap.name, "kind": snap.kind, "metric": metric,
                    "value": snap.metrics.get(metric), "limit": None, "state": State.OK.value,
                    "previous": state.value}))
        self._breached[key] = now
        return events
