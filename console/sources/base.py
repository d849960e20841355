"""What every source returns: an immutable snapshot of one monitored thing.

Sources know nothing of Textual. A source's ``poll()`` is a coroutine that
returns a :class:`Snapshot`; :func:`bounded_poll` puts a deadline on it so a
hung server turns into an ``unreachable`` snapshot instead of a hung caller.
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Mapping, Protocol

from console.frozen import freeze, thaw


class State(str, enum.Enum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNREACHABLE = "unreachable"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def worst(self, other: "State") -> "State":
        return self if self.rank >= other.rank else other


_RANK = {State.OK: 0, State.WARNING: 1, State.CRITICAL: 2, State.UNREACHABLE: 3}


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
        return f"{self.metric}={_short(self.value)} ≥ {_short(self.limit)}"


def _short(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3g}"
    return str(int(value)) if isinstance(value, float) else str(value)


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


class Source(Protocol):
    """A monitored system. ``poll`` must not raise for anything the system does."""

    kind: str
    name: str
    timeout: float

    async def poll(self) -> Snapshot: ...

    async def close(self) -> None: ...


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace collapsed to single spaces, cut to ``limit`` with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe_error(exc: BaseException) -> str:
    """One line, no traceback: what an operator needs to read at 3 a.m."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    name = type(exc).__name__
    return f"{name}: {first}" if first else name


async def bounded_poll(source: Source, timeout: float | None = None) -> Snapshot:
    """Poll with a hard deadline; never raises for what the source does."""
    limit = source.timeout if timeout is None else timeout
    try:
        return await asyncio.wait_for(source.poll(), limit)
    except asyncio.TimeoutError:
        await _forget_connection(source)
        return unreachable(source.kind, source.name, f"timed out after {limit:g}s")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a source bug must not take the console down
        return unreachable(source.kind, source.name, describe_error(exc))


async def _forget_connection(source: Source) -> None:
    # A connection whose request timed out is in an unknown state: drop it so
    # the next poll starts clean (sources reconnect with backoff).
    forget = getattr(source, "forget", None)
    if forget is not None:
        try:
            forget()
        except Exception:
            pass


class Backoff:
    """Delays between reconnect attempts after a loss: 1, 2, 4 … up to a cap."""

    def __init__(self, first: float = 1.0, cap: float = 30.0, clock=time.monotonic) -> None:
        self.first, self.cap, self.clock = first, cap, clock
        self._failures = 0
        self._not_before = 0.0

    def ready(self) -> bool:
        return self.clock() >= self._not_before

    def wait_left(self) -> float:
        return max(0.0, self._not_before - self.clock())

    def failed(self) -> None:
        delay = min(self.cap, self.first * (2 ** self._failures))
        self._failures += 1
        self._not_before = self.clock() + delay

    def succeeded(self) -> None:
        self._failures = 0
        self._not_before = 0.0
