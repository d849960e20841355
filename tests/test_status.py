"""`incident-console status` as scripts use it: a subprocess, real servers."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psycopg
import pytest

from console.demo.servers import PostgresServer, RedisServer


def _status(config_path, *args: str) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "console", "status", "--config", str(config_path), *args],
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


@pytest.fixture(scope="module")
def servers():
    with PostgresServer(max_connections=40) as pg, RedisServer() as redis:
        yield pg, redis


def _config(tmp_path, pg, redis, redis_timeout=1.0):
    path = tmp_path / "c.yaml"
    path.write_text(f"""
postgres:
  - name: primary
    dsn: {pg.dsn()}
redis:
  - name: cache
    url: {redis.url}
    timeout: {redis_timeout}
""")
    return path


def test_json_reports_real_numbers(tmp_path, servers):
    pg, redis = servers
    idle = [psycopg.connect(pg.dsn()) for _ in range(25)]
    try:
        code, out, _ = _status(_config(tmp_path, pg, redis), "--json")
    finally:
        for conn in idle:
            conn.close()
    doc = json.loads(out)
    assert code == 0, out
    by_kind = {s["kind"]: s for s in doc["sources"]}
    pg_metrics = by_kind["postgres"]["metrics"]
    assert pg_metrics["connections_total"] == 25
    assert pg_metrics["connections_by_state"] == {"idle": 25}
    assert pg_metrics["max_connections"] == 40
    assert by_kind["redis"]["state"] == "ok" and by_kind["redis"]["metrics"]["maxclients"] > 0
    assert doc["checked_at"].endswith("Z")


def test_warning_exits_one(tmp_path, servers):
    pg, redis = servers
    held = [psycopg.connect(pg.dsn()) for _ in range(30)]  # 75 % of 40: past the 70 % warning
    try:
        code, out, _ = _status(_config(tmp_path, pg, redis), "--json")
    finally:
        for conn in held:
            conn.close()
    primary = json.loads(out)["sources"][0]
    assert (code, primary["state"]) == (1, "warning")
    assert primary["breaches"][0]["metric"] == "connections_ratio"


def test_hung_server_is_unreachable_within_its_timeout(tmp_path, servers):
    pg, redis = servers
    redis.pause()
    try:
        code, out, took = _status(_config(tmp_path, pg, redis, redis_timeout=1.0), "--json")
    finally:
        redis.resume()
    cache = [s for s in json.loads(out)["sources"] if s["kind"] == "redis"][0]
    assert code == 1
    assert cache["state"] == "unreachable" and "timed out" in cache["error"]
    # Python start-up is part of the measure; the limit is timeout + 1 s of polling.
    assert took < 1.0 + 1.0 + 2.0, took


def test_table_output_and_config_error_exit_two(tmp_path, servers):
    pg, redis = servers
    code, out, _ = _status(_config(tmp_path, pg, redis))
    assert code == 0 and "primary" in out and "● ok" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("redis:\n  - name: cache\n    url: 42\n")
    code, out, _ = _status(bad)
    assert code == 2 and f"{bad}:3: 'redis[0].url' must be a string, not int" in out
