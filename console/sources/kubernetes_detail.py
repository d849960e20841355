"""Opening a Kubernetes row: a workload with its pods and rollout history, a
pod described with its events, a container's logs; and rolling a Deployment
back as ``kubectl rollout undo`` does.

Nothing here runs on a poll: a view is read when the operator opens it. It
runs in the worker thread like the poll (the client blocks), and all the
calls of one view share one deadline, so a view costs at most the target's
timeout however many Lists it needs. Objects are looked up by field selector
in a List, as probes do, so a missing one is an empty List (the row is gone),
not an error. Names, messages and log lines stay the str the API sent: the
screen makes them inert.

Row ids (made here and by the Services pane; only this module reads them):

=====================================  =========================================  =====
row                                    view                                       calls
=====================================  =========================================  =====
``deployment/<n>``, ``statefulset/<n>``  replicas, conditions, pods, history (deploy)  3 (2)
``deployment/<n>/describe``            kubectl-describe-like text, with events    3
``deployment/<n>/revision/<r>``        one ReplicaSet of the history, undo to it  2
``pod/<n>``, ``pod/<n>/describe``      status, containers, conditions, events     2
``pod/<n>/events``                     the pod's events                           1
``pod/<n>/logs[/previous]``            the container that restarts most           2
``pod/<n>/container/<c>/logs[...]``    one container's logs                       1
``event/<i>/<Kind>/<n>``               the event's object (its events if no view) 1-3
=====================================  =========================================  =====

Keys of a workload's detail: ``l`` logs of its most-restarted pod (the
previous container's when it has restarted: a crash loop's last words),
``d`` describe, ``R`` rollout restart, ``U`` rollout undo to the previous
revision (each history row opens a revision with its own ``U``), and scale
to a count near the current one: ``0``, ``-`` one fewer, ``+`` one more,
``2`` twice as many. A pod's: ``l`` logs, ``p`` previous container's logs,
``e`` events, ``d`` describe, ``X`` delete. Every change is confirmed by
typing the workload's or the pod's name.
"""

from __future__ import annotations

import codecs
import copy
import hashlib
import json
import re
import shlex
import time
from datetime import datetime, timezone
from typing import Any, Iterable

from console import secrets
from console.drill import Change, Detail, NoSuchRow, Opening, Section
from console.sources.base import ProbeError
from console.sources.kubernetes import (READABLE, _age, _containers, _get, _is_problem, _json, _last_seen, _list,
                                        _owner, _pod_reason, _pod_row, _problems, _restarts, _stamp, _truncate)

LOG_LINES = 200
# A line can be megabytes (a stack trace, a JSON dump): the bytes are bounded too.
LOG_BYTES = 64 * 1024
# Read past the cut, so that a secret the cut falls inside is redacted whole
# (and then dropped) rather than shown in part: no secret form is this long.
LOG_SLACK = 16 * 1024
MAX_EVENTS = 50
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
_KINDS = {"deployment": "Deployment", "statefulset": "StatefulSet", "pod": "Pod"}
_PLURAL = {"deployment": "deployments", "statefulset": "statefulsets", "pod": "pods"}
_ROW = re.compile(r"^(?P<kind>deployment|statefulset|pod)/(?P<name>[^/]+?)"
                  r"(?:/(?P<view>describe|events|logs|logs/previous|revision/(?P<revision>\d{1,9})"
                  r"|container/(?P<container>[^/]+)/logs(?:/previous)?))?$")
_NEVER = datetime.min.replace(tzinfo=timezone.utc)  # sorts an event without a time last
_EVENT_ROW = re.compile(r"^event/\d+/(?P<kind>[A-Za-z]+)/(?P<name>[^/]+)$")


# ---- reading, in the worker thread ---------------------------------------------

class Reads:
    """The Lists and logs of one view: one client, one namespace, one deadline."""

    def __init__(self, api: Any, namespace: str, deadline: float) -> None:
        self.api, self.namespace, self.deadline = api, namespace, deadline

    def objects(self, resource: str, **selectors: str) -> list[dict]:
        from kubernetes import client

        api_class, method, _ = READABLE[resource]
        lister = getattr(getattr(client, api_class)(self.api), method)
        return _list(lister, self.namespace, self.deadline, **selectors)

    def one(self, kind: str, name: str) -> dict:
        found = self.objects(_PLURAL[kind], field_selector=f"metadata.name={name}")
        if not found:
            raise NoSuchRow(f"{kind}/{name} is gone from {self.namespace}")
        return found[0]

    def pods_of(self, kind: str, workload: dict) -> list[dict]:
        # The selector narrows the List on the server; the owner decides, as
        # two workloads' labels may overlap.
        pods = self.objects("pods", label_selector=_selector(workload))
        owner = (_KINDS[kind], str(_get(workload, "metadata", "name")))
        return sorted((p for p in pods if _owner(p) == owner), key=lambda p: str(_get(p, "metadata", "name")))

    def history(self, deployment: dict) -> list[dict]:
        """The Deployment's ReplicaSets, oldest revision first."""
        sets = self.objects("replicasets", label_selector=_selector(deployment))
        name, uid = _get(deployment, "metadata", "name"), _get(deployment, "metadata", "uid")
        mine = [rs for rs in sets if any(
            isinstance(ref, dict) and ref.get("controller") and ref.get("kind") == "Deployment"
            and ref.get("name") == name and (uid is None or ref.get("uid") in (None, uid))
            for ref in _get(rs, "metadata", "ownerReferences") or ())]
        return sorted((rs for rs in mine if _revision(rs)), key=_revision)

    def events_of(self, kind: str, name: str) -> list[dict]:
        events = self.objects("events", field_selector=f"involvedObject.kind={kind},involvedObject.name={name}")
        return sorted(events, key=lambda e: _last_seen(e) or _NEVER, reverse=True)

    def log(self, pod: str, container: str, previous: bool) -> tuple[str, str, bool]:
        """(text, why there is none, cut at LOG_BYTES) of one container."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            response = client.CoreV1Api(self.api).read_namespaced_pod_log(
                pod, self.namespace, container=container, previous=previous, tail_lines=LOG_LINES + 1,
                limit_bytes=LOG_BYTES + LOG_SLACK, _preload_content=False, _request_timeout=self.seconds_left())
        except ApiException as exc:
            if exc.status == 404:
                raise NoSuchRow(f"pod/{pod} is gone from {self.namespace}") from None
            if exc.status == 400:  # no previous container, one still waiting to start
                return "", _api_message(exc), False
            raise
        text, cut = _bounded_text(response)
        return text, "", cut

    def seconds_left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left


def open_row(api: Any, namespace: str, row: str, deadline: float, now: datetime) -> Detail:
    """The Detail of ``row``; NoSuchRow for a row that is gone or was never one of ours."""
    reads = Reads(api, namespace, deadline)
    event = _EVENT_ROW.match(row)
    if event is not None:
        return _event_object(reads, event["kind"], event["name"], now)
    match = _ROW.match(row)
    if match is None:
        raise NoSuchRow(f"not a Kubernetes row: {row[:80]!r}")
    if match["kind"] == "pod":
        return _pod(reads, match["name"], match["view"], match["container"], now)
    return _workload(reads, match["kind"], match["name"], match["view"], match["revision"], now)


def _event_object(reads: Reads, kind: str, name: str, now: datetime) -> Detail:
    # A warning's object is what the operator wants to see; one we cannot
    # open (a ReplicaSet, an autoscaler) still has its events.
    if kind.lower() in _KINDS:
        row = f"{kind.lower()}/{name}"
        return open_row(reads.api, reads.namespace, row, reads.deadline, now)
    return Detail(f"{kind}/{name} in {reads.namespace}", (_events_section(reads.events_of(kind, name), now),))


def _pod(reads: Reads, name: str, view: str | None, container: str | None, now: datetime) -> Detail:
    if view in (None, "describe"):
        pod = reads.one("pod", name)
        events = reads.events_of("Pod", name)
        return pod_view(pod, events, now) if view is None else pod_describe(pod, events, now)
    if view == "events":
        return Detail(f"events of pod/{name} in {reads.namespace}",
                      (_events_section(reads.events_of("Pod", name), now),), _pod_openings(name, "e"))
    previous = view.endswith("/previous")
    chosen = container or log_container(reads.one("pod", name))
    text, note, cut = reads.log(name, chosen, previous)
    return logs_view(name, chosen, previous, container is not None, text or "", note, cut, reads.namespace)


def _workload(reads: Reads, kind: str, name: str, view: str | None, revision: str | None,
              now: datetime) -> Detail:
    if view not in (None, "describe") and not (revision and kind == "deployment"):
        raise NoSuchRow(f"{kind}/{name} has no {view} view")
    workload = reads.one(kind, name)
    history = reads.history(workload) if kind == "deployment" else []
    if revision:
        return revision_view(workload, history, int(revision), now)
    if view == "describe":
        return workload_describe(kind, workload, history, reads.events_of(_KINDS[kind], name), now)
    return workload_view(kind, workload, reads.pods_of(kind, workload), history, now)


def roll_back(api: Any, namespace: str, name: str, revision: int | None, deadline: float,
              replicaset: str | None = None, template_digest: str | None = None) -> dict:
    """Put a ReplicaSet's pod template back into its Deployment, as ``kubectl
    rollout undo`` does: a JSON patch that replaces ``spec.template`` only if
    the Deployment has not changed since it was read.

    ``replicaset`` and ``template_digest`` are what the confirmation showed
    (:func:`template_digest` of the ReplicaSet then): the target is picked as
    the preview picked it (:func:`rollback_target`), and nothing is patched
    unless it is still that ReplicaSet with that template."""
    from kubernetes import client

    reads = Reads(api, namespace, deadline)
    try:
        deployment = reads.one("deployment", name)
    except NoSuchRow as gone:
        raise ProbeError(str(gone)) from None
    if _get(deployment, "spec", "paused"):
        raise ProbeError(f"deployment/{name} is paused: resume it before rolling back (as kubectl requires)")
    target = rollback_target(deployment, reads.history(deployment), revision)
    shown = revision if revision is not None else _revision(target)
    changed = f"revision {shown}'s template changed since it was shown; open the deployment again"
    if replicaset is not None and _name(target) != replicaset:
        raise ProbeError(f"{changed} (it was ReplicaSet {replicaset}, it is now {_name(target)}): "
                         "nothing was rolled back")
    if template_digest is not None and digest_of(target) != template_digest:
        raise ProbeError(f"{changed} (ReplicaSet {_name(target)} was edited or replaced since): "
                         "nothing was rolled back")
    template = pod_template(target)
    if template == _get(deployment, "spec", "template"):
        raise ProbeError(f"deployment/{name} already runs revision {_revision(target)}'s pod template: "
                         "nothing was rolled back")
    ops: list[dict] = [{"op": "replace", "path": "/spec/template", "value": template}]
    version = _get(deployment, "metadata", "resourceVersion")
    if version:
        ops.insert(0, {"op": "test", "path": "/metadata/resourceVersion", "value": version})
    response = client.AppsV1Api(api).patch_namespaced_deployment(
        name, namespace, ops, _content_type="application/json-patch+json", _preload_content=False,
        _request_timeout=reads.seconds_left())
    return _json(response)


class AmbiguousRevision(ProbeError):
    """Two ReplicaSets of one Deployment claim the same revision: which one an
    undo would put back depends on the order the API lists them in."""


def rollback_target(deployment: dict, history: list[dict], revision: int | None) -> dict:
    """The ReplicaSet an undo to ``revision`` (the previous one when None) puts
    back. The one choice both the confirmation's preview and the run make, so
    that what runs is what was shown. ProbeError when there is none;
    AmbiguousRevision when more than one ReplicaSet claims the revision."""
    name = _name(deployment)
    if revision is None:
        current = _current_revision(deployment, history)
        older = [_revision(rs) for rs in history if 0 < _revision(rs) < current]
        if not older:
            raise ProbeError(f"deployment/{name} has no previous revision to roll back to")
        revision = max(older)
    found = [rs for rs in history if _revision(rs) == revision]
    if not found:
        kept = ", ".join(str(_revision(rs)) for rs in history) or "none"
        raise ProbeError(f"deployment/{name} has no revision {revision} (revisions kept: {kept})")
    if len(found) > 1:
        names = sorted(_name(rs) for rs in found)
        raise AmbiguousRevision(f"deployment/{name}: {len(found)} ReplicaSets claim revision {revision} "
                                f"({' and '.join(names) if len(names) == 2 else ', '.join(names)}): "
                                "which one an undo puts back is ambiguous, so none is; remove or fix the stray one")
    return found[0]


def pod_template(rs: dict) -> dict:
    """The pod template an undo puts back: the ReplicaSet's, without its
    ``pod-template-hash`` label (the ReplicaSet's own, not the Deployment's)."""
    template = copy.deepcopy(_get(rs, "spec", "template") or {})
    labels = _get(template, "metadata", "labels")
    if isinstance(labels, dict):
        labels.pop("pod-template-hash", None)
    return template


def digest_of(rs: dict) -> str:
    """sha256 (hex) of the ReplicaSet's uid and the pod template an undo to it
    puts back, as canonical JSON: the identity a confirmation shows and the run
    checks. Another ReplicaSet, or this one edited, has another digest."""
    body = {"uid": _get(rs, "metadata", "uid"), "template": pod_template(rs)}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


# ---- the views: JSON in, Detail out ------------------------------------------------

POD_COLUMNS = ("pod", "phase", "ready", "restarts", "status", "last termination", "node", "age")
CONTAINER_COLUMNS = ("container", "image", "state", "ready", "restarts", "last state", "requests", "limits")
EVENT_COLUMNS = ("age", "type", "reason", "count", "message")


def workload_view(kind: str, workload: dict, pods: list[dict], history: list[dict], now: datetime) -> Detail:
    name, namespace = _name(workload), _namespace(workload)
    fields = _workload_fields(kind, workload, history, now)
    if kind == "deployment":
        refused = _undo_offer(workload, history, None)[1]
        fields += (("undo", refused),) if refused else ()
    sections = [Section("Workload", ("field", "value"), fields),
                *_conditions_section(workload, now, with_message=True),
                Section(f"Pods ({len(pods)})", POD_COLUMNS, tuple(_pod_cells(p, now) for p in pods),
                        drill=tuple(f"pod/{_name(p)}" for p in pods))]
    if kind == "deployment":
        sections.append(_history_section(workload, history, now))
    openings = [Opening("d", "Describe", f"{kind}/{name}/describe")]
    telling = _most_restarted(pods)
    if telling is not None:
        previous = _restarts(telling) > 0
        openings.insert(0, Opening("l", f"Logs of pod/{_name(telling)}" + (" (previous container)" if previous
                                                                            else ""),
                                   f"pod/{_name(telling)}/logs" + ("/previous" if previous else "")))
    return Detail(f"{kind}/{name} in {namespace}", tuple(sections), tuple(openings),
                  workload_changes(kind, workload, history))


def workload_describe(kind: str, workload: dict, history: list[dict], events: list[dict], now: datetime) -> Detail:
    spec, status = workload.get("spec") or {}, workload.get("status") or {}
    lines = _fields([("Name", _name(workload)), ("Namespace", _namespace(workload)),
                     ("CreationTimestamp", _when(_get(workload, "metadata", "creationTimestamp"), now)),
                     ("Labels", _pairs(_get(workload, "metadata", "labels"))),
                     ("Annotations", _pairs(_get(workload, "metadata", "annotations"))),
                     ("Selector", _selector(workload)),
                     ("Replicas", f"{_desired(workload)} desired | {status.get('updatedReplicas') or 0} updated | "
                                  f"{status.get('replicas') or 0} total | {status.get('availableReplicas') or 0} "
                                  f"available | {status.get('unavailableReplicas') or 0} unavailable"),
                     ("Strategy", _strategy(kind, spec))])
    lines.append("Pod Template:")
    for c in _get(spec, "template", "spec", "containers") or ():
        lines.append(f"  {c.get('name')}:")
        lines += _fields([("Image", c.get("image")), ("Limits", _pairs(_get(c, "resources", "limits"))),
                          ("Requests", _pairs(_get(c, "resources", "requests")))], indent=4)
    lines += _table_lines("Conditions", ("Type", "Status", "Reason"), [
        (str(c.get("type")), str(c.get("status")), str(c.get("reason") or ""))
        for c in _get(workload, "status", "conditions") or () if isinstance(c, dict)])
    if history:
        current = _current_revision(workload, history)
        lines += _fields([("OldReplicaSets", ", ".join(_rs_summary(rs) for rs in history
                                                       if _revision(rs) != current) or "<none>"),
                          ("NewReplicaSet", ", ".join(_rs_summary(rs) for rs in history
                                                      if _revision(rs) == current) or "<none>")])
    lines += _event_lines(events, now)
    return Detail(f"describe {kind}/{_name(workload)} in {_namespace(workload)}",
                  (Section("describe", text="\n".join(lines)),), (), workload_changes(kind, workload, history))


def revision_view(deployment: dict, history: list[dict], revision: int, now: datetime) -> Detail:
    name = _name(deployment)
    claimants = [rs for rs in history if _revision(rs) == revision]
    if not claimants:
        raise NoSuchRow(f"deployment/{name} has no revision {revision} any more")
    current = _current_revision(deployment, history)
    changes, refused = ((), "") if revision == current else _undo_offer(deployment, history, revision)
    rs = claimants[0]
    template = _get(rs, "spec", "template") or {}
    fields = (("replicaset", ", ".join(_name(c) for c in claimants)),
              ("created", _when(_get(rs, "metadata", "creationTimestamp"), now)),
              ("change-cause", str(_get(rs, "metadata", "annotations", CHANGE_CAUSE) or "")),
              ("images", _images(template)), ("pods", _rs_pods(rs)),
              ("current", "yes: the Deployment runs this revision" if revision == current else
               f"no: the Deployment runs revision {current} ({_images(_get(deployment, 'spec', 'template'))})"),
              *((("undo", refused),) if refused else ()))
    containers = tuple((str(c.get("name")), str(c.get("image")), _pairs(_get(c, "resources", "requests")),
                        _pairs(_get(c, "resources", "limits")))
                       for c in _get(template, "spec", "containers") or () if isinstance(c, dict))
    return Detail(f"deployment/{name} revision {revision} in {_namespace(deployment)}",
                  (Section(f"Revision {revision}", ("field", "value"), fields),
                   Section("Pod template", ("container", "image", "requests", "limits"), containers)),
                  (), changes)


def pod_view(pod: dict, events: list[dict], now: datetime) -> Detail:
    name = _name(pod)
    containers = _container_specs(pod)
    sections = (Section("Pod", ("field", "value"), _pod_fields(pod, now)),
                Section("Containers", CONTAINER_COLUMNS, tuple(_container_cells(spec, status, now)
                                                               for spec, status in containers),
                        drill=tuple(f"pod/{name}/container/{spec.get('name')}/logs" for spec, _ in containers)),
                *_conditions_section(pod, now, with_message=False),
                _events_section(events, now))
    return Detail(f"pod/{name} in {_namespace(pod)}", sections, _pod_openings(name), (_delete_change(pod),))


def pod_describe(pod: dict, events: list[dict], now: datetime) -> Detail:
    status = pod.get("status") or {}
    lines = _fields([("Name", _name(pod)), ("Namespace", _namespace(pod)),
                     ("Node", f"{_get(pod, 'spec', 'nodeName') or '<none>'}/{status.get('hostIP') or ''}"),
                     ("Start Time", _when(status.get("startTime"), now)),
                     ("Labels", _pairs(_get(pod, "metadata", "labels"))),
                     ("Status", str(status.get("phase") or "Unknown")), ("Reason", str(status.get("reason") or "")),
                     ("IP", str(status.get("podIP") or "")), ("Controlled By", _controller(pod) or "<none>"),
                     ("QoS Class", str(status.get("qosClass") or ""))])
    lines.append("Containers:")
    for spec, state in _container_specs(pod):
        lines.append(f"  {spec.get('name')}:")
        lines += _fields([("Image", spec.get("image")), ("State", _state(state.get("state"), now)),
                          ("Last State", _state(state.get("lastState"), now)), ("Ready", str(bool(state.get("ready")))),
                          ("Restart Count", str(state.get("restartCount") or 0)),
                          ("Limits", _pairs(_get(spec, "resources", "limits"))),
                          ("Requests", _pairs(_get(spec, "resources", "requests")))], indent=4)
    lines += _table_lines("Conditions", ("Type", "Status"), [
        (str(c.get("type")), str(c.get("status"))) for c in status.get("conditions") or () if isinstance(c, dict)])
    lines += _event_lines(events, now)
    return Detail(f"describe pod/{_name(pod)} in {_namespace(pod)}", (Section("describe", text="\n".join(lines)),),
                  _pod_openings(_name(pod), "d"), (_delete_change(pod),))


def logs_view(pod: str, container: str, previous: bool, explicit: bool, text: str, note: str, cut: bool,
              namespace: str) -> Detail:
    base = f"pod/{pod}/container/{container}/logs" if explicit else f"pod/{pod}/logs"
    which = "previous container" if previous else "current container"
    if text:
        heading = f"last {LOG_LINES} lines" + (f", cut at {LOG_BYTES // 1024} KiB: the newest may be missing"
                                                if cut else "")
        section = Section(heading, text=text)
    else:
        section = Section("no logs", text=note or "the container has written nothing")
    switch = Opening("l", "Current container's logs", base) if previous else \
        Opening("p", "Previous container's logs", f"{base}/previous")
    openings = (switch, Opening("e", "Events", f"pod/{pod}/events"), Opening("d", "Describe", f"pod/{pod}/describe"))
    # Only a running container's logs grow; the previous one's are final.
    return Detail(f"logs of pod/{pod} in {namespace} · {container} ({which})", (section,), openings,
                  follow=not previous, extra={"newest_last": True})


def log_container(pod: dict) -> str:
    """Whose logs ``l`` shows: the container that restarts most (why anyone
    looks), else the pod's declared default, else the first, as kubectl."""
    names = [str(c.get("name")) for c in _get(pod, "spec", "containers") or () if isinstance(c, dict)]
    restarts = {str(c.get("name")): int(c.get("restartCount") or 0) for c in _containers(pod)}
    worst = max(names, key=lambda n: restarts.get(n, 0), default="")
    if restarts.get(worst, 0) > 0:
        return worst
    default = _get(pod, "metadata", "annotations", DEFAULT_CONTAINER)
    return default if default in names else (names[0] if names else "")


# ---- changes ---------------------------------------------------------------------

def workload_changes(kind: str, workload: dict, history: list[dict]) -> tuple[Change, ...]:
    name, desired = _name(workload), _desired(workload)
    target = {kind: name, "namespace": _namespace(workload)}
    base = _workload_preview(kind, workload)
    changes = [Change("R", f"Rollout restart {kind}/{name}", "rollout_restart", target, name,
                      base + ("replaces every pod, a few at a time as the update strategy allows",))]
    if kind == "deployment":
        changes.extend(_undo_offer(workload, history, None)[0])
    offered = {desired}
    for key, count in (("0", 0), ("-", desired - 1), ("+", desired + 1), ("2", desired * 2)):
        if count < 0 or count in offered:
            continue
        offered.add(count)
        changes.append(Change(key, f"Scale {kind}/{name} to {count}", "scale", {**target, "replicas": count}, name,
                              base + (f"from {desired} to {count} replicas"
                                      + (": every pod stops" if count == 0 else ""),)))
    return tuple(changes)


def _undo_offer(deployment: dict, history: list[dict], revision: int | None) -> tuple[tuple[Change, ...], str]:
    """The ``U`` change to ``revision`` (the previous one when None), or none
    and why not when two ReplicaSets claim it (no revision to go back to is no
    reason to say anything)."""
    try:
        target = rollback_target(deployment, history, revision)
    except AmbiguousRevision as exc:
        return (), str(exc)
    except ProbeError:
        return (), ""
    return (_undo_change(deployment, target, "U"),), ""


def _undo_change(deployment: dict, rs: dict, key: str) -> Change:
    """Undo to ``rs``: the change names the ReplicaSet and the digest of its
    template, and the run refuses any other (:func:`roll_back`)."""
    name, revision, digest = _name(deployment), _revision(rs), digest_of(rs)
    cause = _get(rs, "metadata", "annotations", CHANGE_CAUSE)
    preview = _workload_preview("deployment", deployment) + (
        f"back to revision {revision}: {_images(_get(rs, 'spec', 'template'))}",
        *([f"revision {revision} was: {cause}"] if cause else []),
        f"ReplicaSet {_name(rs)}, template sha256 {digest[:16]}: refused if it changes before this runs",
        *template_diff(_get(deployment, "spec", "template"), pod_template(rs)))
    return Change(key, f"Rollout undo deployment/{name} to revision {revision}", "rollout_undo",
                  {"deployment": name, "namespace": _namespace(deployment), "to_revision": revision,
                   "replicaset": _name(rs), "template_digest": digest}, name, preview)


DIFF_LINES = 12  # lines of template differences a preview shows at most
_DIFF_WIDTH = 160
# A container's fields the diff names one by one; any other that differs is named only.
_SHOWN_FIELDS = ("name", "image", "command", "args", "env", "envFrom", "volumeMounts")


def template_diff(current: Any, target: Any, limit: int = DIFF_LINES) -> tuple[str, ...]:
    """What an undo changes in the pod template besides images, a line each:
    containers added or removed, their command and args, the names (never the
    values) of environment variables added, removed or changed, envFrom and
    volume mounts, the pod's volumes, and the names of any other field that
    differs. At most ``limit`` lines, each bounded; the screen makes them inert."""
    current = current if isinstance(current, dict) else {}
    target = target if isinstance(target, dict) else {}
    now_spec, then_spec = _dict(current.get("spec")), _dict(target.get("spec"))
    lines: list[str] = []
    for key, label in (("initContainers", "init container"), ("containers", "container")):
        now, then = _by_name(now_spec.get(key)), _by_name(then_spec.get(key))
        for cname in now:
            if cname not in then:
                lines.append(f"{label} {cname} removed")
        for cname, c in then.items():
            if cname not in now:
                lines.append(f"{label} {cname} added: image {c.get('image')}, command {_argv(c.get('command'))}, "
                             f"args {_argv(c.get('args'))}, env {_env_names(c) or '<none>'}")
                continue
            lines += _container_diff(cname, now[cname], c)
    now_vols, then_vols = _by_name(now_spec.get("volumes")), _by_name(then_spec.get("volumes"))
    vols = [f"+{_volume(v)}" for n, v in then_vols.items() if n not in now_vols] + \
           [f"-{n}" for n in now_vols if n not in then_vols] + \
           [f"~{_volume(v)}" for n, v in then_vols.items() if n in now_vols and now_vols[n] != v]
    if vols:
        lines.append("volumes: " + ", ".join(vols))
    others = sorted(k for k in set(now_spec) | set(then_spec)
                    if k not in ("containers", "initContainers", "volumes") and now_spec.get(k) != then_spec.get(k))
    if others:
        lines.append("pod spec also differs: " + ", ".join(others))
    now_meta, then_meta = _dict(current.get("metadata")), _dict(target.get("metadata"))
    for part in ("labels", "annotations"):
        a, b = _dict(now_meta.get(part)), _dict(then_meta.get(part))
        keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k != "pod-template-hash")
        if keys:
            lines.append(f"pod {part} differ: " + ", ".join(map(str, keys)))
    if not lines:
        same_images = _images(current) == _images(target)
        return ("the pod template is the one running now: nothing would change" if same_images else
                "the whole pod template is replaced: only the images differ",)
    lines = [_clip(line, _DIFF_WIDTH) for line in lines]
    if len(lines) > limit:
        lines = lines[: limit - 1] + [f"… and {len(lines) - limit + 1} more differences"]
    return ("the whole pod template is replaced; besides images, it changes:", *lines)


def _container_diff(cname: str, now: dict, then: dict) -> list[str]:
    lines = []
    for field in ("command", "args"):
        if now.get(field) != then.get(field):
            lines.append(f"{cname}: {field} {_argv(now.get(field))} → {_argv(then.get(field))}")
    now_env, then_env = _env(now), _env(then)
    env = [f"added {', '.join(n for n in then_env if n not in now_env)}"] if set(then_env) - set(now_env) else []
    env += [f"removed {', '.join(n for n in now_env if n not in then_env)}"] if set(now_env) - set(then_env) else []
    changed = [n for n in then_env if n in now_env and now_env[n] != then_env[n]]
    env += [f"changed {', '.join(changed)}"] if changed else []
    if env:
        lines.append(f"{cname}: env {'; '.join(env)} (values not shown)")
    if now.get("envFrom") != then.get("envFrom"):
        lines.append(f"{cname}: envFrom {_env_from(now)} → {_env_from(then)}")
    if now.get("volumeMounts") != then.get("volumeMounts"):
        lines.append(f"{cname}: volume mounts {_mounts(now)} → {_mounts(then)}")
    others = sorted(k for k in set(now) | set(then) if k not in _SHOWN_FIELDS and now.get(k) != then.get(k))
    if others:
        lines.append(f"{cname}: also differs: {', '.join(map(str, others))}")
    return lines


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _by_name(items: Any) -> dict[str, dict]:
    return {str(i.get("name")): i for i in items or () if isinstance(i, dict)} if isinstance(items, list) else {}


def _argv(value: Any) -> str:
    if value is None:
        return "<image default>"
    if not isinstance(value, list):
        return _clip(str(value), 60)
    return "[" + _clip(shlex.join(str(v) for v in value), 60) + "]"


def _env(container: dict) -> dict[str, Any]:
    return {str(e.get("name")): (e.get("value"), e.get("valueFrom")) for e in container.get("env") or ()
            if isinstance(e, dict)} if isinstance(container.get("env"), list) else {}


def _env_names(container: dict) -> str:
    return _clip(", ".join(_env(container)), 80)


def _env_from(container: dict) -> str:
    refs = []
    for source in container.get("envFrom") or () if isinstance(container.get("envFrom"), list) else ():
        if isinstance(source, dict):
            for kind in ("configMapRef", "secretRef"):
                if isinstance(source.get(kind), dict):
                    refs.append(f"{kind[:-3]} {source[kind].get('name')}")
    return _clip(", ".join(refs), 60) or "<none>"


def _mounts(container: dict) -> str:
    mounts = [f"{m.get('name')}:{m.get('mountPath')}" + (" ro" if m.get("readOnly") else "")
              for m in container.get("volumeMounts") or () if isinstance(m, dict)] \
        if isinstance(container.get("volumeMounts"), list) else []
    return _clip(", ".join(mounts), 60) or "<none>"


_VOLUME_REF = ("secretName", "claimName", "name", "path", "server", "medium")


def _volume(volume: dict) -> str:
    """``data (secret db-creds)``, ``root (hostPath /)``: a volume's name, its kind and what it refers to."""
    kinds = [k for k in volume if k != "name"]
    if not kinds:
        return str(volume.get("name"))
    source = volume[kinds[0]]
    ref = next((source[k] for k in _VOLUME_REF if isinstance(source, dict) and source.get(k)), "")
    return f"{volume.get('name')} ({kinds[0]}{f' {ref}' if ref else ''})"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _delete_change(pod: dict) -> Change:
    name, owner = _name(pod), _controller(pod)
    row = _pod_row(pod)
    comes_back = f"controlled by {owner}: it makes a new pod" if owner else \
        "no controller: nothing makes a new pod"
    preview = (f"pod/{name} in namespace {_namespace(pod)}",
               f"{row['phase']} · ready {row['ready']} · {row['restarts']} restarts · "
               f"node {_get(pod, 'spec', 'nodeName') or '<none>'}", comes_back)
    return Change("X", f"Delete pod/{name}", "delete_pod", {"pod": name, "namespace": _namespace(pod)}, name,
                  preview)


def _workload_preview(kind: str, workload: dict) -> tuple[str, ...]:
    return (f"{kind}/{_name(workload)} in namespace {_namespace(workload)}",
            f"replicas: desired {_desired(workload)}, ready {_get(workload, 'status', 'readyReplicas') or 0}",
            f"image: {_images(_get(workload, 'spec', 'template'))}")


def _pod_openings(name: str, without: str = "") -> tuple[Opening, ...]:
    openings = (Opening("l", "Logs", f"pod/{name}/logs"), Opening("p", "Previous logs", f"pod/{name}/logs/previous"),
                Opening("e", "Events", f"pod/{name}/events"), Opening("d", "Describe", f"pod/{name}/describe"))
    return tuple(o for o in openings if o.key != without)


# ---- sections and cells -------------------------------------------------------------

def _workload_fields(kind: str, workload: dict, history: list[dict], now: datetime) -> tuple[tuple[str, str], ...]:
    status = workload.get("status") or {}
    fields = [("replicas", f"desired {_desired(workload)} · ready {status.get('readyReplicas') or 0} · "
                           f"updated {status.get('updatedReplicas') or 0} · "
                           f"available {status.get('availableReplicas') or 0}"),
              ("images", _images(_get(workload, "spec", "template"))),
              ("strategy", _strategy(kind, workload.get("spec") or {})),
              ("selector", _selector(workload)),
              ("created", _when(_get(workload, "metadata", "creationTimestamp"), now))]
    if kind == "deployment":
        fields.insert(3, ("revision", str(_current_revision(workload, history) or "?")))
    return tuple(fields)


def _pod_fields(pod: dict, now: datetime) -> tuple[tuple[str, str], ...]:
    status = pod.get("status") or {}
    row = _pod_row(pod)
    reason = _pod_reason(pod)
    return (("status", row["phase"] + (f" · {reason}" if reason and reason != row["phase"] else "")),
            ("ready", row["ready"]), ("restarts", str(row["restarts"])),
            ("node", f"{_get(pod, 'spec', 'nodeName') or '<none>'} ({status.get('hostIP') or 'no host IP'})"),
            ("IP", str(status.get("podIP") or "")), ("started", _when(status.get("startTime"), now)),
            ("controlled by", _controller(pod) or "<none>"), ("QoS", str(status.get("qosClass") or "")))


def _pod_cells(pod: dict, now: datetime) -> tuple[str, ...]:
    row = _pod_row(pod)
    return (row["name"], row["phase"], row["ready"], str(row["restarts"]), _pod_reason(pod) if _is_problem(pod) else "",
            _last_termination(pod), str(_get(pod, "spec", "nodeName") or ""),
            _age(now, _stamp(_get(pod, "metadata", "creationTimestamp"))))


def _container_specs(pod: dict) -> list[tuple[dict, dict]]:
    """Each container's spec with its status (empty before it has one)."""
    statuses = {str(c.get("name")): c for c in _containers(pod)}
    specs = [c for key in ("initContainers", "containers") for c in _get(pod, "spec", key) or ()
             if isinstance(c, dict)]
    return [(spec, statuses.get(str(spec.get("name")), {})) for spec in specs]


def _container_cells(spec: dict, status: dict, now: datetime) -> tuple[str, ...]:
    return (str(spec.get("name")), str(spec.get("image") or status.get("image") or ""),
            _state(status.get("state"), now), "yes" if status.get("ready") else "no",
            str(status.get("restartCount") or 0), _state(status.get("lastState"), now),
            _pairs(_get(spec, "resources", "requests")), _pairs(_get(spec, "resources", "limits")))


def _state(state: Any, now: datetime) -> str:
    """``Running 19m`` · ``Waiting: CrashLoopBackOff`` · ``Terminated: OOMKilled (exit 137) 1m ago``."""
    if not isinstance(state, dict):
        return ""
    if isinstance(state.get("running"), dict):
        return f"Running {_age(now, _stamp(state['running'].get('startedAt')))}"
    if isinstance(state.get("waiting"), dict):
        return f"Waiting: {state['waiting'].get('reason') or ''}".rstrip(": ")
    done = state.get("terminated")
    if isinstance(done, dict):
        return (f"Terminated: {done.get('reason') or 'Error'} (exit {done.get('exitCode')}) "
                f"{_age(now, _stamp(done.get('finishedAt')))} ago")
    return ""


def _last_termination(pod: dict) -> str:
    """The newest termination of any container: ``OOMKilled (exit 137)``."""
    ended = [(str(t.get("finishedAt") or ""), str(c.get("name")), t) for c in _containers(pod)
             for t in (_get(c, "state", "terminated"), _get(c, "lastState", "terminated")) if isinstance(t, dict)]
    if not ended:
        return ""
    _, name, done = max(ended, key=lambda e: e[0])
    text = f"{done.get('reason') or 'Error'} (exit {done.get('exitCode')})"
    return f"{name}: {text}" if len(_containers(pod)) > 1 else text


def _most_restarted(pods: list[dict]) -> dict | None:
    """The pod whose logs say most: crash-looping first, then most restarts."""
    if not pods:
        return None
    return max(pods, key=lambda p: ("CrashLoopBackOff" in _problems(p), _restarts(p)))


def _conditions_section(obj: dict, now: datetime, with_message: bool) -> tuple[Section, ...]:
    """A StatefulSet may have none: then no section at all."""
    columns = ("type", "status", "reason") + (("message",) if with_message else ()) + ("since",)
    rows = tuple((str(c.get("type")), str(c.get("status")), str(c.get("reason") or ""))
                 + ((_truncate(str(c.get("message") or "")),) if with_message else ())
                 + (_age(now, _stamp(c.get("lastTransitionTime"))),)
                 for c in _get(obj, "status", "conditions") or () if isinstance(c, dict))
    return (Section("Conditions", columns, rows),) if rows else ()


def _events_section(events: list[dict], now: datetime) -> Section:
    if not events:
        return Section("Events", text="no events (the API server keeps them for about an hour)")
    rows = tuple((_age(now, _last_seen(e)), str(e.get("type") or ""), str(e.get("reason") or ""),
                  str(e.get("count") or _get(e, "series", "count") or 1), _truncate(str(e.get("message") or "")))
                 for e in events[:MAX_EVENTS])
    return Section(f"Events ({len(events)})", EVENT_COLUMNS, rows)


def _history_section(deployment: dict, history: list[dict], now: datetime) -> Section:
    name, current = _name(deployment), _current_revision(deployment, history)
    newest = list(reversed(history))
    rows = tuple((f"{_revision(rs)}" + (" (current)" if _revision(rs) == current else ""),
                  _age(now, _stamp(_get(rs, "metadata", "creationTimestamp"))),
                  _images(_get(rs, "spec", "template")),
                  str(_get(rs, "metadata", "annotations", CHANGE_CAUSE) or ""), _rs_pods(rs)) for rs in newest)
    return Section("Rollout history", ("revision", "created", "image", "change-cause", "pods"), rows,
                   drill=tuple(f"deployment/{name}/revision/{_revision(rs)}" for rs in newest))


# ---- describe text ----------------------------------------------------------------------

def _fields(pairs: Iterable[tuple[str, Any]], indent: int = 0) -> list[str]:
    pairs = list(pairs)
    width = max((len(k) for k, _ in pairs), default=0) + 2
    return [f"{' ' * indent}{(key + ':').ljust(width)}{value if value not in (None, '') else '<none>'}"
            for key, value in pairs]


def _table_lines(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    if not rows:
        return [f"{title}:  <none>"]
    widths = [max(len(str(r[i])) for r in [columns, *rows]) for i in range(len(columns))]
    return [f"{title}:"] + ["  " + "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()
                            for row in [columns, *rows]]


def _event_lines(events: list[dict], now: datetime) -> list[str]:
    return _table_lines("Events", ("Type", "Reason", "Age", "Count", "Message"), [
        (str(e.get("type") or ""), str(e.get("reason") or ""), _age(now, _last_seen(e)),
         str(e.get("count") or 1), _truncate(str(e.get("message") or ""))) for e in events[:MAX_EVENTS]])


# ---- small readings of the JSON ----------------------------------------------------------

def _name(obj: Any) -> str:
    return str(_get(obj, "metadata", "name"))


def _namespace(obj: Any) -> str:
    return str(_get(obj, "metadata", "namespace") or "")


def _desired(workload: dict) -> int:
    desired = _get(workload, "spec", "replicas")
    return 1 if desired is None else int(desired)  # the API's default


def _revision(rs: dict) -> int:
    text = str(_get(rs, "metadata", "annotations", REVISION) or "")
    return int(text) if text.isascii() and text.isdigit() else 0


def _current_revision(deployment: dict, history: list[dict]) -> int:
    own = _revision(deployment)  # the Deployment carries the same annotation
    return own or max((_revision(rs) for rs in history), default=0)


def _selector(workload: dict) -> str:
    labels = _get(workload, "spec", "selector", "matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in labels.items())


def _images(template: Any) -> str:
    return ", ".join(f"{c.get('name')}={c.get('image')}" for c in _get(template, "spec", "containers") or ()
                     if isinstance(c, dict)) or "<none>"


def _strategy(kind: str, spec: dict) -> str:
    strategy = spec.get("strategy" if kind == "deployment" else "updateStrategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    detail = ", ".join(f"{k} {v}" for k, v in rolling.items())
    return f"{strategy.get('type') or 'RollingUpdate'}" + (f" ({detail})" if detail else "")


def _controller(obj: dict) -> str:
    for ref in _get(obj, "metadata", "ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return ""


def _rs_pods(rs: dict) -> str:
    return f"{_get(rs, 'status', 'readyReplicas') or 0}/{_get(rs, 'spec', 'replicas') or 0}"


def _rs_summary(rs: dict) -> str:
    return f"{_name(rs)} ({_get(rs, 'status', 'replicas') or 0}/{_get(rs, 'spec', 'replicas') or 0} replicas created)"


def _pairs(mapping: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items()) if isinstance(mapping, dict) else ""


def _when(stamp: Any, now: datetime) -> str:
    at = _stamp(stamp)
    return f"{stamp} ({_age(now, at)} ago)" if at is not None else ""


def _api_message(exc: Any) -> str:
    import json

    try:
        message = json.loads(exc.body or "").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or exc.reason or f"HTTP {exc.status}")


def _bounded_text(response: Any) -> tuple[str, bool]:
    """At most LOG_BYTES and LOG_LINES, even from a server that ignores the
    limits; configured secrets redacted *before* either cut, so that none is
    shown in part. The server sends one line and LOG_SLACK bytes more than
    are shown: a secret the line cut or the byte cut falls inside is whole
    in what was read, masked, and then cut away."""
    data = b""
    try:
        data = response.read(LOG_BYTES + LOG_SLACK + 1)
    finally:
        if len(data) > LOG_BYTES + LOG_SLACK:
            response.close()  # unread bytes would poison a pooled connection
        response.release_conn()
    cut = len(data) >= LOG_BYTES
    text = data.decode("utf-8", "replace")
    # As many characters as the first LOG_BYTES bytes hold (not one the cut splits) ...
    shown = len(codecs.getincrementaldecoder("utf-8")("replace").decode(data[:LOG_BYTES])) if cut else len(text)
    redacted = secrets.redact_cut(text, shown)
    # ... and no more bytes: a mask shorter than its secret lets a character or two more in.
    redacted = redacted.encode("utf-8", "surrogatepass")[:LOG_BYTES].decode("utf-8", "ignore")
    lines = redacted.splitlines(keepends=True)
    return "".join(lines[-LOG_LINES:]), cut
