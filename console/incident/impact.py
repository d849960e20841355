"""Failed requests, estimated from the error-rate readings the journal holds.

The journal keeps what was judged, not every poll: threshold crossings carry
the value that crossed (``error_ratio``, ``request_rate``), and moments
(``moment`` events, ``{"readings": [{kind, name, state, metrics}]}``) carry
whole readings. Each reading is taken to hold until the next one of the same
source, and request rate × 5xx ratio is integrated over the incident window.
That is coarse between crossings, so the report states the method with the
number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from console.incident.journal import Event

RATIO, RATE = "error_ratio", "request_rate"


@dataclass(frozen=True)
class FailedRequests:
    count: float | None                 # None: no source had both a ratio and a rate
    estimated_from: tuple[str, ...]     # sources with both
    without_rate: tuple[str, ...]       # a 5xx ratio but never a request rate
    peak_ratio: Mapping[str, float]     # the highest 5xx ratio recorded, per source


def failed_requests(events: Iterable[Event], start: datetime | None, end: datetime | None) -> FailedRequests:
    """The estimate over ``start``..``end`` (detection to resolution, or now)."""
    samples: dict[str, list[tuple[datetime, str, float]]] = {}
    for event in events:
        for source, metric, value in _readings(event):
            samples.setdefault(source, []).append((event.at, metric, value))
    total, used, without, peaks = 0.0, [], [], {}
    for source, taken in samples.items():
        ratios = [value for _, metric, value in taken if metric == RATIO]
        if not ratios:
            continue
        peaks[source] = max(ratios)
        if not any(metric == RATE for _, metric, _ in taken):
            without.append(source)
            continue
        used.append(source)
        if start is not None and end is not None:
            total += _integral(sorted(taken, key=lambda s: s[0]), start, end)
    return FailedRequests(total if used and start is not None and end is not None else None,
                          tuple(used), tuple(without), peaks)


def _integral(taken: list[tuple[datetime, str, float]], start: datetime, end: datetime) -> float:
    held: dict[str, float] = {}
    total = 0.0
    since = None
    for at, metric, value in taken + [(end, "", 0.0)]:
        if since is not None and RATIO in held and RATE in held:
            lo, hi = max(since, start), min(at, end)
            if hi > lo:
                total += held[RATIO] * held[RATE] * (hi - lo).total_seconds()
        if at >= end:
            break
        if metric:
            held[metric] = value
        since = at
    return total


def _readings(event: Event) -> list[tuple[str, str, float]]:
    data = event.data
    if event.kind == "threshold.crossed" and data.get("metric") in (RATIO, RATE):
        value = _number(data.get("value"))
        return [] if value is None or not isinstance(data.get("source"), str) else [
            (data["source"], data["metric"], value)]
    if event.kind != "moment" or not isinstance(data.get("readings"), (list, tuple)):
        return []
    found = []
    for reading in data["readings"]:
        if not isinstance(reading, Mapping) or not isinstance(reading.get("name"), str):
            continue
        metrics = reading.get("metrics")
        if not isinstance(metrics, Mapping):
            continue
        for metric in (RATIO, RATE):
            value = _number(metrics.get(metric))
            if value is not None:
                found.append((reading["name"], metric, value))
    return found


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None
