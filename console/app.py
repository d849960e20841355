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

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual import events
from textual.containers import Grid
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Tab, Tabs

from console import themes
from console.config import Config
from console.scribe import SEVERITIES, Scribe, leaving
from console.screens.prompt import Prompt
from console.transitions import Transitions
from console.sources.base import Snapshot
from console.text import inert
from console.widgets.error_rates import ErrorRatesPane
from console.widgets.header import IncidentHeader
from console.widgets.pane import LivePane
from console.widgets.postgres import PostgresPane
from console.widgets.redis import RedisPane
from console.widgets.services import ServicesPane
from console.widgets.playbook import PlaybookPane
from console.widgets.timeline import TimelinePane

Fault = tuple[str, Callable[[], object]]
# Pane ids in their 1–6 order, and in the grid's order (left to right, top to
# bottom: the live panes in a 2x2 block, playbook and timeline on the right).
PANES = ("services", "errors", "postgres", "redis", "playbook", "timeline")
GRID_ORDER = ("services", "errors", "playbook", "postgres", "redis", "timeline")
# Below this size the panes are tabs: one at a time, the strip says which.
GRID_MIN_SIZE = (120, 34)
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
        Binding("q", "quit", "Quit", id="quit"),
        Binding("r", "refresh_now", "Refresh", id="refresh"),
        Binding("colon", "command_palette", "Commands", show=False, id="palette"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("z", "zoom", "Zoom", id="zoom"),
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("right_square_bracket", "cycle_pane(1)", "Next pane", show=False, id="pane.next"),
        Binding("left_square_bracket", "cycle_pane(-1)", "Previous pane", show=False, id="pane.previous"),
        Binding("1", "focus_pane('services')", "Services", show=False, id="pane.services"),
        Binding("2", "focus_pane('errors')", "Errors", show=False, id="pane.errors"),
        Binding("3", "focus_pane('postgres')", "PostgreSQL", show=False, id="pane.postgres"),
        Binding("4", "focus_pane('redis')", "Redis", show=False, id="pane.redis"),
        Binding("5", "focus_pane('playbook')", "Playbook", show=False, id="pane.playbook"),
        Binding("6", "focus_pane('timeline')", "Timeline", show=False, id="pane.timeline"),
        Binding("p", "choose_playbook", "Playbook", id="playbook.choose"),
        Binding("n", "note", "Note", id="incident.note"),
        Binding("D", "declare", "Declare", id="incident.declare"),
        Binding("s", "next_status", "Status", id="incident.status"),
        Binding("a", "acknowledge", "Ack", show=False, id="incident.acknowledge"),
        Binding("u", "compose_update", "Update", id="incident.update"),
    ]

    def __init__(self, config: Config, read_only: bool = False, theme_name: str | None = None,
                 faults: Mapping[str, Fault] | None = None, clock: Callable[[], datetime] | None = None,
                 sources: list | None = None, journal=None) -> None:
        self.started = time.monotonic()
        super().__init__()
        # Over SSH every animation frame is bytes on the wire.
        self.animation_level = "none"
        self.config = config
        self.read_only = read_only
        self.faults = dict(faults or {})
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.sources = sources
        self.first_frame_s: float | None = None
        self._wake = asyncio.Event()
        self._theme_name = theme_name
        self.scribe = Scribe(journal, self.clock) if journal is not None else None
        # Printed on the terminal after the app ends (where unwritten entries went).
        self.exit_messages: list[str] = []
        self.hung_up = False
        self._force_quit_until = 0.0
        self.cleanups: list[Callable[[], object]] = []  # run if a hang-up must end the process hard
        self.transitions = Transitions()
        if journal is not None:
            self.transitions.remember(journal.events())
        self.desk = None  # playbooks, loaded once the sources poll
        self.playbooks_error: str | None = None  # why they could not be loaded at all
        self.runner = None
        self.latest: dict[tuple[str, str], Snapshot] = {}
        self.current_pane = PANES[0]
        self.zoomed = False
        self._tab_labels: dict[str, str] = {}
        self._filter_target: str | None = None
        self._pane_pending = False  # a key asked for current_pane; the screen has not followed yet
        self._register_themes()
        if config.keymap:
            self.set_keymap(dict(config.keymap))

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

    def compose(self) -> ComposeResult:
        env = self.config.environment
        stale = self.config.refresh * 3 + 5
        yield IncidentHeader(env.label or env.name, env.banner, self.read_only, id="header")
        panes = {
            "services": lambda: ServicesPane(stale_after=stale, id="services", classes="pane"),
            "errors": lambda: ErrorRatesPane(stale_after=stale, id="errors", classes="pane"),
            "postgres": lambda: PostgresPane(stale_after=stale, id="postgres", classes="pane"),
            "redis": lambda: RedisPane(instances=tuple(r.name for r in self.config.redis), stale_after=stale,
                                       id="redis", classes="pane"),
            "playbook": lambda: PlaybookPane(id="playbook", classes="pane"),
            "timeline": lambda: TimelinePane(id="timeline", classes="pane"),
        }
        tabs = Tabs(*(Tab(self._tab_label(pane_id, ""), id=f"tab-{pane_id}") for pane_id in PANES), id="pane-tabs")
        tabs.can_focus = False  # 1–6 and [ ] switch panes; Tab stays for moving focus
        yield tabs
        with Grid(id="panes"):
            for pane_id in GRID_ORDER:
                yield panes[pane_id]()
        # Disabled while hidden, so it never takes the first focus.
        yield Input(placeholder="filter rows (Enter keeps it, Esc clears it)", id="filter", disabled=True)
        yield Footer(compact=True)

    @staticmethod
    def _tab_label(pane_id: str, mark: str) -> str:
        number = PANES.index(pane_id) + 1
        names = {"services": "Services", "errors": "Errors", "postgres": "PostgreSQL", "redis": "Redis",
                 "playbook": "Playbook", "timeline": "Timeline"}
        return f"{number} {names[pane_id]}{' ' + mark if mark else ''}"

    def on_mount(self) -> None:
        # Held, not queried: while a modal screen is up, queries search it.
        self.header = self.query_one(IncidentHeader)
        self.timeline = self.query_one(TimelinePane)
        self.playbook_pane = self.query_one(PlaybookPane)
        self.panes = list(self.query(LivePane))
        for problem in self.theme_problems:
            self.notify(str(problem), title="theme not loaded", severity="warning", timeout=15)
        if self.theme_problem:
            self.notify(self.theme_problem, title="theme", severity="warning", timeout=15)
        self._relayout()
        self._show_pane(self.current_pane)
        self._watch_terminal()
        self._tick()
        self.set_interval(1.0, self._tick)
        if self.scribe is not None:
            for merged in self.scribe.journal.recovered:
                self.notify(f"merged entries left unwritten by an earlier session from {merged}",
                            title="journal", timeout=15)
            self._show_journal()
            # Other writers (a second console, `incident-console note`) show
            # within a second; one stat() when nothing changed.
            self.set_interval(0.5, self._journal_refresh)
        self.call_after_refresh(self._first_frame)
        self.run_worker(self._start_sources(), name="start-sources", group="poll", exit_on_error=False)

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
        import os

        for cleanup in [self.scribe.close] if self.scribe is not None else []:
            try:
                cleanup()
                said = leaving(self.scribe.journal)
                if said:
                    os.write(2, said.encode("utf-8", "replace") + b"\n")
            except Exception:
                pass
        for cleanup in self.cleanups:
            try:
                cleanup()
            except Exception:
                pass
        os._exit(129)

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
        for pane in self.panes:
            pane.expect(sum(1 for s in self.sources if s.kind in pane.KINDS))
        for source in self.sources:
            self.run_worker(self._watch(source), name=f"poll {source.kind}:{source.name}",
                            group="poll", exit_on_error=False)
        # Playbooks only once every source polls, in a worker of their own: a
        # broken playbook file must never stop (or delay) monitoring.
        self.run_worker(self._start_playbooks(), name="start-playbooks", group="playbooks",
                        exit_on_error=False)

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
        try:
            self._take(message.snapshot)
        except Exception as exc:  # a reading must never take the console down
            self.log.error(f"reading of {message.snapshot.kind}:{message.snapshot.name} failed: {exc!r}")
            self.notify(f"could not show a reading of {message.snapshot.name}: {exc}", severity="error")

    def _take(self, snapshot: Snapshot) -> None:
        pane = self.pane_for(snapshot.kind)
        if pane is not None:
            pane.take(snapshot)
            self._label_tabs()
        self.latest[snapshot.key] = snapshot
        changes = self.transitions.observe(snapshot)
        if changes and self.scribe is not None:
            for kind, data in changes:
                self.scribe.record(kind, **data)
            self._show_journal()
        self._follow_playbooks()

    def pane_for(self, kind: str) -> LivePane | None:
        for pane in self.panes:
            if kind in pane.KINDS:
                return pane
        return None

    def _tick(self) -> None:
        now = self.clock()
        header = self.header
        if self.scribe is not None:
            header.incident = self.scribe.incident(now)
        header.tick(now)
        for pane in self.panes:
            pane.tick(now)
        self._label_tabs()

    # ---- actions -----------------------------------------------------------
    def action_refresh_now(self) -> None:
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    def action_focus_pane(self, pane_id: str) -> None:
        # current_pane is the truth at once (a following `]` counts from it);
        # the screen follows once, after the keys already read, so a burst of
        # twelve switches restyles and refocuses once, not twelve times.
        self.current_pane = pane_id
        if not self._pane_pending:
            self._pane_pending = True
            self.call_later(self._bring_current_pane)

    def _bring_current_pane(self) -> None:
        self._pane_pending = False
        self._show_pane(self.current_pane)
        self._pane(self.current_pane).table.focus()

    def action_cycle_pane(self, step: int) -> None:
        self.action_focus_pane(PANES[(PANES.index(self.current_pane) + step) % len(PANES)])

    def action_zoom(self) -> None:
        """The current pane alone on the screen, and back."""
        self.zoomed = not self.zoomed
        self._relayout()

    # ---- layout ------------------------------------------------------------
    def _pane(self, pane_id: str):
        # The main screen's pane, even while a modal screen is up.
        return self.screen_stack[0].query_one(f"#{pane_id}")

    def _relayout(self) -> None:
        """A zoomed pane fills the screen at any size (the rest is CSS)."""
        self.screen_stack[0].set_class(self.zoomed, "-zoomed")

    def _show_pane(self, pane_id: str) -> None:
        """The one place the current pane changes; the `-current` classes and
        the tab strip follow ``current_pane`` and never lead it."""
        self.current_pane = pane_id
        for other in PANES:
            self._pane(other).set_class(other == pane_id, "-current")
        tabs = self.screen_stack[0].query_one("#pane-tabs", Tabs)
        if tabs.active != f"tab-{pane_id}":
            # No echo: a TabActivated for our own change, arriving after a
            # second queued switch, would switch back, focus, and ping-pong
            # with on_descendant_focus forever (issue 10: `]]`, `123456`).
            with tabs.prevent(Tabs.TabActivated):
                tabs.active = f"tab-{pane_id}"

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        # Only a click on a tab gets here (_show_pane's own changes are not posted).
        pane_id = (event.tab.id or "").removeprefix("tab-")
        if pane_id in PANES and pane_id != self.current_pane:
            self.action_focus_pane(pane_id)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # Focus moved by Tab or a mouse click: the pane it landed in is current.
        # A focus that has already moved on (a burst of pane keys) is history,
        # not a request: only where focus is now may pick the pane, and not
        # while a pane key's request is still on its way to the screen.
        if event.widget is not self.screen_stack[0].focused or self._pane_pending:
            return
        for node in event.widget.ancestors_with_self:
            if node.has_class("pane") and node.id in PANES:
                if node.id != self.current_pane:
                    self._show_pane(node.id)
                return

    def _label_tabs(self) -> None:
        """In tabs, a pane that is not OK says so in its tab (with a symbol,
        not only a colour), so trouble in a hidden pane is seen."""
        from console.readings import STATE_MARK
        from console.sources.base import State

        for pane in self.panes:
            worst = pane.worst() if pane.snapshots else State.OK
            mark = "" if worst is State.OK else STATE_MARK[worst].split()[0]
            if str(pane.border_subtitle or "").startswith("◌ stale"):
                mark = "◌"
            if self._tab_labels.get(pane.id) != mark:
                self._tab_labels[pane.id] = mark
                self.screen_stack[0].query_one(f"#tab-{pane.id}", Tab).label = self._tab_label(pane.id, mark)

    # ---- filter and help ---------------------------------------------------
    def action_filter(self) -> None:
        """`/`: an input under the panes filters the current pane's table."""
        pane = self._pane(self.current_pane)
        if isinstance(pane, PlaybookPane):
            self.notify("the checklist is not filtered: its steps keep their order", severity="warning")
            return
        self._filter_target = self.current_pane
        box = self.query_one("#filter", Input)
        box.value = pane.table.filter_text
        box.border_title = Text(f"filter {self._tab_label(self.current_pane, '')}")
        box.disabled = False
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter" and self._filter_target:
            event.stop()
            self._apply_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.stop()
            self._close_filter()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and self.focused is not None and self.focused.id == "filter":
            event.stop()
            self._apply_filter("")
            self._close_filter()

    def _apply_filter(self, text: str) -> None:
        if self._filter_target is None:
            return
        pane = self._pane(self._filter_target)
        pane.table.set_filter(text)
        title = self._tab_label(self._filter_target, "")
        # Text, not str: a border title given as a str is parsed as markup.
        pane.border_title = Text(f"{title} · /{inert(text, 60)}" if text.strip() else getattr(pane, "TITLE", title))

    def _close_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = False
        box.disabled = True
        if self._filter_target is not None:
            self.action_focus_pane(self._filter_target)
        self._filter_target = None

    def action_help(self) -> None:
        from console.screens.help import HelpScreen

        self.push_screen(HelpScreen(self.help_sections()))

    def help_sections(self):
        """The focused pane's bindings, the app's, and the palette's commands,
        read from the bindings themselves (keymap applied)."""
        from console.screens.help import binding_rows

        sections = []
        focused = self.screen_stack[0].focused
        for node in (focused.ancestors_with_self if focused is not None else ()):
            if node is self or isinstance(node, Screen):
                continue
            rows = binding_rows(node, self._keymap, self.get_key_display)
            if rows:
                title = getattr(node, "TITLE", "") or f"{self._tab_label(self.current_pane, '')}: {type(node).__name__}"
                sections.append((f"{title} (focused)" if node is focused else title, rows))
        sections.append(("Everywhere", binding_rows(self, self._keymap, self.get_key_display)
                         + [(self.get_key_display(Binding(self.COMMAND_PALETTE_BINDING, "")), "Commands")]))
        commands = [(":", f"{c.title} — {c.help}") for c in self.get_system_commands(self.screen_stack[0])]
        sections.append(("Command palette (: or Ctrl+P, then type)", commands))
        return sections

    # ---- the journal -------------------------------------------------------
    def _show_journal(self) -> None:
        assert self.scribe is not None
        now = self.clock()
        incident = self.scribe.incident(now)
        self.timeline.show(self.scribe.journal.events(), incident)
        if self.desk is not None:
            playbook = self.desk.active(incident)
            if playbook is not None:
                self.playbook_pane.show(playbook, {s.id: incident.ticked(playbook.id, s.id) for s in playbook.steps})
        header = self.header
        header.incident = incident
        header.tick(now)
        problem = self.scribe.problem()
        if problem:
            self.notify(problem, title="journal", severity="error", timeout=10)

    def _journal_left_safely(self) -> bool:
        """Whether quitting now loses no entry: all are written, or saved in
        a recovery file (named on screen and on the terminal after exit).
        If neither, the first q is refused and says why; a second within
        FORCE_QUIT_SECONDS quits, printing the entries on the terminal."""
        assert self.scribe is not None
        n = self.scribe.unwritten()
        if not n:
            return True
        try:
            message = self.scribe.save_unwritten()
        except OSError as exc:
            now = time.monotonic()
            if self.hung_up or now < self._force_quit_until:
                self.exit_messages.append(leaving(self.scribe.journal) or "")
                return True
            self._force_quit_until = now + FORCE_QUIT_SECONDS
            self.notify(f"Not quitting: {n} journal {'entry is' if n == 1 else 'entries are'} not written "
                        f"({self.scribe.journal.write_problem}), and {exc}. Free some space and they are "
                        f"written within seconds, or press q again within {FORCE_QUIT_SECONDS:.0f} s to quit "
                        f"anyway: they will be printed on the terminal.",
                        title="journal", severity="error", timeout=FORCE_QUIT_SECONDS)
            return False
        self.exit_messages.append(message)
        self.notify(message, title="journal", severity="warning")
        return True

    def _journal_refresh(self) -> None:
        if self.scribe is not None and self.scribe.refresh():
            self._show_journal()

    def _record(self, kind: str, /, **data) -> None:
        if self.scribe is None:
            self.notify("no incident journal is open", severity="warning")
            return
        self.scribe.record(kind, **data)
        self._show_journal()

    def action_note(self) -> None:
        self.timeline.focus_input()

    def on_timeline_pane_note_written(self, message: TimelinePane.NoteWritten) -> None:
        if self.scribe is not None:
            self.scribe.journal.note(message.text)
            self._show_journal()

    def on_timeline_pane_note_edit(self, message: TimelinePane.NoteEdit) -> None:
        if self.scribe is None:
            return
        note = self.scribe.incident(self.clock()).note(message.note_id)
        if note is None:
            self.notify("only notes can be corrected, struck or pinned", severity="warning")
        elif message.how == "strike":
            self._record("note.struck", note_id=note.id)
        elif message.how == "pin":
            self._record("note.pinned", note_id=note.id, pinned=not note.pinned)
        else:
            def corrected(text: str | None) -> None:
                if text and text.strip() and text.strip() != note.text:
                    self._record("note.corrected", note_id=note.id, text=text.strip())
            self.push_screen(Prompt("Correct the note (the original is kept in the history):", note.text),
                             corrected)

    def action_declare(self) -> None:
        def declared(answer: str | None) -> None:
            if not answer or not answer.strip():
                return
            severity, _, title = answer.strip().partition(" ")
            if severity.upper() not in SEVERITIES:
                severity, title = "P2", answer.strip()
            self._record("incident.declared", title=title.strip(), severity=severity.upper())
            self._record("incident.status", status="Investigating")
        self.push_screen(Prompt("Declare an incident: severity and title", placeholder="P1 Checkout API returns 502",
                                hint="Severity P0–P3 (or SEV1–SEV4) first; P0/P1 updates are due every 15 min."),
                         declared)

    def action_next_status(self) -> None:
        from console.incident.journal import STATUSES

        incident = self.scribe.incident(self.clock()) if self.scribe else None
        if incident is None or not incident.declared:
            self.notify("declare the incident first (D)", severity="warning")
            return
        current = incident.status or STATUSES[0]
        if current == STATUSES[-1]:
            self.notify("the incident is resolved", severity="information")
            return
        self._record("incident.status", status=STATUSES[STATUSES.index(current) + 1])

    # ---- playbooks ---------------------------------------------------------
    async def _start_playbooks(self) -> None:
        from console.playbook_desk import PlaybookDesk
        from console.playbooks.runner import StepRunner

        try:
            self.desk = await asyncio.to_thread(PlaybookDesk, self.config)
        except Exception as exc:  # load_playbooks reports problems; this is the backstop
            from console.sources.base import describe_error

            self.playbooks_error = f"playbooks not loaded: {describe_error(exc)}"
            self.log.error(self.playbooks_error)
            self.notify(self.playbooks_error + " (incident-console check lists the problems)",
                        title="playbooks", severity="error", timeout=30)
            return
        for problem in self.desk.problems[:3]:
            self.notify(str(problem), title="playbook problem", severity="warning", timeout=10)
        if len(self.desk.problems) > 3:
            self.notify(f"and {len(self.desk.problems) - 3} more: incident-console check lists them all",
                        title="playbook problems", severity="warning", timeout=10)
        sources = {f"{s.kind}:{s.name}": s for s in self.sources or ()}
        record = self.scribe.record if self.scribe is not None else None
        self.runner = StepRunner(self.config, sources, record=record, read_only=self.read_only)
        if self.scribe is not None:
            self._show_journal()

    def _follow_playbooks(self) -> None:
        """Suggest playbooks whose conditions start to hold; tick steps whose
        condition live data now shows (journaled as automatic ticks)."""
        if self.desk is None:
            return
        readings = list(self.latest.values())
        fresh = self.desk.newly_suggested(readings)
        if fresh:  # one toast however many: a small screen must stay readable
            self.notify("; ".join(p.title for p in fresh) + " — press p to open",
                        title="suggested playbook" + ("s" if len(fresh) > 1 else ""), severity="warning",
                        timeout=15)
        if self.scribe is None:
            return
        incident = self.scribe.incident(self.clock())
        playbook = self.desk.active(incident)
        if playbook is None:
            return
        due = self.desk.due_auto_ticks(playbook, incident, readings)
        for step_id in due:
            self.scribe.record("playbook.tick", playbook=playbook.id, step=step_id, auto=True)
        if due:
            self._show_journal()

    def action_choose_playbook(self) -> None:
        if self.desk is None:
            self.notify(self.playbooks_error or "playbooks are still loading", severity="warning")
            return
        from console.screens.picker import PlaybookPicker

        def chosen(playbook_id: str | None) -> None:
            if playbook_id:
                self.start_playbook(playbook_id)
        self.push_screen(PlaybookPicker(self.desk.playbooks, self.desk.suggested), chosen)

    def start_playbook(self, playbook_id: str) -> None:
        self._record("playbook.started", playbook=playbook_id)
        self._follow_playbooks()
        self.playbook_pane.table.focus()

    def on_playbook_pane_step_requested(self, message: PlaybookPane.StepRequested) -> None:
        self.run_worker(self._step(message.playbook, message.step, message.how), group="steps",
                        name=f"step {message.step.id}", exit_on_error=False)

    async def _step(self, playbook, step, how: str) -> None:
        from console.playbooks.runner import Refused

        runner = self.runner
        if runner is None:
            return
        try:
            if how == "toggle" or (how == "run" and step.kind == "check"):
                ticked = self.playbook_pane.ticks.get(step.id, False)
                self._record("playbook.untick" if ticked else "playbook.tick", playbook=playbook.id,
                             step=step.id, auto=False)
            elif how == "copy" or (how == "run" and step.kind == "command" and not step.runnable):
                values = await self._ask_values(runner, step)
                if values is None or not step.command:
                    return
                # The template with the values in, for a human to paste: the
                # values passed the same check as for running, and are shown.
                copied = runner.render_command(step, values)
                self.copy_to_clipboard(copied)
                self.notify(f"copied to your clipboard (OSC 52), check before pasting: {copied}", timeout=10)
            elif step.kind == "probe":
                self.playbook_pane.show_output(step.id, "running…")
                result = await runner.probe(playbook, step)
                self.playbook_pane.show_output(step.id, result.output if result.ok else f"✖ {result.error}")
                self._show_journal()
            else:
                await self._run_mutating(runner, playbook, step)
        except Refused as refused:
            self.notify(str(refused), title="refused", severity="error", timeout=10)
            self._show_journal()

    async def _ask_values(self, runner, step) -> dict[str, str] | None:
        values: dict[str, str] = {}
        for name in runner.values_needed(step):
            answer = await self.push_screen_wait(Prompt(f"{step.title}: value for {{{name}}}"))
            if answer is None or not answer.strip():
                return None
            values[name] = answer.strip()
        return values

    async def _run_mutating(self, runner, playbook, step) -> None:
        from console.screens.confirm import ConfirmTyped

        if self.read_only:
            # Asked of the runner too, so the refusal is journaled.
            await runner.run(playbook, step, {}, "")
            return
        values = await self._ask_values(runner, step)
        if values is None:
            return
        expected = runner.expected_confirmation(step, values)
        what = runner.what_runs(step, values)  # the exact argv or script, and each value as data
        typed = await self.push_screen_wait(ConfirmTyped(f"{step.title}", what, expected))
        if typed is None:
            return
        self.playbook_pane.show_output(step.id, "running…")
        result = await runner.run(playbook, step, values, typed)
        self.playbook_pane.show_output(step.id, result.output if result.ok else f"✖ {result.error or result.output}")
        self._show_journal()

    def action_acknowledge(self) -> None:
        self._record("incident.acknowledged")

    def action_mitigated(self) -> None:
        self._record("incident.mitigated")

    def action_resolve(self) -> None:
        self._record("incident.status", status="Resolved")

    def action_severity(self) -> None:
        def chosen(answer: str | None) -> None:
            if answer and answer.strip().upper() in SEVERITIES:
                self._record("incident.severity", severity=answer.strip().upper())
            elif answer:
                self.notify(f"not a severity: {answer!r} (P0–P3 or SEV1–SEV4)", severity="warning")
        self.push_screen(Prompt("Severity (P0–P3 or SEV1–SEV4):"), chosen)

    def action_role(self, role: str) -> None:
        me = self.scribe.journal.operator.get("user") if self.scribe else ""

        def chosen(person: str | None) -> None:
            if person is not None:
                self._record("incident.role", role=role, person=person.strip())
        self.push_screen(Prompt(f"Who is {role}? (empty: nobody)", value=me or ""), chosen)

    def action_export(self) -> None:
        if self.scribe is None:
            return
        from console.incident.export import postmortem_markdown

        target = self.scribe.journal.path.with_suffix(".postmortem.md")
        try:
            target.write_text(postmortem_markdown(self.scribe.journal.events(), self.clock()), encoding="utf-8")
        except OSError as exc:
            self.notify(f"cannot write {target}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"post-mortem written to {target}")

    def action_compose_update(self) -> None:
        if self.scribe is None:
            return
        from console.incident.updates import compose
        from console.screens.update import UpdateComposer

        def text_for(channel: str) -> str:
            now = self.clock()
            return compose(channel, self.scribe.incident(now), now)

        def sent(result: tuple[str, str] | None) -> None:
            if result is None:
                return
            channel, text = result
            self.copy_to_clipboard(text)
            self._record("update.sent", channel=channel, text=text)
            self.notify(f"{channel} update copied to the clipboard and journaled")
        self.push_screen(UpdateComposer(text_for), sent)

    async def action_quit(self) -> None:
        if self.scribe is not None and not self._journal_left_safely():
            return
        self.workers.cancel_group(self, "poll")
        if self.scribe is not None:
            self.scribe.close()
        if self.sources:
            from console.sources import close_all
            try:
                await asyncio.wait_for(close_all(self.sources), 2.0)
            except asyncio.TimeoutError:
                pass  # a hung server must not keep the console open
        self.exit()

    async def on_event(self, event: events.Event) -> None:
        # Keys typed behind a quit arrive when the screens are gone: nothing
        # is left for them to act on (Textual would raise ScreenStackError).
        if isinstance(event, events.Key) and not self.screen_stack:
            return
        await super().on_event(event)

    def pop_screen(self):
        """Never the main screen: a burst of keys can close the same dialog
        twice (Enter, then a queued Escape), and the console must survive it."""
        if len(self.screen_stack) <= 1:
            from textual.await_complete import AwaitComplete

            self.log.warning("pop_screen with only the main screen left: ignored")
            return AwaitComplete(asyncio.sleep(0))
        return super().pop_screen()

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Every toast goes through here, as inert text: messages carry playbook
        titles, error bodies and paths, which Textual would parse as markup
        (a live link, a clickable action, or a markup error)."""
        super().notify(inert(message, 1000), title=inert(title, 100), severity=severity, timeout=timeout,
                       markup=False)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Refresh now", "Poll every source immediately", self.action_refresh_now)
        for pane_id in PANES:
            label = self._tab_label(pane_id, "")
            yield SystemCommand(f"Go to pane {label}", f"Focus {label[2:]} ({label[0]})",
                                lambda p=pane_id: self.action_focus_pane(p))
        yield SystemCommand("Zoom pane", "The current pane alone on the screen, and back (z)", self.action_zoom)
        yield SystemCommand("Filter table", "Filter the current pane's rows (/)", self.action_filter)
        yield SystemCommand("Help: keys and commands", "Every binding and command (?)", self.action_help)
        yield SystemCommand("Declare incident", "Title and severity (D)", self.action_declare)
        yield SystemCommand("Acknowledge incident", "Record the acknowledgement time (a)", self.action_acknowledge)
        yield SystemCommand("Status: next", "Investigating → Identified → Monitoring → Resolved (s)",
                            self.action_next_status)
        yield SystemCommand("Mark mitigated", "Record the mitigation time (TTM)", self.action_mitigated)
        yield SystemCommand("Resolve incident", "Status Resolved (TTR)", self.action_resolve)
        yield SystemCommand("Set severity", "P0–P3 or SEV1–SEV4", self.action_severity)
        for role in ("commander", "scribe", "communications"):
            yield SystemCommand(f"Role: {role}", f"Who is {role} (default: you)", lambda r=role: self.action_role(r))
        yield SystemCommand("Compose status update", "Fill a template, copy it, journal it (u)",
                            self.action_compose_update)
        yield SystemCommand("Write a note", "Focus the scribe line (n)", self.action_note)
        yield SystemCommand("Choose playbook", "Suggested ones first (p)", self.action_choose_playbook)
        yield SystemCommand("Export post-mortem", "Markdown beside the journal file", self.action_export)
        for playbook in self.desk.playbooks if self.desk is not None else ():
            yield SystemCommand(f"Playbook: {playbook.title}", "; ".join(playbook.symptoms)[:200] or playbook.id,
                                lambda p=playbook.id: self.start_playbook(p))
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
