"""Playbooks as values: a playbook, its steps, and conditions on live metrics.

Everything here is frozen: the journal, not the playbook, records what was
ticked and run. A condition reads the same snapshots the panes show, so "the
console suggests the pool-exhausted playbook" and "the pane says 96 %" can
never disagree.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

from console.sources.base import Snapshot

STEP_KINDS = ("check", "probe", "command", "action")
# The source kind each probe runs against.
PROBE_KINDS = {"sql": "postgres", "redis": "redis", "http": "http", "promql": "prometheus",
               "kubernetes": "kubernetes"}
# What a step's ``source`` may name besides a configured source: the first
# configured source of that kind.
SOURCE_KINDS = ("postgres", "redis", "http", "prometheus", "kubernetes")


@dataclass(frozen=True)
class ActionSpec:
    """What an action acts on and which ``params`` it takes.

    ``one_of`` lists groups of parameters of which at least one per group is
    required (``pid`` or ``state`` for terminate_backend). Values may be
    templates like ``"{pid}"`` that the operator fills in before confirming.
    """

    target: str | None  # the source kind acted on; None for a shell action
    one_of: tuple[tuple[str, ...], ...] = ()
    optional: frozenset[str] = frozenset()
    any_params: bool = False  # shell: params are template defaults for the command
    integers: frozenset[str] = frozenset()  # params that must be whole numbers (or templates)
    numbers: frozenset[str] = frozenset()

    @property
    def params(self) -> frozenset[str]:
        return frozenset(p for group in self.one_of for p in group) | self.optional


# From a pane: ``backend_start`` pins a pid to the session that was shown (a pid
# is reused once its backend ends); ``pids`` keeps a state filter to the
# sessions the confirmation listed.
_SESSION_FILTER = frozenset({"older_than_s", "database", "user", "application_name", "backend_start", "pids"})
ACTIONS: Mapping[str, ActionSpec] = MappingProxyType({
    # pid: one backend; state (+ older_than_s, database, user, application_name):
    # every matching backend except the console's own.
    "terminate_backend": ActionSpec("postgres", (("pid", "state"),), _SESSION_FILTER,
                                    integers=frozenset({"pid"}), numbers=frozenset({"older_than_s"})),
    "cancel_backend": ActionSpec("postgres", (("pid", "state"),), _SESSION_FILTER,
                                 integers=frozenset({"pid"}), numbers=frozenset({"older_than_s"})),
    "flush_db": ActionSpec("redis", (), frozenset({"db"}), integers=frozenset({"db"})),
    "rollout_undo": ActionSpec("kubernetes", (("deployment",),),
                               frozenset({"namespace", "to_revision", "replicaset", "template_digest"}),
                               integers=frozenset({"to_revision"})),
    "rollout_restart": ActionSpec("kubernetes", (("deployment", "statefulset"),), frozenset({"namespace"})),
    "scale": ActionSpec("kubernetes", (("deployment", "statefulset"), ("replicas",)), frozenset({"namespace"}),
                        integers=frozenset({"replicas"})),
    "delete_pod": ActionSpec("kubernetes", (("pod",),), frozenset({"namespace"})),
    # One client, by the id CLIENT LIST shows (unique; an addr is not); its addr is only shown.
    "client_kill": ActionSpec("redis", (("id",),), frozenset({"address"}), integers=frozenset({"id"})),
    "shell": ActionSpec(None, any_params=True),
})

TEMPLATE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders(text: str) -> tuple[str, ...]:
    """The ``{name}`` placeholders in a template, in order, each once."""
    return tuple(dict.fromkeys(TEMPLATE.findall(text)))


def is_template(value: Any) -> bool:
    return isinstance(value, str) and bool(TEMPLATE.fullmatch(value.strip()))


OPS: Mapping[str, Callable[[float, float], bool]] = MappingProxyType({
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
})
_CONDITION = re.compile(
    r"^\s*(?P<kind>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<source>[^\]\s]+)\])?"
    r"\.(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op><=|>=|==|!=|<|>)\s*"
    r"(?P<value>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    """``metric op value`` on live readings, e.g. ``postgres.connections_ratio >= 0.95``."""

    metric: str  # kind.metric, as in console.thresholds
    op: str
    value: float
    source: str | None = None  # a configured source name; None: any source of that kind

    @classmethod
    def parse(cls, text: str) -> "Condition":
        """``"postgres.connections_ratio >= 0.95"`` or ``"postgres[primary].connections_ratio < 0.7"``."""
        m = _CONDITION.match(text) if isinstance(text, str) else None
        if m is None:
            raise ValueError(f"not a condition: {str(text)[:80]!r} "
                             "(write it as kind.metric OP number, e.g. postgres.connections_ratio >= 0.95)")
        value = float(m.group("value"))
        if not math.isfinite(value):
            raise ValueError(f"condition value must be a finite number: {m.group('value')}")
        return cls(f"{m.group('kind')}.{m.group('metric')}", m.group("op"), value, m.group("source"))

    @property
    def kind(self) -> str:
        return self.metric.partition(".")[0]

    @property
    def name(self) -> str:
        """The metric's name inside a snapshot of its kind."""
        return self.metric.partition(".")[2]

    def __str__(self) -> str:
        where = f"{self.kind}[{self.source}]" if self.source else self.kind
        value = int(self.value) if self.value.is_integer() else self.value
        return f"{where}.{self.name} {self.op} {value}"

    def holds(self, snapshots: Iterable[Snapshot], *, any_source: bool = False) -> bool | None:
        """Whether the latest readings satisfy the condition.

        ``None`` when no snapshot carries the metric. An unreachable source
        never satisfies. Without a named source, every source of the kind must
        satisfy (a step "connections back below 70 %" is not done while one
        database is still full) unless ``any_source`` asks for any one of them
        (a suggestion: one full database is enough).
        """
        compare = OPS[self.op]
        verdicts = []
        for snap in snapshots:
            if snap.kind != self.kind or (self.source is not None and snap.name != self.source):
                continue
            if not snap.reachable:
                verdicts.append(False)
                continue
            value = snap.metrics.get(self.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                continue
            verdicts.append(compare(float(value), self.value))
        if not verdicts:
            return None
        return any(verdicts) if any_source else all(verdicts)


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    kind: str  # "check" | "probe" | "command" | "action"
    detail: str = ""
    source: str | None = None  # a configured source name, or a kind: the first configured of it
    probe: str | None = None  # "sql" | "redis" | "http" | "promql" | "kubernetes"
    query: str | None = None
    command: str | None = None  # shell text, byte for byte as written
    runnable: bool = False  # may be run after confirmation, not only copied
    # The command is SQL for a database client (a mutating statement): copied,
    # never run, and never as shell. The loader refuses it ``runnable``.
    sql: bool = False
    # Imported placeholders: each ``{name}`` of the command and how the runbook wrote it
    # (``$NAMESPACE``, ``<pod-name>``); one spelling, or several.
    placeholders: Mapping[str, Any] = field(default_factory=dict)
    action: str | None = None  # a key of ACTIONS
    params: Mapping[str, Any] = field(default_factory=dict)
    confirm: str | None = None  # what the operator types to confirm; a template
    condition: Condition | None = None  # ticks the step when it holds
    line: int = 0
    # A change made from a pane: its params and confirm are values read from a
    # live system (an application named "batch-{pid}"), never templates.
    literal: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "placeholders", MappingProxyType(dict(self.placeholders)))

    @property
    def target_kind(self) -> str | None:
        """The source kind a probe or action runs against."""
        if self.kind == "probe" and self.probe:
            return PROBE_KINDS.get(self.probe)
        if self.kind == "action" and self.action in ACTIONS:
            return ACTIONS[self.action].target
        return None


@dataclass(frozen=True)
class Playbook:
    id: str
    title: str
    severity: str | None
    symptoms: tuple[str, ...]
    suggest_when: tuple[Condition, ...]
    steps: tuple[Step, ...]
    path: str
    line: int
    source_runbooks: tuple[str, ...] = ()
    # What the runbook says besides its steps (meaning, impact, background), and
    # what an operator looks up rather than does (escalation, contacts, templates).
    description: str = ""
    reference: str = ""

    def suggested_by(self, snapshots: Iterable[Snapshot]) -> bool:
        """True when any of ``suggest_when`` holds for any source it names."""
        readings = tuple(snapshots)
        return any(c.holds(readings, any_source=True) is True for c in self.suggest_when)

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)
