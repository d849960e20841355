"""What a health check keeps of its answers, and the detail view built from it.

Opening a check's row must cost the service nothing: the check already got
the answer, so it keeps the last one (status, phase timings, headers, the
start of the body) and the outcome of its last :data:`HISTORY` checks, all
bounded, and the detail is built from those. A hung service can be looked at
while it hangs.

Everything kept is text from the monitored service and stays ``str``: the
screen makes it inert. What is masked here is what no by-value redaction can
catch, because no one configured it: the values of headers whose names say
they carry credentials (``Set-Cookie``, ``Authorization``, ``X-Api-Key``).
The kept record never holds those values at all.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from console import secrets
from console.config import redact
from console.drill import Detail, Section
from console.readings import duration, millis, size
from console.vocabulary import Snapshot, utcnow

if TYPE_CHECKING:
    from console.sources.http import Fetched

HISTORY = 20  # checks kept, newest first in the detail
BODY_KEPT = 8 * 1024  # bytes of the last body kept, of the 64 KiB read
BODY_LINES = 20
MAX_HEADERS = 64  # h11 lets a header block grow to 100 KB; a detail needs far less
HEADER_KEPT = 1024  # characters of one header value
# Challenges name a scheme and a realm, never a credential: masking them
# would hide why a 401 happened.
CHALLENGES = {"www-authenticate", "proxy-authenticate"}
# Headers holding a URL, whose query may carry a token.
URL_HEADERS = {"location", "content-location", "refresh", "link"}


# ---- timing the phases of a request -------------------------------------------

# Each phase runs from one httpcore trace event to another; the HTTP/1.1 and
# HTTP/2 event names differ only in their prefix, which is dropped.
PHASES = (
    ("connect (DNS included)", "connect_tcp.started", "connect_tcp.complete"),
    ("TLS handshake", "start_tls.started", "start_tls.complete"),
    ("first byte (request sent → headers)", "send_request_headers.started", "receive_response_headers.complete"),
)


class Stopwatch:
    """httpcore's ``trace`` extension: how long each phase took, summed over
    the redirects of one fetch. A kept-alive connection has no connect phase."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._since: dict[str, float] = {}
        self.spent: dict[str, float] = {}  # phase -> seconds

    def extensions(self) -> dict[str, Any]:
        return {"trace": self}

    async def __call__(self, event: str, info: dict) -> None:
        _, _, name = event.partition(".")  # "http11.send_request_headers.started"
        now = self.clock()
        for phase, start, end in PHASES:
            if name == start:
                self._since[phase] = now
            elif name == end and phase in self._since:
                self.spent[phase] = self.spent.get(phase, 0.0) + now - self._since.pop(phase)

    def phases_ms(self) -> tuple[tuple[str, float], ...]:
        return tuple((phase, self.spent[phase] * 1000) for phase, _, _ in PHASES if phase in self.spent)


@dataclass(frozen=True)
class Observed:
    """What a detail view shows of an answer beyond its status and body."""

    http_version: str = ""
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()  # as received, at most MAX_HEADERS
    phases_ms: tuple[tuple[str, float], ...] = ()
    redirects: int = 0


def observed(response: Any, stopwatch: Stopwatch, redirects: int) -> Observed:
    """The headers (bounded) and timings of an httpx response."""
    # The raw pairs keep the names' case as sent (``Set-Cookie``), decoded as httpx would.
    encoding = response.headers.encoding
    headers = tuple((name.decode(encoding, "replace"), _cut(value.decode(encoding, "replace"), HEADER_KEPT))
                    for name, value in response.headers.raw[:MAX_HEADERS])
    return Observed(str(response.http_version), str(response.reason_phrase), headers, stopwatch.phases_ms(),
                    redirects)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- masking what names itself a credential -----------------------------------

def shown_header(name: str, value: str) -> str:
    """A response header's value as a detail may keep it."""
    lowered = name.lower()
    if lowered in URL_HEADERS:
        return redact(value)
    if lowered in CHALLENGES or not secrets.SECRET_NAME.search(name):
        return value
    if lowered == "set-cookie":
        return _masked_cookie(value)
    return secrets.MASK


def _masked_cookie(value: str) -> str:
    """``sid=***; Path=/; HttpOnly``: which cookie, and its attributes, not its value."""
    first, sep, attributes = value.partition(";")
    name, eq, _ = first.partition("=")
    return f"{name.strip()}={secrets.MASK}" + (sep + attributes if sep else "") if eq else secrets.MASK


# ---- what a check keeps --------------------------------------------------------

@dataclass(frozen=True)
class LastResponse:
    at: datetime
    url: str  # redacted
    status: int
    latency_ms: float
    body: str  # the first BODY_KEPT bytes, decoded
    body_bytes: int  # read; at most the fetch's max_bytes
    body_cut: bool  # the service sent more than was read
    observed: Observed
    redirect_error: str | None = None


@dataclass(frozen=True)
class CheckResult:
    at: datetime
    status: int | None
    latency_ms: float | None
    error: str | None


class CheckRecord:
    """The last answer of one check and its last :data:`HISTORY` outcomes."""

    def __init__(self, history: int = HISTORY, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock
        self.last: LastResponse | None = None
        self.results: deque[CheckResult] = deque(maxlen=history)  # bounded: a long incident costs no memory

    def answered(self, got: Fetched, url: str) -> None:
        seen = got.observed or Observed()
        headers = tuple((name, shown_header(name, value)) for name, value in seen.headers)
        self.last = LastResponse(
            at=self.clock(), url=url, status=got.status, latency_ms=got.latency_ms,
            # Cut where no piece of a secret is left: a token echoed across the cut showed its head.
            body=secrets.redact_cut(got.text(limit=BODY_KEPT * 2), BODY_KEPT), body_bytes=len(got.body),
            body_cut=got.truncated,
            observed=replace(seen, headers=headers),
            redirect_error=got.redirect_error)

    def checked(self, snap: Snapshot) -> None:
        self.results.append(CheckResult(snap.taken_at, snap.metrics.get("status_code"),
                                        snap.metrics.get("latency_ms"), snap.error))

    def detail(self, name: str) -> Detail:
        history = _history_section(self.results)
        if self.last is None:
            return Detail(title=f"http check {name}: no response yet",
                          sections=(Section("Last response", text=self._why_none()), history))
        last = self.last
        return Detail(title=f"http check {name}: HTTP {last.status}",
                      sections=(_response_section(last, self._since(last), self.clock()), _timings_section(last),
                                _headers_section(last), _body_section(last), history))

    def _why_none(self) -> str:
        if not self.results:
            return "no response received yet: the first check has not finished"
        latest = self.results[-1]
        return (f"no response received yet: all {len(self.results)} checks so far got no answer "
                f"(last at {_clock_time(latest.at)}: {latest.error or 'no answer'})")

    def _since(self, last: LastResponse) -> str:
        """The checks that failed after the shown response, if any: it is older than it looks."""
        failed = [r for r in self.results if r.at > last.at and r.status is None]
        if not failed:
            return ""
        return (f"{len(failed)} later check(s) got no answer; the last at {_clock_time(failed[-1].at)}: "
                f"{failed[-1].error or 'no answer'}")


# ---- the sections ----------------------------------------------------------------

FIELD_VALUE = ("Field", "Value")


def _clock_time(at: datetime) -> str:
    return at.strftime("%H:%M:%S UTC")


def _response_section(last: LastResponse, since: str, now: datetime) -> Section:
    seen = last.observed
    status = " ".join(p for p in (str(last.status), seen.reason, f"({seen.http_version})" if seen.http_version
                                  else "") if p)
    age = (now - last.at).total_seconds()
    rows = [("URL", last.url), ("Status", status),
            ("Received", f"{_clock_time(last.at)} ({duration(max(age, 0.0))} ago)")]
    if seen.redirects:
        rows.append(("Redirects", f"{seen.redirects} followed"))
    if last.redirect_error:
        rows.append(("Redirects", last.redirect_error))
    body = size(last.body_bytes) + (" read, the rest not read" if last.body_cut else "")
    rows.append(("Body", body))
    return Section("Last response", FIELD_VALUE, tuple(rows), text=since)


def _timings_section(last: LastResponse) -> Section:
    phases = dict(last.observed.phases_ms)
    rows = [(phase, millis(ms)) for phase, ms in phases.items()]
    if not any(phase.startswith("connect") for phase in phases):
        rows.insert(0, ("connect", "– (a kept-alive connection was reused)"))
    rows.append(("total" + (" (redirects included)" if last.observed.redirects else ""), millis(last.latency_ms)))
    return Section("Timings", ("Phase", "Time"), tuple(rows))


def _headers_section(last: LastResponse) -> Section:
    headers = last.observed.headers
    note = f"only the first {MAX_HEADERS} headers were kept" if len(headers) >= MAX_HEADERS else ""
    return Section("Response headers", ("Header", "Value"), headers, text=note)


def _body_section(last: LastResponse) -> Section:
    lines = last.body.removesuffix("\n").split("\n")  # a final newline ends a line, it starts none
    shown = "\n".join(line.removesuffix("\r") for line in lines[:BODY_LINES])
    more = len(lines) > BODY_LINES or last.body_bytes > BODY_KEPT or last.body_cut
    title = f"Body (first {BODY_LINES} lines)" if more else "Body"
    return Section(title, text=shown if shown else "(empty body)")


def _history_section(results: deque[CheckResult]) -> Section:
    rows = tuple((_clock_time(r.at), "–" if r.status is None else str(r.status), millis(r.latency_ms),
                  r.error or "") for r in reversed(results))
    return Section(f"Last {len(rows)} checks, newest first" if rows else "History",
                   ("Time", "Status", "Latency", "Error"), rows, text="" if rows else "no check has finished yet")
