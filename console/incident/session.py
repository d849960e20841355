"""The incident, headless: everything the console decides, with no screen.

The App, ``incident-console note`` and ``status`` all go through one
:class:`IncidentSession`. It holds the journal (the single record), turns
readings into journal events (crossings, automatic ticks, suggestions),
declares and advances the incident, and decides what a playbook step
request means (tick, copy, probe, confirm, refuse). It imports no Textual:
its tests run without Pilot, and the App only wires keys and screens to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

from console.incident import moments
from console.incident.crossings import Crossings
from console.incident.journal import ROLES, STATUSES, Event, Journal
from console.incident.state import SCHEMES, Incident, Replay, StateChange, changes_to_take_back, extends
from console.drill import Change, Detail, RowRef
from console.vocabulary import Snapshot

SEVERITIES = frozenset(level.code for scheme in SCHEMES for level in scheme.levels)
DEFAULT_SEVERITY = "P2"
# A first word meant as a severity (P7, sev0), not as the start of a title.
SEVERITY_LIKE = re.compile(r"^(?:p|sev)\d+$", re.IGNORECASE)
STATUS_MEANING = {"Investigating": "the cause is not known yet", "Identified": "the cause is known; working on it",
                  "Monitoring": "a fix is in, watching it (the incident counts as mitigated)",
                  "Resolved": "over: no more updates are due"}


@dataclass(frozen=True)
class Observation:
    """What one reading changed: journaled events, automatic ticks, and
    playbooks whose conditions started to hold."""

    events: tuple[Event, ...] = ()
    ticks: tuple[str, ...] = ()
    suggestions: tuple[Any, ...] = ()

    @property
    def journaled(self) -> bool:
        return bool(self.events or self.ticks)


@dataclass(frozen=True)
class StepPlan:
    """What a request on a playbook step means.

    ``how`` is one of ``tick``/``untick`` (done: journaled), ``copy`` (ask the
    values, then copy the command), ``probe`` (run it, show the output),
    ``confirm`` (ask the values, then a typed confirmation, then run) or
    ``refuse`` (``why`` says why; read-only refusals are journaled by the
    runner when it is asked)."""

    how: str
    why: str | None = None


class Refusal(Exception):
    """A request the incident's state does not allow; the message says why."""


class _PanePlaybook:
    """What a change made from a pane is journaled under, in place of a playbook."""

    id = "pane"
    title = "from a live pane"


PANE_PLAYBOOK = _PanePlaybook()

# Why a follower (``incident-console watch``) refuses a change.
FOLLOWING = "watch mode: this screen follows the incident and changes nothing"


class FollowedJournal(Journal):
    """A journal this process follows and never writes (``watch``).

    Every event of this process's own is refused (:class:`Refusal`): notes,
    changes, and what the console itself observes. Entries that an earlier
    process left in a recovery file stay there, for a console to merge. With
    ``merges`` (a private copy of a shared incident), events made elsewhere
    and merged in by the share are taken (:meth:`add`); nothing else is."""

    def __init__(self, path: Any, operator: Mapping[str, str | None] | None = None,
                 clock: Callable[[], datetime] | None = None, merges: bool = False) -> None:
        self.merges = merges
        super().__init__(path, operator, clock)

    def _merge_recovered(self) -> None:
        self.recovered = []  # written by a console: merging them is a write

    def append(self, kind: str, /, **data: Any) -> Event:
        raise Refusal(FOLLOWING)

    def observed(self, kind: str, /, **data: Any) -> Event:
        raise Refusal(FOLLOWING)

    def add(self, event: Event) -> Event:
        if not self.merges:
            raise Refusal(FOLLOWING)
        return super().add(event)

    def add_many(self, events: list[Event]) -> list[Event]:
        if events and not self.merges:
            raise Refusal(FOLLOWING)
        return super().add_many(events)

    def flush(self) -> bool:
        """A follower writes nothing back, not even what it saw and the
        file has lost since (a journal moved aside, a backup restored): that
        stays in memory. A private copy of a shared incident is written."""
        if self.merges:
            return super().flush()
        with self._lock:
            return not self._pending

    def set_aside(self):
        raise Refusal(FOLLOWING)

    def save_unwritten(self):
        raise Refusal(FOLLOWING)


class IncidentSession:
    def __init__(self, config: Any, journal: Journal | None = None,
                 clock: Callable[[], datetime] | None = None, read_only: bool = False,
                 following: bool = False) -> None:
        self.config = config
        self.journal = journal
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        # Following (watch): nothing is journaled, not even what the console sees.
        self.following = following
        self.read_only = read_only or following
        self.latest: dict[tuple[str, str], Snapshot] = {}
        # Damping: how many readings in a row a change needs before it is
        # journaled, suggests or ticks (config.Damping; a stub config has none).
        self.crossings = Crossings(readings=getattr(getattr(config, "damping", None), "readings", 2))
        self.moment_budget = moments.Budget()
        if journal is not None:
            self.crossings.remember(journal.events())
            self.moment_budget.remember(journal.events())
        self.desk = None    # playbooks, loaded with load_playbooks() off the event loop
        self.runner = None  # built when the sources are
        self._told: str | None = None
        self._incident: tuple[tuple, Incident] | None = None
        self._replay_of: tuple[tuple, Replay] | None = None  # the events it has taken

    # ---- the journal -------------------------------------------------------
    def record(self, kind: str, /, **data: Any) -> Event | None:
        if self.following:
            raise Refusal(FOLLOWING)
        if self.journal is None:
            return None
        event = self.journal.append(kind, **data)
        self._keep_moment(event)
        return event

    def _keep_moment(self, event: Event) -> None:
        """The panes' readings at ``event`` (a milestone or an alarm), for time
        travel, within the incident's budget (console/incident/moments.py)."""
        if self.journal is None or not self.moment_budget.allows(event.kind, event.at):
            return
        data = moments.record(event.id, self.latest)
        if data is not None:
            self.moment_budget.spend(event.kind, event.at)
            self.journal.observed(moments.KIND, **data)

    def travel(self, event_id: str) -> tuple[list[moments.Moment], int | None]:
        """The kept moments, and which one shows entry ``event_id``: its
        own, else the last before it (None: nothing was kept that early)."""
        kept = moments.kept(self.events())
        return kept, moments.nearest(kept, self.events(), event_id)

    def refresh(self) -> bool:
        """True when others wrote, or a pending write landed or failed anew."""
        if self.journal is None:
            return False
        news = self.journal.refresh()
        return bool(news) or self.journal.write_error != self._told

    def events(self) -> tuple[Event, ...]:
        return self.journal.events() if self.journal is not None else ()

    def incident(self, now: datetime | None = None) -> Incident:
        """The incident as of ``now``. Only the events added since the last
        call are replayed (when they come after all the others, as appends
        do; an entry merged in earlier replays them all); the clock alone
        just moves ``now``."""
        now = now or self.clock()
        events = self.events()
        cached = self._incident
        if cached is None or cached[0] is not events:
            self._incident = (events, self._replayed(events, now))
        elif cached[1].now != now:
            self._incident = (events, replace(cached[1], now=now))
        return self._incident[1]

    def _replayed(self, events: tuple[Event, ...], now: datetime) -> Incident:
        taken = self._replay_of
        if taken is not None and extends(events, taken[0]):
            replay = taken[1]
            replay.take(events[len(taken[0]):])
        else:
            replay = Replay()
            replay.take(events)
        self._replay_of = (events, replay)
        return replay.incident(now)

    def problem(self) -> str | None:
        """The journal's write error, once each time it changes."""
        error = self.journal.write_error if self.journal is not None else None
        if error == self._told:
            return None
        self._told = error
        return error

    # ---- readings ----------------------------------------------------------
    def observe(self, snapshot: Snapshot) -> Observation:
        """Take a reading: journal what crossed, tick what live data shows,
        and name the playbooks whose conditions started to hold.

        Two views of one reading. ``latest`` keeps it raw: the panes show it
        (an operator watching a fix wants its first good reading at once,
        and the values a step picks are the ones on screen). The journal,
        suggestions and automatic ticks go by the *settled* reading
        (:class:`Crossings`): a change that held for the damping's readings.
        A ratio over too few requests is not judged at all, raw or settled,
        so a quiet service does not flap the pane's colour either."""
        self.latest[snapshot.key] = snapshot
        if self.following:
            return Observation()  # the consoles that lead the incident journal it
        events = tuple(e for e in (self._observed(kind, **data) for kind, data in self.crossings.observe(snapshot))
                       if e is not None)
        if events:  # one moment for what one reading changed
            self._keep_moment(events[0])
        if self.desk is None:
            return Observation(events)
        readings = self._settled(self.latest.values())
        incident = self.incident() if self.journal is not None else None
        self.desk.remember(self.events())  # suggested by an earlier run, or by another console
        suggestions = tuple(self.desk.newly_suggested(readings, incident.playbooks if incident is not None else ()))
        said = tuple(e for e in (self._observed("playbook.suggested", playbook=p.id, title=p.title)
                                 for p in suggestions) if e is not None)
        return Observation(events + said, self._auto_ticks(readings), suggestions)

    def _observed(self, kind: str, /, **data: Any) -> Event | None:
        """Journal what the console itself saw: the console's, not the operator's."""
        if self.following:
            return None
        return self.journal.observed(kind, **data) if self.journal is not None else None

    def _settled(self, readings: Iterable[Snapshot]) -> tuple[Snapshot, ...]:
        return tuple(self.crossings.settled(s.key) or s for s in readings)

    def _auto_ticks(self, readings: tuple[Snapshot, ...]) -> tuple[str, ...]:
        if self.journal is None:
            return ()
        incident = self.incident()
        playbook = self.desk.active(incident)
        if playbook is None:
            return ()
        # Settled readings, whoever passes them: a step is not done on a flap.
        due = tuple(self.desk.due_auto_ticks(playbook, incident, self._settled(readings)))
        for step_id in due:
            self._observed("playbook.tick", playbook=playbook.id, step=step_id, auto=True)
        return due

    async def check_once(self, sources: Iterable[Any]) -> tuple[Snapshot, ...]:
        """One judged reading of every source, observed as the console would
        (``incident-console status``)."""
        from console.sources import poll_once

        snapshots = tuple(await poll_once(list(sources), self.config.thresholds))
        for snapshot in snapshots:
            self.observe(snapshot)
        return snapshots

    # ---- the incident's life -------------------------------------------------
    def declare(self, answer: str) -> None:
        """``P1 Checkout returns 502``: severity first, else the default."""
        text = answer.strip()
        if not text:
            raise Refusal("an incident needs a title")
        severity, _, title = text.partition(" ")
        if severity.upper() not in SEVERITIES or not title.strip():
            severity, title = DEFAULT_SEVERITY, text
        self.record("incident.declared", title=title.strip(), severity=severity.upper())
        self.record("incident.status", status=STATUSES[0])

    def advance_status(self) -> str:
        """The next status, journaled; returns it."""
        incident = self.incident()
        if not incident.declared:
            raise Refusal("declare the incident first (D)")
        current = incident.status or STATUSES[0]
        if current == STATUSES[-1]:
            raise Refusal("the incident is resolved")
        following = STATUSES[STATUSES.index(current) + 1]
        self.record("incident.status", status=following)
        return following

    def acknowledge(self) -> None:
        self.record("incident.acknowledged")

    def mitigated(self) -> None:
        self.record("incident.mitigated")

    def resolve(self) -> None:
        self.record("incident.status", status=STATUSES[-1])

    def set_severity(self, answer: str) -> None:
        code = answer.strip().upper()
        if code not in SEVERITIES:
            raise Refusal(f"not a severity: {answer.strip()[:40]!r} (P0–P3 or SEV1–SEV4)")
        self.record("incident.severity", severity=code)

    def assign(self, role: str, person: str) -> None:
        if role not in ROLES:
            raise Refusal(f"not a role: {role!r} ({', '.join(ROLES)})")
        self.record("incident.role", role=role, person=person.strip())

    def me(self) -> str:
        return (self.journal.operator.get("user") or "") if self.journal is not None else ""

    # ---- chosen from a list, and taken back ----------------------------------
    def status_choices(self) -> list[tuple[str, str, bool]]:
        """(status, what it means, is it the current one), in order."""
        incident = self.incident()
        if not incident.declared:
            raise Refusal("declare the incident first (D)")
        return [(status, STATUS_MEANING[status], status == incident.status) for status in STATUSES]

    def set_status(self, status: str) -> bool:
        """Journal ``status``; False (nothing journaled) when it already is."""
        incident = self.incident()
        if not incident.declared:
            raise Refusal("declare the incident first (D)")
        if status not in STATUSES:
            raise Refusal(f"not a status: {status[:40]!r} ({', '.join(STATUSES)})")
        if status == incident.status:
            return False
        self.record("incident.status", status=status)
        return True

    def severity_choices(self) -> list[tuple[str, str, bool]]:
        """(code, what it means, is it the current one): the incident's scheme first."""
        incident = self.incident()
        schemes = (incident.scheme, *(s for s in SCHEMES if s.name != incident.scheme.name))
        return [(level.code, f"{level.name + ' · ' if level.name else ''}{level.description} · respond "
                 f"{level.response}", level.code == incident.severity) for s in schemes for level in s.levels]

    def severity_problem(self, answer: str) -> str | None:
        """Why ``answer`` is not a severity (what is), or None."""
        if answer.strip().upper() in SEVERITIES:
            return None
        said = answer.strip()[:40]
        return f"{said!r} is not a severity: P0–P3 or SEV1–SEV4" if said else "a severity: P0–P3 or SEV1–SEV4"

    def choose_severity(self, answer: str) -> bool:
        """Journal the severity ``answer`` names; False when it already is."""
        problem = self.severity_problem(answer)
        if problem:
            raise Refusal(problem)
        if answer.strip().upper() == self.incident().severity:
            return False
        self.set_severity(answer)
        return True

    def declaration_problem(self, answer: str) -> str | None:
        """Why ``answer`` cannot declare as meant (``P7 …``: a severity that
        is none), or None. A first word that is no severity at all is the
        title's (``Checkout down`` declares at the default)."""
        text = answer.strip()
        if not text:
            return "an incident needs a title, e.g. P1 Checkout API returns 502"
        first = text.split()[0]
        if first.upper() not in SEVERITIES and SEVERITY_LIKE.match(first):
            return f"{first[:20]!r} is not a severity: P0–P3 or SEV1–SEV4 (or leave it out for {DEFAULT_SEVERITY})"
        return None

    def change_to_take_back(self) -> StateChange | None:
        """The last status or severity change still in force, or None."""
        changes = changes_to_take_back(self.events())
        return changes[-1] if changes else None

    def take_back_offer(self) -> tuple[str, str] | None:
        """(its id, what taking back the last change does), or None."""
        change = self.change_to_take_back()
        if change is None:
            return None
        how = "declared again by" if change.event.kind == "incident.declared" else "set by"
        return change.event.id, (f"{change.field} {change.after} ({how} {change.event.user} at "
                                 f"{change.event.at:%H:%M:%S}) back to {change.before}")

    def undo_last_change(self, offered: str | None = None) -> str:
        """Take back the last status or severity change with a new event that
        restores the value before it; says what it did. ``offered``: the
        change the operator saw, refused (naming what came since) if another
        change or a declaration has come since. A declaration after the
        change is the newer word on the severity, even one that restated it:
        nothing older is taken back over it."""
        change = self.change_to_take_back()
        if offered is not None and (change is None or change.event.id != offered):
            since = self._changes_since(offered)
            raise Refusal(f"changed since you chose: {since or 'the change you saw is gone'}: "
                          "nothing taken back; choose again")
        if change is None:
            raise Refusal("no status or severity change to take back")
        declared = self._changes_since(change.event.id, kinds=("incident.declared",))
        if declared:
            raise Refusal(f"{declared} since {change.field} {change.after}: nothing taken back; "
                          f"set the {change.field} from the list instead")
        kind = "incident.status" if change.field == "status" else "incident.severity"
        self.record(kind, **{change.field: change.before}, undoes=change.event.id, undone=change.after)
        return f"{change.field.capitalize()} back to {change.before} (took back {change.after})"

    def _changes_since(self, event_id: str, kinds: Iterable[str] | None = None) -> str:
        """The status, severity and declaration events after ``event_id``,
        said briefly (who, what, when); "" when none (or it is not found)."""
        from console.incident.state import CHANGE_KINDS

        events = sorted(self.events(), key=lambda e: e.at)
        at = next((i for i, e in enumerate(events) if e.id == event_id), None)
        if at is None:
            return ""
        wanted = set(kinds if kinds is not None else CHANGE_KINDS)
        said = []
        for event in events[at + 1:]:
            if event.kind not in wanted:
                continue
            when = f"{event.at:%H:%M:%S}"
            if event.kind == "incident.declared":
                title = str(event.data.get("title") or "")[:60]
                said.append(f"{event.user} declared it again at {when} as {event.data.get('severity')} {title!r}")
            elif event.data.get("undoes"):
                said.append(f"{event.user} took back {event.data.get('undone') or 'a change'} at {when}")
            else:
                field = CHANGE_KINDS[event.kind]
                said.append(f"{event.user} set {field} {str(event.data.get(field))[:20]} at {when}")
        return "; ".join(said[-3:]) + (f" (and {len(said) - 3} more)" if len(said) > 3 else "")

    # ---- a timeline entry, whole -----------------------------------------------
    def entry(self, event_id: str) -> tuple[str, list[tuple[str, str]]] | None:
        """A journal entry in full: a title, then (heading, text) parts whose
        text may run over many lines (a probe's output, a refusal, a query)."""
        from console.incident.export import describe

        event = next((e for e in self.events() if e.id == event_id), None)
        if event is None:
            return None
        incident = self.incident()
        where = event.operator.get("ssh_client")
        title = f"{event.at:%Y-%m-%d %H:%M:%S} UTC · {event.user}{f' ({where})' if where else ''} · {event.kind}"
        parts = [("", describe(event, incident))]
        note = incident.note(event.id) if event.kind == "note" else None
        if note is not None:
            parts += [(f"version {i} · {v.at:%H:%M:%S} · {v.user}", v.text) for i, v in enumerate(note.versions, 1)]
            if note.struck:
                parts.append(("struck", f"by {note.struck_by} at {note.struck_at:%H:%M:%S}"))
        short = [f"{key}: {value}" for key, value in event.data.items()
                 if not (isinstance(value, str) and ("\n" in value or len(value) > 80))]
        if short:
            parts.append(("fields", "\n".join(short)))
        parts += [(str(key), value) for key, value in event.data.items()
                  if isinstance(value, str) and ("\n" in value or len(value) > 80)]
        return title, parts

    # ---- notes -------------------------------------------------------------
    @staticmethod
    def note_to(path: Any, text: str) -> tuple[Event, Any]:
        """A note from a shell (``incident-console note``): appended without
        reading the journal, so its cost does not grow with the incident.
        Returns the event and where it went; raises what the write raised
        (the event is on the exception as ``event``)."""
        from console.incident.journal import current_operator, new_event, parse_tags, utcnow, write_event

        event = new_event("note", current_operator(), utcnow(), text=text, tags=parse_tags(text), pinned=False)
        try:
            return event, write_event(path, event)
        except BaseException as exc:
            exc.event = event
            raise

    def note(self, text: str) -> Event | None:
        if self.following:
            raise Refusal(FOLLOWING)
        text = text.strip()
        if not text:
            return None
        return self.journal.note(text) if self.journal is not None else None

    def edit_note(self, note_id: str, how: str, text: str | None = None) -> None:
        """Strike, pin (toggle) or correct a note; its history is kept."""
        note = self.incident().note(note_id)
        if note is None:
            raise Refusal("only notes can be corrected, struck or pinned")
        if how == "strike":
            self.record("note.struck", note_id=note.id)
        elif how == "pin":
            self.record("note.pinned", note_id=note.id, pinned=not note.pinned)
        elif how == "correct":
            if text and text.strip() and text.strip() != note.text:
                self.record("note.corrected", note_id=note.id, text=text.strip())
        else:
            raise ValueError(f"unknown note edit {how!r}")

    def record_update(self, channel: str, text: str) -> None:
        self.record("update.sent", channel=channel, text=text)

    # ---- playbooks ---------------------------------------------------------
    def read_playbooks(self):
        """Every playbook, read but not yet in use (slow: call it off the
        event loop). A broken playbook never stops the rest, nor monitoring."""
        from console.incident.desk import PlaybookDesk

        return PlaybookDesk(self.config)

    def use_playbooks(self, desk) -> list:
        """Put ``desk`` to use; the problems found, each with its file and line."""
        self.desk = desk
        return list(desk.problems)

    def load_playbooks(self) -> list:
        return self.use_playbooks(self.read_playbooks())

    def attach(self, sources: Iterable[Any]) -> None:
        """The step runner, once the sources exist."""
        from console.playbooks.runner import StepRunner

        by_key = {f"{s.kind}:{s.name}": s for s in sources}
        record = self.journal.append if self.journal is not None and not self.following else None
        self.runner = StepRunner(self.config, by_key, record=record, read_only=self.read_only)

    @property
    def playbooks(self) -> tuple:
        return tuple(self.desk.playbooks) if self.desk is not None else ()

    @property
    def suggested(self) -> frozenset[str]:
        return frozenset(self.desk.suggested) if self.desk is not None else frozenset()

    def active_playbook(self):
        return self.desk.active(self.incident()) if self.desk is not None and self.journal is not None else None

    def checklist(self) -> tuple[Any, Mapping[str, bool]] | None:
        """The active playbook and which of its steps are ticked."""
        playbook = self.active_playbook()
        if playbook is None:
            return None
        incident = self.incident()
        return playbook, {s.id: incident.ticked(playbook.id, s.id) for s in playbook.steps}

    def start_playbook(self, playbook_id: str) -> Observation:
        if self.desk is None or playbook_id not in self.desk.by_id:
            raise Refusal(f"no playbook {playbook_id!r}")
        self.record("playbook.started", playbook=playbook_id)
        return Observation(ticks=self._auto_ticks(tuple(self.latest.values())))

    def plan_step(self, playbook: Any, step: Any, how: str) -> StepPlan:
        """What ``how`` (run, toggle, copy) on ``step`` means. A tick is
        journaled here; everything else is for the caller to carry out."""
        if how == "toggle" or (how == "run" and step.kind == "check"):
            ticked = self.incident().ticked(playbook.id, step.id)
            self.record("playbook.untick" if ticked else "playbook.tick", playbook=playbook.id,
                        step=step.id, auto=False)
            return StepPlan("untick" if ticked else "tick")
        if how == "copy" or (how == "run" and step.kind == "command" and not step.runnable):
            if not step.command:
                return StepPlan("refuse", "this step has no command to copy")
            return StepPlan("copy")
        if step.kind == "probe":
            return StepPlan("probe")
        if self.read_only:
            return StepPlan("refuse", "read-only: actions and commands are refused")
        return StepPlan("confirm")

    def choices(self, name: str) -> list[tuple[str, str]]:
        """Values for a step's ``{name}`` from what the panes show (see pickable.py)."""
        from console.incident.pickable import choices

        return choices(name, self.latest)

    def step_target(self, step: Any) -> str | None:
        """The value a step's confirmation is (``confirm: '{pid}'``), or None.
        It is asked once, on the confirmation, which shows what it would hit."""
        from console.playbooks.model import TEMPLATE

        match = TEMPLATE.fullmatch((step.confirm or "").strip()) if not step.literal else None
        if match is None or self.runner is None:
            return None
        return match.group(1) if match.group(1) in self.runner.values_needed(step) else None

    def step_confirmation(self, step: Any, values: Mapping[str, str]) -> list[str]:
        """What a step's confirmation shows: who it would hit (from the last
        refresh), then exactly what runs; or why these values cannot run."""
        from console.playbooks.runner import Refused

        try:
            what = self.runner.what_runs(step, values)
        except Refused as refused:
            return [f"✖ {refused}"]
        return [*self.step_preview(step, values), *what]

    def step_preview(self, step: Any, values: Mapping[str, str]) -> list[str]:
        """The sessions a terminate or cancel step would hit, from the latest
        reading (nothing is read for it); no lines for other steps."""
        from console.incident.targets import signal_preview
        from console.playbooks.model import TEMPLATE

        if step.action not in ("terminate_backend", "cancel_backend") or self.runner is None:
            return []
        source = self.runner.resolve(step)
        if source is None:
            return []
        params = dict(step.params) if step.literal else {
            key: TEMPLATE.sub(lambda m: str(values.get(m.group(1), m.group(0))), value) if isinstance(value, str)
            else value for key, value in step.params.items()}
        return signal_preview(params, self.latest.get(("postgres", source.name)), source.name, self.clock())

    # ---- drilling into rows, and acting from them -----------------------------
    def source_of(self, ref: RowRef):
        """The source a pane's row came from (None before the sources exist)."""
        sources = self.runner.sources if self.runner is not None else {}
        return sources.get(f"{ref.kind}:{ref.source}")

    async def drill(self, ref: RowRef) -> Detail:
        """Read the row's detail now (details are never read on a refresh)."""
        from console.capabilities import Drilling, cannot
        from console.vocabulary import ProbeError

        source = self.source_of(ref)
        if source is None:
            raise ProbeError(f"no {ref.kind} source named {ref.source!r} is running")
        if not isinstance(source, Drilling):
            raise ProbeError(cannot(source, Drilling))
        detail = await source.drill(ref.row)
        if ref.kind == "postgres":
            from console.incident.blast import with_blast_radius

            detail = with_blast_radius(detail, self.config, self.latest)
        return detail

    def change_step(self, ref: RowRef, change: Change):
        """A pane's change as the action step a playbook would hold: it runs
        through the same checks, confirmation and journal."""
        from console.playbooks.model import Step

        return Step(id=f"{ref.kind}.{change.action}", title=change.label, kind="action", action=change.action,
                    params=change.params, source=ref.source, confirm=change.confirm, literal=True)

    def confirmation(self, ref: RowRef, change: Change) -> tuple[str, list[str], str]:
        """(title, what the confirmation shows, what must be typed); raises
        Refusal in read-only mode or for a change that cannot run."""
        from console.playbooks.runner import Refused

        if self.runner is None:
            raise Refusal("the sources are not running yet")
        step = self.change_step(ref, change)
        try:
            self.runner.refuse_if_read_only(PANE_PLAYBOOK, step, {}, "")  # journaled by the runner
            what = self.runner.what_runs(step, {})
            expected = self.runner.expected_confirmation(step, {})
        except Refused as exc:
            raise Refusal(str(exc)) from None
        return f"{change.label} on {ref.source}", [*change.preview, *what], expected

    async def change(self, ref: RowRef, change: Change, typed: str):
        """Run ``change`` if ``typed`` confirms it; every attempt is journaled
        (by the runner: refused, failed or done). Raises Refusal when it was
        not run."""
        from console.playbooks.runner import Refused

        if self.runner is None:
            raise Refusal("the sources are not running yet")
        try:
            return await self.runner.run(PANE_PLAYBOOK, self.change_step(ref, change), {}, typed)
        except Refused as exc:
            raise Refusal(str(exc)) from None

    # ---- the end -----------------------------------------------------------
    def unwritten(self) -> int:
        """How many entries are not on disk, after one more try."""
        if self.journal is None:
            return 0
        self.journal.flush()
        return len(self.journal.pending)

    def save_unwritten(self) -> str:
        """Put what is unwritten in a recovery file; the message naming it.
        OSError when no recovery file can be written either."""
        return _saved(self.journal)

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def leaving(journal: Journal) -> str | None:
    """What to print on the terminal as the process ends with ``journal``:
    where its unwritten entries went, or, if nowhere, the entries themselves
    (the terminal's scrollback is the last place left). None if all is written."""
    from console.incident.export import describe

    journal.flush()
    pending = journal.pending
    if not pending:
        return None
    try:
        return _saved(journal)
    except OSError as exc:
        lines = [f"{event.at:%Y-%m-%d %H:%M:%S} UTC {event.user}: {describe(event)}" for event in pending]
        return (f"{_entries(len(pending))} were NOT saved: not written to {journal.path} "
                f"({journal.write_problem or 'refused'}), and {exc}. Here they are, to keep:\n" + "\n".join(lines))


def _saved(journal: Journal) -> str:
    n = len(journal.pending)
    saved = journal.save_unwritten()
    return (f"{_entries(n)} could not be written to {journal.path} "
            f"({journal.write_problem or 'refused'}): saved in {saved}; they go into the journal "
            f"the next time the console, note or export opens it")


def _entries(n: int) -> str:
    return f"{n} {'entry' if n == 1 else 'entries'}"
