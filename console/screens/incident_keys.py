"""The keyboard's side of the incident: prompts and confirmations that end
in a call on the headless session (console/incident/session.py).

Mixed into the main screen. Nothing here decides what the incident is:
declaring, advancing the status, what a step request means, which notes
can be edited, all of that is the session's; this module asks the person
at the keyboard and shows the answer.
"""

from __future__ import annotations

from textual.binding import Binding

from console.incident.session import Refusal
from console.screens.prompt import Prompt
from console.widgets.playbook import PlaybookPane
from console.widgets.timeline import TimelinePane

INCIDENT_BINDINGS = [
    Binding("p", "choose_playbook", "Playbook", id="playbook.choose"),
    Binding("n", "note", "Note", id="incident.note"),
    Binding("D", "declare", "Declare", id="incident.declare"),
    Binding("s", "next_status", "Status", id="incident.status"),
    Binding("a", "acknowledge", "Ack", show=False, id="incident.acknowledge"),
    Binding("u", "compose_update", "Update", id="incident.update"),
]


class IncidentKeys:
    """Actions of the main screen that change the incident."""

    @property
    def session(self):
        return self.app.session

    def _journaled(self, change) -> None:
        """Run ``change`` on the session; show the journal, or why not."""
        if self.session.journal is None:
            self.notify("no incident journal is open", severity="warning")
            return
        try:
            change()
        except Refusal as refusal:
            self.notify(str(refusal), severity="warning")
            return
        self.app.show_journal()

    # ---- the incident's life -------------------------------------------------
    def action_declare(self) -> None:
        def declared(answer: str | None) -> None:
            if answer and answer.strip():
                self._journaled(lambda: self.session.declare(answer))
        self.app.push_screen(Prompt("Declare an incident: severity and title",
                                    placeholder="P1 Checkout API returns 502",
                                    hint="Severity P0–P3 (or SEV1–SEV4) first; P0/P1 updates are due every 15 min."),
                             declared)

    def action_next_status(self) -> None:
        self._journaled(self.session.advance_status)

    def action_acknowledge(self) -> None:
        self._journaled(self.session.acknowledge)

    def action_mitigated(self) -> None:
        self._journaled(self.session.mitigated)

    def action_resolve(self) -> None:
        self._journaled(self.session.resolve)

    def action_severity(self) -> None:
        def chosen(answer: str | None) -> None:
            if answer:
                self._journaled(lambda: self.session.set_severity(answer))
        self.app.push_screen(Prompt("Severity (P0–P3 or SEV1–SEV4):"), chosen)

    def action_role(self, role: str) -> None:
        def chosen(person: str | None) -> None:
            if person is not None:
                self._journaled(lambda: self.session.assign(role, person))
        self.app.push_screen(Prompt(f"Who is {role}? (empty: nobody)", value=self.session.me()), chosen)

    # ---- notes -------------------------------------------------------------
    def action_note(self) -> None:
        self.timeline.focus_input()

    def on_timeline_pane_note_written(self, message: TimelinePane.NoteWritten) -> None:
        self._journaled(lambda: self.session.note(message.text))

    def on_timeline_pane_note_edit(self, message: TimelinePane.NoteEdit) -> None:
        if message.how != "correct":
            self._journaled(lambda: self.session.edit_note(message.note_id, message.how))
            return
        note = self.session.incident().note(message.note_id)
        if note is None:
            self.notify("only notes can be corrected, struck or pinned", severity="warning")
            return

        def corrected(text: str | None) -> None:
            self._journaled(lambda: self.session.edit_note(note.id, "correct", text))
        self.app.push_screen(Prompt("Correct the note (the original is kept in the history):", note.text), corrected)

    def action_compose_update(self) -> None:
        if self.session.journal is None:
            return
        from console.incident.updates import compose
        from console.screens.update import UpdateComposer

        def text_for(channel: str) -> str:
            now = self.app.clock()
            return compose(channel, self.session.incident(now), now)

        def sent(result: tuple[str, str] | None) -> None:
            if result is None:
                return
            channel, text = result
            self.app.copy_to_clipboard(text)
            self._journaled(lambda: self.session.record_update(channel, text))
            self.notify(f"{channel} update copied to the clipboard and journaled")
        self.app.push_screen(UpdateComposer(text_for), sent)

    def action_export(self) -> None:
        journal = self.session.journal
        if journal is None:
            return
        from console.incident.export import postmortem_markdown
        from console.incident.export_file import ExportRefused, write_export

        target = journal.path.with_suffix(".postmortem.md")
        try:
            # The same writer as `export -o`: never over a journal (a symlink
            # there is followed, then refused), never into a pipe that would
            # stop the screen, whole or not at all.
            write_export(target, postmortem_markdown(journal.events(), self.app.clock()), journal.path,
                         pipes=False)
        except ExportRefused as refused:
            self.notify(f"not written: {target} {refused}", severity="error")
            return
        except OSError as exc:
            self.notify(f"cannot write {target}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"post-mortem written to {target}")

    # ---- playbooks ---------------------------------------------------------
    def action_choose_playbook(self) -> None:
        if self.session.desk is None:
            self.notify(self.app.playbooks_error or "playbooks are still loading", severity="warning")
            return
        from console.screens.picker import PlaybookPicker

        def chosen(playbook_id: str | None) -> None:
            if playbook_id:
                self.start_playbook(playbook_id)
        self.app.push_screen(PlaybookPicker(self.session.playbooks, self.session.suggested), chosen)

    def start_playbook(self, playbook_id: str) -> None:
        self._journaled(lambda: self.session.start_playbook(playbook_id))
        self.playbook_pane.table.focus()

    def on_playbook_pane_step_requested(self, message: PlaybookPane.StepRequested) -> None:
        self.run_worker(self._step(message.playbook, message.step, message.how), group="steps",
                        name=f"step {message.step.id}", exit_on_error=False)

    async def _step(self, playbook, step, how: str) -> None:
        from console.playbooks.runner import Refused

        session, runner = self.session, self.session.runner
        if runner is None:
            return
        plan = session.plan_step(playbook, step, how)
        try:
            if plan.how in ("tick", "untick"):
                self.app.show_journal()
            elif plan.how == "copy":
                values = await self._ask_values(runner, step)
                if values is None:
                    return
                # The template with the values in, for a human to paste: the
                # values passed the same check as for running, and are shown.
                copied = runner.render_command(step, values)
                self.app.copy_to_clipboard(copied)
                self.notify(f"copied to your clipboard (OSC 52), check before pasting: {copied}", timeout=10)
            elif plan.how == "probe":
                self.playbook_pane.show_output(step.id, "running…")
                result = await runner.probe(playbook, step)
                self.playbook_pane.show_output(step.id, result.output if result.ok else f"✖ {result.error}")
                self.app.show_journal()
            elif plan.how == "refuse":
                if session.read_only:
                    await runner.run(playbook, step, {}, "")  # the runner journals the refusal
                self.notify(plan.why or "refused", title="refused", severity="error", timeout=10)
            else:
                await self._run_confirmed(runner, playbook, step)
        except Refused as refused:
            self.notify(str(refused), title="refused", severity="error", timeout=10)
            self.app.show_journal()

    async def _ask_values(self, runner, step) -> dict[str, str] | None:
        values: dict[str, str] = {}
        for name in runner.values_needed(step):
            answer = await self.app.push_screen_wait(Prompt(
                f"{step.title}: which {name.replace('_', ' ')}?", choices=self.session.choices(name),
                hint=f"fills {{{name}}} in the step"))
            if answer is None or not answer.strip():
                return None
            values[name] = answer.strip()
        return values

    async def _run_confirmed(self, runner, playbook, step) -> None:
        from console.screens.confirm import ConfirmTyped

        values = await self._ask_values(runner, step)
        if values is None:
            return
        expected = runner.expected_confirmation(step, values)
        what = runner.what_runs(step, values)  # the exact argv or script, and each value as data
        typed = await self.app.push_screen_wait(ConfirmTyped(f"{step.title}", what, expected))
        if typed is None:
            return
        self.playbook_pane.show_output(step.id, "running…")
        result = await runner.run(playbook, step, values, typed)
        self.playbook_pane.show_output(step.id, result.output if result.ok else f"✖ {result.error or result.output}")
        self.app.show_journal()
