"""Who a PostgreSQL signal would hit, as the last refresh saw it.

A terminate or cancel step names its sessions by pid or by state (and age,
database, user, application). Its confirmation shows them from the readings
the panes already hold, before anything runs: the session a pid is (user,
application, state, age, query), or how many sessions a state matches and
the first few. Nothing is read for this, so it says when the reading was
taken: by the time the step runs, sessions may have come and gone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from console.readings import duration
from console.text import inert
from console.vocabulary import Snapshot

PREVIEW_SESSIONS = 5


def signal_preview(params: Mapping[str, Any], snap: Snapshot | None, source: str, now: datetime) -> list[str]:
    """Lines for the confirmation of a signal with ``params`` (filled in) on ``source``."""
    if snap is None:
        return [f"no reading of {inert(source, 60)} yet: who it would hit is not known"]
    if not snap.reachable:
        return [f"{inert(source, 60)} did not answer the last refresh: who it would hit is not known"]
    sessions = list(snap.details.get("sessions", ()))
    when = _when(snap, now)
    if "pid" in params:
        pid = str(params["pid"]).strip()
        found = next((s for s in sessions if str(s.get("pid")) == pid), None)
        if found is None:
            return [f"pid {inert(pid, 20)} is not among the {len(sessions)} sessions of the last refresh ({when}): "
                    "it may have ended, or be another session by now; check it before going on"]
        return [f"pid {inert(pid, 20)} is this session at the last refresh ({when}):", *_whole(found)]
    hit = [s for s in sessions if _matches(s, params)]
    listed, total = len(sessions), snap.metrics.get("connections_total")
    some = "at least " if isinstance(total, int) and total > listed else ""
    lines = [f"{some}{len(hit)} session{'' if len(hit) == 1 else 's'} matched at the last refresh ({when}); "
             "the count when it runs may differ:"]
    lines += [f"  {_short(s)}" for s in hit[:PREVIEW_SESSIONS]]
    if len(hit) > PREVIEW_SESSIONS:
        lines.append(f"  … and {len(hit) - PREVIEW_SESSIONS} more")
    return lines


def _when(snap: Snapshot, now: datetime) -> str:
    age = max((now - snap.taken_at).total_seconds(), 0.0)
    return f"{snap.taken_at:%H:%M:%S} UTC, {duration(age)} ago"


def _matches(session: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """The same test as the signal's SQL (runner._SESSIONS_SQL), on the reading."""
    if str(session.get("state")) != str(params.get("state")):
        return False
    older = params.get("older_than_s")
    if older is not None and not _over(session.get("state_s"), older):
        return False
    for param, field in (("database", "database"), ("user", "user"), ("application_name", "application")):
        if params.get(param) is not None and str(session.get(field)) != str(params[param]):
            return False
    pids = params.get("pids")
    return pids is None or str(session.get("pid")) in {str(p) for p in _listed(pids)}


def _over(seconds: Any, older: Any) -> bool:
    try:
        return float(seconds) > float(older)
    except (TypeError, ValueError):
        return False


def _listed(value: Any) -> Iterable[Any]:
    return value if isinstance(value, (list, tuple)) else ()


def _age(session: Mapping[str, Any]) -> str:
    return f"{inert(session.get('state') or '?', 40)} for {duration(session.get('state_s'))}"


def _whole(s: Mapping[str, Any]) -> list[str]:
    open_for = f" · transaction open {duration(s.get('xact_s'))}" if s.get("xact_s") is not None else ""
    return [f"  user {inert(s.get('user') or '–', 60)} · application {inert(s.get('application') or '–', 60)}"
            f" · database {inert(s.get('database') or '–', 60)} · client {inert(s.get('client') or '–', 60)}",
            f"  {_age(s)}{open_for}",
            f"  query: {inert(s.get('query') or '', 300)}"]


def _short(s: Mapping[str, Any]) -> str:
    return (f"pid {inert(s.get('pid'), 12)} · {inert(s.get('user') or '–', 30)} · "
            f"{inert(s.get('application') or '–', 40)} · {_age(s)} · query: {inert(s.get('query') or '', 80)}")
