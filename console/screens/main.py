"""The main screen: six panes, the tab strip, zoom, filter and help.

Layout lives here, not in the App (as posting's MainScreen does). Below
GRID_MIN_SIZE the panes become tabs: one at a time, the strip says which
and marks a pane that is not fine. ``current_pane`` is the one truth of
which pane is current; the tab strip, the ``-current`` classes and the
focus follow it and never lead it (two queued pane keys once ping-ponged
between the tab strip and the focus forever).
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import events, getters
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Input, Tab, Tabs

from console.readings import STATE_MARK
from console.screens.drilling import RowKeys
from console.screens.incident_keys import INCIDENT_BINDINGS, IncidentKeys
from console.text import inert
from console.vocabulary import Snapshot, State
from console.widgets.error_rates import ErrorRatesPane
from console.widgets.footer import KeyLine
from console.widgets.header import IncidentHeader
from console.widgets.pane import LivePane
from console.widgets.playbook import PlaybookPane
from console.widgets.postgres import PostgresPane
from console.widgets.redis import RedisPane
from console.widgets.services import ServicesPane
from console.widgets.timeline import TimelinePane

# Pane ids in their 1–6 order, and in the grid's order (left to right, top to
# bottom: the live panes in a 2x2 block, playbook and timeline on the right).
PANES = ("services", "errors", "postgres", "redis", "playbook", "timeline")
GRID_ORDER = ("services", "errors", "playbook", "postgres", "redis", "timeline")
NAMES = {"services": "Services", "errors": "Errors", "postgres": "PostgreSQL", "redis": "Redis",
         "playbook": "Playbook", "timeline": "Timeline"}
# Below this size the panes are tabs: one at a time, the strip says which.
GRID_MIN_SIZE = (120, 34)
# The incident's state keys, first in the footer: Declare, Status, Update.
FOOTER_FIRST = ("incident.declare", "incident.status", "incident.update")


def tab_label(pane_id: str, mark: str = "") -> str:
    return f"{PANES.index(pane_id) + 1} {NAMES[pane_id]}{' ' + mark if mark else ''}"


class MainScreen(RowKeys, IncidentKeys, Screen):
    BINDINGS = [
        # In the footer's order. After the focused pane's own keys (up to 25
        # columns), an 80-column footer keeps the incident's keys and help;
        # zoom, filter and quit follow where there is room (issue 13). `r` is
        # in the help only: readings refresh by themselves.
        *(b for b in INCIDENT_BINDINGS if b.id in FOOTER_FIRST),
        Binding("question_mark", "help", "Help", id="help"),
        *(b for b in INCIDENT_BINDINGS if b.id not in FOOTER_FIRST),
        Binding("z", "zoom", "Zoom", id="zoom"),
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("r", "app.refresh_now", "Refresh", show=False, id="refresh"),
        Binding("q", "app.quit", "Quit", id="quit"),
        Binding("plus", "app.refresh_interval(1)", "Slower refresh", show=False, id="refresh.slower"),
        Binding("minus", "app.refresh_interval(-1)", "Faster refresh", show=False, id="refresh.faster"),
        Binding("right_square_bracket", "cycle_pane(1)", "Next pane", show=False, id="pane.next"),
        Binding("left_square_bracket", "cycle_pane(-1)", "Previous pane", show=False, id="pane.previous"),
        *(Binding(str(n), f"focus_pane('{pane_id}')", NAMES[pane_id], show=False, id=f"pane.{pane_id}")
          for n, pane_id in enumerate(PANES, start=1)),
    ]

    def __init__(self, config, read_only: bool = False) -> None:
        super().__init__(id="_default")
        self.config = config
        self.read_only = read_only
        self.current_pane = PANES[0]
        self.zoomed = False
        self._tab_marks: dict[str, str] = {}
        self._filter_target: str | None = None
        self._pane_pending = False  # a key asked for current_pane; the screen has not followed yet

    def compose(self) -> ComposeResult:
        env = self.config.environment
        stale = self.config.refresh * 3 + 5
        yield IncidentHeader(env.label or env.name, env.banner, self.read_only, id="header")
        panes = {
            "services": lambda: ServicesPane(stale_after=stale, id="services", classes="pane"),
            "errors": lambda: ErrorRatesPane(stale_after=stale, id="errors", classes="pane"),
            "postgres": lambda: PostgresPane(stale_after=stale, blast=self._blast, id="postgres", classes="pane"),
            "redis": lambda: RedisPane(instances=tuple(r.name for r in self.config.redis), stale_after=stale,
                                       id="redis", classes="pane"),
            "playbook": lambda: PlaybookPane(id="playbook", classes="pane"),
            "timeline": lambda: TimelinePane(id="timeline", classes="pane"),
        }
        tabs = Tabs(*(Tab(tab_label(pane_id), id=f"tab-{pane_id}") for pane_id in PANES), id="pane-tabs")
        tabs.can_focus = False  # 1–6 and [ ] switch panes; Tab stays for moving focus
        yield tabs
        with Grid(id="panes"):
            for pane_id in GRID_ORDER:
                yield panes[pane_id]()
        # Disabled while hidden, so it never takes the first focus.
        yield Input(placeholder="filter rows (Enter keeps it, Esc clears it)", id="filter", disabled=True)
        # The palette is named in the help and opened with : or Ctrl+P; its footer
        # entry would push Status and Update off an 80-column footer.
        yield KeyLine(compact=True, show_command_palette=False)

    header = getters.query_one(IncidentHeader)
    timeline = getters.query_one(TimelinePane)
    playbook_pane = getters.query_one(PlaybookPane)

    def on_mount(self) -> None:
        self.panes = list(self.query(LivePane))
        self._relayout()
        self._show_pane(self.current_pane)
        self.app.begin()  # the app polls, ticks and shows the journal once there is a screen to show it

    # ---- readings ----------------------------------------------------------
    def pane_for(self, kind: str) -> LivePane | None:
        for pane in self.panes:
            if kind in pane.KINDS:
                return pane
        return None

    def take(self, snapshot: Snapshot) -> None:
        pane = self.pane_for(snapshot.kind)
        if pane is not None:
            pane.take(snapshot)
            self._label_tabs()

    def expect(self, sources) -> None:
        for pane in self.panes:
            pane.expect(sum(1 for s in sources if s.kind in pane.KINDS))

    def tick(self, now: datetime, incident=None) -> None:
        if incident is not None:
            self.header.incident = incident
        self.header.tick(now)
        for pane in self.panes:
            pane.tick(now)
        self._label_tabs()

    def show_incident(self, session, now: datetime) -> None:
        """The header, the timeline and the checklist, from the journal."""
        incident = session.incident(now)
        self.timeline.show(session.events(), incident)
        checklist = session.checklist()
        if checklist is not None:
            self.playbook_pane.show(*checklist)
        self.tick(now, incident)

    def _blast(self, application, client) -> str:
        from console.incident.blast import in_a_line

        return in_a_line(self.config, self.app.session.latest, application, client)

    # ---- panes -------------------------------------------------------------
    def pane(self, pane_id: str):
        return self.query_one(f"#{pane_id}")

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
        self.pane(self.current_pane).table.focus()

    def action_cycle_pane(self, step: int) -> None:
        self.action_focus_pane(PANES[(PANES.index(self.current_pane) + step) % len(PANES)])

    def action_zoom(self) -> None:
        """The current pane alone on the screen, and back."""
        self.zoomed = not self.zoomed
        self._relayout()

    def _relayout(self) -> None:
        """A zoomed pane fills the screen at any size (the rest is CSS)."""
        self.set_class(self.zoomed, "-zoomed")

    def _show_pane(self, pane_id: str) -> None:
        """The one place the current pane changes on screen."""
        self.current_pane = pane_id
        for other in PANES:
            self.pane(other).set_class(other == pane_id, "-current")
        tabs = self.query_one("#pane-tabs", Tabs)
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
        # not a request, and nothing may pick the pane while a pane key's
        # request is still on its way to the screen.
        if event.widget is not self.focused or self._pane_pending:
            return
        for node in event.widget.ancestors_with_self:
            if node.has_class("pane") and node.id in PANES:
                if node.id != self.current_pane:
                    self._show_pane(node.id)
                return

    def _label_tabs(self) -> None:
        """In tabs, a pane that is not OK says so in its tab (with a symbol,
        not only a colour), so trouble in a hidden pane is seen."""
        for pane in self.panes:
            worst = pane.worst() if pane.snapshots else State.OK
            mark = "" if worst is State.OK else STATE_MARK[worst].split()[0]
            if pane.stale:
                mark = "◌"
            if self._tab_marks.get(pane.id) != mark:
                self._tab_marks[pane.id] = mark
                self.query_one(f"#tab-{pane.id}", Tab).label = tab_label(pane.id, mark)

    # ---- filter ------------------------------------------------------------
    def action_filter(self) -> None:
        """`/`: an input under the panes filters the current pane's table."""
        pane = self.pane(self.current_pane)
        if isinstance(pane, PlaybookPane):
            self.notify("the checklist is not filtered: its steps keep their order", severity="warning")
            return
        self._filter_target = self.current_pane
        box = self.query_one("#filter", Input)
        box.value = pane.table.filter_text
        box.border_title = Text(f"filter {tab_label(self.current_pane)}")
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
        pane = self.pane(self._filter_target)
        pane.table.set_filter(text)
        title = tab_label(self._filter_target)
        # Text, not str: a border title given as a str is parsed as markup.
        pane.border_title = Text(f"{title} · /{inert(text, 60)}" if text.strip() else getattr(pane, "TITLE", title))

    def _close_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = False
        box.disabled = True
        if self._filter_target is not None:
            self.action_focus_pane(self._filter_target)
        self._filter_target = None

    # ---- help --------------------------------------------------------------
    def action_help(self) -> None:
        from console.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.help_sections()))

    def help_sections(self):
        """The focused pane's bindings, this screen's and the app's, and the
        palette's commands, read from the bindings themselves (keymap applied)."""
        from console.screens.help import binding_rows

        app = self.app
        sections = []
        focused = self.focused
        for node in (focused.ancestors_with_self if focused is not None else ()):
            if node is app or isinstance(node, Screen):
                continue
            rows = binding_rows(node, app._keymap, app.get_key_display)
            if rows:
                title = getattr(node, "TITLE", "") or f"{tab_label(self.current_pane)}: {type(node).__name__}"
                sections.append((f"{title} (focused)" if node is focused else title, rows))
        sections.append(("Everywhere", binding_rows(app, app._keymap, app.get_key_display)
                         + binding_rows(self, app._keymap, app.get_key_display)
                         + [(app.get_key_display(Binding(app.COMMAND_PALETTE_BINDING, "")), "Commands")]))
        commands = [(":", f"{c.title} — {c.help}") for c in app.get_system_commands(self)]
        sections.append(("Command palette (: or Ctrl+P, then type)", commands))
        return sections

    # ---- the palette -------------------------------------------------------
    def commands(self):
        """(title, help, callback) of this screen's commands, for the palette."""
        from console.incident.journal import STATUSES
        from console.incident.session import STATUS_MEANING

        for pane_id in PANES:
            label = tab_label(pane_id)
            yield f"Go to pane {label}", f"Focus {label[2:]} ({label[0]})", lambda p=pane_id: self.action_focus_pane(p)
        yield "Zoom pane", "The current pane alone on the screen, and back (z)", self.action_zoom
        yield "Filter table", "Filter the current pane's rows (/)", self.action_filter
        yield "Help: keys and commands", "Every binding and command (?)", self.action_help
        yield "Declare incident", "Title and severity (D)", self.action_declare
        yield "Acknowledge incident", "Record the acknowledgement time (a)", self.action_acknowledge
        yield "Set status…", "Choose from the list, the current one marked; take back the last change (s)", \
            self.action_choose_status
        for status in STATUSES:
            yield f"Set status: {status}", STATUS_MEANING[status], lambda s=status: self.action_set_status(s)
        yield "Status: next", "Investigating → Identified → Monitoring → Resolved", self.action_next_status
        yield "Take back the last status or severity change", "Journals the value before it (undo)", \
            self.action_undo_change
        yield "Mark mitigated", "Record the mitigation time (TTM)", self.action_mitigated
        yield "Resolve incident", "Status Resolved (TTR)", self.action_resolve
        yield "Set severity…", "P0–P3 or SEV1–SEV4, from a list with the current one marked", self.action_severity
        for role in ("commander", "scribe", "communications"):
            yield f"Role: {role}", f"Who is {role} (default: you)", lambda r=role: self.action_role(r)
        yield "Compose status update", "Fill a template, copy it, journal it (u)", self.action_compose_update
        yield "Write a note", "Focus the scribe line (n)", self.action_note
        yield "Choose playbook", "Suggested ones first (p)", self.action_choose_playbook
        yield "Export post-mortem", "Markdown beside the journal file", self.action_export
        for playbook in self.session.playbooks:
            yield (f"Playbook: {playbook.title}", "; ".join(playbook.symptoms)[:200] or playbook.id,
                   lambda p=playbook.id: self.start_playbook(p))
