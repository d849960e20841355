"""PostgreSQL: connections against the slots clients can use, and every session.

Three views of one reading, switched by keys, as in pg_activity: the sessions
(idle ones behind ``i``: in a pool-exhausted incident they are the ones
holding the slots, the rest of the time they are noise), the groups by
application, user and client address (``g``: who holds the connections), and
the lock tree (``L``: root blockers first, each blocked session under the
one that blocks it). Every row opens with Enter; ``C``/``K`` cancel or
terminate what the row names, through the source's detail.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from console.readings import STATE_MARK, duration, percent
from console.readings import role_warning
from console.text import inert, plain
from console.vocabulary import Snapshot
from console.widgets.pane import LivePane
from console.widgets.table import Column, ReadingTable, Row

SESSIONS, GROUPS, LOCKS = "sessions", "groups", "lock tree"


class PostgresPane(LivePane):
    TITLE = "3 PostgreSQL"
    KINDS = ("postgres",)
    # What decides whether to act comes first; the query is cut to what fits,
    # with database, user and application after it for a wider screen.
    COLUMNS = (("PID", 7), ("State", 10), ("Time", 5), ("Blocker", 7), ("Query", 60, 10),
               Column("DB", 10, wide=True), Column("User", 10, wide=True), Column("Application", 20, wide=True))
    # Names may be cut so that the counts (Total first) fit a half-width pane.
    GROUP_COLUMNS = (("Application", 20, 10), ("User", 10, 6), ("Client", 15, 10), ("Total", 5), ("Active", 6),
                     ("Idle", 5), ("Idle tx", 7), ("Oldest", 6), Column("Service now", 30, wide=True))
    # Full state names do not fit a half-width pane.
    SHORT_STATE = {"idle in transaction": "idle in tx", "idle in transaction (aborted)": "idle in tx!",
                   "fastpath function call": "fastpath"}
    BINDINGS = [
        Binding("i", "toggle_idle", "Idle sessions", show=False, id="postgres.idle"),
        Binding("g", "toggle_view('groups')", "Group by application", show=False, id="postgres.groups"),
        Binding("L", "toggle_view('lock tree')", "Lock tree", show=False, id="postgres.locks"),
    ]
    ROW_KEYS = (("C", "Cancel query"), ("K", "Terminate session"))

    def __init__(self, stale_after: float = 10.0, blast=None, **kwargs) -> None:
        super().__init__(stale_after, **kwargs)
        self.view = SESSIONS
        self.show_idle = False
        # Blast radius: (application_name, client) -> the services they belong
        # to and how those are doing ("checkout-api ✖ 5xx 12%"), from the main screen.
        self.blast = blast or (lambda application, client: "")

    # ---- the views -----------------------------------------------------------
    def compose(self) -> ComposeResult:
        # Groups have columns of their own: a second table, shown in their view.
        yield Static("waiting for the first reading…", classes="summary", markup=False, shrink=False)
        yield ReadingTable(self.COLUMNS, classes="sessions")
        groups = ReadingTable(self.GROUP_COLUMNS, classes="groups")
        groups.display = False
        yield groups

    @property
    def table(self) -> ReadingTable:
        return self.query_one("ReadingTable.groups" if self.view == GROUPS else "ReadingTable.sessions",
                              ReadingTable)

    def action_toggle_idle(self) -> None:
        self.show_idle = not self.show_idle
        self._show()

    def action_toggle_view(self, view: str) -> None:
        before = self.table
        self.view = SESSIONS if self.view == view else view
        after = self.table
        if after is not before:
            after.display, before.display = True, False
            if before.has_focus:
                after.focus()
        self._show()

    def _show(self) -> None:
        if getattr(self, "_ready", False) and self.snapshots:
            self._render_readings()

    # ---- the summary -----------------------------------------------------------
    def summary(self) -> Text:
        text, colour = Text(), self.colours
        for snap in self.ordered():
            if text:
                text.append("\n")
            text.append(f"{STATE_MARK[snap.state]} ", colour.state(snap.state))
            text.append(inert(snap.name, 20) + "  ", "bold")
            if not snap.reachable:
                text.append(inert(snap.error or "unreachable", 200), colour.style("state-critical"))
                continue
            m = snap.metrics
            text.append(f"{connections(m)} · blocked {m.get('blocked_sessions')} · "
                        f"longest tx {duration(m.get('longest_transaction_s'))}\n  ")
            states = m.get("connections_by_state", {})
            text.append(" · ".join(f"{inert(k, 30)} {v}" for k, v in sorted(states.items())) or "no other sessions",
                        "dim")
            warning = role_warning(m)
            if warning is not None:
                # On screen, where the war room sees it: the one layer that
                # cannot be bypassed (the role's own privileges) is missing.
                text.append(f"\n  ⚠ {inert(warning, 200)}", colour.style("state-warning", bold=True))
        note = self.view_note()
        if note:
            text.append(f"\n{note}", "dim")
        return text

    def view_note(self) -> str:
        """What the table leaves out, and how to see it; empty when it shows everything."""
        shown = [s for s in self.ordered() if s.reachable]
        listed = sum(len(s.details.get("sessions", ())) for s in shown)
        total = sum(int(s.metrics.get("connections_total") or 0) for s in shown)
        parts = []
        if self.view == LOCKS:
            parts.append("lock tree (L: back)" if any(lock_tree(s.details.get("sessions", ())) for s in shown)
                         else "lock tree: no session is blocked (L: back)")
        elif self.view == GROUPS:
            parts.append("by application · user · client (g: back)")
        else:
            hidden = sum(1 for s in shown for row in s.details.get("sessions", ()) if row.get("state") == "idle")
            if hidden and not self.show_idle:
                parts.append(f"{hidden} idle hidden (i shows)")
            # The pool-exhausted question, one key away: who holds the connections.
            parts.append("g: who holds them · L: lock tree")
        # The source lists sessions up to a cap; a reading without a list says nothing of a cut.
        if 0 < listed < total and self.view != GROUPS:
            parts.append(f"listing the first {listed} of {total} sessions")
        return " · ".join(parts)

    # ---- the rows ----------------------------------------------------------------
    def snapshot_rows(self, snap: Snapshot) -> list[Row]:
        sessions = snap.details.get("sessions", ())
        if self.view == GROUPS:
            return [self._group_row(g) for g in snap.details.get("groups", ())]
        if self.view == LOCKS:
            return self._lock_rows(snap, lock_tree(sessions))
        return [self._session_row(snap, s) for s in sessions if self.show_idle or s.get("state") != "idle"]

    def _lock_rows(self, snap: Snapshot, tree: list[tuple[Mapping[str, Any], int]]) -> list[Row]:
        """The tree's rows; a root blocker says whose it is and which services
        the sessions under it belong to: what it is breaking."""
        rows: list[Row] = []
        for i, (s, depth) in enumerate(tree):
            link = ""
            if depth == 0:
                under = []
                for victim, victim_depth in tree[i + 1:]:
                    if victim_depth == 0:
                        break
                    under.append(self.blast(victim.get("application"), victim.get("client")))
                own = self.blast(s.get("application"), s.get("client"))
                broken = "; ".join(dict.fromkeys(b for b in under if b))
                link = " · ".join(p for p in (own, f"blocks {broken}" if broken else "") if p)
            rows.append(self._session_row(snap, s, depth, link))
        return rows

    def _session_row(self, snap: Snapshot, s: Mapping[str, Any], depth: int = 0, link: str = "") -> Row:
        blocked, idle = self.colours.style("state-critical"), self.colours.style("state-warning")
        blocked_by = ",".join(str(p) for p in s.get("blocked_by", ()))
        state = s.get("state") or ""
        style = blocked if blocked_by else (idle if state.startswith("idle in") else "")
        pid = str(s.get("pid", ""))
        if len(self.snapshots) > 1:
            pid = f"{snap.name}:{pid}"
        if depth:
            pid = "  " * (depth - 1) + "└" + pid
        query = plain(s.get("query") or "", limit=300)
        if link:  # a root blocker: whose it is and what it breaks, before its query
            query = plain(f"⇢ {link} · ", blocked, limit=200) + query
        return (f"session/{s.get('pid')}", (
            plain(pid), plain(self.SHORT_STATE.get(state, state), style), plain(duration(_seconds(s))),
            plain(blocked_by, blocked), query,
            plain(s.get("database") or ""), plain(s.get("user") or ""),
            plain(s.get("application") or "")))

    def _group_row(self, g: Mapping[str, Any]) -> Row:
        warning = self.colours.style("state-warning")
        stuck = int(g.get("idle_in_transaction") or 0)
        application = plain(g.get("application"), limit=60) if g.get("application") else plain("(no name)", "dim")
        return (str(g.get("row")), (
            application, plain(g.get("user") or ""), plain(g.get("client") or ""),
            plain(str(g.get("total", ""))), plain(str(g.get("active", ""))), plain(str(g.get("idle", ""))),
            plain(str(stuck), warning if stuck else ""), plain(duration(g.get("oldest_s"))),
            plain(self.blast(g.get("application"), g.get("client")) or "–", limit=60)))


def connections(m: Mapping[str, Any]) -> str:
    """``36/37 usable conns (97%) · 3 reserved for superusers``: client backends
    against the slots a client can take; a reading without them says max_connections."""
    total, usable = m.get("connections_total"), m.get("usable_connections")
    if usable is None:
        return f"{total}/{m.get('max_connections')} conns ({percent(m.get('connections_ratio'))})"
    return (f"{total}/{usable} usable conns ({percent(m.get('connections_ratio'))}) · "
            f"{m.get('reserved_connections')} reserved for superusers")


def _seconds(s: Mapping[str, Any]) -> Any:
    """The age that matters for the state: the query's, the open transaction's, or the idleness."""
    state = s.get("state") or ""
    if state.startswith("idle in"):
        return s.get("xact_s")
    if state == "idle":
        return s.get("state_s")
    return s.get("query_s")


def lock_tree(sessions: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], int]]:
    """Sessions in lock chains as (session, depth): each root blocker (the one
    that waits on no one) first, the most blocked under it first, and each
    blocked session under the first of its blockers that is listed."""
    by_pid = {s.get("pid"): s for s in sessions}
    children: dict[Any, list[Mapping[str, Any]]] = {}
    for s in sessions:
        parent = next((p for p in s.get("blocked_by", ()) if p in by_pid and p != s.get("pid")), None)
        if parent is not None:
            children.setdefault(parent, []).append(s)
    involved = [s for s in sessions if s.get("pid") in children or s.get("blocked_by")]
    roots = [s for s in involved if not any(p in by_pid for p in s.get("blocked_by", ()))]
    out: list[tuple[Mapping[str, Any], int]] = []
    seen: set[Any] = set()
    weight = _weights(children)
    # Sessions in a cycle (a deadlock, until the server breaks it) have no
    # root: they follow, each as a root of its own, so none is left out.
    for root in [*sorted(roots, key=lambda s: (-weight(s.get("pid")), str(s.get("pid")))), *involved]:
        _walk(root, 0, children, weight, seen, out)
    return out


def _weights(children: Mapping[Any, list[Mapping[str, Any]]]):
    """How many sessions wait, directly or not, behind a pid (each once, cycles too).

    Iterative, with no recursion: a lock chain is as deep as the server has
    sessions (a red team crashed the pane with a chain 499 deep)."""
    memo: dict[Any, int] = {}

    def weight(pid: Any) -> int:
        if pid not in memo:
            seen, stack = {pid}, [pid]
            while stack:
                for child in children.get(stack.pop(), ()):
                    if child.get("pid") not in seen:
                        seen.add(child.get("pid"))
                        stack.append(child.get("pid"))
            memo[pid] = len(seen) - 1
        return memo[pid]
    return weight


def _walk(session: Mapping[str, Any], depth: int, children: Mapping[Any, list[Mapping[str, Any]]], weight,
          seen: set[Any], out: list[tuple[Mapping[str, Any], int]]) -> None:
    """Depth first, the heaviest child first; a stack, not recursion (see _weights)."""
    stack = [(session, depth)]
    while stack:
        node, level = stack.pop()
        pid = node.get("pid")
        if pid in seen:
            continue
        seen.add(pid)
        out.append((node, level))
        ordered = sorted(children.get(pid, ()), key=lambda c: (-weight(c.get("pid")), str(c.get("pid"))))
        stack.extend((child, level + 1) for child in reversed(ordered))

