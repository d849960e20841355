"""Connection strings as psql users write them: a key/value conninfo, an empty
DSN that defers to PG*, a service file, a pgpass file, Redis over a unix
socket. Each connects to a real server, ``check`` names where each part comes
from, and no password is ever printed."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from console import cli, config, secrets
from console.located import Invalid
from console.sources.base import State, bounded_poll

ROLE, PASSWORD = "ic_conninfo", "s3cret pass'w0rd\\x"
PG_VARS = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE",
           "PGSERVICEFILE", "PGPASSFILE", "PGSYSCONFDIR", "PGOPTIONS")


@pytest.fixture(scope="module")
def pg(pg_server):
    """The session's server, with a role that must give its password (scram)
    on TCP and on the socket; every other role keeps trust."""
    hba = pg_server.datadir / "pg_hba.conf"
    rules = (f"local all {ROLE} scram-sha-256\n"
             f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n")
    if rules not in hba.read_text():
        hba.write_text(rules + hba.read_text())
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(PASSWORD)))
        conn.execute("SELECT pg_reload_conf()")
    time.sleep(0.3)  # the postmaster rereads pg_hba.conf on SIGHUP
    with pytest.raises(psycopg.OperationalError):  # the password is really needed
        psycopg.connect(f"host=127.0.0.1 port={pg_server.port} user={ROLE} dbname=postgres", connect_timeout=3)
    return pg_server


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No PG* from the machine running the tests, and a home with no ~/.pgpass."""
    for var in PG_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    secrets.forget()
    yield monkeypatch
    secrets.forget()


def _connects(cfg) -> None:
    from console.sources.postgres import PostgresSource

    # Not in a test's event loop: `check` runs one of its own.
    asyncio.run(_polls_ok(PostgresSource(cfg.postgres[0])))


async def _polls_ok(source) -> None:
    try:
        snap = await bounded_poll(source)
    finally:
        await source.close()
    assert snap.state is State.OK, snap.error


def _check(path: Path, capsys) -> str:
    code = cli.main(["check", "--config", str(path)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 0, text
    return text


def _never_the_password(text: str) -> None:
    for piece in (PASSWORD, "s3cret", "w0rd"):
        assert piece not in text


def _config(tmp_path: Path, dsn: str) -> Path:
    path = tmp_path / "console.yaml"
    path.write_text(f"postgres:\n  - name: primary\n    dsn: \"{dsn}\"\n")
    path.chmod(0o600)
    return path


# ---- against the real server ----------------------------------------------------

def test_a_key_value_conninfo_connects_and_check_says_it_is_the_config_file(pg, clean_env, tmp_path, capsys):
    clean_env.setenv("IC_PASSWORD", PASSWORD)
    path = _config(tmp_path, f"host=127.0.0.1 port={pg.port} user={ROLE} dbname=postgres password=${{IC_PASSWORD}}")
    cfg = config.load(path)
    assert secrets.redact(f"x {PASSWORD} y") == "x *** y"
    _connects(cfg)
    out = _check(path, capsys)
    assert (f"postgres primary: host=127.0.0.1 (config file), port={pg.port} (config file), "
            f"user={ROLE} (config file), dbname=postgres (config file), password (config file)") in out
    _never_the_password(out)


def test_an_empty_dsn_takes_pg_variables(pg, clean_env, tmp_path, capsys):
    for var, value in {"PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "PGUSER": ROLE,
                       "PGDATABASE": "postgres", "PGPASSWORD": PASSWORD}.items():
        clean_env.setenv(var, value)
    path = _config(tmp_path, "")
    cfg = config.load(path)
    assert secrets.redact(PASSWORD) == "***"  # the environment's password is a secret too
    _connects(cfg)
    out = _check(path, capsys)
    assert (f"host=127.0.0.1 (environment PGHOST), port={pg.port} (environment PGPORT), "
            f"user={ROLE} (environment PGUSER), dbname=postgres (environment PGDATABASE), "
            f"password (environment PGPASSWORD)") in out
    _never_the_password(out)


def test_a_service_file_names_the_connection(pg, clean_env, tmp_path, capsys):
    services = tmp_path / "pg_service.conf"
    services.write_text(f"# ours\n[staging]\nhost=10.9.9.9\n\n[prod]\nhost=127.0.0.1\nport={pg.port}\n"
                        f"user={ROLE}\npassword={PASSWORD}\n")
    clean_env.setenv("PGSERVICEFILE", str(services))
    path = _config(tmp_path, "service=prod dbname=postgres")
    cfg = config.load(path)
    assert secrets.redact(PASSWORD) == "***"
    _connects(cfg)
    out = _check(path, capsys)
    origin = f"service file {services} [prod]"
    assert (f"service=prod (config file), host=127.0.0.1 ({origin}), port={pg.port} ({origin}), "
            f"user={ROLE} ({origin}), dbname=postgres (config file), password ({origin})") in out
    _never_the_password(out)


def test_a_pgpass_file_gives_the_password(pg, clean_env, tmp_path, capsys):
    pgpass = tmp_path / "pgpass"
    escaped = PASSWORD.replace("\\", "\\\\").replace(":", "\\:")
    pgpass.write_text(f"# host:port:db:user:password\n10.9.9.9:*:*:*:wrong\n127.0.0.1:{pg.port}:*:{ROLE}:{escaped}\n")
    pgpass.chmod(0o600)
    clean_env.setenv("PGPASSFILE", str(pgpass))
    clean_env.setenv("PGPORT", str(pg.port))
    path = _config(tmp_path, f"host=127.0.0.1 user={ROLE} dbname=postgres")
    cfg = config.load(path)
    assert secrets.redact(PASSWORD) == "***"
    _connects(cfg)
    out = _check(path, capsys)
    assert (f"host=127.0.0.1 (config file), port={pg.port} (environment PGPORT), user={ROLE} (config file), "
            f"dbname=postgres (config file), password (pgpass {pgpass} line 3)") in out
    _never_the_password(out)

    pgpass.chmod(0o644)  # libpq ignores a password file others can read: check says so
    out = _check(path, capsys)
    assert f"warning: postgres primary: pgpass {pgpass} is readable by others: libpq ignores it" in out
    assert "no password" in out


async def test_pgoptions_still_reaches_the_server_beside_our_statement_timeout(pg, clean_env, tmp_path):
    from console.sources.postgres import PostgresSource

    clean_env.setenv("PGOPTIONS", "-c work_mem=7MB")
    dsn = f"host=127.0.0.1 port={pg.port} dbname=postgres user=postgres"
    cfg = config.parse(f"postgres:\n  - name: p\n    dsn: {dsn}\n", "c.yaml")
    source = PostgresSource(cfg.postgres[0])
    try:
        rows = await source.probe_sql("SELECT current_setting('work_mem')", timeout=3)
    finally:
        await source.close()
    assert rows.rows == (("7MB",),)


async def test_redis_over_a_unix_socket(clean_env):
    from console.sources.redis import RedisSource

    root = Path(tempfile.mkdtemp(prefix="ic-sock-"))  # a unix socket path has at most 107 bytes
    sock = root / "redis.sock"
    server = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", "0", "--unixsocket",
                               str(sock), "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
                               "--requirepass", "redis-pw-1", "--dir", str(root)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        cfg = config.parse(f"redis:\n  - name: cache\n    url: unix://:${{REDIS_PASSWORD}}@{sock}?db=2\n", "c.yaml",
                           env={"REDIS_PASSWORD": "redis-pw-1"})
        assert secrets.redact("redis-pw-1") == "***"
        source = RedisSource(cfg.redis[0])
        assert source.db == 2
        await _polls_ok(source)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(root, ignore_errors=True)


# ---- the config, headless --------------------------------------------------------

ACCEPTED = ["", "service=prod", "host=db port=5432 user=monitor dbname=app",
            "host=/var/run/postgresql dbname=app", "host=db1,db2 port=5432,5433 target_session_attrs=read-write",
            "hostaddr=10.0.0.5 dbname=app", "postgresql://u@/app", "postgresql:///app",
            "postgresql://monitor@db/app?service=prod"]


@pytest.mark.parametrize("dsn", ACCEPTED)
def test_what_libpq_accepts_the_config_accepts(dsn, clean_env):
    cfg = config.parse(f"postgres:\n  - name: p\n    dsn: \"{dsn}\"\n    action_dsn: \"{dsn}\"\n", "c.yaml", env={})
    assert cfg.postgres[0].dsn == dsn and cfg.postgres[0].action_dsn == dsn


REFUSED = [
    ("host=db port=99999", "port must be a number from 1 to 65535"),
    ("hots=db", "unknown parameter 'hots' (did you mean 'host'?)"),
    ("host=db password=hunter two", "a word with no '=' after it; a value holding a space is written in single"),
    ("host=db password=hunter two=x", "an unknown parameter; a value holding a space"),
    ("host=db password='hunter", "unterminated quoted string"),
    ("hostaddr=db.internal", "hostaddr 'db.internal' is not an IP address"),
    ("mysql://u:hunter@db/app", "must be a postgresql:// URL, key=value pairs (host=… dbname=…) or empty"),
]


@pytest.mark.parametrize("dsn, message", REFUSED, ids=[r[0] for r in REFUSED])
def test_what_libpq_refuses_is_a_located_problem_that_never_quotes_the_password(dsn, message, clean_env):
    with pytest.raises(Invalid) as caught:
        config.parse(f"refresh: 2\npostgres:\n  - name: p\n    dsn: \"{dsn}\"\n", "c.yaml", env={})
    (problem,) = [str(p) for p in caught.value.problems]
    assert problem.startswith("c.yaml:4: 'postgres[0].dsn")
    assert message in problem
    assert "hunter" not in problem and "two" not in problem


def test_an_env_password_with_spaces_and_quotes_stays_one_value(clean_env):
    from psycopg.conninfo import conninfo_to_dict

    whole = "host=db user=u dbname=app"
    cfg = config.parse("postgres:\n  - name: p\n    dsn: ${PG_DSN} password=${PW}\n"
                       "    action_dsn: host=db user=admin password='${PW}'\n",
                       "c.yaml", env={"PW": PASSWORD, "PG_DSN": whole})
    assert conninfo_to_dict(cfg.postgres[0].dsn) == {"host": "db", "user": "u", "dbname": "app",
                                                     "password": PASSWORD}
    assert conninfo_to_dict(cfg.postgres[0].action_dsn)["password"] == PASSWORD
    assert secrets.redact(f"[{PASSWORD}]") == "[***]"


@pytest.mark.parametrize("written", ["password=literal-pw-42", "password = 'literal-pw-42'"])
def test_a_literal_key_value_password_is_a_secret_and_warned_about(written, clean_env, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(f"postgres:\n  - name: p\n    dsn: host=db user=u {written}\n")
    path.chmod(0o644)
    cfg = config.load(path)
    assert secrets.redact("literal-pw-42") == "***"
    assert any("readable by other users" in w for w in cfg.warnings)


def test_check_warns_when_the_service_is_nowhere(clean_env, tmp_path, capsys):
    clean_env.setenv("PGSERVICEFILE", str(tmp_path / "none.conf"))
    out = _check(_config(tmp_path, "service=nowhere connect_timeout=1 host=127.0.0.1 port=9"), capsys)
    assert "warning: postgres primary: service 'nowhere' is defined in none of" in out


# ---- libpq's complaints never quote the string ------------------------------------

HOSTILE = ['Qx7"Kv%%zzW9j', "Qx7'Kv Wj9\\", 'Qx7\\"Kv\\\\W9j', "Qx7 Kv9=Wj2 Zp4", "Qx7\nKv9Wj2",
           "Qx7ÄÖ€Kv9Wj😀", "Qx7%Kv9%ZZWj", "Qx7\"\"Kv9'Wj2'", "Qx7@Kv9/Wj2?Zp#4", "Qx7\tKv9\\'Wj2 \"Zp",
           "Qx7%00Kv9Wj", "[Qx7]Kv9:Wj2", 'hots=Qx7"Kv9', "Qx7 sslmdoe=Kv9", "Qx7%\"Kv9 zqvx=Wj2"]


def _written(password: str) -> list[str]:
    """The password as people write it into a DSN: raw, escaped, quoted."""
    from urllib.parse import quote

    quoted = "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return [f"postgresql://monitor:{password}@db.internal/app",
            f"postgresql://monitor:{quote(password, safe='')}@db.internal/app",
            f"postgresql://db.internal/app?user=monitor&password={password}",
            f"host=db.internal user=monitor password={password} dbname=app",
            f"host=db.internal user=monitor password={quoted} dbname=app",
            f"password={password}", f"password={quoted}"]


def _pieces(password: str) -> set[str]:
    return {password[i:i + 3] for i in range(len(password) - 2)}


@pytest.mark.parametrize("password", HOSTILE)
def test_no_piece_of_a_hostile_password_is_ever_shown(password, clean_env, tmp_path, capsys):
    import json

    for dsn in _written(password):
        path = tmp_path / "c.yaml"
        path.write_text(f"postgres:\n  - name: primary\n    dsn: {json.dumps(dsn)}\n    timeout: 0.5\n")
        path.chmod(0o600)
        cli.main(["check", "--config", str(path)])
        out = capsys.readouterr()
        try:
            config.parse(path.read_text(), "c.yaml", env={})
            raised = ""
        except Invalid as exc:
            raised = str(exc) + " ".join(str(p) for p in exc.problems)
        for text in (out.out + out.err, raised):
            text = text.replace(str(tmp_path), "")  # the test's name is in it
            shown = [piece for piece in _pieces(password) if piece in text]
            assert not shown, (dsn, shown, text)
        secrets.forget()


@pytest.mark.parametrize("dsn, named", [
    ("hots=db", "unknown parameter 'hots' (did you mean 'host'?)"),
    ("host=db sslmdoe=require password=x", "unknown parameter 'sslmdoe' (did you mean 'sslmode'?)"),
    ("postgresql://u@db/app?sslmdoe=require", "unknown parameter 'sslmdoe' (did you mean 'sslmode'?)"),
    ("host=db password=ab hots=1", "an unknown parameter; a value holding a space"),  # maybe "ab hots=1"
    ("host=db sslpassword=ab hots=1", "an unknown parameter; a value holding a space"),
    ('host=db hots"=1', "an unknown parameter; a value holding a space"),
    ("Host=db", "an unknown parameter; a value holding a space"),
    ("postgresql://u:pw@db/app?options=a@b&hots=1", "unknown parameter 'hots'"),
    ("postgresql://u:pw@db/app?hots=1&options=a@b", "an unknown URL query parameter"),
])
def test_an_unknown_parameter_is_named_only_where_no_password_can_be(dsn, named):
    from console import conninfo

    assert named in conninfo.problem(dsn)


@pytest.mark.parametrize("dsn, message", [
    ('postgresql://u:ab"cd%%zz@db/app', "invalid percent-encoding"),
    ("postgresql://u:ab%00cd@db/app", "a percent-encoded NUL byte"),
    ("postgresql://db/app?sslmode", "a URL query parameter with no '='"),
    ('postgresql://db/app?sslmode=a"b=c', "a URL query parameter with two '='"),
    ('postgresql://u:a"b@[::1/app', "no closing ']'"),
    ('postgresql://u:a"b@[]/app', "an empty IPv6 host address"),
    ('postgresql://u:a"b@[::1]"/app', "an unexpected character after an IPv6 host address"),
    ("host=db password='a\"b", "unterminated quoted string"),
])
def test_each_complaint_is_told_in_our_words(dsn, message):
    from console import conninfo

    problem = conninfo.problem(dsn)
    assert message in problem and '"' not in problem.replace("'\"'", "")


# ---- pgpass as libpq reads it -----------------------------------------------------

def _pgpass(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "pgpass"
    path.write_text(text)
    path.chmod(0o600)
    return {"PGPASSFILE": str(path), "HOME": str(tmp_path)}


def test_every_host_of_a_multi_host_connection_has_its_pgpass_password_known(clean_env, tmp_path):
    from console import conninfo

    env = _pgpass(tmp_path, "10.9.9.1:5432:d:u:first-pw-1\n127.0.0.1:5433:d:u:second-pw-2\n*:*:*:*:any-pw-3\n")
    resolved = conninfo.resolve("host=10.9.9.1,127.0.0.1 port=5432,5433 user=u dbname=d", env)
    assert [p for _, p in resolved.passwords] == ["first-pw-1", "second-pw-2"]
    assert (f"password (pgpass {tmp_path / 'pgpass'} line 1 for 10.9.9.1:5432, line 2 for 127.0.0.1:5433)"
            in resolved.describe())
    # hostaddr stands in for an empty host; one port serves every host
    resolved = conninfo.resolve("host=,db2 hostaddr=10.9.9.1,10.9.9.2 port=5432 user=u dbname=d", env)
    assert [p for _, p in resolved.passwords] == ["first-pw-1", "any-pw-3"]
    # the redaction knows them all once the config is read
    config.parse("postgres:\n  - name: p\n    dsn: host=10.9.9.1,127.0.0.1 port=5432,5433 user=u dbname=d\n",
                 "c.yaml", env=env)
    assert secrets.redact("first-pw-1 second-pw-2") == "*** ***"


@pytest.mark.parametrize("line, password", [
    ("127.0.0.1:9:\\*:u:literal-star", None),  # \* is a '*', not any database
    ("127.0.0.1:9:*:u:wildcard", "wildcard"),
    ("127.0.0.1:9:d*:u:prefix", None),
    ("127.0.0.1:9:d:u:a\\:b\\\\c:ignored", "a:b\\c"),
    ("127.0.0.1:9:d:u:trailing\\", "trailing\\"),  # libpq keeps a last lone backslash
    ("127.0.0.\\1:9:d:u:escaped-host", "escaped-host"),
    ("127.0.0.1:9:d:u", None),
    ("127.0.0.1:9:d:u:", ""),
    ("# 127.0.0.1:9:d:u:comment", None),
])
def test_pgpass_lines_match_as_libpq_matches_them(line, password, clean_env, tmp_path):
    from console import conninfo

    env = _pgpass(tmp_path, line + "\r\n")
    got = [p for _, p in conninfo.resolve("host=127.0.0.1 port=9 user=u dbname=d", env).passwords]
    assert got == ([] if password is None else [password])


def test_a_star_database_is_matched_by_a_literal_star_line(clean_env, tmp_path):
    from console import conninfo

    env = _pgpass(tmp_path, "127.0.0.1:9:\\*:u:for-star-db\n")
    assert [p for _, p in conninfo.resolve("host=127.0.0.1 port=9 user=u dbname=*", env).passwords] == ["for-star-db"]


# ---- our statement_timeout survives their options -----------------------------------

@pytest.mark.parametrize("where", ["PGOPTIONS", "dsn"])
@pytest.mark.parametrize("theirs", ["-c search_path=public\\", "-c search_path=public -c statement_timeout=0\\",
                                    "-c search_path=public\\\\\\"])
async def test_a_trailing_backslash_in_options_does_not_swallow_our_statement_timeout(pg, clean_env, where, theirs):
    from console.sources.postgres import PostgresSource

    dsn = f"host=127.0.0.1 port={pg.port} dbname=postgres user=postgres"
    if where == "PGOPTIONS":
        clean_env.setenv("PGOPTIONS", theirs)
    else:
        dsn += " options='" + theirs.replace("\\", "\\\\") + "'"
    cfg = config.parse(f"postgres:\n  - name: p\n    dsn: \"{dsn.replace(chr(92), chr(92) * 2)}\"\n    timeout: 3\n",
                       "c.yaml", env={})
    source = PostgresSource(cfg.postgres[0])
    try:
        assert await source._connect(time.monotonic() + 5) is None
        cur = await source._conn.execute("SELECT current_setting('statement_timeout'), current_setting('search_path')")
        timeout, search_path = await cur.fetchone()
    finally:
        await source.close()
    assert timeout == "2400ms"  # ours: 0.8 of the 3 s timeout
    assert search_path == ("public\\" if theirs.endswith("\\\\\\") else "public")
