"""A real HTTP server on 127.0.0.1 that misbehaves on purpose, chosen per path.

    with FaultServer({"/health": Reply(200, "ok"), "/stuck": Hang()}) as server:
        url = server.url("/stuck")

A route is a fault, or a callable ``(path, query) -> fault`` for answers that
depend on the request (a recorded Prometheus API reply per query). Unknown
paths answer 404. Hanging handlers are released when the server stops.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Union
from urllib.parse import parse_qs, urlsplit


class Fault:
    def respond(self, handler: "_Handler") -> None:
        raise NotImplementedError


@dataclass
class Reply(Fault):
    """A normal answer, optionally after a delay."""

    status: int = 200
    body: bytes | str = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0

    def respond(self, handler: "_Handler") -> None:
        if self.delay and handler.server.stopping.wait(self.delay):
            return
        body = self.body.encode() if isinstance(self.body, str) else self.body
        handler.send_response(self.status)
        handler.send_header("Content-Type", self.content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in self.headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)


def json_reply(obj: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(obj), "application/json")


@dataclass
class Hang(Fault):
    """Reads the request and never answers (or stops after the headers)."""

    after_headers: bool = False

    def respond(self, handler: "_Handler") -> None:
        if self.after_headers:
            handler.send_response(200)
            handler.send_header("Content-Length", "1000")
            handler.end_headers()
            handler.wfile.flush()
        handler.server.stopping.wait()
        handler.close_connection = True


@dataclass
class Reset(Fault):
    """Reads the request, then resets the connection (RST, not FIN)."""

    def respond(self, handler: "_Handler") -> None:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True


@dataclass
class Garbage(Fault):
    """Bytes that are not HTTP, then the connection closes."""

    data: bytes = b"\x00\x17garbage \xff\xfe not http\r\n\r\n"

    def respond(self, handler: "_Handler") -> None:
        handler.wfile.write(self.data)
        handler.close_connection = True


@dataclass
class Huge(Fault):
    """A body of ``size`` bytes, written until the client stops reading."""

    size: int = 50 * 1024 * 1024
    status: int = 200
    sent: int = field(default=0, init=False)

    def respond(self, handler: "_Handler") -> None:
        chunk = b"x" * 65536
        handler.send_response(self.status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(self.size))
        handler.end_headers()
        try:
            while self.sent < self.size and not handler.server.stopping.is_set():
                piece = chunk[: self.size - self.sent]
                handler.wfile.write(piece)
                self.sent += len(piece)
        except OSError:  # the client read enough and hung up: the point of the test
            pass
        handler.close_connection = True


@dataclass
class Redirect(Fault):
    location: str = "/"
    status: int = 302

    def respond(self, handler: "_Handler") -> None:
        handler.send_response(self.status)
        handler.send_header("Location", self.location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()


Route = Union[Fault, Callable[[str, Mapping[str, str]], Fault]]


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real services do
    server: "_Server"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle and
        # delayed ACKs add 40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's naming)
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.server.seen.append(Seen(parts.path, query, {k.lower(): v for k, v in self.headers.items()}))
        route = self.server.routes.get(parts.path, Reply(404, "not found"))
        fault = route if isinstance(route, Fault) else route(parts.path, query)
        fault.respond(self)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except OSError:  # the client went away mid-answer; that is what clients do
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # hung handlers are released by ``stopping``, not joined
    request_queue_size = 128  # the default 5 drops SYNs when 20 checks connect at once

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request, client_address) -> None:
        pass  # resets and hang-ups are the faults we asked for


class FaultServer:
    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self._server = _Server(dict(routes or {}))
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"faultserver-{self.port}", daemon=True)

    def url(self, path: str = "/", userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"http://{at}127.0.0.1:{self.port}{path}"

    def route(self, path: str, route: Route) -> None:
        self._server.routes[path] = route

    @property
    def seen(self) -> list[Seen]:
        return self._server.seen

    def start(self) -> "FaultServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FaultServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def refused_url(path: str = "/") -> str:
    """A loopback URL on which nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
