"""Kubernetes workloads of one namespace: ready vs desired, restarts, crash loops, warnings.

The official ``kubernetes`` client blocks, so every read runs in a thread
(``asyncio.to_thread``) with ``_request_timeout`` on each call, all calls of
one poll sharing a single deadline: a slow API server costs at most
``target.timeout``. urllib3 retries are switched off for the same reason
(its default retries a read timeout three times). Lists are read as raw JSON
(``_preload_content=False``): the model classes add nothing we need, are slow
to build, and would turn a truncated body into an obscure error.

The client is imported where it is used: importing it takes a noticeable
part of a second, which the console's startup should not pay. What a row's
detail reads and shows (opened on demand, never polled) is in
:mod:`console.sources.kubernetes_detail`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

from console.capabilities import (Drilling, KubectlTargeting, KubernetesReading, PodDeleting, Source,
                                  WorkloadRestarting, WorkloadScaling, WorkloadUndoing)
from console.config import KubernetesTarget, redact
from console.drill import Detail, NoSuchRow
from console.sources.base import Backoff, ProbeError, Snapshot, State, describe_error, one_line, unreachable, utcnow

KIND = "kubernetes"
EVENT_WINDOW_S = 15 * 60
MAX_EVENTS = 20
MAX_MESSAGE = 500
# One page per list: enough for any namespace one person can watch, and a
# bound on what a huge namespace costs the API server and us.
LIST_LIMIT = 500
# bounded_poll's deadline sits a little past ours so that our own, clearer
# "timed out" is what the operator reads, and the thread has ended by then.
GRACE_S = 1.0

METRIC_KEYS = ("workloads", "unavailable_replicas", "pods_not_ready", "restarts",
               "crashlooping_pods", "oom_killed_pods", "warning_events")
# Waiting reasons that mean a container will not come up without help;
# ContainerCreating and PodInitializing are only slow.
# What a probe may read: the client's API class, its list call, and whether
# it is namespaced (the names match console.readonly.KUBERNETES_READS).
READABLE = {
    "pods": ("CoreV1Api", "list_namespaced_pod", True),
    "events": ("CoreV1Api", "list_namespaced_event", True),
    "services": ("CoreV1Api", "list_namespaced_service", True),
    "endpoints": ("CoreV1Api", "list_namespaced_endpoints", True),
    "nodes": ("CoreV1Api", "list_node", False),
    "deployments": ("AppsV1Api", "list_namespaced_deployment", True),
    "statefulsets": ("AppsV1Api", "list_namespaced_stateful_set", True),
    "replicasets": ("AppsV1Api", "list_namespaced_replica_set", True),
    "daemonsets": ("AppsV1Api", "list_namespaced_daemon_set", True),
    "jobs": ("BatchV1Api", "list_namespaced_job", True),
    "ingresses": ("NetworkingV1Api", "list_namespaced_ingress", True),
}
_WORKLOADS = {"deployment": "deployment", "statefulset": "stateful_set"}
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
BAD_WAITING = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
               "CreateContainerError", "RunContainerError", "InvalidImageName"}


class InvalidResponse(Exception):
    """The API server answered, but not with a Kubernetes List."""


class ConfigProblem(Exception):
    """No client could be built: the kubeconfig or in-cluster setup is wrong."""


class WorkloadWatch(Source, KubernetesReading, WorkloadScaling, WorkloadRestarting, WorkloadUndoing, PodDeleting,
                    KubectlTargeting, Drilling):
    """One configured namespace, read through the target's kubeconfig context."""

    kind = KIND

    def __init__(self, target: KubernetesTarget, namespace: str,
                 clock: Callable[[], datetime] = utcnow, backoff: Backoff | None = None) -> None:
        self.target = target
        self.namespace = namespace
        self.name = namespace
        self.timeout = target.timeout + GRACE_S
        self._clock = clock
        self._backoff = backoff or Backoff()
        # (ApiClient, AppsV1Api, CoreV1Api), built once in the worker thread
        self._api: tuple[Any, Any, Any] | None = None
        self._host = "API server"
        self._last_error = ""
        self._in_flight = False

    async def poll(self) -> Snapshot:
        if not self._backoff.ready():
            wait = math.ceil(self._backoff.wait_left())
            return self._unreachable(f"{self._last_error} (retrying in {wait}s)")
        if self._in_flight:
            # A thread cannot be cancelled: while an abandoned read still runs,
            # starting another would only pile threads onto a sick server.
            return self._unreachable(f"previous request to {self._host} still running")
        try:
            lists, latency_s = await asyncio.to_thread(self._read_guarded)
            now = self._clock()
            metrics, details = summarize(lists, now)
        except Exception as exc:  # whatever the server or the network did, as one line
            return self._lost(self._describe(exc))
        self._backoff.succeeded()
        return Snapshot(kind=KIND, name=self.name, state=State.OK, taken_at=now,
                        latency_ms=latency_s * 1000, metrics=metrics, details=details)

    async def close(self) -> None:
        apis, self._api = self._api, None
        if apis is not None:
            apis[0].close()  # closes idle pooled sockets; no network round trip

    def forget(self) -> None:
        # A client whose request timed out may hold a half-read socket; the
        # next poll builds a fresh one (re-reading the kubeconfig, which also
        # picks up refreshed credentials).
        self._api = None

    # ---- probes and actions: one call each, asked for by the operator ----
    async def read(self, resource: str, name: str | None = None, namespace: str | None = None) -> list[dict]:
        """One page of a List (``pods``, ``deployments``, ``events`` …), as JSON items.

        ``name`` narrows it to one object by a field selector, which every
        resource supports, so a missing object is an empty list, not a 404.
        """
        if resource not in READABLE:
            raise ProbeError(f"cannot read {resource!r}; one of {', '.join(READABLE)}")
        api_class, method, namespaced = READABLE[resource]
        params = {"field_selector": f"metadata.name={name}"} if name else {}
        where = (namespace or self.namespace) if namespaced else None

        def call(api: Any, left: float) -> list[dict]:
            from kubernetes import client

            lister = getattr(getattr(client, api_class)(api), method)
            return _list(lister, where, time.monotonic() + left, **params)
        return await self._call(call)

    async def scale(self, kind: str, name: str, replicas: int, namespace: str | None = None) -> dict:
        """PATCH the scale subresource of a Deployment or StatefulSet, as ``kubectl scale`` does."""
        body = {"spec": {"replicas": replicas}}
        method = f"patch_namespaced_{_WORKLOADS[kind]}_scale"
        return await self._patch(method, name, namespace, body, "application/merge-patch+json")

    async def restart(self, kind: str, name: str, at: datetime, namespace: str | None = None) -> dict:
        """Stamp the pod template, as ``kubectl rollout restart`` does: new pods roll out."""
        stamp = at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        method = f"patch_namespaced_{_WORKLOADS[kind]}"
        return await self._patch(method, name, namespace, body, "application/strategic-merge-patch+json")

    async def undo(self, kind: str, name: str, revision: int | None, namespace: str | None = None,
                   replicaset: str | None = None, template_digest: str | None = None) -> dict:
        """Put a revision's pod template back (the previous one when None), as ``kubectl rollout undo`` does.

        With ``replicaset`` and ``template_digest`` (what the confirmation
        showed), only that ReplicaSet with that template: edited or replaced
        since, nothing is patched (ProbeError)."""
        if kind != "deployment":
            raise ProbeError(f"rollout undo rolls back Deployments, not a {kind}")
        from console.sources import kubernetes_detail  # built on this module: imported when used

        where = namespace or self.namespace
        return await self._call(lambda api, left: kubernetes_detail.roll_back(
            api, where, name, revision, time.monotonic() + left, replicaset, template_digest))

    async def delete_pod(self, name: str, namespace: str | None = None) -> dict:
        """DELETE one pod; its controller, if it has one, makes a new one."""
        def call(api: Any, left: float) -> dict:
            from kubernetes import client

            return _json(client.CoreV1Api(api).delete_namespaced_pod(
                name, namespace or self.namespace, _preload_content=False, _request_timeout=left))
        return await self._call(call)

    async def drill(self, row: str) -> Detail:
        """A row's detail (``deployment/api``, ``pod/x/logs/previous`` …), read now: all its calls share
        one deadline. NoSuchRow when the object is gone."""
        from console.sources import kubernetes_detail  # built on this module: imported when used

        now = self._clock()
        return await self._call(lambda api, left: kubernetes_detail.open_row(
            api, self.namespace, row, time.monotonic() + left, now))

    def kubectl_args(self, namespace: str | None = None) -> list[str]:
        """The flags that point ``kubectl`` where this source looks."""
        args = []
        if self.target.kubeconfig and not self.target.in_cluster:
            args += ["--kubeconfig", os.path.expanduser(self.target.kubeconfig)]
        if self.target.context and not self.target.in_cluster:
            args += ["--context", self.target.context]
        return args + ["--namespace", namespace or self.namespace, f"--request-timeout={self.target.timeout:g}s"]

    async def _patch(self, method: str, name: str, namespace: str | None, body: dict, content_type: str) -> dict:
        def call(api: Any, left: float) -> dict:
            from kubernetes import client

            patch = getattr(client.AppsV1Api(api), method)
            return _json(patch(name, namespace or self.namespace, body, _content_type=content_type,
                               _preload_content=False, _request_timeout=left))
        return await self._call(call)

    async def _call(self, call: Callable[[Any, float], Any]) -> Any:
        """``call(api_client, seconds_left)`` in a thread, failures as one ProbeError line."""
        def in_thread() -> Any:
            apis = self._api or self._connect()
            self._api = apis
            return call(apis[0], self.target.timeout)
        try:
            return await asyncio.to_thread(in_thread)
        except (ProbeError, NoSuchRow):
            raise
        except Exception as exc:
            raise ProbeError(self._describe(exc)) from None

    # ---- in the worker thread ------------------------------------------
    def _read_guarded(self) -> tuple[dict[str, list], float]:
        # Set here, not in poll: a job cancelled before its thread started
        # never runs, and must not leave the flag up.
        self._in_flight = True
        try:
            return self._read()
        finally:
            self._in_flight = False

    def _read(self) -> tuple[dict[str, list], float]:
        """The four Lists, and how long the API server took to give them."""
        api, apps, core = self._api or self._connect()
        self._api = (api, apps, core)
        # The clock starts after the client is built: the first poll also
        # imports the client's API modules, which is not the server's delay.
        started, ns = time.monotonic(), self.namespace
        deadline = started + self.target.timeout
        lists = {
            "deployments": _list(apps.list_namespaced_deployment, ns, deadline),
            "statefulsets": _list(apps.list_namespaced_stateful_set, ns, deadline),
            "pods": _list(core.list_namespaced_pod, ns, deadline),
            "events": _list(core.list_namespaced_event, ns, deadline, field_selector="type=Warning"),
        }
        return lists, time.monotonic() - started

    def _connect(self) -> tuple[Any, Any, Any]:
        from kubernetes import client, config

        settings = client.Configuration(retries=False)
        where = self._config_source()
        try:
            if self.target.in_cluster:
                config.load_incluster_config(client_configuration=settings)
                api = client.ApiClient(settings)
            else:
                path = os.path.expanduser(self.target.kubeconfig) if self.target.kubeconfig else None
                if path and not os.path.exists(path):
                    raise ConfigProblem(f"{where}: no such file")
                api = config.new_client_from_config(config_file=path, context=self.target.context,
                                                    client_configuration=settings)
        except ConfigProblem:
            raise
        except Exception as exc:  # bad YAML, unknown context, missing service account …
            raise ConfigProblem(f"{where}: {one_line(describe_error(exc).removeprefix('ConfigException: '))}") from exc
        self._host = redact(api.configuration.host)
        return api, client.AppsV1Api(api), client.CoreV1Api(api)

    def _config_source(self) -> str:
        if self.target.in_cluster:
            return "in-cluster config"
        path = self.target.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        return f"kubeconfig {path}"

    # ---- failures --------------------------------------------------------
    def _lost(self, error: str) -> Snapshot:
        self.forget()
        self._last_error = error
        self._backoff.failed()
        return self._unreachable(error)

    def _unreachable(self, error: str) -> Snapshot:
        return unreachable(KIND, self.name, error, dict.fromkeys(METRIC_KEYS))

    def _describe(self, exc: BaseException) -> str:
        try:
            return describe_failure(exc, self.target.timeout, self._host)
        except Exception:  # e.g. the client itself failed to import
            return describe_error(exc)


def _list(call: Callable[..., Any], namespace: str | None, deadline: float, **params: Any) -> list:
    """One page of a List (namespaced unless ``namespace`` is None), as plain JSON items."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    where = () if namespace is None else (namespace,)
    response = call(*where, limit=LIST_LIMIT, _preload_content=False, _request_timeout=left, **params)
    items = _json(response).get("items")
    if not isinstance(items, list):
        raise InvalidResponse("unexpected answer from API server: not a Kubernetes List")
    return [item for item in items if isinstance(item, dict)]


def _json(response: Any) -> dict:
    try:
        raw = response.data
    finally:
        response.release_conn()
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidResponse("invalid JSON from API server") from None
    return body if isinstance(body, dict) else {}


def describe_failure(exc: BaseException, timeout: float, host: str) -> str:
    """One line for the operator, from whatever the client raised."""
    from kubernetes.client.exceptions import ApiException
    from urllib3 import exceptions as http

    if isinstance(exc, http.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, http.NewConnectionError):  # before timeouts: urllib3 makes it one
        return f"cannot connect to {host}: {_errno_text(str(exc))}"
    if isinstance(exc, (TimeoutError, http.TimeoutError)):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, ApiException):
        return _describe_status(exc)
    if isinstance(exc, http.ProtocolError):
        return f"connection to {host} lost: {_errno_text(str(exc))}"
    if isinstance(exc, (InvalidResponse, ConfigProblem)):
        return str(exc)
    if isinstance(exc, (TypeError, ValueError, AttributeError, KeyError)):
        return f"unexpected answer from API server: {describe_error(exc)}"
    return describe_error(exc)


def _describe_status(exc: Any) -> str:
    """``HTTP 403 Forbidden: pods is forbidden: ...`` from the Status object."""
    if not exc.status:  # TLS and request-building failures come with status 0
        return one_line(str(exc.reason or "request failed"))
    head = f"HTTP {exc.status} {exc.reason or ''}".rstrip()
    try:
        message = json.loads(exc.body or "").get("message")
    except (ValueError, AttributeError):
        message = None
    if not message or message == exc.reason:
        return head
    return f"{head}: {one_line(str(message))}"


def _errno_text(text: str) -> str:
    # urllib3 says "<HTTPConnection object at 0x7f…>: Failed to establish a new
    # connection: [Errno 111] Connection refused"; the operator needs the end.
    found = re.search(r"\[Errno -?\d+\]\s*(.+)$", text)
    return one_line(found.group(1) if found else text.rsplit(": ", 1)[-1])


# ---- from raw Lists to metrics and rows ------------------------------------

def summarize(lists: Mapping[str, list], now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    pods = lists["pods"]
    workloads = [_workload_row(kind, w, pods)
                 for kind, key in (("Deployment", "deployments"), ("StatefulSet", "statefulsets"))
                 for w in lists[key]]
    problem_pods = [_pod_row(p) for p in pods if _is_problem(p)]
    events = _recent_events(lists["events"], now)
    metrics = {
        "workloads": len(workloads),
        "unavailable_replicas": sum(max(0, w["desired"] - w["ready"]) for w in workloads),
        "pods_not_ready": sum(1 for p in pods if _not_ready(p)),
        "restarts": sum(_restarts(p) for p in pods),
        "crashlooping_pods": sum(1 for p in pods if "CrashLoopBackOff" in _problems(p)),
        "oom_killed_pods": sum(1 for p in pods if "OOMKilled" in _problems(p)),
        "warning_events": len(events),
    }
    details = {"workloads": tuple(workloads), "pods": tuple(problem_pods), "events": tuple(events[:MAX_EVENTS])}
    return metrics, details


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _workload_row(kind: str, workload: dict, pods: list) -> dict[str, Any]:
    name = str(_get(workload, "metadata", "name"))
    mine = [p for p in pods if _owner(p) == (kind, name)]
    desired = _get(workload, "spec", "replicas")
    problems: list[str] = []
    for pod in mine:
        problems += [r for r in _problems(pod) if r not in problems]
    return {
        "kind": kind,
        "name": name,
        "ready": int(_get(workload, "status", "readyReplicas") or 0),
        "desired": 1 if desired is None else int(desired),  # the API's default
        "restarts": sum(_restarts(p) for p in mine),
        "problems": problems,
    }


def _owner(pod: dict) -> tuple[str, str] | None:
    """The Deployment or StatefulSet that controls a pod, from its owner reference.

    A Deployment's pods are owned by a ReplicaSet named ``<deployment>-<pod-template-hash>``.
    """
    for ref in _get(pod, "metadata", "ownerReferences") or ():
        if not isinstance(ref, dict) or not ref.get("controller"):
            continue
        kind, name = ref.get("kind"), str(ref.get("name"))
        if kind == "StatefulSet":
            return ("StatefulSet", name)
        suffix = "-" + str(_get(pod, "metadata", "labels", "pod-template-hash"))
        if kind == "ReplicaSet" and name.endswith(suffix):
            return ("Deployment", name[: -len(suffix)])
    return None


def _containers(pod: dict) -> list[dict]:
    found = (_get(pod, "status", "initContainerStatuses") or []) + (_get(pod, "status", "containerStatuses") or [])
    return [c for c in found if isinstance(c, dict)]


def _restarts(pod: dict) -> int:
    return sum(int(c.get("restartCount") or 0) for c in _containers(pod))


def _problems(pod: dict) -> list[str]:
    """CrashLoopBackOff and friends, and OOMKilled now or on the last run."""
    out: list[str] = []
    for c in _containers(pod):
        waiting = _get(c, "state", "waiting", "reason")
        killed = "OOMKilled" in (_get(c, "state", "terminated", "reason"), _get(c, "lastState", "terminated", "reason"))
        for reason in (waiting if waiting in BAD_WAITING else None, "OOMKilled" if killed else None):
            if reason and reason not in out:
                out.append(reason)
    return out


def _ready(pod: dict) -> bool:
    return any(_get(c, "type") == "Ready" and _get(c, "status") == "True"
               for c in _get(pod, "status", "conditions") or ())


def _not_ready(pod: dict) -> bool:
    # Completed job pods and evicted pods are not ready by design.
    return _get(pod, "status", "phase") not in ("Succeeded", "Failed") and not _ready(pod)


def _is_problem(pod: dict) -> bool:
    return _not_ready(pod) or bool(_problems(pod)) or _get(pod, "status", "phase") == "Failed"


def _pod_row(pod: dict) -> dict[str, Any]:
    statuses = [c for c in _get(pod, "status", "containerStatuses") or () if isinstance(c, dict)]
    total = len(statuses) or len(_get(pod, "spec", "containers") or ())
    return {
        "name": str(_get(pod, "metadata", "name")),
        "phase": str(_get(pod, "status", "phase") or "Unknown"),
        "ready": f"{sum(1 for c in statuses if c.get('ready'))}/{total}",
        "restarts": _restarts(pod),
        "reason": _pod_reason(pod),
    }


def _pod_reason(pod: dict) -> str:
    """The most telling reason: a container problem, the pod's own, a failing condition."""
    problems = _problems(pod)
    if problems:
        return ", ".join(problems)
    if _get(pod, "status", "reason"):  # Evicted, NodeLost …
        return str(_get(pod, "status", "reason"))
    for c in _containers(pod):
        if _get(c, "state", "waiting", "reason"):
            return str(_get(c, "state", "waiting", "reason"))
    for cond in _get(pod, "status", "conditions") or ():
        if _get(cond, "status") == "False" and _get(cond, "reason"):
            return str(_get(cond, "reason"))
    return "NotReady" if _not_ready(pod) else str(_get(pod, "status", "phase") or "")


def _recent_events(events: Iterable[dict], now: datetime) -> list[dict[str, Any]]:
    """Warning events last seen within the window, newest first."""
    rows = []
    for event in events:
        seen = _last_seen(event)
        if event.get("type") != "Warning" or seen is None:
            continue
        age = (now - seen).total_seconds()
        if age > EVENT_WINDOW_S:
            continue
        rows.append((seen, {
            "age_s": max(0, int(age)),  # a node's clock may run ahead of ours
            "object": f"{_get(event, 'involvedObject', 'kind')}/{_get(event, 'involvedObject', 'name')}",
            "reason": str(event.get("reason") or ""),
            "message": _truncate(str(event.get("message") or "")),
            "count": int(event.get("count") or _get(event, "series", "count") or 1),
        }))
    rows.sort(key=lambda row: row[0], reverse=True)
    return [row for _, row in rows]


def probe_rows(resource: str, items: list[dict], now: datetime) -> tuple[tuple[str, ...], list[tuple]]:
    """Columns and rows for a probe's listing, in kubectl's terms."""
    if resource == "pods":
        rows = [_pod_row(p) for p in items]
        return ("name", "phase", "ready", "restarts", "reason"), \
            [(r["name"], r["phase"], r["ready"], r["restarts"], r["reason"] if _is_problem(p) else "")
             for r, p in zip(rows, items)]
    if resource in ("deployments", "statefulsets"):
        kind = "Deployment" if resource == "deployments" else "StatefulSet"
        return ("name", "ready", "up-to-date", "available"), [
            (row["name"], f"{row['ready']}/{row['desired']}", int(_get(w, "status", "updatedReplicas") or 0),
             int(_get(w, "status", "availableReplicas") or 0))
            for w, row in ((w, _workload_row(kind, w, [])) for w in items)]
    if resource == "events":
        seen = sorted(((_last_seen(e), e) for e in items), key=lambda pair: pair[0] or now, reverse=True)
        return ("age", "type", "reason", "object", "message"), [
            (_age(now, at), str(e.get("type") or ""), str(e.get("reason") or ""),
             f"{_get(e, 'involvedObject', 'kind')}/{_get(e, 'involvedObject', 'name')}",
             _truncate(str(e.get("message") or ""))) for at, e in seen]
    return ("name", "age"), [(str(_get(i, "metadata", "name")),
                              _age(now, _stamp(_get(i, "metadata", "creationTimestamp")))) for i in items]


def _age(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "?"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _last_seen(event: dict) -> datetime | None:
    # Core events carry lastTimestamp; those written through events.k8s.io
    # (the scheduler's) carry eventTime and, when repeated, series.
    for stamp in (_get(event, "series", "lastObservedTime"), event.get("lastTimestamp"),
                  event.get("eventTime"), _get(event, "metadata", "creationTimestamp")):
        seen = _stamp(stamp)
        if seen is not None:
            return seen
    return None


def _stamp(stamp: Any) -> datetime | None:
    if not isinstance(stamp, str):
        return None
    try:
        seen = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return seen if seen.tzinfo else seen.replace(tzinfo=timezone.utc)


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
