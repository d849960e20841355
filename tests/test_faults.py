"""Faults against real servers, with the whole console running headless.

Each fault is driven while the app runs: the faulty pane must say what is
wrong, the other panes must keep updating and keys must keep answering, and
the pane must recover by itself once the fault clears. The sources' own
behaviour under each fault is tested in tests/test_source_*.py; the journal's
directory vanishing under the app is in tests/test_app_journal.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import psycopg
import pytest
import redis as redis_sync

from console import config
from console.app import IncidentConsole
from console.demo.kubefake import KubeFake
from console.demo.servers import PostgresServer, RedisServer
from console.sources.base import State
from console.widgets.error_rates import ErrorRatesPane
from console.widgets.postgres import PostgresPane
from console.widgets.redis import RedisPane
from console.widgets.services import ServicesPane
from httpfaults import FaultServer, Garbage, Hang, Huge, Redirect, Reply, Reset
from screen import latest, live_yaml, screen_text, wait

RECORDED_K8S = os.path.join(os.path.dirname(__file__), "..", "console", "demo", "k8s")
SURVIVED: list[str] = []  # every fault the console came through, for the report


async def keeps_going(pilot, app, other, key: str) -> None:
    """The rest of the screen updates and the keyboard answers."""
    seen = latest(other).taken_at
    await wait(pilot, lambda: latest(other).taken_at > seen, what=f"{other.id} updating")
    await pilot.press(key)
    assert app.focused is other.table
    assert app.is_running and app._exception is None


async def status(path, *extra: str) -> tuple[int, str]:
    """``incident-console status --json`` in its own process, as a script runs it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "console", "status", "--config", str(path), "--json", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert "Traceback" not in err.decode()
    return proc.returncode, out.decode()


def survived(fault: str) -> None:
    SURVIVED.append(fault)


# ---- PostgreSQL -----------------------------------------------------------------

async def test_postgres_locks_full_server_and_restart_with_the_console_running(redis_server, tmp_path):
    with PostgresServer(max_connections=8) as server:
        cfg_text = f"""
refresh: 0.3
postgres:
  - name: primary
    dsn: {server.dsn()}
    timeout: 2
redis:
  - name: cache
    url: {redis_server.url}
"""
        cfg = config.parse(cfg_text, "pg.yaml", env={})
        with psycopg.connect(server.dsn(), autocommit=True) as setup:
            setup.execute("CREATE TABLE orders (id int primary key, n int)")
            setup.execute("INSERT INTO orders VALUES (1, 0)")
        app = IncidentConsole(cfg)
        opened: list[psycopg.Connection] = []
        try:
            async with app.run_test(size=(160, 48)) as pilot:
                pg, rds = app.query_one(PostgresPane), app.query_one(RedisPane)
                await wait(pilot, lambda: latest(pg) and latest(pg).state is State.OK and latest(rds))

                # A lock held so another session blocks: both shown, blocker named.
                holder = psycopg.connect(server.dsn(application_name="holder"))
                opened.append(holder)
                holder.execute("UPDATE orders SET n = n + 1 WHERE id = 1")
                waiter = await psycopg.AsyncConnection.connect(server.dsn(application_name="waiter"),
                                                               autocommit=True)
                blocked = asyncio.create_task(waiter.execute("UPDATE orders SET n = n + 1 WHERE id = 1"))
                holder_pid, waiter_pid = holder.info.backend_pid, waiter.info.backend_pid
                await wait(pilot, lambda: latest(pg).metrics["blocked_sessions"] == 1, what="blocked session")
                await pilot.pause(0.1)
                row = pg.table.get_row(f"postgres:primary:session/{waiter_pid}")
                assert row[3].plain == str(holder_pid)  # the Blocker column names the holder
                assert pg.table.get_row(f"postgres:primary:session/{holder_pid}")[1].plain == "idle in tx"
                assert "blocked 1" in str(pg.query_one(".summary").render())
                assert f"{waiter_pid}" in screen_text(app)
                holder.rollback()
                await blocked
                await waiter.close()
                await wait(pilot, lambda: latest(pg).metrics["blocked_sessions"] == 0)
                survived("postgres: lock held, others blocked")

                # max_connections: the held connection keeps reporting; a newcomer
                # (here `incident-console status`) fails fast with a clear message.
                with pytest.raises(psycopg.OperationalError, match="too many clients"):
                    for _ in range(10):
                        opened.append(psycopg.connect(server.dsn(application_name="filler")))
                await wait(pilot, lambda: latest(pg).metrics["connections_total"] == 7, what="full server read")
                assert latest(pg).state is not State.UNREACHABLE
                assert "7/5 usable conns" in str(pg.query_one(".summary").render())
                path = tmp_path / "pg.yaml"
                path.write_text(cfg_text)
                path.chmod(0o600)
                started = asyncio.get_running_loop().time()
                code, out = await status(path)
                assert asyncio.get_running_loop().time() - started < 6
                doc = json.loads(out)
                assert code == 1
                primary = next(s for s in doc["sources"] if s["name"] == "primary")
                assert primary["state"] == "unreachable"
                assert primary["error"] == "cannot connect: sorry, too many clients already"
                await keeps_going(pilot, app, rds, "4")
                for conn in opened[1:]:
                    conn.close()
                del opened[1:]
                survived("postgres: at max_connections")

                # Restarted mid-session: the pane says the connection was lost,
                # Redis keeps updating, keys answer, and it comes back alone.
                restart = asyncio.create_task(asyncio.to_thread(server.restart))
                await wait(pilot, lambda: latest(pg).state is State.UNREACHABLE, what="restart noticed")
                assert "unreachable: primary" in str(pg.border_subtitle)
                assert latest(pg).error in str(pg.query_one(".summary").render())
                await keeps_going(pilot, app, rds, "4")
                await restart
                await wait(pilot, lambda: latest(pg).state is State.OK, timeout=15, what="postgres back")
                assert str(pg.border_subtitle) == "● live"
                survived("postgres: restarted mid-session")
                await pilot.press("q")
        finally:
            for conn in opened:
                conn.close()


# ---- Redis --------------------------------------------------------------------------

async def test_redis_maxclients_pause_stop_and_restart_with_the_console_running(pg_server):
    with RedisServer(maxclients=4) as server:
        cfg = config.parse(live_yaml(pg_server.dsn(), server.url, redis_timeout=0.5), "redis.yaml", env={})
        app = IncidentConsole(cfg)
        fillers: list[redis_sync.Redis] = []
        async with app.run_test(size=(160, 48)) as pilot:
            pg, rds = app.query_one(PostgresPane), app.query_one(RedisPane)
            await wait(pilot, lambda: latest(rds) and latest(rds).state is State.OK and latest(pg))

            # maxclients: our held connection keeps reporting the full server.
            for _ in range(3):
                client = redis_sync.Redis(host="127.0.0.1", port=server.port, socket_timeout=2)
                client.ping()
                fillers.append(client)
            extra = redis_sync.Redis(host="127.0.0.1", port=server.port, socket_timeout=2)
            with pytest.raises(redis_sync.ConnectionError, match="max number of clients"):
                extra.ping()
            await wait(pilot, lambda: latest(rds).metrics.get("connected_clients") == 4
                       and latest(rds).metrics.get("rejected_connections", 0) >= 1, what="full redis read")
            assert latest(rds).reachable
            assert rds.table.get_row("clients")[1].plain.endswith("4 / 4")
            await keeps_going(pilot, app, pg, "3")
            for client in fillers[1:]:
                client.close()
            survived("redis: at maxclients")

            # CLIENT PAUSE: timeouts shown, then back by itself.
            fillers[0].execute_command("CLIENT", "PAUSE", 2000, "ALL")
            await wait(pilot, lambda: latest(rds).state is State.UNREACHABLE, what="pause noticed")
            assert "unreachable: cache" in str(rds.border_subtitle)
            await keeps_going(pilot, app, pg, "3")
            await wait(pilot, lambda: latest(rds).state is State.OK, timeout=10, what="redis after pause")
            survived("redis: CLIENT PAUSE")

            # SIGSTOP (a hung server): the rest carries on.
            server.pause()
            try:
                await wait(pilot, lambda: latest(rds).state is State.UNREACHABLE, what="SIGSTOP noticed")
                assert "timed out" in latest(rds).error or "Timeout" in latest(rds).error
                await keeps_going(pilot, app, pg, "3")
            finally:
                server.resume()
            await wait(pilot, lambda: latest(rds).state is State.OK, timeout=10, what="redis after SIGCONT")
            survived("redis: SIGSTOP")

            # Restart: refused while down, then back with no negative rates.
            fillers[0].close()
            server.stop()
            await wait(pilot, lambda: latest(rds).state is State.UNREACHABLE, what="stop noticed")
            await keeps_going(pilot, app, pg, "3")
            await asyncio.to_thread(server.start)
            await wait(pilot, lambda: latest(rds).state is State.OK, timeout=10, what="redis after restart")
            await pilot.pause(0.7)
            rates = [latest(rds).metrics.get(k) for k in ("ops_per_sec", "evictions_per_sec")]
            assert all(r is None or r >= 0 for r in rates)
            assert not rds.table.get_row("ops/s")[1].plain.startswith("-")
            survived("redis: restarted")
            await pilot.press("q")


# ---- HTTP health checks and /metrics scrapes ---------------------------------------

EXPOSITION = """# TYPE http_requests_total counter
http_requests_total{status="200"} %s
http_requests_total{status="500"} %s
"""
HTTP_FAULTS = {
    "hang": Hang(), "reset": Reset(), "garbage": Garbage(), "huge": Huge(status=503), "loop": Redirect("/loop"),
}
SCRAPE_FAULTS = {
    "hang": Reply(500, "internal error"),
    "reset": Reply(200, EXPOSITION % ("NaN", "NaN")),
    "garbage": Reply(200, EXPOSITION % ("+Inf", "1")),
    "huge": Reply(200, 'http_requests_total{status="200} 1\n'),  # malformed
    "loop": Reply(200, ""),  # empty
}


async def test_http_and_scrape_faults_show_per_service_and_heal(redis_server):
    with FaultServer() as server:
        server.route("/ok", Reply(200, "ok"))
        server.route("/m-ok", Reply(200, EXPOSITION % (100, 1)))
        for name, fault in HTTP_FAULTS.items():
            server.route(f"/{name}", fault)
            server.route(f"/m-{name}", SCRAPE_FAULTS[name])
        services = "".join(f"""
  - name: {name}
    url: {server.url('/' + name)}
    metrics: {server.url('/m-' + name)}
    timeout: 0.5""" for name in ["ok", *HTTP_FAULTS])
        cfg = config.parse(f"""
refresh: 0.3
redis:
  - name: cache
    url: {redis_server.url}
services:{services}
""", "http.yaml", env={})
        app = IncidentConsole(cfg)
        async with app.run_test(size=(200, 60)) as pilot:
            svc, err, rds = app.query_one(ServicesPane), app.query_one(ErrorRatesPane), app.query_one(RedisPane)
            await wait(pilot, lambda: len(svc.snapshots) == 6 and len(err.snapshots) == 6 and latest(rds),
                       what="every source read once")
            await pilot.pause(1.0)  # the hung ones time out at least once more
            for name in HTTP_FAULTS:
                snap = latest(svc, name)
                assert snap.state in (State.UNREACHABLE, State.CRITICAL), (name, snap)
                note = svc.table.get_row(f"http:{name}:check")[3].plain
                assert note and note == snap.error[: len(note)], (name, note)
            assert latest(svc, "ok").state is State.OK
            assert "timed out" in latest(svc, "hang").error
            assert "redirect" in latest(svc, "loop").error.lower()
            assert latest(svc, "huge").metrics["status_code"] == 503  # read in part, not all 50 MB
            for name in ("hang", "huge"):  # an error answer and a malformed exposition
                assert latest(err, name).state is State.UNREACHABLE
                assert err.table.get_row(f"errors:{name}:service")[6].plain == latest(err, name).error[: 60].rstrip() \
                    or err.table.get_row(f"errors:{name}:service")[6].plain.startswith(latest(err, name).error[:20])
            for name in ("reset", "garbage", "loop"):  # NaN, +Inf, empty: numbers unknown, no crash
                assert latest(err, name).metrics.get("error_ratio") is None
            json.dumps([s.to_json() for s in err.snapshots.values()], allow_nan=False)
            await keeps_going(pilot, app, rds, "4")
            await pilot.press("2")
            assert app.focused is err.table
            for name in HTTP_FAULTS:
                survived(f"http: {name}")
            survived("metrics scrape: HTTP 500, NaN, +Inf, malformed, empty")

            # The faults clear: every row heals by itself.
            for name in HTTP_FAULTS:
                server.route(f"/{name}", Reply(200, "ok"))
                server.route(f"/m-{name}", Reply(200, EXPOSITION % (100, 1)))
            await wait(pilot, lambda: all(s.state is State.OK for s in svc.snapshots.values()), timeout=10,
                       what="health checks healed")
            await wait(pilot, lambda: all(s.reachable for s in err.snapshots.values()), timeout=10,
                       what="scrapes healed")
            assert svc.table.get_row("http:hang:check")[3].plain == ""
            await pilot.press("q")


# ---- Kubernetes -----------------------------------------------------------------------

async def test_kubernetes_api_faults_show_in_services_and_heal(tmp_path, redis_server):
    with KubeFake(RECORDED_K8S, live=True) as fake:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", context="test", namespace="app")
        cfg = config.parse(f"""
refresh: 0.3
redis:
  - name: cache
    url: {redis_server.url}
kubernetes:
  context: test
  namespaces: [app]
  kubeconfig: {kubeconfig}
  timeout: 1
""", "k8s.yaml", env={})
        app = IncidentConsole(cfg)
        async with app.run_test(size=(200, 60)) as pilot:
            svc, rds = app.query_one(ServicesPane), app.query_one(RedisPane)
            await wait(pilot, lambda: latest(svc) and latest(svc).state is not State.UNREACHABLE and latest(rds),
                       timeout=15, what="namespace read")
            expected = {"401": "HTTP 401 Unauthorized", "403": "HTTP 403 Forbidden", "500": "HTTP 500",
                        "slow": "timed out", "truncated": "invalid JSON"}
            for fault, says in expected.items():
                fake.set_fault(fault, delay=3)
                await wait(pilot, lambda: latest(svc).state is State.UNREACHABLE, timeout=10,
                           what=f"k8s {fault} noticed")
                assert says in latest(svc).error
                # The workloads last read stay, dimmed; each row's note says why they are old.
                kept = svc.table.get_row("kubernetes:app:deployment/worker")
                assert kept[3].plain.startswith(latest(svc).error[:30])
                assert "deploy/worker" in kept[1].plain and "dim" in str(kept[1].spans)
                await keeps_going(pilot, app, rds, "4")
                fake.set_fault(None)
                await wait(pilot, lambda: latest(svc).state is not State.UNREACHABLE, timeout=15,
                           what=f"k8s healed after {fault}")
                assert "deploy/worker" in screen_text(app)
                survived(f"kubernetes: {fault}")
            await pilot.press("q")
