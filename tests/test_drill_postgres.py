"""Issue 12, PostgreSQL: every session, groups, usable slots, the lock tree,
and drilling into a session or a group down to a confirmed terminate, against
the real PostgreSQL the tests start."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import replace

import psycopg
import pytest
from textual.app import App, ComposeResult

from console import config
from console.demo.servers import PostgresServer
from console.drill import NoSuchRow, RowRef
from console.incident.journal import Journal
from console.incident.session import IncidentSession, Refusal
from console.sources.base import State, bounded_poll
from console.sources.postgres_detail import group_key, group_row
from console.thresholds import DEFAULTS, judge
from console.widgets.postgres import PostgresPane, connections, lock_tree
from test_source_postgres import new_database, sources  # noqa: F401 (sources: a fixture)

HOSTILE = "\x1b[31m[red]x/y\n"


def in_db(snap, db: str) -> list[dict]:
    return [s for s in snap.details["sessions"] if s["database"] == db]


def group_of(snap, application: str) -> dict:
    found = [g for g in snap.details["groups"] if g["application"] == application]
    assert len(found) == 1, snap.details["groups"]
    return found[0]


async def leaky(sessions, server: PostgresServer, db: str, n: int = 5) -> list[int]:
    opened = [await sessions(server.dsn(db, application_name="leaky")) for _ in range(n)]
    return [c.pgconn.backend_pid for c in opened]


def alive(server: PostgresServer, pids: list[int]) -> set[int]:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))}


# ---- the refresh ------------------------------------------------------------------

async def test_every_session_is_listed_idle_ones_too(pg_server, sources, sessions):
    db = new_database(pg_server)
    idle = [await sessions(pg_server.dsn(db)) for _ in range(3)]
    open_tx = await sessions(pg_server.dsn(db), autocommit=False)
    await open_tx.execute("SELECT 1")

    snap = await bounded_poll(sources(pg_server.dsn(db)))

    listed = in_db(snap, db)
    assert {s["pid"] for s in listed} == {c.pgconn.backend_pid for c in [*idle, open_tx]}
    assert listed[0]["pid"] == open_tx.pgconn.backend_pid  # what matters first
    assert [s["state"] for s in listed[1:]] == ["idle"] * 3
    assert all(s["state_s"] is not None for s in listed)


async def test_refresh_runs_exactly_one_statement(pg_server, sources):
    source = sources(pg_server.dsn())
    assert (await bounded_poll(source)).state is State.OK
    counted = CountingConnection(source._conn)
    source._conn = counted

    for _ in range(3):
        assert (await bounded_poll(source)).state is State.OK

    assert counted.statements == 3


class CountingConnection:
    """The held connection, counting what the source sends through it."""

    def __init__(self, conn) -> None:
        self._conn, self.statements = conn, 0

    async def execute(self, *args, **kwargs):
        self.statements += 1
        return await self._conn.execute(*args, **kwargs)

    def cursor(self, *args, **kwargs):
        self.statements += 1
        return self._conn.cursor(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._conn, name)


async def test_groups_count_who_holds_the_connections(pg_server, sources, sessions):
    db = new_database(pg_server)
    await leaky(sessions, pg_server, db)
    busy = await sessions(pg_server.dsn(db, application_name="leaky"), autocommit=False)
    await busy.execute("SELECT 1")

    snap = await bounded_poll(sources(pg_server.dsn(db)))

    group = group_of(snap, "leaky")
    assert (group["total"], group["idle"], group["idle_in_transaction"], group["active"]) == (6, 5, 1, 0)
    assert group["user"] == "postgres" and group["client"] == "127.0.0.1"
    assert group["oldest_s"] >= 0
    assert group_key(group["row"].removeprefix("group/")) == ("leaky", "postgres", "127.0.0.1")


async def test_counts_against_usable_slots(sources, sessions):
    with PostgresServer(max_connections=10) as server:  # 3 reserved for superusers: 7 usable
        watcher = sources(server.dsn())
        for _ in range(7):
            await sessions(server.dsn())  # superusers: they can go on into the reserve

        snap = await bounded_poll(watcher)

    m = snap.metrics
    assert (m["max_connections"], m["reserved_connections"], m["usable_connections"]) == (10, 3, 7)
    assert m["connections_total"] == 7 and m["connections_ratio"] == 1.0
    # Against max_connections it read 70 %, a mere warning; an application is refused now.
    assert judge(snap, DEFAULTS).state is State.CRITICAL
    assert connections(m) == "7/7 usable conns (100%) · 3 reserved for superusers"


# ---- locks -----------------------------------------------------------------------

async def test_lock_tree_from_a_blocked_update(pg_server, sources, sessions):
    db = new_database(pg_server)
    holder = await sessions(pg_server.dsn(db), autocommit=False)
    await holder.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int)")
    await holder.execute("INSERT INTO accounts VALUES (1, 10)")
    await holder.commit()
    await holder.execute("UPDATE accounts SET balance = 11 WHERE id = 1")
    waiter = await sessions(pg_server.dsn(db))
    second = await sessions(pg_server.dsn(db))
    holder_pid, waiter_pid, second_pid = (c.pgconn.backend_pid for c in (holder, waiter, second))
    blocked = [asyncio.create_task(c.execute("UPDATE accounts SET balance = 12 WHERE id = 1"))
               for c in (waiter, second)]
    source = sources(pg_server.dsn(db))
    try:
        deadline = time.monotonic() + 5
        while (snap := await bounded_poll(source)).metrics["blocked_sessions"] < 2:
            assert time.monotonic() < deadline, "the UPDATEs never waited"
            await asyncio.sleep(0.1)

        tree = [(s["pid"], depth) for s, depth in lock_tree(snap.details["sessions"])]
        # A row lock queues the later UPDATE behind the earlier one (it holds the
        # tuple lock): a chain of three, whichever of the two came first.
        assert tree[0] == (holder_pid, 0)
        assert [depth for _, depth in tree[1:]] == [1, 2] and {p for p, _ in tree[1:]} == {waiter_pid, second_pid}
        waiter_pid = tree[1][0]

        held = await source.drill(f"session/{holder_pid}")
        blocks = next(s for s in held.sections if s.title == "Blocks")
        assert f"session/{waiter_pid}" in blocks.drill
        waiting = await source.drill(f"session/{waiter_pid}")
        assert next(s for s in waiting.sections if s.title == "Blocked by").drill == (f"session/{holder_pid}",)
    finally:
        await holder.rollback()
        await asyncio.gather(*blocked)


def test_lock_tree_puts_root_blockers_first_and_survives_a_cycle():
    sessions = [
        {"pid": 1, "blocked_by": ()}, {"pid": 2, "blocked_by": (1,)}, {"pid": 3, "blocked_by": (2,)},
        {"pid": 7, "blocked_by": ()}, {"pid": 8, "blocked_by": (7,)}, {"pid": 9, "blocked_by": (7,)},
        {"pid": 5, "blocked_by": (6,)}, {"pid": 6, "blocked_by": (5,)},  # a deadlock, until broken
        {"pid": 4, "blocked_by": ()},  # blocks no one: not in the tree
    ]
    tree = [(s["pid"], depth) for s, depth in lock_tree(sessions)]
    assert tree[:6] == [(1, 0), (2, 1), (3, 2), (7, 0), (8, 1), (9, 1)] or \
        tree[:6] == [(7, 0), (8, 1), (9, 1), (1, 0), (2, 1), (3, 2)]
    assert sorted(p for p, _ in tree[6:]) == [5, 6]
    assert 4 not in {p for p, _ in tree}


# ---- drilling ----------------------------------------------------------------------

async def test_session_detail_has_the_whole_query_and_its_changes(pg_server, sources, sessions):
    db = new_database(pg_server)
    conn = await sessions(pg_server.dsn(db, application_name="checkout-api"), autocommit=False)
    long_query = "SELECT 1 /* " + "x" * 800 + " */"
    await conn.execute(long_query)
    pid = conn.pgconn.backend_pid
    source = sources(pg_server.dsn(db))

    detail = await source.drill(f"session/{pid}")

    assert next(s for s in detail.sections if s.title == "Query").text == long_query
    facts = dict(next(s for s in detail.sections if s.title == "Session").rows)
    assert facts["state"] == "idle in transaction" and facts["application"] == "checkout-api"
    assert facts["user"] == "postgres" and facts["database"] == db and facts["backend type"] == "client backend"
    assert facts["client"].startswith("127.0.0.1:")
    started = {row[0]: row for row in next(s for s in detail.sections if s.title == "Started").rows}
    assert started["transaction"][1].endswith(" UTC") and started["transaction"][2].endswith(" ago")
    assert started["query"][1] != "–"
    cancel, terminate = detail.change("C"), detail.change("K")
    pinned = {"pid": pid, "backend_start": terminate.params["backend_start"]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", pinned["backend_start"])
    assert (cancel.action, dict(cancel.params), cancel.confirm) == ("cancel_backend", pinned, str(pid))
    assert (terminate.action, dict(terminate.params), terminate.confirm) == ("terminate_backend", pinned,
                                                                            str(pid))
    assert "app checkout-api" in terminate.preview[0] and terminate.preview[2].startswith("query: SELECT 1")
    assert dict(detail.extra) == {"application": "checkout-api", "client": facts["client"], "user": "postgres"}


async def test_a_vanished_session_is_no_such_row(pg_server, sources):
    source = sources(pg_server.dsn())
    gone = await psycopg.AsyncConnection.connect(pg_server.dsn())
    pid = gone.pgconn.backend_pid
    await gone.close()
    deadline = time.monotonic() + 5
    while alive(pg_server, [pid]):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)

    with pytest.raises(NoSuchRow):
        await source.drill(f"session/{pid}")
    for made_up in ("session/-1", "session/1e3", "session/", "group/!!", "group/" + "e30=", "pod/x", ""):
        with pytest.raises(NoSuchRow):
            await source.drill(made_up)
    assert (await bounded_poll(source)).state is State.OK  # the connection survived it all


def test_group_ids_round_trip_hostile_values():
    for values in [(HOSTILE, "postgres", "10.0.0.5"), ("", None, "local"), ("a/b]c[d", "ü\\n", "::1")]:
        row = group_row(*values)
        assert row.startswith("group/") and "\n" not in row and "/" not in row[6:]
        assert group_key(row[6:]) == values


class PaneApp(App):
    def compose(self) -> ComposeResult:
        yield PostgresPane()


async def test_hostile_application_name_round_trips_and_shows_inert(pg_server, sources):
    db = new_database(pg_server)
    hostile = await psycopg.AsyncConnection.connect(pg_server.dsn(db), application_name=HOSTILE)
    try:
        snap = await bounded_poll(sources(pg_server.dsn(db)))
        source = sources(pg_server.dsn(db))
        # The server keeps printable ASCII of an application_name (PostgreSQL 15:
        # '?' for the rest; 16: hex escapes): the group holds what it reports.
        group = next(g for g in snap.details["groups"] if "[red]x/y" in g["application"])
        detail = await source.drill(group["row"])
        assert detail.sections[0].drill == (f"session/{hostile.pgconn.backend_pid}",)
        assert detail.extra["application"] == group["application"]

        app = PaneApp()
        async with app.run_test(size=(160, 30)) as pilot:
            pane = app.query_one(PostgresPane)
            pane.take(snap)
            pane.table.focus()
            await pilot.press("g")
            assert pane.view == "groups"
            cells = pane.table.get_row(f"postgres:primary:{group['row']}")
            assert "[red]x/y" in cells[0].plain and not cells[0].spans
            assert "\x1b" not in cells[0].plain and "\n" not in cells[0].plain
            await pilot.press("g", "i")  # back to the sessions, idle ones shown
            cells = pane.table.get_row(f"postgres:primary:session/{hostile.pgconn.backend_pid}")
            assert "[red]x/y" in cells[7].plain and not cells[7].spans
    finally:
        await hostile.close()


async def test_pane_hides_idle_sessions_until_asked(pg_server, sources, sessions):
    db = new_database(pg_server)
    idle = [await sessions(pg_server.dsn(db)) for _ in range(2)]
    snap = await bounded_poll(sources(pg_server.dsn(db)))
    keys = {f"postgres:primary:session/{c.pgconn.backend_pid}" for c in idle}

    app = PaneApp()
    async with app.run_test(size=(160, 30)) as pilot:
        pane = app.query_one(PostgresPane)
        pane.take(snap)
        pane.table.focus()
        await pilot.pause()
        assert not keys & {k for k, _ in pane.rows()}
        assert "idle hidden (i shows)" in pane._summary_shown.plain
        await pilot.press("i")
        assert keys <= {k for k, _ in pane.rows()}
        await pilot.press("L")
        assert pane.view == "lock tree" and not pane.rows()
        assert "no session is blocked" in pane._summary_shown.plain


# ---- a change from a group, through the incident session -----------------------------

def incident(tmp_path, read_only: bool = False) -> IncidentSession:
    journal = Journal(tmp_path / "incident.json", operator={"user": "oncall"})
    return IncidentSession(config.parse("refresh: 1\n", "t.yaml", env={}), journal, read_only=read_only)


async def test_terminating_a_groups_idle_sessions(pg_server, sources, sessions, tmp_path):
    db = new_database(pg_server)
    pids = await leaky(sessions, pg_server, db)
    source = sources(pg_server.dsn(db))
    snap = await bounded_poll(source)
    row = group_of(snap, "leaky")["row"]
    session = incident(tmp_path)
    session.attach([source])

    detail = await source.drill(row)
    assert sorted(detail.sections[0].drill) == sorted(f"session/{p}" for p in pids)
    change = detail.change("K")
    assert change.action == "terminate_backend" and change.confirm == "leaky"
    assert dict(change.params) == {"state": "idle", "application_name": "leaky", "user": "postgres",
                                   "pids": tuple(sorted(pids))}
    assert change.preview[0].startswith("5 idle sessions of application leaky")
    assert len(change.preview) == 6  # the count, then the first five it will hit

    ref = RowRef("postgres", "primary", row)
    with pytest.raises(Refusal, match="not confirmed"):
        await session.change(ref, change, "leak")
    assert alive(pg_server, pids) == set(pids)
    result = await session.change(ref, change, "leaky")

    assert result.ok, result.error
    deadline = time.monotonic() + 5
    while alive(pg_server, pids):
        assert time.monotonic() < deadline, "the leaky sessions are still there"
        await asyncio.sleep(0.05)
    attempts = [e for e in session.events() if e.kind == "action"]
    assert [e.data["ok"] for e in attempts] == [False, True]
    assert [e.data["confirmed_by"] for e in attempts] == ["leak", "leaky"]


async def test_read_only_refuses_the_groups_terminate(pg_server, sources, sessions, tmp_path):
    db = new_database(pg_server)
    pids = await leaky(sessions, pg_server, db)
    source = sources(pg_server.dsn(db))
    row = group_of(await bounded_poll(source), "leaky")["row"]
    session = incident(tmp_path, read_only=True)
    session.attach([source])
    change = (await source.drill(row)).change("K")

    with pytest.raises(Refusal, match="read-only"):
        await session.change(RowRef("postgres", "primary", row), change, "leaky")

    assert alive(pg_server, pids) == set(pids)
    attempts = [e for e in session.events() if e.kind == "action"]
    assert len(attempts) == 1 and attempts[0].data["ok"] is False


def test_a_nameless_or_untypeable_application_never_confirms_with_nothing():
    from console.sources.postgres_detail import group_detail

    record = {"members": [], "member_count": 1, "targets": [], "target_count": 1, "target_pids": [77]}
    for name in ("", "  ", "a{state}", HOSTILE):
        assert group_detail(name, None, "local", record).change("K").confirm == "idle sessions"
    assert dict(group_detail("", None, "local", record).change("K").params) == {
        "state": "idle", "application_name": "", "pids": (77,)}
    # Nothing idle in the group: nothing to offer.
    assert group_detail("x", None, "local", {**record, "target_pids": []}).change("K") is None


async def test_a_group_terminate_hits_only_the_sessions_its_confirmation_listed(pg_server, sources, sessions,
                                                                               tmp_path):
    """Found by a red team: six sessions that connected while the operator
    typed were terminated too (the change was a filter, not a list)."""
    db = new_database(pg_server)
    first = await leaky(sessions, pg_server, db, n=2)
    source = sources(pg_server.dsn(db))
    row = group_of(await bounded_poll(source), "leaky")["row"]
    session = incident(tmp_path)
    session.attach([source])
    ref = RowRef("postgres", "primary", row)
    change = (await session.drill(ref)).change("K")
    _, shown, expected = session.confirmation(ref, change)
    later = await leaky(sessions, pg_server, db, n=6)  # while the operator reads and types
    result = await session.change(ref, change, expected)
    assert result.ok and result.output.startswith("2 of 2 matching sessions signalled")
    deadline = time.monotonic() + 5
    while alive(pg_server, first) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not alive(pg_server, first) and alive(pg_server, later) == set(later)


async def test_a_session_whose_pid_now_belongs_to_another_is_not_signalled(pg_server, sources, sessions,
                                                                           tmp_path):
    """The confirmation showed one session; by the time it is typed that
    backend may be gone and its pid reused: the change is pinned to the
    backend's start, so another session is never hit."""
    db = new_database(pg_server)
    (pid,) = await leaky(sessions, pg_server, db, n=1)
    source = sources(pg_server.dsn(db))
    session = incident(tmp_path)
    session.attach([source])
    ref = RowRef("postgres", "primary", f"session/{pid}")
    change = (await session.drill(ref)).change("K")
    other = replace(change, params={**change.params, "backend_start": "2001-01-01T00:00:00.000000Z"})
    result = await session.change(ref, other, str(pid))
    assert not result.ok and "not the session shown" in result.error
    assert alive(pg_server, [pid]) == {pid}
    assert (await session.change(ref, change, str(pid))).ok  # the session shown: terminated


def test_an_application_named_like_a_template_can_still_be_terminated_from_its_group(tmp_path):
    """Found by a red team: ``batch-{pid}`` was read as a playbook template
    and the change refused for want of a {pid}. From a pane, values are values."""
    from console.incident.journal import Journal
    from console.incident.session import IncidentSession
    from console.sources.postgres import PostgresSource
    from console.sources.postgres_detail import group_detail

    cfg = config.parse("refresh: 1\npostgres:\n  - name: primary\n    dsn: postgresql://u@127.0.0.1:1/db\n",
                       "t.yaml", env={})
    session = IncidentSession(cfg, Journal(tmp_path / "j.json", operator={"user": "x"}))
    session.attach([PostgresSource(cfg.postgres[0])])
    record = {"members": [], "member_count": 30, "targets": [], "target_count": 30, "target_pids": [41, 42]}
    change = group_detail("batch-{pid}", "app", "10.0.0.1", record).change("K")
    title, shown, expected = session.confirmation(RowRef("postgres", "primary", "group/x"), change)
    assert expected == change.confirm and "app=batch-{pid}" in shown[-1]


def test_a_lock_chain_as_deep_as_the_server_has_sessions_is_drawn():
    """Found by a red team: a chain 499 deep raised RecursionError in the pane."""
    from console.widgets.postgres import lock_tree

    chain = [{"pid": i, "blocked_by": (i - 1,) if i > 1 else ()} for i in range(1, 5001)]
    tree = lock_tree(list(reversed(chain)))
    assert [s["pid"] for s, _ in tree] == list(range(1, 5001))
    assert [d for _, d in tree][:3] == [0, 1, 2] and tree[-1][1] == 4999
