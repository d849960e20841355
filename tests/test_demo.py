"""The demo sandbox: real servers come up, faults bite, and nothing outlives stop()."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from redis.backoff import NoBackoff
from redis.retry import Retry

from console import config
from console.demo.sandbox import MAXMEMORY, SHIPPED_PLAYBOOKS, DemoSandbox

FAULTS = {"exhaust-postgres", "block-postgres", "hang-redis", "redis-evictions",
          "api-errors", "api-slow", "api-down", "api-hang", "k8s-forbidden"}


@pytest.fixture(scope="module")
def sandbox():
    sb = DemoSandbox().start()
    yield sb
    sb.stop()


# ---- helpers -----------------------------------------------------------------
@contextlib.contextmanager
def injected(sb: DemoSandbox, name: str):
    """The fault on for the block; off afterwards even when an assertion fails,
    so one broken test does not poison the next."""
    message = sb.faults[name][1]()
    assert message.startswith(f"{name} injected"), message
    assert name in sb.active_faults()
    try:
        yield
    finally:
        if name in sb.active_faults():
            sb.faults[name][1]()


def clear(sb: DemoSandbox, name: str) -> None:
    message = sb.faults[name][1]()
    assert message == f"{name} cleared", message
    assert name not in sb.active_faults()


def wait_until(predicate, timeout: float = 10.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def redis_client(sb: DemoSandbox, timeout: float = 1.0, db: int = 0) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=sb.redis.port, db=db, socket_timeout=timeout,
                       socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))


def scrape(url: str) -> dict:
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(url, timeout=2).text)}
    requests = [s for s in families["http_requests"].samples if s.name == "http_requests_total"]
    buckets = [s for s in families["http_request_duration_seconds"].samples
               if s.name == "http_request_duration_seconds_bucket" and s.labels["handler"] != "/health"]
    return {
        "families": families,
        "requests": requests,
        "total": sum(s.value for s in requests),
        "5xx": sum(s.value for s in requests if s.labels["status"].startswith("5")),
        "observed": sum(s.value for s in buckets if s.labels["le"] == "+Inf"),
        "within_1s": sum(s.value for s in buckets if s.labels["le"] == "1.0"),
    }


def traffic_over(url: str, seconds: float) -> dict:
    before = scrape(url)
    time.sleep(seconds)
    after = scrape(url)
    return {k: after[k] - before[k] for k in ("total", "5xx", "observed", "within_1s")}


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has already exited


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def footprint(sb: DemoSandbox) -> dict:
    """Every process and port the sandbox runs, to check after it is gone."""
    postmaster = sb.postgres.pid
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout
    return {
        "pids": [postmaster, sb.redis.process.pid, *map(int, children.split())],
        "ports": [sb.postgres.port, sb.redis.port, sb.checkout.port, sb.payments.port],
        "dirs": [str(sb.root), str(sb.postgres.root), str(sb.redis.root)],
    }


def assert_gone(left: dict) -> None:
    assert [p for p in left["pids"] if alive(p)] == []
    assert [p for p in left["ports"] if port_open(p)] == []
    assert [d for d in left["dirs"] if os.path.exists(d)] == []


def get_quietly(url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(url, timeout=10)


def demo_threads(besides: set[threading.Thread] = frozenset()) -> list[str]:
    """Sandbox threads still running, other than those of the module's sandbox."""
    return [t.name for t in threading.enumerate()
            if t.name.startswith("demo-") and t.is_alive() and t not in besides]


# ---- the sandbox running -------------------------------------------------------
def test_real_servers_answer(sandbox):
    with psycopg.connect(sandbox.app_dsn("test"), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 1000
        assert conn.execute("SHOW max_connections").fetchone()[0] == "40"
    client = redis_client(sandbox)
    assert client.ping() is True
    assert client.config_get("maxmemory")["maxmemory"] == str(MAXMEMORY)
    for service in (sandbox.checkout, sandbox.payments):
        answer = httpx.get(service.health_url, timeout=2)
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok", "service": service.name}
        assert httpx.get(service.url + "/nope", timeout=2).status_code == 404


def test_config_file_loads_and_points_at_the_sandbox(sandbox):
    cfg = config.load(sandbox.config_path)
    assert cfg.warnings == ()
    assert (cfg.environment.name, cfg.environment.banner, cfg.environment.read_only) == ("demo-sandbox", "blue", False)
    assert cfg.refresh == 2.0
    assert cfg.prometheus is None and cfg.kubernetes.namespaces == ("app",)
    assert [(s.name, s.url, s.metrics) for s in cfg.services] == [
        (s.name, s.health_url, s.metrics_url) for s in (sandbox.checkout, sandbox.payments)]
    assert cfg.playbooks == ((SHIPPED_PLAYBOOKS,) if SHIPPED_PLAYBOOKS.is_dir() else ())
    with psycopg.connect(cfg.postgres[0].dsn) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == "app"
    assert redis.Redis.from_url(cfg.redis[0].url, socket_timeout=1).ping()
    assert sandbox.config_path.stat().st_mode & 0o077 == 0


def test_metrics_parse_and_counters_move(sandbox):
    first = scrape(sandbox.checkout.metrics_url)
    assert first["families"]["http_requests"].type == "counter"
    assert first["families"]["http_request_duration_seconds"].type == "histogram"
    assert {tuple(sorted(s.labels)) for s in first["requests"]} == {("handler", "job", "method", "status")}
    assert {s.labels["job"] for s in first["requests"]} == {"checkout-api"}
    started = time.monotonic()
    moved = traffic_over(sandbox.checkout.metrics_url, 1.5)
    rate = moved["total"] / (time.monotonic() - started)
    assert 10 <= rate <= 30, rate  # about 20 req/s
    assert moved["observed"] > 0
    assert traffic_over(sandbox.payments.metrics_url, 0.6)["total"] > 0


def test_background_load_shows_in_postgres_and_redis(sandbox):
    with psycopg.connect(sandbox.app_dsn("test"), autocommit=True) as conn:
        rows = conn.execute("SELECT application_name, state, query FROM pg_stat_activity "
                            "WHERE datname = 'app' AND pid <> pg_backend_pid()").fetchall()
    states = [(app, state) for app, state, _ in rows]
    # The services' pools: idle between requests, active for a moment in one.
    pooled = lambda app: sum(states.count((app, state)) for state in ("idle", "active"))  # noqa: E731
    assert (pooled("checkout-api"), pooled("payments-api")) == (6, 2)
    assert states.count(("checkout-api", "idle in transaction")) == 1
    assert any(app == "reporting" and state == "active" and "pg_sleep" in query for app, state, query in rows)
    client = redis_client(sandbox)
    stats = wait_until(lambda: (s := client.info("stats"))["keyspace_misses"] > 0 and s, timeout=5)
    assert stats, "no cache misses within 5 s"
    hit_rate = stats["keyspace_hits"] / (stats["keyspace_hits"] + stats["keyspace_misses"])
    assert 0.5 < hit_rate < 1.0


def test_every_fault_is_listed_with_a_description(sandbox):
    assert set(sandbox.faults) == FAULTS
    assert all(isinstance(d, str) and d and callable(f) for d, f in sandbox.faults.values())
    assert sandbox.active_faults() == set()


# ---- faults, as a real client sees them ------------------------------------------
def test_exhaust_postgres_refuses_new_connections_until_cleared(sandbox):
    with injected(sandbox, "exhaust-postgres"):
        with pytest.raises(psycopg.OperationalError, match="reserved for .*superuser"):
            psycopg.connect(sandbox.app_dsn("test"))
        # The console's monitor still gets in through the reserved slots.
        with psycopg.connect(sandbox.monitor_dsn()) as monitor:
            assert monitor.execute("SELECT 1").fetchone() == (1,)
        # A fault that cannot be injected says so instead of raising.
        message = sandbox.faults["block-postgres"][1]()
        assert "could not be injected" in message and "reserved" in message
        assert "block-postgres" not in sandbox.active_faults()
        clear(sandbox, "exhaust-postgres")
    with psycopg.connect(sandbox.app_dsn("test"), autocommit=True) as conn:
        # Backends exit a moment after their client hangs up.
        clients = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        assert wait_until(lambda: conn.execute(clients).fetchone()[0] <= 11, timeout=5)  # 10 of load + us


BLOCKED = "SELECT count(*) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0"
EXCLUSIVE = ("SELECT count(*) FROM pg_locks WHERE relation = 'orders'::regclass "
             "AND mode = 'AccessExclusiveLock' AND granted")


def test_block_postgres_leaves_a_session_waiting_behind_a_lock(sandbox):
    with psycopg.connect(sandbox.app_dsn("test"), autocommit=True) as conn:
        count = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        with injected(sandbox, "block-postgres"):
            assert count(EXCLUSIVE) == 1
            assert wait_until(lambda: count(BLOCKED) >= 1, timeout=5)
            clear(sandbox, "block-postgres")
        assert wait_until(lambda: count(BLOCKED) == 0, timeout=5)
        assert count(EXCLUSIVE) == 0
        conn.execute("SET statement_timeout = '2s'")
        assert count("SELECT count(*) FROM orders") == 1000


def test_hang_redis_makes_ping_time_out(sandbox):
    client = redis_client(sandbox, timeout=0.5)
    with injected(sandbox, "hang-redis"):
        with pytest.raises(redis.TimeoutError):
            client.ping()
        clear(sandbox, "hang-redis")
    assert redis_client(sandbox).ping() is True


def test_redis_evictions_fill_memory_and_keep_evicting(sandbox):
    client = redis_client(sandbox, timeout=2)
    evicted = lambda: client.info("stats")["evicted_keys"]  # noqa: E731
    before = evicted()
    with injected(sandbox, "redis-evictions"):
        assert wait_until(lambda: evicted() > before, timeout=10), "no evictions within 10 s"
        assert client.info("memory")["used_memory"] > 0.9 * MAXMEMORY
        first = evicted()
        time.sleep(1.0)
        assert evicted() - first > 20  # still evicting, every second
        clear(sandbox, "redis-evictions")
    assert redis_client(sandbox, db=1).dbsize() == 0
    assert client.info("memory")["used_memory"] < 0.5 * MAXMEMORY
    settled = evicted()
    time.sleep(0.5)
    assert evicted() == settled


def test_api_errors_raise_the_5xx_share(sandbox):
    url = sandbox.checkout.metrics_url
    with injected(sandbox, "api-errors"):
        moved = traffic_over(url, 1.5)
        assert moved["5xx"] / moved["total"] > 0.12, moved
        clear(sandbox, "api-errors")
    moved = traffic_over(url, 1.0)
    assert moved["total"] > 0 and moved["5xx"] == 0, moved
    assert traffic_over(sandbox.payments.metrics_url, 0.5)["total"] > 0  # the other service is untouched


def test_api_slow_pushes_p95_past_a_second(sandbox):
    service = sandbox.checkout
    with injected(sandbox, "api-slow"):
        started = time.monotonic()
        assert httpx.get(service.health_url, timeout=5).status_code == 200
        assert time.monotonic() - started >= 1.4
        moved = traffic_over(service.metrics_url, 1.5)
        slow_share = 1 - moved["within_1s"] / moved["observed"]
        assert slow_share > 0.1, moved  # more than 5 % over 1 s: p95 is past a second
        clear(sandbox, "api-slow")
    started = time.monotonic()
    httpx.get(service.health_url, timeout=5)
    assert time.monotonic() - started < 0.5
    moved = traffic_over(service.metrics_url, 1.0)
    assert moved["observed"] > 0 and moved["within_1s"] == moved["observed"], moved


def test_api_down_answers_503(sandbox):
    with injected(sandbox, "api-down"):
        answer = httpx.get(sandbox.checkout.health_url, timeout=2)
        assert answer.status_code == 503 and answer.json()["status"] == "unavailable"
        assert httpx.get(sandbox.payments.health_url, timeout=2).status_code == 200
        clear(sandbox, "api-down")
    assert httpx.get(sandbox.checkout.health_url, timeout=2).status_code == 200


def test_api_hang_never_answers_health(sandbox):
    with injected(sandbox, "api-hang"):
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(sandbox.checkout.health_url, timeout=0.5)
        # /metrics still answers: only the health check hangs
        assert httpx.get(sandbox.checkout.metrics_url, timeout=2).status_code == 200
        clear(sandbox, "api-hang")
    started = time.monotonic()
    assert httpx.get(sandbox.checkout.health_url, timeout=2).status_code == 200
    assert time.monotonic() - started < 0.5


# ---- nothing left behind -------------------------------------------------------------
def test_stop_with_faults_active_leaves_nothing_behind():
    running = set(threading.enumerate())
    with DemoSandbox() as sb:
        for name in ("block-postgres", "redis-evictions", "hang-redis", "api-hang", "exhaust-postgres"):
            assert "injected" in sb.faults[name][1](), name
        hung = threading.Thread(target=get_quietly, args=(sb.checkout.health_url,), daemon=True)
        hung.start()
        time.sleep(0.2)  # the request is now stuck in the /health handler
        left = footprint(sb)
        assert len(left["pids"]) > 40  # the backends of the exhausted server count too
        started = time.monotonic()
    assert time.monotonic() - started < 10
    assert_gone(left)
    assert sb.active_faults() == set()
    assert demo_threads(running) == []
    sb.stop()  # idempotent
    assert "not running" in sb.faults["api-down"][1]()
    hung.join(5)
    assert not hung.is_alive()


class _BrokenConfig(DemoSandbox):
    """Fails at the last step of start(), after every server is up."""

    def _write_config(self) -> None:
        self.left = footprint(self)
        raise OSError("disk full")


def test_a_failed_start_stops_what_it_started():
    running = set(threading.enumerate())
    sb = _BrokenConfig()
    with pytest.raises(OSError, match="disk full"):
        sb.start()
    assert_gone(sb.left)
    assert demo_threads(running) == []


FORGOTTEN = """
import json
from console.demo.sandbox import DemoSandbox
sb = DemoSandbox().start()
sb.faults["hang-redis"][1]()
print(json.dumps({"pids": [sb.postgres.pid, sb.redis.process.pid],
                  "ports": [sb.postgres.port, sb.redis.port, sb.checkout.port],
                  "dirs": [str(sb.root), str(sb.postgres.root), str(sb.redis.root)]}))
"""


def test_a_forgotten_sandbox_is_stopped_at_exit():
    done = subprocess.run([sys.executable, "-c", FORGOTTEN], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert_gone(json.loads(done.stdout))


def test_kubernetes_is_recorded_responses_through_the_real_client(sandbox):
    import asyncio

    from console import config
    from console.sources.kubernetes import WorkloadWatch

    cfg = config.load(sandbox.config_path)
    watch = WorkloadWatch(cfg.kubernetes, "app")
    snap = asyncio.run(watch.poll())
    assert snap.reachable and snap.metrics["crashlooping_pods"] == 1
    assert snap.metrics["warning_events"] >= 1  # recorded times moved to now
    with injected(sandbox, "k8s-forbidden"):
        denied = asyncio.run(WorkloadWatch(cfg.kubernetes, "app").poll())
        assert not denied.reachable and "403" in denied.error
        clear(sandbox, "k8s-forbidden")
