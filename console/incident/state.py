"""The incident as it stands, computed from its journal and nothing else.

:meth:`Incident.from_events` is pure: the same events and ``now`` give the
same incident, so the header, the checklist and the post-mortem agree, and
tests need no clock but the one they pass.

Severity schemes come from the seed runbooks: P0–P3 by default, with each
level's response target (seed 000) and a status-update cadence (every 15
minutes for P0/P1, as seeds 000 and 001 say; hourly for P2; none for P3, which
seed 004 handles with a ticket), and SEV1–SEV4 (seed 003; SEV2's 30 minutes is
the update promise of its status-page example). Both cadences can be
replaced per level.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from itertools import islice
from typing import Any, Iterable, Mapping, Sequence

from console.incident.journal import Event, in_order, parse_tags, parse_time, untagged

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class SeverityLevel:
    code: str                            # "P1", "SEV2"
    name: str                            # "High"; "" where the scheme has none
    description: str                     # "Major feature broken"
    response: str                        # the response target, as the runbook says it
    respond_within: timedelta | None     # the same, as a duration (None: next business day)
    update_every: timedelta | None       # status-update cadence; None: no cadence

    @property
    def label(self) -> str:
        """``P0 - Critical``, as the seeds' notifications write it."""
        return f"{self.code} - {self.name or self.description}"


@dataclass(frozen=True)
class SeverityScheme:
    name: str
    levels: tuple[SeverityLevel, ...]

    def level(self, code: str | None) -> SeverityLevel | None:
        if not code:
            return None
        wanted = code.strip().upper()
        return next((level for level in self.levels if level.code == wanted), None)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(level.code for level in self.levels)

    def with_cadence(self, cadence: Mapping[str, timedelta | None]) -> "SeverityScheme":
        """This scheme with the update cadence of some levels replaced."""
        unknown = {code.upper() for code in cadence} - set(self.codes)
        if unknown:
            raise ValueError(f"no severity {', '.join(sorted(unknown))} in {self.name}")
        wanted = {code.upper(): every for code, every in cadence.items()}
        return replace(self, levels=tuple(
            replace(level, update_every=wanted.get(level.code, level.update_every)) for level in self.levels))


P_SCHEME = SeverityScheme("P0-P3", (
    SeverityLevel("P0", "Critical", "Complete service outage", "< 15 minutes", 15 * MINUTE, 15 * MINUTE),
    SeverityLevel("P1", "High", "Major feature broken", "< 1 hour", HOUR, 15 * MINUTE),
    SeverityLevel("P2", "Medium", "Degraded performance", "< 4 hours", 4 * HOUR, HOUR),
    SeverityLevel("P3", "Low", "Minor issues", "< 24 hours", 24 * HOUR, None),
))
SEV_SCHEME = SeverityScheme("SEV1-SEV4", (
    SeverityLevel("SEV1", "", "Service completely down", "< 15 min", 15 * MINUTE, 15 * MINUTE),
    SeverityLevel("SEV2", "", "Major functionality impaired", "< 30 min", 30 * MINUTE, 30 * MINUTE),
    SeverityLevel("SEV3", "", "Minor functionality impaired", "< 2 hours", 2 * HOUR, HOUR),
    SeverityLevel("SEV4", "", "Cosmetic or minor issue", "Next business day", None, None),
))
SCHEMES = (P_SCHEME, SEV_SCHEME)


def scheme_for(severity: str | None, default: SeverityScheme = P_SCHEME) -> SeverityScheme:
    """The known scheme that has ``severity``, else ``default``."""
    return next((scheme for scheme in SCHEMES if scheme.level(severity)), default)


@dataclass(frozen=True)
class NoteVersion:
    at: datetime
    text: str
    user: str


@dataclass(frozen=True)
class Note:
    """A scribe's note with its history: every version, and whether struck."""

    id: str
    at: datetime
    user: str
    versions: tuple[NoteVersion, ...]
    tags: tuple[str, ...]
    pinned: bool = False
    struck_at: datetime | None = None
    struck_by: str | None = None

    @property
    def text(self) -> str:
        return self.versions[-1].text

    @property
    def body(self) -> str:
        """The text without the tags that end it."""
        return untagged(self.text)

    @property
    def struck(self) -> bool:
        return self.struck_at is not None

    @property
    def corrected(self) -> bool:
        return len(self.versions) > 1


@dataclass(frozen=True)
class Tick:
    """The last tick or untick of one playbook step."""

    ticked: bool
    auto: bool
    at: datetime
    user: str


@dataclass(frozen=True)
class UpdateSent:
    at: datetime
    channel: str
    text: str
    user: str


@dataclass(frozen=True)
class Incident:
    now: datetime
    scheme: SeverityScheme
    title: str | None = None
    severity: str | None = None
    status: str | None = None
    roles: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    declared_at: datetime | None = None
    detected_at: datetime | None = None      # an incident.detected, else the first alarm, else declared_at
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    notes: tuple[Note, ...] = ()
    checklist: Mapping[tuple[str, Any], Tick] = field(default_factory=lambda: MappingProxyType({}))
    playbooks: tuple[str, ...] = ()
    updates: tuple[UpdateSent, ...] = ()
    # The notes by id (:meth:`note`): the timeline looks up every note it
    # shows, and a scan each would be quadratic in a long incident.
    note_index: Mapping[str, Note] = field(default_factory=lambda: MappingProxyType({}), repr=False,
                                           compare=False)

    @classmethod
    def from_events(cls, events: Iterable[Event], now: datetime, scheme: SeverityScheme | None = None,
                    cadence: Mapping[str, timedelta | None] | None = None) -> "Incident":
        """The incident ``events`` (oldest first) describe, as of ``now``.

        ``scheme`` defaults to the scheme of the declared severity;
        ``cadence`` replaces update cadences per severity code."""
        replay = Replay()
        replay.take(sorted(events, key=in_order))
        return replay.incident(now, scheme, cadence)

    # -- derived -------------------------------------------------------------

    @property
    def level(self) -> SeverityLevel | None:
        return self.scheme.level(self.severity)

    @property
    def commander(self) -> str | None:
        return self.roles.get("commander")

    @property
    def declared(self) -> bool:
        return self.declared_at is not None

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None

    @property
    def started_at(self) -> datetime | None:
        """When the incident began as far as anyone knows: detection."""
        return self.detected_at

    @property
    def tta(self) -> timedelta | None:
        """Time to acknowledge: acknowledged − detected."""
        return _since(self.detected_at, self.acknowledged_at)

    @property
    def ttm(self) -> timedelta | None:
        """Time to mitigate: mitigated − detected."""
        return _since(self.detected_at, self.mitigated_at)

    @property
    def ttr(self) -> timedelta | None:
        """Time to resolve: resolved − detected."""
        return _since(self.detected_at, self.resolved_at)

    @property
    def elapsed(self) -> timedelta | None:
        """Since detection; stops at resolution."""
        return _since(self.started_at, self.resolved_at or self.now)

    @property
    def respond_by(self) -> datetime | None:
        """Detection plus the severity's response target."""
        level = self.level
        if self.started_at is None or level is None or level.respond_within is None:
            return None
        return self.started_at + level.respond_within

    @property
    def update_every(self) -> timedelta | None:
        level = self.level
        return level.update_every if level else None

    @property
    def last_update(self) -> UpdateSent | None:
        return self.updates[-1] if self.updates else None

    @property
    def next_update_due(self) -> datetime | None:
        """The last status update (or the declaration) plus the cadence;
        None before declaration, after resolution, or without a cadence."""
        if self.declared_at is None or self.resolved or self.update_every is None:
            return None
        since = self.last_update.at if self.last_update else self.declared_at
        return since + self.update_every

    @property
    def live_notes(self) -> tuple[Note, ...]:
        return tuple(note for note in self.notes if not note.struck)

    @property
    def pinned(self) -> tuple[Note, ...]:
        return tuple(note for note in self.live_notes if note.pinned)

    def tagged(self, *tags: str) -> tuple[Note, ...]:
        """Notes, not struck, carrying any of ``tags`` (without ``#``)."""
        wanted = {tag.lstrip("#").lower() for tag in tags}
        return tuple(note for note in self.live_notes if wanted & set(note.tags))

    def note(self, note_id: str) -> Note | None:
        if self.note_index or not self.notes:
            return self.note_index.get(note_id)
        return next((note for note in self.notes if note.id == note_id), None)

    def ticked(self, playbook: str, step: Any) -> bool:
        tick = self.checklist.get((playbook, step))
        return bool(tick and tick.ticked)


@dataclass(frozen=True)
class StateChange:
    """A status or severity change and the value it replaced. The journal is
    append-only: taking it back is a new event (``undoes``: its id) that
    restores ``before``."""

    event: Event
    field: str          # "status" or "severity"
    before: str
    after: str


# A declaration sets the severity too: declared again at another severity,
# it is a change like any other (the newest one, which an undo would take back
# first), never one an older undo quietly replaces.
CHANGE_KINDS = {"incident.status": "status", "incident.severity": "severity", "incident.declared": "severity"}


def changes_to_take_back(events: Iterable[Event]) -> list[StateChange]:
    """Status and severity changes still in force, oldest first: each changed
    something, is not itself a taking back, and was not taken back. The
    last one is what an undo restores; the one before it, the next undo."""
    state = Replay()
    taken_back: set[str] = set()
    found: list[StateChange] = []
    for event in sorted(events, key=in_order):
        field_name = CHANGE_KINDS.get(event.kind)
        before = getattr(state, field_name) if field_name else None
        state.take_one(event)
        if field_name is None:
            continue
        undoes = event.data.get("undoes")
        if isinstance(undoes, str):
            taken_back.add(undoes)
            continue
        after = getattr(state, field_name)
        if before is not None and after is not None and after != before:
            found.append(StateChange(event, field_name, before, after))
    return [change for change in found if change.event.id not in taken_back]


ALARM_KINDS = ("threshold.crossed", "source.state", "source.lost", "source.recovered")


def alarm_key(event: Event) -> tuple[str, str] | None:
    """What an alarm or its clearing is about: (source, metric); None when
    ``event`` is neither."""
    if event.kind not in ALARM_KINDS or not isinstance(event.data.get("source"), str):
        return None
    if event.kind == "threshold.crossed":
        return event.data["source"], str(event.data.get("metric"))
    return event.data["source"], "own" if event.kind == "source.state" else "reach"


def is_alarm(event: Event) -> bool:
    """A crossing, state or loss that is not ok: the first alarm is detection."""
    if event.kind == "source.lost":
        return True
    return event.kind in ("threshold.crossed", "source.state") and event.data.get("state") not in ("ok", None)


def update_countdown(incident: Incident, now: datetime) -> timedelta | None:
    """Time left until the next status update is due; negative when overdue,
    None when no update is due (not declared, resolved, no cadence)."""
    due = incident.next_update_due
    return None if due is None else due - now


def format_duration(span: timedelta) -> str:
    """``42 min``, ``1 h 12 min``, ``2 d 3 h``: how a post-mortem says it."""
    seconds = int(span.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    if seconds < 60:
        return f"{sign}{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{sign}{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    days, hours = divmod(hours, 24)
    return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"


def extends(events: Sequence[Event], before: Sequence[Event]) -> bool:
    """Whether ``events`` is ``before`` with events added at the end (the
    same objects: compared by identity, at C speed)."""
    n = len(before)
    return len(events) >= n and (n == 0 or events[n - 1] is before[n - 1]) and \
        all(map(operator.is_, islice(events, n), before))


def _since(start: datetime | None, end: datetime | None) -> timedelta | None:
    if start is None or end is None:
        return None
    return end - start


@dataclass
class _NoteDraft:
    id: str
    at: datetime
    user: str
    versions: list[NoteVersion]
    tags: tuple[str, ...]
    pinned: bool
    struck_at: datetime | None = None
    struck_by: str | None = None

    def build(self) -> Note:
        return Note(self.id, self.at, self.user, tuple(self.versions), self.tags, self.pinned,
                    self.struck_at, self.struck_by)


class Replay:
    """Events applied one by one, oldest first; :meth:`incident` is the
    incident they describe so far. A console keeps one and feeds it only the
    events added since (an append costs that event, not the incident's
    length: issue 16 measured 250–570 ms per entry at 3,000 when every entry
    replayed them all)."""

    def __init__(self) -> None:
        self.title: str | None = None
        self.severity: str | None = None
        self.status: str | None = None
        self.roles: dict[str, str] = {}
        self.declared_at: datetime | None = None
        self.detected_at: datetime | None = None
        self.acknowledged_at: datetime | None = None
        self.mitigated_at: datetime | None = None
        self.first_monitoring: datetime | None = None
        self.first_monitoring_by: str | None = None  # the event, so taking it back undoes the mitigation
        self.resolved_at: datetime | None = None
        # The first alarm of the run still firing when the incident was
        # declared: detection, when nobody said otherwise. Alarms that all
        # cleared before the declaration were another episode.
        self.alarm_at: datetime | None = None
        self._alarming: set[tuple[str, str]] = set()
        self.notes: dict[str, _NoteDraft] = {}
        self._built: dict[str, Note] = {}   # each note as last built; rebuilt when it changes
        self._stale: set[str] = set()
        self.ticks: dict[tuple[str, Any], Tick] = {}
        self.playbooks: list[str] = []
        self.updates: list[UpdateSent] = []

    def take(self, events: Iterable[Event]) -> None:
        """Apply ``events``, which must all be later than (or as late as)
        the ones taken before."""
        for event in events:
            self.take_one(event)

    def incident(self, now: datetime, scheme: SeverityScheme | None = None,
                 cadence: Mapping[str, timedelta | None] | None = None) -> Incident:
        chosen = scheme or scheme_for(self.severity)
        if cadence:
            chosen = chosen.with_cadence(cadence)
        for note_id in self._stale:
            draft = self.notes.get(note_id)
            if draft is not None:
                self._built[note_id] = draft.build()
            else:  # a note entry whose fields could not be read: no note
                self._built.pop(note_id, None)
        self._stale.clear()
        return Incident(
            now=now, scheme=chosen, title=self.title, severity=self.severity, status=self.status,
            roles=MappingProxyType(dict(self.roles)), declared_at=self.declared_at,
            detected_at=self.detected_at or self.alarm_at or self.declared_at,
            acknowledged_at=self.acknowledged_at,
            mitigated_at=self.mitigated_at or self.first_monitoring,
            resolved_at=self.resolved_at if self.status == "Resolved" else None,
            notes=tuple(self._built.values()), note_index=MappingProxyType(dict(self._built)),
            checklist=MappingProxyType(dict(self.ticks)), playbooks=tuple(self.playbooks),
            updates=tuple(self.updates))

    def take_one(self, event: Event) -> None:
        if event.kind.startswith("note"):
            note_id = event.id if event.kind == "note" else event.data.get("note_id")
            if isinstance(note_id, str) and (event.kind == "note" or note_id in self.notes):
                self._stale.add(note_id)
                self._built.setdefault(note_id, None)  # keeps the notes in the order they were written
        if self.declared_at is None and event.kind in ALARM_KINDS:
            self._alarm(event)
        handler = getattr(self, "_" + event.kind.replace(".", "_"), None)
        if handler is not None:
            try:
                handler(event, event.data)
            except (TypeError, ValueError, AttributeError, KeyError, OverflowError, RecursionError):
                # Another writer's entry of a known kind with fields of the
                # wrong type (a note_id that is a list): it changes nothing,
                # and is still shown in the timeline as written.
                pass

    def _alarm(self, event: Event) -> None:
        key = alarm_key(event)
        if key is None:
            return
        if is_alarm(event):
            self._alarming.add(key)
            self.alarm_at = self.alarm_at or event.at
        else:
            self._alarming.discard(key)
            if not self._alarming:
                self.alarm_at = None

    def _incident_declared(self, event: Event, data: Mapping) -> None:
        self.title = _text(data.get("title")) or self.title
        self.severity = _text(data.get("severity")) or self.severity
        if self.declared_at is None:
            self.declared_at = event.at
            self.status = self.status or "Investigating"

    def _incident_severity(self, event: Event, data: Mapping) -> None:
        self.severity = _text(data.get("severity")) or self.severity

    def _incident_status(self, event: Event, data: Mapping) -> None:
        status = _text(data.get("status"))
        if not status:
            return
        if data.get("undoes") is not None and data.get("undoes") == self.first_monitoring_by:
            # Monitoring chosen by mistake and taken back mitigated nothing.
            self.first_monitoring = self.first_monitoring_by = None
        self.status = status
        if status == "Monitoring" and self.first_monitoring is None:
            self.first_monitoring, self.first_monitoring_by = event.at, event.id
        if status == "Resolved":
            self.resolved_at = event.at

    def _incident_role(self, event: Event, data: Mapping) -> None:
        role, person = _text(data.get("role")), _text(data.get("person"))
        if role and person:
            self.roles[role] = person
        elif role:
            self.roles.pop(role, None)

    def _incident_acknowledged(self, event: Event, data: Mapping) -> None:
        self.acknowledged_at = self.acknowledged_at or event.at

    def _incident_mitigated(self, event: Event, data: Mapping) -> None:
        self.mitigated_at = self.mitigated_at or event.at

    def _incident_detected(self, event: Event, data: Mapping) -> None:
        # The latest detection event wins: it corrects earlier guesses.
        at = data.get("at")
        try:
            self.detected_at = parse_time(at) if isinstance(at, str) else event.at
        except ValueError:
            self.detected_at = event.at

    def _note(self, event: Event, data: Mapping) -> None:
        text = _text(data.get("text")) or ""
        tags = data.get("tags")
        self.notes[event.id] = _NoteDraft(
            event.id, event.at, event.user, [NoteVersion(event.at, text, event.user)],
            tuple(tags) if isinstance(tags, (list, tuple)) else tuple(parse_tags(text)),
            bool(data.get("pinned", False)))

    def _note_corrected(self, event: Event, data: Mapping) -> None:
        note = self.notes.get(data.get("note_id"))
        text = _text(data.get("text"))
        if note is not None and text is not None:
            note.versions.append(NoteVersion(event.at, text, event.user))
            note.tags = tuple(parse_tags(text))

    def _note_struck(self, event: Event, data: Mapping) -> None:
        note = self.notes.get(data.get("note_id"))
        if note is not None and note.struck_at is None:
            note.struck_at, note.struck_by = event.at, event.user

    def _note_pinned(self, event: Event, data: Mapping) -> None:
        note = self.notes.get(data.get("note_id"))
        if note is not None:
            note.pinned = bool(data.get("pinned", True))

    def _playbook_started(self, event: Event, data: Mapping) -> None:
        playbook = _text(data.get("playbook"))
        if playbook and playbook not in self.playbooks:
            self.playbooks.append(playbook)

    def _playbook_tick(self, event: Event, data: Mapping, ticked: bool = True) -> None:
        key = (data.get("playbook"), data.get("step"))
        try:
            hash(key)
        except TypeError:  # a step named by something unhashable: its text
            key = (str(key[0]), str(key[1]))
        self.ticks[key] = Tick(ticked, bool(data.get("auto", False)), event.at, event.user)

    def _playbook_untick(self, event: Event, data: Mapping) -> None:
        self._playbook_tick(event, data, ticked=False)

    def _update_sent(self, event: Event, data: Mapping) -> None:
        self.updates.append(UpdateSent(event.at, _text(data.get("channel")) or "", _text(data.get("text")) or "",
                                       event.user))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
