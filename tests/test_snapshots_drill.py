"""SVG snapshots of drilling in (issue 12) at 120x40: the PostgreSQL lock
tree with its blast radius, and a crash-looping pod's previous logs read
through the real kubernetes client from the recorded API.

After an intended change: ``pytest tests/test_snapshots_drill.py --snapshot-update``
and look at the new SVGs before committing them."""

from __future__ import annotations

import asyncio

from console import config
from console.app import IncidentConsole
from console.screens.detail import DetailScreen
from test_drill_screen import DrillingSource
from test_layout import CONFIG, FROZEN, FrozenSource

SIZE = (120, 40)
LOCKS = [
    {"pid": 4785, "state": "idle in transaction", "xact_s": 312.0, "user": "migrator",
     "application": "schema-migration", "client": "10.0.4.7:51522", "blocked_by": [],
     "query": "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"},
    {"pid": 4786, "state": "active", "query_s": 301.0, "user": "checkout", "application": "checkout-api",
     "client": "10.0.2.5:40112", "blocked_by": [4785], "wait_event": "relation",
     "query": "SELECT count(*) FROM orders WHERE status = 'paid'"},
    {"pid": 4790, "state": "active", "query_s": 120.0, "user": "checkout", "application": "checkout-api",
     "client": "10.0.2.6:40118", "blocked_by": [4786],
     "query": "UPDATE orders SET status = 'shipped' WHERE id = $1"},
    {"pid": 4791, "state": "active", "query_s": 42.0, "user": "report", "application": "\x1b[31m[red]reporting",
     "client": "10.0.3.1:39000", "blocked_by": [4785], "query": "SELECT * FROM orders\x07 -- [bold]x[/bold]"},
]
SERVICES = """services:
  - name: checkout-api
    url: http://127.0.0.1:9/health
  - name: ops-tools
    url: http://127.0.0.1:9/health
    application_names: [schema-migration]
"""


def lock_tree_app() -> IncidentConsole:
    pg = DrillingSource("postgres", "primary", metrics={
        "connections_total": 4, "max_connections": 40, "reserved_connections": 3, "usable_connections": 37,
        "connections_ratio": 0.11, "connections_by_state": {"active": 3, "idle in transaction": 1},
        "blocked_sessions": 3, "longest_transaction_s": 312.0}, details={"sessions": LOCKS})
    sources = [FrozenSource("http", "checkout-api", metrics={"status_code": 503, "latency_ms": 2012.0}),
               FrozenSource("errors", "checkout-api", metrics={"error_ratio": 0.31, "request_rate": 41.0}),
               pg, FrozenSource("redis", "cache", metrics={"connected_clients": 5})]
    cfg = config.parse(CONFIG + SERVICES, "t.yaml", env={})
    return IncidentConsole(cfg, sources=sources, clock=lambda: FROZEN)


async def _until(pilot, predicate, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not within {timeout}s"
        await pilot.pause(0.05)


def test_postgres_lock_tree(snap_compare):
    async def run_before(pilot):
        app = pilot.app
        await _until(pilot, lambda: len(app.session.latest) == 4 and app.session.desk is not None, "readings")
        await pilot.press("3", "L", "z")
        await pilot.pause(0.2)
        app.clear_notifications()
        app._tick()
        await pilot.pause()

    assert snap_compare(lock_tree_app(), terminal_size=SIZE, run_before=run_before)


def test_crash_looping_pods_previous_logs(snap_compare, fake, tmp_path):
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", context="test", namespace="app")
    cfg = config.parse(f"refresh: 3600\nkubernetes:\n  context: test\n  namespaces: [app]\n"
                       f"  kubeconfig: {kubeconfig}\n  timeout: 2\n", "k8s.yaml", env={})

    async def run_before(pilot):
        app = pilot.app
        await _until(pilot, lambda: app.session.latest and app.session.runner is not None, "namespace read")
        await pilot.press("1", "down", "l")
        await _until(pilot, lambda: isinstance(app.screen, DetailScreen), "logs opened")
        await pilot.pause(0.3)
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(IncidentConsole(cfg, clock=lambda: FROZEN), terminal_size=SIZE, run_before=run_before)
