from __future__ import annotations

import math

from console.sources.base import Snapshot, State, unreachable, utcnow
from console.thresholds import DEFAULTS, Limit, judge


def _pg(ratio: float, **extra) -> Snapshot:
    return Snapshot("postgres", "primary", State.OK, utcnow(), metrics={"connections_ratio": ratio, **extra})


def test_connections_warn_at_seventy_and_go_critical_at_ninety_percent():
    assert judge(_pg(0.69), DEFAULTS).state is State.OK
    warned = judge(_pg(0.70), DEFAULTS)
    assert warned.state is State.WARNING and warned.breaches[0].metric == "connections_ratio"
    assert judge(_pg(0.95), DEFAULTS).state is State.CRITICAL


def test_below_limits_and_nan_and_bools():
    limits = {"redis.hit_rate": Limit(0.8, 0.5, below=True)}
    snap = Snapshot("redis", "c", State.OK, utcnow(), metrics={"hit_rate": 0.4})
    assert judge(snap, limits).state is State.CRITICAL
    assert judge(_pg(math.nan), DEFAULTS).state is State.OK


def test_source_state_is_never_lowered_and_unreachable_untouched():
    crit = Snapshot("http", "api", State.CRITICAL, utcnow(), metrics={"latency_ms": 5})
    assert judge(crit, DEFAULTS).state is State.CRITICAL
    down = unreachable("postgres", "primary", "refused")
    assert judge(down, DEFAULTS) is down


def test_json_shape_is_the_contract():
    out = judge(_pg(0.95, connections_by_state={"idle": 3}), DEFAULTS).to_json()
    assert set(out) >= {"kind", "name", "state", "error", "latency_ms", "metrics"}
    assert out["state"] == "critical" and out["metrics"]["connections_by_state"] == {"idle": 3}
