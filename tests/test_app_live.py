"""The console against real servers: readings reach the panes, a SIGSTOPped
Redis turns its pane unreachable while keys and the other panes carry on."""

from __future__ import annotations


import psycopg
import pytest

from console import config
from console.app import IncidentConsole
from console.demo.servers import RedisServer
from console.sources.base import State
from console.widgets.postgres import PostgresPane
from console.widgets.redis import RedisPane
from screen import live_yaml, wait




def _latest(pane):
    return next(iter(pane.snapshots.values()), None)


@pytest.fixture
def own_redis():
    with RedisServer() as server:
        yield server


async def test_real_servers_fill_the_panes_and_a_hung_redis_does_not_block(pg_server, own_redis):
    cfg = config.parse(live_yaml(pg_server.dsn(), own_redis.url, redis_timeout=0.5), "live.yaml", env={})
    held = [psycopg.connect(pg_server.dsn(application_name="held")) for _ in range(3)]
    app = IncidentConsole(cfg)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            pg, redis = app.query_one(PostgresPane), app.query_one(RedisPane)
            await wait(pilot, lambda: _latest(pg) and _latest(redis))
            await wait(pilot, lambda: _latest(pg).metrics["connections_total"] >= 3)
            assert redis.table.get_row("clients")[1].plain.endswith("/ 10000")

            own_redis.pause()
            try:
                await wait(pilot, lambda: _latest(redis).state is State.UNREACHABLE)
                assert "unreachable: cache" in str(redis.border_subtitle)
                seen = _latest(pg).taken_at
                await wait(pilot, lambda: _latest(pg).taken_at > seen)  # postgres keeps updating
                await pilot.press("4")
                assert app.focused is redis.table
            finally:
                own_redis.resume()
            await wait(pilot, lambda: _latest(redis).reachable)
            await pilot.press("q")
    finally:
        for conn in held:
            conn.close()
