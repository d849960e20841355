"""The step runner against real servers: probes that cannot write, actions behind typed confirmation.

PostgreSQL and Redis are real servers started here (this file terminates
backends, fills every connection slot and flushes databases, so it does not
share the session servers). Kubernetes is the real client against
:class:`console.demo.kubefake.KubeFake`; ``kubectl rollout undo`` needs an API
server the fake does not imitate (discovery, ReplicaSet history), so a stub
``kubectl`` on PATH records the argv it was given. Commands run in real bash.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from hypothesis import given, settings, strategies as st

from console.config import KubernetesTarget, PostgresTarget, RedisTarget, ServiceTarget, parse
from console import readonly
from console.playbooks.model import Playbook, Step
from console.playbooks import shell
from console.playbooks.runner import MAX_BYTES, MAX_LINES, Refused, StepRunner, mutating_paths
from console.demo.servers import PostgresServer, RedisServer
from console.sources import postgres as pg_source
from console.sources.base import ProbeError, bounded_poll
from console.sources.http import HealthCheck
from console.sources.kubernetes import WorkloadWatch
from console.sources.postgres import PostgresSource
from console.sources.redis import RedisSource
from httpfaults import FaultServer, Reply, json_reply

BOOK = Playbook("pool-exhausted", "Connection pool exhausted", "sev1", (), (), (), "playbooks/pool.yaml", 1)
NASTY = ["; rm -rf /", "$(id)", "`id`", "it's", 'say "hi"', "a\\b", "*", "~", "two  spaces", "a'b\"c$HOME",
         "'; echo pwned; '", "\"; echo pwned; \"", "$((1+1))", "!!", "{pid}", "é ☃", ""]


# ---- servers and sources ------------------------------------------------------

@pytest.fixture(scope="module")
def pg():
    # Small, so that filling every slot is quick.
    server = PostgresServer(max_connections=8).start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def rds():
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def database(pg) -> str:
    """A database of this test's own, so counts are exact."""
    name = "rt_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
        yield name
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")




@pytest.fixture
async def primary(pg, database):
    source = PostgresSource(PostgresTarget("primary", pg.dsn(database), 3.0))
    yield source
    await source.close()


@pytest.fixture
async def cache(rds):
    source = RedisSource(RedisTarget("cache", rds.url, 2.0))
    yield source
    await source.close()


@pytest.fixture
def redis_client(rds):
    client = redis.Redis.from_url(rds.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def kube_target(tmp_path, fake) -> KubernetesTarget:
    path = fake.write_kubeconfig(tmp_path / "kubeconfig", context="test", namespace="app")
    return KubernetesTarget(context="test", namespaces=("app",), kubeconfig=str(path), timeout=1.0)


@pytest.fixture
async def workloads(kube_target):
    source = WorkloadWatch(kube_target, "app")
    yield source
    await source.close()


@pytest.fixture
def stub_kubectl(tmp_path) -> Path:
    """A kubectl that writes the argv it got, one per line, and says so."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kubectl"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/argv"\necho "rolled back"\n')
    script.chmod(0o755)
    return bin_dir


class Journal(list):
    """A recorder like Journal.append: keeps (kind, data)."""

    def __call__(self, kind: str, **data) -> None:
        self.append((kind, data))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self]


def runner_for(*sources, journal=None, config=None, **options) -> StepRunner:
    config = config or parse("refresh: 2\n")
    return StepRunner(config, {s.name: s for s in sources}, journal, **options)


def probe(kind: str, query: str, source: str | None = None, step_id: str = "look") -> Step:
    return Step(step_id, "look", "probe", source=source, probe=kind, query=query)


def action(name: str, params: dict, step_id: str = "act", **more) -> Step:
    return Step(step_id, name, "action", action=name, params=params, **more)


def command(text: str, step_id: str = "cmd") -> Step:
    return Step(step_id, "run it", "command", command=text, runnable=True)


async def backend_alive(dsn: str, pid: int) -> bool:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return (await cur.fetchone())[0] == 1


async def idle_in_transaction(connect, dsn: str) -> tuple[psycopg.AsyncConnection, int]:
    conn = await connect(dsn)
    await conn.execute("BEGIN")
    cur = await conn.execute("SELECT pg_backend_pid()")
    return conn, (await cur.fetchone())[0]


# ---- SQL probes -------------------------------------------------------------------

async def test_sql_probe_counts_sessions_by_state(pg, database, primary, sessions):
    dsn = pg.dsn(database)
    for _ in range(3):
        await sessions(dsn)
    for _ in range(2):
        await idle_in_transaction(sessions, dsn)
    journal = Journal()
    step = probe("sql", f"SELECT state, count(*) AS n FROM pg_stat_activity WHERE datname = '{database}' "
                        "AND pid <> pg_backend_pid() GROUP BY state ORDER BY state", "primary")

    result = await runner_for(primary, journal=journal).probe(BOOK, step)

    assert result.ok and result.error is None
    assert result.output.splitlines() == [
        "state                n",
        "-------------------  -",
        "idle                 3",
        "idle in transaction  2",
        "(2 rows)",
    ]
    assert journal == [("probe", {"playbook": "pool-exhausted", "step": "look", "source": "primary",
                                  "query": step.query, "ok": True, "output": result.output, "error": None,
                                  "took_ms": round(result.took_ms, 1)})]


@pytest.mark.parametrize("query", [
    "DELETE FROM victims",
    "SELECT 1; DELETE FROM victims",
    "WITH gone AS (DELETE FROM victims RETURNING *) SELECT count(*) FROM gone",
    "SELECT pg_terminate_backend(pg_backend_pid())",
])
async def test_a_writing_probe_is_refused_by_the_check(pg, database, primary, query):
    with psycopg.connect(pg.dsn(database), autocommit=True) as conn:
        conn.execute("CREATE TABLE victims AS SELECT 1 AS id")
    journal = Journal()

    result = await runner_for(primary, journal=journal).probe(BOOK, probe("sql", query))

    assert not result.ok and result.error.startswith("refused: ")
    assert journal[0][0] == "probe" and journal[0][1]["ok"] is False and journal[0][1]["error"] == result.error
    with psycopg.connect(pg.dsn(database)) as conn:
        assert conn.execute("SELECT count(*) FROM victims").fetchone() == (1,)


@pytest.mark.parametrize("query, refusal", [
    ("INSERT INTO victims VALUES (2)", "cannot execute INSERT in a read-only transaction"),
    ("WITH gone AS (DELETE FROM victims RETURNING *) SELECT count(*) FROM gone",
     "cannot execute SELECT in a read-only transaction"),  # PostgreSQL names the outer statement
    # The source parses what it runs: one statement, or nothing at all.
    ("SELECT 1; COMMIT; DELETE FROM victims", "refused: more than one SQL statement (a probe runs exactly one)"),
    # Qualified: the probe's search_path is pinned to pg_catalog.
    ("SELECT nextval('public.numbers')", "cannot execute nextval() in a read-only transaction"),
])
async def test_a_write_that_slips_past_the_check_is_refused_by_postgresql(pg, database, primary, monkeypatch,
                                                                        query, refusal):
    with psycopg.connect(pg.dsn(database), autocommit=True) as conn:
        conn.execute("CREATE TABLE victims AS SELECT 1 AS id; CREATE SEQUENCE numbers")
    # The check is switched off: only the read-only transaction stands.
    monkeypatch.setattr("console.sources.postgres.sql_is_read_only", lambda text, functions=(): None)
    monkeypatch.setattr("console.playbooks.runner.sql_is_read_only", lambda text, functions=(): None)

    result = await runner_for(primary).probe(BOOK, probe("sql", query))

    assert not result.ok
    assert result.error == refusal
    with psycopg.connect(pg.dsn(database)) as conn:
        assert conn.execute("SELECT count(*) FROM victims").fetchone() == (1,)
        assert conn.execute("SELECT last_value, is_called FROM numbers").fetchone() == (1, False)
    # The held connection was left outside any transaction: the poll still works.
    assert (await primary.poll()).error is None


async def test_read_only_rows_itself_refuses_a_write(pg, database):
    with psycopg.connect(pg.dsn(database), autocommit=True) as conn:
        conn.execute("CREATE TABLE victims AS SELECT 1 AS id")
    async with await psycopg.AsyncConnection.connect(pg.dsn(database), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="cannot execute UPDATE in a read-only"):
            await pg_source.read_only_rows(conn, "UPDATE victims SET id = 2", 2.0)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        rows = await pg_source.read_only_rows(conn, "SELECT id FROM victims", 2.0)
        assert (rows.columns, rows.rows) == (("id",), ((1,),))
        cur = await conn.execute("SELECT id FROM victims")
        assert await cur.fetchall() == [(1,)]


async def test_statement_timeout_stops_a_slow_probe_and_the_connection_lives_on(primary):
    await primary.poll()
    started = time.monotonic()

    result = await runner_for(primary, probe_timeout=0.3).probe(BOOK, probe("sql", "SELECT pg_sleep(5)"))

    assert time.monotonic() - started < 1.5
    assert not result.ok and result.error == "canceling statement due to statement timeout"
    backend = primary._conn.pgconn.backend_pid
    assert (await primary.poll()).error is None
    assert primary._conn.pgconn.backend_pid == backend  # kept, not reconnected


async def test_probe_runs_on_the_held_connection_when_the_server_is_full(pg, database, primary, sessions):
    assert (await primary.poll()).error is None
    extra = []
    with pytest.raises(psycopg.OperationalError, match="too many clients|remaining connection slots"):
        for _ in range(pg.max_connections + 1):
            extra.append(await sessions(pg.dsn(database)))

    result = await runner_for(primary).probe(
        BOOK, probe("sql", "SELECT count(*) AS backends FROM pg_stat_activity WHERE backend_type = 'client backend'"))

    assert result.ok, result.error
    assert result.output.splitlines()[2].strip() == str(pg.max_connections)  # every slot taken


async def test_a_poll_during_a_probe_keeps_the_last_reading_and_never_queues(primary):
    before = await primary.poll()
    runner = runner_for(primary, probe_timeout=3)
    slow = asyncio.create_task(runner.probe(BOOK, probe("sql", "SELECT pg_sleep(0.6)")))
    await asyncio.sleep(0.2)

    started = time.monotonic()
    during = await bounded_poll(primary)

    assert time.monotonic() - started < 0.1
    assert during is before
    assert (await slow).ok
    after = await primary.poll()
    assert after.error is None and after.taken_at > before.taken_at


# ---- Redis probes ---------------------------------------------------------------------

async def test_redis_read_probes(cache, redis_client):
    redis_client.set("greeting", "hello")
    redis_client.rpush("queue", "a", "b")
    runner = runner_for(cache)

    got = await runner.probe(BOOK, probe("redis", "GET greeting", "cache"))
    listed = await runner.probe(BOOK, probe("redis", "LRANGE queue 0 -1"))
    size = await runner.probe(BOOK, probe("redis", "DBSIZE"))
    info = await runner.probe(BOOK, probe("redis", "INFO keyspace"))

    assert (got.ok, got.output) == (True, "hello")
    assert listed.output == "1) a\n2) b"
    assert size.output == "2"
    assert info.output.startswith("db0") and "keys=2" in info.output


@pytest.mark.parametrize("query", ["SET greeting bye", "FLUSHALL", "CONFIG SET maxmemory 1mb",
                                   "EVAL \"return redis.call('del', 'greeting')\" 0", "DEL greeting"])
async def test_redis_writes_are_refused(cache, redis_client, query):
    redis_client.set("greeting", "hello")
    journal = Journal()

    result = await runner_for(cache, journal=journal).probe(BOOK, probe("redis", query))

    assert not result.ok and result.error.startswith("refused: ")
    assert journal[0][1]["error"] == result.error
    assert redis_client.get("greeting") == b"hello"
    assert redis_client.config_get("maxmemory") == {"maxmemory": "0"}


async def test_the_redis_source_refuses_a_write_the_runner_let_through(cache, redis_client, monkeypatch):
    redis_client.set("greeting", "hello")
    monkeypatch.setattr("console.playbooks.runner.redis_is_read_only", lambda argv: None)

    result = await runner_for(cache).probe(BOOK, probe("redis", "SET greeting bye"))

    assert result.error == "refused: SET is not a read command (Redis probes run read commands only)"
    assert redis_client.get("greeting") == b"hello"
    with pytest.raises(ProbeError, match="FLUSHALL is not a read command"):
        await cache.probe_redis(["FLUSHALL"], 1.0)


# ---- HTTP, PromQL and Kubernetes probes -------------------------------------------------

async def test_http_probe_is_a_get_with_the_service_headers():
    server = FaultServer({"/status": json_reply({"db": "down", "pool": 97})}).start()
    try:
        service = HealthCheck(ServiceTarget("api", server.url("/health"), headers=(("Authorization", "Bearer t"),)))
        runner = runner_for(service)
        result = await runner.probe(BOOK, probe("http", "GET /status", "api"))
        refused = await runner.probe(BOOK, probe("http", "POST /status", "api"))
    finally:
        server.stop()
    assert result.ok
    assert result.output.splitlines()[0].startswith("HTTP 200 in ")
    assert json.loads("\n".join(result.output.splitlines()[1:])) == {"db": "down", "pool": 97}
    assert [(s.path, s.headers["authorization"]) for s in server.seen] == [("/status", "Bearer t")]
    assert refused.error == "refused: HTTP probes are GET only, not POST"


async def test_http_probe_of_a_failing_endpoint_is_not_ok():
    server = FaultServer({"/health": Reply(503, "pool exhausted")}).start()
    try:
        result = await runner_for(HealthCheck(ServiceTarget("api", server.url("/health")))).probe(
            BOOK, probe("http", "/health", "http"))
    finally:
        server.stop()
    assert not result.ok
    assert result.error.startswith("HTTP 503 in ") and result.error.endswith(": pool exhausted")


async def test_promql_probe_shows_every_series():
    answer = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "api", "status": "500"}, "value": [1.0, "0.25"]},
        {"metric": {"job": "api", "status": "502"}, "value": [1.0, "0.5"]}]}}
    server = FaultServer({"/api/v1/query": json_reply(answer)}).start()
    query = 'sum by (job, status) (rate(http_requests_total{status=~"5.."}[5m]))'
    try:
        config = parse(f"prometheus: {{url: '{server.url('')}'}}\n")
        result = await runner_for(config=config).probe(BOOK, probe("promql", query))
    finally:
        server.stop()
    assert result.ok, result.error
    assert result.output.splitlines() == [
        "series                     value",
        "-------------------------  -----",
        '{job="api", status="500"}  0.25',
        '{job="api", status="502"}  0.5',
        "(2 rows)",
    ]
    assert server.seen[0].query == {"query": query}


async def test_kubernetes_probe_lists_pods_and_one_deployment(workloads, fake):
    runner = runner_for(workloads)

    pods = await runner.probe(BOOK, probe("kubernetes", "pods"))
    one = await runner.probe(BOOK, probe("kubernetes", "deployments/api", "kubernetes"))

    assert pods.ok, pods.error
    assert any("worker-5c8d7f9b4-kd8vx" in line and "CrashLoopBackOff" in line for line in pods.output.splitlines())
    assert one.output.splitlines() == ["name  ready  up-to-date  available", "----  -----  ----------  ---------",
                                       "api   3/3             3          3", "(1 row)"]
    assert all(r.method == "GET" for r in fake.requests)
    assert fake.requests[-1].query["fieldSelector"] == "metadata.name=api"


async def test_a_probe_without_its_source_says_so():
    journal = Journal()
    result = await runner_for(journal=journal).probe(BOOK, probe("sql", "SELECT 1", "replica"))
    assert (result.ok, result.error) == (False, "no postgres source configured named 'replica'")
    assert journal[0][1]["source"] == "replica"


# ---- actions: terminate, cancel, flush, Kubernetes ---------------------------------------

async def test_terminate_backend_needs_the_pid_typed_and_then_terminates(pg, database, primary, sessions):
    victim, pid = await idle_in_transaction(sessions, pg.dsn(database))
    journal = Journal()
    runner = runner_for(primary, journal=journal)
    step = action("terminate_backend", {"pid": "{pid}"})

    assert runner.values_needed(step) == ["pid"]
    assert runner.expected_confirmation(step, {"pid": str(pid)}) == str(pid)
    with pytest.raises(Refused, match=f"not confirmed: type '{pid}' exactly"):
        await runner.run(BOOK, step, {"pid": str(pid)}, "y")
    assert await backend_alive(pg.dsn(database), pid)

    result = await runner.run(BOOK, step, {"pid": str(pid)}, f"  {pid} ")

    assert result.ok and result.output == f"terminated backend {pid}"
    assert not await backend_alive(pg.dsn(database), pid)
    with pytest.raises(psycopg.OperationalError):
        await victim.execute("SELECT 1")
    refused, done = journal
    assert refused[0] == "action" and refused[1]["ok"] is False and refused[1]["confirmed_by"] == "y"
    assert done == ("action", {
        "playbook": "pool-exhausted", "step": "act", "action": "terminate_backend", "target": str(pid),
        "source": "primary", "ok": True, "result": f"terminated backend {pid}", "output": f"terminated backend {pid}",
        "error": None, "took_ms": done[1]["took_ms"], "confirmed_by": f"  {pid} "})


async def test_terminate_backend_is_refused_in_read_only_mode(pg, database, primary, sessions):
    _, pid = await idle_in_transaction(sessions, pg.dsn(database))
    journal = Journal()
    runner = runner_for(primary, journal=journal, read_only=True)

    with pytest.raises(Refused) as refused:
        await runner.run(BOOK, action("terminate_backend", {"pid": "{pid}"}), {"pid": str(pid)}, str(pid))

    assert str(refused.value) == f"read-only mode: terminate_backend pid {pid} on primary was not run"
    assert await backend_alive(pg.dsn(database), pid)
    assert journal[0][0] == "action" and journal[0][1]["refused"] == str(refused.value)


async def test_the_config_can_make_the_runner_read_only(primary):
    config = parse("environment: {name: production, read_only: true}\n")
    assert runner_for(primary, config=config).read_only


@pytest.mark.parametrize("pid", ["12 OR 1=1", "1); SELECT pg_terminate_backend(1", "-5", "0", "1.5", ""])
async def test_a_pid_must_be_a_whole_number(primary, pid):
    runner = runner_for(primary)
    step = action("terminate_backend", {"pid": "{pid}"})
    with pytest.raises(Refused, match="pid must be a whole number"):
        await runner.run(BOOK, step, {"pid": pid}, pid)


async def test_terminate_by_state_takes_only_matching_sessions(pg, database, primary, sessions):
    dsn = pg.dsn(database)
    idle = [await sessions(dsn) for _ in range(2)]
    stuck = [await idle_in_transaction(sessions, dsn) for _ in range(2)]
    runner = runner_for(primary)
    step = action("terminate_backend", {"state": "idle in transaction", "older_than_s": 0, "database": database})

    assert runner.expected_confirmation(step, {}) == "idle in transaction"
    result = await runner.run(BOOK, step, {}, "idle in transaction")

    assert result.ok and result.output.startswith("2 of 2 matching sessions signalled")
    for _, pid in stuck:
        assert not await backend_alive(dsn, pid)
    for conn in idle:
        await conn.execute("SELECT 1")  # untouched


async def test_cancel_backend_cancels_a_running_query(pg, database, primary, sessions):
    busy = await sessions(pg.dsn(database))
    pid = busy.pgconn.backend_pid
    running = asyncio.create_task(busy.execute("SELECT pg_sleep(30)"))
    await asyncio.sleep(0.3)

    result = await runner_for(primary).run(BOOK, action("cancel_backend", {"pid": pid}), {}, str(pid))

    assert result.ok
    with pytest.raises(psycopg.errors.QueryCanceled):
        await asyncio.wait_for(running, 5)
    await busy.execute("SELECT 1")  # the session itself lives on


async def test_flush_db_flushes_only_after_the_database_is_typed(cache, redis_client):
    redis_client.set("session:1", "x")
    journal = Journal()
    runner = runner_for(cache, journal=journal)
    step = action("flush_db", {})

    assert runner.expected_confirmation(step, {}) == "cache/db0"
    for typed in ("y", "yes", "cache", "FLUSHDB"):
        with pytest.raises(Refused):
            await runner.run(BOOK, step, {}, typed)
    assert redis_client.dbsize() == 1

    result = await runner.run(BOOK, step, {}, "cache/db0")

    assert result.ok and result.output == "flushed cache/db0"
    assert redis_client.dbsize() == 0
    assert journal.kinds() == ["action"] * 5 and journal[-1][1]["target"] == "cache/db0"


async def test_flush_of_another_database_leaves_the_sources_own(cache, rds, redis_client):
    redis_client.set("keep", "1")
    other = redis.Redis.from_url(rds.url.rsplit("/", 1)[0] + "/3")
    other.set("drop", "1")
    runner = runner_for(cache)
    step = action("flush_db", {"db": 3})

    result = await runner.run(BOOK, step, {}, "cache/db3")

    assert result.ok and other.dbsize() == 0 and redis_client.get("keep") == b"1"
    assert (await runner.probe(BOOK, probe("redis", "GET keep"))).output == "1"  # still on db0
    other.close()


async def test_scale_sends_a_merge_patch_of_the_scale_subresource(workloads, fake):
    runner = runner_for(workloads)
    step = action("scale", {"deployment": "worker", "replicas": "{replicas}"})

    assert runner.expected_confirmation(step, {"replicas": "5"}) == "worker"
    result = await runner.run(BOOK, step, {"replicas": "5"}, "worker")

    assert result.ok and result.output == "scaled deployment/worker in app to 5 replicas"
    patch = fake.requests[-1]
    assert (patch.method, patch.path, patch.body, patch.content_type) == (
        "PATCH", "/apis/apps/v1/namespaces/app/deployments/worker/scale", {"spec": {"replicas": 5}},
        "application/merge-patch+json")
    worker = next(d for d in fake.responses["deployments"]["items"] if d["metadata"]["name"] == "worker")
    assert worker["spec"]["replicas"] == 5


async def test_rollout_restart_stamps_the_pod_template(workloads, fake):
    result = await runner_for(workloads).run(BOOK, action("rollout_restart", {"deployment": "api"}), {}, "api")

    assert result.ok, result.error
    patch = fake.requests[-1]
    assert (patch.method, patch.path, patch.content_type) == (
        "PATCH", "/apis/apps/v1/namespaces/app/deployments/api", "application/strategic-merge-patch+json")
    stamp = patch.body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert stamp.endswith("Z") and len(stamp) == 20


async def test_a_missing_deployment_is_a_clear_failure(workloads):
    result = await runner_for(workloads).run(BOOK, action("rollout_restart", {"deployment": "nope"}), {}, "nope")
    assert not result.ok and result.error.startswith("HTTP 404")


class KubectlOnly:
    """A Kubernetes source that can point kubectl at its cluster but cannot
    roll back through the API: rollout undo falls back to kubectl."""

    kind = "kubernetes"

    def __init__(self, watch) -> None:
        self.name, self.namespace, self.timeout, self._watch = watch.name, watch.namespace, watch.timeout, watch

    def kubectl_args(self, namespace=None):
        return self._watch.kubectl_args(namespace)


async def test_rollout_undo_goes_through_the_api_when_the_source_can(workloads, fake):
    runner = runner_for(workloads)
    result = await runner.run(BOOK, action("rollout_undo", {"deployment": "api"}), {}, "api")
    assert result.ok and "rolled deployment/api in app back to the previous revision" in result.output
    assert any(r.method == "PATCH" and r.path.endswith("/deployments/api") for r in fake.requests)


async def test_rollout_undo_runs_kubectl_with_an_argv(workloads, kube_target, stub_kubectl):
    environment = {"PATH": f"{stub_kubectl}:/usr/bin:/bin"}
    runner = runner_for(KubectlOnly(workloads), environment=environment)
    step = action("rollout_undo", {"deployment": "api", "to_revision": "{revision}"})

    rendered = runner.render_command(step, {"revision": "2"})
    result = await runner.run(BOOK, step, {"revision": "2"}, "api")

    assert result.ok and result.output == "rolled back" and result.exit_code == 0
    argv = (stub_kubectl / "argv").read_text().splitlines()
    assert argv == ["--kubeconfig", kube_target.kubeconfig, "--context", "test", "--namespace", "app",
                    "--request-timeout=1s", "rollout", "undo", "deployment/api", "--to-revision=2"]
    assert rendered == "kubectl " + " ".join(argv)


async def test_rollout_undo_without_kubectl_says_so(workloads, tmp_path):
    journal = Journal()
    runner = runner_for(KubectlOnly(workloads), journal=journal, environment={"PATH": str(tmp_path)})

    result = await runner.run(BOOK, action("rollout_undo", {"deployment": "api"}), {}, "api")

    assert not result.ok
    assert result.error.startswith("kubectl not found on PATH: rollout undo needs it")
    assert journal[0][1]["ok"] is False


# ---- every mutating path: confirmation and read-only ---------------------------------------

class World:
    """For each mutating path: a step, its values, and whether anything happened."""

    def __init__(self, pg, database, rds, redis_client, fake, stub_kubectl, tmp_path, pid):
        self.marker = tmp_path / "ran"
        self.redis_id = redis_client.client_id()  # a killed client reconnects with a new id
        redis_address = redis_client.client_info()["addr"]
        self.dsn = pg.dsn(database)
        self.redis_client = redis_client
        self.fake = fake
        self.stub = stub_kubectl
        self.pid = pid
        touch = f"touch {tmp_path}/{{name}}"
        self.paths = {
            "terminate_backend": (action("terminate_backend", {"pid": "{pid}"}), {"pid": str(pid)}),
            "cancel_backend": (action("cancel_backend", {"pid": "{pid}"}), {"pid": str(pid)}),
            "flush_db": (action("flush_db", {}), {}),
            "rollout_undo": (action("rollout_undo", {"deployment": "api"}), {}),
            "rollout_restart": (action("rollout_restart", {"deployment": "api"}), {}),
            "scale": (action("scale", {"deployment": "api", "replicas": 0}), {}),
            "delete_pod": (action("delete_pod", {"pod": "api-7d9f8b6c5d-4xkzp"}), {}),
            "client_kill": (action("client_kill", {"id": "{id}", "address": redis_address}),
                            {"id": str(self.redis_id)}),
            "shell": (Step("act", "touch", "action", action="shell", command=touch), {"name": "ran"}),
            "command": (command(touch), {"name": "ran"}),
        }

    async def untouched(self) -> bool:
        return (await backend_alive(self.dsn, self.pid) and self.redis_client.get("keep") == b"1"
                and self.redis_client.client_id() == self.redis_id
                and not any(r.method in ("PATCH", "DELETE") for r in self.fake.requests)
                and not (self.stub / "argv").exists() and not self.marker.exists())


@pytest.fixture
async def world(pg, database, primary, cache, rds, redis_client, fake, workloads, stub_kubectl, tmp_path, sessions):
    _, pid = await idle_in_transaction(sessions, pg.dsn(database))
    redis_client.set("keep", "1")
    built = World(pg, database, rds, redis_client, fake, stub_kubectl, tmp_path, pid)
    built.sources = (primary, cache, workloads)
    built.environment = {"PATH": f"{stub_kubectl}:{os.environ['PATH']}"}
    return built


def test_every_mutating_path_is_covered_here():
    assert set(mutating_paths()) == {"terminate_backend", "cancel_backend", "flush_db", "rollout_undo",
                                     "rollout_restart", "scale", "delete_pod", "client_kill", "shell", "command"}


@pytest.mark.parametrize("path", mutating_paths())
async def test_every_mutating_path_needs_the_exact_confirmation(world, path):
    step, values = world.paths[path]
    journal = Journal()
    runner = runner_for(*world.sources, journal=journal, environment=world.environment)
    expected = runner.expected_confirmation(step, values)
    assert runner.is_mutating(step) and expected not in ("", "y", "yes")

    for typed in ("", "y", "yes", expected.upper() if expected.upper() != expected else expected + "x",
                  expected[:-1]):
        with pytest.raises(Refused, match="^not confirmed: "):
            await runner.run(BOOK, step, values, typed)

    assert await world.untouched()
    assert len(journal) == 5 and all(data["ok"] is False and data["refused"] for _, data in journal)
    assert {kind for kind, _ in journal} == {"command" if path == "command" else "action"}


@pytest.mark.parametrize("path", mutating_paths())
async def test_every_mutating_path_is_refused_in_read_only_mode(world, path):
    step, values = world.paths[path]
    journal = Journal()
    runner = runner_for(*world.sources, journal=journal, environment=world.environment, read_only=True)

    with pytest.raises(Refused, match=r"^read-only mode: .+ was not run$"):
        await runner.run(BOOK, step, values, runner.expected_confirmation(step, values))

    assert await world.untouched()
    assert journal[0][1]["confirmed_by"] == runner.expected_confirmation(step, values)


async def test_probes_are_not_mutating_and_cannot_be_run(primary):
    runner = runner_for(primary)
    step = probe("sql", "SELECT 1")
    assert not runner.is_mutating(step)
    assert not runner.is_mutating(Step("copy", "copy me", "command", command="kubectl get pods"))
    with pytest.raises(Refused, match="not an action or a runnable command"):
        await runner.run(BOOK, step, {}, "look")


# Mutating SQL an importer found: copied into a database client, never run, never as shell.
MUTATING_SQL = ["REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public FROM payments_writer;",
                "ALTER SYSTEM SET max_connections = 300;", "SELECT pg_drop_replication_slot('standby_1');",
                "DELETE FROM node_leases WHERE node = 'node-7';", "VACUUM FULL invoices;", "not sql at all; rm -rf /"]


@pytest.mark.parametrize("sql", MUTATING_SQL)
@pytest.mark.parametrize("runnable", [False, True])  # the loader refuses runnable; the runner too
@pytest.mark.parametrize("read_only", [False, True])
async def test_a_sql_step_is_never_run_and_the_refusal_is_journaled(sql, runnable, read_only, tmp_path, monkeypatch):
    journal = Journal()
    runner = runner_for(journal=journal, read_only=read_only)
    step = Step("revoke", "Revoke writes", "command", command=sql, sql=True, runnable=runnable)
    ran = []

    async def no_shell(*args, **kwargs):
        ran.append(args)
        raise AssertionError("a SQL step reached a process")

    monkeypatch.setattr(runner, "_run_shell", no_shell)
    monkeypatch.setattr(runner, "_run_process", no_shell)
    assert not runner.is_mutating(step)
    with pytest.raises(Refused, match="SQL to copy into a database client; it is never run"):
        await runner.run(BOOK, step, {}, "revoke")
    assert ran == []
    assert journal.kinds() == ["command"]
    entry = journal[0][1]
    assert (entry["ok"], entry["command"], entry["exit_code"], entry["step"]) == (False, sql, None, "revoke")
    assert "never run" in entry["refused"]
    # Copying gives the SQL text itself, not a shell line.
    assert runner.render_command(step, {}) == sql


async def test_a_sql_step_copies_with_its_values_filled_in_and_checked():
    runner = runner_for()
    step = Step("kill", "Kill", "command", command="SELECT pg_terminate_backend({pid});", sql=True)
    assert runner.values_needed(step) == ["pid"]
    assert runner.render_command(step, {"pid": "4242"}) == "SELECT pg_terminate_backend(4242);"
    with pytest.raises(Refused, match="pid"):
        runner.render_command(step, {"pid": "1); DROP TABLE t; --"})
    with pytest.raises(Refused, match="no value given"):
        runner.render_command(step, {})


# ---- commands: values as data, bounds, environment -------------------------------------------
# The attacks on value placement live in test_attack_shell.py; here, that
# ordinary values arrive literally and unusable ones are refused and recorded.

TEMPLATES = {  # template -> what printf prints, given the value
    "printf %s {value}": lambda v: v,
    "printf %s '{value}'": lambda v: v,
    'printf %s "{value}"': lambda v: v,
    "printf %s pre-{value}-post": lambda v: f"pre-{v}-post",
    "printf %s \"a b {value}\"'c'": lambda v: f"a b {v}c",
    "printf %s $(printf %s {value} | od -An -c | tr -d ' \\n' | head -c 0){value}": lambda v: v,
    "printf %s `printf %s {value}`": lambda v: v,
    "printf %s \"$(printf %s {value})\"": lambda v: v,
    "printf %s $'\\x41'{value}$'{value}\\x42'": lambda v: f"A{v}{v}B",
    "cat <<EOF\n{value}\nEOF": lambda v: v,
}
ORDINARY = ["api-7f9c", "10.0.0.7:5432", "deploy/api", "a.b_c@d%e+f,g", "0", "x"]


@pytest.mark.parametrize("value", ORDINARY)
@pytest.mark.parametrize("template", list(TEMPLATES))
async def test_template_values_arrive_literally(template, value):
    journal = Journal()
    runner = runner_for(journal=journal)
    step = command(template)

    result = await runner.run(BOOK, step, {"value": value}, value)

    assert (result.ok, result.exit_code) == (True, 0), result.error
    assert result.output == TEMPLATES[template](value)
    kind, data = journal[0]
    assert kind == "command" and data["command"] == runner.render_command(step, {"value": value})
    assert data["values"] == {"value": value} and ("argv" in data) != ("script" in data)
    assert data["exit_code"] == 0 and data["output"] == result.output and data["confirmed_by"] == value


@pytest.mark.parametrize("value", NASTY)
async def test_hostile_values_are_refused_with_the_character_named(value, tmp_path):
    journal = Journal()
    runner = runner_for(journal=journal)
    with pytest.raises(Refused, match=r"value for \{value\} (holds|is empty)"):
        await runner.run(BOOK, command(f"touch {tmp_path}/{{value}}"), {"value": value}, value or "cmd")
    assert list(tmp_path.iterdir()) == []
    assert journal[0][0] == "command" and journal[0][1]["ok"] is False


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40))
def test_any_value_is_refused_or_one_literal_word(value):
    runner = runner_for()
    for template in ("printf %s {v}", "printf %s '{v}'", 'printf %s "{v}"', "printf %s $(( 0 )){v}"):
        step = command(template)
        try:
            result = asyncio.run(runner.run(BOOK, step, {"v": value}, runner.expected_confirmation(step, {"v": value})))
        except Refused:
            continue
        assert result.output == (value if "((" not in template else f"0{value}"), template


@pytest.mark.parametrize("value, reason", [("a\nrm -rf /", "line break or NUL"), ("a\x00b", "line break or NUL"),
                                           ("--all", "starts with '-'"), ("-f", "starts with '-'")])
async def test_unusable_values_are_refused_and_recorded(value, reason, tmp_path):
    journal = Journal()
    with pytest.raises(Refused, match=reason):
        await runner_for(journal=journal).run(BOOK, command("kubectl delete pod {pod}"), {"pod": value}, value)
    assert journal[0][0] == "command" and journal[0][1]["ok"] is False


async def test_missing_values_are_named():
    with pytest.raises(Refused, match=r"no value given for \{pod\}"):
        await runner_for().run(BOOK, command("kubectl delete pod {pod}"), {}, "x")


def test_shell_variables_are_not_placeholders():
    runner = runner_for()
    step = command('echo "${HOME}" {pod} {pod} ${USER} {ns}')
    assert runner.values_needed(step) == ["pod", "ns"] == shell.placeholders(step.command)
    built = shell.build(step.command, {"pod": "a", "ns": "x"})
    assert built.script == 'echo "${HOME}" "${ICV_pod}" "${ICV_pod}" ${USER} "${ICV_ns}"'
    assert built.environment == {"ICV_pod": "a", "ICV_ns": "x"}
    assert runner.render_command(step, {"pod": "a", "ns": "x"}) == 'echo "${HOME}" a a ${USER} x'


async def test_shell_action_params_are_defaults_the_operator_may_override(tmp_path):
    step = Step("act", "x", "action", action="shell", command="printf %s {ns}/{pod}", params={"ns": "prod"})
    runner = runner_for()
    assert runner.values_needed(step) == ["pod"]
    assert (await runner.run(BOOK, step, {"pod": "api-1"}, "api-1")).output == "prod/api-1"
    assert (await runner.run(BOOK, step, {"pod": "api-1", "ns": "stage"}, "api-1")).output == "stage/api-1"


async def test_a_confirm_template_names_what_to_type():
    step = Step("act", "x", "action", action="shell", command="true {pod}", confirm="delete {pod}")
    runner = runner_for()
    assert runner.expected_confirmation(step, {"pod": "api-1"}) == "delete api-1"
    with pytest.raises(Refused):
        await runner.run(BOOK, step, {"pod": "api-1"}, "api-1")
    assert (await runner.run(BOOK, step, {"pod": "api-1"}, "delete api-1")).ok


async def test_a_command_with_no_values_asks_for_its_step_id():
    runner = runner_for()
    step = command("true", step_id="restart-api")
    assert runner.expected_confirmation(step, {}) == "restart-api"


async def test_exit_status_output_and_environment():
    runner = runner_for(environment={"PATH": os.environ["PATH"], "IC_MARK": "from the console"})

    failed = await runner.run(BOOK, command("echo out; echo err >&2; exit 3"), {}, "cmd")
    marked = await runner.run(BOOK, command('printf %s "$IC_MARK"'), {}, "cmd")

    assert (failed.ok, failed.exit_code, failed.error) == (False, 3, "exit status 3")
    assert sorted(failed.output.splitlines()) == ["err", "out"]
    assert marked.output == "from the console"


async def test_output_is_bounded_and_inert():
    runner = runner_for()
    long = await runner.run(BOOK, command("seq 1 100000"), {}, "cmd")
    wide = await runner.run(BOOK, command("head -c 20000 /dev/zero | tr '\\0' x"), {}, "cmd")
    hostile = await runner.run(BOOK, command(r"printf 'a\033]52;c;cHduZWQ=\007b\033[31mred\n'"), {}, "cmd")

    lines = long.output.splitlines()
    assert lines[:MAX_LINES] == [str(n) for n in range(1, MAX_LINES + 1)]
    assert len(lines) == MAX_LINES + 1 and lines[-1].endswith("more lines not shown")
    assert len(long.output.encode()) <= MAX_BYTES + 100
    assert len(wide.output) < 1000
    assert "\033" not in hostile.output and hostile.output.endswith("red")


async def test_a_command_that_hangs_is_stopped(tmp_path):
    runner = runner_for(command_timeout=0.5)
    started = time.monotonic()

    result = await runner.run(BOOK, command("echo started; sleep 30 & sleep 30; echo never"), {}, "cmd")

    assert time.monotonic() - started < 3
    assert not result.ok and result.error == "timed out after 0.5s; stopped" and result.output == "started"


async def test_the_real_journal_takes_every_record_with_who_ran_it(tmp_path, primary):
    from console.incident.journal import Journal as IncidentJournal

    journal = IncidentJournal(tmp_path / "incident.json", operator={"user": "alice", "ssh_client": "10.0.0.7"})
    runner = StepRunner(parse("refresh: 2\n"), {"primary": primary}, journal.append)

    await runner.probe(BOOK, probe("sql", "SELECT 1 AS one"))
    await runner.run(BOOK, command("printf %s {pod}"), {"pod": "api-1"}, "api-1")
    with pytest.raises(Refused):
        await runner.run(BOOK, action("terminate_backend", {"pid": "{pid}"}), {"pid": "1"}, "y")

    events = IncidentJournal(tmp_path / "incident.json").events()
    assert [e.kind for e in events] == ["probe", "command", "action"]
    assert {e.operator["user"] for e in events} == {"alice"}
    assert events[1].data["output"] == "api-1" and events[2].data["confirmed_by"] == "y"


async def test_a_huge_result_is_cut_at_the_rows_that_fit(primary):
    started = time.monotonic()
    result = await runner_for(primary).probe(BOOK, probe("sql", "SELECT g FROM generate_series(1, 10000000) g"))

    assert time.monotonic() - started < 2  # rows stream; the rest is cancelled, never fetched
    lines = result.output.splitlines()
    assert len(lines) == MAX_LINES and lines[-1] == f"(first {MAX_LINES - 3} rows)"
    assert (await primary.poll()).error is None
