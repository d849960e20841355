"""What the whole app puts on the terminal, for tests that drive it headless."""

from __future__ import annotations

import asyncio
import re

# What must never reach the terminal from a monitored system: escape and C0/C1
# controls (other than the newline between lines) and bidirectional overrides.
FORBIDDEN = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


async def wait(pilot, predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"{what} not reached within {timeout}s"
        await pilot.pause(0.05)


def latest(pane, name: str | None = None):
    """The newest snapshot a pane holds (of the source ``name`` when given)."""
    for (_, source), snap in pane.snapshots.items():
        if name is None or source == name:
            return snap
    return None


def screen_text(app) -> str:
    """Every cell of the current screen as the compositor renders it."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


def widget_texts(app) -> dict[str, str]:
    """Each widget's own rendered lines, whether or not they are scrolled into view."""
    from textual.geometry import Region

    out: dict[str, str] = {}
    for widget in app.screen.walk_children(with_self=True):
        width, height = widget.size
        if not width or not height:
            continue
        strips = widget.render_lines(Region(0, 0, width, height))
        out[f"{type(widget).__name__}#{widget.id}:{id(widget)}"] = "\n".join(
            "".join(segment.text for segment in strip) for strip in strips)
    return out


def live_yaml(pg_dsn: str, redis_url: str, redis_timeout: float | None = None) -> str:
    """Config lines for one real PostgreSQL and one real Redis, polled every 0.3 s."""
    timeout = f"\n    timeout: {redis_timeout}" if redis_timeout is not None else ""
    return (f"refresh: 0.3\npostgres:\n  - name: primary\n    dsn: {pg_dsn}\n"
            f"redis:\n  - name: cache\n    url: {redis_url}{timeout}\n")
