"""Redis: clients, memory, evictions, hit rate, ops/s, replication, slowlog.

One connection per source, held between polls. Each refresh is a single
round trip carrying two commands, ``INFO`` and ``SLOWLOG LEN``: a console
watching a struggling Redis must not add to its load, and its own commands
are subtracted from ``ops_per_sec``. Rates come from counter deltas between
two polls on the same connection, never from Redis's ``instantaneous_*``
fields, which cover only the last few seconds.

Details (SLOWLOG entries, clients, MEMORY STATS …) are read only when a row
is opened, on the same held connection and within the same timeout as a
probe, so a hung Redis fails the detail in ``timeout`` seconds instead of
hanging it; :mod:`console.sources.redis_detail` holds their commands.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from console.capabilities import CacheFlushing, ClientKilling, Drilling, RedisProbing, Source
from console.config import RedisTarget
from console.drill import Detail
from console.readonly import redis_is_read_only
from console.sources.base import Backoff, ProbeError, Snapshot, State, describe_error, unreachable, utcnow
from console.sources.redis_detail import read_for

CLIENT_NAME = "incident-console"

# What every refresh sends, pipelined; their count is taken out of ops_per_sec.
REFRESH_COMMANDS = (("INFO",), ("SLOWLOG", "LEN"))
OWN_COMMANDS = len(REFRESH_COMMANDS)

# Cumulative INFO counters that rates are computed from.
COUNTERS = ("total_commands_processed", "evicted_keys", "rejected_connections",
            "keyspace_hits", "keyspace_misses")


class RedisSource(Source, RedisProbing, CacheFlushing, Drilling, ClientKilling):
    kind = "redis"

    def __init__(self, target: RedisTarget, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = target.name
        self.timeout = target.timeout
        self._url = target.url
        self._password = _password(target.url)
        self.db = _database(target.url)
        self._clock = clock
        self._client: aioredis.Redis | None = None
        self._backoff = Backoff(clock=clock)
        self._last_error = "not connected yet"
        self._previous: _Reading | None = None
        # Probes and actions share the held connection with the poll, whose
        # pipelined replies must not interleave with theirs.
        self._turn = asyncio.Lock()
        self._last: Snapshot | None = None

    async def poll(self) -> Snapshot:
        if self._turn.locked():
            # A probe has the connection: the last reading stands (its age shows).
            return self._last or unreachable(self.kind, self.name, "busy running a probe; no reading yet")
        async with self._turn:
            self._last = await self._poll()
        return self._last

    async def probe_redis(self, argv: Sequence[str], timeout: float) -> Any:
        """The reply to one read command, parsed by redis-py, on the held connection."""
        reason = redis_is_read_only(list(argv))
        if reason is not None:
            raise ProbeError(f"refused: {reason}")
        return await self._command(tuple(argv), timeout)

    async def flush_db(self, db: int | None = None) -> Any:
        """FLUSHDB on one database (the URL's unless ``db`` says), and nothing wider.

        ASYNC: the keys are gone at once, the memory is freed in the
        background, so a big database does not stall Redis for everyone.
        """
        if db is None or db == self.db:
            return (await self._commands([("FLUSHDB", "ASYNC")], self.timeout))[0]
        # Another database of the same server: over there and straight back,
        # so the poll's connection stays on the URL's database.
        replies = await self._commands([("SELECT", str(db)), ("FLUSHDB", "ASYNC"), ("SELECT", str(self.db))],
                                       self.timeout)
        return replies[1]

    async def drill(self, row: str) -> Detail:
        """A detail view's read: NoSuchRow for a row that is gone, ProbeError
        for a Redis that does not answer within the source's timeout."""
        read = read_for(self.name, row)
        return read.build(await self._commands(list(read.commands), self.timeout))

    async def kill_client(self, client_id: int) -> Any:
        """``CLIENT KILL ID <id>`` and nothing else: the filter form with no
        other filter, so one client is all it can hit. An ID, never an
        address: every unix-socket client has the same ``/path:0``, and
        ``CLIENT KILL ADDR`` would disconnect them all. SKIPME (the default)
        spares the console's own connection."""
        if isinstance(client_id, bool) or not isinstance(client_id, int) or client_id < 0:
            raise ProbeError(f"not a Redis client id: {str(client_id)[:40]!r}")
        killed = await self._command(("CLIENT", "KILL", "ID", str(client_id)), self.timeout)
        if killed == 0:
            raise ProbeError(f"no client with id {client_id}: it had already disconnected")
        return killed

    async def _command(self, argv: tuple[str, ...], timeout: float) -> Any:
        return (await self._commands([argv], timeout))[0]

    async def _commands(self, argvs: list[tuple[str, ...]], timeout: float) -> list[Any]:
        async with self._turn:
            try:
                async with asyncio.timeout(timeout):
                    client = await self._connected()
                    return [await client.execute_command(*argv) for argv in argvs]
            except TimeoutError:
                # A late reply would arrive in the next poll's place.
                self.forget()
                raise ProbeError(f"no answer after {timeout:g}s; connection dropped") from None
            except ResponseError as exc:  # the server refused; the connection is fine …
                if len(argvs) > 1:
                    self._drop()  # … but may be left on another database
                raise ProbeError(self._scrub(describe_error(exc))) from None
            except (RedisError, OSError, ValueError) as exc:
                self._drop()
                raise ProbeError(self._scrub(describe_error(exc))) from None

    async def _poll(self) -> Snapshot:
        if self._client is None and not self._backoff.ready():
            return self._backing_off()
        try:
            exchange = await self._refresh()
        except (RedisError, OSError, ValueError) as exc:
            return self._lost(exc)
        self._backoff.succeeded()
        return self._snapshot(exchange)

    async def close(self) -> None:
        self._drop()
        await asyncio.sleep(0)  # let the transport's close callback run before the loop may stop

    def forget(self) -> None:
        """Drop the connection without waiting: the server may be SIGSTOPped.

        Called after a poll overran its deadline, which counts as a loss.
        """
        self._drop()
        self._last_error = "timed out"
        self._backoff.failed()

    # ---- connection ------------------------------------------------------
    async def _refresh(self) -> "_Exchange":
        reused = self._client is not None
        try:
            return await self._exchange(await self._connected())
        except RedisConnectionError:
            if not reused:
                raise
            # The held socket died while idle (restart, idle timeout, proxy):
            # one fresh connection before reporting an outage that isn't one.
            self._drop()
            return await self._exchange(await self._connected())

    async def _connected(self) -> aioredis.Redis:
        client = self._client
        if client is not None and client.connection is not None and client.connection.is_connected:
            return client
        self._drop()
        client = aioredis.Redis.from_url(
            self._url,
            single_connection_client=True,
            max_connections=1,
            socket_connect_timeout=self.timeout,
            socket_timeout=self.timeout,
            client_name=CLIENT_NAME,
            health_check_interval=0,  # no PING per refresh
            retry=Retry(NoBackoff(), 0),  # Backoff decides when to try again, not redis-py
        )
        try:
            await client.initialize()
        except BaseException:
            _close_now(client)
            raise
        self._client = client
        self._previous = None  # rates span one connection: ours reconnecting is not Redis's traffic
        return client

    async def _exchange(self, client: aioredis.Redis) -> "_Exchange":
        """INFO and SLOWLOG LEN in one round trip; replies parsed by redis-py."""
        conn = client.connection
        started = self._clock()
        await conn.send_packed_command(conn.pack_commands(REFRESH_COMMANDS))
        # Read both replies before raising so the connection stays in step.
        info, slowlog = [await _reply(client, conn, " ".join(cmd)) for cmd in REFRESH_COMMANDS]
        finished = self._clock()
        if isinstance(info, ResponseError):
            raise info
        return _Exchange(info, slowlog, started, finished)

    def _drop(self) -> None:
        client, self._client = self._client, None
        self._previous = None
        if client is not None:
            _close_now(client)

    # ---- snapshots -------------------------------------------------------
    def _lost(self, exc: BaseException) -> Snapshot:
        self._drop()
        self._backoff.failed()
        self._last_error = self._scrub(describe_error(exc))
        return self._backing_off()

    def _backing_off(self) -> Snapshot:
        wait = math.ceil(self._backoff.wait_left())
        return unreachable(self.kind, self.name, f"{self._last_error}; retrying in {wait}s")

    def _snapshot(self, exchange: "_Exchange") -> Snapshot:
        info, slowlog = exchange.info, exchange.slowlog
        reading = _Reading.of(info, exchange.finished)
        before, self._previous = self._previous, reading
        baseline = before if before is not None and reading.follows(before) else None
        ping_ms = (exchange.finished - exchange.started) * 1000.0
        metrics = {
            **_clients(info),
            **_memory(info),
            **_rates(reading, baseline),
            "hit_rate": _hit_rate(reading, baseline),
            **_replication(info),
            "slowlog_len": slowlog if isinstance(slowlog, int) else None,
            "ping_ms": round(ping_ms, 3),
            "redis_version": str(info.get("redis_version", "")),
            "uptime_in_seconds": _int(info, "uptime_in_seconds"),
        }
        error = None
        if not isinstance(slowlog, int):
            # An ACL may forbid SLOWLOG to a monitoring user: say so, keep the rest.
            error = self._scrub(f"SLOWLOG LEN failed: {describe_error(slowlog)}")
        return Snapshot(kind=self.kind, name=self.name, state=State.OK, taken_at=utcnow(),
                        error=error, latency_ms=ping_ms, metrics=metrics, details=_details(info))

    def _scrub(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text


async def _reply(client: aioredis.Redis, conn: Any, command: str) -> Any:
    try:
        return await client.parse_response(conn, command)
    except ResponseError as exc:
        return exc


def _close_now(client: aioredis.Redis) -> None:
    conn, client.connection = client.connection, None
    if conn is not None:
        # Closes the socket without awaiting the peer; redis-py's own
        # finaliser uses the same call. disconnect() would await.
        conn._close()


def _database(url: str) -> int:
    from redis.asyncio.connection import parse_url

    try:
        return int(parse_url(url).get("db") or 0)
    except (ValueError, TypeError):
        return 0  # the connect attempt will report the bad URL


def _password(url: str) -> str | None:
    try:
        secret = urlsplit(url).password
    except ValueError:
        return None
    return unquote(secret) if secret else None


@dataclass(frozen=True)
class _Exchange:
    info: dict
    slowlog: Any  # an int, or the ResponseError SLOWLOG LEN got
    started: float
    finished: float


# ---- metrics from INFO (pure functions) ------------------------------------
@dataclass(frozen=True)
class _Reading:
    """The cumulative counters of one poll, with when and from which server run."""

    at: float
    run_id: str
    uptime: int
    counters: Mapping[str, int]

    @classmethod
    def of(cls, info: Mapping[str, Any], at: float) -> "_Reading":
        return cls(at=at, run_id=str(info.get("run_id", "")), uptime=_int(info, "uptime_in_seconds") or 0,
                   counters={k: _int(info, k) or 0 for k in COUNTERS})

    def follows(self, before: "_Reading") -> bool:
        """Deltas from ``before`` are meaningful: same server run, counters not reset."""
        return (self.run_id == before.run_id and self.uptime >= before.uptime and self.at > before.at
                and all(self.counters[k] >= before.counters[k] for k in COUNTERS))

    def delta(self, before: "_Reading", key: str) -> int:
        return self.counters[key] - before.counters[key]


def _rates(now: _Reading, before: _Reading | None) -> dict[str, float | None]:
    if before is None:
        return {"evictions_per_sec": None, "ops_per_sec": None, "rejected_connections_per_sec": None}
    seconds = now.at - before.at
    # INFO does not count itself, so the interval holds exactly the
    # previous poll's commands: take them out.
    others = max(0, now.delta(before, "total_commands_processed") - OWN_COMMANDS)
    return {
        "evictions_per_sec": now.delta(before, "evicted_keys") / seconds,
        "ops_per_sec": others / seconds,
        "rejected_connections_per_sec": now.delta(before, "rejected_connections") / seconds,
    }


def _hit_rate(now: _Reading, before: _Reading | None) -> float | None:
    if before is not None:
        hits, misses = now.delta(before, "keyspace_hits"), now.delta(before, "keyspace_misses")
        if hits + misses:
            return hits / (hits + misses)
    # First poll, or no lookups in the interval: the lifetime rate is the best we know.
    hits, misses = now.counters["keyspace_hits"], now.counters["keyspace_misses"]
    return hits / (hits + misses) if hits + misses else None


def _clients(info: Mapping[str, Any]) -> dict[str, Any]:
    connected, limit = _int(info, "connected_clients"), _int(info, "maxclients")
    return {
        "connected_clients": connected,
        "maxclients": limit,
        "clients_ratio": connected / limit if connected is not None and limit else None,
        "blocked_clients": _int(info, "blocked_clients"),
        "rejected_connections": _int(info, "rejected_connections"),
    }


def _memory(info: Mapping[str, Any]) -> dict[str, Any]:
    used, limit = _int(info, "used_memory"), _int(info, "maxmemory")
    return {
        "used_memory": used,
        "maxmemory": limit,
        "memory_ratio": used / limit if used is not None and limit else None,  # 0 means no limit
        "evicted_keys": _int(info, "evicted_keys"),
        "keyspace_hits": _int(info, "keyspace_hits"),
        "keyspace_misses": _int(info, "keyspace_misses"),
    }


def _replication(info: Mapping[str, Any]) -> dict[str, Any]:
    role = str(info.get("role", ""))
    return {"role": role, "connected_slaves": _int(info, "connected_slaves") or 0,
            "replication_lag_s": _replica_lag(info) if role == "slave" else _master_lag(info)}


def _replica_lag(info: Mapping[str, Any]) -> int | None:
    if info.get("master_link_status") == "up":
        return max(0, _int(info, "master_last_io_seconds_ago") or 0)
    down = _int(info, "master_link_down_since_seconds")
    if down is None or down < 0:
        # Never linked since this replica started: it has lagged all its life.
        return _int(info, "uptime_in_seconds")
    return down


def _master_lag(info: Mapping[str, Any]) -> int:
    lags = [r.get("lag") for r in _replicas(info)]
    return max((lag for lag in lags if isinstance(lag, int)), default=0)


def _replicas(info: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    count = _int(info, "connected_slaves") or 0
    found = (info.get(f"slave{i}") for i in range(count))
    return [r for r in found if isinstance(r, Mapping)]


def _details(info: Mapping[str, Any]) -> dict[str, Any]:
    master = None
    if info.get("role") == "slave":
        master = {"host": str(info.get("master_host", "")), "port": _int(info, "master_port"),
                  "link_status": str(info.get("master_link_status", "")),
                  "last_io_seconds_ago": _int(info, "master_last_io_seconds_ago"),
                  "sync_in_progress": bool(info.get("master_sync_in_progress"))}
    return {
        "maxmemory_policy": str(info.get("maxmemory_policy", "")),
        "master": master,
        "replicas": tuple({"ip": str(r.get("ip", "")), "port": r.get("port"), "state": str(r.get("state", "")),
                           "offset": r.get("offset"), "lag": r.get("lag")} for r in _replicas(info)),
        "keyspace": {k: {"keys": v.get("keys"), "expires": v.get("expires")}
                     for k, v in info.items() if k.startswith("db") and isinstance(v, Mapping)},
    }


def _int(info: Mapping[str, Any], key: str) -> int | None:
    value = info.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
