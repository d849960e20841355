"""The app's hold on the journal: one place that appends, refreshes, and
says plainly when the disk refuses (nothing is dropped: the journal keeps
pending entries and writes them when it can, and what is still unwritten
when the console ends goes to a recovery file, or, failing that, to the
terminal as text)."""

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
        return error  # it already says how many entries wait, and where

    def close(self) -> None:
        self.journal.close()

    def unwritten(self) -> int:
        """How many entries are not on disk, after one more try."""
        self.journal.flush()
        return len(self.journal.pending)

    def save_unwritten(self) -> str:
        """Put what is unwritten in a recovery file; the message naming it.
        OSError when no recovery file can be written either."""
        n = len(self.journal.pending)
        saved = self.journal.save_unwritten()
        return (f"{_entries(n)} could not be written to {self.journal.path} "
                f"({self.journal.write_problem or 'refused'}): saved in {saved}; they go into the journal "
                f"the next time the console, note or export opens it")


def leaving(journal: Journal) -> str | None:
    """What to print on the terminal as the process ends with ``journal``:
    where its unwritten entries went, or, if nowhere, the entries themselves
    (the terminal's scrollback is the last place left). None if all is written."""
    from console.incident.export import describe

    journal.flush()
    pending = journal.pending
    if not pending:
        return None
    try:
        return Scribe(journal, lambda: pending[0].at).save_unwritten()
    except OSError as exc:
        lines = [f"{event.at:%Y-%m-%d %H:%M:%S} UTC {event.user}: {describe(event)}" for event in pending]
        return (f"{_entries(len(pending))} were NOT saved: not written to {journal.path} "
                f"({journal.write_problem or 'refused'}), and {exc}. Here they are, to keep:\n" + "\n".join(lines))


def _entries(n: int) -> str:
    return f"{n} {'entry' if n == 1 else 'entries'}"
