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
from console.widgets.playbook import PlaybookPane, StepOutcome
from console.widgets.timeline import TimelinePane

UNDO = "undo:"  # a Choices option that takes back the change with this event id
NOBODY = "-"    # typed at a role prompt: nobody holds the role

INCIDENT_BINDINGS = [
    Binding("p", "choose_playbook", "Playbook", id="playbook.choose"),
    Binding("n", "note", "Note", id="incident.note"),
    Binding("D", "declare", "Declare", id="incident.declare"),
    # A list with the current status marked (and the last change to take
    # back), never a blind advance: a pg_activity hand presses `s` for sort.
    Binding("s", "choose_status", "Status", id="incident.status"),
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
                                    hint="Severity P0–P3 (or SEV1–SEV4) first; P0/P1 updates are due every 15 min.",
                                    validate=self.session.declaration_problem),
                             declared)

    def action_next_status(self) -> None:
        self._journaled(self.session.advance_status)

    def action_choose_status(self) -> None:
        """The statuses, the current one marked and under the cursor, and the
        last status or severity change to take back."""
        from console.screens.picker import Choices

        try:
            options = [(status, f"{status}: {meaning}", current)
                       for status, meaning, current in self.session.status_choices()]
        except Refusal as refusal:
            self.notify(str(refusal), severity="warning")
            return
        offer = self.session.take_back_offer()
        if offer is not None:
            options.append((f"{UNDO}{offer[0]}", f"↶ Take back: {offer[1]}", False))

        def chosen(answer: str | None) -> None:
            if answer and answer.startswith(UNDO):
                self.action_undo_change(answer.removeprefix(UNDO))
            elif answer:
                self.action_set_status(answer)
        self.app.push_screen(Choices("Incident status", options), chosen)

    def action_set_status(self, status: str) -> None:
        self._changed(lambda: self.session.set_status(status), f"Status: {status}", f"the status is {status} already")

    def action_undo_change(self, offered: str | None = None) -> None:
        said: list[str] = []
        self._journaled(lambda: said.append(self.session.undo_last_change(offered)))
        if said:
            self.notify(said[0])

    def _changed(self, change, done: str, already: str) -> None:
        """Run a change that says whether it changed anything, and say so."""
        result: list[bool] = []
        self._journaled(lambda: result.append(change()))
        if result:
            self.notify(f"{done} · to take it back: Status list (s), ↶" if result[0] else already,
                        severity="information" if result[0] else "warning")

    def action_acknowledge(self) -> None:
        self._journaled(self.session.acknowledge)

    def action_mitigated(self) -> None:
        self._journaled(self.session.mitigated)

    def action_resolve(self) -> None:
        self._journaled(self.session.resolve)

    def action_severity(self) -> None:
        session = self.session

        def chosen(answer: str | None) -> None:
            if answer:
                code = answer.strip().upper()
                self._changed(lambda: session.choose_severity(code), f"Severity: {code}",
                              f"the severity is {code} already")
        choices = [(code, ("● now · " if current else "") + meaning, current)
                   for code, meaning, current in session.severity_choices()]
        now = next((code for code, _, current in choices if current), "not set")
        self.app.push_screen(Prompt(f"Severity (now {now}): type it, or choose it below",
                                    choices=[(code, what) for code, what, _ in choices],
                                    choices_hint="Down to choose, Enter to pick:",
                                    validate=session.severity_problem), chosen)

    def action_role(self, role: str) -> None:
        me = self.session.me()

        def chosen(person: str | None) -> None:
            if person is not None:
                self._journaled(lambda: self.session.assign(role, "" if person.strip() == NOBODY else person))
        # The operator is a suggestion, not text to type after: typing replaces it.
        hint = (f"Enter: {me} · type another name instead · {NOBODY} for nobody" if me
                else "Enter with nothing typed: nobody")
        self.app.push_screen(Prompt(f"Who is {role}?", suggestion=me, hint=hint), chosen)

    # ---- notes -------------------------------------------------------------
    def action_note(self) -> None:
        self.timeline.focus_input()

    # A pane's request reaches this screen as a message, after keys the app has
    # already handled: Enter on an entry then Ctrl+P opened the palette first,
    # and the entry on top of it; Escape closed the entry, and the palette took
    # the next keys (a fuzzer's Enter chose Quit). A screen asked for while
    # another has come up since is not opened: the operator has moved on.
    def on_timeline_pane_entry_opened(self, message: TimelinePane.EntryOpened) -> None:
        from console.screens.entry import TRAVEL, EntryScreen

        entry = self.session.entry(message.event_id)
        if entry is not None and self.app.screen is self:  # see _still_on_top
            def closed(how: str | None) -> None:
                if how == TRAVEL:
                    self.travel_to(message.event_id)
            self.app.push_screen(EntryScreen(*entry), closed)

    def on_timeline_pane_travel_requested(self, message: TimelinePane.TravelRequested) -> None:
        self.travel_to(message.event_id)

    def travel_to(self, event_id: str) -> None:
        """The panes as they were at the entry: its moment, or the last one
        kept before it (console/incident/moments.py)."""
        from console.screens.moment import MomentScreen

        kept, index = self.session.travel(event_id)
        if index is None:
            self.notify("no readings were kept at or before this entry" if kept else
                        "this journal keeps no readings to travel back to", severity="warning")
            return
        self.app.push_screen(MomentScreen(kept, index, self.config))

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

        # One moment for every channel: Tab must not move the promised next update.
        now = self.app.clock()
        incident = self.session.incident(now)

        def text_for(channel: str) -> str:
            return compose(channel, incident, now)

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
            report = postmortem_markdown(journal.events(), self.app.clock(),
                                         playbooks=getattr(self.session.desk, "by_id", None))
            write_export(target, report, journal.path, pipes=False)
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

    def on_playbook_pane_about_requested(self, message: PlaybookPane.AboutRequested) -> None:
        """What the runbook said besides its steps (kept by import-runbook): shown as a detail, inert."""
        from console.drill import Detail, Section
        from console.screens.detail import DetailScreen

        if self.app.screen is not self:
            return  # see on_timeline_pane_entry_opened
        book = message.playbook
        sections = tuple(Section(title, text=text) for title, text in (
            ("Symptoms", "\n".join(getattr(book, "symptoms", ()) or ())),
            ("Description", getattr(book, "description", "")),
            ("Reference: escalation, contacts, message templates", getattr(book, "reference", "")),
            ("Imported from", "\n".join(getattr(book, "source_runbooks", ()) or ()))) if text)
        detail = Detail(f"playbook {book.title}", sections or (Section("About", text="nothing more was written"),))

        async def same(ref):
            return detail
        self.app.push_screen(DetailScreen(None, detail, lambda ref, key: None, same))

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
                self._step_outcome(playbook, step, "", StepOutcome.running(self.app.clock()))
                result = await runner.probe(playbook, step)
                self._step_outcome(playbook, step, result.output if result.ok else f"✖ {result.error}",
                                   StepOutcome.of(result, self.app.clock()))
                self.app.show_journal()
            elif plan.how == "refuse":
                self._step_outcome(playbook, step, f"✖ {plan.why or 'refused'}",
                                   StepOutcome.refused(plan.why or "refused", self.app.clock()))
                if session.read_only:
                    await runner.run(playbook, step, {}, "")  # the runner journals the refusal
                self.notify(plan.why or "refused", title="refused", severity="error", timeout=10)
            else:
                await self._run_confirmed(runner, playbook, step)
        except Refused as refused:
            # Never left saying "running": the step says it was refused, and stays so.
            self._step_outcome(playbook, step, f"✖ {refused}", StepOutcome.refused(str(refused), self.app.clock()))
            self.notify(str(refused), title="refused", severity="error", timeout=10)
            self.app.show_journal()
        except Exception as exc:
            if self.is_attached:  # a screen already gone has no step to mark
                self._step_outcome(playbook, step, f"✖ {type(exc).__name__}: {exc}",
                                   StepOutcome(False, f"✖ failed at {self.app.clock():%H:%M:%S}: {type(exc).__name__}"))
            raise  # the app's worker handler says so, once

    def _step_outcome(self, playbook, step, output: str, outcome: StepOutcome) -> None:
        self.playbook_pane.show_output(step.id, output, outcome, playbook_id=playbook.id)

    async def _ask_values(self, runner, step, but: str | None = None) -> dict[str, str] | None:
        values: dict[str, str] = {}
        for name in runner.values_needed(step):
            if name == but:
                continue  # asked on the confirmation itself
            answer = await self.app.push_screen_wait(Prompt(
                f"{step.title}: which {name.replace('_', ' ')}?", choices=self.session.choices(name),
                hint=f"fills {{{name}}} in the step"))
            if answer is None or not answer.strip():
                return None
            values[name] = answer.strip()
        return values

    async def _run_confirmed(self, runner, playbook, step) -> None:
        from console.screens.confirm import ConfirmTyped

        target = self.session.step_target(step)
        values = await self._ask_values(runner, step, but=target)
        if values is None:
            return
        if target is not None:
            # The value is its own confirmation (`confirm: '{pid}'`): asked once,
            # with the session it would hit shown as it is typed.
            from console.screens.confirm_target import ConfirmTarget

            # A value picked from the list is not typed: the screen asks for it typed
            # again, and the runner compares what was typed with the value.
            answered = await self.app.push_screen_wait(ConfirmTarget(
                step.title, target, lambda value: self.session.step_confirmation(step, {**values, target: value}),
                choices=self.session.choices(target)))
            if answered is None:
                return
            values[target], typed = answered
        else:
            expected = runner.expected_confirmation(step, values)
            # Who it would hit (from the last refresh), then the exact argv or script.
            what = self.session.step_confirmation(step, values)
            typed = await self.app.push_screen_wait(ConfirmTyped(f"{step.title}", what, expected))
            if typed is None:
                return
        self._step_outcome(playbook, step, "", StepOutcome.running(self.app.clock()))
        result = await runner.run(playbook, step, values, typed)
        self._step_outcome(playbook, step, result.output if result.ok else f"✖ {result.error or result.output}",
                           StepOutcome.of(result, self.app.clock()))
        self.app.show_journal()
