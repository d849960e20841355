"""PostgreSQL rows opened: a session's or a group's Detail, read when opened.

The refresh (:mod:`console.sources.postgres`) reads every session once per
poll, cut to what a table row shows. What an operator needs before signalling
a backend (the whole query, every start time, who it blocks) is read here
instead, one statement when a detail is opened, so that watching a
struggling server costs the same with details closed as before they existed.

Row ids are ours: ``session/<pid>`` and ``group/<key>``, where the key is
the group's (application, user, client address) as base64 of JSON. Those
values are chosen by clients (an application_name may hold ``/``, ``[`` or a
newline), so the key is decoded strictly and anything else is no such row.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Awaitable, Callable, Mapping

from console.drill import Change, Detail, NoSuchRow, Section
from console.readings import duration
from console.text import inert

# (sql, params) -> the statement's one JSON value, None when it found no row.
ReadRecord = Callable[[str, Mapping[str, Any]], Awaitable[Any]]

QUERY_CHARS = 300      # a query in a list of sessions, as in the refresh
GROUP_MEMBERS = 200    # sessions listed in a group's detail
PREVIEW_SESSIONS = 5   # sessions named in a group change's confirmation
IDLE_FALLBACK = "idle sessions"  # what to type when the application name cannot be typed

_CLIENT = ("CASE WHEN {a}.client_addr IS NULL THEN 'local' "
           "ELSE host({a}.client_addr) || ':' || {a}.client_port END")
_AGE = "round(greatest(extract(epoch FROM now() - {a}.{col}), 0)::numeric, 1)"
_AT = "to_char({a}.{col} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"


def _brief(a: str) -> str:
    """A session in a list: who, since when, doing what (cut)."""
    return (f"json_build_object('pid', {a}.pid, 'user', {a}.usename, 'application', {a}.application_name, "
            f"'client', {_CLIENT.format(a=a)}, 'database', {a}.datname, 'state', coalesce({a}.state, 'unknown'), "
            f"'state_s', {_AGE.format(a=a, col='state_change')}, "
            f"'backend_s', {_AGE.format(a=a, col='backend_start')}, "
            f"'query', left({a}.query, {QUERY_CHARS}))")


# One session, everything about it. pg_blocking_pids() takes the lock
# manager's locks: asked once for this session, and for the sessions that
# wait on a lock only (no other can be blocked by it).
SESSION_SQL = f"""
SELECT json_build_object(
    'pid', a.pid, 'database', a.datname, 'user', a.usename, 'application', a.application_name,
    'client', {_CLIENT.format(a='a')},
    'backend_type', a.backend_type, 'state', coalesce(a.state, 'unknown'),
    'wait_event_type', a.wait_event_type, 'wait_event', a.wait_event,
    'backend_start', {_AT.format(a='a', col='backend_start')}, 'backend_s', {_AGE.format(a='a', col='backend_start')},
    'backend_started_at', to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'xact_start', {_AT.format(a='a', col='xact_start')}, 'xact_s', {_AGE.format(a='a', col='xact_start')},
    'query_start', {_AT.format(a='a', col='query_start')}, 'query_s', {_AGE.format(a='a', col='query_start')},
    'state_change', {_AT.format(a='a', col='state_change')}, 'state_s', {_AGE.format(a='a', col='state_change')},
    'query', a.query,
    'query_limit', (SELECT setting::int FROM pg_settings WHERE name = 'track_activity_query_size'),
    'blocked_by', (SELECT coalesce(json_agg({_brief('b')} ORDER BY b.pid), '[]')
                   FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(a.pid))),
    'blocks', (SELECT coalesce(json_agg({_brief('w')} ORDER BY w.pid), '[]')
               FROM pg_stat_activity w
               WHERE w.wait_event_type = 'Lock' AND a.pid = ANY(pg_blocking_pids(w.pid))))
FROM pg_stat_activity a
WHERE a.pid = %(pid)s
"""

# A group's sessions, and the sessions its terminate change would hit: its
# idle members, by pid (the runner signals only those of them still idle,
# with the same application and user: never a session the preview did not list).
GROUP_SQL = f"""
WITH clients AS (
    SELECT * FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
),
members AS (
    SELECT * FROM clients a
    WHERE a.application_name = %(app)s::text AND a.usename IS NOT DISTINCT FROM %(user)s::text
      AND coalesce(host(a.client_addr), 'local') = %(address)s::text
),
targets AS (
    SELECT * FROM members a WHERE a.state = 'idle'
)
SELECT json_build_object(
    'members', (SELECT coalesce(json_agg(listed.m ORDER BY listed.n), '[]') FROM (
        SELECT {_brief('a')} AS m, row_number() OVER (ORDER BY a.state = 'idle', a.state_change, a.pid) AS n
        FROM members a) AS listed WHERE listed.n <= {GROUP_MEMBERS}),
    'member_count', (SELECT count(*) FROM members),
    'targets', (SELECT coalesce(json_agg(hit.t ORDER BY hit.n), '[]') FROM (
        SELECT {_brief('a')} AS t, row_number() OVER (ORDER BY a.state_change, a.pid) AS n
        FROM targets a) AS hit WHERE hit.n <= {PREVIEW_SESSIONS}),
    'target_count', (SELECT count(*) FROM targets),
    'target_pids', (SELECT coalesce(json_agg(pid ORDER BY pid), '[]') FROM targets))
"""


# ---- row ids -------------------------------------------------------------------

def session_row(pid: int) -> str:
    return f"session/{int(pid)}"


def group_row(application: str, user: str | None, address: str) -> str:
    """A group's row id; :func:`group_key` gives back exactly these values."""
    packed = json.dumps([application, user, address]).encode("utf-8")
    return "group/" + base64.urlsafe_b64encode(packed).decode("ascii")


def group_key(encoded: str) -> tuple[str, str | None, str]:
    """(application, user, address) of a group id's key; NoSuchRow for anything we did not make."""
    try:
        values = json.loads(base64.b64decode(encoded, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError):
        raise NoSuchRow(f"not a PostgreSQL group: {inert(encoded, 60)!r}") from None
    if (not isinstance(values, list) or len(values) != 3 or not isinstance(values[0], str)
            or not isinstance(values[2], str) or not isinstance(values[1], (str, type(None)))):
        raise NoSuchRow(f"not a PostgreSQL group: {inert(encoded, 60)!r}")
    return values[0], values[1], values[2]


def _pid(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2 ** 31:
        raise NoSuchRow(f"not a PostgreSQL session: {inert(text, 60)!r}")
    return int(text)


# ---- opening a row ---------------------------------------------------------------

async def drill(row: str, read: ReadRecord) -> Detail:
    """The Detail of ``row``, read with one statement through ``read``."""
    kind, _, rest = row.partition("/")
    if kind == "session":
        pid = _pid(rest)
        record = await read(SESSION_SQL, {"pid": pid})
        if record is None:
            raise NoSuchRow(f"session {pid} has ended")
        return session_detail(record)
    if kind == "group":
        app, user, address = group_key(rest)
        record = await read(GROUP_SQL, {"app": app, "user": user, "address": address})
        return group_detail(app, user, address, record)
    raise NoSuchRow(f"not a PostgreSQL row: {inert(row, 60)!r}")


def _one(s: Mapping[str, Any]) -> dict[str, Any]:
    """This session and no other: a pid is reused once its backend ends."""
    return {"pid": int(s["pid"]), **({"backend_start": s["backend_started_at"]} if s.get("backend_started_at") else {})}


def session_detail(s: Mapping[str, Any]) -> Detail:
    pid = int(s["pid"])
    return Detail(
        title=f"session {pid} · {s.get('application') or 'no application name'}",
        sections=tuple(section for section in (
            _facts(s), _times(s), _query(s),
            _sessions("Blocked by", s.get("blocked_by") or ()),
            _sessions("Blocks", s.get("blocks") or ()),
        ) if section is not None),
        changes=(
            Change("C", f"Cancel the query of session {pid}", "cancel_backend", _one(s), str(pid), _preview(s)),
            Change("K", f"Terminate session {pid}", "terminate_backend", _one(s), str(pid), _preview(s)),
        ),
        # For the app to link the session to the service it belongs to (blast
        # radius): the client as ip:port, or 'local' for a Unix socket.
        extra={"application": s.get("application") or "", "client": s.get("client") or "",
               "user": s.get("user") or ""},
    )


def _facts(s: Mapping[str, Any]) -> Section:
    wait = " / ".join(str(w) for w in (s.get("wait_event_type"), s.get("wait_event")) if w) or "not waiting"
    return Section("Session", ("", ""), (
        ("state", str(s.get("state") or "")), ("wait event", wait),
        ("user", str(s.get("user") or "")), ("application", str(s.get("application") or "")),
        ("client", str(s.get("client") or "")), ("database", str(s.get("database") or "")),
        ("backend type", str(s.get("backend_type") or "")),
    ))


def _times(s: Mapping[str, Any]) -> Section:
    rows = tuple((what, f"{s[at]} UTC" if s.get(at) else "–", f"{duration(s.get(age))} ago" if s.get(at) else "")
                 for what, at, age in (("connected", "backend_start", "backend_s"),
                                       ("transaction", "xact_start", "xact_s"),
                                       ("query", "query_start", "query_s"),
                                       ("state since", "state_change", "state_s")))
    return Section("Started", ("", "at", "age"), rows)


def _query(s: Mapping[str, Any]) -> Section:
    text = str(s.get("query") or "")
    limit = s.get("query_limit")
    if limit and len(text.encode("utf-8")) >= int(limit) - 1:
        # The server keeps only this much of a query: say so rather than show it as whole.
        text += f"\n… (cut by the server at track_activity_query_size = {int(limit)} bytes)"
    return Section("Query", text=text)


def _sessions(title: str, sessions: Any) -> Section | None:
    if not sessions:
        return None
    return Section(title, ("PID", "State", "For", "User", "Application", "Client", "Query"),
                   tuple(_session_cells(s) for s in sessions),
                   drill=tuple(session_row(s["pid"]) for s in sessions))


def _session_cells(s: Mapping[str, Any]) -> tuple[str, ...]:
    return (str(s["pid"]), str(s.get("state") or ""), duration(s.get("state_s")), str(s.get("user") or ""),
            str(s.get("application") or ""), str(s.get("client") or ""), str(s.get("query") or ""))


def _preview(s: Mapping[str, Any]) -> tuple[str, ...]:
    """Who and what a signal hits: the lines the typed confirmation shows."""
    lines = [f"user {inert(s.get('user') or '–', 60)} · app {inert(s.get('application') or '–', 60)} · "
             f"client {inert(s.get('client') or '–', 60)} · database {inert(s.get('database') or '–', 60)}",
             f"{inert(s.get('state') or '', 40)} for {duration(s.get('state_s'))}"
             + (f" · transaction open {duration(s.get('xact_s'))}" if s.get("xact_s") is not None else "")
             + f" · connected {duration(s.get('backend_s'))} ago",
             f"query: {inert(s.get('query') or '', 200)}"]
    return tuple(lines)


def group_detail(app: str, user: str | None, address: str, record: Mapping[str, Any] | None) -> Detail:
    record = record or {}
    members = record.get("members") or ()
    count = int(record.get("member_count") or 0)
    named = inert(app, 60) if app else "with no application name"
    listed = f" (first {len(members)} listed)" if len(members) < count else ""
    sections = [Section(f"{count} sessions of {named} · user {inert(user or '–', 40)} · client {address}{listed}",
                        ("PID", "State", "For", "User", "Application", "Client", "Query"),
                        tuple(_session_cells(s) for s in members),
                        drill=tuple(session_row(s["pid"]) for s in members))]
    return Detail(
        title=f"{named} · {inert(user or '–', 40)} · {address}",
        sections=tuple(sections),
        # Nothing idle, nothing to offer: a change that can hit no one is noise.
        changes=(_terminate_idle(app, user, record),) if record.get("target_pids") else (),
        # Blast radius, as for one session: a member's ip:port names the group's
        # address in the form the config's matcher reads (a bare IPv6 one it would misread).
        extra={"application": app, "client": members[0].get("client") if members else address,
               "user": user or ""},
    )


def _terminate_idle(app: str, user: str | None, record: Mapping[str, Any]) -> Change:
    count = int(record.get("target_count") or 0)
    targets = record.get("targets") or ()
    named = f"application {inert(app, 60)}" if app else "no application name"
    params: dict[str, Any] = {"state": "idle", "application_name": app,
                              "pids": [int(p) for p in record.get("target_pids") or ()]}
    if user:
        params["user"] = user
    who = f"{named}" + (f", user {inert(user, 40)}" if user else "")
    preview = [f"{count} idle sessions of {who} from this client address, right now "
               "(only these, and only while still idle):",
               *(f"  {line}" for line in _target_lines(targets)),
               *([f"  … and {count - len(targets)} more"] if count > len(targets) else [])]
    return Change("K", f"Terminate {count} idle sessions of {who}", "terminate_backend", params,
                  _confirmation(app), tuple(preview))


def _target_lines(targets: Any) -> list[str]:
    return [f"pid {s['pid']} · idle {duration(s.get('state_s'))} · client {inert(s.get('client') or '–', 40)}"
            f" · db {inert(s.get('database') or '–', 30)} · query: {inert(s.get('query') or '', 80)}"
            for s in targets]


def _confirmation(app: str) -> str:
    """The application name, when it can be typed exactly as the server has it.

    An empty name would confirm anything; one with controls, surrounding
    spaces or ``{…}`` (the runner fills such placeholders in) cannot be typed
    or would not be what is checked: those confirm with a fixed phrase.
    """
    typeable = app and app == inert(app, 64) and app.strip() == app and "{" not in app and "}" not in app
    return app if typeable else IDLE_FALLBACK
