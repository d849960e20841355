"""The screen: panes fed by snapshots, stale and unreachable states, a hung
source that never blocks keys or other panes, and inert hostile text."""

from __future__ import annotations

from datetime import timedelta

from console import config
from console.app import IncidentConsole
from console.sources.base import Snapshot, State, utcnow
from console.widgets.postgres import PostgresPane
from console.widgets.redis import RedisPane
from scripted import ScriptedSource
from screen import wait

HOSTILE = "[bold red]DROP[/] \x1b]52;c;cm0gLXJm\x07 \x1b[2J \u202eevil"

CFG = config.parse("refresh: 0.2\nredis:\n  - name: cache\n    url: redis://127.0.0.1:1/0\n", "t.yaml", env={})


def _pg_source() -> ScriptedSource:
    return ScriptedSource("postgres", "primary", metrics={
        "connections_total": 38, "max_connections": 40, "connections_ratio": 0.95,
        "connections_by_state": {"idle": 30, "active": 8}, "idle_in_transaction": 0,
        "blocked_sessions": 1, "longest_transaction_s": 3.0,
    }, details={"sessions": [{"pid": 4242, "database": "app", "user": "u", "state": "active",
                              "query_s": 2.0, "xact_s": 2.0, "blocked_by": [4241], "query": HOSTILE}]})


def _redis_source() -> ScriptedSource:
    return ScriptedSource("redis", "cache", metrics={"connected_clients": 5, "maxclients": 100, "hit_rate": 0.5})




async def test_panes_show_readings_and_thresholds():
    app = IncidentConsole(CFG, sources=[_pg_source(), _redis_source()])
    async with app.run_test(size=(120, 40)) as pilot:
        pg = app.query_one(PostgresPane)
        await wait(pilot, lambda: pg.snapshots)
        snap = next(iter(pg.snapshots.values()))
        assert snap.state is State.CRITICAL  # 95 % of max_connections
        assert pg.has_class("-critical")
        assert "38/40 conns" in pg._summary_shown.plain
        assert pg.table.get_row("postgres:primary:session/4242")[0].plain == "4242"


async def test_hostile_text_is_shown_inert():
    app = IncidentConsole(CFG, sources=[_pg_source()])
    async with app.run_test(size=(160, 48)) as pilot:
        pg = app.query_one(PostgresPane)
        await wait(pilot, lambda: pg.snapshots)
        query = pg.table.get_row("postgres:primary:session/4242")[4]
        assert query.plain.startswith("[bold red]DROP[/]") and not query.spans
        assert "\x1b" not in query.plain and "\x07" not in query.plain and "\u202e" not in query.plain
        svg = app.export_screenshot()
        assert "[bold&#160;red]DROP" in svg or "[bold red]DROP" in svg


async def test_hung_source_turns_unreachable_without_blocking_the_rest():
    redis = _redis_source()
    redis.hang = True
    pg = _pg_source()
    app = IncidentConsole(CFG, sources=[pg, redis])
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(RedisPane)
        await wait(pilot, lambda: pane.snapshots)
        snap = next(iter(pane.snapshots.values()))
        assert snap.state is State.UNREACHABLE and "timed out" in snap.error
        polls_before = pg.polls
        await pilot.press("3")  # keys still answered while redis hangs
        assert app.focused is app.query_one(PostgresPane).table
        await wait(pilot, lambda: pg.polls >= polls_before + 3)
        redis.hang = False
        await wait(pilot, lambda: next(iter(pane.snapshots.values())).reachable)


async def test_pane_goes_stale_when_readings_stop():
    now = [utcnow()]
    source = _redis_source()
    app = IncidentConsole(CFG, sources=[source], clock=lambda: now[0])
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(RedisPane)
        await wait(pilot, lambda: pane.snapshots)
        app._tick()
        assert pane.border_subtitle == "● live"
        now[0] += timedelta(seconds=60)
        app._tick()
        assert pane.border_subtitle.startswith("◌ stale") and pane.has_class("-stale")


async def test_unchanged_reading_redraws_nothing():
    app = IncidentConsole(CFG, sources=[])
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(RedisPane)
        snap = Snapshot("redis", "cache", State.OK, utcnow(), metrics={"connected_clients": 5, "maxclients": 9})
        pane.take(snap)
        await pilot.pause()
        assert pane.table.sync(pane.rows()) == 0
        pane.take(Snapshot("redis", "cache", State.OK, utcnow(), metrics={"connected_clients": 6, "maxclients": 9}))
        assert pane.table.get_row("clients")[1].plain == "6 / 9"


async def test_q_quits_and_closes_sources():
    source = _redis_source()
    app = IncidentConsole(CFG, sources=[source])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait(pilot, lambda: source.polls > 0)
        assert not source.closed
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert source.closed


async def test_a_worker_that_dies_is_shown_and_journaled(tmp_path):
    from console.incident.journal import Journal

    journal = Journal(tmp_path / "incident.json", operator={"user": "oncall"})
    app = IncidentConsole(CFG, sources=[_redis_source()], journal=journal)

    async def broken() -> None:
        raise RuntimeError("the poll loop broke")

    async with app.run_test(size=(120, 40)) as pilot:
        app.run_worker(broken(), name="poll redis:cache", group="poll", exit_on_error=False)
        await wait(pilot, lambda: any(e.kind == "console.error" for e in journal.events()))
        assert app.is_running
        assert any("poll redis:cache stopped" in str(n.message) for n in app._notifications)
    error = next(e for e in journal.events() if e.kind == "console.error")
    assert error.data["worker"] == "poll redis:cache" and "the poll loop broke" in error.data["error"]
