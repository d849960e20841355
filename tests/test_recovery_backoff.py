"""Late recovery (issue 13): after a 45 s Redis hang was cleared, the pane
said "down … retrying" for 29 s more. Reconnection backoff must never hide a
recovered server for more than two refresh intervals."""

from __future__ import annotations

import asyncio
import time

from console import config
from console.demo.servers import RedisServer
from console.sources import build_sources, poll_judged
from console.sources.base import Backoff, State

REFRESH = 0.5
TIMEOUT = 0.3
HANG = 10.0  # 20 refreshes: long enough for the old backoff to reach 8 s


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backoff_never_holds_back_two_polls_in_a_row():
    clock = FakeClock()
    backoff = Backoff(clock=clock)
    for _ in range(10):  # a long outage: the delay reaches its cap of 30 s
        backoff.failed()
    said = [backoff.ready() for _ in range(6)]  # polls coming faster than the delay
    assert said == [False, True, False, True, False, True]
    backoff.succeeded()
    assert backoff.ready() and backoff.ready()


def test_within_caps_the_delay_and_what_is_left_of_it():
    clock = FakeClock()
    backoff = Backoff(clock=clock)
    for _ in range(6):
        backoff.failed()
    assert backoff.wait_left() == 30.0
    backoff.within(2.0)
    assert backoff.wait_left() == 2.0  # the wait already under way is cut too
    for _ in range(6):
        backoff.failed()
        assert backoff.wait_left() <= 2.0


def test_sources_built_from_the_config_wait_one_refresh_at_most():
    cfg = config.parse("refresh: 0.5\npostgres:\n  - name: primary\n    dsn: postgresql://m@127.0.0.1:1/app\n"
                       "redis:\n  - name: cache\n    url: redis://127.0.0.1:1/0\n", "c.yaml", env={})
    backoffs = [source._backoff for source in build_sources(cfg)]
    assert len(backoffs) == 2
    for backoff in backoffs:
        for _ in range(8):
            backoff.failed()
        assert backoff.wait_left() <= 0.5


async def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not seen within {timeout}s"
        await asyncio.sleep(0.05)


async def test_a_redis_back_from_a_long_hang_shows_within_two_refreshes():
    with RedisServer() as server:
        cfg = config.parse(f"refresh: {REFRESH}\nredis:\n  - name: cache\n    url: {server.url}\n"
                           f"    timeout: {TIMEOUT}\n", "c.yaml", env={})
        [source] = build_sources(cfg)
        readings: list[tuple[float, object]] = []
        stop = asyncio.Event()

        async def watch() -> None:
            # As the console polls: one poll, and the next a refresh after it ends.
            while not stop.is_set():
                snap = await poll_judged(source, cfg.thresholds)
                readings.append((time.monotonic(), snap))
                try:
                    await asyncio.wait_for(stop.wait(), REFRESH)
                except asyncio.TimeoutError:
                    pass

        task = asyncio.create_task(watch())
        try:
            await _until(lambda: readings and readings[-1][1].state is State.OK, 10, "redis up")
            server.pause()  # SIGSTOP: a hung server
            hung = time.monotonic()
            await asyncio.sleep(HANG)
            server.resume()
            resumed = time.monotonic()
            await _until(lambda: readings[-1][0] > resumed and readings[-1][1].reachable, HANG, "recovery")
        finally:
            server.resume()
            stop.set()
            await task
            await source.close()
    during = [snap for at, snap in readings if hung + TIMEOUT + 0.2 < at < resumed]
    assert during and all(snap.state is State.UNREACHABLE for snap in during)
    seen = next(at for at, snap in readings if at > resumed and snap.reachable)
    # Two refreshes, plus the poll that may be timing out as the server comes back.
    assert seen - resumed <= 2 * REFRESH + TIMEOUT + 0.5, seen - resumed
