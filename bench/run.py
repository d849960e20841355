"""The whole benchmark suite, one command (issue 6; not part of the tests).

    python bench/run.py [--quick] [--out bench/results/latest.json] [--no-pg-activity]
    python bench/run.py --table bench/results/latest.json   # print an earlier run's table
    python bench/run.py --quick --only profile   # py-spy (on PATH) of the steady state

Takes ~10 minutes (~8 with --quick). Needs PostgreSQL server binaries, pgbench
and redis-server; pg_activity is optional (pip install pg_activity).

Starts its own PostgreSQL (pg_stat_statements preloaded) and Redis with
console.demo.servers, two demo HTTP services (/health and /metrics) and a fake
Kubernetes API, so all six panes are live; puts a light load on them (pgbench
-i, then 4 clients at 20 tps; ~45 idle sessions; Redis at ~100 ops/s in DB 1
from a thread); writes a config; then measures, in a 120x40 pseudo-terminal:

1. launch to first complete frame (median of >= 5 launches);
2. steady state at a 1 s refresh (60 s, 30 s with --quick, after 10 s of
   warm-up): CPU % of one core (/proc/PID/stat), bytes/s written with
   TERM=xterm-256color and with COLORTERM=truecolor, RSS (VmRSS) at the end;
3. footprint on the monitored systems during (2): PostgreSQL connections
   (application_name incident-console), statements per refresh
   (pg_stat_statements), Redis commands per refresh (INFO commandstats minus
   the load's own GET/SET), HTTP requests per check; per refresh means per
   poll counted (calls of the console's most-run statement);
4. health-check fan-out: one poll_all cycle over 200 checks, 20 hanging;
5. key press ("1".."4", moving focus) to the first byte written back: 20
   presses with Redis running, then median and worst of 50 with Redis SIGSTOPped;
6. journal append latency at 100 / 1,000 / 10,000 entries;
7. RSS over 10,000 refreshes, driven headless (App.run_test) in a child
   process fed real snapshots with jittered metrics; drawn every 10th refresh.

The pty answers the terminal queries a real terminal answers (XTGETTCAP,
cursor position, DA1), without which pg_activity waits seconds for them.
pg_activity (when on PATH) runs the same way against
the same server in the same run, and the ratios console/pg_activity are
printed, so machine noise cancels. Prints a table with each target and
PASS/FAIL; writes JSON to --out (default bench/results/latest.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import random
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import psycopg  # noqa: E402
import redis  # noqa: E402
import yaml  # noqa: E402

import journal_append  # noqa: E402
from pty_run import CONSOLE_DONE, Terminal, compile_console, console_argv  # noqa: E402

from console import paths  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
CONSOLE_ROLE = "console_mon"
PGACT_ROLE = "pgact_mon"
REPO_PLAYBOOKS = paths.shipped_playbooks()
# In (7) every refresh's snapshots are taken by the panes; the screen is drawn
# once every RENDER_EVERY refreshes (a full draw per refresh takes ~90 ms
# headless, and 10,000 of them would take a quarter of an hour).
RENDER_EVERY = 10


# ---- process measurements ------------------------------------------------
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def p99(values: list[float]) -> float:
    return journal_append.p99(values)


# ---- the systems under watch and their load ---------------------------------
class RedisLoad:
    """~``rate`` ops/s of SET/GET in DB 1, counted, so they can be subtracted."""

    def __init__(self, port: int, rate: float = 100.0) -> None:
        self.client = redis.Redis(host="127.0.0.1", port=port, db=1, socket_timeout=1)
        self.rate = rate
        self.ops = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="redis-load")

    def start(self) -> "RedisLoad":
        self.client.ping()
        self.thread.start()
        return self

    def _run(self) -> None:
        i, began = 0, time.monotonic()
        while not self.stopping.is_set():
            try:
                if i % 2:
                    self.client.get(f"k{i % 500}")
                else:
                    self.client.set(f"k{i % 500}", "x" * 64)
                self.ops += 1
            except redis.RedisError:
                time.sleep(0.2)  # paused server: wait, do not count
            i += 1
            delay = began + i / self.rate - time.monotonic()
            if delay > 0:
                self.stopping.wait(delay)
            elif delay < -1:
                began, i = time.monotonic(), 0

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(3)


class Systems:
    def __init__(self, root: Path) -> None:
        from console.demo.service import DemoService
        from console.demo.kubefake import KubeFake
        from console.demo.servers import PostgresServer, RedisServer

        self.root = root
        self.pg = PostgresServer(max_connections=100).start()
        self.redis = RedisServer().start()
        self.http_counts: Counter[str] = Counter()
        self._count_http()
        self.services = [DemoService("checkout-api", 20.0, 0.06).start(),
                         DemoService("payments-api", 8.0, 0.12, 0.002).start()]
        self.kube = KubeFake(ROOT / "console" / "demo" / "k8s", live=True).start()
        self.kube.write_kubeconfig(root / "kubeconfig", context="bench", namespace="app")
        self.idle: list[psycopg.Connection] = []
        self.pgbench: subprocess.Popen | None = None
        self.redis_load: RedisLoad | None = None

    def _count_http(self) -> None:
        from console.demo import service

        original = service._Handler.do_GET
        counts = self.http_counts

        def counting(handler) -> None:
            counts[handler.path.split("?", 1)[0]] += 1
            original(handler)

        service._Handler.do_GET = counting

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.pg.dsn(), autocommit=True)

    def load(self, seconds: int) -> None:
        with self.admin() as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            for role in (CONSOLE_ROLE, PGACT_ROLE):
                c.execute(f"CREATE ROLE {role} LOGIN SUPERUSER")
        bindir = shutil.which("pgbench") or "pgbench"
        env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(self.pg.port), "PGUSER": "postgres"}
        subprocess.run([bindir, "-i", "-q", "-s", "1", "postgres"], env=env, check=True,
                       capture_output=True, timeout=120)
        self.pgbench = subprocess.Popen([bindir, "-R", "20", "-c", "4", "-T", str(seconds), "-n", "postgres"],
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in range(45):
            conn = psycopg.connect(self.pg.dsn(application_name=f"idle-app-{i % 5}"), autocommit=True)
            conn.execute("SELECT 1")
            self.idle.append(conn)
        self.redis_load = RedisLoad(self.redis.port).start()

    def write_config(self, path: Path, refresh: float = 1.0) -> Path:
        doc = {
            "environment": {"name": "bench", "banner": "blue"},
            "refresh": refresh,
            "postgres": [{"name": "bench-db", "dsn": self.pg.dsn(
                "postgres", user=CONSOLE_ROLE, application_name="incident-console")}],
            "redis": [{"name": "cache", "url": self.redis.url}],
            "services": [{"name": s.name, "url": s.health_url, "timeout": 2, "metrics": s.metrics_url}
                         for s in self.services],
            "kubernetes": {"kubeconfig": str(self.root / "kubeconfig"), "context": "bench",
                           "namespaces": ["app"], "timeout": 3},
        }
        if REPO_PLAYBOOKS.is_dir():
            doc["playbooks"] = [str(REPO_PLAYBOOKS)]
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        path.chmod(0o600)
        return path

    def pg_counts(self, role: str, app: str) -> dict:
        with self.admin() as c:
            calls, top = c.execute(
                "SELECT coalesce(sum(calls), 0), coalesce(max(calls), 0) FROM pg_stat_statements s "
                "JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = %s", (role,)).fetchone()
            conns = c.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                              (app,)).fetchone()[0]
        return {"calls": int(calls), "top": int(top), "connections": int(conns)}

    def redis_calls(self) -> Counter[str]:
        """Calls per command, without the load's own (it only GETs and SETs)."""
        stats = redis.Redis(host="127.0.0.1", port=self.redis.port).info("commandstats")
        return Counter({k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()
                        if k not in ("cmdstat_get", "cmdstat_set")})

    def stop(self) -> None:
        for action in ([self.redis_load.stop] if self.redis_load else []) + \
                      ([self.pgbench.kill] if self.pgbench else []) + \
                      [c.close for c in self.idle] + [s.stop for s in self.services] + \
                      [self.kube.stop, self.redis.cleanup, self.pg.cleanup]:
            with contextlib.suppress(Exception):
                action()


# ---- the tools under test, in a pty ----------------------------------------
def pg_activity_argv(systems: Systems) -> list[str] | None:
    exe = shutil.which("pg_activity")
    if exe is None:
        return None
    return [exe, "--refresh", "1", "-h", "127.0.0.1", "-p", str(systems.pg.port), "-U", PGACT_ROLE,
            "-d", "postgres", "--no-db-size"]


def console_cmd(config: Path, journal: Path) -> list[str]:
    return console_argv("--config", str(config), "--incident", str(journal))


def first_frames(argv: list[str], marker: bytes, launches: int, env: dict | None = None) -> list[float]:
    times = []
    for _ in range(launches):
        term = Terminal(argv, env=env or {})
        took = term.wait_for(marker, timeout=20)
        term.stop()
        if took is None:
            raise RuntimeError(f"{argv[0]}: no complete frame within 20 s")
        times.append(took)
    return times


def steady(argv: list[str], marker: bytes, seconds: float, env: dict, warmup: float = 10.0,
           during=None) -> dict:
    term = Terminal(argv, env=env)
    try:
        if term.wait_for(marker, timeout=20) is None:
            raise RuntimeError(f"{argv[0]}: no first frame")
        end = time.monotonic() + warmup
        while time.monotonic() < end:
            term.read(0.1)
        before = during.begin(term.pid) if during else None
        bytes0, cpu0, t0 = term.written, cpu_seconds(term.pid), time.monotonic()
        end = t0 + seconds
        while time.monotonic() < end:
            term.read(min(0.2, max(0.0, end - time.monotonic())))
        took = time.monotonic() - t0
        out = {"seconds": round(took, 1),
               "cpu_pct": round((cpu_seconds(term.pid) - cpu0) / took * 100, 2),
               "bytes_per_s": round((term.written - bytes0) / took),
               "rss_mb": round(rss_mb(term.pid), 1)}
        if during:
            out["footprint"] = during.end(before, took)
        return out
    finally:
        term.stop()


class Footprint:
    def __init__(self, systems: Systems, role: str, app: str, refresh: float = 1.0) -> None:
        self.systems, self.role, self.app, self.refresh = systems, role, app, refresh

    def begin(self, pid: int):
        s = self.systems
        return (s.pg_counts(self.role, self.app), s.redis_calls(), Counter(s.http_counts))

    def end(self, before, took: float) -> dict:
        s = self.systems
        pg0, r0, http0 = before
        pg1 = s.pg_counts(self.role, self.app)
        r1 = s.redis_calls()
        r1.subtract(r0)
        r1["info"] -= 1  # our own INFO commandstats at the start…
        r1["hello"] -= 1  # …and the handshake of the connection that asked at the end
        r1 = +r1
        # The console polls again `refresh` seconds after a poll ends, so it
        # makes a little fewer than took/refresh polls: count them where it
        # can be seen (calls of the most-run statement), else the nominal.
        polls = pg1["top"] - pg0["top"]
        refreshes = polls if polls > 0 else took / self.refresh
        http = Counter(s.http_counts)
        http.subtract(http0)
        health, metrics = http["/health"], http["/metrics"]
        redis_cmds = sum(r1.values())
        return {
            "pg_connections": pg1["connections"],
            "pg_statements": pg1["calls"] - pg0["calls"],
            "pg_polls_observed": pg1["top"] - pg0["top"],
            "refreshes_nominal": round(took / self.refresh, 1),
            "refreshes_counted": round(refreshes, 1),
            "pg_statements_per_refresh": round((pg1["calls"] - pg0["calls"]) / refreshes, 2),
            "redis_commands_per_refresh": round(redis_cmds / refreshes, 2),
            "redis_commands": dict(r1),
            "http_health_requests": health,
            "http_metrics_requests": metrics,
            "http_health_per_refresh_per_service": round(health / refreshes / len(s.services), 2),
        }


class Profile:
    """py-spy attached to the running console for the steady-state window."""

    def __init__(self, out: Path, seconds: float) -> None:
        self.out, self.seconds = out, seconds

    def begin(self, pid: int):
        return subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--format", "raw", "-r", "100",
                                 "-d", str(int(self.seconds)), "-o", str(self.out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def end(self, spy, took: float) -> dict:
        spy.wait(30)
        return {"profile": str(self.out)}


# ---- 4. fan-out ------------------------------------------------------------------
def fanout(endpoints: int = 200, hanging: int = 20, timeout: float = 2.0) -> dict:
    from console.config import ServiceTarget
    from console.sources.http import HealthCheck, poll_all

    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            if self.path.startswith("/hang/"):
                release.wait(30)
                return
            body = b'{"status":"ok"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        def targets():
            return [ServiceTarget(f"svc{i}", f"http://127.0.0.1:{port}/{'hang' if i < hanging else 'ok'}/{i}",
                                  timeout) for i in range(endpoints)]

        async def cycle():
            checks = [HealthCheck(t) for t in targets()]
            began = time.perf_counter()
            snaps = await poll_all(checks)
            took = time.perf_counter() - began
            await asyncio.gather(*(c.close() for c in checks))
            return took, snaps

        runs = []
        for _ in range(3):
            took, snaps = asyncio.run(cycle())
            runs.append(took)
        ok = sum(1 for s in snaps if s.error is None)
        return {"endpoints": endpoints, "hanging": hanging, "timeout_s": timeout,
                "cycle_s": [round(r, 3) for r in runs], "worst_cycle_s": round(max(runs), 3),
                "answered_ok": ok, "timed_out": sum(1 for s in snaps if s.error and "timed out" in s.error)}
    finally:
        release.set()
        server.shutdown()
        server.server_close()


# ---- 5. key presses while Redis hangs ---------------------------------------
def hung_keys(argv: list[str], systems: Systems, presses: int = 50) -> dict:
    with settled(argv, "") as term:
        try:
            baseline = _presses(term, 20)
            systems.redis.pause()
            settle = time.monotonic() + 4  # the Redis poll is now hanging
            while time.monotonic() < settle:
                term.read(0.1)
            hung = _presses(term, presses)
        finally:
            systems.redis.resume()
    hung["redis_running"] = baseline
    return hung


def _presses(term: Terminal, presses: int) -> dict:
    times, missed = [], 0
    keys = [b"1", b"2", b"3", b"4"]
    for i in range(presses):
        # Wait for a quiet moment (no output for 150 ms) so the clock tick
        # is not taken for the answer to the key.
        quiet_since = time.monotonic()
        limit = time.monotonic() + 3
        while time.monotonic() - quiet_since < 0.15 and time.monotonic() < limit:
            if term.read(0.03):
                quiet_since = time.monotonic()
        sent = time.perf_counter()
        term.send(keys[i % 4])
        ready, _, _ = select.select([term.fd], [], [], 2.0)
        if not ready:
            missed += 1
            continue
        times.append(time.perf_counter() - sent)
        term.read(0.05)
    return {**_summary(times, presses, missed), "missed_2s": missed}


# ---- 5b. key presses in a long incident, and beside a 100k-series scrape -----------
def loaded_keys(config: Path, root: Path, presses: int = 50, notes: int = 20) -> dict:
    """Key press to screen with 10,000 entries in the journal, and the time
    from a note's Enter to its row on screen (issue 16); then key presses
    while one more service's /metrics of 100,000 series is scraped every
    refresh (a file served by a child process, as in metrics_scrape.py)."""
    import timeline_append
    from metrics_scrape import exposition, served

    out = {}
    journal = root / "journal-10k.json"
    timeline_append.fill(journal, 10_000)
    with settled(console_cmd(config, journal), "with 10,000 entries") as term:
        out["journal_10k"] = _presses(term, presses)
        out["note_visible_10k"] = _notes_visible(term, notes)

    where = root / "big-metrics"
    where.mkdir()
    with served(where, exposition(100_000)) as port:
        doc = yaml.safe_load(config.read_text())
        doc["services"].append({"name": "big-metrics", "url": f"http://127.0.0.1:{port}/health", "timeout": 10,
                                "metrics": f"http://127.0.0.1:{port}/metrics"})
        big = root / "config-big-metrics.yaml"
        big.write_text(yaml.safe_dump(doc, sort_keys=False))
        big.chmod(0o600)
        with settled(console_cmd(big, root / "journal-big.json"), "with the big scrape") as term:
            out["metrics_100k"] = _presses(term, presses)
    return out


@contextlib.contextmanager
def settled(argv: list[str], what: str, seconds: float = 8.0):
    """The console in a pty, its first frame drawn and ``seconds`` gone by
    (the sources read, the playbooks loaded)."""
    term = Terminal(argv)
    try:
        if term.wait_for(CONSOLE_DONE, timeout=30) is None:
            raise RuntimeError(f"console: no first frame {what}")
        settle = time.monotonic() + seconds
        while time.monotonic() < settle:
            term.read(0.1)
        yield term
    finally:
        term.stop()


def _notes_visible(term: Terminal, notes: int) -> dict:
    """``n``, a note, Enter: the time from Enter until the note's text is
    written again (its timeline row; the input line is cleared, not redrawn)."""
    times, missed = [], 0
    for i in range(notes):
        # Short: the timeline's What column at 120x40 shows ~14 characters.
        token = f"q{i:02d}{random.randrange(10 ** 4):04d}".encode()
        term.send(b"n")
        term.read(0.2)
        term.send(token)
        term.read(0.3)
        sent = time.perf_counter()
        term.send(b"\r")
        seen, limit = b"", time.monotonic() + 5
        while token not in seen and time.monotonic() < limit:
            seen += term.read(0.01)
        if token in seen:
            times.append(time.perf_counter() - sent)
        else:
            missed += 1
        term.send(b"\x1b")
        term.read(0.2)
    return _summary(times, notes, missed)


def _summary(times: list[float], tried: int, missed: int) -> dict:
    return {"presses": tried, "answered": len(times), "missed": missed,
            "median_ms": round(statistics.median(times) * 1000, 1) if times else None,
            "p99_ms": round(p99(times) * 1000, 1) if times else None,
            "worst_ms": round(max(times) * 1000, 1) if times else None}


# ---- 7. RSS over many refreshes, headless, in a child process -------------------
def rss_child(config_path: str, journal_path: str, rounds: int) -> None:
    """Runs in its own interpreter: prints one JSON line of RSS samples."""
    from console import config as config_module
    from console.app import IncidentConsole, SnapshotArrived
    from console.incident.journal import Journal
    from console.sources import build_sources, close_all, poll_once

    cfg = config_module.load(config_path)

    async def main() -> dict:
        sources = build_sources(cfg)
        real = await poll_once(sources, cfg.thresholds)
        await close_all(sources)
        journal = Journal(Path(journal_path), operator={"user": "bench"})
        app = IncidentConsole(cfg, sources=[], journal=journal)
        samples = []
        began = time.monotonic()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            for i in range(rounds):
                now = datetime.now(timezone.utc)
                for snap in real:
                    metrics = {k: (v * random.uniform(0.9, 1.1) if isinstance(v, float) else
                                   v + random.randint(0, 3) if isinstance(v, int) and not isinstance(v, bool) else v)
                               for k, v in snap.metrics.items()}
                    app.on_snapshot_arrived(SnapshotArrived(dataclasses.replace(
                        snap, taken_at=now, metrics=metrics)))
                if i % RENDER_EVERY == RENDER_EVERY - 1:
                    await pilot.pause()
                if i % max(1, rounds // 20) == 0 or i == rounds - 1:
                    samples.append((i + 1, round(rss_mb(os.getpid()), 1)))
        journal.close()
        return {"rounds": rounds, "render_every": RENDER_EVERY, "snapshots_per_round": len(real), "seconds": round(time.monotonic() - began, 1),
                "samples": samples}

    print(json.dumps(asyncio.run(main())))


def rss_growth(config: Path, journal: Path, rounds: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--_rss-child", str(config), str(journal), str(rounds)],
                          capture_output=True, text=True, timeout=3600, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-2000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    samples = result["samples"]
    warm = [mb for n, mb in samples if n >= rounds * 0.2]  # after warm-up
    half = [mb for n, mb in samples if n >= rounds * 0.5]
    result["rss_after_warmup_mb"] = warm[0] if warm else None
    result["rss_end_mb"] = samples[-1][1]
    result["growth_after_warmup_mb"] = round(samples[-1][1] - warm[0], 1) if warm else None
    result["growth_second_half_mb"] = round(samples[-1][1] - half[0], 1) if half else None
    return result


# ---- report ------------------------------------------------------------------------
def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def table(res: dict) -> list[tuple[str, str, str, str]]:
    rows = []

    def add(name, value, target, ok):
        rows.append((name, value, target, verdict(ok)))

    ff = res.get("first_frame")
    if ff:
        add("first frame, median", f"{ff['console_median_ms']:.0f} ms", "≤ 500 ms", ff["console_median_ms"] <= 500)
        if ff.get("pg_activity_median_ms"):
            add("  pg_activity first frame", f"{ff['pg_activity_median_ms']:.0f} ms", "(reference)", None)
    st = res.get("steady")
    if st:
        c, t, p = st.get("console_256"), st.get("console_truecolor"), st.get("pg_activity")
        if c:
            add("CPU % of a core (256 col)", f"{c['cpu_pct']:.2f}", "≤ pg_activity", None if not p else c["cpu_pct"] <= p["cpu_pct"])
            add("bytes/s (256 colours)", f"{c['bytes_per_s']}", "≤ pg_activity", None if not p else c["bytes_per_s"] <= p["bytes_per_s"])
        if t:
            add("CPU % of a core (truecolor)", f"{t['cpu_pct']:.2f}", "≤ pg_activity", None if not p else t["cpu_pct"] <= p["cpu_pct"])
            add("bytes/s (truecolor)", f"{t['bytes_per_s']}", "≤ pg_activity", None if not p else t["bytes_per_s"] <= p["bytes_per_s"])
        if p:
            add("  pg_activity CPU % / bytes/s", f"{p['cpu_pct']:.2f} / {p['bytes_per_s']}", "(reference)", None)
            for key, label in (("cpu_ratio_256", "ratio CPU console/pg_activity"),
                               ("bytes_ratio_256", "ratio bytes console/pg_activity (256)"),
                               ("bytes_ratio_truecolor", "ratio bytes console/pg_activity (truecolor)")):
                if st.get(key) is not None:
                    add(label, f"{st[key]:.2f}", "≤ 1.0", st[key] <= 1.0)
        if c:
            add("RSS at end of steady state", f"{c['rss_mb']:.1f} MB", "≤ 120 MB", c["rss_mb"] <= 120)
            f = c.get("footprint")
            if f:
                add("PostgreSQL connections", str(f["pg_connections"]), "1", f["pg_connections"] == 1)
                add("PostgreSQL statements/refresh", f"{f['pg_statements_per_refresh']:.2f}", "≤ 3",
                    f["pg_statements_per_refresh"] <= 3)
                add("Redis commands/refresh", f"{f['redis_commands_per_refresh']:.2f}", "≤ 2",
                    f["redis_commands_per_refresh"] <= 2)
                add("HTTP /health GETs per check", f"{f['http_health_per_refresh_per_service']:.2f}", "(1)", None)
        if p and p.get("footprint"):
            f = p["footprint"]
            add("  pg_activity conns / stmts/refresh", f"{f['pg_connections']} / {f['pg_statements_per_refresh']:.2f}",
                "(reference)", None)
    fo = res.get("fanout")
    if fo:
        limit = fo["timeout_s"] * 1.1
        add(f"fan-out {fo['endpoints']} checks, {fo['hanging']} hung", f"{fo['worst_cycle_s']:.3f} s",
            f"≤ {limit:.2f} s", fo["worst_cycle_s"] <= limit)
    hk = res.get("hung_keys")
    if hk:
        base = hk.get("redis_running")
        if base:
            add("key→screen, Redis running, median/worst", f"{base['median_ms']} / {base['worst_ms']} ms", "", None)
        add("key→screen, Redis hung, median", f"{hk['median_ms']} ms", "", None)
        add("key→screen, Redis hung, p99", f"{hk['p99_ms']} ms (missed {hk['missed_2s']})", "p99 ≤ 100 ms",
            hk["p99_ms"] is not None and hk["p99_ms"] <= 100 and hk["missed_2s"] == 0)
    lk = res.get("loaded_keys")
    if lk:
        for key, label in (("journal_10k", "key→screen, 10,000 journal entries"),
                           ("metrics_100k", "key→screen, 100k-series /metrics scraped")):
            r = lk.get(key)
            if r:
                add(f"{label}, median/p99", f"{r['median_ms']} / {r['p99_ms']} ms (missed {r['missed']})",
                    "p99 ≤ 100 ms", r["p99_ms"] is not None and r["p99_ms"] <= 100 and not r["missed"])
        r = lk.get("note_visible_10k")
        if r:
            add("note Enter→row on screen @10,000, median/p99", f"{r['median_ms']} / {r['p99_ms']} ms",
                "≤ 20 ms", r["p99_ms"] is not None and r["p99_ms"] <= 20 and not r["missed"])
    jn = res.get("journal")
    if jn:
        for entries, r in jn.items():
            add(f"journal append @{entries}", f"med {r['median_ms']:.2f} / p99 {r['p99_ms']:.2f} ms",
                "p99 ≤ 20 ms" if entries == "10000" else "", r["p99_ms"] <= 20 if entries == "10000" else None)
    rs = res.get("rss_refreshes")
    if rs:
        add(f"RSS after {rs['rounds']} refreshes", f"{rs['rss_end_mb']:.1f} MB", "≤ 120 MB", rs["rss_end_mb"] <= 120)
        add(f"RSS growth, refreshes {rs['rounds'] // 5}-{rs['rounds']}", f"{rs['growth_after_warmup_mb']:+.1f} MB",
            "", None)
        if rs.get("growth_second_half_mb") is not None:
            add(f"RSS growth, refreshes {rs['rounds'] // 2}-{rs['rounds']}", f"{rs['growth_second_half_mb']:+.1f} MB",
                "flat (≤ +2 MB)", rs["growth_second_half_mb"] <= 2)
    return rows


def print_table(rows) -> None:
    widths = [max(len(r[i]) for r in rows + [("measure", "value", "target", "")]) for i in range(4)]
    for r in [("measure", "value", "target", "")] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


# ---- main ----------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 s steady state, fewer samples")
    parser.add_argument("--out", default=str(HERE / "results" / "latest.json"))
    parser.add_argument("--no-pg-activity", action="store_true")
    parser.add_argument("--rounds", type=int, default=10_000, help="refreshes for the RSS check (7)")
    parser.add_argument("--only", help="comma-separated: first_frame,steady,fanout,hung_keys,loaded_keys,journal,rss")
    parser.add_argument("--table", metavar="JSON", help="only print the table of an earlier run's JSON")
    args = parser.parse_args()
    if args.table:
        print_table(table(json.loads(Path(args.table).read_text())))
        return 0
    only = set(args.only.split(",")) if args.only else None

    def want(name: str) -> bool:
        return only is None or name in only

    steady_s = 30 if args.quick else 60
    rounds = args.rounds
    res: dict = {"quick": args.quick, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "load_avg": os.getloadavg()}}
    compile_console()
    root = Path(tempfile.mkdtemp(prefix="ic-bench-"))
    systems = None
    try:
        print("starting PostgreSQL, Redis, services, fake Kubernetes and load…", flush=True)
        systems = Systems(root)
        systems.load(seconds=3600)
        config = systems.write_config(root / "config.yaml", refresh=1.0)
        journal = root / "journal.json"
        pga = None if args.no_pg_activity else pg_activity_argv(systems)
        res["pg_activity"] = bool(pga)
        time.sleep(2)

        if want("first_frame"):
            print("1. first frame…", flush=True)
            launches = 5 if args.quick else 7
            times = first_frames(console_cmd(config, journal), CONSOLE_DONE, launches)
            ff = {"console_ms": [round(t * 1000) for t in times],
                  "console_median_ms": round(statistics.median(times) * 1000, 1)}
            if pga:
                # pg_activity's frame ends with its key help line (h Help).
                ptimes = first_frames(pga, b"Help", launches)
                ff["pg_activity_ms"] = [round(t * 1000) for t in ptimes]
                ff["pg_activity_median_ms"] = round(statistics.median(ptimes) * 1000, 1)
            res["first_frame"] = ff

        if want("steady"):
            print(f"2-3. steady state, {steady_s} s each…", flush=True)
            st = {}
            st["console_256"] = steady(console_cmd(config, journal), CONSOLE_DONE, steady_s, {},
                                       during=Footprint(systems, CONSOLE_ROLE, "incident-console"))
            print(f"   console 256: {st['console_256']}", flush=True)
            st["console_truecolor"] = steady(console_cmd(config, journal), CONSOLE_DONE, steady_s,
                                             {"COLORTERM": "truecolor"})
            print(f"   console truecolor: {st['console_truecolor']}", flush=True)
            if pga:
                st["pg_activity"] = steady(pga, b"Help", steady_s, {},
                                           during=Footprint(systems, PGACT_ROLE, "pg_activity"))
                print(f"   pg_activity: {st['pg_activity']}", flush=True)
                p = st["pg_activity"]
                st["cpu_ratio_256"] = round(st["console_256"]["cpu_pct"] / max(p["cpu_pct"], 1e-9), 2)
                st["cpu_ratio_truecolor"] = round(st["console_truecolor"]["cpu_pct"] / max(p["cpu_pct"], 1e-9), 2)
                st["bytes_ratio_256"] = round(st["console_256"]["bytes_per_s"] / max(p["bytes_per_s"], 1), 2)
                st["bytes_ratio_truecolor"] = round(st["console_truecolor"]["bytes_per_s"] / max(p["bytes_per_s"], 1), 2)
            res["steady"] = st

        if only and "profile" in only:
            # Not part of the suite: where the console's steady-state CPU goes.
            out = Path(args.out).with_suffix(".pyspy.txt")
            print("profile:", steady(console_cmd(config, journal), CONSOLE_DONE, steady_s, {},
                                     during=Profile(out, steady_s)), out, flush=True)

        if want("fanout"):
            print("4. fan-out…", flush=True)
            res["fanout"] = fanout()

        if want("hung_keys"):
            print("5. key presses with Redis stopped…", flush=True)
            res["hung_keys"] = hung_keys(console_cmd(config, journal), systems)

        if want("loaded_keys"):
            print("5b. key presses with 10,000 journal entries, and beside a 100k-series scrape…", flush=True)
            res["loaded_keys"] = loaded_keys(config, root)

        if want("journal"):
            print("6. journal appends…", flush=True)
            samples = 100 if args.quick else 300
            jn = {}
            with tempfile.TemporaryDirectory() as tmp:
                for entries in (100, 1_000, 10_000):
                    times = journal_append.measure(Path(tmp), entries, samples)
                    jn[str(entries)] = {"samples": samples, "median_ms": round(statistics.median(times) * 1000, 3),
                                        "p99_ms": round(p99(times) * 1000, 3), "max_ms": round(max(times) * 1000, 3)}
            res["journal"] = jn

        if want("rss"):
            print(f"7. RSS over {rounds} refreshes (headless)…", flush=True)
            res["rss_refreshes"] = rss_growth(config, root / "journal-rss.json", rounds)
    finally:
        if systems is not None:
            systems.stop()
        shutil.rmtree(root, ignore_errors=True)

    rows = table(res)
    res["table"] = [dict(zip(("measure", "value", "target", "verdict"), r)) for r in rows]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str))
    print()
    print_table(rows)
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_rss-child":
        rss_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(main())
