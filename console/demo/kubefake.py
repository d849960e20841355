"""A stand-in Kubernetes API server on loopback, answering recorded responses.

There is no API server on the machines that run the tests or the demo, so the
real ``kubernetes`` client is pointed (through a kubeconfig written by
:meth:`KubeFake.write_kubeconfig`) at this small threaded ``http.server``. It
serves namespaced List objects, honouring ``limit`` and simple
``fieldSelector`` and ``labelSelector`` equality, and pods' logs (``tailLines``,
``limitBytes``, ``previous``, ``container``, as text). It can be switched into
the faults an on-call engineer meets: 401, 403, 500, a slow server and a
truncated body. It also changes its state as the API would: PATCHes of one
object or its ``scale`` subresource (merge and strategic merge, as ``scale``
and ``rollout restart`` send, and JSON patch, as ``rollout undo`` sends) and
DELETE of one object. Every request is recorded so that tests can check
exactly what a console action asked for.

Responses come from a directory of ``<resource>.json`` List files (the
resource as in the URL: ``deployments``, ``pods``, ``events``) or from a dict
of the same shape; items are served to the namespace in their metadata.
``logs.json`` is not a resource: it holds the recorded output of containers
(``items`` of namespace, pod, container, previous, lines).
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

# The moment the responses in tests/k8s/ were recorded: tests freeze their
# clock here; ``live=True`` moves every timestamp so that this moment is now.
RECORDED_AT = datetime(2026, 11, 22, 10, 0, 0, tzinfo=timezone.utc)

FAULTS = ("401", "403", "500", "slow", "truncated")
TOKEN = "fake-token-for-tests"

_ROUTE = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<resource>[^/]+)$")
_OBJECT = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<resource>[^/]+)"
                     r"/(?P<name>[^/]+)(?:/(?P<sub>scale))?$")
_LOG = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log$")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@dataclass(frozen=True)
class Request:
    """One request as the fake saw it, so tests can check what the client sent."""

    path: str
    query: Mapping[str, str]
    authorization: str | None
    method: str = "GET"
    body: Any = None  # a PATCH's (or DELETE's) JSON body, parsed
    content_type: str | None = None


class KubeFake:
    def __init__(self, responses: str | Path | Mapping[str, Any], port: int = 0, live: bool = False) -> None:
        self.responses: dict[str, Any] = load_responses(responses)
        # Containers' output is not a List the API serves: kept apart.
        self.logs: list[dict[str, Any]] = list(self.responses.pop("logs", {}).get("items", []))
        self.port = port
        self.live = live
        self.requests: list[Request] = []
        self._fault: str | None = None
        self._delay = 0.0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()

    # ---- lifecycle -----------------------------------------------------
    def start(self) -> "KubeFake":
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        # A short poll interval: stop() waits up to one interval for the loop.
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="kubefake", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in the "slow" fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        # Kept-alive connections outlive the listener; a stopped server must
        # look down to clients that already hold one.
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "KubeFake":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- faults --------------------------------------------------------
    def set_fault(self, fault: str | None, delay: float = 10.0) -> None:
        """Answer every request with ``fault`` from now on; None heals."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self._fault, self._delay = fault, delay

    def write_kubeconfig(self, path: str | Path, context: str = "test", namespace: str = "default") -> Path:
        """A kubeconfig whose ``context`` talks to this server with a bearer token."""
        path = Path(path)
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "kubefake", "cluster": {"server": self.url}}],
            "users": [{"name": "kubefake-user", "user": {"token": TOKEN}}],
            "contexts": [{"name": context,
                          "context": {"cluster": "kubefake", "user": "kubefake-user", "namespace": namespace}}],
            "current-context": context,
        }
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")  # JSON is valid YAML
        return path

    # ---- answers -------------------------------------------------------
    def answer(self, path: str, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one GET, before any fault is applied."""
        match = _ROUTE.match(path)
        if match is None or match["resource"] not in self.responses:
            return 404, _status(404, "NotFound", f"the server could not find the requested resource ({path})")
        listing = copy.deepcopy(self.responses[match["resource"]])
        items = [i for i in listing.get("items", [])
                 if _in_namespace(i, match["ns"]) and _selected(i, query) and _labelled(i, query)]
        limit = int(query.get("limit", "0") or 0)
        listing.setdefault("metadata", {})
        if 0 < limit < len(items):
            listing["metadata"]["continue"] = "kubefake-continue-token"
            listing["metadata"]["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        listing["items"] = items
        if self.live:
            listing = _shift_times(listing, datetime.now(timezone.utc) - RECORDED_AT)
        return 200, listing

    def log(self, path: str, query: Mapping[str, str]) -> tuple[int, dict[str, Any] | bytes]:
        """A container's recorded output, cut as the API cuts it: the last
        ``tailLines`` lines, then the first ``limitBytes`` bytes of those."""
        match = _LOG.match(path)
        pod = self._object("pods", match["ns"], match["name"]) if match else None
        if match is None or pod is None:
            return 404, _status(404, "NotFound", f'pods "{match["name"] if match else path}" not found')
        names = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or ()]
        container = query.get("container") or (names[0] if len(names) == 1 else None)
        if container is None:
            return 400, _status(400, "BadRequest", f"a container name must be specified for pod {match['name']}, "
                                                   f"choose one of: [{' '.join(names)}]")
        if container not in names:
            return 400, _status(400, "BadRequest", f"container {container} is not valid for pod {match['name']}")
        if not (pod.get("spec") or {}).get("nodeName"):
            return 400, _status(400, "BadRequest", f"pod {match['name']} does not have a host assigned")
        previous = query.get("previous", "").lower() == "true"
        status = next((c for c in (pod.get("status") or {}).get("containerStatuses") or ()
                       if c.get("name") == container), {})
        if not previous and "waiting" in (status.get("state") or {}):
            # As the kubelet: a container waiting to restart has no output of
            # its own; its last run's is what it shows.
            if "terminated" not in (status.get("lastState") or {}):
                reason = status["state"]["waiting"].get("reason", "")
                return 400, _status(400, "BadRequest", f'container "{container}" in pod "{match["name"]}" '
                                                       f"is waiting to start: {reason}")
            previous = True
        recorded = next((r for r in self.logs if (r.get("namespace"), r.get("pod"), r.get("container"),
                                                   bool(r.get("previous"))) == (match["ns"], match["name"],
                                                                               container, previous)), None)
        if previous and recorded is None:
            return 400, _status(400, "BadRequest",
                                f'previous terminated container "{container}" in pod "{match["name"]}" not found')
        lines = list((recorded or {}).get("lines", ()))
        if query.get("tailLines"):
            lines = lines[-int(query["tailLines"]):] if int(query["tailLines"]) > 0 else []
        data = "".join(f"{line}\n" for line in lines).encode()
        if query.get("limitBytes"):
            data = data[: int(query["limitBytes"])]
        return 200, data

    def delete(self, path: str) -> tuple[int, dict[str, Any]]:
        """Remove one served object; answer with it, as the API does for a pod."""
        match = _OBJECT.match(path)
        found = self._object(match["resource"], match["ns"], match["name"]) if match and not match["sub"] else None
        if found is None:
            return 404, _status(404, "NotFound", f"the server could not find the requested resource ({path})")
        self.responses[match["resource"]]["items"].remove(found)
        gone = copy.deepcopy(found)
        gone.setdefault("metadata", {})["deletionTimestamp"] = RECORDED_AT.strftime("%Y-%m-%dT%H:%M:%SZ")
        return 200, gone

    def patch(self, path: str, patch: Any, content_type: str | None = None) -> tuple[int, dict[str, Any]]:
        """Apply ``patch`` to one served object (or set its scale); answer as the API does."""
        match = _OBJECT.match(path)
        found = self._object(match["resource"], match["ns"], match["name"]) if match else None
        if found is None or not isinstance(patch, (dict, list)):
            return 404, _status(404, "NotFound", f"the server could not find the requested resource ({path})")
        if (content_type or "").startswith("application/json-patch+json"):
            return self._json_patch(found, patch)
        if not isinstance(patch, dict):
            return 400, _status(400, "BadRequest", "a merge patch must be a JSON object")
        if match["sub"] == "scale":
            replicas = (patch.get("spec") or {}).get("replicas")
            if replicas is not None:
                found.setdefault("spec", {})["replicas"] = replicas
            return 200, _scale(found)
        _merge(found, patch)
        return 200, copy.deepcopy(found)

    def _json_patch(self, found: dict[str, Any], ops: Any) -> tuple[int, dict[str, Any]]:
        """RFC 6902, all or nothing: a failed ``test`` (a changed resourceVersion) changes nothing."""
        patched = copy.deepcopy(found)
        try:
            for op in ops:
                _apply_op(patched, op)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            return 422, _status(422, "Invalid", f"the server rejected our request due to an error in our "
                                                f"request: {exc}")
        found.clear()
        found.update(patched)
        return 200, copy.deepcopy(found)

    def _object(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        listing = self.responses.get(resource) or {}
        return next((i for i in listing.get("items", []) if _in_namespace(i, namespace)
                     and (i.get("metadata") or {}).get("name") == name), None)

    def faulted(self, path: str) -> tuple[int, dict[str, Any]] | None:
        fault = self._fault
        if fault == "401":
            return 401, _status(401, "Unauthorized", "Unauthorized")
        if fault == "403":
            return 403, _status(403, "Forbidden", _forbidden(path))
        if fault == "500":
            return 500, _status(500, "InternalError", "Internal error occurred: etcdserver: request timed out")
        return None


def _handler(fake: KubeFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real client expects
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def setup(self) -> None:
            super().setup()
            fake._connections.add(self.connection)

        def finish(self) -> None:
            fake._connections.discard(self.connection)
            super().finish()

        def do_GET(self) -> None:
            path, query = self._record("GET")
            if fake._fault == "slow" and fake._stopping.wait(fake._delay):
                return
            if _LOG.match(path):
                status, body = fake.faulted(path) or fake.log(path, query)
            else:
                status, body = fake.faulted(path) or fake.answer(path, query)
            text = isinstance(body, bytes)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            if fake._fault == "truncated":
                data = data[: len(data) // 2]  # a proxy cut the body; the length still matches
            self._send(status, data, "text/plain" if text else "application/json")

        def do_PATCH(self) -> None:
            path, _ = self._record("PATCH")
            body, content_type = fake.requests[-1].body, fake.requests[-1].content_type
            status, answer = fake.faulted(path) or fake.patch(path, body, content_type)
            self._send(status, json.dumps(answer).encode())

        def do_DELETE(self) -> None:
            path, _ = self._record("DELETE")
            status, answer = fake.faulted(path) or fake.delete(path)
            self._send(status, json.dumps(answer).encode())

        def _record(self, method: str) -> tuple[str, dict[str, str]]:
            """The request, recorded: its path decoded (a name as the API server reads it), its query."""
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
            fake.requests.append(Request(path, query, self.headers.get("Authorization"), method, body,
                                         self.headers.get("Content-Type") if raw else None))
            return path, query

        def _send(self, status: int, data: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type if status == 200 else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (timeout): nothing to tell it

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests and the demo own the terminal

    return Handler


def load_responses(responses: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Recorded Lists by resource, from a directory of ``<resource>.json`` or a dict (copied)."""
    if isinstance(responses, Mapping):
        return copy.deepcopy(dict(responses))
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(responses).glob("*.json"))}


def _in_namespace(item: Mapping[str, Any], namespace: str) -> bool:
    return (item.get("metadata") or {}).get("namespace") == namespace


def _selected(item: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    """Equality field selectors (``type=Warning,involvedObject.kind=Pod``)."""
    for term in filter(None, query.get("fieldSelector", "").split(",")):
        field, _, want = term.replace("==", "=").partition("=")
        value: Any = item
        for key in field.split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        if str(value) != want:
            return False
    return True


def _labelled(item: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    """Equality label selectors (``app=api,tier!=db``), and a bare key for "has the label"."""
    labels = (item.get("metadata") or {}).get("labels") or {}
    for term in filter(None, query.get("labelSelector", "").split(",")):
        if "!=" in term:
            key, _, want = term.partition("!=")
            if labels.get(key) == want:
                return False
        elif "=" in term:
            key, _, want = term.replace("==", "=").partition("=")
            if labels.get(key) != want:
                return False
        elif term not in labels:
            return False
    return True


def _apply_op(target: Any, op: Mapping[str, Any]) -> None:
    """One JSON patch operation (add, replace, remove, test) on a JSON pointer."""
    keys = [k.replace("~1", "/").replace("~0", "~") for k in str(op["path"]).split("/")[1:]]
    parent = target
    for key in keys[:-1]:
        parent = parent[int(key)] if isinstance(parent, list) else parent[key]
    last = keys[-1]
    if isinstance(parent, list):
        raise ValueError(f"list paths are not imitated: {op['path']}")
    kind = op["op"]
    if kind == "test":
        if parent.get(last) != op.get("value"):
            raise ValueError(f"testing value {op['path']} failed")
    elif kind in ("add", "replace"):
        if kind == "replace" and last not in parent:
            raise KeyError(f"replace of missing {op['path']}")
        parent[last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del parent[last]
    else:
        raise ValueError(f"unsupported op {kind!r}")


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """JSON merge patch (RFC 7386); strategic merge differs only for lists, which we do not patch."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _scale(item: Mapping[str, Any]) -> dict[str, Any]:
    meta = item.get("metadata") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
            "spec": {"replicas": (item.get("spec") or {}).get("replicas")},
            "status": {"replicas": (item.get("status") or {}).get("replicas", 0)}}


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _forbidden(path: str) -> str:
    match = _ROUTE.match(path)
    if match is None:
        return f'forbidden: User "system:serviceaccount:monitoring:incident-console" cannot get path "{path}"'
    group = match["group"] or ""
    resource = match["resource"] + (f".{group}" if group else "")
    return (f'{resource} is forbidden: User "system:serviceaccount:monitoring:incident-console" '
            f'cannot list resource "{match["resource"]}" in API group "{group}" in the namespace "{match["ns"]}"')


def _shift_times(value: Any, delta: timedelta) -> Any:
    if isinstance(value, dict):
        return {k: _shift_times(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift_times(v, delta) for v in value]
    if isinstance(value, str) and _TIMESTAMP.match(value):
        moved = datetime.fromisoformat(value.replace("Z", "+00:00")) + delta
        fraction = "." in value
        return moved.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if fraction else "%Y-%m-%dT%H:%M:%SZ")
    return value
