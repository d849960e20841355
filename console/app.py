"""The Textual app: wiring only.

Themes, the keymap, the workers that poll, the one handler for a worker
that died, and leaving when the terminal hangs up. The incident's logic is
the headless session's (console/incident/session.py); the layout, tabs,
zoom, filter, help and the incident's keys are the main screen's
(console/screens/main.py). Data flows one way: source -> snapshot ->
message -> session and pane. Each source has its own poll loop; the next
poll is scheduled only when the previous one has finished, so a hung source
never piles up requests nor delays the others.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timezone
from functools import partial
from typing import Callable, Iterable, Mapping

from textual import events
from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from console import themes
from console.config import Config
from console.footprint import settle_after_start
from console.incident.session import IncidentSession, leaving
from console.screens.main import GRID_MIN_SIZE, MainScreen
from console.text import inert
from console.vocabulary import Snapshot

Fault = tuple[str, Callable[[], object]]
# What `+`/`-` step through (seconds between polls).
REFRESH_STEPS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
# A second q within this many seconds quits even with entries saved nowhere.
FORCE_QUIT_SECONDS = 5.0


def _inert_system_commands():
    from console.screens.palette import InertSystemCommands  # imported when the palette first opens
    return InertSystemCommands


class SnapshotArrived(Message):
    """A source's new reading. A backlog for one source collapses to the newest."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotArrived) and message.snapshot.key == self.snapshot.key


class ShareSynced(Message):
    """A share sync finished: what it merged into the journal, and the sharing state."""

    def __init__(self, merged: tuple, state) -> None:
        super().__init__()
        self.merged, self.state = merged, state


class IncidentConsole(App):
    CSS_PATH = "console.tcss"
    TITLE = "incident-console"
    ENABLE_COMMAND_PALETTE = True
    COMMANDS = {_inert_system_commands}
    # The screen gets these classes as the terminal is resized; console.tcss
    # shows tabs below GRID_MIN_SIZE and the grid of six from there.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (GRID_MIN_SIZE[0], "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (GRID_MIN_SIZE[1], "-tall")]
    BINDINGS = [
        Binding("colon,ctrl+p", "command_palette", "Commands", show=False, id="palette"),
    ]

    def __init__(self, config: Config, read_only: bool = False, theme_name: str | None = None,
                 faults: Mapping[str, Fault] | None = None, clock: Callable[[], datetime] | None = None,
                 sources: list | None = None, journal=None, watching: bool = False, share=None) -> None:
        self.started = time.monotonic()
        super().__init__()
        # Over SSH every animation frame is bytes on the wire.
        self.animation_level = "none"
        self.config = config
        self.read_only = read_only
        self.faults = dict(faults or {})
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        # Watching (`incident-console watch`): a follower that changes nothing.
        self.watching = watching
        self.session = IncidentSession(config, journal, self.clock, read_only=read_only or watching,
                                       following=watching)
        self.share = share  # console.incident.share.Share, when the config shares the incident
        self._share_timer = None
        self._share_seen: object = None  # the journal's events as of the last sync
        self.sources = sources
        self.first_frame_s: float | None = None
        self.playbooks_error: str | None = None  # why they could not be loaded at all
        # Printed on the terminal after the app ends (where unwritten entries went).
        self.exit_messages: list[str] = []
        self.cleanups: list[Callable[[], object]] = []  # run if a hang-up must end the process hard
        self.hung_up = False
        self.quit_done = False  # journal and connections closed: only the terminal is left
        self._force_quit_until = 0.0
        self._wake = asyncio.Event()
        self._refresh_chosen: float | None = None  # `+`/`-` change the interval while the console runs
        self._theme_name = theme_name
        self._register_themes()
        if config.keymap:
            self.set_keymap(dict(config.keymap))

    # ---- themes ------------------------------------------------------------
    def _register_themes(self) -> None:
        specs, self.theme_problems = themes.discover(themes.SHIPPED, themes.user_dir())
        for spec in specs.values():
            self.register_theme(spec.to_theme())
        requested = self._theme_name
        if not requested or requested == self.config.theme:
            requested = self.config.chosen_theme  # the environment's theme, when it has one
        name, self.theme_problem = themes.choose(requested, specs)
        self.theme = name if name in self.available_themes else "textual-dark"

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return themes.variable_defaults(self.current_theme)

    # ---- start -------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        if self.watching:
            from console.screens.watch import WatchScreen

            return WatchScreen(self.config)
        return MainScreen(self.config, self.read_only)

    @property
    def main(self) -> MainScreen:
        # The main screen, even while a modal screen is up.
        return self.screen_stack[0]

    def on_mount(self) -> None:
        # First of all, before the first frame: a hang-up from now on quits
        # through the app (journal closed), not through the default handler.
        self._watch_terminal()

    def begin(self) -> None:
        """Called by the main screen once it is mounted."""
        for problem in self.theme_problems:
            self.notify(str(problem), title="theme not loaded", severity="warning", timeout=15)
        if self.theme_problem:
            self.notify(self.theme_problem, title="theme", severity="warning", timeout=15)
        self._tick()
        self.set_interval(1.0, self._tick)
        journal = self.session.journal
        if journal is not None:
            for merged in journal.recovered:
                self.notify(f"merged entries left unwritten by an earlier session from {merged}",
                            title="journal", timeout=15)
            self.show_journal()
            # Other writers (a second console, `incident-console note`) show
            # within a second; one stat() when nothing changed.
            self.set_interval(0.5, self._journal_refresh)
        self.call_after_refresh(self._first_frame)
        self._start_sharing()
        self.run_worker(self._start_sources(), name="start-sources", group="poll", exit_on_error=False)

    def _first_frame(self) -> None:
        self.first_frame_s = time.monotonic() - self.started
        self.log.info(f"first frame after {self.first_frame_s * 1000:.0f} ms")
        self.set_timer(5.0, settle_after_start)  # once the sources are built and the panes filled

    # ---- polling -----------------------------------------------------------
    async def _start_sources(self) -> None:
        if self.sources is None:
            from console.sources import build_sources
            # Client libraries import slowly: build them off the event loop,
            # after the first frame is on screen.
            self.sources = await asyncio.to_thread(build_sources, self.config)
        self.main.expect(self.sources)
        for source in self.sources:
            self.run_worker(self._watch(source), name=f"poll {source.kind}:{source.name}",
                            group="poll", exit_on_error=False)
        # Playbooks only once every source polls, in a worker of their own: a
        # broken playbook file must never stop (or delay) monitoring.
        self.run_worker(self._start_playbooks(), name="start-playbooks", group="playbooks", exit_on_error=False)

    async def _watch(self, source) -> None:
        from console.sources import poll_judged

        while True:
            snapshot = await poll_judged(source, self.config.thresholds)
            self.post_message(SnapshotArrived(snapshot))
            wake = self._wake
            try:
                await asyncio.wait_for(wake.wait(), self.refresh_s)
            except asyncio.TimeoutError:
                pass

    async def _start_playbooks(self) -> None:
        desk = await asyncio.to_thread(self.session.read_playbooks)
        problems = list(desk.problems)
        for problem in problems[:3]:
            self.notify(str(problem), title="playbook problem", severity="warning", timeout=30)
        if len(problems) > 3:
            self.notify(f"and {len(problems) - 3} more: incident-console check lists them all",
                        title="playbook problems", severity="warning", timeout=30)
        self.session.attach(self.sources or ())
        self.session.use_playbooks(desk)  # last: whoever waits for playbooks finds everything said
        self.show_journal()

    def on_snapshot_arrived(self, message: SnapshotArrived) -> None:
        snapshot = message.snapshot
        try:
            self.main.take(snapshot)
            seen = self.session.observe(snapshot)
        except Exception as exc:  # a reading must never take the console down
            self.log.error(f"reading of {snapshot.kind}:{snapshot.name} failed: {exc!r}")
            self.notify(f"could not show a reading of {snapshot.name}: {exc}", severity="error")
            return
        if seen.suggestions:  # one toast however many: a small screen must stay readable
            self.notify("; ".join(p.title for p in seen.suggestions) + " — press p to open",
                        title="suggested playbook" + ("s" if len(seen.suggestions) > 1 else ""),
                        severity="warning", timeout=15)
        if seen.journaled:
            self.show_journal()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a worker that died is seen: on screen and in the
        journal, instead of a poll loop or a step that stops silently."""
        if event.state is not WorkerState.ERROR:
            return
        from console.sources.base import describe_error

        worker = event.worker
        why = describe_error(worker.error) if worker.error is not None else "failed"
        self.log.error(f"worker {worker.name} died: {worker.error!r}")
        if worker.group == "playbooks":
            self.playbooks_error = f"playbooks not loaded: {why}"
            self.notify(self.playbooks_error + " (incident-console check lists the problems)",
                        title="playbooks", severity="error", timeout=30)
        else:
            self.notify(f"{worker.name} stopped: {why}", title="internal error", severity="error", timeout=30)
        if worker.group == "share" and self.share is not None:
            self._share_timer = self.set_timer(5.0, self._sync_share)  # sharing goes on
        if not self.session.following:
            self.session.record("console.error", worker=worker.name, error=why)

    # ---- the journal -------------------------------------------------------
    def _tick(self) -> None:
        now = self.clock()
        try:
            self.main.tick(now, self.session.incident(now) if self.session.journal is not None else None)
        except (NoMatches, ScreenStackError):
            pass  # a timer that fires while the app shuts down finds the panes gone

    def show_journal(self) -> None:
        if self.session.journal is None:
            return
        self.main.show_incident(self.session, self.clock())
        problem = self.session.problem()
        if problem:
            self.notify(problem, title="journal", severity="error", timeout=10)

    def _journal_refresh(self) -> None:
        if self.session.refresh():
            try:
                self.show_journal()
            except (NoMatches, ScreenStackError):
                pass  # as in _tick: the app is shutting down

    # ---- sharing (console/incident/share.py) ---------------------------------
    # One sync at a time in a thread (the Redis client blocks): the next is
    # set ~1 s after the last one finished, or sooner once a local entry is
    # in the journal, so other consoles see a note within two seconds.
    def _start_sharing(self) -> None:
        journal = self.session.journal
        if journal is None or (self.share is None and self.config.share is None):
            return
        if self.share is None:
            import socket

            from console.incident.share import Share

            # A follower is there as a responder too, and says it only watches.
            host = f"{socket.gethostname()} (watching)" if self.watching else None
            self.share = Share(self.config.share, journal.operator, host=host, publishes=not self.watching)
        self._sync_share()
        self.set_interval(0.2, self._share_if_written)

    def _sync_share(self) -> None:
        self._share_timer = None
        share, journal = self.share, self.session.journal
        if share is None:
            return
        self._share_seen = self.session.events()
        self.run_worker(partial(self._share_sync, share, journal), name="share sync", group="share",
                        thread=True, exclusive=True, exit_on_error=False)

    def _share_sync(self, share, journal) -> None:
        """In the worker's thread: never touches a widget."""
        merged = share.sync(journal)
        self.post_message(ShareSynced(tuple(merged), share.state))

    def _share_if_written(self) -> None:
        if self._share_timer is not None and self.session.events() is not self._share_seen:
            self._share_timer.stop()
            self._sync_share()

    def on_share_synced(self, message: ShareSynced) -> None:
        if self.share is None:
            return  # closed while it ran
        if message.merged:
            self._share_seen = self.session.events()  # merged, not written here: nothing to publish
        self._share_timer = self.set_timer(1.0, self._sync_share)
        try:
            self.main.header.share(message.state)
            if message.merged:
                self.show_journal()
        except (NoMatches, ScreenStackError):
            pass  # the app is shutting down

    def _close_share(self) -> None:
        share, self.share = self.share, None
        if share is not None:
            self.workers.cancel_group(self, "share")
            try:
                share.close()
            except Exception as exc:  # leaving must not fail on a dead Redis
                self.log.warning(f"closing the share: {exc!r}")

    # ---- actions -----------------------------------------------------------
    def action_refresh_now(self) -> None:
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    @property
    def refresh_s(self) -> float:
        return self._refresh_chosen if self._refresh_chosen is not None else float(self.config.refresh)

    @refresh_s.setter
    def refresh_s(self, seconds: float) -> None:
        self._refresh_chosen = seconds

    def action_refresh_interval(self, step: int) -> None:
        """`+`/`-`: poll faster or slower, through the steps pg_activity users know."""
        slower = [s for s in REFRESH_STEPS if s > self.refresh_s]
        faster = [s for s in REFRESH_STEPS if s < self.refresh_s]
        chosen = (slower[0] if slower else REFRESH_STEPS[-1]) if step > 0 else (faster[-1] if faster else REFRESH_STEPS[0])
        self.refresh_s = chosen
        self.action_refresh_now()  # the new interval counts from now
        self.notify(f"refresh every {chosen:g} s", timeout=3)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Refresh now", "Poll every source immediately", self.action_refresh_now)
        for title, help_text, callback in self.main.commands():
            yield SystemCommand(title, help_text, callback)
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

    # ---- guards: every toast inert, no key can end the console ----------------
    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Every toast goes through here, as inert text: messages carry playbook
        titles, error bodies and paths, which Textual would parse as markup
        (a live link, a clickable action, or a markup error)."""
        super().notify(inert(message, 1000), title=inert(title, 100), severity=severity, timeout=timeout,
                       markup=False)

    async def on_event(self, event: events.Event) -> None:
        # Keys typed behind a quit arrive when the screens are gone: nothing
        # is left for them to act on (Textual would raise ScreenStackError).
        if isinstance(event, events.Key) and not self.screen_stack:
            return
        await super().on_event(event)

    def action_command_palette(self) -> None:
        from console.screens.palette import Palette  # see Palette: Textual's fails when closed mid-gather

        if self.use_command_palette and not Palette.is_open(self):
            self.push_screen(Palette(id="--command-palette"))

    def pop_screen(self):
        """Never the main screen: a burst of keys can close the same dialog
        twice (Enter, then a queued Escape), and the console must survive it."""
        if len(self.screen_stack) <= 1:
            from textual.await_complete import AwaitComplete

            self.log.warning("pop_screen with only the main screen left: ignored")
            return AwaitComplete(asyncio.sleep(0))
        return super().pop_screen()

    # ---- leaving -----------------------------------------------------------
    async def action_quit(self) -> None:
        if not self._journal_left_safely():
            return
        self.workers.cancel_group(self, "poll")
        self._close_share()
        self.session.close()
        if self.sources:
            from console.sources import close_all
            try:
                await asyncio.wait_for(close_all(self.sources), 2.0)
            except asyncio.TimeoutError:
                pass  # a hung server must not keep the console open
        self.quit_done = True
        self.exit()

    def _journal_left_safely(self) -> bool:
        """Whether quitting now loses no entry: all are written, or saved in
        a recovery file (named on screen and on the terminal after exit).
        If neither, the first q is refused and says why; a second within
        FORCE_QUIT_SECONDS quits, printing the entries on the terminal."""
        n = self.session.unwritten()
        if not n:
            return True
        journal = self.session.journal
        try:
            message = self.session.save_unwritten()
        except OSError as exc:
            now = time.monotonic()
            if self.hung_up or now < self._force_quit_until:
                self.exit_messages.append(leaving(journal) or "")
                return True
            self._force_quit_until = now + FORCE_QUIT_SECONDS
            self.notify(f"Not quitting: {n} journal {'entry is' if n == 1 else 'entries are'} not written "
                        f"({journal.write_problem}), and {exc}. Free some space and they are "
                        f"written within seconds, or press q again within {FORCE_QUIT_SECONDS:.0f} s to quit "
                        f"anyway: they will be printed on the terminal.",
                        title="journal", severity="error", timeout=FORCE_QUIT_SECONDS)
            return False
        self.exit_messages.append(message)
        self.notify(message, title="journal", severity="warning")
        return True

    def _watch_terminal(self) -> None:
        """Leave cleanly (journal closed, connections closed) when the SSH
        session drops or the terminal goes away: SIGHUP/SIGTERM quit through
        the app rather than unwinding it, and a terminal that hung up without
        a signal (nohup, a dead multiplexer) is noticed within two seconds."""
        if self.is_headless:
            return
        import signal
        import sys

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._hang_up)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        stdin = sys.__stdin__
        if stdin is not None and stdin.isatty():
            self.set_interval(2.0, lambda: self._check_terminal(stdin.fileno()))

    def _check_terminal(self, fd: int) -> None:
        import termios

        try:
            termios.tcgetattr(fd)
        except (OSError, termios.error):
            self._hang_up()

    def _hang_up(self) -> None:
        """Quit because the terminal is gone. Textual's shutdown can block
        forever writing to a dead terminal (seen once: its writer queue full),
        so a watchdog makes sure the journal is closed and what we started is
        stopped even then, and the process ends."""
        import threading

        self.hung_up = True  # nobody is there to confirm a quit
        self.call_later(self.action_quit)
        if not getattr(self, "_watchdog", None):
            self._watchdog = threading.Timer(5.0, self._leave_now)
            self._watchdog.daemon = True
            self._watchdog.start()

    def _leave_now(self) -> None:
        journal = self.session.journal
        if journal is not None:
            try:
                journal.close()
                said = leaving(journal)
                if said:
                    os.write(2, said.encode("utf-8", "replace") + b"\n")
            except Exception:
                pass
        for cleanup in self.cleanups:
            try:
                cleanup()
            except Exception:
                pass
        # 0 when our own quit had finished and only Textual's goodbye to the
        # dead terminal hung (its writer queue, seen on a closed pty).
        os._exit(0 if self.quit_done else 129)
