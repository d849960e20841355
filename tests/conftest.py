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
