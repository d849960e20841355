"""Shared fixtures: real servers on loopback, started by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.demo.kubefake import KubeFake
from console.demo.servers import PostgresServer, RedisServer

# Recorded Kubernetes API answers, shipped with the demo.
RECORDED = Path(__file__).resolve().parent.parent / "console" / "demo" / "k8s"


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL cluster for the session; tests that break it start their own."""
    server = PostgresServer(max_connections=40).start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def fake():
    """A Kubernetes API answering the recorded responses."""
    server = KubeFake(RECORDED).start()
    yield server
    server.stop()


@pytest.fixture
async def sessions():
    """Opens extra client connections (the load the console watches)."""
    import psycopg

    opened: list = []

    async def connect(dsn: str, autocommit: bool = True):
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=autocommit)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        await conn.close()


# ---- markers: a quick subset for work in progress -----------------------------
# `-m quick` runs what needs no server, no subprocess storm and no kill -9 loop
# (under a minute); the full suite runs everything. A module that starts real
# servers anywhere is `servers` as a whole: cheaper to keep right than per test.
_SERVER_WORDS = ("PostgresServer", "RedisServer", "DemoSandbox", "pg_server", "redis_server", "KubeFake",
                 "FaultServer", "prometheus", "create_subprocess_exec", "subprocess.run")


def pytest_collection_modifyitems(config, items):
    texts: dict[str, str] = {}
    for item in items:
        path = str(item.path)
        if path not in texts:
            texts[path] = Path(path).read_text(encoding="utf-8")
        if any(word in texts[path] for word in _SERVER_WORDS) or {"pg_server", "redis_server", "fake"} & set(
                item.fixturenames):
            item.add_marker(pytest.mark.servers)
        if not any(m.name in ("servers", "slow") for m in item.iter_markers()):
            item.add_marker(pytest.mark.quick)


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs that can really fill up (needs mount privileges)."""
    from disks import mounted_small_disk

    yield from mounted_small_disk(tmp_path / "small")
