"""PostgreSQL: connections by state against max_connections, and the
sessions that matter: blocked, blocking, long-running, idle in transaction."""

from __future__ import annotations

from rich.text import Text

from console.readings import STATE_MARK, duration, percent
from console.readings import role_warning
from console.text import inert, plain
from console.widgets.pane import LivePane
from console.widgets.table import Row
from console.vocabulary import Snapshot


class PostgresPane(LivePane):
    TITLE = "3 PostgreSQL"
    KINDS = ("postgres",)
    # What decides whether to act comes first; the query is cut to what fits,
    # with database, user and application after it for a wider screen.
    COLUMNS = (("PID", 7), ("State", 10), ("Time", 5), ("Blocker", 7), ("Query", 60), ("DB", 10),
               ("User", 10), ("Application", 20))
    # Full state names do not fit a half-width pane.
    SHORT_STATE = {"idle in transaction": "idle in tx", "idle in transaction (aborted)": "idle in tx!",
                   "fastpath function call": "fastpath"}

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
            text.append(f"{m.get('connections_total')}/{m.get('max_connections')} conns "
                        f"({percent(m.get('connections_ratio'))}) · blocked {m.get('blocked_sessions')} · "
                        f"longest tx {duration(m.get('longest_transaction_s'))}\n  ")
            states = m.get("connections_by_state", {})
            text.append(" · ".join(f"{inert(k, 30)} {v}" for k, v in sorted(states.items())) or "no other sessions",
                        "dim")
            warning = role_warning(m)
            if warning is not None:
                # On screen, where the war room sees it: the one layer that
                # cannot be bypassed (the role's own privileges) is missing.
                text.append(f"\n  ⚠ {inert(warning, 200)}", colour.style("state-warning", bold=True))
        return text

    ROW_KEYS = (("C", "Cancel query"), ("K", "Terminate session"))

    def snapshot_rows(self, snap: Snapshot) -> list[Row]:
        rows: list[Row] = []
        blocked, idle = self.colours.style("state-critical"), self.colours.style("state-warning")
        for s in snap.details.get("sessions", ()):
            blocked_by = ",".join(str(p) for p in s.get("blocked_by", ()))
            state = s.get("state") or ""
            style = blocked if blocked_by else (idle if state.startswith("idle in") else "")
            seconds = s.get("xact_s") if state.startswith("idle in") else s.get("query_s")
            pid = str(s.get("pid", ""))
            if len(self.snapshots) > 1:
                pid = f"{snap.name}:{pid}"
            rows.append((f"session/{s.get('pid')}", (
                plain(pid), plain(self.SHORT_STATE.get(state, state), style), plain(duration(seconds)),
                plain(blocked_by, blocked), plain(s.get("query") or "", limit=300),
                plain(s.get("database") or ""), plain(s.get("user") or ""),
                plain(s.get("application") or ""))))
        return rows
