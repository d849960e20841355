"""A 100k-series ``/metrics`` scrape beside a healthy endpoint (issue 10, class 8).

Target: the healthy endpoint's measured latency with the big scrape running
stays within 50 ms of its latency alone (p95), and no reading of it would
cross the default latency warning; one scrape's parse costs < 100 ms of CPU.

The two endpoints are files served by a child process (``python -m
http.server``), so that serving 9 MB does not compete with the console's own interpreter for the GIL. In this process:
one ScrapedErrors source scraping the big endpoint back to back, and one
HealthCheck polling the healthy endpoint every 100 ms, for ``seconds``.

    python bench/metrics_scrape.py [seconds] [series]
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.config import ServiceTarget  # noqa: E402
from console.sources.errors import ScrapedErrors, parse_exposition  # noqa: E402
from console.sources.http import HealthCheck  # noqa: E402

def exposition(series: int) -> str:
    """``series`` series of a metric we do not read, then the two we do."""
    lines = ["# HELP go_thing_total A thing.", "# TYPE go_thing_total counter"]
    lines += [f'go_thing_total{{shard="{i % 64}",path="/api/v1/items/{i}",pod="checkout-7d9f8b6c5-x{i % 9}"}} {i}'
              for i in range(series)]
    lines += ["# TYPE http_requests_total counter",
              'http_requests_total{status="200",method="GET"} 1000',
              'http_requests_total{status="500",method="GET"} 10',
              "# TYPE http_request_duration_seconds histogram"]
    lines += [f'http_request_duration_seconds_bucket{{le="{le}"}} {n}'
              for le, n in (("0.1", 900), ("0.5", 990), ("+Inf", 1010))]
    return "\n".join(lines) + "\n"


def cpu_parse(body: str, runs: int = 3) -> float:
    """Median CPU seconds of one parse of ``body`` (in this thread)."""
    times = []
    for _ in range(runs):
        start = time.thread_time()
        parse_exposition(body, 0.0)
        times.append(time.thread_time() - start)
    return statistics.median(times)


async def healthy_latencies(check: HealthCheck, seconds: float) -> list[float]:
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        snap = await check.poll()
        if snap.latency_ms is not None:
            out.append(snap.latency_ms)
        await asyncio.sleep(0.1)
    return out


async def scrape_forever(source: ScrapedErrors, stop: asyncio.Event, walls: list[float]) -> None:
    while not stop.is_set():
        start = time.monotonic()
        snap = await source.poll()
        walls.append(time.monotonic() - start)
        if snap.error:
            print("scrape error:", snap.error)


async def measure(port: int, seconds: float) -> dict:
    base = f"http://127.0.0.1:{port}"
    check = HealthCheck(ServiceTarget("healthy", f"{base}/health", timeout=5))
    scraper = ScrapedErrors(ServiceTarget("big", f"{base}/health", timeout=10, metrics=f"{base}/metrics"))
    alone = await healthy_latencies(check, seconds / 2)
    stop, walls = asyncio.Event(), []
    task = asyncio.create_task(scrape_forever(scraper, stop, walls))
    busy = await healthy_latencies(check, seconds)
    stop.set()
    await task
    await check.close()
    await scraper.close()
    return {"alone": alone, "busy": busy, "scrapes": walls}


@contextlib.contextmanager
def served(where: Path, body: str) -> Iterator[int]:
    """``body`` at /metrics and "ok" at /health, files in ``where`` served by a
    child process (serving 9 MB must not compete with the measured
    interpreter for the GIL); yields the port."""
    (where / "metrics").write_text(body)
    (where / "health").write_text("ok")
    server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                               "--directory", str(where)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        yield int(server.stdout.readline().split(" port ")[1].split()[0])
    finally:
        server.terminate()
        server.wait()


def p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1] if values else float("nan")


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    series = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    where = Path(tempfile.mkdtemp(prefix="metrics-scrape-"))
    body = exposition(series)
    try:
        with served(where, body) as port:
            size = len(body.encode())
            parse_cpu = cpu_parse(body)
            got = asyncio.run(measure(port, seconds))
    finally:
        shutil.rmtree(where, ignore_errors=True)
    alone, busy, scrapes = got["alone"], got["busy"], got["scrapes"]
    print(f"/metrics: {series} series, {size / 1e6:.1f} MB")
    print(f"parse_exposition CPU per scrape: {parse_cpu * 1000:.1f} ms  (target < 100 ms)")
    print(f"scrapes during the run: {len(scrapes)}, wall median {statistics.median(scrapes) * 1000:.0f} ms")
    print(f"healthy latency alone:      median {statistics.median(alone):6.1f} ms  p95 {p95(alone):6.1f} ms"
          f"  max {max(alone):6.1f} ms  (n={len(alone)})")
    print(f"healthy latency + scraping: median {statistics.median(busy):6.1f} ms  p95 {p95(busy):6.1f} ms"
          f"  max {max(busy):6.1f} ms  (n={len(busy)})")
    ok = parse_cpu < 0.1 and p95(busy) - p95(alone) < 50
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
