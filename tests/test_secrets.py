"""Passwords and tokens in DSNs, URLs and headers never reach the screen,
`status`, the journal or the exports, not even in error messages once the
servers are gone. Mutating paths (typed confirmation, refused in read-only)
are each listed and proven in tests/test_runner.py
(test_every_mutating_path_is_covered_here and the two tests after it)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import psycopg
import redis as redis_sync

from console import config
from console.app import IncidentConsole
from console.incident.journal import Journal
from console.demo.servers import PostgresServer, RedisServer
from console.sources.base import State
from console.widgets.postgres import PostgresPane
from console.widgets.redis import RedisPane
from console.widgets.services import ServicesPane
from httpfaults import FaultServer, Reply
from screen import latest, screen_text, wait, widget_texts

SECRETS = ("PgS3cret-pw", "R3disS3cret", "HttpS3cret", "T0kenS3cret", "MetricsS3cret")


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "console", *args], capture_output=True, text=True,
                          timeout=timeout, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert "Traceback" not in done.stderr, done.stderr
    return done


async def test_secrets_stay_off_screen_status_journal_and_exports_even_when_servers_die(tmp_path):
    with PostgresServer(max_connections=10) as pg, RedisServer() as rds, \
            FaultServer({"/health": Reply(503, "down"), "/metrics": Reply(500, "no")}) as http:
        with psycopg.connect(pg.dsn(), autocommit=True) as admin:
            admin.execute("CREATE ROLE monitor LOGIN PASSWORD 'PgS3cret-pw'")
        redis_sync.Redis(host="127.0.0.1", port=rds.port).config_set("requirepass", "R3disS3cret")
        cfg_text = f"""
refresh: 0.3
postgres:
  - name: primary
    dsn: postgresql://monitor:PgS3cret-pw@127.0.0.1:{pg.port}/postgres?connect_timeout=2
    timeout: 1
redis:
  - name: cache
    url: redis://:R3disS3cret@127.0.0.1:{rds.port}/0
    timeout: 0.5
services:
  - name: api
    url: {http.url('/health', 'svc:HttpS3cret')}
    metrics: {http.url('/metrics', 'm:MetricsS3cret')}
    timeout: 1
    headers:
      X-Api-Key: T0kenS3cret
"""
        path = tmp_path / "secret.yaml"
        path.write_text(cfg_text)
        path.chmod(0o600)
        cfg = config.load(path)
        assert cfg.warnings == ()
        journal = Journal(tmp_path / "incident.json")
        app = IncidentConsole(cfg, journal=journal)
        async with app.run_test(size=(200, 60)) as pilot:
            pgp, rdp, svc = app.query_one(PostgresPane), app.query_one(RedisPane), app.query_one(ServicesPane)
            await wait(pilot, lambda: latest(pgp) and latest(pgp).state is State.OK
                       and latest(rdp) and latest(rdp).state is State.OK and latest(svc), what="all read")
            health = next(r for r in http.seen if r.path == "/health")
            assert health.headers["x-api-key"] == "T0kenS3cret"  # the secrets are really used
            assert health.headers["authorization"].startswith("Basic ")
            assert not leaks(screen_text(app))

            # The servers die: the error messages name them, never the passwords.
            await asyncio.to_thread(pg.stop, "immediate")
            await asyncio.to_thread(rds.stop)
            await wait(pilot, lambda: latest(pgp).state is State.UNREACHABLE
                       and latest(rdp).state is State.UNREACHABLE, what="both lost")
            await pilot.pause(1.0)  # reconnect attempts fail too
            for where, text in widget_texts(app).items():
                assert not leaks(text), where
            assert not leaks(screen_text(app))
            errors = " ".join(s.error or "" for s in app.session.latest.values())
            assert "127.0.0.1" in errors and not leaks(errors)
            await pilot.press("q")

        stored = repr([(e.kind, dict(e.data)) for e in Journal(journal.path).events()])
        assert "unreachable" in stored or "lost" in stored, stored[:500]  # the losses were journaled
        assert not leaks(stored)
        assert not leaks((tmp_path / "incident.json").read_text())

        for extra in ([], ["--json"]):
            done = run_cli("status", "--config", str(path), *extra)
            assert done.returncode == 1
            assert not leaks(done.stdout + done.stderr), done.stdout
            assert "127.0.0.1" in done.stdout
        for fmt in ("markdown", "json"):
            done = run_cli("export", "--incident", str(journal.path), "--format", fmt)
            assert done.returncode == 0 and not leaks(done.stdout)


def test_a_config_with_secrets_readable_by_others_is_warned_about_without_showing_them(tmp_path):
    path = tmp_path / "open.yaml"
    path.write_text("services:\n  - name: api\n    url: http://127.0.0.1:9/health\n"
                    "    headers:\n      Authorization: Bearer T0kenS3cret\n")
    path.chmod(0o644)
    done = run_cli("check", "--config", str(path))
    assert done.returncode == 0
    assert f"{path}:1: holds credentials and is readable by other users" in done.stderr
    assert not leaks(done.stdout + done.stderr)
    path.chmod(0o600)
    assert "readable by other users" not in run_cli("check", "--config", str(path)).stderr

    through_env = tmp_path / "env.yaml"
    through_env.write_text("postgres:\n  - name: p\n    dsn: postgresql://u:${PGPASSWORD}@127.0.0.1:9/db\n")
    through_env.chmod(0o644)
    done = subprocess.run([sys.executable, "-m", "console", "check", "--config", str(through_env)],
                          capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "PGPASSWORD": "PgS3cret-pw"})
    assert done.returncode == 0 and "readable by other users" not in done.stderr
    assert not leaks(done.stdout + done.stderr)
