"""The playbook pane: the active checklist, its steps' state and output.

It renders a playbook and what the journal says about it; running a step is
asked of the app with a message (the pane knows no network).

The step list keeps its rows whatever a step printed: a probe's output sits
below it in a box of at most half the pane, scrolled both ways and never
wrapped (a table wrapped at 50 columns read one column per line). What the
last run of each step came to stays beside it in the list (✔ ✖ …) and, for
the step under the cursor, in one line: when, rows or exit status, how long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer, Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from console.readings import micros
from console.text import inert, plain
from console.widgets import colours
from console.widgets.table import ReadingTable, same

KIND_MARK = {"check": "✓ check", "probe": "? probe", "command": "$ cmd", "action": "! action"}
# What a step's outcome line says before it ever ran, by kind.
NOT_RUN = {"check": "a check: space ticks it", "probe": "not run yet: enter runs it",
           "action": "not run yet: enter asks to confirm, then runs it", "command": "not run yet"}
# The last line of a SQL or Kubernetes probe (console/playbooks/output.py row_count).
ROW_COUNT = re.compile(r"^\((first )?(\d+) rows?\)$")


@dataclass(frozen=True)
class StepOutcome:
    """How the last run of a step ended, in one line: ``ok`` None while it runs."""

    ok: bool | None
    line: str

    @property
    def mark(self) -> str:
        return "…" if self.ok is None else "✔" if self.ok else "✖"

    @classmethod
    def running(cls, at: datetime) -> "StepOutcome":
        return cls(None, f"… running since {at:%H:%M:%S}")

    @classmethod
    def refused(cls, why: str, at: datetime) -> "StepOutcome":
        return cls(False, f"✖ refused at {at:%H:%M:%S}: {inert(why, 200)}")

    @classmethod
    def of(cls, result, at: datetime) -> "StepOutcome":
        """From a runner's StepResult (ok, output, error, took_ms, exit_code)."""
        parts = [f"{'✔ ran' if result.ok else '✖ failed'} at {at:%H:%M:%S}"]
        lines = (result.output or "").strip().splitlines()
        rows = ROW_COUNT.match(lines[-1].strip()) if lines else None
        if rows:
            parts.append(f"{'first ' if rows.group(1) else ''}{rows.group(2)} row{'' if rows.group(2) == '1' else 's'}")
        elif result.exit_code is not None:
            parts.append(f"exit {result.exit_code}")
        elif result.ok and lines:
            parts.append(inert(lines[0], 60))
        if not result.ok and result.error and not str(result.error).startswith("exit status"):
            parts.append(inert(result.error, 120))
        parts.append(micros(result.took_ms * 1000))
        return cls(bool(result.ok), " · ".join(parts))


class PlaybookPane(Vertical):
    TITLE = "5 Playbook"
    BINDINGS = [
        Binding("space", "toggle", "Tick", id="playbook.tick"),
        Binding("enter", "run", "Run step", id="playbook.run"),
        Binding("c", "copy", "Copy cmd", id="playbook.copy"),
        Binding("i", "about", "About", id="playbook.about"),
    ]

    class StepRequested(Message):
        """The operator asked for ``how`` ("toggle" | "run" | "copy") on a step."""

        def __init__(self, playbook, step, how: str) -> None:
            super().__init__()
            self.playbook, self.step, self.how = playbook, step, how

    DEFAULT_CSS = """
    PlaybookPane > .summary { height: auto; max-height: 2; }
    PlaybookPane > #steps { height: 1fr; min-height: 4; }
    PlaybookPane > #step-outcome { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    PlaybookPane > #step-view { height: auto; max-height: 50%; overflow: auto auto; scrollbar-size: 1 1; }
    PlaybookPane > #step-view > #step-detail { width: 100%; height: auto; }
    PlaybookPane > #step-view > #step-output { width: auto; height: auto; text-wrap: nowrap; margin-bottom: 1; }
    PlaybookPane > #step-view > #step-output.-empty { display: none; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.playbook = None
        self.ticks: Mapping[str, bool] = {}
        # By (playbook id, step id): two playbooks may name a step alike.
        self.outputs: dict[tuple[str, str], str] = {}
        self.outcomes: dict[tuple[str, str], StepOutcome] = {}
        self.border_title = self.TITLE
        self._shown: dict[str, Text] = {}

    def compose(self) -> ComposeResult:
        yield Static(plain("no playbook: press p to choose one, or pick a suggestion", "dim"),
                     classes="summary", markup=False)
        yield ReadingTable((("", 5), ("Kind", 8), ("Step", 200)), cursor=True, id="steps")
        yield Static("", id="step-outcome", markup=False)
        with ScrollableContainer(id="step-view"):
            # What the step printed first: the reason it was run; then what it is.
            yield Static("", id="step-output", markup=False)
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
        self._sync_steps()
        self._show_detail()

    def _sync_steps(self) -> None:
        playbook, ticks = self.playbook, self.ticks
        done_style = colours.of(self).style("state-ok")
        self.table.sync([
            (step.id, (self._tick_cell(bool(ticks.get(step.id)), done_style, self.outcomes.get((playbook.id, step.id))),
                       plain(KIND_MARK.get(step.kind, step.kind), "dim"), plain(step.title, limit=300)))
            for step in playbook.steps])

    def _tick_cell(self, ticked: bool, done_style, outcome: StepOutcome | None) -> Text:
        cell = plain("[x]" if ticked else "[ ]", done_style if ticked else "")
        if outcome is not None:
            cell.append(f" {outcome.mark}", self._outcome_style(outcome))
        return cell

    def _outcome_style(self, outcome: StepOutcome) -> str:
        colour = colours.of(self)
        return "" if outcome.ok is None else colour.style("state-ok" if outcome.ok else "state-critical")

    def show_output(self, step_id: str, output: str, outcome: StepOutcome | None = None,
                    playbook_id: str | None = None) -> None:
        """What a step printed, and how its run ended; both stay until it runs again."""
        key = (playbook_id or getattr(self.playbook, "id", ""), step_id)
        self.outputs[key] = output
        if outcome is not None:
            self.outcomes[key] = outcome
        if self.playbook is not None and key[0] == self.playbook.id:
            self._sync_steps()
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
        detail, output, outcome_line = Text(), Text(), Text()
        if step is not None:
            if step.detail:
                detail.append(inert(step.detail, 400) + "\n", "dim")
            body = step.command or step.query
            if body:
                detail.append(inert(body, 400), colours.of(self).style("text-secondary"))
            key = (self.playbook.id, step.id)
            # Every line the runner kept (it bounds them), each one line wide.
            output = Text("\n".join(inert(line, 400) for line in self.outputs.get(key, "").splitlines()))
            outcome = self.outcomes.get(key)
            outcome_line = (Text(outcome.line, self._outcome_style(outcome)) if outcome is not None
                            else Text(NOT_RUN.get(step.kind, ""), "dim"))
        self._update("#step-outcome", outcome_line)
        detail.rstrip()
        self._update("#step-detail", detail)
        if self._update("#step-output", output):
            self.query_one("#step-output").set_class(not output.plain, "-empty")
            self.query_one("#step-view", ScrollableContainer).scroll_home(animate=False)

    def _update(self, selector: str, text: Text) -> bool:
        """Redraw ``selector`` only when its text changed; True when it did."""
        shown = self._shown.get(selector)
        if shown is not None and same(text, shown):
            return False
        self._shown[selector] = text
        self.query_one(selector, Static).update(text)
        return True

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

    class AboutRequested(Message):
        """`i`: the playbook's description and reference (escalation, contacts, templates)."""

        def __init__(self, playbook) -> None:
            super().__init__()
            self.playbook = playbook

    def action_about(self) -> None:
        if self.playbook is None:
            self.notify("no playbook is open: p chooses one", severity="warning", timeout=4)
            return
        self.post_message(self.AboutRequested(self.playbook))
