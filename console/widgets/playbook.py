"""The playbook pane: the active checklist, its steps' state and output.

It renders a playbook and what the journal says about it; running a step is
asked of the app with a message (the pane knows no network).
"""

from __future__ import annotations

from typing import Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from console.text import inert, plain
from console.widgets import colours
from console.widgets.table import ReadingTable, same

KIND_MARK = {"check": "✓ check", "probe": "? probe", "command": "$ cmd", "action": "! action"}


class PlaybookPane(Vertical):
    TITLE = "5 Playbook"
    BINDINGS = [
        Binding("space", "toggle", "Tick", id="playbook.tick"),
        Binding("enter", "run", "Run step", id="playbook.run"),
        Binding("c", "copy", "Copy cmd", id="playbook.copy"),
    ]

    class StepRequested(Message):
        """The operator asked for ``how`` ("toggle" | "run" | "copy") on a step."""

        def __init__(self, playbook, step, how: str) -> None:
            super().__init__()
            self.playbook, self.step, self.how = playbook, step, how

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.playbook = None
        self.ticks: Mapping[str, bool] = {}
        self.outputs: dict[str, str] = {}
        self.border_title = self.TITLE
        self._detail_shown: Text | None = None

    def compose(self) -> ComposeResult:
        yield Static(plain("no playbook: press p to choose one, or pick a suggestion", "dim"),
                     classes="summary", markup=False)
        yield ReadingTable((("", 3), ("Kind", 8), ("Step", 200)), cursor=True, id="steps")
        yield Static("", id="step-detail", markup=False)

    @property
    def table(self) -> ReadingTable:
        return self.query_one("#steps", ReadingTable)

    def on_mount(self) -> None:
        colours.follow_theme(self, self._recolour)

    def _recolour(self) -> None:
        if self.playbook is not None:
            self.show(self.playbook, self.ticks)

    def show(self, playbook, ticks: Mapping[str, bool]) -> None:
        """Show ``playbook`` with the ticks the journal holds for it."""
        changed = playbook is not self.playbook
        self.playbook, self.ticks = playbook, ticks
        if playbook is None:
            return
        done = sum(1 for s in playbook.steps if ticks.get(s.id))
        total = len(playbook.steps)
        # Text, not str: a border title given as a str is parsed as markup.
        self.border_title = Text(f"{self.TITLE} · {inert(playbook.title, 50)}")
        self.border_subtitle = Text(f"{done}/{total} done")
        if changed:
            summary = Text(inert(playbook.title, 100), "bold")
            if playbook.severity:
                summary.append(f"  ({inert(playbook.severity, 10)})", "dim")
            self.query_one(".summary", Static).update(summary)
        done_style = colours.of(self).style("state-ok")
        self.table.sync([
            (step.id, (plain("[x]" if ticks.get(step.id) else "[ ]", done_style if ticks.get(step.id) else ""),
                       plain(KIND_MARK.get(step.kind, step.kind), "dim"), plain(step.title, limit=300)))
            for step in playbook.steps])
        self._show_detail()

    def show_output(self, step_id: str, output: str) -> None:
        self.outputs[step_id] = output
        self._show_detail()

    def current_step(self):
        if self.playbook is None or not self.playbook.steps:
            return None
        row = min(max(self.table.cursor_row, 0), len(self.playbook.steps) - 1)
        return self.playbook.steps[row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._request("run")  # Enter on a step runs it

    def _show_detail(self) -> None:
        step = self.current_step()
        text = Text()
        if step is not None:
            if step.detail:
                text.append(inert(step.detail, 400) + "\n", "dim")
            body = step.command or step.query
            if body:
                text.append(inert(body, 400) + "\n", colours.of(self).style("text-secondary"))
            output = self.outputs.get(step.id)
            if output:
                for line in output.splitlines()[:12]:
                    text.append(inert(line, 200) + "\n")
        if self._detail_shown is None or not same(text, self._detail_shown):
            self._detail_shown = text
            self.query_one("#step-detail", Static).update(text)

    def _request(self, how: str) -> None:
        step = self.current_step()
        if step is not None:
            self.post_message(self.StepRequested(self.playbook, step, how))

    def action_toggle(self) -> None:
        self._request("toggle")

    def action_run(self) -> None:
        self._request("run")

    def action_copy(self) -> None:
        self._request("copy")
