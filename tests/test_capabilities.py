"""Declared capabilities: each source says what it can do beyond being polled,
and the runner asks before it dispatches, refusing by name what a source cannot do."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from scripted import ScriptedSource

from console import capabilities
from console.capabilities import (CAPABILITIES, BackendSignalling, CacheFlushing, ClientKilling, Drilling,
                                  PodDeleting, WorkloadUndoing, HttpProbing, KubectlTargeting,
                                  KubernetesReading, PromQuerying, RedisProbing, Source, SqlProbing,
                                  WorkloadRestarting, WorkloadScaling, capabilities_of)
from console.config import KubernetesTarget, PostgresTarget, PrometheusTarget, RedisTarget, ServiceTarget, parse
from console.playbooks.model import ACTIONS, PROBE_KINDS, Playbook, Step
from console.playbooks.runner import Refused, StepRunner
from console.sources import base
from console.sources.errors import PrometheusErrors, ScrapedErrors
from console.sources.http import HealthCheck
from console.sources.kubernetes import WorkloadWatch
from console.sources.postgres import PostgresSource
from console.sources.redis import RedisSource

BOOK = Playbook("cap", "Capabilities", "sev2", (), (), (), "playbooks/cap.yaml", 1)

# What the runner needs of a source for each kind of step it runs against one.
PROBES_NEED = {"sql": SqlProbing, "redis": RedisProbing, "http": HttpProbing, "promql": PromQuerying,
               "kubernetes": KubernetesReading}
ACTIONS_NEED = {"terminate_backend": BackendSignalling, "cancel_backend": BackendSignalling,
                "flush_db": CacheFlushing, "scale": WorkloadScaling, "rollout_restart": WorkloadRestarting,
                "rollout_undo": KubectlTargeting, "delete_pod": PodDeleting, "client_kill": ClientKilling}
# Not needed by any step, had by sources for the panes: opening rows, and rolling
# back through the API (a rollout_undo step runs kubectl without it).
PANE_CAPABILITIES = {Drilling, WorkloadUndoing}

SERVICE = ServiceTarget("api", "http://127.0.0.1:9/health", metrics="http://127.0.0.1:9/metrics")
# One of each real source, built without touching the network.
REAL = {
    "postgres": lambda: PostgresSource(PostgresTarget("primary", "postgresql://monitor@127.0.0.1:9/app")),
    "redis": lambda: RedisSource(RedisTarget("cache", "redis://127.0.0.1:9/0")),
    "http": lambda: HealthCheck(SERVICE),
    "prometheus": lambda: PrometheusErrors(SERVICE, PrometheusTarget("http://127.0.0.1:9")),
    "kubernetes": lambda: WorkloadWatch(KubernetesTarget(context="test", namespaces=("app",)), "app"),
}
ALL_REAL = [*REAL.values(), lambda: ScrapedErrors(SERVICE)]


def _members(protocol: type) -> set[str]:
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass is object or not getattr(klass, "_is_protocol", False) or klass.__module__ == "typing":
            continue
        names |= {n for n in (*vars(klass), *getattr(klass, "__annotations__", {}))
                  if not n.startswith("_")}
    return names


# ---- every step kind is covered, and its source declares what it needs ---------

def test_every_probe_kind_and_source_action_has_a_needed_capability():
    assert set(PROBES_NEED) == set(PROBE_KINDS)
    assert set(ACTIONS_NEED) == {name for name, spec in ACTIONS.items() if spec.target is not None}
    assert set(CAPABILITIES) == {*PROBES_NEED.values(), *ACTIONS_NEED.values(), *PANE_CAPABILITIES}


@pytest.mark.parametrize("step_kind,needs", [*(("probe " + k, c) for k, c in PROBES_NEED.items()),
                                              *(("action " + k, c) for k, c in ACTIONS_NEED.items())])
def test_the_source_a_step_runs_against_declares_what_the_step_needs(step_kind, needs):
    kind, name = step_kind.split(" ")
    target = PROBE_KINDS[name] if kind == "probe" else ACTIONS[name].target
    source = REAL[target]()
    assert needs in type(source).__mro__, f"{type(source).__name__} does not declare {needs.__name__}"
    assert isinstance(source, needs)


def test_the_postgres_source_probes_sql_and_signals_backends():
    source = REAL["postgres"]()
    assert capabilities_of(source) == [SqlProbing, BackendSignalling, Drilling]
    assert not isinstance(source, RedisProbing) and not isinstance(source, CacheFlushing)


@pytest.mark.parametrize("make", ALL_REAL)
def test_a_source_has_exactly_the_capabilities_it_declares(make):
    """No capability is had by accident: no two share a member name (a Redis source is no SQL prober)."""
    source = make()
    declared = [c for c in CAPABILITIES if c in type(source).__mro__]
    assert capabilities_of(source) == declared
    assert isinstance(source, Source)


@pytest.mark.parametrize("make", ALL_REAL)
def test_a_declared_capability_is_implemented_not_inherited_from_the_protocol(make):
    """Subclassing a protocol inherits its ``...`` stubs: a source that lost a method must not pass."""
    source = make()
    for capability in capabilities_of(source):
        for member in _members(capability):
            owner = next((k for k in type(source).__mro__ if member in vars(k)), None)
            assert member in vars(source) or (owner is not None and not getattr(owner, "_is_protocol", False)), \
                f"{type(source).__name__}.{member} ({capability.__name__}) comes from the protocol"


def test_no_two_capabilities_share_a_member_name():
    seen: dict[str, str] = {}
    for capability in CAPABILITIES:
        for member in _members(capability) - {"namespace"}:  # InNamespace: shared on purpose
            assert member not in seen, f"{capability.__name__} and {seen[member]} both need {member}"
            seen[member] = capability.__name__


def test_source_is_still_importable_from_base():
    assert base.Source is Source


def test_capabilities_is_a_ground_floor():
    tree = ast.parse(Path(inspect.getfile(capabilities)).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    type_only = {"datetime", "console.drill"}  # under TYPE_CHECKING
    assert imported - type_only <= {"__future__", "typing", "console.vocabulary"}


# ---- the runner refuses, naming what the source cannot do ------------------------

def runner_for(*sources, journal=None) -> StepRunner:
    return StepRunner(parse("refresh: 2\n"), {s.name: s for s in sources}, journal)


class Journal(list):
    def __call__(self, kind: str, **data) -> None:
        self.append((kind, data))


@pytest.mark.parametrize("kind,source_kind,query,missing,says", [
    ("sql", "postgres", "SELECT 1", "SqlProbing", "cannot run a read-only SQL probe"),
    ("redis", "redis", "GET greeting", "RedisProbing", "cannot run a Redis read command"),
    ("kubernetes", "kubernetes", "pods", "KubernetesReading", "cannot read Kubernetes objects"),
    ("http", "http", "GET /status", "HttpProbing", "cannot resolve an HTTP probe's path"),
])
async def test_a_probe_on_a_source_without_the_capability_is_refused_by_name(kind, source_kind, query, missing,
                                                                             says):
    fake = ScriptedSource(source_kind, "fake")
    journal = Journal()
    result = await runner_for(fake, journal=journal).probe(
        BOOK, Step("look", "look", "probe", source="fake", probe=kind, query=query))
    assert not result.ok
    assert result.error.startswith("refused: ") and missing in result.error and says in result.error
    assert f"{source_kind} source 'fake'" in result.error
    assert [k for k, _ in journal] == ["probe"] and journal[0][1]["error"] == result.error


@pytest.mark.parametrize("action,source_kind,params,missing", [
    ("terminate_backend", "postgres", {"pid": 4242}, "BackendSignalling"),
    ("cancel_backend", "postgres", {"state": "idle in transaction"}, "BackendSignalling"),
    ("flush_db", "redis", {}, "CacheFlushing"),
    ("scale", "kubernetes", {"deployment": "api", "replicas": 2}, "WorkloadScaling"),
    ("rollout_restart", "kubernetes", {"deployment": "api"}, "WorkloadRestarting"),
    ("rollout_undo", "kubernetes", {"deployment": "api"}, "KubectlTargeting"),
])
async def test_an_action_on_a_source_without_the_capability_is_refused_and_recorded(action, source_kind, params,
                                                                                    missing):
    fake = ScriptedSource(source_kind, "fake")
    journal = Journal()
    runner = runner_for(fake, journal=journal)
    step = Step("act", action, "action", source="fake", action=action, params=params)
    with pytest.raises(Refused, match=f"{source_kind} source 'fake' cannot .*{missing}.*was not run"):
        await runner.run(BOOK, step, {}, "fake")
    kind, data = journal[-1]
    assert kind == "action" and data["ok"] is False and missing in data["refused"]
    with pytest.raises(Refused, match=missing):
        runner.expected_confirmation(step, {})


async def test_a_promql_probe_without_a_prometheus_source_falls_back_to_the_config():
    # The scripted "errors" source has no Prometheus: the config's is asked (and here, none is configured).
    result = await runner_for(ScriptedSource("errors", "api")).probe(
        BOOK, Step("look", "look", "probe", probe="promql", query="up"))
    assert not result.ok and result.error == "no prometheus configured"
