"""Shared fixtures: real servers on loopback, started by the tests themselves."""

from __future__ import annotations

import pytest

from console.sandbox import PostgresServer, RedisServer


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
