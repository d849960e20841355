"""HTTP health checks, and the bounded GET every HTTP-speaking source uses.

A health check is one GET with a hard deadline: a hung endpoint costs its own
timeout and nothing more, a 50 MB body costs 64 KiB, a redirect loop is named
as such. ``poll_all`` runs every check at once, so a slow endpoint never delays
the others.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import ssl
import time
from dataclasses import dataclass
from typing import Iterable, Mapping
from urllib.parse import urlsplit

import httpx

from console import secrets
from console.capabilities import Drilling, HttpProbing, Source
from console.config import ServiceTarget, redact
from console.drill import Detail, NoSuchRow
from console.sources.base import Snapshot, State, bounded_poll, describe_error, first_leaf, one_line, utcnow
from console.sources.http_detail import CheckRecord, Observed, Stopwatch, observed

MAX_BODY = 64 * 1024
MAX_REDIRECTS = 5
BODY_SHOWN = 200  # characters of an unexpected answer kept for the pane
# ``source.timeout`` (the deadline bounded_poll puts on a whole poll) sits a
# little past the request's own, so that the request's deadline fires first and
# the snapshot says "timed out after 2s" in the source's own terms.
GRACE = 0.05


def poll_deadline(timeout: float) -> float:
    return timeout * (1 + GRACE)
# Health endpoints have no use for compression, and an uncompressed body is
# one whose size we bound by counting bytes (a gzip bomb would not be).
_DEFAULT_HEADERS = {"Accept-Encoding": "identity", "User-Agent": "incident-console"}


class FetchError(Exception):
    """Why a GET got no usable answer: one line, free of passwords."""


@dataclass(frozen=True)
class Fetched:
    status: int
    body: bytes  # at most max_bytes of it
    truncated: bool
    latency_ms: float
    charset: str | None
    redirect_error: str | None = None  # set when redirects went nowhere
    observed: Observed | None = None  # headers and timings, when asked for

    def text(self, limit: int | None = None) -> str:
        """The body (its first ``limit`` bytes) as text; bytes that are not
        of its charset become U+FFFD rather than an error."""
        body = self.body if limit is None else self.body[:limit]
        try:
            return body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:  # the server named a charset Python does not know
            return body.decode("utf-8", errors="replace")


@functools.cache
def _tls(ca_file: str | None = None) -> ssl.SSLContext:
    # Loading the CA bundle takes ~50 ms of blocked event loop; do it once,
    # not once per client.
    if ca_file is None:
        return httpx.create_ssl_context()
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = _ssl_reason(exc) if isinstance(exc, ssl.SSLError) else _reason(exc)
        raise FetchError(f"cannot use ca_file {ca_file}: {reason}") from None


def new_client(verify: bool = True, ca_file: str | None = None) -> httpx.AsyncClient:
    """A client for one service's TLS settings (``verify: false`` or ``ca_file``);
    raises :class:`FetchError` for a CA file that cannot be read."""
    # No connection limit: with a cap, hung endpoints would hold every slot
    # and healthy checks would queue behind them.
    return httpx.AsyncClient(limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
                             follow_redirects=False, verify=_tls(ca_file) if verify else False)


async def fetch(client: httpx.AsyncClient, url: str, *, timeout: float,
                headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
                max_bytes: int = MAX_BODY, max_redirects: int = MAX_REDIRECTS, observe: bool = False) -> Fetched:
    """GET ``url`` within ``timeout`` seconds in all, reading at most ``max_bytes``;
    with ``observe``, the answer's headers and phase timings are kept too.

    Raises :class:`FetchError` when there is no HTTP answer at all.
    """
    sent = dict(_DEFAULT_HEADERS)
    sent.update(dict(headers))
    try:
        # httpx's own timeout is per read; the outer deadline also stops a
        # server that trickles one byte a second.
        async with asyncio.timeout(timeout):
            return await _follow(client, url, sent, timeout, max_bytes, max_redirects,
                                 Stopwatch() if observe else None)
    except (TimeoutError, httpx.TimeoutException):
        raise FetchError(f"timed out after {timeout:g}s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchError(_scrub(_describe(exc, url), url)) from None
    except ExceptionGroup as group:
        # anyio's connect runs in a task group: a socket error (a port past
        # 65535) comes out wrapped. The one inside says what went wrong.
        inner = first_leaf(group)
        if isinstance(inner, (TimeoutError, httpx.TimeoutException)):
            raise FetchError(f"timed out after {timeout:g}s") from None
        raise FetchError(_scrub(f"cannot connect to {_host_port(url)}: {describe_error(inner)}", url)) from None
    except (OSError, ValueError) as exc:  # e.g. a URL httpx cannot even parse
        raise FetchError(_scrub(describe_error(exc), url)) from None


async def _follow(client: httpx.AsyncClient, url: str, headers: dict[str, str], timeout: float,
                  max_bytes: int, max_redirects: int, stopwatch: Stopwatch | None = None) -> Fetched:
    started = time.monotonic()
    # httpx carries a request's extensions (the stopwatch) over to its redirects.
    traced = stopwatch.extensions() if stopwatch is not None else None
    request = client.build_request("GET", url, headers=headers, timeout=timeout, extensions=traced)
    home = _origin(request.url)
    visited = [str(request.url)]
    while True:
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            problem = _redirect_problem(response, visited, max_redirects)
            if response.next_request is not None and problem is None:
                # Configured headers (an X-Api-Key, a token) go only to the
                # configured origin. httpx drops Authorization on a cross-origin
                # redirect but keeps every other header, so the request is
                # rebuilt with only the harmless defaults (and they stay
                # off for the rest of the chain).
                request = response.next_request
                if _origin(request.url) != home:
                    request = client.build_request("GET", request.url, headers=_DEFAULT_HEADERS,
                                                   timeout=timeout, extensions=traced)
                visited.append(str(request.url))
                continue
            body, truncated = await _read_bounded(response, max_bytes)
            seen = None if stopwatch is None else observed(response, stopwatch, len(visited) - 1)
            return Fetched(response.status_code, body, truncated,
                           (time.monotonic() - started) * 1000, response.charset_encoding, problem, seen)
        finally:
            await response.aclose()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port, the default port spelled out: what a browser
    calls the origin, and the only place configured headers may go."""
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _redirect_problem(response: httpx.Response, visited: list[str], max_redirects: int) -> str | None:
    nxt = response.next_request
    if nxt is None:
        return None
    target = str(nxt.url)
    if target in visited:
        loop = visited[visited.index(target):] + [target]
        return "redirect loop: " + " → ".join(_short_url(u) for u in loop)
    if len(visited) > max_redirects:
        return f"more than {max_redirects} redirects (last to {redact(target)})"
    return None


def _short_url(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


async def _read_bounded(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """At most ``max_bytes`` of the body; the rest is never read."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= max_bytes:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False


TLS_HINT = "set `verify: false` or `ca_file: PATH` for this service"


def _describe(exc: httpx.HTTPError | httpx.InvalidURL, url: str) -> str:
    where = _host_port(url)
    tls = _tls_problem(exc, where)
    if tls is not None:
        return tls
    reason = _reason(exc)
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {where}: {reason}"
    if isinstance(exc, (httpx.ReadError, httpx.WriteError)):
        return f"connection to {where} broken: {reason}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"bad HTTP answer from {where}: {reason}"
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return f"bad URL {redact(url)}: {reason}"
    return f"{type(exc).__name__} from {where}: {reason}"


def _causes(exc: BaseException):
    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            return
        yield cause
        cause = cause.__cause__ or cause.__context__


def _tls_problem(exc: BaseException, where: str) -> str | None:
    """A certificate or TLS handshake failure, in those words.

    ``ssl.SSLCertVerificationError`` is an OSError with errno 1, which read as
    an OS error says "Operation not permitted".
    """
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            what = cause.verify_message or cause.reason or "not trusted"
            return f"certificate problem with {where}: {what}; {TLS_HINT}"
        if isinstance(cause, ssl.SSLError):
            what = _ssl_reason(cause)
            hint = " (is it plain HTTP? then use an http:// URL)" if "WRONG_VERSION" in str(cause) else ""
            return f"TLS handshake with {where} failed: {what}{hint}"
    return None


def _ssl_reason(exc: ssl.SSLError) -> str:
    # "[X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found (_ssl.c:4154)"
    text = re.sub(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", one_line(str(exc), 200))
    return text or exc.reason or type(exc).__name__


def _reason(exc: BaseException) -> str:
    """The words that explain it: the OS error under httpx's wrappers if any."""
    # httpx says "All connection attempts failed" or nothing at all; the
    # errno underneath says "Connection refused" or "Connection reset by peer".
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno and not isinstance(cause, ssl.SSLError):
            # Resolver errors carry negative codes that os.strerror does not know.
            return os.strerror(cause.errno) if cause.errno > 0 else str(cause.strerror or cause)
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


def _host_port(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return redact(url)
    host = parts.hostname or "?"
    return f"{host}:{port}" if port else host


def _scrub(text: str, url: str) -> str:
    """``text`` with the URL's password masked wherever it shows up."""
    text = text.replace(url, redact(url))
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    if password:
        text = text.replace(f":{password}@", ":***@")
    return text


def _expected(codes: tuple[int, ...]) -> str:
    return " or ".join(str(c) for c in codes)


class HttpSource:
    """A source speaking HTTP: one client, made on first use unless shared.

    A shared client is the caller's to close; one made here is closed here.
    """

    def __init__(self, client: httpx.AsyncClient | None, verify: bool = True, ca_file: str | None = None) -> None:
        self._client = client
        self._own_client = client is None
        self._tls_settings = (verify, ca_file)

    def client(self) -> httpx.AsyncClient:
        """Raises :class:`FetchError` when the service's ca_file cannot be used."""
        if self._client is None:
            self._client = new_client(*self._tls_settings)
        return self._client

    def forget(self) -> None:
        # Nothing to drop: httpcore discards a connection whose request was
        # cancelled, and every poll is a fresh request.
        pass

    async def close(self) -> None:
        if self._own_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


class HealthCheck(HttpSource, Source, HttpProbing, Drilling):
    """One service's health endpoint: status, latency, and what it said when wrong.

    It keeps its last answer and its last few outcomes (bounded), so that its
    row's detail costs the service no request at all.
    """

    kind = "http"

    def __init__(self, target: ServiceTarget, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(client, target.verify, target.ca_file)
        self.service = target  # HttpProbing: a probe's path is resolved against its URL
        self.name = target.name
        self.timeout = poll_deadline(target.timeout)
        self.record = CheckRecord()

    async def poll(self) -> Snapshot:
        try:
            got = await fetch(self.client(), self.service.url, timeout=self.service.timeout,
                              headers=self.service.headers, observe=True)
        except FetchError as exc:
            return self.unanswered(str(exc))
        self.record.answered(got, redact(self.service.url))
        return self._judge(got)

    async def drill(self, row: str) -> Detail:
        """The last answer and the last checks, from memory: no request is made."""
        if row != "check":
            raise NoSuchRow(f"http check {self.name!r} has no row {row!r}")
        return self.record.detail(self.name)

    def unanswered(self, error: str) -> Snapshot:
        return self._snapshot(State.UNREACHABLE, error)

    def _judge(self, got: Fetched) -> Snapshot:
        metrics = {"status_code": got.status, "latency_ms": round(got.latency_ms, 1)}
        if got.redirect_error is not None:
            return self._snapshot(State.CRITICAL, got.redirect_error, metrics, got)
        if got.status not in self.service.expect_status:
            error = f"HTTP {got.status} (expected {_expected(self.service.expect_status)})"
            details = {"body": secrets.redact_cut(got.text(), BODY_SHOWN)}  # no piece of a cut secret
            return self._snapshot(State.CRITICAL, error, metrics, got, details)
        return self._snapshot(State.OK, None, metrics, got)

    def _snapshot(self, state: State, error: str | None, metrics: dict | None = None,
                  got: Fetched | None = None, details: dict | None = None) -> Snapshot:
        snap = Snapshot(
            kind=self.kind, name=self.name, state=state, taken_at=utcnow(), error=error,
            latency_ms=None if got is None else got.latency_ms,
            metrics=metrics or {"status_code": None, "latency_ms": None},
            details={"url": redact(self.service.url), **(details or {})},
        )
        self.record.checked(snap)  # every outcome the check itself reports, answered or not
        return snap



async def poll_all(checks: Iterable[HealthCheck]) -> list[Snapshot]:
    """Every check at once; each bounded by its own timeout, in the given order."""
    return list(await asyncio.gather(*(_bounded(c) for c in checks)))


async def _bounded(check: HealthCheck) -> Snapshot:
    snap = await bounded_poll(check)
    if snap.metrics:
        return snap
    # bounded_poll's backstop fired (the event loop was busy as the check
    # started, so the check's own clock started late): say it in its terms.
    error = snap.error or "no answer"
    if error.startswith("timed out after"):
        error = f"timed out after {check.service.timeout:g}s"
    return check.unanswered(error)
