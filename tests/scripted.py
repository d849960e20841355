"""A source that replays readings the test gives it, for screen tests.

Sources themselves are tested against real servers; these tests are about
what the screen does with readings (stale, unreachable, hostile text, hangs).
"""

from __future__ import annotations

import asyncio

from console.sources.base import Snapshot, State, utcnow


class ScriptedSource:
    def __init__(self, kind: str, name: str, metrics=None, details=None, timeout: float = 0.5) -> None:
        self.kind, self.name, self.timeout = kind, name, timeout
        self.metrics = metrics or {}
        self.details = details or {}
        self.hang = False
        self.polls = 0
        self.closed = False

    async def poll(self) -> Snapshot:
        self.polls += 1
        if self.hang:
            await asyncio.Event().wait()
        return Snapshot(self.kind, self.name, State.OK, utcnow(), metrics=self.metrics, details=self.details)

    async def close(self) -> None:
        self.closed = True


class Clock:
    """An injected clock the test moves: ``clock.at(minutes)`` after ``start``."""

    def __init__(self, start) -> None:
        self.start = self.now = start

    def __call__(self):
        return self.now

    def at(self, minutes: float):
        from datetime import timedelta

        self.now = self.start + timedelta(minutes=minutes)
        return self.now
