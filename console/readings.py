"""How readings are written for people: units, durations, state words.

Shared by the panes and ``incident-console status`` so a number reads the
same everywhere.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from console.vocabulary import Snapshot, State

# Words and symbols beside colours, so a state reads on a greyscale projector.
STATE_MARK = {
    State.OK: "● ok",
    State.WARNING: "▲ warn",
    State.CRITICAL: "✖ crit",
    State.UNREACHABLE: "? down",
}


def number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "–"
        if value.is_integer() and abs(value) >= 10:
            return str(int(value))
        return f"{value:.{digits}f}"
    return str(value)


def percent(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value * 100:.1f}%" if value < 0.1 else f"{value * 100:.0f}%"


def duration(seconds: Any) -> str:
    if seconds is None or (isinstance(seconds, float) and not math.isfinite(seconds)):
        return "–"
    s = float(seconds)
    if s < 10:
        return f"{s:.1f}s"
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"


def size(value: Any) -> str:
    if value is None:
        return "–"
    n = float(value)
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return str(value)


def micros(value: Any) -> str:
    """A duration given in microseconds (SLOWLOG), in the unit that reads best."""
    if value is None:
        return "–"
    try:
        us = float(value)
    except (TypeError, ValueError):
        return "–"
    if us < 1000:
        return f"{us:.0f}µs"
    if us < 1_000_000:
        return f"{us / 1000:.1f}ms"
    return f"{us / 1_000_000:.2f}s"


def millis(value: Any) -> str:
    return "–" if value is None else f"{float(value):.0f}ms"


def summary(snap: Snapshot) -> str:
    """One line a person reads first: the numbers that say whether it hurts."""
    if not snap.reachable:
        return snap.error or "unreachable"
    m = snap.metrics
    if snap.kind == "postgres":
        usable = m.get("usable_connections", m.get("max_connections"))
        return (f"{m.get('connections_total')}/{usable} usable conns "
                f"({percent(m.get('connections_ratio'))}), idle in tx {m.get('idle_in_transaction')}, "
                f"blocked {m.get('blocked_sessions')}, longest tx {duration(m.get('longest_transaction_s'))}")
    if snap.kind == "redis":
        return (f"clients {m.get('connected_clients')}/{m.get('maxclients')}, mem {size(m.get('used_memory'))}"
                f"/{size(m.get('maxmemory')) if m.get('maxmemory') else '∞'}, hit {percent(m.get('hit_rate'))}, "
                f"{number(m.get('ops_per_sec'))} ops/s, evict {number(m.get('evictions_per_sec'))}/s")
    if snap.kind == "http":
        return f"HTTP {m.get('status_code')} in {millis(m.get('latency_ms'))}" + (f" — {snap.error}" if snap.error else "")
    if snap.kind == "errors":
        return (f"5xx {percent(m.get('error_ratio'))}, {number(m.get('request_rate'))} req/s, "
                f"p95 {duration(m.get('p95_latency_s'))}")
    if snap.kind == "kubernetes":
        return (f"{m.get('workloads')} workloads, {m.get('unavailable_replicas')} replicas unavailable, "
                f"{m.get('crashlooping_pods')} crashlooping, {m.get('warning_events')} warnings/15m")
    return snap.error or ""


def role_warning(metrics: Mapping[str, Any]) -> str | None:
    """What the operator must know about the monitoring role, or ``None``."""
    role = str(metrics.get("role") or "?")
    if metrics.get("role_superuser"):
        power = "is a superuser"
    elif metrics.get("role_can_signal_backends"):
        power = "can terminate other sessions (pg_signal_backend)"
    else:
        return None
    return (f"role {role} {power}: probes are guarded by the console alone; "
            "monitor with a role that has pg_monitor only")
