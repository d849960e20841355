"""A stand-in Kubernetes API server on loopback, answering recorded responses.

There is no API server on the machines that run the tests or the demo, so the
real ``kubernetes`` client is pointed (through a kubeconfig written by
:meth:`KubeFake.write_kubeconfig`) at this small threaded ``http.server``. It
serves namespaced List objects, honouring ``limit`` and simple
``fieldSelector`` equality, and can be switched into the faults an on-call
engineer meets: 401, 403, 500, a slow server and a truncated body. It also
takes PATCHes of one object or its ``scale`` subresource (what ``scale`` and
``rollout restart`` send), merging them into the served object and recording
them so that tests can check exactly what a console action asked for.

Responses come from a directory of ``<resource>.json`` List files (the
resource as in the URL: ``deployments``, ``pods``, ``events``) or from a dict
of the same shape; items are served to the namespace in their metadata.
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
from urllib.parse import parse_qs, urlsplit

# The moment the responses in tests/k8s/ were recorded: tests freeze their
# clock here; ``live=True`` moves every timestamp so that this moment is now.
RECORDED_AT = datetime(2026, 11, 22, 10, 0, 0, tzinfo=timezone.utc)

FAULTS = ("401", "403", "500", "slow", "truncated")
TOKEN = "fake-token-for-tests"

_ROUTE = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<resource>[^/]+)$")
_OBJECT = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<resource>[^/]+)"
                     r"/(?P<name>[^/]+)(?:/(?P<sub>scale))?$")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@dataclass(frozen=True)
class Request:
    """One request as the fake saw it, so tests can check what the client sent."""

    path: str
    query: Mapping[str, str]
    authorization: str | None
    method: str = "GET"
    body: Any = None  # a PATCH's JSON body, parsed
    content_type: str | None = None


class KubeFake:
    def __init__(self, responses: str | Path | Mapping[str, Any], port: int = 0, live: bool = False) -> None:
        self.responses: dict[str, Any] = load_responses(responses)
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
        items = [i for i in listing.get("items", []) if _in_namespace(i, match["ns"]) and _selected(i, query)]
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

    def patch(self, path: str, patch: Any) -> tuple[int, dict[str, Any]]:
        """Merge ``patch`` into one served object (or set its scale); answer as the API does."""
        match = _OBJECT.match(path)
        found = None
        if match is not None and isinstance(patch, dict):
            listing = self.responses.get(match["resource"]) or {}
            found = next((i for i in listing.get("items", []) if _in_namespace(i, match["ns"])
                          and (i.get("metadata") or {}).get("name") == match["name"]), None)
        if found is None:
            return 404, _status(404, "NotFound", f"the server could not find the requested resource ({path})")
        if match["sub"] == "scale":
            replicas = (patch.get("spec") or {}).get("replicas")
            if replicas is not None:
                found.setdefault("spec", {})["replicas"] = replicas
            return 200, _scale(found)
        _merge(found, patch)
        return 200, copy.deepcopy(found)

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
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            fake.requests.append(Request(parts.path, query, self.headers.get("Authorization")))
            if fake._fault == "slow" and fake._stopping.wait(fake._delay):
                return
            status, body = fake.faulted(parts.path) or fake.answer(parts.path, query)
            data = json.dumps(body).encode()
            if fake._fault == "truncated":
                data = data[: len(data) // 2]  # a proxy cut the body; the length still matches
            self._send(status, data)

        def do_PATCH(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            fake.requests.append(Request(parts.path, query, self.headers.get("Authorization"), "PATCH", body,
                                         self.headers.get("Content-Type")))
            status, answer = fake.faulted(parts.path) or fake.patch(parts.path, body)
            self._send(status, json.dumps(answer).encode())

        def _send(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
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
