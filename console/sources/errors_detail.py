"""A service's error rates opened: which routes fail with which codes, and
how its error ratio moved.

The breakdown groups request series by their route label (``route``,
``handler``, ``path`` or ``endpoint``, whichever the service uses) and their
status label (``status`` or ``code``), 5xx first, then the busiest. The
history is the source's own last readings, kept as it polls, so it costs
nothing to show. Label values come from the monitored service and stay
``str``: the screen makes them inert.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from console.drill import Detail, Section
from console.readings import duration, number, percent
from console.vocabulary import Snapshot

ROUTE_LABELS = ("route", "handler", "path", "endpoint")
STATUS_LABELS = ("status", "code")
NO_LABEL = "(none)"
GROUPS_SHOWN = 20
HISTORY = 30  # readings kept per service: a minute at the default refresh


@dataclass(frozen=True)
class Group:
    """The requests of one route with one status code."""

    route: str
    code: str
    rate: float | None  # per second; None when it cannot be had
    count: float | None = None  # since the service started (scrapes only)

    @property
    def failing(self) -> bool:
        return self.code.startswith("5")


def route_and_code(labels: Mapping[str, str]) -> tuple[str, str]:
    route = next((labels[k] for k in ROUTE_LABELS if k in labels), NO_LABEL)
    code = next((labels[k] for k in STATUS_LABELS if k in labels), NO_LABEL)
    return str(route), str(code)


def _ranked(groups: Iterable[Group]) -> list[Group]:
    """5xx first (what is failing), then the busiest."""
    return sorted(groups, key=lambda g: (not g.failing, -(g.rate or 0.0), -(g.count or 0.0), g.route, g.code))


def _cut_note(total: int) -> str:
    return f"{total - GROUPS_SHOWN} more route/code groups not shown" if total > GROUPS_SHOWN else ""


def _joined(*parts: str) -> str:
    return "\n".join(p for p in parts if p)


# ---- from two scrapes of /metrics ------------------------------------------------

def scraped_groups(before: Mapping[tuple, float] | None, now: Mapping[tuple, float],
                   interval: float) -> tuple[list[Group], str]:
    """Per route and code: the rate between two scrapes and the count since
    the service started. Series keys are sorted (label, value) pairs."""
    reset = before is not None and any(value < before.get(key, 0.0) for key, value in now.items())
    timed = before is not None and not reset and interval > 0
    sums: dict[tuple[str, str], list[float]] = {}
    for key, value in now.items():
        group = sums.setdefault(route_and_code(dict(key)), [0.0, 0.0])
        group[1] += value
        if timed:
            group[0] += value - before.get(key, 0.0)
    groups = [Group(route, code, total / interval if timed else None, count)
              for (route, code), (total, count) in sums.items()]
    if reset:
        note = "counters went backwards (service restarted?): rates after the next scrape"
    elif before is None:
        note = "one scrape so far: counts only, rates after the next"
    else:
        note = f"rates over the last {duration(interval)} between two scrapes; counts since the service started"
    return groups, note


def scraped_section(groups: list[Group], note: str) -> Section:
    ranked = _ranked(groups)
    rows = tuple((g.route, g.code, number(g.rate, 2), number(None if g.count is None else int(g.count)))
                 for g in ranked[:GROUPS_SHOWN])
    text = _joined(note, _cut_note(len(ranked)), "" if rows else "no http_requests_total series in /metrics")
    return Section("Requests by route and code", ("Route", "Code", "req/s", "Requests"), rows, text=text)


# ---- from Prometheus ---------------------------------------------------------------

def prometheus_groups(data: Mapping[str, Any]) -> tuple[list[Group], str]:
    """The series of an instant-vector answer, or why there are none."""
    result = data.get("result")
    if data.get("resultType") != "vector" or not isinstance(result, list):
        return [], f"expected an instant vector, got {str(data.get('resultType'))[:40]}"
    groups = []
    for series in result:
        if not isinstance(series, dict) or not isinstance(series.get("metric"), dict):
            continue
        route, code = route_and_code(series["metric"])
        groups.append(Group(route, code, _sample(series.get("value"))))
    return groups, "" if groups else "no series matched (is the service's job label right?)"


def _sample(pair: Any) -> float | None:
    try:
        value = float(pair[1])
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    return value if math.isfinite(value) else None


def prometheus_section(groups: list[Group], note: str, window: str) -> Section:
    ranked = _ranked(groups)
    rows = tuple((g.route, g.code, number(g.rate, 2)) for g in ranked[:GROUPS_SHOWN])
    text = _joined(f"rates over the last {window}, the 10 busiest series and the 10 busiest 5xx series",
                   note, _cut_note(len(ranked)))
    return Section("Requests by route and code", ("Route", "Code", "req/s"), rows, text=text)


def unread_section(reason: str) -> Section:
    """The breakdown could not be had; the history still can."""
    return Section("Requests by route and code", text=f"not read: {reason}")


# ---- the error ratio's history --------------------------------------------------------

@dataclass(frozen=True)
class Reading:
    at: datetime
    error_ratio: float | None
    request_rate: float | None
    p95_latency_s: float | None
    note: str


class RatioHistory:
    """The last :data:`HISTORY` readings of one error-rates source (bounded)."""

    def __init__(self, size: int = HISTORY) -> None:
        self.readings: deque[Reading] = deque(maxlen=size)

    def add(self, snap: Snapshot) -> Snapshot:
        m = snap.metrics
        note = snap.error or "; ".join(snap.details.get("notes", ()))
        self.readings.append(Reading(snap.taken_at, m.get("error_ratio"), m.get("request_rate"),
                                     m.get("p95_latency_s"), note))
        return snap

    def section(self) -> Section:
        rows = tuple((r.at.strftime("%H:%M:%S UTC"), percent(r.error_ratio), number(r.request_rate),
                      duration(r.p95_latency_s), r.note) for r in reversed(self.readings))
        title = f"Error ratio, last {len(rows)} readings, newest first" if rows else "Error ratio history"
        return Section(title, ("Time", "5xx", "req/s", "p95", "Note"), rows,
                       text="" if rows else "no reading yet")


def detail(name: str, via: str, breakdown: Section, history: RatioHistory) -> Detail:
    return Detail(title=f"error rates {name} (via {via})", sections=(breakdown, history.section()))
