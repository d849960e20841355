"""An attacker's look for configured secrets in everything a user or a file can see.

The password holds every character that breaks a URL or a DSN (``@ : / % # ?``,
a space, non-ASCII), comes from ``${ENV}``, and is really used against real
PostgreSQL (scram), Redis (requirepass) and HTTP servers, which then echo it
back in every way they can: a failed login, an unresolvable host, a SQL probe
selecting it (raw, base64 of ``user:password``, hex), a Redis value, an HTTP
service echoing our request headers (Basic auth, X-Api-Key). The search runs
over the screen, ``status`` and ``status --json``, the journal's bytes on disk
and both exports, for every encoding computed here independently of
:mod:`console.secrets`; and each channel is shown to leak when nothing is
registered, so the search can fail.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import psycopg
import pytest
import redis as redis_sync

from console import config, secrets
from console.demo.servers import PostgresServer, RedisServer
from console.incident.export import journal_json, postmortem_markdown
from console.incident.journal import Journal
from console.playbooks.model import Playbook, Step
from console.playbooks.runner import StepRunner
from console.sources import build_sources, close_all
from console.sources.base import State
from console.sources.http import HealthCheck, fetch, new_client
from console.text import inert
from httpfaults import Fault, FaultServer, Redirect, Reply
from screen import screen_text, wait, widget_texts

PW = "Pa@s:s/w%rd#?x y-é✓"          # the PostgreSQL and Redis password
SVC_PW = "Svc@p/ss w%rd:é"           # an HTTP service's userinfo password
API_KEY = "K3y@api/%23 +=-token"      # a configured X-Api-Key (HTTP headers are ASCII)
USER = "monitor"
BOOK = Playbook("leak", "Leak hunt", "sev2", (), (), (), "playbooks/leak.yaml", 1)


def encodings(secret: str, user: str | None = None) -> set[str]:
    """Every way ``secret`` may travel, written out here (not taken from
    console.secrets), so a form the redaction forgets fails a test."""
    raw = secret.encode()
    out = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret), quote(secret, safe="/:@"),
           quote(secret).lower(), quote_plus(secret).lower(),
           json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
           repr(secret)[1:-1], str(raw)[2:-1], html.escape(secret), raw.hex(), raw.hex().upper()}
    blobs = [raw, b":" + raw] + ([f"{user}:{secret}".encode()] if user else [])
    for blob in blobs:
        for b64 in (base64.b64encode(blob), base64.urlsafe_b64encode(blob)):
            out |= {b64.decode(), b64.decode().rstrip("=")}
    return out


ALL_FORMS = encodings(PW, USER) | encodings(PW) | encodings(SVC_PW, "svc") | encodings(API_KEY)


def leaks(text: str | bytes) -> set[str]:
    if isinstance(text, bytes):
        found = {f for f in ALL_FORMS if f.encode() in text}
        return found | leaks(text.decode("utf-8", errors="replace"))
    return {f for f in ALL_FORMS if f in text}


@pytest.fixture(autouse=True)
def fresh_registry():
    secrets.forget()
    yield
    secrets.forget()


# ---- the registry itself ----------------------------------------------------------

@pytest.mark.parametrize("form", sorted(encodings(PW, USER)))
def test_every_encoding_of_a_registered_secret_is_masked(form):
    planted = f"error: {form} (from the server)"
    assert leaks(planted)  # the search finds it when nothing is registered
    assert secrets.redact(planted) == planted
    secrets.add_url(f"postgresql://{USER}:{quote(PW, safe='')}@db.internal:5432/app")
    assert not leaks(secrets.redact(planted)), secrets.redact(planted)
    assert secrets.redact(planted).startswith("error: ")


def test_short_secrets_are_not_registered_but_still_masked_in_their_url():
    secrets.add_url("redis://:ab1@h:6379/0")
    assert len(secrets.REGISTRY) == 0
    assert secrets.redact("ab1 cab1") == "ab1 cab1"  # would turn every "ab1" into ***
    assert config.redact("redis://:ab1@h:6379/0") == "redis://:***@h:6379/0"


def test_redaction_of_screen_sized_text_is_fast():
    import time

    for i in range(20):
        secrets.add(f"secret-number-{i:03d}-{PW}")
    text = "nothing to see here " * 100
    started = time.perf_counter()
    for _ in range(200):
        inert(text)
    assert (time.perf_counter() - started) / 200 < 0.005


def test_redact_reads_urls_and_dsns_as_their_libraries_do():
    assert config.redact("postgresql://u:S3cret@word@[::1]:5432/db") == "postgresql://u:***@[::1]:5432/db"
    assert config.redact("host=h password='a b\\'c' dbname=x") == "host=h password=*** dbname=x"
    assert config.redact("postgresql://u:ab/cd@h/db") == "postgresql://u:***@h/db"
    assert config.redact("http://h:8080/x?mail=a@b") == "http://h:8080/x?mail=a@b"
    assert config.redact("postgresql://u@h/db?password=S3cretQ") == "postgresql://u@h/db?password=***"


# ---- the config -------------------------------------------------------------------

def test_a_secret_from_env_is_escaped_into_the_url_and_read_back_exactly():
    from psycopg.conninfo import conninfo_to_dict
    from redis.connection import parse_url

    cfg = config.parse(f"postgres:\n  - name: p\n    dsn: postgresql://{USER}:${{MON_PASSWORD}}@db:5432/app\n"
                       "redis:\n  - name: r\n    url: redis://:${REDIS_PASSWORD}@cache:6379/0\n",
                       env={"MON_PASSWORD": PW, "REDIS_PASSWORD": PW})
    pg = conninfo_to_dict(cfg.postgres[0].dsn)
    assert (pg["password"], pg["host"]) == (PW, "db")
    assert (parse_url(cfg.redis[0].url)["password"], parse_url(cfg.redis[0].url)["host"]) == (PW, "cache")
    assert not leaks(secrets.redact(f"{cfg.postgres[0].dsn} {cfg.redis[0].url}"))


def test_a_literal_password_with_a_raw_at_is_refused_without_being_shown(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(f"postgres:\n  - name: p\n    dsn: postgresql://{USER}:S3cret@word@127.0.0.1:5432/app\n")
    path.chmod(0o600)
    done = _cli("check", "--config", str(path))
    assert done.returncode == 2
    assert "URL-escape it" in done.stdout + done.stderr
    assert "S3cret" not in done.stdout + done.stderr and "word@" not in done.stdout + done.stderr


# ---- real servers that echo the secret back ---------------------------------------------

class EchoHeaders(Fault):
    """A broken service that prints the request it got, headers and all."""

    def respond(self, handler) -> None:
        body = "\n".join(f"{k}: {v}" for k, v in handler.headers.items()).encode()
        handler.send_response(500)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


@pytest.fixture(scope="module")
def scram_pg():
    server = PostgresServer(max_connections=20).start()
    try:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute("SET password_encryption = 'scram-sha-256'")
            admin.execute(psycopg.sql.SQL("CREATE ROLE monitor LOGIN PASSWORD {}").format(psycopg.sql.Literal(PW)))
        hba = server.datadir / "pg_hba.conf"
        hba.write_text("local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
                       "host all all 127.0.0.1/32 scram-sha-256\n")
        server._run("pg_ctl", "-D", str(server.datadir), "reload")
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def locked_redis():
    server = RedisServer().start()
    client = redis_sync.Redis(host="127.0.0.1", port=server.port)
    client.set("leak", PW)
    client.config_set("requirepass", PW)
    yield server
    server.cleanup()


def _config(tmp_path: Path, pg: PostgresServer, rds: RedisServer, http: FaultServer) -> Path:
    path = tmp_path / "attack.yaml"
    path.write_text(f"""
refresh: 0.3
postgres:
  - name: primary
    dsn: postgresql://{USER}:${{MON_PASSWORD}}@127.0.0.1:{pg.port}/postgres?connect_timeout=2
    timeout: 2
  - name: wrongpw
    dsn: postgresql://{USER}:${{BAD_PASSWORD}}@127.0.0.1:{pg.port}/postgres?connect_timeout=2
    timeout: 2
  - name: nohost
    dsn: postgresql://{USER}:${{MON_PASSWORD}}@no-such-host.invalid:{pg.port}/postgres?connect_timeout=2
    timeout: 2
redis:
  - name: cache
    url: redis://:${{REDIS_PASSWORD}}@127.0.0.1:{rds.port}/0
  - name: badcache
    url: redis://:${{BAD_PASSWORD}}@127.0.0.1:{rds.port}/0
services:
  - name: echo
    url: http://svc:${{SVC_PASSWORD}}@127.0.0.1:{http.port}/echo
    timeout: 2
    headers:
      X-Api-Key: ${{API_KEY}}
""")
    path.chmod(0o600)
    return path


ENV = {"MON_PASSWORD": PW, "REDIS_PASSWORD": PW, "BAD_PASSWORD": PW + "-wrong",
       "SVC_PASSWORD": SVC_PW, "API_KEY": API_KEY}
PROBES = (
    Step("raw", "select it", "probe", source="primary", probe="sql",
         query=f"SELECT '{PW}'"),
    Step("b64", "select base64", "probe", source="primary", probe="sql",
         query=f"SELECT encode(convert_to('{USER}:{PW}', 'UTF8'), 'base64')"),
    Step("hex", "select hex", "probe", source="primary", probe="sql",
         query=f"SELECT encode(convert_to('{PW}', 'UTF8'), 'hex')"),
    Step("get", "redis get", "probe", source="cache", probe="redis", query="GET leak"),
    Step("echo", "http echo", "probe", source="echo", probe="http", query="GET /echo"),
)


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "console", *args], capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
                               **(env or {})})
    assert "Traceback" not in done.stderr, done.stderr
    return done


async def _run_probes(cfg, record) -> list:
    sources = build_sources(cfg)
    runner = StepRunner(cfg, {s.name: s for s in sources}, record)
    try:
        return [await runner.probe(BOOK, step) for step in PROBES]
    finally:
        await close_all(sources)


async def test_no_channel_shows_a_secret_the_servers_echo_back(tmp_path, monkeypatch, scram_pg, locked_redis):
    from console.app import IncidentConsole

    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    with FaultServer({"/echo": EchoHeaders()}) as http:
        path = _config(tmp_path, scram_pg, locked_redis, http)
        cfg = config.load(path)
        journal = Journal(tmp_path / "incident.json")
        app = IncidentConsole(cfg, journal=journal)
        async with app.run_test(size=(200, 60)) as pilot:
            def state(name):
                snap = next((s for s in app.session.latest.values() if s.name == name), None)
                return snap and snap.state
            await wait(pilot, lambda: state("primary") is State.OK and state("cache") is State.OK
                       and state("wrongpw") is State.UNREACHABLE and state("nohost") is State.UNREACHABLE
                       and state("badcache") is State.UNREACHABLE and state("echo") is not None,
                       timeout=20, what="every source read")
            results = await _run_probes(cfg, journal.append)
            await pilot.pause(0.5)
            seen = {r.path: r.headers for r in http.seen}
            # The secrets were really used, and really echoed back to us.
            assert seen["/echo"]["x-api-key"] == API_KEY
            assert seen["/echo"]["authorization"] == "Basic " + base64.b64encode(f"svc:{SVC_PW}".encode()).decode()
            assert [r.ok for r in results] == [True, True, True, True, False], results
            assert "*** " in results[0].output or "***" in results[0].output
            errors = {s.name: s.error for s in app.session.latest.values()}
            assert "password authentication failed" in (errors["wrongpw"] or ""), errors
            assert "no-such-host.invalid" in (errors["nohost"] or ""), errors
            assert not leaks(screen_text(app))
            for where, text in widget_texts(app).items():
                assert not leaks(text), where
            await pilot.press("q")

    raw = (tmp_path / "incident.json").read_bytes()
    assert b"probe" in raw and b"***" in raw
    assert not leaks(raw), leaks(raw)
    events = Journal(journal.path).events()
    assert not leaks(journal_json(events)) and not leaks(postmortem_markdown(events, events[-1].at))

    cli_env = {**ENV, "INCIDENT_CONSOLE_CONFIG": str(path)}
    for extra in ([], ["--json"]):
        done = _cli("status", "--config", str(path), *extra, env=cli_env)
        assert done.returncode == 1 and "127.0.0.1" in done.stdout
        assert not leaks(done.stdout + done.stderr), leaks(done.stdout + done.stderr)
    doc = json.loads(done.stdout)
    assert {s["name"]: s["state"] for s in doc["sources"]}["primary"] == "ok"
    for fmt in ("markdown", "json"):
        done = _cli("export", "--incident", str(journal.path), "--format", fmt, env=cli_env)
        assert done.returncode == 0 and not leaks(done.stdout + done.stderr)
        out = tmp_path / f"export.{fmt}"
        assert _cli("export", "--incident", str(journal.path), "--format", fmt, "-o", str(out),
                    env=cli_env).returncode == 0
        assert not leaks(out.read_bytes())


# ---- proof that the search can fail ---------------------------------------------------------

async def test_with_nothing_registered_the_same_channels_leak(tmp_path, monkeypatch, scram_pg, locked_redis):
    """The same probes with registration switched off: the search finds the
    secret on disk, in the exports and on the way to the screen."""
    monkeypatch.setattr(secrets, "add", lambda value, user=None: None)
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    with FaultServer({"/echo": EchoHeaders()}) as http:
        cfg = config.load(_config(tmp_path, scram_pg, locked_redis, http))
        journal = Journal(tmp_path / "incident.json")
        results = await _run_probes(cfg, journal.append)
    assert len(secrets.REGISTRY) == 0
    assert PW in results[0].output and PW in inert(results[0].output, 4000)
    raw = (tmp_path / "incident.json").read_bytes()
    assert PW.encode() in raw or json.dumps(PW)[1:-1].encode() in raw
    assert base64.b64encode(f"{USER}:{PW}".encode()).decode() in leaks(raw)
    assert leaks(journal_json(journal.events()))
    journal.close()
    # An export that does not know the config shows what an old journal holds;
    # one that loads the config (the console's own) masks it.
    secrets_env = {**ENV}
    assert leaks(_cli("export", "--incident", str(journal.path), "--format", "json").stdout)
    known = _cli("export", "--incident", str(journal.path), "--format", "json",
                 env={**secrets_env, "INCIDENT_CONSOLE_CONFIG": str(tmp_path / "attack.yaml")})
    assert known.returncode == 0 and not leaks(known.stdout), leaks(known.stdout)


# ---- configured headers stay with their origin ---------------------------------------------

async def test_configured_headers_do_not_follow_a_redirect_to_another_origin():
    with FaultServer({"/landing": Reply(200, "ok")}) as elsewhere, \
            FaultServer({"/health": Redirect(elsewhere.url("/landing")), "/here": Reply(200, "ok"),
                         "/local": Redirect("/here")}) as home:
        target = config.ServiceTarget("api", home.url("/health", "svc:S3rvicePw"),
                                      headers=(("X-Api-Key", API_KEY), ("Authorization-Token", "Tok3nValue")))
        check = HealthCheck(target)
        try:
            snap = await check.poll()
        finally:
            await check.close()
        assert snap.state is State.OK
        assert [s.path for s in elsewhere.seen] == ["/landing"]
        got = elsewhere.seen[0].headers
        assert "x-api-key" not in got and "authorization-token" not in got and "authorization" not in got, got
        assert home.seen[0].headers["x-api-key"] == API_KEY

        # On the same origin, they go along.
        async with new_client() as client:
            await fetch(client, home.url("/local"), timeout=2, headers=target.headers)
        assert home.seen[-1].path == "/here" and home.seen[-1].headers["x-api-key"] == API_KEY


async def test_an_http_probe_redirected_elsewhere_does_not_take_the_services_headers(tmp_path):
    with FaultServer({"/landing": Reply(200, "ok")}) as elsewhere, \
            FaultServer({"/health": Reply(200, "ok"), "/go": Redirect(elsewhere.url("/landing"))}) as home:
        cfg = config.parse(f"services:\n  - name: api\n    url: {home.url('/health')}\n"
                           f"    headers:\n      X-Api-Key: {API_KEY}\n")
        sources = build_sources(cfg)
        runner = StepRunner(cfg, {s.name: s for s in sources})
        try:
            result = await runner.probe(BOOK, Step("go", "go", "probe", source="api", probe="http",
                                                   query="GET /go"))
        finally:
            await close_all(sources)
        assert result.ok, result
        assert home.seen[-1].headers["x-api-key"] == API_KEY
        assert "x-api-key" not in elsewhere.seen[-1].headers


@pytest.mark.parametrize("limit", [20, 80, 400, 500])
def test_a_long_secret_cut_by_the_screen_leaves_no_piece_of_itself(limit):
    """Found by a red-team pass: the screen's cut fell inside the last copy
    of a long token, whose prefix no form matches, and masking the copies
    before it pulled that prefix into view."""
    from console.text import inert

    token = "eyJ" + "A1b2C3d4" * 112
    secrets.add(token)
    seen = inert(f"Authorization: Bearer {token}\nCookie: session={token}\nX-Token: {token}", limit)
    assert not any(token[:k] in seen for k in range(6, len(token))), seen
    assert seen.startswith("Authorization: Bear")  # the text around it still shows
