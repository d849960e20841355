"""A small HTTP service for the demo: ``/health`` and Prometheus ``/metrics``.

The service runs in background threads of the calling process. A traffic
generator feeds simulated requests into the metrics, so the error ratio, the
request rate and the p95 latency move the way they would behind a real load
balancer; :class:`ServiceFaults` bends them on demand.

A service given a :class:`Dependencies` really calls them for each simulated
request and for ``/health``: a PostgreSQL connection from a small
:class:`ConnectionPool`, a Redis read. So a fault in a server shows in the
service as it would in production (the chain the seed runbooks describe): an
exhausted PostgreSQL makes requests wait for a connection and fail with 503, a
hung Redis makes every request wait for the cache's timeout, and with a fixed
number of workers the queue grows until the load balancer gives up (504).
Every wait has a timeout and the workers are a fixed few, so a hung server
never piles up threads or connections.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import redis
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from console.sources.base import describe_error

# Fine steps around 1-3 s so that histogram_quantile lands near the real p95
# when the "slow" fault pushes the tail past the 1 s threshold.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
HANDLERS = (("GET", "/api/products"), ("GET", "/api/cart"), ("POST", "/api/cart"), ("POST", "/api/checkout"))
HANG_SECONDS = 30.0
SLOW_SHARE = 0.25  # the share of requests the latency fault slows: a tail, not the median
GATEWAY_TIMEOUT_S = 2.0  # the load balancer answers 504 for a request queued or served longer
BACKLOG = 64             # requests queued for a worker beyond this are refused with 503 at once
POOL_WAIT_S = 0.5        # a request waits this long for a PostgreSQL connection, then answers 503
OPEN_BACKOFF_S = 1.0     # after the server refused a connection, the pool tries again this much later
STATEMENT_TIMEOUT_MS = 1000
CACHE_TIMEOUT_S = 0.5    # the application's Redis timeout: a hung cache costs each request this much
PRODUCTS = 120           # product:0 .. product:119, cached in Redis
ORDERS = 1000


@dataclass
class ServiceFaults:
    """What is wrong with the service right now; plain attributes, set from any thread."""

    error_rate: float = 0.0   # fraction of simulated requests answered with a 5xx
    latency: float = 0.0      # seconds added to the slow tail and to /health
    health_down: bool = False  # /health answers 503
    hang: bool = False         # /health does not answer (for up to HANG_SECONDS)


class Unavailable(Exception):
    """A dependency failed; the service answers ``status`` with ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# What the service does with its servers for one request (a handler, or
# "/health"): returns when done, raises Unavailable when a dependency failed.
Dependencies = Callable[[str], None]


class _Share:
    """Spreads a fraction evenly over events (error diffusion), so 20 % means
    one in five, not "about one in five on a lucky second"."""

    def __init__(self) -> None:
        self.owed = 0.0

    def hit(self, fraction: float) -> bool:
        if fraction <= 0:
            self.owed = 0.0
            return False
        self.owed += fraction
        if self.owed >= 1.0:
            self.owed -= 1.0
            return True
        return False


class DemoService:
    """One HTTP service on a free loopback port, with its own metrics registry."""

    def __init__(self, name: str, rate: float = 20.0, median_s: float = 0.06,
                 base_error_rate: float = 0.0, dependencies: Dependencies | None = None,
                 workers: int = 4) -> None:
        self.name = name
        self.rate = rate
        self.median_s = median_s
        self.base_error_rate = base_error_rate
        self.dependencies = dependencies
        self.workers = workers
        self.faults = ServiceFaults()
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("http_requests", "HTTP requests served.",
                                ("job", "handler", "method", "status"), registry=self.registry)
        self.duration = Histogram("http_request_duration_seconds", "Time spent serving HTTP requests.",
                                  ("job", "handler", "method"), buckets=BUCKETS, registry=self.registry)
        self._errors = _Share()
        self._slow = _Share()
        self._shares = threading.Lock()  # the workers share the error-diffusion state
        self._backlog: queue.Queue[float] = queue.Queue(BACKLOG)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []

    # ---- lifecycle -------------------------------------------------------
    def start(self) -> "DemoService":
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.service = self
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                             name=f"demo-{self.name}-http", daemon=True),
            threading.Thread(target=self._generate_traffic, name=f"demo-{self.name}-traffic", daemon=True),
            *(threading.Thread(target=self._work, name=f"demo-{self.name}-worker-{i}", daemon=True)
              for i in range(self.workers)),
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # also wakes hung /health handlers
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        for t in self._threads:
            t.join(5)
        self._threads = []

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        return self.url + "/health"

    @property
    def metrics_url(self) -> str:
        return self.url + "/metrics"

    # ---- simulated traffic ----------------------------------------------
    def _generate_traffic(self) -> None:
        owed, last = 0.0, time.monotonic()
        while not self._stopping.wait(0.25):
            # Paced by the clock, not by the tick, so a busy machine does not
            # make the request rate sag.
            now = time.monotonic()
            owed, last = owed + self.rate * (now - last), now
            count = int(owed)
            owed -= count
            for _ in range(count):
                self._arrive()

    def _arrive(self) -> None:
        try:
            self._backlog.put_nowait(time.monotonic())
        except queue.Full:  # every worker busy and the queue full: refused at once
            method, handler = random.choice(HANDLERS)
            self.record(handler, method, "503", 0.001)

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                arrived = self._backlog.get(timeout=0.2)
            except queue.Empty:
                continue
            self._simulate_request(time.monotonic() - arrived)

    def _simulate_request(self, queued_s: float = 0.0) -> None:
        method, handler = random.choice(HANDLERS)
        if queued_s >= GATEWAY_TIMEOUT_S:  # the client is gone: not worth serving
            self.record(handler, method, "504", queued_s)
            return
        started = time.monotonic()
        failed = self._call_dependencies(handler)
        waited = queued_s + time.monotonic() - started  # real time: queue, pool, cache, query
        status = "200" if method == "GET" else random.choice(("200", "200", "201"))
        with self._shares:
            if failed is not None:
                status = failed
            elif self._errors.hit(max(self.faults.error_rate, self.base_error_rate)):
                status = random.choice(("500", "502", "503"))
            elif random.random() < 0.01:
                status = "404"
            slow = self._slow.hit(SLOW_SHARE if self.faults.latency > 0 else 0.0)
        if waited >= GATEWAY_TIMEOUT_S:
            self.record(handler, method, "504", waited)
            return
        seconds = waited + random.lognormvariate(math.log(self.median_s), 0.45)
        if slow:
            seconds += self.faults.latency * random.uniform(0.9, 1.1)
        self.record(handler, method, status, seconds)

    def _call_dependencies(self, handler: str) -> str | None:
        """None when the servers answered, else the status to answer with."""
        if self.dependencies is None:
            return None
        try:
            self.dependencies(handler)
        except Unavailable as exc:
            return str(exc.status)
        return None

    def record(self, handler: str, method: str, status: str, seconds: float) -> None:
        self.requests.labels(self.name, handler, method, status).inc()
        self.duration.labels(self.name, handler, method).observe(seconds)

    # ---- real requests ---------------------------------------------------
    def health(self) -> tuple[int, dict]:
        """Answer /health the way the faults say; may block (latency, hang)."""
        faults = self.faults
        if faults.hang:
            deadline = time.monotonic() + HANG_SECONDS
            # Polls so that clearing the fault or stopping the service lets go.
            while self.faults.hang and time.monotonic() < deadline:
                if self._stopping.wait(0.1):
                    break
        if faults.latency > 0:
            self._stopping.wait(faults.latency)
        if faults.health_down:
            return 503, {"status": "unavailable", "service": self.name, "reason": "dependency check failed"}
        if self.dependencies is not None:
            try:
                self.dependencies("/health")
            except Unavailable as exc:
                return exc.status, {"status": "unavailable", "service": self.name, "reason": exc.reason}
        return 200, {"status": "ok", "service": self.name}

    def metrics(self) -> bytes:
        return generate_latest(self.registry)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung /health handler must not keep the process alive
    service: DemoService

    def handle_error(self, request, client_address) -> None:
        # The console owns the terminal: a client hanging up mid-answer must
        # not print a traceback over the screen.
        pass


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as the services the console watches in production speak:
    # HTTP/1.0 made every check a new connection (every answer has its length).
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        service = self.server.service
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, service.metrics(), CONTENT_TYPE_LATEST)
            return
        if path == "/health":
            started = time.perf_counter()
            code, body = service.health()
            service.record("/health", "GET", str(code), time.perf_counter() - started)
            self._send(code, json.dumps(body).encode(), "application/json")
            return
        self._send(404, json.dumps({"error": "not found", "path": path}).encode(), "application/json")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass  # no access log on the console's terminal


# ---- the servers a service depends on ------------------------------------------
class ConnectionPool:
    """A service's PostgreSQL connections: ``keep`` of them opened up front and
    reused. When none is idle a request opens one (closed again when ``keep``
    are already idle). When the server refuses, one request a second tries
    again and the others wait up to POOL_WAIT_S for a connection to come back,
    then give up, as HikariCP or psycopg_pool do: a full server costs it a
    few refused connections a second, not one per request."""

    def __init__(self, dsn: str, keep: int, wait_s: float = POOL_WAIT_S) -> None:
        self.dsn = dsn
        self.keep = keep
        self.wait_s = wait_s
        self._idle: list[psycopg.Connection] = []
        self._leaked: list[psycopg.Connection] = []
        self._leaking = False
        self._closed = False
        self._retry_at = 0.0
        self._refusal = ""
        self._changed = threading.Condition()

    def open(self) -> "ConnectionPool":
        self._fill()
        return self

    def close(self) -> None:
        with self._changed:
            self._closed = True
            dropped, self._idle, self._leaked = self._idle + self._leaked, [], []
            self._changed.notify_all()
        _close_quietly(dropped)

    @contextlib.contextmanager
    def connection(self):
        conn = self._take()
        try:
            yield conn
        finally:
            self._give(conn)

    # The exhaust-postgres fault is a leak in the application: every
    # connection the pool has or can open is held and never given back.
    def leak(self, limit: int) -> int:
        with self._changed:
            self._leaking = True
            self._leaked += self._idle
            self._idle = []
        try:
            for _ in range(limit):
                conn = self._connect()
                with self._changed:
                    self._leaked.append(conn)
        except psycopg.OperationalError as exc:
            if "too many clients" not in str(exc) and "reserved" not in str(exc):
                self.plug()
                raise
            self._refused(exc)
        with self._changed:
            return len(self._leaked)

    def plug(self) -> None:
        """The application restarted: its leaked connections close and the pool opens afresh."""
        with self._changed:
            self._leaking = False
            leaked, self._leaked = self._leaked, []
            self._retry_at = 0.0
        _close_quietly(leaked)
        with contextlib.suppress(psycopg.Error):
            self._fill()

    def _fill(self) -> None:
        while True:
            with self._changed:
                if self._closed or len(self._idle) >= self.keep:
                    return
            conn = self._connect()
            with self._changed:
                self._idle.append(conn)
                self._changed.notify()

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=2,
                               options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}")

    def _take(self) -> psycopg.Connection:
        deadline = time.monotonic() + self.wait_s
        with self._changed:
            while not self._idle:
                now = time.monotonic()
                if self._closed:
                    raise Unavailable(503, "the service is stopping")
                if now >= self._retry_at:
                    break  # open one, outside the lock
                if now >= deadline:
                    raise Unavailable(503, f"no PostgreSQL connection within {self.wait_s:g}s: {self._refusal}")
                self._changed.wait(min(deadline, self._retry_at) - now)
            else:
                return self._idle.pop()
        try:
            return self._connect()
        except psycopg.OperationalError as exc:
            self._refused(exc)
            raise Unavailable(503, f"PostgreSQL refused a connection: {self._refusal}") from None

    def _refused(self, exc: BaseException) -> None:
        with self._changed:
            self._retry_at = time.monotonic() + OPEN_BACKOFF_S
            self._refusal = describe_error(exc)

    def _give(self, conn: psycopg.Connection) -> None:
        with self._changed:
            if self._leaking and not self._closed:
                self._leaked.append(conn)
                return
            if not (conn.closed or conn.broken or self._closed or len(self._idle) >= self.keep):
                self._idle.append(conn)
                self._changed.notify()
                return
        _close_quietly([conn])


def _close_quietly(connections: list[psycopg.Connection]) -> None:
    for conn in connections:
        with contextlib.suppress(Exception):
            conn.close()


class StoreReads:
    """What one request of a demo service does with its servers: a product
    read through the cache, if it has one (cache-aside: a miss, or a cache
    that does not answer within its timeout, falls through to the database,
    later), then an order read from PostgreSQL. ``/health`` asks both, and
    fails only for the database: a store without its cache is slow, not down."""

    def __init__(self, pool: ConnectionPool, cache: redis.Redis | None = None) -> None:
        self.pool = pool
        self.cache = cache

    def __call__(self, handler: str) -> None:
        if handler == "/health":
            if self.cache is not None:
                with contextlib.suppress(redis.RedisError):
                    self.cache.ping()
            self._query("SELECT 1", ())
            return
        if self.cache is not None:
            self._read_product()
        self._query("SELECT status FROM orders WHERE id = %s", (random.randint(1, ORDERS),))

    def _read_product(self) -> None:
        assert self.cache is not None
        # One read in ten asks for a session that was never cached: the misses
        # a real cache has.
        if random.random() < 0.1:
            key = f"session:{random.getrandbits(32):08x}"
        else:
            key = f"product:{random.randrange(PRODUCTS)}"
        with contextlib.suppress(redis.RedisError):
            if self.cache.get(key) is None and key.startswith("product:"):
                self.cache.set(key, product(int(key.split(":")[1])), ex=random.randint(300, 900))

    def _query(self, sql: str, params: tuple) -> None:
        try:
            with self.pool.connection() as conn:
                conn.execute(sql, params).fetchall()
        except psycopg.errors.QueryCanceled:
            raise Unavailable(503, f"PostgreSQL: statement timeout ({STATEMENT_TIMEOUT_MS} ms)") from None
        except psycopg.Error as exc:
            raise Unavailable(500, f"PostgreSQL: {describe_error(exc)}") from None


def product(i: int) -> str:
    return f'{{"id": {i}, "name": "product {i}", "price_cents": {500 + i * 37}}}'
