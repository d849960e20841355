"""Playbooks: the model, the loader, `check`, and the read-only rules for probes.

Broken playbooks are written to files and every problem is asserted with its
``path:line``. The shipped playbooks are checked, and their SQL and Redis
probes are run against real servers inside read-only transactions.
"""

from __future__ import annotations

import shlex
import textwrap
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
import redis

from console import config, paths
from console.playbooks import Condition, Playbook, check, load_playbooks
from console.playbooks.importer import import_markdown
from console.readonly import http_is_read_only, kubernetes_is_read_only, redis_is_read_only, sql_is_read_only
from console.sources.base import Snapshot, State
from test_config import GOOD as DESIGN_EXAMPLE

SHIPPED = paths.shipped_playbooks()
# A copy of ../shared/seeds: the runbooks our users have, kept with the tests.
SEEDS = Path(__file__).resolve().parent / "seeds"


GOOD = """\
id: good
title: A sound playbook
severity: P1
symptoms: [slow]
suggest_when:
  - postgres.connections_ratio >= 0.95
steps:
  - id: count
    title: Count connections
    kind: probe
    probe: sql
    source: postgres
    query: SELECT count(*) FROM pg_stat_activity
  - id: recovered
    title: Connections back below 70 %
    kind: check
    condition: postgres.connections_ratio < 0.7
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, cfg=None, name: str = "p.yaml") -> list[str]:
    path = write(tmp_path, name, text)
    return [str(p).replace(f"{tmp_path}/", "") for p in check([path], cfg)]


def configured():
    # The design's example config: postgres "primary", redis "cache", service "api".
    return config.parse(DESIGN_EXAMPLE, "c.yaml", env={"PGPASSWORD": "unused"})


def snap(kind: str, name: str, state: State = State.OK, **metrics) -> Snapshot:
    return Snapshot(kind=kind, name=name, state=state, taken_at=datetime.now(timezone.utc), metrics=metrics)


# ---- loading -----------------------------------------------------------------------

def test_a_sound_playbook_loads_into_frozen_values(tmp_path):
    path = write(tmp_path, "good.yaml", GOOD)
    books, found = load_playbooks([tmp_path])
    assert found == []
    [book] = books
    assert (book.id, book.title, book.severity, book.symptoms) == ("good", "A sound playbook", "P1", ("slow",))
    assert book.path == str(path) and book.line == 1
    probe, done = book.steps
    assert (probe.kind, probe.probe, probe.source, probe.line) == ("probe", "sql", "postgres", 8)
    assert done.condition == Condition("postgres.connections_ratio", "<", 0.7)
    assert book.suggest_when == (Condition("postgres.connections_ratio", ">=", 0.95),)
    with pytest.raises(AttributeError):
        book.title = "changed"  # type: ignore[misc]
    assert probe.target_kind == "postgres"


def test_several_playbooks_in_one_file_under_playbooks(tmp_path):
    body = textwrap.indent(GOOD, "    ").replace("    id: good", "  - id: good", 1)
    second = body.replace("  - id: good", "  - id: other", 1)
    path = write(tmp_path, "two.yaml", "playbooks:\n" + body + second)
    books, found = load_playbooks([path])
    assert found == [] and [b.id for b in books] == ["good", "other"]
    assert books[1].line == 19


def test_every_problem_is_reported_with_its_line(tmp_path):
    text = """\
        id: broken
        title: Broken
        colour: red
        steps:
          - id: a
            title: Unknown kind
            kind: chek
          - id: b
            title: Probe that writes
            kind: probe
            probe: sql
            query: |
              SELECT 1;
              DELETE FROM accounts
          - id: b
            title: Same id again
            kind: check
          - id: c
            title: Command without its command
            kind: command
          - id: d
            title: Check with a probe's key
            kind: check
            query: SELECT 1
          - id: e
            title: Bad condition
            kind: check
            condition: postgres.conections_ratio < 0.7
          - id: f
            title: Unparsable condition
            kind: check
            condition: connections below seventy percent
          - id: g
            title: Redis flush as a probe
            kind: probe
            probe: redis
            query: FLUSHDB
          - id: h
            title: HTTP post
            kind: probe
            probe: http
            source: http
            query: POST /api/payments/retry
          - id: i
            title: Scale without replicas
            kind: action
            action: scale
            params: {deployment: api, pid: 3}
          - kind: check
            title: no id
          - id: k
            title: Unknown action
            kind: action
            action: drop_table
          - id: l
            title: Kubernetes secrets are not a read
            kind: probe
            probe: kubernetes
            query: secrets
          - id: m
            title: Confirm names a missing param
            kind: action
            action: rollout_undo
            params: {deployment: api}
            confirm: '{deploymnet}'
        """
    assert problems(tmp_path, text) == [
        "p.yaml:3: unknown key 'colour'",
        "p.yaml:7: unknown step kind 'chek' (one of check, probe, command, action); did you mean 'check'?",
        "p.yaml:12: probe refused: more than one SQL statement (a probe runs exactly one)",
        "p.yaml:15: duplicate step id 'b' (first on line 8)",
        "p.yaml:18: missing required key 'command'",
        "p.yaml:24: 'query' does not apply to a check step",
        "p.yaml:28: unknown metric 'postgres.conections_ratio' (did you mean 'postgres.connections_ratio'?)",
        "p.yaml:32: not a condition: 'connections below seventy percent' "
        "(write it as kind.metric OP number, e.g. postgres.connections_ratio >= 0.95)",
        "p.yaml:37: probe refused: FLUSHDB is not a read command (Redis probes run read commands only)",
        "p.yaml:43: probe refused: HTTP probes are GET only, not POST",
        "p.yaml:48: scale takes no param 'pid' (it takes deployment, namespace, replicas, statefulset)",
        "p.yaml:48: scale needs param 'replicas'",
        "p.yaml:49: missing required key 'id'",
        "p.yaml:54: unknown action 'drop_table' (one of terminate_backend, cancel_backend, flush_db, "
        "rollout_undo, rollout_restart, scale, delete_pod, client_kill, shell)",
        "p.yaml:59: probe refused: Kubernetes probes read one of pods, deployments, statefulsets, replicasets, "
        "daemonsets, jobs, events, nodes, services, ingresses, endpoints, not 'secrets'",
        "p.yaml:65: confirm uses {deploymnet}, which is not a param",
    ]


def test_a_broken_playbook_is_left_out_and_the_others_load(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD.replace("id: good", "id: bad").replace("kind: check", "kind: tick"))
    books, found = load_playbooks([tmp_path])
    assert [b.id for b in books] == ["good"]
    assert [str(p) for p in found] == [
        f"{tmp_path / 'b.yaml'}:16: unknown step kind 'tick' (one of check, probe, command, action)"]


def test_duplicate_playbook_ids_across_files(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", "# the same playbook, copied\n" + GOOD)
    books, found = load_playbooks([tmp_path])
    assert len(books) == 1 and books[0].path.endswith("a.yaml")
    assert [str(p) for p in found] == [
        f"{tmp_path / 'b.yaml'}:2: duplicate playbook id 'good' (first in {tmp_path / 'a.yaml'}:1)"]


@pytest.mark.parametrize("step, message", [
    ("kind: probe\n    probe: sql", "4: missing required key 'query'"),
    ("kind: probe\n    query: SELECT 1", "4: missing required key 'probe'"),
    ("kind: probe\n    probe: graphql\n    query: '{a}'", "7: unknown probe 'graphql' (one of sql, redis, http, promql, kubernetes)"),
    ("kind: action", "4: missing required key 'action'"),
    ("kind: action\n    action: shell", "4: a shell action needs 'command'"),
    ("kind: action\n    action: terminate_backend", "4: terminate_backend needs param 'pid' or 'state'"),
    ("kind: action\n    action: terminate_backend\n    params: {pid: twelve}",
     "8: param 'pid' must be a whole number or a template like {pid}"),
    ("kind: action\n    action: flush_db\n    source: postgres", "8: source 'postgres' is not a redis source"),
    ("kind: command\n    command: ls\n    runnable: maybe", "8: 'runnable' must be true or false, not a string"),
    ("kind: probe\n    probe: http\n    query: /health", "8: an HTTP probe on a path needs a source (a service name, or 'http')"),
    ("kind: command\n    command: VACUUM FULL t\n    sql: true\n    runnable: true",
     "9: a sql command is never run (never as shell): it is copied into a database client; drop 'runnable'"),
    ("kind: command\n    command: kubectl logs {pod}\n    placeholders: {pod: [1]}",
     "8: placeholders maps a {name} of the command to how the runbook wrote it (a string or a list of strings), "
     "not 'pod': [1]"),
    ("kind: probe\n    probe: sql\n    query: SELECT 1\n    sql: true", "9: 'sql' does not apply to a probe step"),
])
def test_required_fields_per_kind(tmp_path, step, message):
    text = f"id: p\ntitle: P\nsteps:\n  - id: s\n    title: S\n    {step}\n"
    assert problems(tmp_path, text) == [f"p.yaml:{message}"]


def test_source_names_are_checked_against_the_config(tmp_path):
    text = """\
        id: p
        title: P
        suggest_when:
          - postgres[replica].connections_ratio >= 0.9
        steps:
          - {id: a, title: A, kind: probe, probe: sql, source: primray, query: SELECT 1}
          - {id: b, title: B, kind: probe, probe: sql, source: cache, query: SELECT 1}
          - {id: c, title: C, kind: probe, probe: redis, source: cache, query: INFO memory}
          - {id: d, title: D, kind: probe, probe: http, source: api, query: /health}
          - {id: e, title: E, kind: check, condition: "errors[api].error_ratio < 0.01"}
          - {id: f, title: F, kind: probe, probe: promql, source: prometheus, query: up}
        """
    assert problems(tmp_path, text, configured()) == [
        "p.yaml:4: unknown source 'replica'",
        "p.yaml:6: unknown source 'primray' (did you mean 'primary'?)",
        "p.yaml:7: source 'cache' is a redis source, not postgres",
    ]
    # Without a config only kinds can be checked, so names are problems.
    assert problems(tmp_path, text)[0] == (
        "p.yaml:4: unknown source 'replica': without a config only kinds "
        "(postgres, redis, http, prometheus, kubernetes) can be checked")


def test_invalid_yaml_and_missing_directories_are_located(tmp_path):
    bad = write(tmp_path, "bad.yaml", "id: x\ntitle: [unclosed\nsteps: []\n")
    found = [str(p) for p in check([bad, tmp_path / "nowhere"])]
    assert found[0].startswith(f"{bad}:3: invalid YAML")
    assert found[1] == f"{tmp_path / 'nowhere'}:0: no such playbook directory or file"
    assert problems(tmp_path, "- just\n- a list of strings\n") == [
        "p.yaml:1: each playbook must be a mapping", "p.yaml:2: each playbook must be a mapping"]
    assert problems(tmp_path, "id: x\ntitle: X\nsteps: []\n") == ["p.yaml:3: a playbook needs at least one step"]


# ---- the shipped playbooks ------------------------------------------------------------

def shipped() -> list[Playbook]:
    books, found = load_playbooks([SHIPPED])
    assert found == []
    return books


def test_every_shipped_playbook_passes_check_with_and_without_a_config():
    assert [str(p) for p in check([SHIPPED])] == []
    assert [str(p) for p in check([SHIPPED], configured())] == []
    assert len(shipped()) >= 13


# Every scenario heading of every seed, and the shipped playbook that carries it.
SCENARIOS = {
    "000_339aa9a24859bc43.txt": {
        "API Down / Not Responding": "api-down",
        "Database Connection Failures": "postgres-pool-exhausted",
        "Payment Processing Failures": "payment-failures",
        "High Error Rate": "high-error-rate",
        "Slow Response Times": "slow-queries-high-latency",
        "Data Corruption": "data-corruption",
    },
    "001_eb9f7071a35a1eaf.txt": {
        "Marketing Site Down": "api-down",
        "Database Connection Exhausted": "postgres-pool-exhausted",
        "Redis Down": "redis-down",
        "API Rate Limit Exceeded": "ddos-rate-limiting",
    },
    "002_e553a3c957542cac.txt": {
        "Database Connection Pool Exhausted": "postgres-pool-exhausted",
        "High Error Rate (>5% 5xx errors)": "high-error-rate",
        "High Response Time (P95 > 1 second)": "slow-queries-high-latency",
        "Payment Processing Failure": "payment-failures",
        "SSL Certificate Expiring": "ssl-certificate-expiring",
        "Security: Potential Breach": "security-breach",
        "Complete System Outage": "complete-outage",
        "Performance Troubleshooting": "slow-queries-high-latency",
    },
    "003_6257f6b5cfeae902.txt": {
        "Service Unavailable (5xx errors)": "api-down",
        "Database Issues": "postgres-pool-exhausted",
        "High Latency": "slow-queries-high-latency",
        "Security Incident": "security-breach",
    },
    "004_f70e8bfeafc3ed5e.txt": {
        "Database Connection Pool Exhausted": "postgres-pool-exhausted",
        "High Memory Usage": "high-memory-oom",
        "OpenAI API Failure": "external-dependency-failure",
        "Redis Cache Failure": "redis-down",
        "DDoS Attack": "ddos-rate-limiting",
        "Security Breach": "security-breach",
    },
}


@pytest.mark.parametrize("seed", sorted(SCENARIOS))
def test_every_seed_scenario_is_a_shipped_playbook_that_names_its_seed(seed):
    # The importer finds the scenarios; this list says where each one went.
    found = {d["title"] for d in import_markdown((SEEDS / seed).read_text(encoding="utf-8"), seed)}
    assert set(SCENARIOS[seed]) <= found
    books = {b.id: b for b in shipped()}
    for scenario, book_id in SCENARIOS[seed].items():
        assert seed in books[book_id].source_runbooks, (scenario, book_id)
    named = {s for b in books.values() for s in b.source_runbooks}
    assert named == set(SCENARIOS)


def test_the_pool_exhausted_playbook_suggests_itself_and_ticks_on_recovery():
    book = {b.id: b for b in shipped()}["postgres-pool-exhausted"]
    full = [snap("postgres", "primary", State.CRITICAL, connections_ratio=0.96)]
    calm = [snap("postgres", "primary", connections_ratio=0.5)]
    assert book.suggested_by(full) and not book.suggested_by(calm)
    condition_steps = [s for s in book.steps if s.condition is not None]
    assert [str(s.condition) for s in condition_steps] == ["postgres.connections_ratio < 0.7"]
    assert condition_steps[0].condition.holds(calm) and not condition_steps[0].condition.holds(full)
    probes = {s.id: s for s in book.steps if s.kind == "probe"}
    assert {"connections-by-state", "idle-in-transaction"} <= set(probes)
    [terminate] = [s for s in book.steps if s.action == "terminate_backend" and "state" in s.params]
    assert terminate.params["state"] == "idle in transaction" and terminate.params["older_than_s"] > 0
    assert terminate.confirm == "{state}"


def test_mutating_steps_of_the_shipped_playbooks_are_actions_or_copy_only_commands():
    for book in shipped():
        for step in book.steps:
            if step.kind == "command" and step.runnable:
                words = shlex.split(step.command)
                assert not any(w in words for w in ("|", ">", "delete", "restart", "scale", "apply", "set")), \
                    (book.id, step.id)
            if step.kind == "action":
                assert step.action in ("terminate_backend", "cancel_backend", "flush_db", "rollout_undo",
                                       "rollout_restart", "scale")


@pytest.fixture(scope="module")
def seed_tables(pg_server):
    """A database holding the tables the shipped probes name (seed schemas)."""
    name = f"probes_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = pg_server.dsn(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE protocols (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE exploits (tx_hash text, protocol_id int)")
        conn.execute("CREATE TABLE audit_logs (created_at timestamptz DEFAULT now(), who text)")
    return dsn


def test_every_shipped_sql_probe_runs_read_only_on_real_postgres(seed_tables):
    ran = 0
    with psycopg.connect(seed_tables, autocommit=True) as conn:
        for book in shipped():
            for step in book.steps:
                if step.probe != "sql" or "pg_stat_statements" in step.query:
                    continue  # pg_stat_statements needs shared_preload_libraries
                with conn.transaction():
                    conn.execute("SET TRANSACTION READ ONLY")
                    conn.execute("SET LOCAL statement_timeout = '2s'")
                    conn.execute(step.query).fetchall()
                ran += 1
    assert ran >= 12


def test_every_shipped_redis_probe_is_a_command_real_redis_answers(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    ran = 0
    for book in shipped():
        for step in book.steps:
            if step.probe == "redis":
                assert client.execute_command(*shlex.split(step.query)) is not None
                ran += 1
    assert ran >= 5


# ---- conditions -------------------------------------------------------------------------

def test_conditions_parse_and_print_back():
    c = Condition.parse("postgres[primary].connections_ratio < 0.7")
    assert c == Condition("postgres.connections_ratio", "<", 0.7, "primary")
    assert (c.kind, c.name) == ("postgres", "connections_ratio")
    assert str(c) == "postgres[primary].connections_ratio < 0.7"
    assert str(Condition.parse("  redis.evictions_per_sec>=1e2 ")) == "redis.evictions_per_sec >= 100"
    for bad in ("connections < 0.7", "postgres.connections_ratio =< 0.7", "postgres.ratio < ", "postgres.x < nan",
                "postgres[a b].x < 1", 42):
        with pytest.raises(ValueError):
            Condition.parse(bad)


def test_a_condition_reads_only_its_kind_and_source():
    c = Condition.parse("postgres.connections_ratio < 0.7")
    assert c.holds([]) is None
    assert c.holds([snap("redis", "cache", connections_ratio=0.1)]) is None
    assert c.holds([snap("postgres", "primary", connections_ratio=None)]) is None
    assert c.holds([snap("postgres", "primary", connections_ratio=0.5)]) is True
    assert c.holds([snap("postgres", "primary", connections_ratio=0.7)]) is False
    named = Condition.parse("postgres[replica].connections_ratio < 0.7")
    readings = [snap("postgres", "primary", connections_ratio=0.99), snap("postgres", "replica", connections_ratio=0.1)]
    assert named.holds(readings) is True
    assert named.holds(readings[:1]) is None


def test_unreachable_sources_never_satisfy_a_condition():
    c = Condition.parse("postgres.connections_ratio < 0.7")
    down = Snapshot(kind="postgres", name="primary", state=State.UNREACHABLE, taken_at=datetime.now(timezone.utc),
                    error="connection refused", metrics={"connections_ratio": 0.0})
    assert c.holds([down]) is False
    assert c.holds([down], any_source=True) is False
    assert c.holds([down, snap("postgres", "replica", connections_ratio=0.1)]) is False


def test_a_step_waits_for_every_source_a_suggestion_for_any():
    full, calm = snap("postgres", "a", connections_ratio=0.97), snap("postgres", "b", connections_ratio=0.2)
    recovered = Condition.parse("postgres.connections_ratio < 0.7")
    assert recovered.holds([full, calm]) is False  # one database is still full
    book = Playbook("p", "P", None, (), (Condition.parse("postgres.connections_ratio >= 0.95"),), (), "p.yaml", 1)
    assert book.suggested_by([full, calm]) is True
    assert book.suggested_by([calm]) is False
    assert Playbook("q", "Q", None, (), (), (), "q.yaml", 1).suggested_by([full]) is False


# ---- read-only rules ----------------------------------------------------------------------

@pytest.mark.parametrize("sql", [
    "SELECT 1",
    "select count(*), state from pg_stat_activity group by state;",
    "WITH t AS (SELECT 1 AS x) SELECT x FROM t",
    "SHOW max_connections",
    "EXPLAIN SELECT * FROM pg_class",
    "(SELECT 1)",
    "-- DELETE in a comment\nSELECT 1",
    "SELECT /* DROP TABLE x; */ 1",
    "SELECT '; DROP TABLE x' AS harmless",
    "SELECT $tag$ DELETE FROM x $tag$",
    "SELECT E'it\\'s; DELETE'",
    'SELECT "delete" FROM t',
    "SELECT updated_at, last_update, created_by FROM t",
    "SELECT 1;  -- trailing comment",
])
def test_read_only_sql_is_accepted(sql):
    assert sql_is_read_only(sql) is None


@pytest.mark.parametrize("sql, reason", [
    ("SELECT 1; DROP TABLE x", "more than one SQL statement"),
    ("SELECT 1 /* ; */; DROP TABLE x", "more than one SQL statement"),
    ("WITH d AS (DELETE FROM x RETURNING *) SELECT * FROM d", "may write: DELETE in WITH d"),
    ("WITH d AS (UPDATE x SET a = 1 RETURNING *) SELECT 1", "may write: UPDATE in WITH d"),
    ("select pg_terminate_backend(1)", "pg_terminate_backend()"),
    ("SELECT pg_catalog.pg_cancel_backend(pid) FROM pg_stat_activity", "pg_cancel_backend()"),
    ('SELECT "pg_terminate_backend"(1)', "pg_terminate_backend()"),
    ("SELECT set_config('statement_timeout', '0', false)", "set_config()"),
    ("SELECT pg_reload_conf()", "pg_reload_conf()"),
    ("SELECT nextval('s')", "nextval()"),
    ("SELECT * INTO copy_of_t FROM t", "may write: SELECT INTO"),
    ("SELECT * FROM t FOR UPDATE", "may write: FOR UPDATE"),
    ("SELECT * FROM t FOR KEY SHARE", "takes row locks"),
    ("EXPLAIN ANALYZE DELETE FROM t", "EXPLAIN ANALYZE"),
    ("EXPLAIN (ANALYZE, BUFFERS) SELECT 1", "EXPLAIN ANALYZE"),
    ("DELETE FROM t", "not DELETE"),
    ("/* SELECT */ DELETE FROM t", "not DELETE"),
    ("-- SELECT\nUPDATE t SET a = 1", "not UPDATE"),
    ("ALTER SYSTEM SET max_connections = 200", "not ALTER"),
    ("DO $$ BEGIN DELETE FROM t; END $$", "not DO"),
    ("COPY t TO STDOUT", "not COPY"),
    ("CALL p()", "not CALL"),
    ("SET statement_timeout = 0", "not SET"),
    ("SELECT 'unterminated", "unterminated quoted string"),
    ("SELECT 1 /* unterminated", "unterminated /* comment"),
    ("SELECT /* a /* nested */ still comment */ 1; DROP TABLE x", "more than one SQL statement"),
    ('SELECT U&"pg_terminate_backen\\0064"(1)', "pg_terminate_backend()"),
    ("", "empty SQL"),
])
def test_sql_that_may_write_is_refused(sql, reason):
    refused = sql_is_read_only(sql)
    assert refused is not None and reason in refused


def test_the_sql_rule_agrees_with_postgres_on_what_a_read_only_transaction_refuses(pg_server, seed_tables):
    # Each refused write fails in a READ ONLY transaction too -- except
    # pg_terminate_backend, which PostgreSQL allows there: the reason the
    # rule names functions and does not trust the transaction alone.
    writes = ["WITH d AS (DELETE FROM exploits RETURNING *) SELECT * FROM d",
              "SELECT * INTO copy_of_protocols FROM protocols",
              "SELECT * FROM protocols FOR UPDATE"]
    with psycopg.connect(seed_tables, autocommit=True) as conn:
        for sql in writes:
            assert sql_is_read_only(sql) is not None
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                with conn.transaction():
                    conn.execute("SET TRANSACTION READ ONLY")
                    conn.execute(sql)
        victim = psycopg.connect(seed_tables, autocommit=True)
        pid = victim.info.backend_pid
        sql = f"SELECT pg_terminate_backend({pid})"
        assert "pg_terminate_backend" in sql_is_read_only(sql)
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            assert conn.execute(sql).fetchone()[0] is True
        with pytest.raises(psycopg.OperationalError):
            victim.execute("SELECT 1")
        victim.close()


@pytest.mark.parametrize("argv", [["PING"], ["info", "memory"], ["CLIENT", "LIST"], ["slowlog", "get", "10"],
                                  ["CONFIG", "GET", "maxmemory"], ["MEMORY", "USAGE", "k"], ["SCAN", "0"],
                                  ["DBSIZE"], ["ROLE"], ["CLUSTER", "INFO"], ["latency", "latest"]])
def test_redis_read_commands_are_accepted(argv):
    assert redis_is_read_only(argv) is None


@pytest.mark.parametrize("argv, reason", [
    (["FLUSHDB"], "FLUSHDB is not a read command"),
    (["flushall", "async"], "FLUSHALL is not a read command"),
    (["CONFIG", "SET", "maxmemory", "1"], "CONFIG SET is not a read command"),
    (["CLIENT", "KILL", "ID", "3"], "CLIENT KILL is not a read command"),
    (["SLOWLOG", "RESET"], "SLOWLOG RESET is not a read command"),
    (["DEL", "k"], "DEL is not a read command"),
    (["KEYS", "*"], "use SCAN"),
    (["MONITOR"], "streams forever"),
    (["DEBUG", "SLEEP", "10"], "stall"),
    (["CONFIG"], "CONFIG is not a read command"),
    ([], "empty Redis command"),
])
def test_redis_commands_that_write_or_hurt_are_refused(argv, reason):
    refused = redis_is_read_only(argv)
    assert refused is not None and reason in refused


def test_http_and_kubernetes_probes_only_read():
    assert http_is_read_only("/health") is None
    assert http_is_read_only("GET https://status.stripe.com/api/v2/status.json") is None
    assert "GET only, not DELETE" in http_is_read_only("DELETE /api/cache")
    assert "path starting with /" in http_is_read_only("health")
    assert kubernetes_is_read_only("pods") is None and kubernetes_is_read_only("deployments/api") is None
    assert kubernetes_is_read_only("secrets") is not None
    assert kubernetes_is_read_only("pods/Not A Name") is not None
