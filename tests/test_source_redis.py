"""The Redis source against real redis-server processes on loopback."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from console.config import RedisTarget
from console.demo.servers import RedisServer, free_port
from console.sources.base import State, bounded_poll
from console.sources.redis import COUNTERS, RedisSource, _hit_rate, _rates, _Reading

METRIC_KEYS = {
    "connected_clients", "maxclients", "clients_ratio", "blocked_clients", "used_memory", "maxmemory",
    "memory_ratio", "evicted_keys", "evictions_per_sec", "keyspace_hits", "keyspace_misses", "hit_rate",
    "ops_per_sec", "rejected_connections", "rejected_connections_per_sec", "role", "connected_slaves",
    "replication_lag_s", "slowlog_len", "ping_ms", "redis_version", "uptime_in_seconds",
}
RATES = ("evictions_per_sec", "ops_per_sec", "rejected_connections_per_sec")


@pytest.fixture
async def make_source():
    """Sources that are closed after the test, whatever it asserted."""
    made: list[RedisSource] = []

    def make(url: str, timeout: float = 2.0) -> RedisSource:
        made.append(RedisSource(RedisTarget("cache", url, timeout=timeout)))
        return made[-1]

    yield make
    for src in made:
        await src.close()


def rates(snap) -> list:
    return [snap.metrics[k] for k in RATES]


def admin(server: RedisServer) -> redis.Redis:
    """The test's own connection, separate from the source's."""
    return redis.Redis.from_url(server.url, socket_timeout=5, decode_responses=True)


async def poll_until(source: RedisSource, check, within: float = 6.0):
    deadline = time.monotonic() + within
    while True:
        snap = await bounded_poll(source, 2.0)
        if check(snap) or time.monotonic() > deadline:
            return snap
        await asyncio.sleep(0.1)


def is_ok(snap) -> bool:
    return snap.state is State.OK


@pytest.fixture
def source(redis_server, make_source):
    return make_source(redis_server.url)


async def test_a_live_server_reports_every_metric(source, redis_server):
    snap = await source.poll()
    assert snap.state is State.OK and snap.error is None
    assert set(snap.metrics) == METRIC_KEYS
    m = snap.metrics
    maxclients = int(admin(redis_server).config_get("maxclients")["maxclients"])
    assert m["maxclients"] == maxclients
    assert m["clients_ratio"] == m["connected_clients"] / maxclients
    assert m["role"] == "master" and m["connected_slaves"] == 0 and m["replication_lag_s"] == 0
    assert m["maxmemory"] == 0 and m["memory_ratio"] is None
    assert m["redis_version"].count(".") == 2 and m["uptime_in_seconds"] >= 0
    assert isinstance(m["slowlog_len"], int)
    assert m["ping_ms"] > 0 and snap.latency_ms == pytest.approx(m["ping_ms"], abs=0.001)
    assert rates(snap) == [None] * 3  # no interval yet on a first poll
    json.dumps(snap.to_json())


async def test_connected_clients_follow_extra_clients(source, redis_server):
    before = (await source.poll()).metrics["connected_clients"]
    extra = [admin(redis_server) for _ in range(5)]
    for client in extra:
        client.ping()
    try:
        snap = await source.poll()
        assert snap.metrics["connected_clients"] == before + 5
        assert snap.metrics["clients_ratio"] == (before + 5) / snap.metrics["maxclients"]
    finally:
        for client in extra:
            client.close()
    snap = await poll_until(source, lambda s: s.metrics["connected_clients"] == before)
    assert snap.metrics["connected_clients"] == before


async def test_memory_ratio_follows_maxmemory(source, redis_server):
    conn = admin(redis_server)
    conn.config_set("maxmemory", str(64 * 1024 * 1024))
    try:
        m = (await source.poll()).metrics
        assert m["maxmemory"] == 64 * 1024 * 1024
        assert m["memory_ratio"] == m["used_memory"] / m["maxmemory"]
        assert 0 < m["memory_ratio"] < 1
    finally:
        conn.config_set("maxmemory", "0")
    assert (await source.poll()).metrics["memory_ratio"] is None


async def test_hit_rate_is_the_interval_and_falls_back_to_lifetime(redis_server, make_source):
    conn = admin(redis_server)
    conn.config_resetstat()
    conn.set("hit-rate:key", "v")
    src = make_source(redis_server.url)
    assert (await src.poll()).metrics["hit_rate"] is None  # no lookups ever
    for key in ("hit-rate:key", "hit-rate:key", "hit-rate:key", "hit-rate:missing"):
        conn.get(key)
    first = (await src.poll()).metrics
    assert (first["keyspace_hits"], first["keyspace_misses"]) == (3, 1)
    assert first["hit_rate"] == 0.75
    conn.get("hit-rate:key")
    assert (await src.poll()).metrics["hit_rate"] == 1.0  # this interval, not the lifetime 0.8
    assert (await src.poll()).metrics["hit_rate"] == 0.8  # no lookups since: lifetime


async def test_ops_per_sec_counts_other_clients_not_ours(source, redis_server):
    await source.poll()
    await source.poll()
    await asyncio.sleep(0.2)
    # Nothing else talks to this server: our own INFO and SLOWLOG LEN are not traffic.
    assert (await source.poll()).metrics["ops_per_sec"] == 0.0

    n = 300
    conn = admin(redis_server)
    conn.ping()  # connect now: its handshake must not land in the measured interval
    t0 = time.monotonic()
    await source.poll()
    t1 = time.monotonic()
    pipe = conn.pipeline(transaction=False)
    for _ in range(n):
        pipe.incr("ops:counter")
    pipe.execute()
    await asyncio.sleep(0.5)
    t2 = time.monotonic()
    snap = await source.poll()
    t3 = time.monotonic()
    # The source's interval lies between the gap of the two polls and their span.
    assert n / (t3 - t0) <= snap.metrics["ops_per_sec"] <= n / (t2 - t1)


def command_calls(conn: redis.Redis) -> dict[str, int]:
    stats = conn.info("commandstats")
    return {k: v["calls"] for k, v in stats.items()}


async def test_a_refresh_sends_two_commands_and_no_ping(source, redis_server):
    await source.poll()  # connect first: CLIENT SETNAME is a one-off, not per refresh
    observer = admin(redis_server)
    before = command_calls(observer)
    polls = 5
    for _ in range(polls):
        assert (await source.poll()).state is State.OK
    after = command_calls(observer)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    delta["cmdstat_info"] -= 1  # the observer's first INFO commandstats
    sent = {k: v for k, v in delta.items() if v}
    assert sent == {"cmdstat_info": polls, "cmdstat_slowlog|len": polls}
    assert sum(sent.values()) <= 2 * polls


async def test_sigstopped_server_times_out_then_recovers(make_source):
    with RedisServer() as server:
        src = make_source(server.url, timeout=2.0)
        assert (await src.poll()).state is State.OK
        server.pause()
        try:
            started = time.monotonic()
            snap = await bounded_poll(src, 1.0)  # forget() must not wait on the stopped server
            assert time.monotonic() - started < 1.5
            assert snap.state is State.UNREACHABLE and "timed out" in snap.error

            started = time.monotonic()
            snap = await bounded_poll(src, 1.0)  # backing off: answers at once
            assert time.monotonic() - started < 0.2
            assert snap.state is State.UNREACHABLE and "retrying in 1s" in snap.error

            fresh = make_source(server.url, timeout=2.0)  # connecting to a stopped server
            started = time.monotonic()
            assert (await bounded_poll(fresh, 1.0)).state is State.UNREACHABLE
            assert time.monotonic() - started < 1.5
        finally:
            server.resume()
        snap = await poll_until(src, is_ok)
        assert snap.state is State.OK and set(snap.metrics) == METRIC_KEYS


async def test_client_pause_times_out_then_recovers(make_source):
    with RedisServer() as server:
        src = make_source(server.url, timeout=0.5)
        assert (await src.poll()).state is State.OK
        admin(server).execute_command("CLIENT", "PAUSE", 1500, "ALL")
        started = time.monotonic()
        snap = await bounded_poll(src, 2.0)
        # The source's own socket timeout (0.5 s) fires before the outer deadline.
        assert time.monotonic() - started < 1.0
        assert snap.state is State.UNREACHABLE and "Timeout" in snap.error
        snap = await poll_until(src, is_ok)
        assert snap.state is State.OK


async def test_restart_gives_unreachable_then_no_negative_rates(make_source):
    with RedisServer() as server:
        src = make_source(server.url)
        await src.poll()
        assert all(r >= 0 for r in rates(await src.poll()))
        server.stop()
        started = time.monotonic()
        snap = await bounded_poll(src, 2.0)
        assert time.monotonic() - started < 1.0
        assert snap.state is State.UNREACHABLE and "retrying in" in snap.error
        server.start()
        snap = await poll_until(src, is_ok)
        assert snap.state is State.OK and rates(snap) == [None] * 3

        # A restart between two polls: the held socket is dead, one fresh
        # connection in the same poll, and no false outage.
        await src.poll()
        server.restart()
        snap = await src.poll()
        assert snap.state is State.OK
        assert rates(snap) == [None] * 3
        await asyncio.sleep(0.1)
        assert all(r >= 0 for r in rates(await src.poll()))


async def test_reset_counters_on_the_same_connection_reset_the_baseline(redis_server, make_source):
    conn = admin(redis_server)
    for _ in range(50):
        conn.ping()
    src = make_source(redis_server.url)
    await src.poll()
    assert (await src.poll()).metrics["ops_per_sec"] is not None
    conn.config_resetstat()  # counters go backwards while our connection lives on
    snap = await src.poll()
    assert snap.state is State.OK and rates(snap) == [None] * 3
    assert all(r >= 0 for r in rates(await src.poll()))


async def test_maxclients_reached_held_connection_keeps_reporting(make_source):
    with RedisServer(maxclients=4) as server:
        held = make_source(server.url)
        assert (await held.poll()).state is State.OK
        fillers = [admin(server) for _ in range(3)]
        for client in fillers:
            client.ping()
        assert (await held.poll()).metrics["clients_ratio"] == 1.0

        fresh = make_source(server.url)
        started = time.monotonic()
        snap = await bounded_poll(fresh, 2.0)
        assert time.monotonic() - started < 0.5
        assert snap.state is State.UNREACHABLE and "max number of clients reached" in snap.error

        snap = await held.poll()
        assert snap.state is State.OK
        assert snap.metrics["connected_clients"] == 4 and snap.metrics["rejected_connections"] >= 1
        assert snap.metrics["rejected_connections_per_sec"] > 0
        for client in fillers:
            client.close()


async def test_hostile_client_names_do_not_leak_into_the_snapshot(source, redis_server):
    names = ["[red]boom[/red]", "\\x1b[31mred", "[link=file:///etc/passwd]x[/link]"]
    clients = [admin(redis_server) for _ in names]
    for client, name in zip(clients, names):
        client.client_setname(name)
    try:
        snap = await source.poll()
        assert snap.state is State.OK
        text = json.dumps({**snap.to_json(), "details": repr(snap.details)})
        assert not any(name in text for name in names) and "boom" not in text
    finally:
        for client in clients:
            client.close()


async def test_replica_reports_role_and_lag(make_source):
    with RedisServer() as primary, RedisServer() as replica:
        admin(primary).config_set("repl-diskless-sync-delay", "0")  # else the first sync waits 5 s
        admin(replica).replicaof("127.0.0.1", primary.port)
        rep_src, pri_src = make_source(replica.url), make_source(primary.url)
        snap = await poll_until(rep_src, lambda s: (s.details.get("master") or {}).get("link_status") == "up")
        assert snap.metrics["role"] == "slave"
        assert isinstance(snap.metrics["replication_lag_s"], int) and snap.metrics["replication_lag_s"] >= 0
        assert snap.details["master"]["port"] == primary.port

        snap = await poll_until(pri_src, lambda s: s.metrics["connected_slaves"] == 1)
        assert snap.metrics["role"] == "master" and snap.metrics["connected_slaves"] == 1
        assert isinstance(snap.metrics["replication_lag_s"], int) and snap.metrics["replication_lag_s"] >= 0
        assert [r["port"] for r in snap.details["replicas"]] == [replica.port]

        primary.stop()  # the replica's link goes down: lag becomes time since then
        snap = await poll_until(rep_src, lambda s: s.details["master"]["link_status"] == "down")
        assert snap.details["master"]["link_status"] == "down"
        assert isinstance(snap.metrics["replication_lag_s"], int) and snap.metrics["replication_lag_s"] >= 0


async def test_nothing_listening_is_unreachable_fast_without_the_password(make_source):
    src = make_source(f"redis://monitor:s3cret-pw@127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    snap = await src.poll()
    assert time.monotonic() - started < 0.5
    assert snap.state is State.UNREACHABLE and "retrying in 1s" in snap.error
    assert "s3cret" not in snap.error
    snap = await src.poll()
    assert snap.state is State.UNREACHABLE and "retrying in" in snap.error


async def test_forget_is_synchronous_and_the_next_poll_reconnects(source):
    assert (await source.poll()).state is State.OK
    assert source.forget() is None
    snap = await source.poll()
    assert snap.state is State.UNREACHABLE and "timed out; retrying in 1s" in snap.error
    await asyncio.sleep(1.05)
    snap = await source.poll()
    assert snap.state is State.OK and rates(snap) == [None] * 3


counter = st.integers(min_value=0, max_value=10**9)
reading = st.builds(
    _Reading,
    at=st.floats(min_value=0, max_value=1e6),
    run_id=st.sampled_from(["a", "b"]),
    uptime=st.integers(min_value=0, max_value=10**6),
    counters=st.fixed_dictionaries({k: counter for k in COUNTERS}),
)


@given(before=reading, now=reading)
def test_rates_are_never_negative_and_hit_rate_is_a_ratio(before, now):
    baseline = before if now.follows(before) else None
    rates = _rates(now, baseline)
    assert all(v is None or v >= 0 for v in rates.values())
    assert (baseline is None) == all(v is None for v in rates.values())
    rate = _hit_rate(now, baseline)
    assert rate is None or 0 <= rate <= 1
