"""Moments: what every pane read at a milestone or an alarm, kept in the journal.

Time travel (issue 14) opens the panes as they were when a timeline entry
happened. The screen's bytes are not kept; the judged readings are, compactly:
per source its kind, name, state, error, scalar metrics (floats to four
significant digits) and breaches, never its details (session lists, pods).
A moment is an ordinary journal event (``moment``, by the console) whose
``at`` names the event it belongs to, so old journals and other readers load
it as they load any entry, and a journal without moments travels nowhere.

Bounded twice, so a flapping threshold at 1 s refresh cannot grow the
journal without end:

* one moment: at most :data:`MAX_SOURCES` readings of :data:`MAX_METRICS`
  metrics, strings clipped, and at most :data:`MAX_BYTES` of JSON (the
  readings that are fine are dropped first);
* one incident: at most :data:`MAX_MOMENTS`. Milestones (declared,
  acknowledged, a status, mitigated) always get theirs while there is room;
  alarms (crossings, a source's own state, lost, recovered) get theirs until
  :data:`THIN_FROM`, then one per :data:`THIN_SECONDS`, and none past
  :data:`ALARM_MOMENTS`, which leaves the rest of the room to milestones.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from console.vocabulary import Breach, Snapshot, State

KIND = "moment"
MILESTONES = ("incident.declared", "incident.acknowledged", "incident.status", "incident.mitigated")
ALARMS = ("threshold.crossed", "source.state", "source.lost", "source.recovered")

MAX_SOURCES = 16
MAX_METRICS = 24
MAX_TEXT = 60      # a string metric (a role, a version)
MAX_ERROR = 200
MAX_BYTES = 8_000  # one moment's data, as JSON
MAX_MOMENTS = 500
ALARM_MOMENTS = 400
THIN_FROM = 200
THIN_SECONDS = 60.0


def _number(value: float) -> float | int | None:
    if math.isnan(value) or math.isinf(value):
        return None
    return float(f"{value:.4g}")


def compact(snapshot: Snapshot) -> dict[str, Any]:
    """One reading as a moment keeps it: scalars only, bounded."""
    metrics: dict[str, Any] = {}
    for name, value in snapshot.metrics.items():
        if len(metrics) >= MAX_METRICS:
            break
        if value is None or isinstance(value, (bool, int)):
            metrics[str(name)[:MAX_TEXT]] = value
        elif isinstance(value, float):
            metrics[str(name)[:MAX_TEXT]] = _number(value)
        elif isinstance(value, str):
            metrics[str(name)[:MAX_TEXT]] = value[:MAX_TEXT]
        # mappings and lists (connections by state) are details: not kept
    breaches = [{"metric": b.metric[:MAX_TEXT], "value": _number(b.value), "limit": _number(b.limit),
                 "state": b.state.value} for b in snapshot.breaches[:MAX_METRICS]]
    return {"kind": snapshot.kind[:MAX_TEXT], "name": snapshot.name[:MAX_TEXT], "state": snapshot.state.value,
            "error": snapshot.error[:MAX_ERROR] if snapshot.error else None, "metrics": metrics,
            "breaches": breaches}


def record(at: str, latest: Mapping[tuple[str, str], Snapshot]) -> dict[str, Any] | None:
    """The data of the moment of event ``at`` (an id) from the readings
    shown now; None when there is nothing to show."""
    ordered = sorted(latest.values(), key=lambda s: (-s.state.rank, s.kind, s.name))[:MAX_SOURCES]
    readings = [compact(s) for s in ordered]
    # The worst first, so what is cut to fit is what was fine.
    while readings and len(json.dumps(readings, separators=(",", ":"))) > MAX_BYTES:
        readings.pop()
    if not readings:
        return None
    readings.sort(key=lambda r: (r["kind"], r["name"]))
    return {"at": at, "readings": readings}


@dataclass
class Budget:
    """How many moments this incident has, and whether the next may be kept."""

    kept: int = 0
    alarms: int = 0
    last_alarm: datetime | None = None

    def remember(self, events: Iterable[Any]) -> None:
        """Count the moments the journal already holds (a restarted console)."""
        events = list(events)
        kinds = {e.id: e.kind for e in events}
        for event in events:
            if event.kind != KIND:
                continue
            self.kept += 1
            if kinds.get(str(event.data.get("at"))) in ALARMS:
                self.alarms += 1
                self.last_alarm = max(self.last_alarm or event.at, event.at)

    def allows(self, trigger: str, at: datetime) -> bool:
        if self.kept >= MAX_MOMENTS:
            return False
        if trigger in MILESTONES:
            return True
        if trigger not in ALARMS or self.alarms >= ALARM_MOMENTS:
            return False
        if self.alarms >= THIN_FROM and self.last_alarm is not None:
            return (at - self.last_alarm).total_seconds() >= THIN_SECONDS
        return True

    def spend(self, trigger: str, at: datetime) -> None:
        self.kept += 1
        if trigger in ALARMS:
            self.alarms += 1
            self.last_alarm = at


# ---- travelling back -------------------------------------------------------
@dataclass(frozen=True)
class Moment:
    """A kept moment: when (its event's time), what it belongs to, the readings."""

    at: datetime
    event_id: str
    what: str
    readings: tuple[Snapshot, ...]


def readings(data: Mapping[str, Any], at: datetime) -> tuple[Snapshot, ...]:
    """The snapshots a moment's data holds; what another writer made
    unreadable is left out, never raised."""
    out = []
    raw = data.get("readings")
    for item in raw if isinstance(raw, (list, tuple)) else ():
        snapshot = _snapshot(item, at)
        if snapshot is not None:
            out.append(snapshot)
    return tuple(out)


def _snapshot(item: Any, at: datetime) -> Snapshot | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("kind"), str) or not isinstance(item.get("name"), str):
        return None
    try:
        state = State(item.get("state"))
    except ValueError:
        state = State.UNKNOWN
    metrics = item.get("metrics")
    metrics = {str(k): v for k, v in metrics.items() if v is None or isinstance(v, (bool, int, float, str))} \
        if isinstance(metrics, Mapping) else {}
    breaches = []
    for b in item.get("breaches") or ():
        try:
            breaches.append(Breach(str(b["metric"]), float(b["value"]), float(b["limit"]), State(b["state"])))
        except (KeyError, TypeError, ValueError):
            continue
    error = item.get("error")
    return Snapshot(item["kind"], item["name"], state, at, error=error if isinstance(error, str) else None,
                    metrics=metrics, breaches=tuple(breaches))


def kept(events: Iterable[Any]) -> list[Moment]:
    """Every moment in the journal, oldest first, at its event's time."""
    events = list(events)
    by_id = {e.id: e for e in events}
    moments = []
    for event in events:
        if event.kind != KIND:
            continue
        trigger = by_id.get(str(event.data.get("at")))
        at = trigger.at if trigger is not None else event.at
        moments.append(Moment(at, trigger.id if trigger is not None else event.id,
                              trigger.kind if trigger is not None else KIND, readings(event.data, at)))
    moments.sort(key=lambda m: m.at)
    return moments


def nearest(moments: list[Moment], events: Iterable[Any], event_id: str) -> int | None:
    """The index of the moment of ``event_id``, else of the last one kept
    before it; None when none was kept at or before it."""
    for i, moment in enumerate(moments):
        if moment.event_id == event_id:
            return i
    entry = next((e for e in events if e.id == event_id), None)
    if entry is None:
        return None
    before = [i for i, m in enumerate(moments) if m.at <= entry.at]
    return before[-1] if before else None
