"""The incident log (seed 000 keeps one by hand): every journal in the data
directory's ``incidents`` folder, one line each.

Read-only and never in the way: a journal that cannot be read is listed as
unreadable with the reason, a symlink that leads out of the folder is listed
and not followed, and anything but a regular file is not opened (a FIFO
named ``x.json`` would block the read).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from console.incident.journal import Event
from console.incident.state import Incident, format_duration
from console.incident.storage import JournalStorage, JournalUnreadable
from console.text import inert

NONE = "–"


@dataclass(frozen=True)
class LoggedIncident:
    path: Path
    problem: str | None = None           # why it could not be read; then nothing else is known
    incident: Incident | None = None
    resolution: str = ""
    unreadable_entries: int = 0

    @property
    def sort_key(self) -> tuple:
        started = self.incident.started_at if self.incident is not None else None
        return (started is None, started.timestamp() if started else 0.0, self.path.name)


def incident_log(directory: Path, now: datetime) -> list[LoggedIncident]:
    """Every ``*.json`` journal in ``directory``, oldest incident first."""
    try:
        names = sorted(entry.name for entry in os.scandir(directory) if entry.name.endswith(".json"))
    except FileNotFoundError:
        return []
    root = os.path.realpath(directory)
    return sorted((_read(directory / name, root, now) for name in names), key=lambda entry: entry.sort_key)


def _read(path: Path, root: str, now: datetime) -> LoggedIncident:
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        return LoggedIncident(path, "a symlink out of the data directory, not followed")
    try:
        if not stat.S_ISREG(os.stat(real).st_mode):
            return LoggedIncident(path, "not a regular file")
    except OSError as exc:
        return LoggedIncident(path, f"unreadable: {exc.strerror or exc}")
    storage = JournalStorage(real, create_dirs=False)
    try:
        tables = storage.read() or {}
    except (JournalUnreadable, OSError, ValueError) as exc:
        return LoggedIncident(path, f"unreadable: {_reason(exc)}")
    finally:
        storage.close()
    events, bad = [], 0
    for doc in (tables.get("events") or {}).values():
        try:
            events.append(Event.from_document(doc))
        except (ValueError, TypeError, AttributeError):
            bad += 1
    incident = Incident.from_events(events, now)
    if not incident.declared:
        return LoggedIncident(path, "no incident declared in it", incident, unreadable_entries=bad)
    return LoggedIncident(path, None, incident, _resolution(incident, events), bad)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return inert(text.splitlines()[0] if text.splitlines() else text, 120)


def _resolution(incident: Incident, events: list[Event]) -> str:
    """What fixed it, as the log's one cell says it: the first #resolution
    note, else the last action or command that succeeded, else the status."""
    from console.incident.export import stripped

    notes = incident.tagged("resolution") or incident.tagged("decision")
    if notes:
        return stripped(notes[0].body)
    done = [e for e in events if (e.kind == "action" and e.data.get("ok"))
            or (e.kind == "command" and e.data.get("exit_code") == 0)]
    if done:
        d = done[-1].data
        return str(d.get("action") or d.get("command") or "")
    return "" if incident.resolved else (incident.status or "")


# -- as text ---------------------------------------------------------------------

def _span(value: Any) -> str:
    return format_duration(value) if value is not None else NONE


def _cell(value: Any, limit: int = 60) -> str:
    return inert("" if value is None else value, limit) or NONE


def rows(entries: list[LoggedIncident]) -> list[list[str]]:
    """The table ``incidents`` prints: one row per journal."""
    out = [["DATE", "SEV", "DURATION", "TTA", "TTM", "TTR", "STATUS", "TITLE"]]
    for entry in entries:
        incident = entry.incident
        if entry.problem is not None or incident is None:
            out.append([NONE] * 6 + [_cell(entry.problem), _cell(entry.path.name)])
            continue
        duration = _span(incident.ttr) if incident.resolved else f"{_span(incident.elapsed)}+"
        status = incident.status or NONE
        if entry.unreadable_entries:
            status += f" ({entry.unreadable_entries} unreadable entries)"
        out.append([f"{incident.started_at:%Y-%m-%d %H:%M}", _cell(incident.severity, 8), duration,
                    _span(incident.tta), _span(incident.ttm), _span(incident.ttr), _cell(status),
                    _cell(incident.title)])
    return out


def table(entries: list[LoggedIncident]) -> str:
    lines = rows(entries)
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]) - 1)]
    return "".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] + "\n"
                   for row in lines)


def markdown(entries: list[LoggedIncident]) -> str:
    """Seed 000's incident log: ``| Date | Severity | Duration | Issue | Resolution |``."""
    from console.incident.export import md

    lines = ["| Date | Severity | Duration | Issue | Resolution |", "|------|----------|----------|-------|------------|"]
    for entry in entries:
        incident = entry.incident
        if entry.problem is not None or incident is None:
            lines.append(f"| {NONE} | {NONE} | {NONE} | {md(entry.path.name, 80)} | {md(entry.problem, 120)} |")
            continue
        duration = _span(incident.ttr) if incident.resolved else f"ongoing, {_span(incident.elapsed)}"
        lines.append(f"| {incident.started_at:%Y-%m-%d} | {md(incident.severity, 8) or NONE} | {duration} | "
                     f"{md(incident.title, 80) or NONE} | {md(entry.resolution, 120) or NONE} |")
    return "\n".join(lines) + "\n"
