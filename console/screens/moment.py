"""The panes as they were at a kept moment: time travel, read-only.

The live pane widgets, fed with the snapshots a moment kept in the journal
(console/incident/moments.py) instead of with sources. Nothing here reads a
source or changes anything: a pane's row keys (cancel, terminate, restart,
open a row's live detail) are refused, since a row of the past is not a row
one may act on now. `[` and `]` step between kept moments; Escape returns.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Label, Static

from console.incident.moments import Moment
from console.text import inert, plain
from console.widgets.error_rates import ErrorRatesPane
from console.widgets.pane import LivePane, RowRequested
from console.widgets.postgres import PostgresPane
from console.widgets.redis import RedisPane
from console.widgets.services import ServicesPane

WHAT = {"incident.declared": "declared", "incident.acknowledged": "acknowledged", "incident.status": "status",
        "incident.mitigated": "mitigated", "threshold.crossed": "threshold crossed",
        "source.state": "source state", "source.lost": "source lost", "source.recovered": "source recovered"}


class MomentScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "close", "Back to live", id="moment.close"),
        Binding("left_square_bracket", "step(-1)", "Earlier", id="moment.previous"),
        Binding("right_square_bracket", "step(1)", "Later", id="moment.next"),
    ]
    DEFAULT_CSS = """
    MomentScreen #banner { height: 1; background: $warning; color: $text; text-style: bold; padding: 0 1; }
    MomentScreen #moment-panes { grid-size: 2 2; grid-columns: 1fr 1fr; grid-rows: 1fr 1fr; height: 1fr; }
    MomentScreen #moment-keys { dock: bottom; height: 1; color: $text-muted; }
    """

    def __init__(self, moments: list[Moment], index: int, config=None) -> None:
        super().__init__()
        self.moments, self.index, self.config = moments, index, config

    @property
    def moment(self) -> Moment:
        return self.moments[self.index]

    def banner(self) -> Text:
        m = self.moment
        what = WHAT.get(m.what, m.what)
        return Text(inert(f"AS AT {m.at:%H:%M:%S} UTC — recorded, not live · {m.at:%Y-%m-%d} · {what} · "
                          f"moment {self.index + 1} of {len(self.moments)}", 200))

    def compose(self) -> ComposeResult:
        yield Static(self.banner(), id="banner")
        redis = tuple(s.name for s in self.moment.readings if s.kind == "redis") or \
            tuple(r.name for r in getattr(self.config, "redis", ()) or ())
        panes: list[LivePane] = [ServicesPane(classes="pane"), ErrorRatesPane(classes="pane"),
                                 PostgresPane(classes="pane"), RedisPane(instances=redis, classes="pane")]
        for pane in panes:
            pane.recorded = True
            for snapshot in self.moment.readings:
                if snapshot.kind in pane.KINDS:
                    pane.take(snapshot)
        with Grid(id="moment-panes"):
            yield from panes
        yield Label(plain("[ earlier moment · ] later moment · Esc back to live · recorded readings: "
                          "nothing here acts"), id="moment-keys")

    def on_mount(self) -> None:
        for pane in self.query(LivePane):
            if not pane.snapshots:
                pane.query_one(".summary", Static).update(plain("no reading of this pane was kept", "dim"))
            pane.tick(self.moment.at)
        tables = [pane.table for pane in self.query(LivePane)]
        if tables:
            tables[0].focus()

    def on_row_requested(self, message: RowRequested) -> None:
        message.stop()
        self.notify("recorded, not live: nothing is opened or run from the past", severity="warning", timeout=3)

    async def action_step(self, step: int) -> None:
        index = self.index + step
        if not 0 <= index < len(self.moments):
            self.notify("no earlier moment was kept" if step < 0 else "no later moment was kept", timeout=2)
            return
        self.index = index
        await self.recompose()
        self.on_mount()

    def action_close(self) -> None:
        self.dismiss(None)
