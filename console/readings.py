"""How readings are written for people: units, durations, state words.

Shared by the panes and ``incident-console status`` so a number reads the
same everywhere.
"""

from __future__ import annotations

from typing import Any, Mapping

from console.units import duration, general, metric_value, micros, millis, number, percent, size  # noqa: F401
from console.vocabulary import Snapshot, State

# Words and symbols beside colours, so a state reads on a greyscale projector.
STATE_MARK = {
    State.OK: "● ok",
    # A hollow ok: answered, with nothing to judge. "none" as the Error
    # rates pane has said it; its own symbol, since "◌" means stale.
    State.UNKNOWN: "○ none",
    State.WARNING: "▲ warn",
    State.CRITICAL: "✖ crit",
    State.UNREACHABLE: "? down",
}


def summary(snap: Snapshot) -> str:
    """One line a person reads first: the numbers that say whether it hurts."""
    if not snap.reachable:
        return snap.error or "unreachable"
    m = snap.metrics
    if snap.kind == "postgres":
        usable = m.get("usable_connections", m.get("max_connections"))
        return (f"{general(m.get('connections_total'))}/{general(usable)} usable conns "
                f"({percent(m.get('connections_ratio'))}), idle in tx {general(m.get('idle_in_transaction'))}, "
                f"blocked {general(m.get('blocked_sessions'))}, longest tx {duration(m.get('longest_transaction_s'))}")
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
        return (f"{general(m.get('workloads'))} workloads, {general(m.get('unavailable_replicas'))} replicas "
                f"unavailable, {general(m.get('crashlooping_pods'))} crashlooping, "
                f"{general(m.get('warning_events'))} warnings/15m")
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
