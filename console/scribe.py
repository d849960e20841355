"""The app's hold on the journal: one place that appends, refreshes, and
says plainly when the disk refuses (nothing is dropped: the journal keeps
pending entries and writes them when it can)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Callable

from console.incident.journal import Journal
from console.incident.state import SCHEMES, Incident

SEVERITIES = {level.code for scheme in SCHEMES for level in scheme.levels}


class Scribe:
    def __init__(self, journal: Journal, clock: Callable[[], datetime]) -> None:
        self.journal = journal
        self.clock = clock
        self._told: str | None = None
        self._incident: tuple[tuple, Incident] | None = None

    def record(self, kind: str, /, **data: Any):
        return self.journal.append(kind, **data)

    def refresh(self) -> bool:
        """True when others wrote, or a pending write landed or failed anew."""
        news = self.journal.refresh()
        return bool(news) or self.journal.write_error != self._told

    def incident(self, now: datetime) -> Incident:
        """The incident as of ``now``. Replayed only when events were added
        (2,000 events take ~20 ms); the clock alone just moves ``now``."""
        events = self.journal.events()
        cached = self._incident
        if cached is None or cached[0] is not events:
            self._incident = (events, Incident.from_events(events, now))
        elif cached[1].now != now:
            self._incident = (events, replace(cached[1], now=now))
        return self._incident[1]

    def problem(self) -> str | None:
        """The write error, once each time it changes; None when nothing new."""
        error = self.journal.write_error
        if error == self._told:
            return None
        self._told = error
        if error is None:
            return None
        return error  # it already says how many entries are kept in memory

    def close(self) -> None:
        self.journal.close()
