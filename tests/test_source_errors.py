"""Error rates: Prometheus (recorded API answers, and a real Prometheus where
installed) and direct scrapes of a real prometheus_client exporter."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import threading
import time

import httpx
import pytest
from hypothesis import given, settings, strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from console.config import PrometheusTarget, ServiceTarget
from console.demo.servers import free_port
from console.sources.base import State, bounded_poll
from console.sources.errors import (
    DEFAULT_QUERIES, FIRST_SCRAPE, MalformedExposition, PrometheusErrors, ScrapedErrors,
    bucket_quantile, parse_exposition,
)
from httpfaults import FaultServer, Garbage, Hang, Huge, Reply, Reset, json_reply, refused_url, wait_until

METRICS = ("error_ratio", "request_rate", "p95_latency_s")


def json_safe(snapshot) -> dict:
    return json.loads(json.dumps(snapshot.to_json(), allow_nan=False))


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as c:
        yield c


# ---- Prometheus: recorded API answers ----------------------------------------

def vector(*values: str) -> dict:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "api"}, "value": [1763800000.123, v]} for v in values]}}


def api_error(kind: str, message: str) -> dict:
    return {"status": "error", "errorType": kind, "error": message}


def which_metric(promql: str) -> str:
    if "histogram_quantile" in promql:
        return "p95_latency_s"
    return "error_ratio" if "5.." in promql else "request_rate"


def answering(**answers):
    """A route for /api/v1/query answering per metric (default: a number)."""
    def route(path, query):
        return answers.get(which_metric(query.get("query", "")), json_reply(vector("1")))
    return route


@pytest.fixture(scope="module")
def prom():
    with FaultServer() as s:
        yield s


def prometheus_errors(prom: FaultServer, client, timeout: float = 2.0, job: str | None = None,
                      queries=()) -> PrometheusErrors:
    service = ServiceTarget("api", "http://api.invalid/health", job=job)
    return PrometheusErrors(service, PrometheusTarget(prom.url(""), timeout, queries), client)


async def test_prometheus_numbers_become_metrics(prom, client):
    prom.route("/api/v1/query", answering(error_ratio=json_reply(vector("0.02")),
                                          request_rate=json_reply(vector("41.5")),
                                          p95_latency_s=json_reply(vector("0.375"))))
    before = len(prom.seen)
    snap = await prometheus_errors(prom, client).poll()
    assert snap.kind == "errors" and snap.name == "api"
    assert snap.state is State.OK and snap.error is None
    assert dict(snap.metrics) == {"error_ratio": 0.02, "request_rate": 41.5, "p95_latency_s": 0.375,
                                  "via": "prometheus"}
    assert snap.details["notes"] == ()
    sent = sorted(s.query["query"] for s in prom.seen[before:])
    assert sent == sorted(q.replace("{job}", "api") for q in DEFAULT_QUERIES.values())
    assert all('job="api"' in q for q in sent)


async def test_nan_inf_and_empty_become_none_with_notes(prom, client):
    prom.route("/api/v1/query", answering(error_ratio=json_reply(vector("NaN")),
                                          request_rate=json_reply({"status": "success", "data": {
                                              "resultType": "vector", "result": []}}),
                                          p95_latency_s=json_reply(vector("+Inf"))))
    snap = await prometheus_errors(prom, client).poll()
    # Not one number: unknown, not ok (issue 13: no data is not ok).
    assert snap.state is State.UNKNOWN and snap.error is None
    assert [snap.metrics[m] for m in METRICS] == [None, None, None]
    notes = " | ".join(snap.details["notes"])
    assert "error_ratio: NaN" in notes
    assert "request_rate: no data" in notes
    assert "p95_latency_s: +Inf" in notes
    assert json_safe(snap)["metrics"]["error_ratio"] is None


async def test_one_failed_query_is_an_error_but_not_unreachable(prom, client):
    bad = api_error("bad_data", 'invalid parameter "query": 1:12: parse error: unexpected "}"')
    prom.route("/api/v1/query", answering(p95_latency_s=json_reply(bad, 400),
                                          error_ratio=json_reply(vector("0.5"))))
    snap = await prometheus_errors(prom, client).poll()
    assert snap.state is State.OK
    assert snap.error == 'p95_latency_s: bad_data: invalid parameter "query": 1:12: parse error: unexpected "}"'
    assert snap.metrics["error_ratio"] == 0.5 and snap.metrics["p95_latency_s"] is None


@pytest.mark.parametrize("answer, error", [
    (Reply(500, "internal server error"), "HTTP 500 from Prometheus"),
    (json_reply(api_error("unavailable", "TSDB not ready"), 503), "unavailable: TSDB not ready"),
    (Reply(200, "<html><body>Sign in</body></html>", "text/html"), "not a Prometheus API answer: "
                                                                   "'<html><body>Sign in</body></html>'"),
    (json_reply({"status": "success", "data": {"resultType": "matrix", "result": []}}),
     "expected an instant vector, got matrix"),
    (Garbage(), None),
    (Reset(), None),
])
async def test_all_queries_failing_is_unreachable(prom, client, answer, error):
    prom.route("/api/v1/query", answer)
    snap = await prometheus_errors(prom, client).poll()
    assert snap.state is State.UNREACHABLE
    assert snap.error and "\n" not in snap.error
    if error:
        assert snap.error == error  # said once, not three times
    assert [snap.metrics[m] for m in METRICS] == [None, None, None]
    json_safe(snap)


async def test_prometheus_refused_is_unreachable_without_password(client):
    url = refused_url("").replace("//", "//admin:topsecret@")
    source = PrometheusErrors(ServiceTarget("api", "http://api.invalid/"), PrometheusTarget(url, 1.0), client)
    snap = await source.poll()
    assert snap.state is State.UNREACHABLE
    assert snap.error.startswith("cannot connect to 127.0.0.1:") and "Connection refused" in snap.error
    assert "topsecret" not in json.dumps(snap.to_json())


async def test_prometheus_hang_times_out(prom, client):
    prom.route("/api/v1/query", Hang())
    started = time.monotonic()
    snap = await bounded_poll(prometheus_errors(prom, client, timeout=0.3))
    assert time.monotonic() - started < 0.6
    assert snap.state is State.UNREACHABLE and snap.error == "timed out after 0.3s"
    assert dict(snap.metrics) == {"error_ratio": None, "request_rate": None, "p95_latency_s": None,
                                  "via": "prometheus"}


async def test_the_three_queries_run_at_once(prom, client):
    prom.route("/api/v1/query", Reply(200, json.dumps(vector("1")), "application/json", delay=0.3))
    started = time.monotonic()
    snap = await prometheus_errors(prom, client).poll()
    assert time.monotonic() - started < 0.55  # one delay, not three
    assert [snap.metrics[m] for m in METRICS] == [1.0, 1.0, 1.0]


async def test_custom_queries_and_job_are_substituted_verbatim(prom, client):
    prom.route("/api/v1/query", lambda path, query: json_reply(vector("3")))
    custom = 'sum(rate(errors_total{job="{job}",code=~"5.."}[5m])) / sum(rate(requests{job="{job}"}[5m]))'
    before = len(prom.seen)
    snap = await prometheus_errors(prom, client, job='we"ird', queries=(("error_ratio", custom),)).poll()
    sent = [s.query["query"] for s in prom.seen[before:]]
    assert custom.replace("{job}", 'we\\"ird') in sent
    assert any(q.startswith("histogram_quantile(0.95") and 'job="we\\"ird"' in q for q in sent)
    assert snap.metrics["error_ratio"] == 3.0


async def test_scalar_answers_multiple_series_and_warnings(prom, client):
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [1763800000, "0.25"]}}
    warned = dict(vector("7", "9"), warnings=["PromQL info: metric might not be a counter"])
    prom.route("/api/v1/query", answering(error_ratio=json_reply(scalar), request_rate=json_reply(warned)))
    snap = await prometheus_errors(prom, client).poll()
    assert snap.metrics["error_ratio"] == 0.25
    assert snap.metrics["request_rate"] == 7.0
    notes = snap.details["notes"]
    assert "request_rate: PromQL info: metric might not be a counter" in notes
    assert "request_rate: 2 series; showing the first" in notes


# ---- direct scrape of a real prometheus_client exporter -----------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Service:
    """A real prometheus_client exporter standing in for the watched service."""

    def __init__(self, status_label: str = "status") -> None:
        self.status_label = status_label
        self.registry = CollectorRegistry()
        self._define()
        self.server, _ = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.url = f"http://127.0.0.1:{self.server.server_port}/metrics"

    def _define(self) -> None:
        self.requests = Counter("http_requests", "Requests served", [self.status_label, "method"],
                                registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds", "Request latency", ["method"],
                                 registry=self.registry)

    def serve(self, count: int, status: str = "200", seconds: float = 0.02, method: str = "GET") -> None:
        self.requests.labels(status, method).inc(count)
        for _ in range(count):
            self.latency.labels(method).observe(seconds)

    def restart(self) -> None:
        """The process restarted: every counter is back at zero."""
        self.registry.unregister(self.requests)
        self.registry.unregister(self.latency)
        self._define()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def exporter():
    s = Service()
    yield s
    s.stop()


@pytest.fixture
def service(exporter):
    exporter.restart()  # fresh counters for every test, without a new server
    return exporter


def scraper(url: str, client, clock: Clock, timeout: float = 2.0) -> ScrapedErrors:
    return ScrapedErrors(ServiceTarget("shop", "http://shop.invalid/health", timeout, metrics=url),
                         client, clock=clock)


async def test_first_scrape_has_no_rates_yet(service, client):
    snap = await scraper(service.url, client, Clock()).poll()
    # No rate yet is no data: unknown until the next scrape (issue 13: it said ok).
    assert snap.state is State.UNKNOWN and snap.error is None
    assert dict(snap.metrics) == {"error_ratio": None, "request_rate": None, "p95_latency_s": None,
                                  "via": "scrape"}
    assert snap.details["notes"] == (FIRST_SCRAPE,)
    json_safe(snap)


async def test_rates_from_counter_deltas(service, client):
    clock = Clock()
    source = scraper(service.url, client, clock)
    service.serve(500, "200")  # history before the first scrape does not count
    await source.poll()
    service.serve(80, "200", 0.02, "GET")
    service.serve(10, "200", 0.02, "POST")
    service.serve(6, "500", 0.3)  # a series born between the scrapes counts in full
    service.serve(4, "503", 0.3, "POST")
    clock.now += 10
    snap = await source.poll()
    assert snap.state is State.OK
    assert snap.metrics["request_rate"] == pytest.approx(10.0)
    assert snap.metrics["error_ratio"] == pytest.approx(0.1)
    # 90 of 100 in the 0.025 s bucket, 10 in (0.25, 0.5]: rank 95 interpolates to 0.375.
    assert snap.metrics["p95_latency_s"] == pytest.approx(0.375)
    assert snap.details["notes"] == ()


async def test_code_label_counts_as_status(client):
    service = Service(status_label="code")
    try:
        clock = Clock()
        source = scraper(service.url, client, clock)
        await source.poll()
        service.serve(3, "200")
        service.serve(1, "502")
        clock.now += 2
        snap = await source.poll()
        assert snap.metrics["error_ratio"] == pytest.approx(0.25)
        assert snap.metrics["request_rate"] == pytest.approx(2.0)
    finally:
        service.stop()


async def test_counter_reset_rebaselines_and_is_never_negative(service, client):
    clock = Clock()
    source = scraper(service.url, client, clock)
    service.serve(1000)
    await source.poll()
    service.restart()
    service.serve(5, "500")
    clock.now += 5
    snap = await source.poll()
    assert [snap.metrics[m] for m in METRICS] == [None, None, None]
    assert "counters went backwards" in snap.details["notes"][0]
    service.serve(15, "200")
    clock.now += 5
    snap = await source.poll()
    assert snap.metrics["request_rate"] == pytest.approx(3.0)
    assert snap.metrics["error_ratio"] == 0.0


async def test_no_traffic_between_scrapes(service, client):
    clock = Clock()
    source = scraper(service.url, client, clock)
    service.serve(10)
    await source.poll()
    clock.now += 5
    snap = await source.poll()
    assert snap.metrics["request_rate"] == 0.0
    assert snap.metrics["error_ratio"] is None and snap.metrics["p95_latency_s"] is None
    assert "error_ratio: no requests between scrapes" in snap.details["notes"]
    assert "p95_latency_s: no observations between scrapes" in snap.details["notes"]


async def test_p95_beyond_the_highest_bucket(service, client):
    clock = Clock()
    source = scraper(service.url, client, clock)
    await source.poll()
    service.serve(20, "200", seconds=30.0)
    clock.now += 1
    snap = await source.poll()
    assert snap.metrics["p95_latency_s"] == 10.0  # prometheus_client's highest finite bucket
    assert "p95_latency_s: above the highest bucket (10s)" in snap.details["notes"]


GOOD = """# TYPE http_requests_total counter
http_requests_total{status="200"} %d
http_requests_total{status="500"} %d
"""


@pytest.fixture
def exposition():
    with FaultServer() as s:
        yield s


async def test_malformed_exposition_is_a_clear_error_and_keeps_the_baseline(exposition, client):
    clock = Clock()
    source = scraper(exposition.url("/metrics"), client, clock)
    exposition.route("/metrics", Reply(200, GOOD % (100, 0)))
    await source.poll()
    exposition.route("/metrics", Reply(200, 'http_requests_total{status="200} 1\n'))
    clock.now += 5
    snap = await source.poll()
    assert snap.state is State.UNREACHABLE
    assert snap.error.startswith("malformed metrics exposition: ")
    assert "\n" not in snap.error
    exposition.route("/metrics", Reply(200, GOOD % (190, 10)))
    clock.now += 5
    snap = await source.poll()  # rates over both intervals: the bad scrape changed nothing
    assert snap.metrics["request_rate"] == pytest.approx(10.0)
    assert snap.metrics["error_ratio"] == pytest.approx(0.1)


@pytest.mark.parametrize("fault, error", [
    (Reply(503, "down"), "HTTP 503 from http://127.0.0.1:{port}/metrics"),
    (Reply(200, "<html><title>Login</title></html>", "text/html"), "malformed metrics exposition: "),
    (Reply(200, "\x00\xff\x1b[31m binary"), "malformed metrics exposition: "),
    (Garbage(), "bad HTTP answer from 127.0.0.1:{port}"),
    (Reset(), "connection to 127.0.0.1:{port} broken"),
    (Huge(size=17 * 1024 * 1024), "http://127.0.0.1:{port}/metrics is larger than 16 MiB; not parsed"),
])
async def test_scrape_failures_are_unreachable_with_one_line(exposition, client, fault, error):
    exposition.route("/metrics", fault)
    snap = await scraper(exposition.url("/metrics"), client, Clock()).poll()
    assert snap.state is State.UNREACHABLE
    assert snap.error.startswith(error.format(port=exposition.port))
    assert "\n" not in snap.error
    assert snap.metrics["via"] == "scrape"
    json_safe(snap)


async def test_scrape_refused_and_missing_url(client):
    snap = await scraper(refused_url("/metrics"), client, Clock()).poll()
    assert snap.state is State.UNREACHABLE and snap.error.endswith("Connection refused")
    with pytest.raises(ValueError, match="no metrics URL"):
        ScrapedErrors(ServiceTarget("shop", "http://shop.invalid/health"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_or_is_called_malformed(text):
    try:
        scrape = parse_exposition(text, 0.0)
    except MalformedExposition as exc:
        assert str(exc).startswith("malformed metrics exposition")
    else:
        assert all(math.isfinite(v) for v in scrape.requests.values())


@pytest.mark.parametrize("q, buckets, expected", [
    (0.5, [(1.0, 10), (2.0, 20), (math.inf, 20)], 1.0),
    (0.75, [(1.0, 10), (2.0, 20), (math.inf, 20)], 1.5),
    (0.95, [(0.1, 0), (0.2, 100), (math.inf, 100)], 0.195),
    (0.5, [(1.0, 0), (math.inf, 0)], None),
    (0.5, [(1.0, 5)], None),
])
def test_bucket_quantile_like_histogram_quantile(q, buckets, expected):
    value, _ = bucket_quantile(q, buckets)
    assert value == (pytest.approx(expected) if expected is not None else None)


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=8), st.floats(0.01, 0.99))
def test_bucket_quantile_stays_within_the_bucket_bounds(increments, q):
    bounds = [0.005 * 2 ** i for i in range(len(increments))]
    counts, total = [], 0
    for inc in increments:
        total += inc
        counts.append(total)
    value, _ = bucket_quantile(q, list(zip(bounds + [math.inf], counts + [total])))
    if total == 0:
        assert value is None
    else:
        assert 0 <= value <= bounds[-1]


# ---- a real Prometheus, where installed --------------------------------------

@pytest.fixture(scope="module")
def real_prometheus(tmp_path_factory):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is not on PATH (apt-get install prometheus)")
    app = Service()
    stop = threading.Event()
    traffic = threading.Thread(target=_steady_traffic, args=(app, stop), daemon=True)
    traffic.start()
    root = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    (root / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: shop\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{app.server.server_port}']}}]\n")
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen([binary, f"--config.file={root / 'prometheus.yml'}",
                             f"--storage.tsdb.path={root / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until(lambda: _ready(url) or proc.poll() is not None, 20) or proc.poll() is not None:
            pytest.fail("prometheus did not start:\n" + (root / "prometheus.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        stop.set()
        traffic.join(5)
        app.stop()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _steady_traffic(app: Service, stop: threading.Event) -> None:
    """40 requests/s: every tenth a 500, every tenth (another one) slow."""
    started, served = time.monotonic(), 0
    while not stop.wait(0.01):
        due = int((time.monotonic() - started) * 40)
        for i in range(served, due):
            app.serve(1, "500" if i % 10 == 0 else "200", 0.3 if i % 10 == 5 else 0.02)
        served = due


async def test_real_prometheus_gives_sane_numbers(real_prometheus, client):
    service = ServiceTarget("shop", "http://shop.invalid/health")
    # rate() over [1m] divides by the whole minute, so until a minute of data
    # exists the default request_rate reads low; a 5 s window fills in time.
    short = (("request_rate", 'sum(rate(http_requests_total{job="{job}"}[5s]))'),)
    defaults = PrometheusErrors(service, PrometheusTarget(real_prometheus, 3.0), client)
    source = PrometheusErrors(service, PrometheusTarget(real_prometheus, 3.0, short), client)
    deadline = time.monotonic() + 20
    snap = await source.poll()
    while not (snap.metrics["request_rate"] or 0) >= 25 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        snap = await source.poll()
    assert snap.state is State.OK and snap.error is None, snap
    assert snap.metrics["via"] == "prometheus"
    assert 0.05 <= snap.metrics["error_ratio"] <= 0.15
    assert 25 <= snap.metrics["request_rate"] <= 60
    assert 0.25 < snap.metrics["p95_latency_s"] <= 0.5  # the slow tenth's bucket
    json_safe(snap)

    snap = await defaults.poll()  # the shipped queries run on a real Prometheus
    assert snap.state is State.OK and snap.error is None, snap
    assert 0.05 <= snap.metrics["error_ratio"] <= 0.15
    assert snap.metrics["request_rate"] > 0
    assert 0.25 < snap.metrics["p95_latency_s"] <= 0.5
