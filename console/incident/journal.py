"""The incident journal: every event of an incident, in one TinyDB file.

The journal is the single record of the incident: the header, the checklist
state and the post-mortem are all computed from its events. An event is an
immutable record with a UTC time and the operator (user name and SSH client
address) who caused it; what the console itself observed (crossings, lost
and recovered sources, automatic ticks, suggestions) is the console's
(:data:`CONSOLE`, user ``console``), not the operator's who had it open. :meth:`Journal.append` returns once the event is
durably on disk; when the disk refuses (full, read-only, permission denied)
the event is kept in :attr:`Journal.pending`, :attr:`Journal.write_error` says
why, and :meth:`Journal.flush` writes it later. Nothing is silently dropped.

Event kinds and their data (all times ISO 8601 UTC strings):

``incident.declared``      {title, severity}
``incident.severity``      {severity}
``incident.status``        {status: Investigating | Identified | Monitoring | Resolved}
``incident.role``          {role: commander | scribe | communications, person}
``incident.acknowledged``  {}
``incident.mitigated``     {}
``incident.detected``      {at?}  detection time; may be earlier than the declaration
``note``                   {text, tags: [str], pinned: bool}  tags from ``#words`` in the text
``note.corrected``         {note_id, text}  a new version of a note; history is kept
``note.struck``            {note_id}
``note.pinned``            {note_id, pinned: bool}
``playbook.started``       {playbook}
``playbook.suggested``     {playbook, title}  by the console, once per incident
``playbook.tick``          {playbook, step, auto: bool}
``playbook.untick``        {playbook, step, auto: bool}
``probe``                  {playbook, step, source, query, ok, output, error}  output bounded (:func:`clip`)
``command``                {playbook, step, command, exit_code, output}
``action``                 {playbook, step, action, target, ok, result, confirmed_by}
``threshold.crossed``      {source, kind, metric, value, limit, state, previous}  on transitions only
``source.state``           {source, kind, state, previous, reason}  a state the source gave itself (HTTP 503)
``source.lost``            {source, kind, error}
``source.recovered``       {source, kind}
``update.sent``            {channel, text}
``entry.unreadable``       {line, problem}  not written by anyone: what the reader makes of an
                           entry it cannot understand (another program wrote it, a writer was
                           killed mid-line); shown in the timeline, never written back as an event

Tags that feed the post-mortem: ``#decision #finding #action #root-cause
#impact #resolution #went-well #went-wrong #lesson #summary``; any other
``#word`` is kept as a tag too.
"""

from __future__ import annotations

import enum
import math
import operator
import os
import pwd
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from collections.abc import Callable, Mapping
from typing import Any

from tinydb import TinyDB

from console import secrets as secret_values
from console.frozen import freeze, thaw
from console.incident import recovery
from console.incident.storage import (UNREADABLE, JournalChanged, JournalPathRefused, JournalStorage,
                                      JournalUnreadable, NotAppendable, set_aside)

__all__ = ["Event", "Journal", "in_order", "JournalUnreadable", "JournalPathRefused", "set_aside", "current_operator",
           "new_event", "write_event", "UNREADABLE_KIND", "CONSOLE",
           "parse_tags", "untagged", "clip", "OUTPUT_LIMIT", "STATUSES", "ROLES"]

STATUSES = ("Investigating", "Identified", "Monitoring", "Resolved")
ROLES = ("commander", "scribe", "communications")
# Probe and command output is journaled, not archived: enough to read in the
# timeline and the post-mortem, bounded so one noisy probe cannot bloat it.
OUTPUT_LIMIT = 4000
# How often refresh() retries writing pending events (a full disk).
RETRY_SECONDS = 2.0
TABLE = "events"
UNREADABLE_KIND = "entry.unreadable"
# Entries from other writers are refused beyond these: deeper data could
# exhaust the recursion of whatever walks it, later times overflow datetime
# arithmetic (an update due an hour after 9999-12-31).
MAX_DEPTH = 32
MAX_ID = 100
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(9000, 1, 1, tzinfo=timezone.utc)

_TAG = re.compile(r"(?<![\w#&/])#([A-Za-z][\w-]*)")
# Who an observation of the console's own is by. An operator record like any
# other, so journals written before it and readers that do not know it load
# it as they load any entry.
CONSOLE = MappingProxyType({"user": "console", "ssh_client": None})


def in_order(event: "Event") -> datetime:
    """The order of an incident's events: by time (a sort keeps the order of
    entries at the same time as the file holds them)."""
    return event.at


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_tags(text: str) -> list[str]:
    """``#decision``, ``#root-cause`` ... in ``text``, lower-cased, in order, once
    each. ``#123`` (an issue number) and ``a#b`` are not tags."""
    seen: dict[str, None] = {}
    for match in _TAG.finditer(text):
        seen.setdefault(match.group(1).lower().rstrip("-"), None)
    return list(seen)


_TRAILING_TAGS = re.compile(r"(?:\s+#[A-Za-z][\w-]*)+\s*$")


def untagged(text: str) -> str:
    """``text`` without the ``#tags`` that end it: what a post-mortem section
    or a customer reads. Tags inside the sentence stay."""
    stripped = _TRAILING_TAGS.sub("", text)
    return stripped if stripped.strip() else text


def clip(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """``text`` bounded to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… ({len(text) - limit} more characters not journaled)"


def current_operator(environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Who is at the keyboard: the user name and the SSH client address."""
    env = os.environ if environ is None else environ
    # getpass.getuser()'s order, on the environment given.
    user = next((env[name] for name in ("LOGNAME", "USER", "LNAME", "USERNAME") if env.get(name)), None)
    if user is None:
        try:
            user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:  # no name for this uid (containers): the number says who
            user = str(os.getuid())
    client = None
    for name in ("SSH_CLIENT", "SSH_CONNECTION"):
        fields = (env.get(name) or "").split()
        if fields:
            client = fields[0]
            break
    return {"user": user, "ssh_client": client}


@dataclass(frozen=True)
class Event:
    """One immutable journal entry."""

    id: str
    at: datetime
    kind: str
    operator: Mapping[str, str | None]
    data: Mapping[str, Any]

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def user(self) -> str:
        return str(self.operator.get("user") or "?")

    def to_document(self) -> dict[str, Any]:
        return {"id": self.id, "at": format_time(self.at), "kind": self.kind,
                "operator": thaw(self.operator), "data": thaw(self.data)}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "Event":
        """The event a stored document holds; ValueError says what is wrong."""
        ident, at, kind = doc.get("id"), doc.get("at"), doc.get("kind")
        operator, data = doc.get("operator"), doc.get("data", {})
        if not isinstance(ident, str) or not ident:
            raise ValueError("entry has no id")
        if len(ident) > MAX_ID:
            raise ValueError(f"entry id of {len(ident)} characters")
        if not isinstance(kind, str) or not kind or kind == UNREADABLE_KIND:
            raise ValueError(f"entry {ident!r}: no kind")
        if not isinstance(at, str):
            raise ValueError(f"entry {ident!r}: no time")
        try:
            when = parse_time(at)
        except (ValueError, OverflowError):
            raise ValueError(f"entry {ident!r}: time {at[:40]!r} is not ISO 8601 with a zone") from None
        if not EARLIEST <= when < LATEST:
            raise ValueError(f"entry {ident!r}: time {at[:40]!r} is out of range")
        if _depth(doc) > MAX_DEPTH:
            raise ValueError(f"entry {ident!r}: nested more than {MAX_DEPTH} levels deep")
        if not isinstance(operator, Mapping) or not isinstance(operator.get("user"), str):
            raise ValueError(f"entry {ident}: no operator")
        if not isinstance(data, Mapping):
            raise ValueError(f"entry {ident}: data is not an object")
        client = operator.get("ssh_client")
        return cls(ident, when, kind,
                   MappingProxyType({"user": operator["user"], "ssh_client": client if isinstance(client, str) else None}),
                   freeze(data))


def new_event(kind: str, operator: Mapping[str, str | None], at: datetime, /, **data: Any) -> Event:
    """A new event with a fresh id: what :meth:`Journal.append` records, and
    what ``note`` writes with :func:`write_event`."""
    if not isinstance(kind, str) or not kind:
        raise ValueError("an event needs a kind")
    if at.tzinfo is None:
        raise ValueError("the journal clock must return aware datetimes")
    who = operator if isinstance(operator, MappingProxyType) else MappingProxyType(dict(operator))
    return Event(secrets.token_hex(6), at.astimezone(timezone.utc), kind, who,
                 freeze(secret_values.redact_data(_plain(data))))  # no secret is ever stored


def unreadable_event(key: str, line: int | None, problem: str, at: datetime) -> Event:
    """The stand-in for an entry that cannot be understood: shown in the
    timeline at ``at`` (the entry before it), never written back."""
    return Event(f"unreadable:{key}", at, UNREADABLE_KIND, MappingProxyType({"user": "?", "ssh_client": None}),
                 MappingProxyType({"line": line, "problem": problem}))


def _depth(value: Any) -> int:
    """How deeply ``value`` nests, counted without recursion (so a hostile
    document cannot exhaust the stack here)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        if isinstance(item, Mapping):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, level + 1) for v in item)
    return deepest


def format_time(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return when.astimezone(timezone.utc)


class Journal:
    """The journal file of one incident, shared with other processes.

    ``append`` returns only when the event is on disk, or, when the disk
    refuses, with the event kept in :attr:`pending` and :attr:`write_error`
    set. Call :meth:`flush` to retry (the console does on a timer while
    anything is pending) and :meth:`refresh` often to see what others wrote.
    If another process leaves the file unreadable, :attr:`unreadable` holds
    the :class:`JournalUnreadable`; :meth:`set_aside` moves that file away and
    rewrites every event this journal knows into a new one.

    Opening an unreadable file raises :class:`JournalUnreadable`; it is never
    overwritten.
    """

    def __init__(self, path: str | os.PathLike, operator: Mapping[str, str | None] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.operator = MappingProxyType(dict(operator) if operator is not None else current_operator())
        self._clock = clock or utcnow
        self._lock = threading.RLock()
        self._db = TinyDB(path, storage=JournalStorage)
        self._storage: JournalStorage = self._db.storage
        # The file itself: a symlink's target (see storage.journal_path).
        self.path = self._storage.path
        self._written: dict[str, Event] = {}   # on disk, in file order
        self._pending: list[Event] = []        # not yet on disk, in append order
        self._key_ids: dict[str, str] = {}     # TinyDB doc key -> event id, as last read
        self._synced_keys: list[str] = []      # the file's keys and documents, as last read
        self._synced_docs: list[Any] = []
        self._next_key = 1
        self._from_others: list[Event] = []
        self._ordered: tuple[Event, ...] | None = None
        self._last_attempt = 0.0
        # Stand-ins for entries that cannot be understood, by document key.
        self._unreadable_entries: dict[str, Event] = {}
        self._last_at: datetime | None = None  # of the last readable entry in file order
        self._opened_at = self._clock().astimezone(timezone.utc)
        self.write_error: str | None = None
        self.write_problem: str | None = None  # why, without the count of what waits
        self.unreadable: JournalUnreadable | None = None
        self._read_failed = False
        # Recovery files merged back when this journal was opened.
        self.recovered: list[Path] = []
        try:
            self._sync(self._storage.read())
        except BaseException:
            self._db.close()
            raise
        self._from_others.clear()
        self._merge_recovered()

    # -- the record --------------------------------------------------------

    def append(self, kind: str, /, **data: Any) -> Event:
        """Record an event; returns it once it is on disk, or kept pending.

        ``kind`` is positional-only: some events carry a ``kind`` of their
        own (the kind of source that crossed a threshold)."""
        return self.add(new_event(kind, self.operator, self._clock(), **data))

    def add(self, event: Event) -> Event:
        """Record an event made elsewhere (:meth:`append` makes them here)."""
        with self._lock:
            self._pending.append(event)
            ordered = self._ordered
            if ordered is not None and (not ordered or in_order(ordered[-1]) <= in_order(event)):
                self._ordered = ordered + (event,)
            else:
                self._ordered = None
            self.flush()
        return event

    def add_many(self, events: list[Event]) -> list[Event]:
        """Record events made elsewhere (another host's, merged from a shared
        incident) in one write: catching up on 10,000 entries must not
        rewrite the file 10,000 times."""
        if not events:
            return events
        with self._lock:
            self._pending.extend(events)
            self._ordered = None
            self.flush()
        return events

    def observed(self, kind: str, /, **data: Any) -> Event:
        """Record what the console itself saw or did (a crossing, an automatic
        tick): attributed to :data:`CONSOLE`, not to the operator."""
        return self.add(new_event(kind, CONSOLE, self._clock(), **data))

    def note(self, text: str, pinned: bool = False) -> Event:
        """A scribe's note, with its ``#tags`` parsed."""
        return self.append("note", text=text, tags=parse_tags(text), pinned=pinned)

    def events(self) -> tuple[Event, ...]:
        """Every event, oldest first, including those still pending."""
        with self._lock:
            if self._ordered is None:
                merged = list(self._written.values()) + list(self._unreadable_entries.values()) + self._pending
                self._ordered = tuple(sorted(merged, key=in_order))
            return self._ordered

    @property
    def pending(self) -> tuple[Event, ...]:
        with self._lock:
            return tuple(self._pending)

    def flush(self) -> bool:
        """Write pending events, in order; True when nothing is pending."""
        with self._lock:
            if not self._pending:
                if self.unreadable is None and not self._read_failed:
                    self.write_error = None
                return True
            self._last_attempt = time.monotonic()
            try:
                with self._storage.locked():
                    if self._storage.changed_on_disk():
                        self._read()
                    if self._pending:
                        self._write_pending()
            except JournalUnreadable as exc:
                self.unreadable = exc
                self.write_problem = f"{exc}; not overwriting it"
                self.write_error = f"{self.write_problem}{self._kept()}"
            except (OSError, JournalChanged) as exc:
                self.write_problem = _reason(exc)
                self.write_error = f"cannot write {self.path}: {self.write_problem}{self._kept()}"
            else:
                self.write_error = self.write_problem = None
                self.unreadable = None
                self._read_failed = False
            return not self._pending

    def refresh(self) -> list[Event]:
        """Events other processes wrote since the last look, oldest first.

        One ``stat`` when nothing changed, so it can run every half second.
        While events are pending it also retries writing them, every
        :data:`RETRY_SECONDS` at most."""
        with self._lock:
            if self._pending and time.monotonic() - self._last_attempt >= RETRY_SECONDS:
                self.flush()
            try:
                if self._storage.changed_on_disk():
                    self._read()
                    if self.unreadable is not None or self._read_failed:
                        self.unreadable, self._read_failed = None, False
                        self.write_error = None if not self._pending else self.write_error
            except JournalUnreadable as exc:
                self.unreadable = exc
                self.write_problem = f"{exc}; not overwriting it"
                self.write_error = f"{self.write_problem}{self._kept()}"
            except OSError as exc:
                self._read_failed = True
                self.write_problem = f"cannot read it: {_reason(exc)}"
                self.write_error = f"cannot read {self.path}: {_reason(exc)}{self._kept()}"
            news, self._from_others = self._from_others, []
            return sorted(news, key=in_order)

    def set_aside(self) -> Path:
        """Move an unreadable file away (see :func:`set_aside`) and write every
        event this journal knows into a new file at the same path."""
        with self._lock:
            if self.unreadable is None:
                raise ValueError(f"{self.path} is readable: nothing to set aside")
            moved = set_aside(self.path)
            self.refresh()
            self.flush()
            return moved

    def close(self) -> None:
        """Try once more to write what is pending, then let go of the file.
        What is still in :attr:`pending` after this is only in memory: save
        it with :meth:`save_unwritten` before the process ends."""
        with self._lock:
            self.flush()
            self._db.close()

    def save_unwritten(self) -> Path:
        """Write the pending events to a recovery file (see
        :mod:`console.incident.recovery`) and return its path; they are
        merged into the journal the next time it is opened. Raises OSError
        saying why for every place tried."""
        with self._lock:
            saved = recovery.save(self.path, [event.to_document() for event in self._pending])
            # On disk now, if not in the journal: not held here any more.
            self._pending.clear()
            self._ordered = None
            return saved

    def _merge_recovered(self) -> None:
        """Take back the entries a process could not write when it ended,
        by event id (merging twice adds nothing); a recovery file is removed
        once its entries are in the journal."""
        files = recovery.find(self.path)
        if not files:
            return
        known = set(self._written) | {event.id for event in self._pending}
        for path in files:
            for doc in recovery.load(path):
                try:
                    event = Event.from_document(doc)
                except (ValueError, TypeError):
                    continue
                if event.id not in known:
                    known.add(event.id)
                    self._pending.append(event)
                    self._ordered = None
        if self.flush():
            for path in files:
                recovery.remove(path)
            self.recovered = files

    # -- internals -----------------------------------------------------------

    def _write_pending(self) -> None:
        # Straight to the storage: TinyDB's Table.insert converts the keys of
        # every stored document twice per insert, which at 10,000 entries
        # costs more than writing the file.
        batch = list(self._pending)
        docs = {str(self._next_key + i): event.to_document() for i, event in enumerate(batch)}
        self._storage.append(TABLE, docs)
        for key, event in zip(docs, batch):
            self._written[event.id] = event
            self._key_ids[key] = event.id
        self._next_key += len(batch)
        del self._pending[:len(batch)]

    def _read(self) -> None:
        """Take in what the file holds now; events new to this process are
        kept for :meth:`refresh`."""
        tables = self._storage.read()
        try:
            self._from_others += self._sync(tables)
        except JournalUnreadable as exc:
            # Nothing is written over it, and it is not parsed again until
            # it changes.
            self._storage.refuse(exc)
            raise

    def _sync(self, tables: Mapping[str, Mapping[str, Any]] | None) -> list[Event]:
        """Take in ``tables``; returns the events new to this process.

        Pending events found in the file (a write that failed after the
        rename) become written, so they are never written twice; events this
        process knew but the file lost (set aside, deleted) become pending
        again, so the next flush restores them."""
        raw = (tables or {}).get(TABLE, {})
        keys, docs = list(raw), list(raw.values())
        n = len(self._synced_keys)
        if keys[:n] == self._synced_keys and all(map(operator.is_, docs, self._synced_docs)):
            # Only appended to (the storage keeps unchanged documents as the
            # same objects): look at the new ones only.
            items = zip(keys[n:], docs[n:])
            at = self._last_at
        else:
            items = raw.items()
            at = None
            if self._unreadable_entries:
                self._unreadable_entries = {}
                self._ordered = None
        unseen: list[tuple[str, Event]] = []
        damaged: list[tuple[str, str, datetime | None]] = []
        for key, doc in items:
            ident = doc.get("id")
            if isinstance(ident, str) and self._key_ids.get(key) == ident and ident in self._written:
                at = self._written[ident].at
                continue
            problem = doc.get(UNREADABLE)
            if problem is None:
                try:
                    event = Event.from_document(doc)
                except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                    problem = str(exc)
                else:
                    unseen.append((key, event))
                    at = event.at
                    continue
            # Another writer's entry this process cannot understand: shown
            # as such, where it is in the file; never an exception.
            damaged.append((key, str(problem), at))
        self._last_at = at
        self._synced_keys, self._synced_docs = keys, docs
        news: list[Event] = self._stand_ins(damaged, unseen)
        pending = {event.id: event for event in self._pending}
        for key, event in unseen:
            self._key_ids[key] = event.id
            if key.isdigit():
                self._next_key = max(self._next_key, int(key) + 1)
            if event.id in self._written:
                continue
            if event.id in pending:
                self._pending.remove(pending.pop(event.id))
            else:
                news.append(event)
            self._written[event.id] = event
        if len(raw) - len(self._unreadable_entries) < len(self._written):
            on_disk = {doc.get("id") for doc in raw.values() if isinstance(doc.get("id"), str)}
            lost = [event for event in self._written.values() if event.id not in on_disk]
            for event in lost:
                del self._written[event.id]
            self._pending[:0] = lost
            self._key_ids = {key: doc.get("id") for key, doc in raw.items()}
        if news:
            self._ordered = None
        return news

    def _stand_ins(self, damaged: list[tuple[str, str, datetime | None]],
                   unseen: list[tuple[str, Event]]) -> list[Event]:
        """Events standing for the ``damaged`` documents, at the time of the
        entry before each (or the first readable one)."""
        if not damaged:
            return []
        fallback = unseen[0][1].at if unseen else self._opened_at
        lines = self._storage.line_numbers(TABLE, {key for key, _, _ in damaged})
        made = []
        for key, problem, at in damaged:
            if key.isdigit():
                self._next_key = max(self._next_key, int(key) + 1)
            event = unreadable_event(key, lines.get(key), problem, at or fallback)
            self._unreadable_entries[key] = event
            made.append(event)
        self._ordered = None
        return made

    def _kept(self) -> str:
        n = len(self._pending)
        if not n:
            return ""
        # What is true: held by this process only, retried while it runs.
        return (f"; {n} {'entry' if n == 1 else 'entries'} not written yet, held by this process "
                f"and retried while it runs")


def write_event(path: str | os.PathLike, event: Event) -> Path:
    """Write ``event`` to the journal at ``path`` and return the file's path,
    for a process that writes one entry and ends (``incident-console note``).

    The file is not read: the entry is appended in place, at a cost that
    does not grow with the journal. Only a file that does not end the way
    this module writes it (or recovery files waiting to be merged) is read
    whole, through a :class:`Journal`. Raises OSError or
    :class:`JournalUnreadable` when the entry is not on disk."""
    storage = JournalStorage(path)
    try:
        if not recovery.find(storage.path):
            try:
                storage.append_in_place(TABLE, event.to_document())
                return storage.path
            except NotAppendable:
                pass
    finally:
        storage.close()
    journal = Journal(path, operator=event.operator)
    try:
        journal.add(event)
        if journal.pending:
            if journal.unreadable is not None:
                raise journal.unreadable
            raise OSError(journal.write_problem or "not written")
        return journal.path
    finally:
        journal.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc)


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data; TypeError for what JSON cannot hold."""
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("journal times must be aware datetimes")
        return format_time(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    raise TypeError(f"cannot journal a {type(value).__name__}")
