"""PostgreSQL: connections against the slots clients can use, every session, locks.

One connection per source, held open between polls: when the server runs out
of connection slots, the console must still see it, and a new connection is
exactly what it would refuse. Each refresh is one statement, so that watching
a struggling server adds as little to its load as possible. Opening a row
(a session, a group of them) reads its detail then, through the same
connection (:mod:`console.sources.postgres_detail`).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, Sequence
from urllib.parse import urlsplit

from console.capabilities import BackendSignalling, Drilling, Source, SqlProbing
from console.config import PostgresTarget
from console.drill import Detail
from console.readonly import sql_is_read_only
from console.readonly.sql import parsed_probe
from console.readonly.sql_catalog import (PINNED_SEARCH_PATH, RELATIONS_SQL, TRUSTED_EXTENSIONS, Relation,
                                          pinned, refusal, relation_names)
from console.sources import postgres_detail
from console.sources.base import Backoff, ProbeError, Snapshot, State, unreachable, utcnow

APPLICATION = "incident-console"
MAX_SESSIONS = 500  # sessions listed per refresh; the summary says when it cut
MAX_GROUPS = 200
QUERY_CHARS = 300
PROBE_ROWS = 200
# A probe's statement_timeout fires first; this backstop is for a server that
# no longer answers at all (SIGSTOP, a dead network).
PROBE_GRACE_S = 1.0
_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE, without importing psycopg at startup

# Who the console is on this server. A superuser (or a member of
# pg_signal_backend) can terminate any session: then a probe's safety rests on
# the console's checks alone, and the operator is told so. pg_signal_backend
# is looked up by name: before PostgreSQL 10 it does not exist.
ROLE_FIELDS = """
    'role', current_user::text,
    'role_superuser', coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), false),
    'role_can_signal_backends', coalesce((SELECT pg_catalog.pg_has_role(current_user, oid, 'MEMBER')
                                          FROM pg_catalog.pg_roles WHERE rolname = 'pg_signal_backend'), false)"""
ROLE_SQL = f"SELECT json_build_object({ROLE_FIELDS})"

# Everything in one round trip. Durations are cast to numeric because
# extract() returns double precision before PostgreSQL 14. The CTE is referenced several times, so the
# planner materialises it: pg_stat_activity is read once. pg_blocking_pids()
# takes the lock manager's locks, so it is asked only for sessions that wait
# on a lock (no other session can be blocked in its sense).
#
# Every client session is listed (idle ones too: in a pool-exhausted incident
# they are the ones holding the slots), what matters first, cut at
# MAX_SESSIONS; groups are counted over all of them, so a cut list never
# miscounts who holds the connections. Only client backends are counted, and
# against the slots a non-superuser can take: PostgreSQL 16's
# reserved_connections (read with missing_ok, NULL before 16) is reserved too.
REFRESH_SQL = f"""
WITH sessions AS (
    SELECT pid, datname, usename, application_name,
           CASE WHEN client_addr IS NULL THEN 'local'
                ELSE host(client_addr) || ':' || client_port END AS client,
           coalesce(host(client_addr), 'local') AS address,
           coalesce(state, 'unknown') AS state,
           wait_event,
           left(query, {QUERY_CHARS}) AS query,
           CASE WHEN state = 'active'
                THEN round(greatest(extract(epoch FROM now() - query_start), 0)::numeric, 3) END AS query_s,
           round(greatest(extract(epoch FROM now() - xact_start), 0)::numeric, 3) AS xact_s,
           CASE WHEN state LIKE 'idle in transaction%'
                THEN round(greatest(extract(epoch FROM now() - state_change), 0)::numeric, 3) END AS idle_xact_s,
           round(greatest(extract(epoch FROM now() - state_change), 0)::numeric, 3) AS state_s,
           round(greatest(extract(epoch FROM now() - backend_start), 0)::numeric, 3) AS backend_s,
           CASE WHEN wait_event_type = 'Lock' THEN pg_blocking_pids(pid)
                ELSE '{{}}'::int[] END AS blocked_by
    FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
),
victims AS (
    SELECT b.pid, count(*) AS n
    FROM sessions s, unnest(s.blocked_by) AS b(pid)
    GROUP BY b.pid
),
ranked AS (
    SELECT s.*, row_number() OVER (
               ORDER BY coalesce(v.n, 0) DESC, cardinality(s.blocked_by) > 0 DESC, s.state = 'idle',
                        greatest(coalesce(s.xact_s, 0), coalesce(s.query_s, 0)) DESC, s.state_s DESC, s.pid
           ) AS rank
    FROM sessions s LEFT JOIN victims v USING (pid)
),
per_database AS (
    SELECT datname, count(*) AS total,
           count(*) FILTER (WHERE state = 'active') AS active,
           count(*) FILTER (WHERE state = 'idle') AS idle,
           count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction
    FROM sessions GROUP BY datname
),
per_group AS (
    SELECT application_name, usename, address, count(*) AS total,
           count(*) FILTER (WHERE state = 'active') AS active,
           count(*) FILTER (WHERE state = 'idle') AS idle,
           count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction,
           max(backend_s) AS oldest_s
    FROM sessions GROUP BY application_name, usename, address
)
SELECT json_build_object({ROLE_FIELDS},
    'server_version', current_setting('server_version'),
    'max_connections', current_setting('max_connections')::int,
    'reserved_connections', current_setting('superuser_reserved_connections')::int
        + coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0),
    'connections_total', (SELECT count(*) FROM sessions),
    'connections_by_state',
        (SELECT coalesce(json_object_agg(state, n), '{{}}')
         FROM (SELECT state, count(*) AS n FROM sessions GROUP BY state) AS by_state),
    'idle_in_transaction',
        (SELECT count(*) FROM sessions WHERE state LIKE 'idle in transaction%'),
    'longest_query_s', (SELECT coalesce(max(query_s), 0) FROM sessions),
    'longest_transaction_s', (SELECT coalesce(max(xact_s), 0) FROM sessions),
    'longest_idle_in_transaction_s', (SELECT coalesce(max(idle_xact_s), 0) FROM sessions),
    'blocked_sessions', (SELECT count(*) FROM sessions WHERE cardinality(blocked_by) > 0),
    'sessions',
        (SELECT coalesce(json_agg(json_build_object(
                    'pid', pid, 'database', datname, 'user', usename,
                    'application', application_name, 'client', client, 'state', state,
                    'wait_event', wait_event, 'query_s', query_s, 'xact_s', xact_s, 'state_s', state_s,
                    'query', query, 'blocked_by', blocked_by) ORDER BY rank), '[]')
         FROM ranked WHERE rank <= {MAX_SESSIONS}),
    'databases',
        (SELECT coalesce(json_agg(json_build_object(
                    'database', datname, 'total', total, 'active', active, 'idle', idle,
                    'idle_in_transaction', idle_in_transaction)
                    ORDER BY total DESC, datname), '[]')
         FROM per_database),
    'groups',
        (SELECT coalesce(json_agg(json_build_object(
                    'application', application_name, 'user', usename, 'client', address,
                    'total', total, 'active', active, 'idle', idle,
                    'idle_in_transaction', idle_in_transaction, 'oldest_s', oldest_s)
                    ORDER BY total DESC, application_name, usename, address), '[]')
         FROM (SELECT * FROM per_group ORDER BY total DESC, application_name, usename, address
               LIMIT {MAX_GROUPS}) AS biggest)
)
"""


class _Deadline(Exception):
    """The poll's own deadline passed while psycopg was still waiting."""


class PostgresSource(Source, SqlProbing, BackendSignalling, Drilling):
    kind = "postgres"

    def __init__(self, target: PostgresTarget, backoff: Backoff | None = None) -> None:
        self.target = target
        self.name = target.name
        self.timeout = target.timeout
        self._backoff = backoff or Backoff()
        self._conn: Any = None  # psycopg.AsyncConnection, imported lazily
        self._inflight: asyncio.Task | None = None
        self._last_error = ""
        # Probes and actions share the held connection with the poll; this
        # keeps a poll from slipping between a probe's BEGIN and ROLLBACK.
        self._turn = asyncio.Lock()
        self._last: Snapshot | None = None

    # ---- the contract ----------------------------------------------------
    async def poll(self) -> Snapshot:
        if self._turn.locked():
            # A probe or action has the connection: the last reading stands
            # (its age shows) rather than the poll queueing behind it.
            return self._last or self._down("busy running a probe; no reading yet")
        async with self._turn:
            self._last = await self._poll()
        return self._last

    async def _poll(self) -> Snapshot:
        deadline = time.monotonic() + self.timeout
        if self._conn is None:
            if not self._backoff.ready():
                wait = math.ceil(self._backoff.wait_left())
                return self._down(f"{self._last_error}; retrying in {wait}s")
            error = await self._connect(deadline)
            if error is not None:
                return self._down(error)
        return await self._read(deadline)

    async def probe_sql(self, sql: str, timeout: float, max_rows: int = PROBE_ROWS) -> "Rows":
        """Rows of one read-only statement, on the held connection.

        The held connection is the one that still works when the server is
        out of connection slots, which is when probes are needed most.
        """
        reason = sql_is_read_only(sql, self.target.sql_functions)
        if reason is not None:
            raise ProbeError(f"refused: {reason}")
        return await self._on_held(
            lambda conn: read_only_rows(conn, sql, timeout, max_rows, trusted_views=self.target.sql_views),
            timeout + PROBE_GRACE_S)

    async def drill(self, row: str) -> Detail:
        """A session's or a group's detail, read now on the held connection.

        The held connection, because it is the one that still works when the
        server is out of slots: exactly when the operator opens a session.
        """
        return await postgres_detail.drill(row, self._read_record)

    async def _read_record(self, sql: str, params: Mapping[str, Any]) -> Any:
        return await self._on_held(lambda conn: read_only_record(conn, sql, params), self.timeout)

    async def execute_action(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> "Rows":
        """One statement with bound parameters (never formatted in), committed at once.

        With an ``action_dsn`` the statement runs as that role, on a
        connection of its own: the monitoring role can then be one that
        cannot signal other backends at all.
        """
        if self.target.action_dsn:
            return await self._as_action_role(sql, params)
        return await self._on_held(lambda conn: _bound_rows(conn, sql, params), self.timeout)

    async def _as_action_role(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> "Rows":
        import psycopg

        dsn = self.target.action_dsn or ""

        async def run() -> Rows:
            conn = await psycopg.AsyncConnection.connect(
                dsn, autocommit=True, prepare_threshold=None, application_name=f"{APPLICATION} action",
                connect_timeout=max(2, math.ceil(self.timeout)))
            try:
                return await _bound_rows(conn, sql, params)
            finally:
                await conn.close()

        try:
            return await asyncio.wait_for(run(), self.timeout + PROBE_GRACE_S)
        except asyncio.TimeoutError:
            raise ProbeError(f"action connection: no answer after {self.timeout:g}s") from None
        except psycopg.Error as exc:
            raise ProbeError(f"action connection: {_scrub(_server_message(exc), dsn)}") from None

    async def _on_held(self, call: Callable[[Any], Awaitable["Rows"]], limit: float) -> "Rows":
        import psycopg

        async with self._turn:
            if self._conn is None:
                error = await self._connect(time.monotonic() + self.timeout)
                if error is not None:
                    raise ProbeError(error)
            conn = self._conn
            try:
                return await self._guarded(lambda: call(conn), time.monotonic() + limit)
            except _Deadline:
                raise ProbeError(self._failed(f"no answer after {limit:g}s; connection dropped")) from None
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    self._drop()
                    raise ProbeError(self._failed(f"connection lost: {self._message(exc)}")) from None
                raise ProbeError(self._message(exc)) from None
            finally:
                if self._conn is conn and conn.info.transaction_status != _IDLE:
                    # Whatever happened, the poll must never run inside a
                    # probe's transaction: a connection we cannot vouch for goes.
                    self._drop()

    async def close(self) -> None:
        self._drop()

    def forget(self) -> None:
        """Drop the connection now, without a word to the server.

        Called when a poll was abandoned: the server may be hung (SIGSTOP), so
        nothing here may wait for it.
        """
        if self._drop():
            self._backoff.failed()
            self._last_error = "timed out; connection dropped"

    # ---- connecting --------------------------------------------------------
    async def _connect(self, deadline: float) -> str | None:
        import psycopg

        try:
            self._conn = await self._guarded(self._open, deadline)
        except _Deadline:
            return self._failed(f"cannot connect: timed out after {self.timeout:g}s")
        except psycopg.Error as exc:
            return self._failed(f"cannot connect: {self._message(exc)}")
        return None

    async def _open(self) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(
            self.target.dsn,
            autocommit=True,
            # No server-side prepared statements: they break behind a
            # transaction-pooling pgbouncer and save nothing on one query.
            prepare_threshold=None,
            application_name=APPLICATION,
            # libpq counts whole seconds, at least 2; _guarded enforces ours.
            connect_timeout=max(2, math.ceil(self.timeout)),
            options=self._options(),
        )

    def _options(self) -> str:
        """The ``options`` libpq would use (the DSN's, its service's or
        PGOPTIONS: ours replace them all) plus a statement_timeout.

        The server cancels a slow catalog query a little before our own
        deadline, so the connection survives and the error says why.
        """
        import os

        from console.conninfo import effective

        try:
            given = effective(self.target.dsn, os.environ).get("options") or ""
        except Exception:
            given = ""  # the connect attempt will report the bad DSN
        # The server splits options at spaces, a backslash keeping the next
        # character: one left unpaired at the end would take the space before
        # ours and swallow our setting into the last of theirs. Alone at the
        # end the server drops it, so dropping it here changes nothing else.
        # Ours comes last, so a statement_timeout of theirs does not win.
        if (len(given) - len(given.rstrip("\\"))) % 2:
            given = given[:-1]
        ours = f"-c statement_timeout={max(100, int(self.timeout * 800))}"
        return f"{given} {ours}".strip()

    def _failed(self, error: str) -> str:
        self._backoff.failed()
        self._last_error = error
        return error

    # ---- reading -------------------------------------------------------------
    async def _read(self, deadline: float) -> Snapshot:
        import psycopg

        conn = self._conn
        started = time.perf_counter()
        try:
            reading = await self._guarded(lambda: _fetch(conn), deadline)
        except _Deadline:
            return self._lost(f"timed out after {self.timeout:g}s")
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                return self._lost(f"connection lost: {self._message(exc)}")
            # The server is there but refused this query (statement_timeout,
            # a cancel from an operator): keep the connection and say why.
            return self._down(f"catalog query failed: {self._message(exc)}")
        latency_ms = (time.perf_counter() - started) * 1000
        self._backoff.succeeded()
        return Snapshot(kind=self.kind, name=self.name, state=State.OK, taken_at=utcnow(),
                        latency_ms=latency_ms, metrics=_metrics(reading),
                        details={"sessions": reading["sessions"], "databases": reading["databases"],
                                 "groups": _with_rows(reading["groups"])})

    def _lost(self, error: str) -> Snapshot:
        self._drop()
        return self._down(self._failed(error))

    def _down(self, error: str) -> Snapshot:
        return unreachable(self.kind, self.name, error)

    # ---- never wait on a server that does not answer ----------------------
    async def _guarded(self, call: Callable[[], Awaitable[Any]], deadline: float) -> Any:
        """Run a psycopg call in a task of its own, bounded by ``deadline``.

        If psycopg itself saw the cancellation of a query it would first try
        to cancel it on the server, waiting up to 10 s on a hung one. So the
        call runs apart: on a deadline or a cancelled poll the socket is
        closed first and the task cancelled after, which psycopg then takes
        without a word to the server.
        """
        task = asyncio.ensure_future(call())
        self._inflight = task
        try:
            done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - time.monotonic()))
        except asyncio.CancelledError:
            self.forget()
            raise
        if not done:
            self._drop()
            raise _Deadline()
        self._inflight = None
        return task.result()

    def _drop(self) -> bool:
        """Close the socket and abandon any call in flight; True if there was one."""
        conn, self._conn = self._conn, None
        task, self._inflight = self._inflight, None
        if conn is not None:
            conn.pgconn.finish()  # closes the socket; never waits for the server
        if task is not None:
            task.cancel()  # no-op when it has just finished: _discard tidies up
            task.add_done_callback(_discard)
        return conn is not None or task is not None

    def _message(self, exc: BaseException) -> str:
        return _scrub(_server_message(exc), self.target.dsn)


@dataclass(frozen=True)
class Rows:
    """What a probe or action statement returned, cut to the rows asked for."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool = False


async def read_only_rows(conn: Any, sql: str, timeout: float, max_rows: int = PROBE_ROWS,
                         trusted_views: Sequence[str] = ()) -> Rows:
    """``sql`` inside ``BEGIN READ ONLY`` with a statement timeout, always rolled back.

    This is the layer that holds even when a writing statement got past
    :func:`sql_is_read_only`: PostgreSQL itself refuses a write, the catalog
    is asked what the text cannot show (views, row security, user-written
    casts), and names are pinned to ``pg_catalog`` so that a lookalike
    function in another schema is never the one that runs
    (:mod:`console.readonly.sql_catalog`). What runs is the parsed statement
    rendered again, so the server sees the statement that was judged. It goes
    over the extended protocol (``stream``), which takes one statement only;
    rows come one at a time, so a huge result costs ``max_rows``.
    """
    from contextlib import aclosing

    probe = parsed_probe(sql)
    if isinstance(probe, str):
        raise ProbeError(f"refused: {probe}")
    try:
        await conn.execute("BEGIN READ ONLY")
        await conn.execute("SELECT pg_catalog.set_config('statement_timeout', %s, true)",
                           [str(max(1, int(timeout * 1000)))])
        statement = await _pinned_statement(conn, probe, trusted_views)
        cursor = conn.cursor()
        rows: list[tuple[Any, ...]] = []
        columns: tuple[str, ...] = ()
        async with aclosing(cursor.stream(statement)) as stream:
            async for row in stream:
                if not columns:
                    columns = _columns(cursor)
                if len(rows) == max_rows:
                    return Rows(columns, tuple(rows), truncated=True)
                rows.append(tuple(row))
        return Rows(columns or _columns(cursor), tuple(rows))
    finally:
        if conn.info.transaction_status != _IDLE and not conn.closed:
            await conn.execute("ROLLBACK")


async def read_only_record(conn: Any, sql: str, params: Mapping[str, Any]) -> Any:
    """The one JSON value of our own statement, in a read-only transaction; None if no row.

    The statement is ours (a detail's), its values bound, never formatted in:
    no parser check is needed, but the server still refuses it any write.
    """
    try:
        await conn.execute("BEGIN READ ONLY")
        cursor = await conn.execute(sql, params)
        row = await cursor.fetchone()
        return row[0] if row else None
    finally:
        if conn.info.transaction_status != _IDLE and not conn.closed:
            await conn.execute("ROLLBACK")


async def _pinned_statement(conn: Any, probe: Any, trusted_views: Sequence[str]) -> str:
    """Resolve the probe's relations, refuse those that run user code, then pin search_path."""
    names = relation_names(probe)
    relations: list[Relation] = []
    if names:
        cursor = await conn.execute(RELATIONS_SQL, {"names": names, "extensions": list(TRUSTED_EXTENSIONS)})
        relations = [Relation(*row) for row in await cursor.fetchall()]
    for relation in relations:
        reason = refusal(relation, trusted_views)
        if reason is not None:
            raise ProbeError(f"refused: {reason}")
    await conn.execute("SELECT pg_catalog.set_config('search_path', %s, true)", [PINNED_SEARCH_PATH])
    return pinned(probe, relations)


async def role_facts(dsn: str, timeout: float = 2.0) -> dict[str, Any] | str:
    """Who ``dsn`` connects as (role, superuser, can signal backends), or why it could not tell."""
    import psycopg

    async def ask() -> dict[str, Any]:
        conn = await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, application_name=APPLICATION, connect_timeout=max(2, math.ceil(timeout)))
        try:
            cursor = await conn.execute(ROLE_SQL)
            return (await cursor.fetchone())[0]
        finally:
            await conn.close()

    try:
        return await asyncio.wait_for(ask(), timeout + 1)
    except asyncio.TimeoutError:
        return f"no answer after {timeout:g}s"
    except psycopg.Error as exc:
        return _scrub(_server_message(exc), dsn)


async def _bound_rows(conn: Any, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> Rows:
    cursor = await conn.execute(sql, params if isinstance(params, Mapping) else list(params))
    found = await cursor.fetchall() if cursor.description else []
    return Rows(_columns(cursor), tuple(tuple(r) for r in found))


def _columns(cursor: Any) -> tuple[str, ...]:
    return tuple(d.name for d in cursor.description or ())


async def _fetch(conn: Any) -> dict[str, Any]:
    cursor = await conn.execute(REFRESH_SQL)
    row = await cursor.fetchone()
    return row[0]


def _metrics(reading: dict[str, Any]) -> dict[str, Any]:
    total = int(reading["connections_total"])
    limit = int(reading["max_connections"])
    reserved = int(reading["reserved_connections"])
    # What a client that is not a superuser can take: when these are gone the
    # application is refused, whatever max_connections says.
    usable = max(limit - reserved, 0)
    return {
        "connections_total": total,
        "max_connections": limit,
        "reserved_connections": reserved,
        "usable_connections": usable,
        # Above 1 when superusers are into their reserved slots.
        "connections_ratio": round(total / usable, 4) if usable else 0.0,
        "connections_by_state": {str(k): int(v) for k, v in reading["connections_by_state"].items()},
        "idle_in_transaction": int(reading["idle_in_transaction"]),
        "longest_query_s": float(reading["longest_query_s"]),
        "longest_transaction_s": float(reading["longest_transaction_s"]),
        "longest_idle_in_transaction_s": float(reading["longest_idle_in_transaction_s"]),
        "blocked_sessions": int(reading["blocked_sessions"]),
        "server_version": str(reading["server_version"]),
        "role": str(reading["role"]),
        "role_superuser": bool(reading["role_superuser"]),
        "role_can_signal_backends": bool(reading["role_can_signal_backends"]),
    }


def _with_rows(groups: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each group with the row id that opens it (only this source reads it)."""
    return [{**g, "row": postgres_detail.group_row(g["application"], g["user"], g["client"])} for g in groups]


def _discard(task: asyncio.Task) -> None:
    """Collect an abandoned call: retrieve its error, close a late connection."""
    if task.cancelled():
        return
    if task.exception() is None:
        late = task.result()
        pgconn = getattr(late, "pgconn", None)
        if pgconn is not None:
            pgconn.finish()


_SEVERITY = re.compile(r"\b(?:FATAL|ERROR|PANIC):\s+(.*)")
_PREFIXES = ("connection failed: ", "consuming input failed: ", "sending query failed: ")


def _server_message(exc: BaseException) -> str:
    """The line an operator needs: the server's own words when it sent any."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        return str(primary)
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    found = _SEVERITY.search(lines[0])
    if found:
        return found.group(1).strip()
    text = lines[0]
    for prefix in _PREFIXES:
        text = text.removeprefix(prefix)
    return text


def _scrub(text: str, dsn: str) -> str:
    """libpq may echo parts of a malformed DSN: never the password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        password = conninfo_to_dict(dsn).get("password")
    except Exception:
        try:
            password = urlsplit(dsn).password
        except ValueError:
            password = None
    return text.replace(str(password), "***") if password else text
