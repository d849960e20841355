"""The demo sandbox: real PostgreSQL and Redis, two HTTP services that use
them, light background load and faults that can be switched on and off.

checkout-api reads Redis and PostgreSQL (its own pool) for every request,
payments-api PostgreSQL (its own pool): a fault in a server shows in the
services' errors and latency, as in the seed runbooks.

``DemoSandbox().start()`` brings it all up in a few seconds and writes a config
file the console can load (:attr:`DemoSandbox.config_path`). ``stop()`` takes
down everything that was started, also after a start that failed half way,
and runs at interpreter exit if the caller forgot.

Faults are in :attr:`DemoSandbox.faults`, ``name -> (description, toggle)``.
A toggle switches its fault on or off and returns one line saying what it
did; it blocks for well under a second, so call it from a thread worker rather
than the event loop. It does not raise when a server refuses (say, no
connection slot left): the line says so.
"""

from __future__ import annotations

import atexit
import contextlib
import random
import shutil
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Callable

import psycopg
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from console import paths
from console.demo.kubefake import KubeFake
from console.demo.service import CACHE_TIMEOUT_S, PRODUCTS, ConnectionPool, DemoService, StoreReads, product
from console.demo.servers import PostgresServer, RedisServer
from console.sources.base import describe_error

K8S_RECORDED = Path(__file__).resolve().parent / "k8s"
APP_ROLE = "checkout"  # the application's own role, not a superuser
SHIPPED_PLAYBOOKS = paths.shipped_playbooks()
MAXMEMORY = 64 * 1024 * 1024
FILLER_DB = 1           # eviction filler lives apart, so clearing it is one FLUSHDB
CHECKOUT_POOL = 6      # connections, and workers: a request never waits for a connection when all is well
PAYMENTS_POOL = 2
OPEN_TX_RECYCLE_S = 60  # short of the 300 s warning: the baseline should look healthy

Undo = Callable[[], None]


class DemoSandbox:
    """Everything ``incident-console demo`` runs against, started and stopped as one."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.postgres: PostgresServer | None = None
        self.redis: RedisServer | None = None
        self.kube: KubeFake | None = None
        self.checkout = DemoService("checkout-api", rate=20.0, median_s=0.06, workers=CHECKOUT_POOL)
        self.payments = DemoService("payments-api", rate=8.0, median_s=0.12, base_error_rate=0.002,
                                    workers=PAYMENTS_POOL)
        self._services_started: list[DemoService] = []
        self._pools: list[ConnectionPool] = []
        self._checkout_db: ConnectionPool | None = None
        self._cache: redis.Redis | None = None
        self._load: list[_PostgresSessions] = []
        self._active: dict[str, Undo] = {}
        self._lock = threading.RLock()
        self.faults: dict[str, tuple[str, Callable[[], str]]] = {
            name: (description, partial(self.toggle, name))
            for name, (description, _) in self._fault_table().items()
        }

    # ---- lifecycle -------------------------------------------------------
    def start(self) -> "DemoSandbox":
        if self.root is not None:
            raise RuntimeError("the demo sandbox is already running")
        atexit.register(self.stop)
        try:
            self.root = Path(tempfile.mkdtemp(prefix="ic-demo-"))
            self.postgres = PostgresServer(max_connections=40)
            self.postgres.start()
            _create_app_database(self.postgres)
            self.redis = RedisServer(maxmemory="64mb")
            self.redis.start()
            self._connect_services()
            for service in (self.checkout, self.payments):
                service.start()
                self._services_started.append(service)
            # No API server runs here: the demo's cluster is recorded responses,
            # served with their timestamps moved to now.
            self.kube = KubeFake(K8S_RECORDED, live=True).start()
            self.kube.write_kubeconfig(self.root / "kubeconfig", context="demo", namespace="app")
            self._start_load()
            self._write_config()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything started; safe to call twice or after a failed start."""
        with self._lock:
            for server in (self.redis, self.postgres):
                # A paused server would make every other undo wait for a timeout.
                if server is not None:
                    with contextlib.suppress(Exception):
                        server.resume()
            for name in reversed(list(self._active)):
                with contextlib.suppress(Exception):
                    self._active.pop(name)()
            for load in reversed(self._load):
                with contextlib.suppress(Exception):
                    load.stop()
            self._load = []
            for service in self._services_started:
                with contextlib.suppress(Exception):
                    service.stop()
            self._services_started = []
            for pool in self._pools:  # after the services: their workers are done with them
                pool.close()
            self._pools = []
            if self._cache is not None:
                with contextlib.suppress(Exception):
                    self._cache.close()
                self._cache = None
            if self.kube is not None:
                with contextlib.suppress(Exception):
                    self.kube.stop()
                self.kube = None
            for server in (self.redis, self.postgres):
                if server is not None:
                    with contextlib.suppress(Exception):
                        server.cleanup()
            self.redis = self.postgres = None
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None
        atexit.unregister(self.stop)

    def __enter__(self) -> "DemoSandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def config_path(self) -> Path:
        if self.root is None:
            raise RuntimeError("the demo sandbox is not running")
        return self.root / "config.yaml"

    def app_dsn(self, application_name: str) -> str:
        """The application's own role: not a superuser, so when it exhausts the
        server the reserved slots still let the console's monitor in."""
        assert self.postgres is not None
        return self.postgres.dsn("app", user=APP_ROLE, application_name=application_name)

    def monitor_dsn(self) -> str:
        assert self.postgres is not None
        return self.postgres.dsn("app", application_name="incident-console")

    def summary(self) -> list[str]:
        """What runs where, for printing before the screen takes over."""
        assert self.postgres is not None and self.redis is not None
        return [
            f"PostgreSQL   {self.postgres.dsn('app')}  (max_connections {self.postgres.max_connections})",
            f"Redis        {self.redis.url}  (maxmemory 64mb)",
            *(f"{s.name:<12} {s.url}  (/health, /metrics; each request reads {uses})"
              for s, uses in ((self.checkout, "Redis and PostgreSQL"), (self.payments, "PostgreSQL"))),
            f"config       {self.config_path}",
        ]

    def _connect_services(self) -> None:
        """Each service's own PostgreSQL pool, and checkout-api's cache (warm)."""
        assert self.redis is not None
        self._checkout_db = checkout_db = self._pool("checkout-api", CHECKOUT_POOL)
        payments_db = self._pool("payments-api", PAYMENTS_POOL)
        self._cache = _redis_client(self.redis.port, timeout=CACHE_TIMEOUT_S)
        pipe = self._cache.pipeline(transaction=False)
        for i in range(PRODUCTS):
            pipe.set(f"product:{i}", product(i), ex=random.randint(300, 900))
        pipe.execute()
        self.checkout.dependencies = StoreReads(checkout_db, self._cache)
        self.payments.dependencies = StoreReads(payments_db)

    def _pool(self, service: str, keep: int) -> ConnectionPool:
        pool = ConnectionPool(self.app_dsn(service), keep)
        self._pools.append(pool)  # before opening: stop() closes what a failed open left
        return pool.open()

    def _start_load(self) -> None:
        sessions = _PostgresSessions(self.app_dsn)
        self._load.append(sessions)
        sessions.start()

    def _write_config(self) -> None:
        assert self.redis is not None
        doc = {
            "environment": {"name": "demo-sandbox", "banner": "blue", "read_only": False},
            "refresh": 2,
            "postgres": [{"name": "app-db", "dsn": self.monitor_dsn()}],
            "redis": [{"name": "cache", "url": self.redis.url}],
            "services": [{"name": s.name, "url": s.health_url, "timeout": 2, "metrics": s.metrics_url}
                         for s in (self.checkout, self.payments)],
        }
        if self.kube is not None and self.root is not None:
            doc["kubernetes"] = {"kubeconfig": str(self.root / "kubeconfig"), "context": "demo",
                                 "namespaces": ["app"], "timeout": 3}
        if SHIPPED_PLAYBOOKS.is_dir():
            doc["playbooks"] = [str(SHIPPED_PLAYBOOKS)]
        self.config_path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        self.config_path.chmod(0o600)

    # ---- faults ----------------------------------------------------------
    def active_faults(self) -> set[str]:
        with self._lock:
            return set(self._active)

    def toggle(self, name: str) -> str:
        """Switch fault ``name`` on or off; one line saying what happened."""
        with self._lock:
            if self.root is None:
                return f"{name}: the demo sandbox is not running"
            undo = self._active.pop(name, None)
            if undo is not None:
                try:
                    undo()
                except Exception as exc:
                    return f"{name} cleared, with trouble: {describe_error(exc)}"
                return f"{name} cleared"
            _, inject = self._fault_table()[name]
            try:
                detail, undo = inject()
            except Exception as exc:
                return f"{name} could not be injected: {describe_error(exc)}"
            self._active[name] = undo
            return f"{name} injected: {detail}"

    def _fault_table(self) -> dict[str, tuple[str, Callable[[], tuple[str, Undo]]]]:
        return {
            "exhaust-postgres": ("PostgreSQL: checkout-api leaks connections until max_connections "
                                 "is reached", self._exhaust_postgres),
            "block-postgres": ("PostgreSQL: a session holds ACCESS EXCLUSIVE on orders, another waits",
                               self._block_postgres),
            "k8s-forbidden": ("Kubernetes: the API server answers 403 Forbidden", self._k8s_forbidden),
            "hang-redis": ("Redis: SIGSTOP the server (SIGCONT when toggled off)", self._hang_redis),
            "redis-evictions": ("Redis: keep writing past maxmemory so keys are evicted",
                                self._redis_evictions),
            "api-errors": ("checkout-api: 20 % of requests answer 5xx",
                           partial(self._api_fault, "error_rate", 0.2, "20 % of requests answer 5xx")),
            "api-slow": ("checkout-api: 1.5 s added to the slow tail and to /health",
                         partial(self._api_fault, "latency", 1.5, "1.5 s added to p95 and /health")),
            "api-down": ("checkout-api: /health answers 503",
                         partial(self._api_fault, "health_down", True, "/health answers 503")),
            "api-hang": ("checkout-api: /health never answers (30 s)",
                         partial(self._api_fault, "hang", True, "/health hangs for 30 s")),
        }

    def _k8s_forbidden(self) -> tuple[str, Undo]:
        assert self.kube is not None
        self.kube.set_fault("403")
        return "the API server answers 403", partial(self.kube.set_fault, None)

    def _exhaust_postgres(self) -> tuple[str, Undo]:
        assert self.postgres is not None
        # checkout-api's pool leaks: it connects until the server says no and
        # only the superuser-reserved slots stay free; its requests then wait
        # for a connection that never comes back (503, slow, then 504).
        pool = self._checkout_db
        assert pool is not None
        held = pool.leak(self.postgres.max_connections + 5)
        return f"checkout-api holds {held} connections and gives none back", pool.plug

    def _block_postgres(self) -> tuple[str, Undo]:
        holder = psycopg.connect(self.app_dsn("schema-migration"))
        try:
            holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
            waiter = _BlockedQuery(self.app_dsn("checkout-api"))
            waiter.start()
        except Exception:
            holder.close()
            raise

        def release() -> None:
            try:
                holder.rollback()
            finally:
                holder.close()
                waiter.stop()
        return "schema-migration holds ACCESS EXCLUSIVE on orders; checkout-api waits", release

    def _hang_redis(self) -> tuple[str, Undo]:
        assert self.redis is not None
        self.redis.pause()
        return "redis-server stopped with SIGSTOP", self.redis.resume

    def _redis_evictions(self) -> tuple[str, Undo]:
        assert self.redis is not None
        filler = _RedisFiller(self.redis.port)
        filler.start()
        return "writing past maxmemory 64mb, about 150 keys/s", filler.stop

    def _api_fault(self, attribute: str, value: object, detail: str) -> tuple[str, Undo]:
        faults = self.checkout.faults
        before = getattr(faults, attribute)
        setattr(faults, attribute, value)
        return detail, partial(setattr, faults, attribute, before)


# ---- PostgreSQL ------------------------------------------------------------
def _create_app_database(server: PostgresServer) -> None:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
        conn.execute(f"CREATE DATABASE app OWNER {APP_ROLE}")
    with psycopg.connect(server.dsn("app", user=APP_ROLE), autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL);
            INSERT INTO customers
                SELECT i, 'customer' || i || '@example.com', now() - i * interval '1 hour'
                FROM generate_series(1, 200) AS i;
            CREATE TABLE orders (
                id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers,
                total_cents int NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL);
            INSERT INTO orders (customer_id, total_cents, status, created_at)
                SELECT 1 + i % 200, 500 + (i * 37) % 20000,
                       (ARRAY['paid', 'paid', 'paid', 'shipped', 'refunded'])[1 + i % 5],
                       now() - i * interval '5 minutes'
                FROM generate_series(1, 1000) AS i;
            ANALYZE;
        """)


def _close_all(connections: list[psycopg.Connection]) -> None:
    for conn in connections:
        with contextlib.suppress(Exception):
            conn.close()
    connections.clear()


class _PostgresSessions:
    """Besides the services' pools, what a PostgreSQL pane usually shows: one
    transaction left open by the application, one slow report running."""

    def __init__(self, dsn: Callable[[str], str]) -> None:
        self.dsn = dsn
        self.connections: list[psycopg.Connection] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run_report, name="demo-postgres-load", daemon=True)

    def start(self) -> None:
        self.open_tx = self._connect("checkout-api", autocommit=False)
        self._open_transaction()
        self.report = self._connect("reporting", autocommit=True)
        self.thread.start()

    def _connect(self, application_name: str, autocommit: bool) -> psycopg.Connection:
        conn = psycopg.connect(self.dsn(application_name), autocommit=autocommit)
        self.connections.append(conn)
        return conn

    def _open_transaction(self) -> None:
        # Reads customers, not orders: a lock on orders would make the
        # block-postgres fault queue behind this session instead of leading.
        self.open_tx.execute("SELECT email FROM customers WHERE id = %s", (random.randint(1, 200),))
        self.opened_at = time.monotonic()

    def _run_report(self) -> None:
        while not self.stopping.is_set():
            try:
                self.report.execute("/* revenue by day */ SELECT pg_sleep(1)")
                if time.monotonic() - self.opened_at > OPEN_TX_RECYCLE_S:
                    self.open_tx.commit()
                    self._open_transaction()
            except psycopg.Error:
                self.stopping.wait(1)  # the server is going away or a fault bit; keep the loop alive

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():  # cut the running pg_sleep short instead of waiting it out
            with contextlib.suppress(Exception):
                self.report.cancel_safe(timeout=1)
        _join(self.thread, 3)
        _close_all(self.connections)


class _BlockedQuery:
    """A query that waits behind a lock, in its own thread."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.thread = threading.Thread(target=self._run, name="demo-postgres-blocked", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.conn.execute("SELECT count(*) FROM orders WHERE status = 'paid'")

    def stop(self) -> None:
        self.thread.join(3)
        if self.thread.is_alive():  # the lock holder did not let go: cancel the wait
            with contextlib.suppress(Exception):
                self.conn.cancel_safe(timeout=2)
            self.thread.join(3)
        self.conn.close()


# ---- Redis -------------------------------------------------------------------
def _redis_client(port: int, db: int = 0, timeout: float = 1.0) -> redis.Redis:
    # No retries: redis-py would otherwise retry a hung server ten times over.
    return redis.Redis(host="127.0.0.1", port=port, db=db, socket_timeout=timeout,
                       socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))


class _RedisFiller:
    """Writes past maxmemory, then keeps writing so keys are evicted every second."""

    VALUE = b"x" * 65536
    STEADY = 15  # keys per 0.1 s: about 150 evictions/s once memory is full

    def __init__(self, port: int) -> None:
        self.client = _redis_client(port, db=FILLER_DB)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="demo-redis-filler", daemon=True)
        self.written = 0

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        first = MAXMEMORY // len(self.VALUE) + 200
        while first > 0 and not self.stopping.is_set():
            first -= self._write(min(first, 100))
        while not self.stopping.wait(0.1):
            self._write(self.STEADY)

    def _write(self, count: int) -> int:
        pipe = self.client.pipeline(transaction=False)
        for _ in range(count):
            pipe.set(f"filler:{self.written}", self.VALUE)
            self.written += 1
        try:
            pipe.execute()
        except redis.RedisError:
            self.stopping.wait(0.5)  # hung or refusing: try again shortly
        return count

    def stop(self) -> None:
        self.stopping.set()
        _join(self.thread, 5)
        try:
            self.client.flushdb()
        finally:
            self.client.close()


def _join(thread: threading.Thread, timeout: float) -> None:
    # A start that failed half way may leave a thread that never ran.
    if thread.ident is not None:
        thread.join(timeout)
