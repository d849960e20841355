"""PostgresSource against real PostgreSQL servers started by the tests.

Counting tests use a database of their own on the shared server, so they read
exact numbers; tests that restart, pause or fill a server start a small one.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import psycopg
import pytest

from console.config import PostgresTarget
from console.demo.servers import PostgresServer, free_port
from console.sources.base import Snapshot, State, bounded_poll
from console.sources.postgres import APPLICATION, PostgresSource

METRIC_KEYS = {
    "connections_total", "max_connections", "connections_ratio", "connections_by_state",
    "idle_in_transaction", "longest_query_s", "longest_transaction_s",
    "longest_idle_in_transaction_s", "blocked_sessions", "server_version",
    "role", "role_superuser", "role_can_signal_backends",
    # Issue 12: connections are counted against the slots a client can use.
    "reserved_connections", "usable_connections",
}
SESSION_KEYS = {"pid", "database", "user", "application", "client", "state", "wait_event",
                "query_s", "xact_s", "query", "blocked_by",
                "state_s"}  # issue 12: idle sessions are listed, with how long they have been idle


@pytest.fixture
async def sources():
    """Makes sources and closes every one of them after the test."""
    made: list[PostgresSource] = []

    def make(dsn: str, timeout: float = 3.0) -> PostgresSource:
        source = PostgresSource(PostgresTarget("primary", dsn, timeout))
        made.append(source)
        return source

    yield make
    for source in made:
        await source.close()




def new_database(server: PostgresServer) -> str:
    name = "ic_" + uuid.uuid4().hex[:10]
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name


async def poll_until(source: PostgresSource, holds, within: float = 5.0) -> Snapshot:
    deadline = time.monotonic() + within
    while True:
        snap = await bounded_poll(source)
        if holds(snap) or time.monotonic() > deadline:
            return snap
        await asyncio.sleep(0.1)


def session(snap: Snapshot, pid: int):
    found = [s for s in snap.details["sessions"] if s["pid"] == pid]
    return found[0] if found else None


# ---- what a poll reads --------------------------------------------------------

async def test_reads_a_live_server(pg_server, sources):
    snap = await bounded_poll(sources(pg_server.dsn()))

    assert snap.state is State.OK, snap.error
    assert set(snap.metrics) == METRIC_KEYS
    assert snap.metrics["max_connections"] == 40
    assert snap.metrics["server_version"][:2].isdigit()
    assert snap.metrics["longest_query_s"] == 0.0 and isinstance(snap.metrics["longest_query_s"], float)
    assert snap.latency_ms is not None and 0 < snap.latency_ms < 3000
    assert set(snap.details) == {"sessions", "databases", "groups"}  # groups: issue 12
    json.dumps(snap.to_json())


async def test_counts_follow_real_connections(pg_server, sources, sessions):
    db = new_database(pg_server)
    source = sources(pg_server.dsn(db))
    before = await bounded_poll(source)

    for _ in range(5):
        await sessions(pg_server.dsn(db))
    waiting = await sessions(pg_server.dsn(db), autocommit=False)
    await waiting.execute("SELECT 1")
    aborted = await sessions(pg_server.dsn(db), autocommit=False)
    with pytest.raises(psycopg.errors.DivisionByZero):
        await aborted.execute("SELECT 1/0")
    after = await bounded_poll(source)

    def grew(state: str) -> int:
        return after.metrics["connections_by_state"].get(state, 0) - before.metrics["connections_by_state"].get(state, 0)

    assert after.metrics["connections_total"] - before.metrics["connections_total"] == 7
    assert grew("idle") == 5
    assert grew("idle in transaction") == 1
    assert grew("idle in transaction (aborted)") == 1
    assert after.metrics["idle_in_transaction"] - before.metrics["idle_in_transaction"] == 2
    # Against the 37 slots a client can use (40 less 3 reserved for superusers), since issue 12.
    assert after.metrics["connections_ratio"] == round(after.metrics["connections_total"] / 37, 4)
    assert after.metrics["longest_idle_in_transaction_s"] > 0
    assert after.metrics["longest_transaction_s"] >= after.metrics["longest_idle_in_transaction_s"]
    rows = {d["database"]: dict(d) for d in after.details["databases"]}
    assert rows[db] == {"database": db, "total": 7, "active": 0, "idle": 5, "idle_in_transaction": 2}
    # Every session is listed since issue 12 (the pane hides idle ones), what matters first.
    listed = [s["pid"] for s in after.details["sessions"] if s["database"] == db]
    assert len(listed) == 7
    assert set(listed[:2]) == {waiting.pgconn.backend_pid, aborted.pgconn.backend_pid}


async def test_own_backend_is_excluded(pg_server, sources):
    db = new_database(pg_server)
    source = sources(pg_server.dsn(db))
    snap = await bounded_poll(source)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        own = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                           (db, APPLICATION)).fetchall()

    assert len(own) == 1  # the source is connected, under its application_name
    assert own[0][0] not in {s["pid"] for s in snap.details["sessions"]}
    assert db not in {d["database"] for d in snap.details["databases"]}
    # The source's backend is the only one active while the query runs.
    assert "active" not in snap.metrics["connections_by_state"]


async def test_blocked_session_names_its_blocker(pg_server, sources, sessions):
    db = new_database(pg_server)
    source = sources(pg_server.dsn(db))
    holder = await sessions(pg_server.dsn(db), autocommit=False)
    await holder.execute("CREATE TABLE accounts (id int)")
    await holder.commit()
    await holder.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
    waiter = await sessions(pg_server.dsn(db))
    holder_pid, waiter_pid = holder.pgconn.backend_pid, waiter.pgconn.backend_pid
    blocked = asyncio.create_task(waiter.execute("SELECT count(*) FROM accounts"))
    try:
        snap = await poll_until(source, lambda s: s.metrics.get("blocked_sessions") == 1)

        assert snap.metrics["blocked_sessions"] == 1
        first, second = snap.details["sessions"][:2]
        assert first["pid"] == holder_pid  # the blocker leads: it is the cause
        assert first["state"] == "idle in transaction" and first["blocked_by"] == ()
        assert second["pid"] == waiter_pid
        assert second["blocked_by"] == (holder_pid,)
        assert second["state"] == "active" and second["wait_event"] == "relation"
        assert set(second) == SESSION_KEYS
    finally:
        await holder.rollback()
        await blocked
    assert (await bounded_poll(source)).metrics["blocked_sessions"] == 0


async def test_long_query_shows(pg_server, sources, sessions):
    source = sources(pg_server.dsn())
    runner = await sessions(pg_server.dsn())
    pid = runner.pgconn.backend_pid
    sleeping = asyncio.create_task(runner.execute("SELECT pg_sleep(30)"))
    try:
        snap = await poll_until(source, lambda s: s.metrics.get("longest_query_s", 0) >= 1.0)

        assert 1.0 <= snap.metrics["longest_query_s"] < 10
        assert snap.metrics["longest_transaction_s"] >= snap.metrics["longest_query_s"]
        row = session(snap, pid)
        assert row is not None and row["query"] == "SELECT pg_sleep(30)"
        assert row["state"] == "active" and row["query_s"] >= 1.0 and row["application"] == ""
    finally:
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
        with pytest.raises(psycopg.errors.QueryCanceled):
            await sleeping


async def test_query_text_comes_through_raw_and_truncated(pg_server, sources, sessions):
    source = sources(pg_server.dsn())
    hostile = "SELECT '[bold]x[/bold]' AS \"[red]\" /* \x1b[31mred\x1b[0m \x07 */"
    marked = await sessions(pg_server.dsn(), autocommit=False)
    await marked.execute(hostile)
    long = await sessions(pg_server.dsn(), autocommit=False)
    long_query = "SELECT 1 /* " + "x" * 500 + " */"
    await long.execute(long_query)

    snap = await bounded_poll(source)

    assert session(snap, marked.pgconn.backend_pid)["query"] == hostile
    truncated = session(snap, long.pgconn.backend_pid)["query"]
    assert type(truncated) is str and truncated == long_query[:300]


async def test_one_statement_per_refresh(pg_server, sources):
    db = new_database(pg_server)
    source = sources(pg_server.dsn(db))
    assert (await bounded_poll(source)).state is State.OK
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
        for _ in range(4):
            assert (await bounded_poll(source)).state is State.OK
        calls = conn.execute(
            "SELECT count(*), coalesce(sum(calls), 0) FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %s)", (db,)).fetchone()

    assert calls == (1, 4)  # one distinct statement, run once per refresh


# ---- when things go wrong ------------------------------------------------------

async def test_slow_catalog_query_is_cancelled_and_the_connection_kept(pg_server, sources):
    source = sources(pg_server.dsn(), timeout=2.0)  # statement_timeout 1.6 s
    assert (await bounded_poll(source)).state is State.OK
    with psycopg.connect(pg_server.dsn()) as locker:
        # pg_stat_activity joins pg_database: the catalog query waits on this.
        locker.execute("LOCK TABLE pg_database IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        snap = await bounded_poll(source)
        took = time.monotonic() - started
        locker.rollback()

    assert snap.state is State.UNREACHABLE
    assert snap.error == "catalog query failed: canceling statement due to statement timeout"
    assert took < 2.0
    # The server cancelled the query, not the connection: no backoff, no reconnect.
    assert (await bounded_poll(source)).state is State.OK


async def test_server_restart_is_reported_then_recovered(sources):
    with PostgresServer(max_connections=10) as server:
        source = sources(server.dsn())
        assert (await bounded_poll(source)).state is State.OK
        server.restart()

        lost = await bounded_poll(source)
        assert lost.state is State.UNREACHABLE
        assert lost.error.startswith("connection lost: ")
        back = await poll_until(source, lambda s: s.state is State.OK, within=10)
        assert back.state is State.OK, back.error


async def test_paused_server_times_out_and_recovers(sources):
    with PostgresServer(max_connections=10) as server:
        source = sources(server.dsn(), timeout=3.0)
        idle = sources(server.dsn())
        assert (await bounded_poll(source)).state is State.OK
        assert (await bounded_poll(idle)).state is State.OK
        server.pause()
        try:
            started = time.monotonic()
            hung = await bounded_poll(source, 1.0)
            assert time.monotonic() - started < 1.5
            assert hung.state is State.UNREACHABLE and "timed out" in hung.error

            started = time.monotonic()
            idle.forget()
            await idle.close()
            assert time.monotonic() - started < 0.2
        finally:
            server.resume()
        back = await poll_until(source, lambda s: s.state is State.OK, within=10)
        assert back.state is State.OK, back.error


async def test_full_server_is_still_watched_and_refuses_newcomers(sources, sessions):
    with PostgresServer(max_connections=8) as server:
        watcher = sources(server.dsn())
        assert (await bounded_poll(watcher)).state is State.OK
        with pytest.raises(psycopg.OperationalError, match="too many clients"):
            for _ in range(8):
                await sessions(server.dsn())

        snap = await bounded_poll(watcher)
        assert snap.state is State.OK, snap.error
        assert snap.metrics["connections_total"] == 7  # every slot but the watcher's own
        # Against the 5 slots left to clients (8 less 3 reserved, issue 12): superusers
        # are 2 into the reserve, so the ratio passes 1.
        assert snap.metrics["usable_connections"] == 5
        assert snap.metrics["connections_ratio"] == round(7 / 5, 4)

        newcomer = sources(server.dsn(), timeout=2.0)
        started = time.monotonic()
        refused = await bounded_poll(newcomer)
        assert time.monotonic() - started < 2.0
        assert refused.state is State.UNREACHABLE
        assert refused.error == "cannot connect: sorry, too many clients already"

        started = time.monotonic()
        again = await bounded_poll(newcomer)
        assert time.monotonic() - started < 0.1  # backing off, not knocking again
        assert again.error.startswith("cannot connect: sorry, too many clients already; retrying in ")


async def test_connect_error_is_quick_and_keeps_the_password_out(sources):
    source = sources(f"postgresql://monitor:s3cret-pw@127.0.0.1:{free_port()}/app")
    started = time.monotonic()
    snap = await bounded_poll(source)

    assert time.monotonic() - started < 1.0
    assert snap.state is State.UNREACHABLE
    assert snap.error.startswith("cannot connect: ") and "Connection refused" in snap.error
    assert "s3cret" not in snap.error
