"""How a number is written for people: ratios, counts, bytes, durations.

The one formatting of every number a person reads, on screen, in the
journal's wording, in probe output and in the export (issue 13 found
``0.058823529411764705``, ``2.0`` replicas and ``0:00:19.113606``). It sits
below the vocabulary, which words a breach with it; ``console.readings``
offers it to the panes.
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from typing import Any

NONE = "–"


def _finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is no number a person can read."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, ArithmeticError):
        return None
    return number if math.isfinite(number) else None


def number(value: Any, digits: int = 1) -> str:
    """A rate or a reading with ``digits`` decimals (``9.9``); whole from 10 up when whole."""
    if value is None:
        return NONE
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return NONE
        if value.is_integer() and abs(value) >= 10:
            return str(int(value))
        return f"{value:.{digits}f}"
    return str(value)


def general(value: Any) -> str:
    """A number with no unit known: whole without decimals (``2``, not
    ``2.0``), else three significant digits (``0.0588``, ``12.3``, ``1234.6``)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return NONE if value is None else str(value)  # words stay words
    n = _finite(value)
    if n is None:
        return NONE
    if n.is_integer():
        return str(int(n))
    if abs(n) >= 100:
        return f"{n:.1f}"
    return f"{n:.3g}"


def percent(value: Any) -> str:
    """A fraction of one as a percentage: ``5.9%`` below 10 %, ``95%`` above."""
    n = _finite(value)
    if n is None:
        return NONE
    return f"{n * 100:.1f}%" if n < 0.1 else f"{n * 100:.0f}%"


def duration(seconds: Any) -> str:
    """Seconds (or a timedelta) in the unit that reads best: ``4.7s``, ``19s``, ``12m``, ``2.5h``."""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    s = _finite(seconds)
    if s is None:
        return NONE
    if s < 10:
        return f"{s:.1f}s"
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"


def size(value: Any) -> str:
    """Bytes in B, K, M, G or T (powers of 1024)."""
    n = _finite(value)
    if n is None:
        return NONE
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return str(value)


def micros(value: Any) -> str:
    """A duration given in microseconds (SLOWLOG), in the unit that reads best."""
    us = _finite(value)
    if us is None:
        return NONE
    if us < 1000:
        return f"{us:.0f}µs"
    if us < 1_000_000:
        return f"{us / 1000:.1f}ms"
    return f"{us / 1_000_000:.2f}s"


def millis(value: Any) -> str:
    n = _finite(value)
    return NONE if n is None else f"{n:.0f}ms"


# How a metric's name says its unit, as the sources and thresholds name them
# (``error_ratio``, ``hit_rate``, ``longest_transaction_s``, ``ping_ms``,
# ``evictions_per_sec``, ``used_memory``); tried in this order.
RATIOS = ("_ratio", "_fraction")
RATIO_NAMES = {"ratio", "hit_rate", "fraction"}
RATES = ("_per_sec", "_per_s", "_per_second")
RATE_NAMES = {"request_rate", "rate"}


def metric_value(name: str, value: Any) -> str:
    """``value`` of the metric ``name`` as a person reads it: a ratio as a
    percentage, seconds and milliseconds as a duration, bytes in K/M/G, a
    rate per second with ``/s``, a count without decimals. A timedelta is a
    duration and a Decimal a number, whatever the name."""
    if isinstance(value, timedelta):
        return duration(value)
    if _finite(value) is None or not isinstance(value, (int, float, Decimal)):
        return general(value)
    n = str(name or "").lower()
    if n.endswith(RATIOS) or n in RATIO_NAMES:
        return percent(value)
    if n.endswith(("_percent", "_pct")) or n in ("percent", "pct"):
        return general(value) + "%"
    if n.endswith(RATES) or n in RATE_NAMES:
        return general(value) + "/s"
    if n.endswith("_ms"):
        return millis(value)
    if n.endswith(("_us", "_usec", "_micros")):
        return micros(value)
    if n.endswith(("_s", "_sec", "_secs", "_seconds")) or n in ("seconds", "age_s"):
        return duration(value)
    if n.endswith("_bytes") or n in ("bytes", "used_memory", "maxmemory") or n.endswith("_memory"):
        return size(value)
    return general(value)
