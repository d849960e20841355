"""Warning and critical limits per metric, and the judgement of a snapshot.

Limits are keyed ``kind.metric`` (``postgres.connections_ratio``). The source
says whether it could reach the system and flags protocol failures (a wrong
HTTP status); the limits here say whether what it read is healthy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping

from console.vocabulary import Breach, Snapshot, State


@dataclass(frozen=True)
class Limit:
    warning: float | None = None
    critical: float | None = None
    below: bool = False  # True when low values are the bad ones (hit rate)
    # A ratio over requests is judged only over at least this many of them
    # (the snapshot's ``details["window_requests"]``): one 5xx in 17 requests
    # is 6 %, and no outage. 0 judges every value.
    min_requests: int = 0

    def judge(self, value: float) -> tuple[State, float | None]:
        for state, limit in ((State.CRITICAL, self.critical), (State.WARNING, self.warning)):
            if limit is None:
                continue
            if (value <= limit) if self.below else (value >= limit):
                return state, limit
        return State.OK, None


DEFAULTS: dict[str, Limit] = {
    # The seed runbooks alert at 70 % of max_connections.
    "postgres.connections_ratio": Limit(0.70, 0.90),
    "postgres.idle_in_transaction": Limit(5, 20),
    "postgres.longest_transaction_s": Limit(300, 1800),
    "postgres.longest_query_s": Limit(60, 300),
    "postgres.blocked_sessions": Limit(1, 10),
    "redis.clients_ratio": Limit(0.80, 0.95),
    "redis.memory_ratio": Limit(0.80, 0.95),
    "redis.evictions_per_sec": Limit(1, 100),
    "redis.rejected_connections_per_sec": Limit(None, 0.001),
    "redis.blocked_clients": Limit(50, 500),
    "redis.replication_lag_s": Limit(10, 60),
    "http.latency_ms": Limit(1000, 5000),
    # The seeds: "high error rate (>5% 5xx)", "high response time (P95 > 1 s)".
    "errors.error_ratio": Limit(0.01, 0.05, min_requests=20),
    "errors.p95_latency_s": Limit(1.0, 3.0),
    "kubernetes.unavailable_replicas": Limit(1, 3),
    "kubernetes.crashlooping_pods": Limit(None, 1),
    "kubernetes.oom_killed_pods": Limit(1, 3),
    "kubernetes.warning_events": Limit(5, 50),
}


# Metrics that may be given limits in the config though they have no default.
EXTRA_METRICS = {
    "postgres.connections_total", "postgres.longest_idle_in_transaction_s",
    "redis.connected_clients", "redis.used_memory", "redis.hit_rate", "redis.ops_per_sec",
    "redis.slowlog_len", "redis.ping_ms", "errors.request_rate", "http.status_code",
    "kubernetes.restarts", "kubernetes.pods_not_ready",
}
KNOWN_METRICS = set(DEFAULTS) | EXTRA_METRICS
# Ratios taken over requests: the ones a minimum number of requests applies to.
REQUEST_RATIOS = ("errors.error_ratio",)


def merged(overrides: Mapping[str, Limit]) -> dict[str, Limit]:
    out = dict(DEFAULTS)
    out.update(overrides)
    return out


def with_min_requests(limits: Mapping[str, Limit], count: int) -> dict[str, Limit]:
    """``limits`` with every ratio over requests judged only over ``count`` or more."""
    out = dict(limits)
    for metric in REQUEST_RATIOS:
        if metric in out:
            out[metric] = replace(out[metric], min_requests=count)
    return out


def judge(snapshot: Snapshot, limits: Mapping[str, Limit]) -> Snapshot:
    """The snapshot with its state raised by every metric past a limit."""
    if not snapshot.reachable:
        return snapshot
    state = snapshot.state
    breaches: list[Breach] = []
    unjudged: dict[str, str] = {}
    prefix = snapshot.kind + "."
    for metric, value in snapshot.metrics.items():
        limit = limits.get(prefix + str(metric))
        if limit is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isnan(value):
            continue
        verdict, at = limit.judge(float(value))
        too_few = _too_few_requests(snapshot, limit)
        if too_few is not None:
            # Neither a breach nor a clean bill: the incident's record treats
            # it as no reading at all (console.incident.crossings).
            unjudged[str(metric)] = too_few if verdict is not State.OK else ""
            continue
        if verdict is not State.OK and at is not None:
            breaches.append(Breach(str(metric), float(value), at, verdict))
            state = state.worst(verdict)
    if unjudged:
        snapshot = _with_unjudged(snapshot, unjudged)
    if state is snapshot.state and not breaches:
        return snapshot
    return snapshot.with_state(state, tuple(breaches))


def _too_few_requests(snapshot: Snapshot, limit: Limit) -> str | None:
    """Why a ratio is not judged (too few requests behind it), or None.
    An unknown count is judged: hiding a real outage is worse than a flap."""
    count = snapshot.details.get("window_requests")
    if limit.min_requests <= 0 or isinstance(count, bool) or not isinstance(count, (int, float)):
        return None
    if count >= limit.min_requests:
        return None
    return f"{count:.0f} requests in the window, fewer than the {limit.min_requests} a ratio is judged over"


def _with_unjudged(snapshot: Snapshot, unjudged: Mapping[str, str]) -> Snapshot:
    """The snapshot saying which metrics were not judged (``details["unjudged"]``);
    a value that would have breached also gets a note, for the pane."""
    details = dict(snapshot.details)
    details["unjudged"] = tuple(sorted(unjudged))
    notes = tuple(details.get("notes", ()))
    said = tuple(f"{metric} not judged: {why}" for metric, why in sorted(unjudged.items()) if why)
    if said:
        details["notes"] = notes + tuple(note for note in said if note not in notes)
    return replace(snapshot, details=details)
