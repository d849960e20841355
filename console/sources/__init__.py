"""The monitored systems, built from the config.

Client libraries are heavy to import (kubernetes alone takes ~0.3 s), so each
source module is imported only when the config names such a source, and the
console builds its sources after the first frame is on screen.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Mapping

from console.sources.base import Backoff, Snapshot, Source, State, bounded_poll

if TYPE_CHECKING:
    from console.config import Config
    from console.thresholds import Limit

# The pane each kind of source reports to, in screen order.
KINDS = ("http", "kubernetes", "errors", "postgres", "redis")


def build_sources(config: "Config") -> list[Source]:
    sources: list[Source] = []
    if config.services:
        from console.sources.http import HealthCheck
        sources += [HealthCheck(s) for s in config.services]
    if config.kubernetes:
        from console.sources.kubernetes import WorkloadWatch
        sources += [WorkloadWatch(config.kubernetes, ns) for ns in config.kubernetes.namespaces]
    if config.prometheus:
        from console.sources.errors import PrometheusErrors
        sources += [PrometheusErrors(s, config.prometheus) for s in config.services]
    elif any(s.metrics for s in config.services):
        from console.sources.errors import ScrapedErrors
        sources += [ScrapedErrors(s) for s in config.services if s.metrics]
    if config.postgres:
        from console.sources.postgres import PostgresSource
        sources += [PostgresSource(t) for t in config.postgres]
    if config.redis:
        from console.sources.redis import RedisSource
        sources += [RedisSource(t) for t in config.redis]
    for source in sources:
        # A recovered server must show within two refreshes (see Backoff).
        # The sources that reconnect each build their own Backoff.
        backoff = getattr(source, "_backoff", None)
        if isinstance(backoff, Backoff):
            backoff.within(config.refresh)
    return sources


async def poll_judged(source: Source, limits: Mapping[str, "Limit"]) -> Snapshot:
    from console.thresholds import judge

    return judge(await bounded_poll(source), limits)


# How long ``poll_once`` waits before reading again a source whose first
# reading was only a baseline (scraped counters: a rate needs two scrapes).
BASELINE_GAP_S = 1.0


async def poll_once(sources: list[Source], limits: Mapping[str, "Limit"],
                    baseline_gap: float = BASELINE_GAP_S) -> list[Snapshot]:
    """Every source once, concurrently; each bounded by its own timeout. A
    source whose reading was only a baseline is read once more, after
    ``baseline_gap``: `status` on a scraped service reports its rates, not
    "unknown"."""
    first = list(await asyncio.gather(*(poll_judged(s, limits) for s in sources)))
    again = [i for i, snap in enumerate(first) if snap.details.get("baseline")]
    if again:
        await asyncio.sleep(baseline_gap)
        second = await asyncio.gather(*(poll_judged(sources[i], limits) for i in again))
        for i, snap in zip(again, second):
            first[i] = snap
    return first


async def close_all(sources: list[Source]) -> None:
    await asyncio.gather(*(s.close() for s in sources), return_exceptions=True)


def overall(snapshots: list[Snapshot]) -> State:
    state = State.OK
    for snap in snapshots:
        state = state.worst(snap.state)
    return state
