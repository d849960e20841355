"""What the journal should hear from the live panes: changes, not polls.

A source lost or recovered, a metric crossing into warning or critical or back
to normal: each is one journal event when it happens, never one per poll.

A change counts once it has held for ``readings`` (N, the config's
``damping``): one 5xx in a quiet minute, gone at the next poll, is a flap and
not an event. Damping must never hide a problem that persists, only one that
comes and goes, so what has to hold is "not ok", not one exact state:

* A metric (or the source's own state) becomes not-ok after N not-ok readings
  in a row *of any severity*, and settles at the worst seen in that run;
  warning, critical, warning, ... is an outage, not a flap. It goes back to ok
  only after N ok readings in a row. Between warning and critical it moves
  after N readings in a row of the new severity, and never back to ok that way.
* A source is lost once at least N of its last 2N polls (since it last
  settled) failed, so one that fails every other poll is lost, while one
  failed poll among good ones is not. It recovers after N good polls in a row.

What has held is the *settled* reading (:meth:`Crossings.settled`);
suggestions, automatic ticks and the record go by it, the panes by the raw one. The first look at a source is taken as it is:
there is nothing earlier for it to hold against.

A metric a reading says nothing about (no value, or a ratio over too few
requests to be judged: ``details["unjudged"]``) keeps what had settled: no data
is neither a breach nor a recovery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from console.vocabulary import Breach, Snapshot, State

Event = tuple[str, dict[str, Any]]
Key = tuple[str, str]


@dataclass
class _Source:
    """What has settled for one source, and the changes waiting to."""

    reachable: bool | None = None  # None: never seen, nor remembered
    breached: dict[str, State] = field(default_factory=dict)  # metrics past a limit, settled
    judged: bool = False  # ``breached`` is a verdict (seen or remembered), not a blank
    own: State | None = None  # the state the source gave itself: no data, a wrong HTTP status
    # what -> (value, readings in a row, the reading behind value). For a run
    # across the ok line, value is the worst state seen in the run.
    proposed: dict[str, tuple[Any, int, Any]] = field(default_factory=dict)
    polls: list[bool] = field(default_factory=list)  # reachability since it last settled, at most 2N
    # Per metric, its value and breach in the last reading that agreed with
    # what had settled: the settled reading shows those, not a passing flap.
    agreed: dict[str, tuple[Any, Breach | None]] = field(default_factory=dict)
    snapshot: Snapshot | None = None

    def settle(self, what: str, settled: State | None, now: State, needed: int, may: bool = True,
               reading: Any = None) -> State:
        """``settled``, or what ``needed`` readings in a row said.
        ``may`` False counts the reading but holds the change back.

        Why "not ok" counts as one: counting only exact repeats let a ratio
        that swung between warning and critical every poll stay "ok" forever
        (a red-team finding). So a run across the ok line counts every not-ok
        reading, whatever its severity, and settles at the worst in the run
        (with ``reading``, the one that said it, kept as the proposal's third
        item); a move between two not-ok severities needs that severity
        itself, and cannot send the state back to ok."""
        if now == settled:
            self.proposed.pop(what, None)
            return settled
        crossing = settled is None or (settled is State.OK) != (now is State.OK)
        value, seen, behind = self.proposed.get(what, (None, 0, None))
        if crossing and value is not None and (value is State.OK) == (now is State.OK):
            seen += 1  # the run goes on, whatever its severity
            if now.rank >= value.rank:
                value, behind = now, reading  # the worst, and the latest reading that said it
        elif not crossing and value == now:
            seen += 1
            behind = reading
        else:
            value, seen, behind = now, 1, reading
        if seen >= needed and may:
            self.proposed.pop(what, None)
            return value
        self.proposed[what] = (value, seen, behind)
        return settled

    def reach(self, settled: bool | None, now: bool, needed: int) -> bool:
        """Whether the source is reachable, as it has settled.

        Why a window and not a run: a source that fails every other poll
        never fails twice in a row, yet is down half the time; counted as a
        run it was never lost. Lost: at least ``needed`` failed polls among
        the last 2 x ``needed`` since it last settled (one failure among good
        polls is still a flap). Recovered: ``needed`` good polls in a row, so
        a source that keeps failing one poll in two stays lost."""
        if settled is None:
            self.polls.clear()
            return now
        if settled:
            self.polls = [*self.polls, now][-2 * needed:]
            if self.polls.count(False) >= needed:
                self.polls.clear()
                return False
            return True
        self.polls = [*self.polls, now] if now else []
        if len(self.polls) >= needed:
            self.polls.clear()
            return True
        return False


@dataclass
class Crossings:
    readings: int = 2  # consecutive readings a change needs (1: none)
    _sources: dict[Key, _Source] = field(default_factory=dict)

    def remember(self, events) -> None:
        """Start from what the journal already says (a restarted console must
        not journal the same crossing again)."""
        for event in events:
            data = event.data
            key = (data.get("kind"), data.get("source"))
            if event.kind == "threshold.crossed":
                source = self._sources.setdefault(key, _Source())
                source.judged = True
                try:
                    state = State(data.get("state"))
                except ValueError:
                    continue  # another writer's entry: not a verdict this console can hold
                if state is State.OK:
                    source.breached.pop(data.get("metric"), None)
                else:
                    source.breached[data.get("metric")] = state
            elif event.kind in ("source.lost", "source.recovered"):
                self._sources.setdefault(key, _Source()).reachable = event.kind == "source.recovered"

    def settled(self, key: Key) -> Snapshot | None:
        """The source's last reading as it has settled: the state and the
        judged metrics that held, the rest of the reading as it came."""
        source = self._sources.get(key)
        return source.snapshot if source is not None else None

    def observe(self, snap: Snapshot) -> list[Event]:
        source = self._sources.setdefault(snap.key, _Source())
        events: list[Event] = []
        was = source.reachable
        needed = self.readings if was is not None else 1
        source.reachable = source.reach(was, snap.reachable, needed)
        if source.reachable != was:
            if not source.reachable:  # lost, or down from the first look
                events.append(("source.lost", {"source": snap.name, "kind": snap.kind,
                                               "error": snap.error or "unreachable"}))
            elif was is not None:
                events.append(("source.recovered", {"source": snap.name, "kind": snap.kind}))
        if snap.reachable:
            # Thresholds are unknown while it cannot be read. While it is not
            # settled as back, its readings count but change nothing yet.
            events += self._judge(source, snap, may=bool(source.reachable))
        source.snapshot = self._settled_reading(source, snap)
        return events

    def _judge(self, source: _Source, snap: Snapshot, may: bool) -> list[Event]:
        events: list[Event] = []
        needed = self.readings if source.judged else 1
        raw = {b.metric: b for b in snap.breaches}
        for metric in [*raw, *(m for m in _informative(snap) if m not in raw)]:
            breach = raw.get(metric)
            before = source.breached.get(metric, State.OK)
            now = breach.state if breach is not None else State.OK
            held = source.proposed.get("metric:" + metric)
            after = source.settle("metric:" + metric, before, now, needed, may,
                                  reading=(snap.metrics.get(metric), breach))
            if after == now:
                source.agreed[metric] = (snap.metrics.get(metric), breach)
            elif after != before and held is not None:
                # Settled at the worst of the run, said by an earlier reading.
                source.agreed[metric] = held[2] if held[0] == after else source.agreed.get(metric, (None, None))
            if after == before:
                continue
            value, said = source.agreed.get(metric, (snap.metrics.get(metric), breach))
            if after is State.OK:
                source.breached.pop(metric, None)
            else:
                source.breached[metric] = after
            events.append(("threshold.crossed", {
                "source": snap.name, "kind": snap.kind, "metric": metric, "value": value,
                "limit": said.limit if said is not None else None, "state": after.value,
                "previous": before.value}))
        if may:
            source.judged = True
        worst = max((b.state for b in snap.breaches), key=lambda s: s.rank, default=State.OK)
        own = snap.state if snap.state.rank > worst.rank else State.OK
        before = source.own
        source.own = source.settle("own", source.own, own, self.readings if source.own is not None else 1, may)
        # A state the source gave itself (a health check answering 503) is an
        # alarm like a crossing: the timeline and the post-mortem's "detected"
        # must hear it. Unknown (no data) is neither an alarm nor a recovery.
        if source.own != before and State.UNKNOWN not in (source.own, before) and \
                not (before is None and source.own is State.OK):
            events.append(("source.state", {"source": snap.name, "kind": snap.kind, "state": source.own.value,
                                            "previous": (before or State.OK).value,
                                            "reason": snap.error or ""}))
        return events

    def _settled_reading(self, source: _Source, snap: Snapshot) -> Snapshot:
        if not source.reachable and not snap.reachable:
            return snap  # lost, and this reading says why
        if not source.reachable or not snap.reachable:
            # A failed poll not yet settled as a loss, or a good one not yet
            # settled as a recovery: the last settled reading stands.
            return source.snapshot or snap
        metrics = dict(snap.metrics)
        breaches = []
        for metric in _judgeable(snap):
            settled = source.breached.get(metric, State.OK)
            value, breach = source.agreed.get(metric, (None, None))
            metrics[metric] = value
            if settled is not State.OK and breach is not None:
                breaches.append(replace(breach, state=settled))
        state = source.own or State.OK
        for metric_state in source.breached.values():
            state = state.worst(metric_state)
        return replace(snap, state=state, metrics=metrics, breaches=tuple(breaches))


def _judgeable(snap: Snapshot) -> list[str]:
    """The metrics a limit may judge: numbers, or no number at all."""
    return [str(m) for m, v in snap.metrics.items()
            if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))]


def _informative(snap: Snapshot) -> list[str]:
    """The metrics this reading says something about."""
    unjudged = set(snap.details.get("unjudged", ()))
    return [m for m in _judgeable(snap) if m not in unjudged and isinstance(snap.metrics[m], (int, float))
            and not math.isnan(snap.metrics[m])]
