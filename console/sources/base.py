"""What every source is: something polled for an immutable snapshot (the
snapshot itself is in :mod:`console.vocabulary`, the :class:`Source` protocol
and what else a source can do in :mod:`console.capabilities`).

Sources know nothing of Textual. A source's ``poll()`` is a coroutine that
returns a :class:`Snapshot`; :func:`bounded_poll` puts a deadline on it so a
hung server turns into an ``unreachable`` snapshot instead of a hung caller.
"""

from __future__ import annotations

import asyncio
import time

from console.capabilities import Source
from console.vocabulary import Breach, ProbeError, Snapshot, State, unreachable, utcnow

__all__ = ["Breach", "ProbeError", "Snapshot", "State", "unreachable", "utcnow", "Source", "bounded_poll",
           "describe_error", "one_line", "Backoff"]


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace collapsed to single spaces, cut to ``limit`` with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def first_leaf(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups, else ``exc``."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def describe_error(exc: BaseException) -> str:
    """One line, no traceback: what an operator needs to read at 3 a.m.

    An exception group (asyncio/anyio task groups) is described by the first
    exception inside it: "ExceptionGroup: unhandled errors in a TaskGroup"
    tells nobody anything.
    """
    exc = first_leaf(exc)
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
    """Delays between reconnect attempts after a loss: 1, 2, 4 … up to a cap.

    A poll that backs off shows the server as down without asking it, so a
    backoff longer than the refresh would hide a recovered server: after a
    45 s hang one said "down … retrying" for 29 s more. Two rules keep a
    recovered server hidden for two refresh intervals at most. The sources
    built from the config are capped at its refresh (:meth:`within`), so
    "retrying in" never says more than one refresh. And :meth:`ready` never
    says no twice in a row, since each poll asks it once: that holds at
    whatever interval the polls come (the operator can change it while the
    console runs), at the price of a knock on a dead server every other poll.
    """

    def __init__(self, first: float = 1.0, cap: float = 30.0, clock=time.monotonic) -> None:
        self.first, self.cap, self.clock = first, cap, clock
        self._failures = 0
        self._not_before = 0.0
        self._held_back = False  # the last ready() said no

    def within(self, seconds: float) -> None:
        """Never wait longer than ``seconds`` (the refresh) between attempts."""
        self.cap = min(self.cap, seconds)
        self.first = min(self.first, self.cap)
        self._not_before = min(self._not_before, self.clock() + self.cap)

    def ready(self) -> bool:
        if self._held_back or self.clock() >= self._not_before:
            self._held_back = False
            return True
        self._held_back = True
        return False

    def wait_left(self) -> float:
        return max(0.0, self._not_before - self.clock())

    def failed(self) -> None:
        delay = min(self.cap, self.first * (2 ** self._failures))
        self._failures += 1
        self._not_before = self.clock() + delay

    def succeeded(self) -> None:
        self._failures = 0
        self._not_before = 0.0
        self._held_back = False
