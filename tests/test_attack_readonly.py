"""Issue 10, class 1: read-only probes that write.

Every attack runs twice against a real PostgreSQL, connected as a superuser
(the worst case: nothing in the server stops pg_terminate_backend): through
``check`` (a playbook holding the probe, refused with path:line) and through
the runner (the probe run on the live source). Victim sessions are open the
whole time; each test ends by asserting that they still answer and that no
row changed. A hypothesis test wraps the same writes in random obfuscations.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from console.config import PostgresTarget, parse
from console.playbooks import load_playbooks
from console.playbooks.model import Playbook, Step
from console.playbooks.runner import StepRunner
from console.readonly import redis_is_read_only, sql_is_read_only
from console.sources.base import ProbeError
from console.readings import role_warning
from console.sources.postgres import PostgresSource

BOOK = Playbook("attack", "Attack", "sev1", (), (), (), "playbooks/attack.yaml", 1)
VICTIM = "victim"

# Objects a database user (not the console) has created, each a way to run
# pg_terminate_backend or a write from a probe that looks innocent.
TRAPS = f"""
CREATE EXTENSION dblink;
CREATE TABLE ledger AS SELECT g AS id FROM generate_series(1, 3) AS g;
CREATE FUNCTION public.killer() RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    PERFORM pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
     WHERE application_name = '{VICTIM}';
    RETURN 0;
END $$;
-- A lookalike of an allowed built-in: with the default search_path an
-- unknown-typed literal picks this text overload over pg_catalog's.
CREATE FUNCTION public.pg_size_pretty(x text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN PERFORM public.killer(); RETURN x; END $$;
CREATE FUNCTION public.length(x text) RETURNS int LANGUAGE sql AS $$ SELECT public.killer() $$;
CREATE VIEW public.innocent AS SELECT public.killer() AS k;
CREATE DOMAIN public.safe_int AS int CHECK (public.killer() >= 0);
CREATE FUNCTION public.kill_eq(int, text) RETURNS bool LANGUAGE sql AS $$ SELECT public.killer() = 0 $$;
CREATE OPERATOR public.= (LEFTARG = int, RIGHTARG = text, FUNCTION = public.kill_eq);
CREATE TABLE guarded (id int);
ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
ALTER TABLE guarded FORCE ROW LEVEL SECURITY;
CREATE POLICY everyone ON guarded USING (public.killer() = 0);
CREATE TYPE mood AS ENUM ('calm');
CREATE FUNCTION public.mood_text(mood) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.killer(); RETURN 'calm'; END $$;
CREATE CAST (mood AS text) WITH FUNCTION public.mood_text(mood) AS IMPLICIT;
CREATE TABLE feelings AS SELECT 'calm'::mood AS m;
CREATE TABLE checked (id int, d public.safe_int);
CREATE FUNCTION public.drain(ledger) RETURNS int LANGUAGE sql AS $$ SELECT public.killer() $$;
CREATE SEQUENCE numbers;
"""

# (probe, who stops it): "syntax" = refused by the rule in check and in the
# runner; "run time" = accepted by the rule, refused by the source's catalog
# checks; "harmless" = runs (or fails) without touching anything.
ATTACKS = [
    # The issue's own: a comment ended by a carriage return.
    ("SELECT 1 -- look\r, pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'victim'",
     "syntax"),
    ("SELECT 1 --\rFROM pg_terminate_backend((SELECT pid FROM pg_stat_activity WHERE application_name = 'victim'))",
     "syntax"),
    ("SELECT dblink_exec('dbname=' || current_database(), 'DELETE FROM ledger')", "syntax"),
    ("SELECT * FROM dblink('dbname=' || current_database(), 'SELECT public.killer()') AS t(k int)", "syntax"),
    ("SELECT pg_size_pretty('1')", "harmless"),  # the lookalike wrapper is never chosen
    ("SELECT length('abc')", "harmless"),
    ("SELECT public.pg_size_pretty('1')", "syntax"),
    ("SELECT killer()", "syntax"),
    ("SELECT * FROM innocent", "run time"),
    ("SELECT k FROM public.innocent", "run time"),
    ("SELECT 1::safe_int", "harmless"),
    ("SELECT 1::public.safe_int", "syntax"),
    ("SELECT CAST(1 AS public.safe_int)", "syntax"),
    ("SELECT 1 = 'x'::text", "harmless"),
    ("SELECT 1 OPERATOR(public.=) 'x'::text", "syntax"),
    ("SELECT * FROM guarded", "run time"),
    # Found by a red-team pass: filling a row type from JSON runs its domain's CHECK.
    ("""SELECT json_populate_record(p, '{"d": 5}') FROM checked AS p""", "syntax"),
    ("""SELECT jsonb_populate_recordset(NULL::checked, '[{"d": 5}]')""", "syntax"),
    ("SELECT * FROM checked", "run time"),
    ("SELECT m || '' FROM feelings", "run time"),
    ("SELECT l.drain FROM ledger AS l", "harmless"),
    ("SELECT (pid).pg_terminate_backend FROM pg_stat_activity WHERE application_name = 'victim'", "syntax"),
    ("WITH a AS (WITH b AS (DELETE FROM ledger RETURNING id) SELECT * FROM b) SELECT * FROM a", "syntax"),
    ("WITH a AS (SELECT 1) INSERT INTO ledger SELECT 99 FROM a", "syntax"),
    ("SELECT $x$; DELETE FROM ledger; $x$", "harmless"),  # a dollar-quoted string, nothing more
    ("SELECT $x$ $x$; DELETE FROM ledger", "syntax"),
    ("SELECT 'pg_terminate_backend'::regproc", "harmless"),
    ("SELECT * FROM pg_terminate_backend((SELECT pid FROM pg_stat_activity WHERE application_name = 'victim'))",
     "syntax"),
    ("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'victim'",
     "syntax"),
    ('SELECT "PG_TERMINATE_BACKEND"(1)', "syntax"),  # a different (absent) name, refused all the same
    ('SELECT "pg_terminate_backend"(pid) FROM pg_stat_activity', "syntax"),
    ('SELECT U&"pg_terminate_backen\\0064"(pid) FROM pg_stat_activity', "syntax"),
    ("EXPLAIN ANALYSE SELECT public.killer()", "syntax"),
    ("EXPLAIN (ANALYZE) SELECT 1", "syntax"),
    ("EXPLAIN (COSTS OFF, ANALYZE TRUE) SELECT 1", "syntax"),
    ("explain analyze delete from ledger", "syntax"),
    ("EXPLAIN DELETE FROM ledger", "syntax"),
    ("COPY ledger TO STDOUT", "syntax"),
    ("COPY (SELECT 1) TO '/tmp/pwned'", "syntax"),
    ("SELECT * INTO stolen FROM ledger", "syntax"),
    ("SELECT * FROM ledger FOR UPDATE", "syntax"),
    ("SELECT * FROM ledger FOR KEY SHARE NOWAIT", "syntax"),
    ("SELECT set_config('default_transaction_read_only', 'off', false)", "syntax"),
    ("SELECT nextval('numbers')", "syntax"),
    ("SELECT pg_advisory_lock(1)", "syntax"),
    ("SELECT lo_import('/etc/passwd')", "syntax"),
    ("SELECT query_to_xml('delete from ledger returning 1', true, true, '')", "syntax"),
    ("SELECT pg_read_file('/etc/passwd')", "syntax"),
    ("SELECT pg_reload_conf()", "syntax"),
    ("SELECT txid_current()", "syntax"),
    ("CALL p()", "syntax"),
    ("DO $$ BEGIN PERFORM public.killer(); END $$", "syntax"),
    ("SELECT 1 /* ; */; DELETE FROM ledger", "syntax"),
    ("SELECT 1 /* a /* nested */ ; */; SELECT public.killer()", "syntax"),
    ("SELECT 1; COMMIT; DELETE FROM ledger", "syntax"),
    ("BEGIN; DELETE FROM ledger; COMMIT", "syntax"),
    ("SET ROLE postgres", "syntax"),
    ("SELECT * FROM ledger TABLESAMPLE system(50)", "syntax"),
    ("SELECT xmlelement(name a, public.killer())", "syntax"),
    ("VALUES ((SELECT public.killer()))", "syntax"),
    ("TABLE innocent", "run time"),
    ("SHOW search_path", "harmless"),
]


# ---- fixtures -----------------------------------------------------------------------

@pytest.fixture
def trapped(pg_server) -> str:
    """A database of this test's own, with every trap laid; its name."""
    name = "ro_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(pg_server.dsn(name), autocommit=True) as conn:
        conn.execute(TRAPS)
    yield name
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
async def victims(pg_server, trapped, sessions):
    """Two sessions that must survive every probe (one idle, one idle in a transaction)."""
    dsn = pg_server.dsn(trapped, application_name=VICTIM)
    idle = await sessions(dsn)
    in_tx = await sessions(dsn, autocommit=False)
    await in_tx.execute("SELECT 1")
    yield [idle, in_tx]


@pytest.fixture
async def source(pg_server, trapped):
    made = PostgresSource(PostgresTarget("primary", pg_server.dsn(trapped), 3.0))
    yield made
    await made.close()


async def assert_unharmed(pg_server, trapped, victims) -> None:
    for victim in victims:
        cursor = await victim.execute("SELECT 1")
        assert await cursor.fetchone() == (1,), "a victim session was terminated"
    with psycopg.connect(pg_server.dsn(trapped)) as conn:
        assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (3,)
        assert conn.execute("SELECT to_regclass('stolen')").fetchone() == (None,)
        assert conn.execute("SELECT last_value, is_called FROM numbers").fetchone() == (1, False)


def playbook_with(tmp_path: Path, query: str) -> Path:
    import yaml

    path = tmp_path / "attack.yaml"
    path.write_text(yaml.safe_dump({"id": "attack", "title": "Attack", "steps": [
        {"id": "look", "title": "Look", "kind": "probe", "probe": "sql", "source": "postgres",
         "query": query}]}, sort_keys=False))
    return path


def query_line(path: Path) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.lstrip().startswith("query:"))


# ---- every attack, through check and through the runner -------------------------------

@pytest.mark.parametrize("query, stopped_by", ATTACKS)
async def test_no_probe_can_write_through_check_or_the_runner(pg_server, trapped, victims, source, tmp_path,
                                                             query, stopped_by):
    path = playbook_with(tmp_path, query)
    books, problems = load_playbooks([path])
    refused_by_rule = sql_is_read_only(query)
    if stopped_by == "syntax":
        assert refused_by_rule is not None
        assert books == [] and len(problems) == 1
        assert str(problems[0]).startswith(f"{path}:{query_line(path)}: probe refused: ")
    else:
        assert refused_by_rule is None, refused_by_rule
        assert problems == [] and len(books) == 1

    runner = StepRunner(parse("refresh: 2\n"), {"primary": source})
    result = await runner.probe(BOOK, Step("look", "look", "probe", source="primary", probe="sql", query=query))

    if stopped_by in ("syntax", "run time"):
        assert not result.ok and result.error.startswith("refused: "), result
    await assert_unharmed(pg_server, trapped, victims)
    # The held connection is outside any transaction: the next poll reads.
    assert (await source.poll()).error is None


async def test_without_the_pinned_search_path_the_lookalike_would_have_killed(pg_server, trapped, victims):
    # The control experiment: the same probe, as PostgreSQL runs it by
    # default, inside BEGIN READ ONLY -- which stops none of it.
    async with await psycopg.AsyncConnection.connect(pg_server.dsn(trapped), autocommit=True) as conn:
        await conn.execute("BEGIN READ ONLY")
        await conn.execute("SELECT pg_size_pretty('1')")
        await conn.execute("ROLLBACK")
    for victim in victims:
        with pytest.raises(psycopg.OperationalError):
            await victim.execute("SELECT 1")


async def test_a_source_checks_by_itself_when_the_runner_is_bypassed(pg_server, trapped, victims, source):
    with pytest.raises(ProbeError, match="refused: SQL probe calls pg_terminate_backend"):
        await source.probe_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity", 2.0)
    with pytest.raises(ProbeError, match="refused: public.innocent is a view"):
        await source.probe_sql("SELECT * FROM innocent", 2.0)
    await assert_unharmed(pg_server, trapped, victims)


async def test_the_config_vouches_for_functions_and_views_by_name(pg_server, trapped, source):
    assert sql_is_read_only("SELECT public.killer()", ["public.killer"]) is None
    trusting = PostgresSource(PostgresTarget("primary", pg_server.dsn(trapped), 3.0, sql_views=("public.ledger_view",)))
    with psycopg.connect(pg_server.dsn(trapped), autocommit=True) as conn:
        conn.execute("CREATE VIEW ledger_view AS SELECT id FROM ledger")
    try:
        rows = await trusting.probe_sql("SELECT count(*) FROM ledger_view", 2.0)
        assert rows.rows == ((3,),)
    finally:
        await trusting.close()
    with pytest.raises(ProbeError, match="public.ledger_view is a view"):
        await source.probe_sql("SELECT count(*) FROM ledger_view", 2.0)


def test_the_config_key_is_validated_with_its_line():
    from console.located import Invalid

    with pytest.raises(Invalid, match=r"<config>:3: 'probes.sql_functions' entries must be"):
        parse("probes:\n  sql_functions:\n    - 'evil(); --'\n")


# ---- obfuscated writes, generated --------------------------------------------------------

SEPARATORS = st.sampled_from([" ", "  ", "\t", "\n", "\r", "\r\n", "/**/", "/* c */", "/* /* n */ */",
                              "-- c\r", "-- c\n", "--\r\n", " /* ; */ "])


def _case(word: str, flips: list[bool]) -> str:
    return "".join(c.upper() if f else c.lower() for c, f in zip(word, flips + [False] * len(word)))


@st.composite
def obfuscated_write(draw) -> str:
    pid = "(SELECT pid FROM pg_stat_activity WHERE application_name = 'victim' LIMIT 1)"
    name = draw(st.sampled_from(["pg_terminate_backend", "PG_TERMINATE_BACKEND", '"pg_terminate_backend"',
                                 "pg_catalog.pg_terminate_backend", 'pg_catalog."pg_terminate_backend"',
                                 "pg_cancel_backend", "killer", "public.killer", "pg_size_pretty"]))
    arg = draw(st.sampled_from([pid, f"({pid})::int", f"CAST({pid} AS int4)", f"({pid})::text", "'1'"]))
    call = f"{name}({arg})"
    shape = draw(st.sampled_from(["select", "from", "cte", "nested", "dml", "field", "paren"]))
    if shape == "select":
        tokens = ["SELECT", call]
    elif shape == "from":
        tokens = ["SELECT", "*", "FROM", call]
    elif shape == "cte":
        tokens = ["WITH", "w", "AS", "(", "SELECT", call, ")", "SELECT", "*", "FROM", "w"]
    elif shape == "nested":
        tokens = ["WITH", "a", "AS", "(", "WITH", "b", "AS", "(", "DELETE", "FROM", "ledger", "RETURNING", "id",
                  ")", "SELECT", "*", "FROM", "b", ")", "SELECT", "*", "FROM", "a"]
    elif shape == "dml":
        tokens = ["WITH", "w", "AS", "(", "INSERT", "INTO", "ledger", "VALUES", "(", "99", ")", "RETURNING", "1",
                  ")", "SELECT", "1"]
    elif shape == "field":
        tokens = ["SELECT", "(", pid, ")", ".", name.split(".")[-1]]
    else:
        tokens = ["SELECT", "(", "(", call, ")", ")"]
    out = []
    for token in tokens:
        if token.isalpha() and draw(st.booleans()):
            token = _case(token, draw(st.lists(st.booleans(), min_size=len(token), max_size=len(token))))
        out.append(token)
        out.append(draw(SEPARATORS) if token not in (".",) else "")
    return "".join(out).rstrip("-c \r\n")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=obfuscated_write())
def test_obfuscated_writes_are_refused_or_harmless(pg_server, trapped, query):
    async def attempt() -> None:
        victim = await psycopg.AsyncConnection.connect(pg_server.dsn(trapped, application_name=VICTIM),
                                                       autocommit=True)
        probing = PostgresSource(PostgresTarget("primary", pg_server.dsn(trapped), 3.0))
        try:
            try:
                await probing.probe_sql(query, 2.0)
                accepted = True
            except ProbeError:
                accepted = False
            if sql_is_read_only(query) is not None:
                assert not accepted, "the source ran what the rule refused"
            await assert_unharmed(pg_server, trapped, [victim])
        finally:
            await probing.close()
            await victim.close()

    asyncio.run(attempt())


# ---- defence in depth: the role, told -----------------------------------------------

async def test_a_superuser_role_is_reported_in_the_snapshot_and_by_check(pg_server, trapped, source, tmp_path):
    snap = await source.poll()
    assert snap.metrics["role"] == "postgres"
    assert snap.metrics["role_superuser"] is True and snap.metrics["role_can_signal_backends"] is True
    assert "role postgres is a superuser" in role_warning(snap.metrics)
    with psycopg.connect(pg_server.dsn(trapped), autocommit=True) as conn:
        conn.execute("CREATE ROLE watcher LOGIN; GRANT pg_monitor TO watcher")
    try:
        watcher = PostgresSource(PostgresTarget("primary", pg_server.dsn(trapped, user="watcher"), 3.0))
        calm = await watcher.poll()
        await watcher.close()
        assert calm.metrics["role_superuser"] is False and calm.metrics["role_can_signal_backends"] is False
        assert role_warning(calm.metrics) is None

        config = tmp_path / "console.yaml"
        config.write_text(f"postgres:\n  - name: primary\n    dsn: {pg_server.dsn(trapped)}\n"
                          f"  - name: away\n    dsn: postgresql://nobody@127.0.0.1:1/x\n"
                          f"  - name: calm\n    dsn: {pg_server.dsn(trapped, user='watcher')}\n"
                          f"playbooks: []\n")
        from console.cli import main

        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = await asyncio.to_thread(main, ["check", "--config", str(config)])
        assert code == 0
        warnings = [line for line in out.getvalue().splitlines() if line.startswith("warning:")]
        assert warnings == ["warning: postgres primary: role postgres is a superuser: probes are guarded by "
                            "the console alone; monitor with a role that has pg_monitor only"]
    finally:
        with psycopg.connect(pg_server.dsn(trapped), autocommit=True) as conn:
            conn.execute("DROP OWNED BY watcher; DROP ROLE watcher")


async def test_actions_run_as_the_action_role_when_one_is_configured(pg_server, trapped, victims):
    with psycopg.connect(pg_server.dsn(trapped), autocommit=True) as conn:
        conn.execute("CREATE ROLE watcher LOGIN; GRANT pg_monitor TO watcher")
    try:
        monitoring = PostgresSource(PostgresTarget("primary", pg_server.dsn(trapped, user="watcher"), 3.0,
                                                   action_dsn=pg_server.dsn(trapped)))
        rows = await monitoring.execute_action("SELECT current_user", [])
        assert rows.rows == (("postgres",),)
        await monitoring.close()
        plain = PostgresSource(PostgresTarget("primary", pg_server.dsn(trapped, user="watcher"), 3.0))
        rows = await plain.execute_action("SELECT current_user", [])
        assert rows.rows == (("watcher",),)
        await plain.close()
    finally:
        with psycopg.connect(pg_server.dsn(trapped), autocommit=True) as conn:
            conn.execute("DROP OWNED BY watcher; DROP ROLE watcher")


# ---- Redis: nothing on the allow-list hands back a secret --------------------------------

@pytest.mark.parametrize("argv", [
    ["CONFIG", "GET", "requirepass"], ["config", "get", "MASTERAUTH"], ["CONFIG", "GET", "*"],
    ["CONFIG", "GET", "*pass*"], ["CONFIG", "GET", "require?ass"], ["CONFIG", "GET", "[r]equirepass"],
    ["CONFIG", "GET", "maxmemory", "requirepass"], ["CONFIG", "GET", "masteruser"],
    ["CONFIG", "GET", "tls-key-file-pass"], ["CONFIG", "GET", "tls-client-key-file-pass"],
    ["CONFIG", "GET", "primaryauth"], ["CONFIG", "GET"], ["ACL", "LIST"], ["ACL", "GETUSER", "default"],
    ["AUTH", "x"], ["HELLO", "3", "AUTH", "default", "x"], ["EVAL", "return redis.call('config','get','*')", "0"],
    ["EVAL_RO", "return 1", "0"], ["FCALL_RO", "f", "0"], ["FUNCTION", "LIST"], ["SCRIPT", "LOAD", "x"],
    ["MODULE", "LIST"], ["DEBUG", "OBJECT", "k"], ["OBJECT", "HELP"], ["MONITOR"], ["SORT", "k", "STORE", "d"],
    ["GETDEL", "k"], ["GETEX", "k", "PERSIST"], ["BLPOP", "k", "0"], ["CLIENT", "KILL", "ID", "1"],
])
def test_redis_probes_reveal_no_secret_and_run_no_script(argv):
    assert redis_is_read_only(argv) is not None


async def test_config_get_of_a_secret_is_refused_by_the_runner_and_never_journaled(redis_server):
    import redis as redis_client

    from console.config import RedisTarget
    from console.sources.redis import RedisSource

    client = redis_client.Redis.from_url(redis_server.url)
    client.config_set("masterauth", "hunter2-secret")
    journal: list = []
    cache = RedisSource(RedisTarget("cache", redis_server.url, 2.0))
    try:
        runner = StepRunner(parse("refresh: 2\n"), {"cache": cache}, lambda *a, **k: journal.append((a, k)))
        for query in ("CONFIG GET masterauth", "CONFIG GET *", "CONFIG GET master*"):
            result = await runner.probe(BOOK, Step("look", "look", "probe", source="cache", probe="redis",
                                                   query=query))
            assert not result.ok and result.error.startswith("refused: ")
        ok = await runner.probe(BOOK, Step("look", "look", "probe", source="cache", probe="redis",
                                           query="CONFIG GET maxmemory"))
        assert ok.ok
        assert "hunter2-secret" not in repr(journal)
    finally:
        client.config_set("masterauth", "")
        await cache.close()
