"""Error rates per service: 5xx ratio, request rate and p95 latency.

Two ways to the same three numbers. :class:`PrometheusErrors` asks Prometheus
(three instant queries, run at once). :class:`ScrapedErrors` reads a service's
own ``/metrics`` and computes rates from counter deltas between two scrapes,
for services no Prometheus watches.

A number that cannot be had (no traffic, NaN, +Inf, no series, first scrape)
is ``None`` with a note saying why, never NaN: ``status --json`` must stay JSON.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlencode

import httpx

from console.capabilities import Drilling, HttpProbing, PrometheusEndpoint, PromQuerying, Source
from console.config import PrometheusTarget, ServiceTarget, redact
from console.drill import Detail, NoSuchRow, Section
from console.sources import errors_detail
from console.sources.base import Snapshot, State, one_line, utcnow
from console.sources.errors_detail import STATUS_LABELS, RatioHistory
from console.sources.http import FetchError, Fetched, HttpSource, fetch, poll_deadline

KIND = "errors"
METRICS = ("error_ratio", "request_rate", "p95_latency_s")
DEFAULT_QUERIES = {
    "error_ratio": 'sum(rate(http_requests_total{job="{job}",status=~"5.."}[1m]))'
                   ' / sum(rate(http_requests_total{job="{job}"}[1m]))',
    "request_rate": 'sum(rate(http_requests_total{job="{job}"}[1m]))',
    "p95_latency_s": 'histogram_quantile(0.95, sum by (le) '
                     '(rate(http_request_duration_seconds_bucket{job="{job}"}[1m])))',
}
# A detail's breakdown: the busiest route/code series and the busiest 5xx
# ones (a failing route is rarely the busiest), at most 20. Grouping by
# labels a service lacks costs nothing, so every usual name is listed.
BREAKDOWN_WINDOW = "5m"
_BY = "sum by (route, handler, path, endpoint, code, status)"
BREAKDOWN_QUERY = (
    f'topk(10, {_BY} (rate(http_requests_total{{job="{{job}}"}}[{BREAKDOWN_WINDOW}])))'
    f' or topk(10, {_BY} (rate(http_requests_total{{job="{{job}}",status=~"5.."}}[{BREAKDOWN_WINDOW}])'
    f' or rate(http_requests_total{{job="{{job}}",code=~"5.."}}[{BREAKDOWN_WINDOW}])))'
)
MAX_API_ANSWER = 1024 * 1024  # an aggregated instant query is a few hundred bytes
MAX_EXPOSITION = 16 * 1024 * 1024  # a big Go service exposes a few MB
FIRST_SCRAPE = "first scrape; rates after the next"
# The default queries' rate window: request_rate times this is how many
# requests the error ratio was taken over (a custom query's window may differ;
# then it reads as requests per minute).
PROMETHEUS_WINDOW_S = 60


def _snapshot(name: str, via: str, state: State, values: dict[str, float | None], notes: list[str],
              error: str | None = None, latency_ms: float | None = None) -> Snapshot:
    metrics: dict[str, Any] = {m: values.get(m) for m in METRICS}
    metrics["via"] = via
    details: dict[str, Any] = {"notes": tuple(notes)}
    if values.get("window_requests") is not None:
        # How many requests the ratio is over: a limit judges a ratio only
        # over enough of them (console.thresholds, min_requests), so one 5xx
        # in 17 requests is not a critical outage.
        details["window_requests"] = values["window_requests"]
    if state is not State.UNREACHABLE and all(metrics[m] is None for m in METRICS):
        # Answered, but with not one number: "ok" would be a guess, so the
        # state says unknown. The flag stays for the panes that read it.
        details["no_data"] = True
        state = State.UNKNOWN
    if FIRST_SCRAPE in notes:
        # A baseline only: rates need the next scrape. ``status`` asks again
        # (console.sources.poll_once) rather than report "unknown" for a
        # service that answers.
        details["baseline"] = True
    return Snapshot(kind=KIND, name=name, state=state, taken_at=utcnow(), error=error,
                    latency_ms=latency_ms, metrics=metrics, details=details)


# ---- Prometheus ------------------------------------------------------------

def queries_for(service: ServiceTarget, prometheus: PrometheusTarget) -> dict[str, str]:
    """PromQL per metric, with ``{job}`` replaced (str.format would trip on PromQL's braces)."""
    chosen = dict(DEFAULT_QUERIES)
    chosen.update(dict(prometheus.queries))
    return {name: with_job(chosen[name], service) for name in METRICS}


def with_job(promql: str, service: ServiceTarget) -> str:
    job = service.job or service.name
    quoted = job.replace("\\", "\\\\").replace('"', '\\"')  # it sits inside a "..." label matcher
    return promql.replace("{job}", quoted)


@dataclass(frozen=True)
class Answer:
    """One instant query's outcome: a value, or why there is none."""

    value: float | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None


class PrometheusErrors(HttpSource, Source, PromQuerying, HttpProbing, Drilling):
    kind = KIND

    def __init__(self, service: ServiceTarget, prometheus: PrometheusTarget,
                 client: httpx.AsyncClient | None = None) -> None:
        super().__init__(client)
        self.service = service
        self.prometheus = prometheus
        self.name = service.name
        self.timeout = poll_deadline(prometheus.timeout)
        self.queries = queries_for(service, prometheus)
        self.trend = RatioHistory()

    async def poll(self) -> Snapshot:
        started = time.monotonic()
        answers = dict(zip(self.queries, await asyncio.gather(
            *(self._query(self.client(), promql) for promql in self.queries.values()))))
        latency = (time.monotonic() - started) * 1000
        values = {name: a.value for name, a in answers.items()}
        notes = [f"{name}: {note}" for name, a in answers.items() for note in a.notes]
        failed = {name: a.error for name, a in answers.items() if a.error is not None}
        state = State.UNREACHABLE if len(failed) == len(answers) else State.OK
        if values.get("request_rate") is not None:
            values["window_requests"] = values["request_rate"] * PROMETHEUS_WINDOW_S
        return self.trend.add(_snapshot(self.name, "prometheus", state, values, notes, _combine(failed), latency))

    async def drill(self, row: str) -> Detail:
        """The breakdown by route and code (one query, bounded by the
        Prometheus timeout) and the error ratio's recent history."""
        if row != "service":
            raise NoSuchRow(f"error rates {self.name!r} have no row {row!r}")
        return errors_detail.detail(self.name, "prometheus", await self._breakdown(), self.trend)

    async def _breakdown(self) -> Section:
        try:
            got = await ask(self.client(), self.prometheus, with_job(BREAKDOWN_QUERY, self.service))
        except FetchError as exc:
            return errors_detail.unread_section(str(exc))
        data, warnings, error = read_data(got)
        if error is not None:
            return errors_detail.unread_section(error)
        groups, note = errors_detail.prometheus_groups(data)
        notes = [*warnings, note]
        if "error_ratio" in dict(self.prometheus.queries):
            # The pane's ratio may come from another metric than the one broken down here.
            notes.append("error_ratio is a custom query; this breakdown reads http_requests_total")
        return errors_detail.prometheus_section(groups, "; ".join(n for n in notes if n), BREAKDOWN_WINDOW)

    async def _query(self, client: httpx.AsyncClient, promql: str) -> Answer:
        try:
            got = await ask(client, self.prometheus, promql)
        except FetchError as exc:
            return Answer(error=str(exc))
        return read_answer(got)


async def ask(client: httpx.AsyncClient, prometheus: PrometheusEndpoint, promql: str,
              max_bytes: int = MAX_API_ANSWER) -> Fetched:
    """One instant query (``/api/v1/query``), GET, bounded; raises FetchError without an answer."""
    url = f"{prometheus.url.rstrip('/')}/api/v1/query?{urlencode({'query': promql})}"
    return await fetch(client, url, timeout=prometheus.timeout, max_bytes=max_bytes)



def _combine(failed: dict[str, str]) -> str | None:
    """One error line; said once when every query failed the same way."""
    if not failed:
        return None
    reasons = set(failed.values())
    if len(reasons) == 1 and len(failed) == len(METRICS):
        return reasons.pop()
    return "; ".join(f"{name}: {reason}" for name, reason in failed.items())


def read_answer(got: Fetched) -> Answer:
    """An ``/api/v1/query`` answer -> one value (or the reason for none)."""
    data, warnings, error = read_data(got)
    if error is not None:
        return Answer(error=error)
    answer = _instant_value(data)
    return Answer(answer.value, warnings + answer.notes, answer.error)


def read_data(got: Fetched) -> tuple[dict, tuple[str, ...], str | None]:
    """An ``/api/v1/query`` answer -> its ``data`` and warnings, or the reason there is none."""
    if got.redirect_error:
        return {}, (), got.redirect_error
    if got.truncated:
        return {}, (), f"answer larger than {len(got.body) // 1024} KiB; not read"
    try:
        doc = json.loads(got.body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("status") == "error":
        # Prometheus explains itself: bad_data, timeout, execution, unavailable.
        return {}, (), one_line(f"{doc.get('errorType', 'error')}: {doc.get('error', '')}")
    if got.status != 200:
        return {}, (), f"HTTP {got.status} from Prometheus"
    if not (isinstance(doc, dict) and doc.get("status") == "success" and isinstance(doc.get("data"), dict)):
        return {}, (), "not a Prometheus API answer: " + repr(one_line(got.text(), 60))
    return doc["data"], tuple(one_line(str(w)) for w in doc.get("warnings") or () if w), None


def _instant_value(data: dict) -> Answer:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _sample_value(result)
    if kind != "vector" or not isinstance(result, list):
        return Answer(error=f"expected an instant vector, got {one_line(str(kind), 40)}")
    if not result:
        return Answer(notes=("no data (no series matched)",))
    first = result[0] if isinstance(result[0], dict) else {}
    answer = _sample_value(first.get("value"))
    if len(result) > 1:
        # The defaults aggregate to one series; a custom query might not.
        return Answer(answer.value, answer.notes + (f"{len(result)} series; showing the first",), answer.error)
    return answer


def _sample_value(pair: Any) -> Answer:
    try:
        raw = str(pair[1])
        value = float(raw)
    except (TypeError, ValueError, IndexError, KeyError):
        return Answer(error=f"unexpected sample {one_line(repr(pair), 60)}")
    if math.isnan(value):
        return Answer(notes=("NaN (nothing to divide or rank in the window)",))
    if math.isinf(value):
        return Answer(notes=(f"{raw} (for a quantile: observations above the highest bucket)",))
    return Answer(value)


# ---- direct scrape of /metrics ---------------------------------------------

REQUESTS = "http_requests_total"
BUCKETS = "http_request_duration_seconds_bucket"


# A service with 100k series of other metrics costs a scan for our two names,
# not a parse of everything (prometheus_client's parser: ~2 s of CPU for 100k
# series, holding the GIL, which made healthy endpoints read 1 s slow).
HEAD_CHECKED = 64 * 1024  # parsed in full, to tell an exposition from a login page
MAX_SERIES = 20_000  # of our two metrics; more is a label explosion, not a service


class MalformedExposition(ValueError):
    pass


class TooManySeries(MalformedExposition):
    """Our metrics come in more series than we read: refused, not half-read."""


@dataclass(frozen=True)
class Scrape:
    """Cumulative counts from one scrape, per series, and when it was read."""

    at: float
    requests: dict[tuple, float] = field(default_factory=dict)
    errors: frozenset = frozenset()  # keys of ``requests`` with a 5xx status
    has_status: bool = False
    buckets: dict[tuple, float] = field(default_factory=dict)  # (series, le) -> count


def parse_exposition(text: str, at: float) -> Scrape:
    """The request counter and latency histogram out of a Prometheus text exposition.

    Only the lines of those two metrics are parsed (at most :data:`MAX_SERIES`),
    after a look at how the text starts. When none of them is there, the first :data:`HEAD_CHECKED` bytes are parsed too,
    so that a login page or binary is refused as "malformed" rather than
    read as a service with no traffic; a scrape that found them is one
    (parsing the whole head every second was most of a scrape's CPU).
    """
    if not EXPOSITION_START.match(text):
        raise MalformedExposition(f"malformed metrics exposition: starts with {one_line(text[:40], 40)!r}")
    scrape = _read_samples(_parse("".join(_lines_of(text, name) for name in (REQUESTS, BUCKETS))), at)
    if not scrape.requests and not scrape.buckets:
        _parse(_head(text))
    return scrape


# What an exposition starts with (after blank lines): a comment, or a metric
# name and then its labels or its value. A login page or binary does not.
EXPOSITION_START = re.compile(r"\s*(?:#|[A-Za-z_:][A-Za-z0-9_:]*[{ \t]|$)")


def _head(text: str) -> str:
    if len(text) <= HEAD_CHECKED:
        return text
    return text[: text.rfind("\n", 0, HEAD_CHECKED) + 1]


def _lines_of(text: str, name: str) -> str:
    """Every line of ``text`` holding a sample of ``name``, newline-terminated.

    str.find runs in C at memory speed; only matching lines cost Python time.
    """
    out: list[str] = []
    needle = "\n" + name
    start = 0 if text.startswith(name) else _after(text.find(needle))
    while start != -1:
        after = start + len(name)
        end = text.find("\n", after)
        end = len(text) if end == -1 else end
        if text[after:after + 1] in ("{", " ", "\t"):
            out.append(text[start:end] + "\n")
            if len(out) > MAX_SERIES:
                raise TooManySeries(f"more than {MAX_SERIES} series of {name} in /metrics; not read "
                                    "(a label with too many values?)")
        start = _after(text.find(needle, end))
    return "".join(out)


def _after(newline: int) -> int:
    """The start of the line after the newline at ``newline``; -1 for none."""
    return -1 if newline == -1 else newline + 1


def _parse(text: str) -> list:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        return list(text_string_to_metric_families(text))
    except Exception as exc:  # the parser's errors on hostile input are not all ValueError
        reason = one_line(str(exc), 160) or type(exc).__name__
        raise MalformedExposition(f"malformed metrics exposition: {reason}") from None


def _read_samples(families: list, at: float) -> Scrape:
    requests: dict[tuple, float] = {}
    errors: set[tuple] = set()
    buckets: dict[tuple, float] = {}
    has_status = False
    for family in families:
        for sample in family.samples:
            if not math.isfinite(sample.value) or sample.name not in (REQUESTS, BUCKETS):
                continue
            if sample.name == REQUESTS:
                key = tuple(sorted(sample.labels.items()))
                requests[key] = requests.get(key, 0.0) + sample.value
                status = next((sample.labels[k] for k in STATUS_LABELS if k in sample.labels), None)
                has_status = has_status or status is not None
                if status is not None and status.startswith("5"):
                    errors.add(key)
            else:
                _add_bucket(buckets, sample.labels, sample.value)
    return Scrape(at, requests, frozenset(errors), has_status, buckets)


def _add_bucket(buckets: dict[tuple, float], labels: dict[str, str], value: float) -> None:
    rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
    try:
        le = float(labels.get("le", ""))
    except ValueError:
        raise MalformedExposition(f"malformed metrics exposition: {BUCKETS} with le={labels.get('le')!r}") from None
    buckets[(rest, le)] = value


def _increase(before: dict[tuple, float], now: dict[tuple, float]) -> dict[tuple, float] | None:
    """Per-series increase; None when any counter went backwards (a restart)."""
    out = {}
    for key, value in now.items():
        previous = before.get(key, 0.0)  # a series born since: all its count is new
        if value < previous:
            return None
        out[key] = value - previous
    return out


def rates(before: Scrape | None, now: Scrape) -> tuple[dict[str, float | None], list[str]]:
    if before is None:
        return {}, [FIRST_SCRAPE]
    interval = now.at - before.at
    if interval <= 0:
        return {}, ["no time between scrapes; rates after the next"]
    requests = _increase(before.requests, now.requests)
    buckets = _increase(before.buckets, now.buckets)
    if requests is None or buckets is None:
        return {}, ["counters went backwards (service restarted?); rates after the next scrape"]
    values: dict[str, float | None] = {}
    notes: list[str] = []
    _request_rates(now, requests, interval, values, notes)
    per_le: dict[float, float] = {}
    for (_, le), count in buckets.items():
        per_le[le] = per_le.get(le, 0.0) + count
    if not now.buckets:
        notes.append(f"p95_latency_s: no {BUCKETS.removesuffix('_bucket')} histogram in /metrics")
    else:
        values["p95_latency_s"], note = bucket_quantile(0.95, sorted(per_le.items()))
        if note:
            notes.append(f"p95_latency_s: {note}")
    return values, notes


def _request_rates(now: Scrape, increase: dict[tuple, float], interval: float,
                   values: dict[str, float | None], notes: list[str]) -> None:
    if not now.requests:
        notes.append(f"no {REQUESTS} counter in /metrics")
        return
    total = sum(increase.values())
    values["request_rate"] = total / interval
    values["window_requests"] = total
    if not now.has_status:
        notes.append(f"error_ratio: {REQUESTS} has no status or code label")
    elif total == 0:
        notes.append("error_ratio: no requests between scrapes")
    else:
        values["error_ratio"] = sum(increase.get(k, 0.0) for k in now.errors) / total


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> tuple[float | None, str | None]:
    """Prometheus's histogram_quantile over (upper bound, cumulative count) pairs, sorted.

    Linear interpolation within the bucket holding the rank; in the +Inf
    bucket, the highest finite bound (as Prometheus does).
    """
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return None, "histogram has no +Inf bucket"
    counts = []
    for _, count in buckets:  # float error can make cumulative counts dip; Prometheus evens them
        counts.append(max(count, counts[-1]) if counts else count)
    total = counts[-1]
    if total <= 0:
        return None, "no observations between scrapes"
    rank = q * total
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(buckets) - 1:
        return buckets[-2][0], f"above the highest bucket ({buckets[-2][0]:g}s)"
    upper = buckets[b][0]
    if b == 0 and upper <= 0:
        return upper, None
    lower = buckets[b - 1][0] if b > 0 else 0.0
    below = counts[b - 1] if b > 0 else 0.0
    return lower + (upper - lower) * (rank - below) / (counts[b] - below), None


class ScrapedErrors(HttpSource, Source, HttpProbing, Drilling):
    """Rates from two scrapes of a service's own ``/metrics``, no Prometheus needed."""

    kind = KIND

    def __init__(self, service: ServiceTarget, client: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not service.metrics:
            raise ValueError(f"service {service.name!r} has no metrics URL to scrape")
        super().__init__(client, service.verify, service.ca_file)
        self.service = service
        self.name = service.name
        self.timeout = poll_deadline(service.timeout)
        self.clock = clock
        self._url = service.metrics
        self._last: Scrape | None = None  # the baseline; kept across failed scrapes
        # The scrape before it, for a detail's per-route rates. A poll holds
        # two scrapes anyway, so keeping it costs no more than a poll's peak.
        self._before: Scrape | None = None
        self.trend = RatioHistory()

    async def poll(self) -> Snapshot:
        try:
            got = await fetch(self.client(), self._url, timeout=self.service.timeout,
                              headers=self.service.headers, max_bytes=MAX_EXPOSITION)
        except FetchError as exc:
            return self._failed(str(exc))
        at = self.clock()
        problem = self._refuse(got)
        if problem:
            return self._failed(problem, got.latency_ms)
        try:
            # Off the event loop (decoding included), so the screen and the
            # other sources' clocks never wait for it.
            scrape = await asyncio.to_thread(lambda: parse_exposition(got.text(), at))
        except MalformedExposition as exc:
            return self._failed(str(exc), got.latency_ms)  # the last good baseline is kept
        before, self._last = self._last, scrape
        self._before = before
        values, notes = rates(before, scrape)
        return self.trend.add(_snapshot(self.name, "scrape", State.OK, values, notes, latency_ms=got.latency_ms))

    async def drill(self, row: str) -> Detail:
        """The breakdown by route and code from the last two scrapes, and the
        recent history: from memory, no request is made."""
        if row != "service":
            raise NoSuchRow(f"error rates {self.name!r} have no row {row!r}")
        return errors_detail.detail(self.name, "scrape", self._breakdown(), self.trend)

    def _breakdown(self) -> Section:
        last, before = self._last, self._before
        if last is None:
            return errors_detail.unread_section("no scrape of /metrics has succeeded yet")
        groups, note = errors_detail.scraped_groups(None if before is None else before.requests, last.requests,
                                                    0.0 if before is None else last.at - before.at)
        return errors_detail.scraped_section(groups, note)

    def _refuse(self, got: Fetched) -> str | None:
        if got.redirect_error:
            return got.redirect_error
        if got.status != 200:
            return f"HTTP {got.status} from {redact(self._url)}"
        if got.truncated:
            return f"{redact(self._url)} is larger than {MAX_EXPOSITION // (1024 * 1024)} MiB; not parsed"
        return None

    def _failed(self, error: str, latency_ms: float | None = None) -> Snapshot:
        return self.trend.add(_snapshot(self.name, "scrape", State.UNREACHABLE, {}, [], error, latency_ms))

