"""The pool-exhausted walk at the keyboard, against a real PostgreSQL whose
connections an application role has exhausted: suggestion, probes on the
live database, typed confirmation, read-only refusal, the condition step
ticking when connections drop, every step journaled."""

from __future__ import annotations

import time

import psycopg
import pytest

from console import config
from console.app import IncidentConsole
from console.incident.journal import Journal
from console.demo.servers import PostgresServer
from console.widgets.playbook import PlaybookPane
from screen import wait

BOOK = "postgres-pool-exhausted"


@pytest.fixture(scope="module")
def pg():
    with PostgresServer(max_connections=20, extra_conf={"superuser_reserved_connections": "2"}) as server:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE ROLE app LOGIN")
        yield server


def _exhaust(pg) -> list[psycopg.Connection]:
    held = []
    try:
        while True:
            held.append(psycopg.connect(pg.dsn(user="app", application_name="leaky-pool"), autocommit=True))
    except psycopg.OperationalError:
        return held


def _console(pg, tmp_path, read_only=False):
    cfg = config.parse(f"refresh: 0.3\npostgres:\n  - name: primary\n    dsn: {pg.dsn()}\n", "walk.yaml", env={})
    journal = Journal(tmp_path / "walk.json", operator={"user": "oncall", "ssh_client": "10.1.2.3"})
    return IncidentConsole(cfg, journal=journal, read_only=read_only), journal


def _connect_once_freed(dsn: str, within_s: float = 10.0) -> psycopg.Connection:
    """A client closing its connection returns at once, but its backend frees
    the slot a moment later: connecting straight away sometimes finds the
    server still full."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return psycopg.connect(dsn)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _step_row(app, step_id: str) -> int:
    return [s.id for s in app.session.desk.by_id[BOOK].steps].index(step_id)


async def _select(pilot, app, step_id: str) -> None:
    pane = app.query_one(PlaybookPane)
    pane.table.focus()
    pane.table.move_cursor(row=_step_row(app, step_id))
    await pilot.pause()


async def test_walk_through_an_exhausted_pool(pg, tmp_path):
    held = _exhaust(pg)
    held.pop().close()  # make room for a stuck worker, which will sit in a transaction
    idle_tx = _connect_once_freed(pg.dsn(user="app", application_name="stuck-worker"))
    pid = str(idle_tx.info.backend_pid)
    app, journal = _console(pg, tmp_path)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait(pilot, lambda: app.session.desk is not None and BOOK in app.session.desk.suggested)
            app.main.start_playbook(BOOK)
            await pilot.pause()
            pane = app.query_one(PlaybookPane)
            assert pane.playbook.id == BOOK and not pane.ticks.get("connections-recovered")

            await _select(pilot, app, "connections-by-state")
            await pilot.press("enter")
            await wait(pilot, lambda: any(e.kind == "probe" for e in journal.events()))
            probe = [e for e in journal.events() if e.kind == "probe"][0]
            assert probe.data["ok"] and "idle" in probe.data["output"]  # the live database answered

            idle_tx.execute("SELECT 1")  # now idle in transaction, holding its slot
            await wait(pilot, lambda: any(s.get("application") == "stuck-worker" and s.get("state") != "idle"
                                          for snap in app.session.latest.values()
                                          for s in snap.details.get("sessions", ())))
            await _select(pilot, app, "terminate-one-backend")
            # The pid is its own confirmation: asked once, on the confirmation,
            # which shows the session it would hit (issue 13; it was asked twice).
            await pilot.press("enter")
            await pilot.pause()
            await pilot.press(*pid)
            await pilot.pause()
            assert "stuck-worker" in "\n".join(app.session.step_confirmation(
                app.session.desk.by_id[BOOK].steps[_step_row(app, "terminate-one-backend")], {"pid": pid}))
            await pilot.press("escape")  # not confirmed: nothing runs, nothing to journal
            await pilot.pause()
            assert idle_tx.execute("SELECT 1").fetchone() == (1,)  # still alive
            assert not any(e.kind == "action" for e in journal.events())

            await pilot.press("enter")
            await pilot.pause()
            await pilot.press(*pid, "enter")  # typed, with the session in front of the operator: runs
            await wait(pilot, lambda: sum(e.kind == "action" for e in journal.events()) == 1)
            with pytest.raises(psycopg.OperationalError):
                idle_tx.execute("SELECT 1")

            for conn in held:
                conn.close()
            await wait(pilot, lambda: pane.ticks.get("connections-recovered"))
            await pilot.press("q")
    finally:
        for conn in held + [idle_tx]:
            conn.close()
    kinds = [e.kind for e in journal.events()]
    assert "playbook.started" in kinds and "threshold.crossed" in kinds
    actions = [e for e in journal.events() if e.kind == "action"]
    assert len(actions) == 1 and actions[0].data["ok"] is True and actions[0].data["confirmed_by"] == pid
    auto = [e for e in journal.events() if e.kind == "playbook.tick" and e.data["auto"]]
    assert [e.data["step"] for e in auto] == ["connections-recovered"]
    # What the operator did is theirs; what the console saw (crossings, the
    # automatic tick, the suggestion) is the console's since issue 13.
    observed = {"threshold.crossed", "source.lost", "source.recovered", "source.state", "playbook.suggested", "moment"}
    by_console = [e for e in journal.events() if e.kind in observed or (e.kind == "playbook.tick" and e.data["auto"])]
    assert by_console and all(e.operator["user"] == "console" for e in by_console)
    assert all(e.operator["user"] == "oncall" for e in journal.events() if e not in by_console)


async def test_read_only_refuses_actions_and_says_so(pg, tmp_path):
    victim = psycopg.connect(pg.dsn(user="app", application_name="victim"))
    victim.execute("SELECT 1")
    app, journal = _console(pg, tmp_path, read_only=True)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait(pilot, lambda: app.session.desk is not None)
            app.main.start_playbook(BOOK)
            await _select(pilot, app, "terminate-idle-in-transaction")
            await pilot.press("enter")
            await wait(pilot, lambda: any(e.kind == "action" for e in journal.events()))
            assert "READ-ONLY" in app.main.header._shown.plain
    finally:
        alive = victim.execute("SELECT 1").fetchone()
        victim.close()
    assert alive == (1,)
    action = [e for e in journal.events() if e.kind == "action"][0]
    assert action.data["ok"] is False and "read-only" in str(action.data).lower()
