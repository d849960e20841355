"""One incident shared between consoles on several hosts, through Redis.

Each console keeps its own journal file as its durable copy; Redis carries
the events between them. The keys, for ``share: {incident: NAME}``:

``incident-console:NAME:events``      a stream; each entry has one field,
                                      ``event``, holding an event's JSON
                                      document (:meth:`Event.to_document`)
``incident-console:NAME:responders``  a hash: ``user@host`` -> the epoch
                                      second it was last seen; expires when
                                      nobody has synced for a minute

The commands used, and nothing else (the ACL the README gives): XADD and
XRANGE on the stream (its first entry, and the last one this console read
or published, too: a stream that lost its data, or came back older from a
snapshot or a lagging replica, is noticed), HSET, HGETALL and EXPIRE on the
hash, HELLO/AUTH to connect.

Merging is by event id, so it is idempotent: an event published twice (an
XADD whose reply was lost) is read twice and merged once. Corrections,
strikes and pins are events like any other, so there is nothing to resolve.
The stream is never trimmed: a console that joins late catches up from it.

Offline first: when Redis does not answer, :meth:`Share.sync` returns within
about ``timeout`` seconds and says so in :attr:`Share.state`; the journal
goes on taking appends, and the next sync that reaches Redis publishes what
waited and catches up.

Whatever is in the stream came from outside: an entry that is not an event
document (another program's, a hostile one) is skipped and counted, never
merged, and one sync reads a bounded amount so a huge stream cannot hang
the console.

An event stamped more than :data:`FUTURE_SLACK` ahead of this console's
clock (another host's clock is ahead, or the entry is forged) is held, not
merged: sorted by time, it would outrank every later change. It is merged
once its time is near enough; :attr:`ShareState.held` counts those waiting.

A follower (``publishes=False``, the war-room screen) never adds to the
stream: it reads, and says it is there.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from console import secrets as secret_values
from console.config import ShareTarget, redact
from console.incident.journal import UNREADABLE_KIND, Event, in_order
from console.text import first_line, inert

if TYPE_CHECKING:
    import redis

    from console.incident.journal import Journal

__all__ = ["Share", "ShareState", "ShareTarget", "stream_key", "responders_key", "FIELD"]

FIELD = b"event"
PAGE = 1000                 # entries per XRANGE
MAX_ENTRIES = 10_000        # per sync: the rest is read by the next one
MAX_BYTES = 32 * 2 ** 20    # per sync, likewise
MAX_DOCUMENT = 256 * 1024   # an event document larger than this is no event of ours
PUBLISH_BATCH = 500         # XADDs per pipelined round trip
PRESENT_SECONDS = 30        # a responder not seen for this long has left
PRESENCE_TTL = 60           # the hash goes when nobody has synced for this long
MAX_RESPONDERS = 50
FUTURE_SLACK = timedelta(minutes=5)  # an event further ahead of the local clock waits
_UNSEEN = object()
_LAST_SEQ = 2 ** 64 - 1         # the largest part of a stream id


def stream_key(incident: str) -> str:
    return f"incident-console:{incident}:events"


def responders_key(incident: str) -> str:
    return f"incident-console:{incident}:responders"


@dataclass(frozen=True)
class ShareState:
    incident: str
    online: bool
    offline_since: datetime | None   # aware UTC; None while online
    waiting: int                     # local events not yet published to the stream
    responders: tuple[str, ...]      # "user@host" seen within the last ~30 s (this console included), sorted
    error: str | None                # why offline (redacted, one line), None when online
    held: int = 0                    # stream events stamped too far ahead of the local clock, not merged yet


class Share:
    """The link between one journal and the incident's stream.

    :meth:`sync` blocks (callers run it in a thread) and is not reentrant:
    one thread syncs a given Share at a time."""

    def __init__(self, target: ShareTarget, operator: Mapping[str, str | None], host: str | None = None,
                 clock: Callable[[], datetime] | None = None, timeout: float = 2.0,
                 publishes: bool = True) -> None:
        self.target = target
        self.publishes = publishes
        self.me = f"{operator.get('user') or '?'}@{host or socket.gethostname()}"
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._timeout = timeout
        self._client: redis.Redis | None = None
        self._stream, self._responders = stream_key(target.incident), responders_key(target.incident)
        self._cursor = b"0-0"             # the last stream entry read
        self._last_known = b"0-0"         # the last stream entry read or published: must still be there
        self._on_stream: set[str] = set()  # event ids read from the stream or published to it
        self._first: bytes | None | object = _UNSEEN  # the stream's first entry id, as last seen
        self._held: dict[str, Event] = {}  # stream events from too far ahead, by id, not merged yet
        self.skipped = 0                   # stream entries that were no event, since opened
        self._state = ShareState(target.incident, False, None, 0, (), None)

    @property
    def state(self) -> ShareState:
        return self._state

    def sync(self, journal: "Journal") -> list[Event]:
        """Publish every local event not yet on the stream, merge every
        stream event the journal lacks, say this console is here; returns
        the events merged in, oldest first. Never raises for Redis or the
        network: goes offline and keeps what it knew."""
        merged: list[Event] = []
        try:
            client = self._connected()
            caught_up = self._catch_up(client, journal, merged)
            if caught_up:
                # Only once the whole stream has been seen: what is there
                # already is not published again.
                self._publish(client, self._unpublished(journal))
            responders = self._be_present(client)
        except (OSError, _redis_errors()) as exc:
            self._went_offline(exc, journal)
        else:
            self._state = self._stated(journal, None, responders, None)
        return sorted(merged, key=in_order)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a dead connection: nothing left to do
                pass

    # -- reading the stream ------------------------------------------------

    def _catch_up(self, client: "redis.Redis", journal: "Journal", merged: list[Event]) -> bool:
        """Read the stream from where the last sync stopped, merging what
        the journal lacks; True when its end was reached."""
        self._notice_reset(client)
        known = {event.id for event in journal.events()}
        horizon = self._clock() + FUTURE_SLACK  # an event after this waits
        merged += journal.add_many(self._due(known, horizon))
        entries = read = 0
        fresh: list[Event] = []  # one page's new events, merged in one write
        while entries < MAX_ENTRIES and read < MAX_BYTES:
            # XRANGE rather than XREAD: its reply has the same shape in
            # every redis-py version and protocol.
            page = client.xrange(self._stream, min=_after(self._cursor), count=PAGE)
            for stream_id, fields in page:
                self._cursor = stream_id
                self._last_known = max(self._last_known, stream_id, key=_id_order)
                read += sum(len(k) + len(v) for k, v in fields.items())
                doc = self._document_of(fields)
                if doc is None:
                    continue
                if doc.get("id") in known:
                    # This journal has it already (its own, or merged by an
                    # earlier sync): no need to validate it again, which is
                    # most of the cost of a `note` reading the whole stream.
                    self._on_stream.add(doc["id"])
                    continue
                event = self._event_of(doc)
                if event is None:
                    continue
                self._on_stream.add(event.id)
                if event.at > horizon:
                    self._held[event.id] = event
                else:
                    known.add(event.id)
                    fresh.append(event)
            merged += journal.add_many(fresh)
            fresh = []
            entries += len(page)
            if len(page) < PAGE:
                return True
        return False

    def _notice_reset(self, client: "redis.Redis") -> None:
        """A Redis restarted without its data, or a stream deleted, holds
        none of what this console published; one restored from an older
        snapshot, or a replica that lagged, lacks its last entries. Either
        way: start again from the stream's beginning and publish what it
        lacks. The stream is never trimmed, so its first entry changes only
        when the stream is a new one, and an entry once there stays."""
        pipe = client.pipeline(transaction=False)
        pipe.xrange(self._stream, count=1)
        pipe.xrange(self._stream, min=self._last_known, max=self._last_known, count=1)
        first, last = pipe.execute()
        first_id = first[0][0] if first else None
        changed = self._first is not _UNSEEN and first_id != self._first
        if changed or (self._last_known != b"0-0" and not last):
            self._cursor = self._last_known = b"0-0"
            self._on_stream.clear()
        self._first = first_id

    def _due(self, known: set[str], horizon: datetime) -> list[Event]:
        """The held events no later than ``horizon``, taken out of the held
        ones; those the journal has already are dropped."""
        due = [event for event in self._held.values() if event.at <= horizon]
        for event in due:
            del self._held[event.id]
        fresh = [event for event in due if event.id not in known]
        known.update(event.id for event in fresh)
        return fresh

    def _document_of(self, fields: Mapping[bytes, bytes]) -> dict | None:
        """The JSON object a stream entry holds, or None (counted) for anything else."""
        raw = fields.get(FIELD)
        try:
            if raw is None or len(raw) > MAX_DOCUMENT:
                raise ValueError("no event document")
            doc = json.loads(raw)
            if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
                raise ValueError("not an event document")
        except (ValueError, RecursionError):  # RecursionError: nested deeper than json can walk
            self.skipped += 1
            return None
        return doc

    def _event_of(self, doc: Mapping[str, Any]) -> Event | None:
        """The event ``doc`` holds, or None (counted) when it is none of ours."""
        try:
            event = Event.from_document(doc)
        except (ValueError, TypeError, OverflowError, RecursionError):
            self.skipped += 1
            return None
        return event

    # -- publishing --------------------------------------------------------

    def _unpublished(self, journal: "Journal") -> list[Event]:
        """Local events not known to be on the stream, oldest first; none
        for a follower, which publishes nothing. The stand-ins for
        unreadable entries are the reader's, not events."""
        if not self.publishes:
            return []
        return [event for event in journal.events()
                if event.id not in self._on_stream and event.kind != UNREADABLE_KIND]

    def _publish(self, client: "redis.Redis", events: list[Event]) -> None:
        for start in range(0, len(events), PUBLISH_BATCH):
            batch = events[start:start + PUBLISH_BATCH]
            # No MULTI: a partly sent batch is harmless (readers dedupe by
            # id), and the sharing user needs no MULTI/EXEC.
            pipe = client.pipeline(transaction=False)
            for event in batch:
                pipe.xadd(self._stream, {FIELD: _outgoing(event)})
            added = pipe.execute()
            # Marked only once Redis has answered; a lost reply means
            # publishing again, which is harmless. The last entry added must
            # be there at the next sync, or Redis came back older.
            self._on_stream.update(event.id for event in batch)
            self._last_known = max(self._last_known, *added, key=_id_order)

    # -- presence ----------------------------------------------------------

    def _be_present(self, client: "redis.Redis") -> tuple[str, ...]:
        now = self._clock().timestamp()
        pipe = client.pipeline(transaction=False)
        pipe.hset(self._responders, self.me, str(int(now)))
        pipe.expire(self._responders, PRESENCE_TTL)
        pipe.hgetall(self._responders)
        seen = pipe.execute()[2]
        return tuple(sorted(_present(seen, now) | {self.me}))

    # -- the connection ----------------------------------------------------

    def _connected(self) -> "redis.Redis":
        if self._client is None:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            try:
                self._client = redis.Redis.from_url(
                    self.target.url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout,
                    single_connection_client=True, health_check_interval=0,
                    # One immediate retry on a dropped connection (Redis
                    # restarted since the last sync), none on a timeout: a
                    # hung Redis costs one timeout per sync, not four.
                    retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)))
            except ValueError as exc:  # a URL redis-py reads otherwise than the config check did
                raise redis.ConnectionError(str(exc)) from None
        return self._client

    def _went_offline(self, exc: BaseException, journal: "Journal") -> None:
        self.close()  # a half-read reply must not be read as the next one's
        self._state = self._stated(journal, self._state.offline_since or self._clock().astimezone(timezone.utc),
                                   (), inert(f"{redact(self.target.url)}: {_reason(exc)}", 300))

    def _stated(self, journal: "Journal", offline_since: datetime | None, responders: tuple[str, ...],
                error: str | None) -> ShareState:
        """The state after a sync: online when ``offline_since`` is None."""
        return ShareState(self.target.incident, offline_since is None, offline_since,
                          len(self._unpublished(journal)), responders, error, len(self._held))


def _outgoing(event: Event) -> bytes:
    """The event's document as it leaves this process: what can carry a
    secret (its data and operator; text from anywhere may hold a configured
    one) redacted once more. Its id (random hex), time and kind (ours) are
    left as they are: changed, the copies would be two events, and a short
    secret such as "2026" or "note" matches them by chance."""
    doc = event.to_document()
    doc["operator"] = secret_values.redact_data(doc["operator"])
    doc["data"] = secret_values.redact_data(doc["data"])
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _id_order(stream_id: bytes | str) -> tuple[int, int]:
    """A stream id as (milliseconds, sequence), to compare two."""
    text = stream_id.decode("ascii") if isinstance(stream_id, bytes) else stream_id
    ms, seq = (int(part) for part in text.split("-"))
    return ms, seq


def _after(stream_id: bytes) -> str:
    """The smallest stream id after ``stream_id`` (``(id`` needs Redis 6.2)."""
    ms, seq = _id_order(stream_id)
    if seq < _LAST_SEQ:
        return f"{ms}-{seq + 1}"
    # Another writer may choose ids itself: the sequence can be full.
    return f"{ms + 1}-0" if ms < _LAST_SEQ else "+"


def _present(seen: Mapping[bytes, bytes], now: float) -> set[str]:
    """The responders seen within :data:`PRESENT_SECONDS`; what another
    program wrote into the hash is made harmless and bounded."""
    out: set[str] = set()
    for who, when in seen.items():
        try:
            last = float(when)
        except ValueError:
            continue
        if now - PRESENT_SECONDS <= last <= now + PRESENT_SECONDS and len(out) < MAX_RESPONDERS:
            out.add(inert(who.decode("utf-8", "replace"), 100))
    return out


def _reason(exc: BaseException) -> str:
    """The first line of what went wrong, without its full stop (a clause
    follows it in the messages)."""
    return first_line(exc).rstrip(".") or type(exc).__name__


def _redis_errors() -> type[Exception]:
    import redis

    return redis.RedisError
