"""The demo's faults cascade as in the seed runbooks: checkout-api uses the
demo's PostgreSQL and Redis for every request, so an exhausted pool or a hung
cache shows in its errors and latency, and nothing piles up while it lasts."""

from __future__ import annotations

import threading
import time

import httpx
import psycopg
import pytest

from console.demo.sandbox import CHECKOUT_POOL, DemoSandbox
from console.demo.service import CACHE_TIMEOUT_S
from test_demo import injected, traffic_over, wait_until


@pytest.fixture(scope="module")
def sandbox():
    sb = DemoSandbox().start()
    yield sb
    sb.stop()


def checkout_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("demo-checkout-api-") and t.is_alive())


def pooled_connections(sb: DemoSandbox, application: str) -> int:
    with psycopg.connect(sb.monitor_dsn(), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                            "AND state <> 'idle in transaction'", (application,)).fetchone()[0]


def healthy(sb: DemoSandbox) -> bool:
    moved = traffic_over(sb.checkout.metrics_url, 1.0)
    return moved["total"] > 0 and moved["5xx"] == 0 and moved["within_1s"] == moved["observed"]


def test_an_exhausted_postgres_makes_checkout_answer_5xx_and_slowly(sandbox):
    assert healthy(sandbox)
    with injected(sandbox, "exhaust-postgres"):
        answer = httpx.get(sandbox.checkout.health_url, timeout=5)
        assert answer.status_code == 503
        assert "PostgreSQL" in answer.json()["reason"] and "reserved" in answer.json()["reason"]
        moved = traffic_over(sandbox.checkout.metrics_url, 2.0)
        assert moved["total"] > 0 and moved["5xx"] / moved["total"] > 0.9, moved
        # Each request waited for a connection before it gave up.
        assert moved["within_1s"] < moved["observed"] or moved["5xx"] == moved["total"], moved
        # The leak is checkout-api's: idle connections under its name fill the server.
        assert pooled_connections(sandbox, "checkout-api") > 25
        assert checkout_threads() == CHECKOUT_POOL + 2  # workers, traffic, HTTP: no more
    assert wait_until(lambda: healthy(sandbox), timeout=10), "checkout-api did not recover"
    assert httpx.get(sandbox.checkout.health_url, timeout=2).status_code == 200
    assert pooled_connections(sandbox, "checkout-api") <= CHECKOUT_POOL + 1


def test_a_hung_redis_makes_checkout_slow_then_time_out(sandbox):
    assert healthy(sandbox)
    with injected(sandbox, "hang-redis"):
        started = time.monotonic()
        answer = httpx.get(sandbox.checkout.health_url, timeout=5)
        assert answer.status_code == 200  # a store without its cache is slow, not down
        assert time.monotonic() - started >= CACHE_TIMEOUT_S * 0.9
        moved = traffic_over(sandbox.checkout.metrics_url, 4.0)
        slow = moved["observed"] - moved["within_1s"]
        assert slow / moved["observed"] > 0.3, moved  # p95 well past a second
        # A fixed few workers wait on the cache, each with a timeout: no thread
        # or connection piles up, whatever the backlog.
        assert checkout_threads() == CHECKOUT_POOL + 2
        assert pooled_connections(sandbox, "checkout-api") <= CHECKOUT_POOL + 1
        # payments-api does not use the cache.
        assert traffic_over(sandbox.payments.metrics_url, 1.0)["5xx"] == 0
    assert wait_until(lambda: healthy(sandbox), timeout=10), "checkout-api did not recover"


def test_a_long_hang_ends_in_gateway_timeouts(sandbox):
    with injected(sandbox, "hang-redis"):
        # 20 requests a second, each held half a second by the cache, on six
        # workers: the queue grows until the load balancer gives up on it.
        time.sleep(3.0)
        moved = traffic_over(sandbox.checkout.metrics_url, 2.0)
        assert moved["5xx"] > 0, moved
    assert wait_until(lambda: healthy(sandbox), timeout=10), "checkout-api did not recover"


def test_a_stopped_sandbox_closes_the_services_connections():
    with DemoSandbox() as sb:
        pools = list(sb._pools)
        assert [len(p._idle) for p in pools] == [6, 2]
        assert "injected" in sb.faults["exhaust-postgres"][1]()
    assert all(not p._idle and not p._leaked for p in pools)
