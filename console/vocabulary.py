"""The incident's vocabulary: what every layer may say.

A reading of a monitored system (:class:`Snapshot`), its :class:`State`, the
:class:`Breach` of a threshold it was judged by, and the :class:`ProbeError`
of a probe that got no answer. This is the ground floor: sources, the
incident, playbooks and the screen all import it, and it imports none of
them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Mapping

from console.frozen import freeze, thaw
from console.units import metric_value


class State(str, enum.Enum):
    OK = "ok"
    # Answered, but with nothing to judge (an error-rates source whose every
    # value is null: the wrong job, or no traffic at all). Not ok, since "ok"
    # would be a guess; not a breach either, since nothing crossed a limit.
    UNKNOWN = "unknown"
    WARNING = "warning"
    CRITICAL = "critical"
    UNREACHABLE = "unreachable"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def worst(self, other: "State") -> "State":
        return self if self.rank >= other.rank else other


# Unknown ranks above ok (a pane with one source of no data is not all well)
# and below warning (a reading past a limit says more than none at all).
_RANK = {State.OK: 0, State.UNKNOWN: 1, State.WARNING: 2, State.CRITICAL: 3, State.UNREACHABLE: 4}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Breach:
    """A metric past its threshold: what the state was computed from."""

    metric: str
    value: float
    limit: float
    state: State

    def describe(self) -> str:
        """``error_ratio=5.9% ≥ 5.0%``; ``≤`` for a limit that low values cross (hit rate)."""
        towards = "≤" if self.value < self.limit else "≥"
        value, limit = metric_value(self.metric, self.value), metric_value(self.metric, self.limit)
        return f"{self.metric}={value} {towards} {limit}"


@dataclass(frozen=True)
class Snapshot:
    """One reading of one source.

    ``metrics`` keep the monitored system's own vocabulary and hold only
    JSON-able scalars and small mappings; ``details`` holds rows for panes
    (sessions, workloads, events) as tuples of mappings. Both are frozen.
    """

    kind: str
    name: str
    state: State
    taken_at: datetime
    error: str | None = None
    latency_ms: float | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    breaches: tuple[Breach, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", freeze(self.metrics))
        object.__setattr__(self, "details", freeze(self.details))

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)

    @property
    def reachable(self) -> bool:
        return self.state is not State.UNREACHABLE

    def with_state(self, state: State, breaches: tuple[Breach, ...] = ()) -> "Snapshot":
        return replace(self, state=state, breaches=breaches)

    def to_json(self) -> dict[str, Any]:
        """The per-source object of ``status --json`` (a contract)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "state": self.state.value,
            "error": self.error,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "checked_at": self.taken_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "metrics": thaw(self.metrics),
        }
        if self.breaches:
            out["breaches"] = [
                {"metric": b.metric, "value": b.value, "limit": b.limit, "state": b.state.value}
                for b in self.breaches
            ]
        return out


def unreachable(kind: str, name: str, error: str, metrics: Mapping[str, Any] | None = None) -> Snapshot:
    return Snapshot(kind=kind, name=name, state=State.UNREACHABLE, taken_at=utcnow(),
                    error=error, metrics=metrics or {})


class ProbeError(Exception):
    """A probe or action got no answer: one line for the operator, no traceback."""
