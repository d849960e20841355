"""The Textual app: composes the panes, schedules polls, routes snapshots.

Data flows one way: source -> snapshot -> message -> pane. Each source has
its own poll loop; the next poll is scheduled only when the previous one has
finished, so a hung source never piles up requests nor delays the others.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Callable, Iterable, Mapping

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer

from console.config import Config
from console.sources.base import Snapshot
from console.widgets.error_rates import ErrorRatesPane
from console.widgets.header import IncidentHeader
from console.widgets.pane import LivePane
from console.widgets.postgres import PostgresPane
from console.widgets.redis import RedisPane
from console.widgets.services import ServicesPane

Fault = tuple[str, Callable[[], object]]
THEMES = {"dark": "textual-dark", "light": "textual-light", "ansi": "textual-ansi", "war-room": "textual-dark"}


class SnapshotArrived(Message):
    """A source's new reading. A backlog for one source collapses to the newest."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotArrived) and message.snapshot.key == self.snapshot.key


class IncidentConsole(App):
    CSS_PATH = "console.tcss"
    TITLE = "incident-console"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("r", "refresh_now", "Refresh", id="refresh"),
        Binding("1", "focus_pane('services')", "Services", show=False, id="pane.services"),
        Binding("2", "focus_pane('errors')", "Errors", show=False, id="pane.errors"),
        Binding("3", "focus_pane('postgres')", "PostgreSQL", show=False, id="pane.postgres"),
        Binding("4", "focus_pane('redis')", "Redis", show=False, id="pane.redis"),
    ]

    def __init__(self, config: Config, read_only: bool = False, theme_name: str | None = None,
                 faults: Mapping[str, Fault] | None = None, clock: Callable[[], datetime] | None = None,
                 sources: list | None = None) -> None:
        self.started = time.monotonic()
        super().__init__()
        self.config = config
        self.read_only = read_only
        self.faults = dict(faults or {})
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.sources = sources
        self.first_frame_s: float | None = None
        self._wake = asyncio.Event()
        self._theme_name = theme_name

    def compose(self) -> ComposeResult:
        env = self.config.environment
        stale = self.config.refresh * 3 + 5
        yield IncidentHeader(env.name, env.banner, self.read_only, id="header")
        with Grid(id="live"):
            yield ServicesPane(stale_after=stale, id="services")
            yield ErrorRatesPane(stale_after=stale, id="errors")
            yield PostgresPane(stale_after=stale, id="postgres")
            yield RedisPane(instances=tuple(r.name for r in self.config.redis), stale_after=stale, id="redis")
        yield Footer()

    def on_mount(self) -> None:
        if self._theme_name:
            self.theme = THEMES.get(self._theme_name, self._theme_name) \
                if THEMES.get(self._theme_name, self._theme_name) in self.available_themes else "textual-dark"
        self._tick()
        self.set_interval(1.0, self._tick)
        self.call_after_refresh(self._first_frame)
        self.run_worker(self._start_sources(), name="start-sources", group="poll", exit_on_error=False)

    def _first_frame(self) -> None:
        self.first_frame_s = time.monotonic() - self.started
        self.log.info(f"first frame after {self.first_frame_s * 1000:.0f} ms")

    # ---- polling -----------------------------------------------------------
    async def _start_sources(self) -> None:
        if self.sources is None:
            from console.sources import build_sources
            # Client libraries import slowly: build them off the event loop,
            # after the first frame is on screen.
            self.sources = await asyncio.to_thread(build_sources, self.config)
        for pane in self.query(LivePane):
            pane.expect(sum(1 for s in self.sources if s.kind in pane.KINDS))
        for source in self.sources:
            self.run_worker(self._watch(source), name=f"poll {source.kind}:{source.name}",
                            group="poll", exit_on_error=False)

    async def _watch(self, source) -> None:
        from console.sources import poll_judged

        while True:
            snapshot = await poll_judged(source, self.config.thresholds)
            self.post_message(SnapshotArrived(snapshot))
            wake = self._wake
            try:
                await asyncio.wait_for(wake.wait(), self.config.refresh)
            except asyncio.TimeoutError:
                pass

    def on_snapshot_arrived(self, message: SnapshotArrived) -> None:
        pane = self.pane_for(message.snapshot.kind)
        if pane is not None:
            pane.take(message.snapshot)

    def pane_for(self, kind: str) -> LivePane | None:
        for pane in self.query(LivePane):
            if kind in pane.KINDS:
                return pane
        return None

    def _tick(self) -> None:
        now = self.clock()
        self.query_one(IncidentHeader).tick(now)
        for pane in self.query(LivePane):
            pane.tick(now)

    # ---- actions -----------------------------------------------------------
    def action_refresh_now(self) -> None:
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    def action_focus_pane(self, pane_id: str) -> None:
        pane = self.query_one(f"#{pane_id}", LivePane)
        pane.table.focus()

    async def action_quit(self) -> None:
        self.workers.cancel_group(self, "poll")
        if self.sources:
            from console.sources import close_all
            try:
                await asyncio.wait_for(close_all(self.sources), 2.0)
            except asyncio.TimeoutError:
                pass  # a hung server must not keep the console open
        self.exit()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Refresh now", "Poll every source immediately", self.action_refresh_now)
        for name, (description, toggle) in self.faults.items():
            yield SystemCommand(f"Demo fault: {name}", description, lambda t=toggle, n=name: self._toggle(n, t))

    def _toggle(self, name: str, toggle: Callable[[], object]) -> None:
        def run() -> None:
            try:
                result = toggle()
            except Exception as exc:  # a demo fault failing must not end the demo
                self.notify(f"fault {name} failed: {exc}", severity="error")
                return
            self.notify(f"fault {name}: {result}" if result is not None else f"fault {name} toggled")
        self.run_worker(run, thread=True, name=f"fault {name}", exit_on_error=False)
