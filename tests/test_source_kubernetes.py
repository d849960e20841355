"""The Kubernetes source: the real client against recorded API responses.

There is no API server here, so the real ``kubernetes`` client talks HTTP to
:class:`console.demo.kubefake.KubeFake` through a kubeconfig written per test. The
recorded namespace ``app`` (console/demo/k8s/) holds: Deployment ``api`` 3/3 (one
restart), Deployment ``worker`` 1/3 (a pod in CrashLoopBackOff after
OOMKilled, restartCount 7, and a pod Pending as Unschedulable), StatefulSet
``redis`` 2/2 (two restarts), a completed Job pod, and events: four Warnings
of the last 15 minutes, two older ones and a Normal one.
"""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType

import pytest

from console.config import KubernetesTarget
from console.demo.kubefake import RECORDED_AT, TOKEN, KubeFake, load_responses
from console.demo.servers import free_port
from console.sources.base import Backoff, State, bounded_poll, utcnow
from console.sources.kubernetes import MAX_MESSAGE, WorkloadWatch, summarize

from conftest import RECORDED
TIMEOUT = 1.0
WORKER_POD = "worker-5c8d7f9b4-kd8vx"


def plain(value):
    """A frozen snapshot value as plain dicts and lists, to compare with literals."""
    if isinstance(value, (dict, MappingProxyType)):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


@pytest.fixture
def kubeconfig(tmp_path, fake) -> Path:
    """Context "test" is the fake; the current context "prod" is a closed port."""
    path = fake.write_kubeconfig(tmp_path / "kubeconfig", context="test", namespace="app")
    config = json.loads(path.read_text())
    config["clusters"].append({"name": "prod", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}})
    config["contexts"].append({"name": "prod", "context": {"cluster": "prod", "user": "kubefake-user"}})
    config["current-context"] = "prod"
    path.write_text(json.dumps(config))
    return path


def watch(kubeconfig, namespace="app", context="test", backoff=None, clock=lambda: RECORDED_AT, **target):
    target = KubernetesTarget(context=context, namespaces=(namespace,), kubeconfig=str(kubeconfig),
                              timeout=target.pop("timeout", TIMEOUT), **target)
    return WorkloadWatch(target, namespace, clock=clock, backoff=backoff or Backoff(first=0))


# ---- the recorded namespace ---------------------------------------------------

async def test_recorded_namespace_gives_the_designed_numbers(kubeconfig):
    snap = await watch(kubeconfig).poll()
    assert (snap.kind, snap.name, snap.state, snap.error) == ("kubernetes", "app", State.OK, None)
    assert dict(snap.metrics) == {
        "workloads": 3,
        "unavailable_replicas": 2,   # worker 1/3
        "pods_not_ready": 2,         # the crash-looping and the unschedulable worker pods; not the Job pod
        "restarts": 10,              # api 1 + worker 7 + redis 2
        "crashlooping_pods": 1,
        "oom_killed_pods": 1,
        "warning_events": 4,
    }
    assert snap.latency_ms is not None and 0 < snap.latency_ms < TIMEOUT * 1000


async def test_workloads_carry_their_pods_restarts_and_problems(kubeconfig):
    snap = await watch(kubeconfig).poll()
    assert plain(snap.details["workloads"]) == [
        {"kind": "Deployment", "name": "api", "ready": 3, "desired": 3, "restarts": 1, "problems": []},
        {"kind": "Deployment", "name": "worker", "ready": 1, "desired": 3, "restarts": 7,
         "problems": ["CrashLoopBackOff", "OOMKilled"]},
        {"kind": "StatefulSet", "name": "redis", "ready": 2, "desired": 2, "restarts": 2, "problems": []},
    ]


async def test_problem_pods_only(kubeconfig):
    snap = await watch(kubeconfig).poll()
    assert plain(snap.details["pods"]) == [
        {"name": WORKER_POD, "phase": "Running", "ready": "1/2", "restarts": 7,
         "reason": "CrashLoopBackOff, OOMKilled"},
        {"name": "worker-5c8d7f9b4-r2jtn", "phase": "Pending", "ready": "0/2", "restarts": 0,
         "reason": "Unschedulable"},
    ]


async def test_warning_events_of_the_last_15_minutes_newest_first(kubeconfig):
    events = plain((await watch(kubeconfig).poll()).details["events"])
    assert [(e["age_s"], e["object"], e["reason"], e["count"]) for e in events] == [
        (30, f"Pod/{WORKER_POD}", "BackOff", 31),
        (79, "Pod/worker-5c8d7f9b4-r2jtn", "FailedScheduling", 4),  # events.k8s.io: series, no lastTimestamp
        (475, "Pod/api-7d9f8b6c5d-tw7lf", "Unhealthy", 3),
        (830, "HorizontalPodAutoscaler/worker", "FailedGetResourceMetric", 12),
    ]
    assert events[0]["message"].startswith("Back-off restarting failed container worker")


async def test_the_clock_decides_the_window(kubeconfig):
    later = watch(kubeconfig, clock=lambda: RECORDED_AT + timedelta(minutes=10))
    snap = await later.poll()
    assert snap.metrics["warning_events"] == 2
    assert [e["age_s"] for e in snap.details["events"]] == [630, 679]


async def test_lists_are_paged_and_events_filtered_by_the_server(kubeconfig, fake):
    await watch(kubeconfig).poll()
    assert [r.path for r in fake.requests] == [
        "/apis/apps/v1/namespaces/app/deployments", "/apis/apps/v1/namespaces/app/statefulsets",
        "/api/v1/namespaces/app/pods", "/api/v1/namespaces/app/events"]
    assert all(r.query.get("limit") for r in fake.requests)
    assert fake.requests[-1].query["fieldSelector"] == "type=Warning"
    assert {r.authorization for r in fake.requests} == {f"Bearer {TOKEN}"}


async def test_the_configured_context_not_the_current_one_is_used(kubeconfig):
    assert (await watch(kubeconfig, context="test").poll()).state is State.OK
    snap = await watch(kubeconfig, context=None).poll()  # falls back to current-context "prod"
    assert snap.state is State.UNREACHABLE and "Connection refused" in snap.error


async def test_a_namespace_with_nothing_in_it_is_ok_and_empty(kubeconfig):
    snap = await watch(kubeconfig, namespace="payments").poll()
    assert snap.state is State.OK
    assert set(snap.metrics.values()) == {0}
    assert plain(snap.details) == {"workloads": [], "pods": [], "events": []}


async def test_at_most_20_events_are_kept_but_all_are_counted(tmp_path):
    responses = load_responses(RECORDED)
    template = responses["events"]["items"][0]
    responses["events"]["items"] = [
        _event_at(template, f"e{i}", RECORDED_AT - timedelta(seconds=20 * i)) for i in range(30)]
    with KubeFake(responses) as fake:
        snap = await watch(fake.write_kubeconfig(tmp_path / "kc")).poll()
    assert snap.metrics["warning_events"] == 30
    assert [e["age_s"] for e in snap.details["events"]] == [20 * i for i in range(20)]


def _event_at(template, name, when):
    event = copy.deepcopy(template)
    event["metadata"]["name"] = name
    event["lastTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


# ---- faults, and recovery when they clear ---------------------------------------

FAULTS = [
    ("401", "HTTP 401 Unauthorized"),
    ("403", 'HTTP 403 Forbidden: deployments.apps is forbidden: User "system:serviceaccount:monitoring:'
            'incident-console" cannot list resource "deployments" in API group "apps" in the namespace "app"'),
    ("500", "HTTP 500 Internal Server Error: Internal error occurred: etcdserver: request timed out"),
    ("truncated", "invalid JSON from API server"),
    ("slow", "timed out after 1s"),
]


@pytest.mark.parametrize("fault, error", FAULTS, ids=[f for f, _ in FAULTS])
async def test_fault_is_unreachable_with_one_clear_line_then_recovers(kubeconfig, fake, fault, error):
    source = watch(kubeconfig)
    assert (await source.poll()).state is State.OK
    fake.set_fault(fault, delay=5)
    started = time.monotonic()
    snap = await source.poll()
    assert time.monotonic() - started < TIMEOUT + 0.5  # a slow server costs at most the timeout
    assert snap.state is State.UNREACHABLE
    assert snap.error == error
    assert set(snap.metrics.values()) == {None}
    fake.set_fault(None)
    healed = await source.poll()
    assert healed.state is State.OK and healed.metrics["workloads"] == 3


async def test_server_down_then_back(kubeconfig, fake):
    source = watch(kubeconfig)
    assert (await source.poll()).state is State.OK
    fake.stop()
    snap = await source.poll()
    assert snap.state is State.UNREACHABLE
    assert snap.error == f"cannot connect to http://127.0.0.1:{fake.port}: Connection refused"
    with KubeFake(RECORDED, port=fake.port):
        assert (await source.poll()).state is State.OK


async def test_after_a_failure_polls_back_off_without_touching_the_server(kubeconfig, fake):
    source = watch(kubeconfig, backoff=Backoff())
    fake.set_fault("500")
    first = await source.poll()
    asked = len(fake.requests)
    again = await source.poll()
    assert again.state is State.UNREACHABLE
    assert again.error == f"{first.error} (retrying in 1s)"
    assert len(fake.requests) == asked


async def test_an_abandoned_slow_read_is_not_piled_upon(kubeconfig, fake):
    source = watch(kubeconfig)
    await source.poll()  # the client is built, so the outer deadline hits the request
    fake.set_fault("slow", delay=0.8)
    cut = await bounded_poll(source, timeout=0.2)
    assert cut.error == "timed out after 0.2s"
    fake.set_fault(None)
    busy = await source.poll()
    assert busy.state is State.UNREACHABLE and "still running" in busy.error
    deadline = time.monotonic() + 3
    while (snap := await source.poll()).state is not State.OK and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert snap.state is State.OK


# ---- what the monitored system says goes through untouched --------------------

async def test_markup_and_escapes_come_through_as_plain_str(tmp_path):
    evil_pod = "[bold red]boom[/]\x1b[31m-worker"
    evil_message = "[link=http://evil.example]click[/link] \x1b]0;pwned\x07\x1b[2J done"
    responses = load_responses(RECORDED)
    for pod in responses["pods"]["items"]:
        if pod["metadata"]["name"] == WORKER_POD:
            pod["metadata"]["name"] = evil_pod
    responses["events"]["items"][0]["involvedObject"]["name"] = evil_pod
    responses["events"]["items"][0]["message"] = evil_message
    with KubeFake(responses) as fake:
        snap = await watch(fake.write_kubeconfig(tmp_path / "kc")).poll()
    pod, event = snap.details["pods"][0], snap.details["events"][0]
    assert type(pod["name"]) is str and pod["name"] == evil_pod
    assert type(event["object"]) is str and event["object"] == f"Pod/{evil_pod}"
    assert type(event["message"]) is str and event["message"] == evil_message


def test_long_event_messages_are_truncated_not_rewritten():
    events = load_responses(RECORDED)["events"]["items"][:1]
    events[0]["message"] = "x" * 2000
    _, details = summarize({"deployments": [], "statefulsets": [], "pods": [], "events": events}, RECORDED_AT)
    assert details["events"][0]["message"] == "x" * (MAX_MESSAGE - 1) + "…"


# ---- configuration problems and the demo's live timestamps --------------------

async def test_unknown_context_is_one_line_about_the_kubeconfig(kubeconfig):
    snap = await watch(kubeconfig, context="staging").poll()
    assert snap.state is State.UNREACHABLE
    assert snap.error.startswith(f"kubeconfig {kubeconfig}: ") and "staging" in snap.error
    assert "\n" not in snap.error


async def test_missing_kubeconfig_file_says_so(tmp_path):
    snap = await watch(tmp_path / "nowhere").poll()
    assert snap.error == f"kubeconfig {tmp_path / 'nowhere'}: no such file"


async def test_in_cluster_outside_a_cluster_is_unreachable_not_a_traceback(tmp_path):
    snap = await watch(tmp_path / "unused", in_cluster=True).poll()
    assert snap.state is State.UNREACHABLE
    assert snap.error == "in-cluster config: Service host/port is not set."


async def test_live_fake_moves_recorded_times_to_now(tmp_path):
    with KubeFake(RECORDED, live=True) as fake:
        snap = await watch(fake.write_kubeconfig(tmp_path / "kc"), clock=utcnow).poll()
    assert snap.metrics["warning_events"] == 4
    ages = [e["age_s"] for e in snap.details["events"]]
    assert all(abs(a - b) <= 2 for a, b in zip(ages, [30, 79, 475, 830]))


def test_importing_the_source_imports_neither_kubernetes_nor_textual():
    code = ("import sys, console.sources.kubernetes, console.demo.kubefake; "
            "print(sorted(m for m in ('kubernetes', 'textual') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
