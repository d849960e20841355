"""Drilling into a Services check and an Error-rates service, against real
local HTTP servers: the last response kept by the check, the breakdown by
route and code, and the error-rates pane's trend."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import time
from datetime import datetime, timezone

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server
from rich.style import Style
from textual.app import App, ComposeResult

from console.config import PrometheusTarget, ServiceTarget
from console.demo.servers import free_port
from console.drill import Detail, NoSuchRow, Section
from console.sources.base import State
from console.sources.errors import BREAKDOWN_QUERY, PrometheusErrors, ScrapedErrors
from console.sources.errors_detail import HISTORY as RATIO_HISTORY
from console.sources.http import MAX_BODY, HealthCheck
from console.sources.http_detail import BODY_KEPT, BODY_LINES, HISTORY
from console.text import inert
from console.vocabulary import Snapshot
from console.widgets.colours import Colours
from console.readings import STATE_MARK
from console.widgets.error_rates import ErrorRatesPane, newest, sparkline, trend
from httpfaults import FaultServer, Huge, Reply, json_reply, refused_url

HOSTILE_BODY = (b"\x1b]52;c;ZXZpbA==\x07\x1b[2J[red]boom[/red] [link=x]y[/link]\x00nul\xff\xfe bad utf-8\r\n"
                + b"".join(b"line %d\n" % i for i in range(2, 200)) + b"z" * 20_000)
SECRETS = {"sid": "cookievalue-1234", "auth": "Bearer tok-abcdef-5678", "key": "apikey-9999",
           "loc": "querytoken-4242"}
HEADERS = (("Set-Cookie", f"sid={SECRETS['sid']}; Path=/; HttpOnly"), ("Authorization", SECRETS["auth"]),
           ("X-Api-Key", SECRETS["key"]), ("Location", f"https://elsewhere.example/?token={SECRETS['loc']}"),
           ("WWW-Authenticate", 'Bearer realm="api"'), ("X-Request-Id", "req-1"))


def flaky():
    """Every third answer a 503."""
    count = itertools.count()
    return lambda path, query: Reply(503, "down") if next(count) % 3 == 2 else Reply(200, "ok")


ROUTES = {
    "/health": Reply(200, '{"status": "ok"}\nsecond line\n', "application/json", headers=HEADERS),
    "/hostile": Reply(500, HOSTILE_BODY, "text/plain; charset=utf-8"),
    "/huge": Huge(5 * 1024 * 1024),
    "/flaky": flaky(),
}


@pytest.fixture(scope="module")
def server():
    with FaultServer(ROUTES) as s:
        yield s


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as c:
        yield c


def check(server: FaultServer, path: str, client) -> HealthCheck:
    return HealthCheck(ServiceTarget("api", server.url(path), 1.0), client)


def section(detail: Detail, title: str) -> Section:
    return next(s for s in detail.sections if s.title.startswith(title))


def everything(detail: Detail) -> str:
    return repr(detail)


# ---- Services: the last response of a check --------------------------------------

async def test_detail_shows_the_last_response_without_a_new_request(server, client):
    source = check(server, "/health", client)
    await source.poll()
    asked = len(server.seen)
    detail = await source.drill("check")
    assert len(server.seen) == asked  # zero requests per view
    assert detail.title == "http check api: HTTP 200"
    fields = dict(section(detail, "Last response").rows)
    assert fields["Status"] == "200 OK (HTTP/1.1)" and fields["URL"] == server.url("/health")
    assert fields["Received"].endswith("ago)")
    phases = dict(section(detail, "Timings").rows)
    assert any(p.startswith("connect") for p in phases) and "first byte (request sent → headers)" in phases
    assert phases["total"].endswith("ms")
    headers = dict(section(detail, "Response headers").rows)
    assert headers["Content-Type"] == "application/json" and headers["X-Request-Id"] == "req-1"
    assert section(detail, "Body").text == '{"status": "ok"}\nsecond line'
    assert not any(isinstance(v, bytes) for s in detail.sections for row in s.rows for v in row)


async def test_a_reused_connection_says_so_instead_of_a_connect_time(server, client):
    source = check(server, "/health", client)
    await source.poll()
    await source.poll()  # keep-alive: no new connection
    phases = dict(section(await source.drill("check"), "Timings").rows)
    assert phases["connect"].startswith("– (a kept-alive connection was reused)")


async def test_secret_header_values_are_never_kept(server, client):
    source = check(server, "/health", client)
    await source.poll()
    detail = await source.drill("check")
    text = everything(detail) + repr(source.record.last)
    for value in SECRETS.values():
        assert value not in text
    headers = dict(section(detail, "Response headers").rows)
    assert headers["Set-Cookie"] == "sid=***; Path=/; HttpOnly"  # which cookie, not its value
    assert headers["Authorization"] == headers["X-Api-Key"] == "***"
    assert headers["Location"] == "https://elsewhere.example/?token=***"
    assert headers["WWW-Authenticate"] == 'Bearer realm="api"'  # a challenge, no credential: kept


async def test_hostile_body_stays_plain_text_and_bounded(server, client):
    source = check(server, "/hostile", client)
    snap = await source.poll()
    assert snap.state is State.CRITICAL
    body = section(await source.drill("check"), "Body")
    assert body.title == f"Body (first {BODY_LINES} lines)"
    assert isinstance(body.text, str) and len(body.text.split("\n")) == BODY_LINES
    first = body.text.split("\n")[0]
    # Kept as the service sent it (the screen makes it inert), invalid UTF-8 replaced.
    assert "[red]boom[/red]" in first and "\x00" in first and "\x1b[2J" in first and "\ufffd\ufffd" in first
    assert "\x1b" not in inert(first) and "\x00" not in inert(first) and "[red]boom[/red]" in inert(first)
    assert len(source.record.last.body) <= BODY_KEPT  # of the 64 KiB read, 8 KiB kept


async def test_a_huge_body_is_read_and_kept_bounded(server, client):
    source = check(server, "/huge", client)
    await source.poll()
    last = source.record.last
    assert last.body_cut and last.body_bytes == MAX_BODY and len(last.body) == BODY_KEPT
    fields = dict(section(await source.drill("check"), "Last response").rows)
    assert fields["Body"] == "64.0K read, the rest not read"


async def test_history_is_bounded_and_newest_first(server, client):
    source = check(server, "/flaky", client)
    for _ in range(HISTORY + 7):
        await source.poll()
    history = section(await source.drill("check"), f"Last {HISTORY} checks")
    assert history.columns == ("Time", "Status", "Latency", "Error")
    assert len(history.rows) == HISTORY == len(source.record.results)
    assert {row[1] for row in history.rows} == {"200", "503"}
    assert all(row[3] == "HTTP 503 (expected 200)" for row in history.rows if row[1] == "503")
    times = [r.at for r in source.record.results]
    assert times == sorted(times) and history.rows[0][0] == times[-1].strftime("%H:%M:%S UTC")


async def test_drill_before_any_response_says_so(client):
    source = HealthCheck(ServiceTarget("api", refused_url("/health"), 1.0), client)
    detail = await source.drill("check")
    assert detail.title == "http check api: no response yet"
    assert section(detail, "Last response").text == "no response received yet: the first check has not finished"
    await source.poll()
    await source.poll()
    text = section(await source.drill("check"), "Last response").text
    assert text.startswith("no response received yet: all 2 checks so far got no answer")
    assert "Connection refused" in text
    with pytest.raises(NoSuchRow):
        await source.drill("namespace")


async def test_a_failure_after_a_response_is_said_beside_it(server, client):
    source = check(server, "/health", client)
    await source.poll()
    source.service = ServiceTarget("api", refused_url("/health"), 1.0)  # the service went away
    await source.poll()
    last = section(await source.drill("check"), "Last response")
    assert dict(last.rows)["Status"].startswith("200")
    assert last.text.startswith("1 later check(s) got no answer") and "Connection refused" in last.text


# ---- Error rates: breakdown by route and code ----------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def exporter():
    registry = CollectorRegistry()
    requests = Counter("http_requests", "Requests served", ["handler", "code"], registry=registry)
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield requests, f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()


async def test_scraped_breakdown_by_route_and_code_failing_first(exporter, client):
    requests, url = exporter
    clock = Clock()
    source = ScrapedErrors(ServiceTarget("shop", "http://shop.invalid/", 2.0, metrics=url), client, clock=clock)
    early = section(await source.drill("service"), "Requests by route and code")
    assert early.text == "not read: no scrape of /metrics has succeeded yet"
    requests.labels("/cart", "200").inc(100)
    await source.poll()
    one = section(await source.drill("service"), "Requests by route and code")
    assert one.text.startswith("one scrape so far") and ("/cart", "200", "–", "100") in one.rows
    for route, code, count in [("/cart", "200", 40), ("/pay", "500", 6), ("/pay", "200", 20), ("/", "404", 2)]:
        requests.labels(route, code).inc(count)
    clock.now += 2.0
    await source.poll()
    detail = await source.drill("service")
    breakdown = section(detail, "Requests by route and code")
    assert breakdown.columns == ("Route", "Code", "req/s", "Requests")
    assert breakdown.rows == (("/pay", "500", "3.00", "6"), ("/cart", "200", "20", "140"),
                              ("/pay", "200", "10", "20"), ("/", "404", "1.00", "2"))
    assert breakdown.text.startswith("rates over the last 2.0s")
    history = section(detail, "Error ratio, last 2 readings")
    assert history.rows[0][1] == "8.8%" and history.rows[1][4] == "first scrape; rates after the next"


EXPOSITION = """# TYPE http_requests_total counter
http_requests_total{path="/a",status="200",pod="p1"} %d
http_requests_total{path="/a",status="200",pod="p2"} %d
http_requests_total{path="/b",status="503"} %d
http_requests_total{method="GET"} 1
"""


async def test_scraped_breakdown_reads_path_and_status_labels_and_costs_no_request(client):
    counts = iter([(1, 1, 0), (11, 21, 5)])
    with FaultServer({"/metrics": lambda p, q: Reply(200, EXPOSITION % next(counts))}) as server:
        clock = Clock()
        source = ScrapedErrors(ServiceTarget("shop", "http://shop.invalid/", 2.0, metrics=server.url("/metrics")),
                               client, clock=clock)
        await source.poll()
        clock.now += 10
        await source.poll()
        asked = len(server.seen)
        rows = section(await source.drill("service"), "Requests by route and code").rows
        assert len(server.seen) == asked
    # Two pods' series of one route and code are one row; a series without labels is "(none)".
    assert rows == (("/b", "503", "0.50", "5"), ("/a", "200", "3.00", "32"), ("(none)", "(none)", "0.00", "1"))


def api_vector(*series: tuple[dict, str]) -> dict:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": labels, "value": [1763800000.1, value]} for labels, value in series]}}


async def test_prometheus_breakdown_is_one_bounded_query(client):
    answer = api_vector(({"route": "/pay", "code": "502"}, "0.4"), ({"route": "/cart", "code": "200"}, "12.5"),
                        ({"handler": "/x[red]", "status": "200"}, "NaN"))
    with FaultServer({"/api/v1/query": json_reply(answer)}) as prom:
        service = ServiceTarget("checkout", "http://checkout.invalid/")
        source = PrometheusErrors(service, PrometheusTarget(prom.url(""), 1.0), client)
        detail = await source.drill("service")
        assert [s.query["query"] for s in prom.seen] == [BREAKDOWN_QUERY.replace("{job}", "checkout")]
    breakdown = section(detail, "Requests by route and code")
    assert breakdown.rows == (("/pay", "502", "0.40"), ("/cart", "200", "12.50"), ("/x[red]", "200", "–"))
    assert "topk" in BREAKDOWN_QUERY and "[5m]" in BREAKDOWN_QUERY
    assert section(detail, "Error ratio history").text == "no reading yet"


async def test_prometheus_down_still_shows_the_history(client):
    source = PrometheusErrors(ServiceTarget("checkout", "http://checkout.invalid/"),
                              PrometheusTarget(refused_url(""), 0.5), client)
    await source.poll()
    started = time.monotonic()
    detail = await source.drill("service")
    assert time.monotonic() - started < 1.0
    assert section(detail, "Requests by route and code").text.startswith("not read: cannot connect to")
    assert section(detail, "Error ratio, last 1 readings").rows[0][1] == "–"
    with pytest.raises(NoSuchRow):
        await source.drill("check")


async def test_ratio_history_is_bounded(client):
    answers = iter(itertools.cycle(["0.5", "0.25"]))
    with FaultServer({"/api/v1/query": lambda p, q: json_reply(api_vector(({}, next(answers))))}) as prom:
        source = PrometheusErrors(ServiceTarget("c", "http://c.invalid/"), PrometheusTarget(prom.url(""), 1.0),
                                  client)
        for _ in range(RATIO_HISTORY + 3):
            await source.poll()
    assert len(source.trend.readings) == RATIO_HISTORY


# ---- no data is not ok ------------------------------------------------------------------

async def test_an_answer_without_one_number_is_flagged_no_data(client):
    empty = {"status": "success", "data": {"resultType": "vector", "result": []}}
    with FaultServer({"/api/v1/query": json_reply(empty)}) as prom:
        source = PrometheusErrors(ServiceTarget("c", "http://c.invalid/", job="wrong-job"),
                                  PrometheusTarget(prom.url(""), 1.0), client)
        snap = await source.poll()
    assert snap.details["no_data"] is True
    # Issue 13: State says it now (it said ok, and status exited 0 on no data).
    assert snap.state is State.UNKNOWN
    down = await PrometheusErrors(ServiceTarget("c", "http://c.invalid/"),
                                  PrometheusTarget(refused_url(""), 0.5), client).poll()
    assert "no_data" not in down.details  # unreachable already says it


class PaneApp(App):
    def compose(self) -> ComposeResult:
        yield ErrorRatesPane()


def errors_snapshot(ratio: float | None, state: State = State.OK, **details) -> Snapshot:
    return Snapshot("errors", "checkout", state, datetime.now(timezone.utc),
                    metrics={"error_ratio": ratio, "request_rate": None if ratio is None else 10.0,
                             "p95_latency_s": None, "via": "scrape"},
                    details={"notes": ("request_rate: no data (no series matched)",), **details})


async def test_pane_shows_no_data_and_the_newest_trend_in_a_narrow_column():
    app = PaneApp()
    async with app.run_test(size=(40, 12)) as pilot:
        pane = app.query_one(ErrorRatesPane)
        pane.take(errors_snapshot(None, State.UNKNOWN, no_data=True))  # as the source judges it
        await pilot.pause()
        cells = pane.table.get_row("errors:checkout:service")
        assert cells[0].plain == STATE_MARK[State.UNKNOWN] and cells[6].plain.startswith("no data: ")
        # 40 columns leave 8 cells of the trend column after State, Service and 5xx.
        assert pane.trend_width() == 40 - (8 + 17 + 7)
        for ratio in [0.0] * 10 + [0.5, 1.0]:
            pane.take(errors_snapshot(ratio, State.CRITICAL if ratio else State.OK))
        await pilot.pause()
        cells = pane.table.get_row("errors:checkout:service")
        assert cells[3].plain == "▁" * 6 + "▄█"  # the newest 8 of 12 samples
        assert cells[0].plain == "✖ crit"


# ---- the sparkline ---------------------------------------------------------------------

def test_sparkline_shows_the_newest_samples_when_narrow():
    old, new = [0.0] * 8, [0.1, 0.2, 0.4, 0.8]
    assert sparkline(old + new) == "▁" * 8 + "▁▂▄█"
    assert sparkline(old + new, width=4) == "▁▂▄█"  # today's 16 s, not the oldest
    assert sparkline([None, 0.5, None], width=2) == "█ "
    assert sparkline([None, None], width=5) == ""
    assert newest([1, 2, 3], 0) == [] and newest([1, 2, 3], 9) == [1, 2, 3]


def test_trend_bars_take_their_reading_s_state_colour():
    colours = Colours({"state-ok": "#00ff00", "state-warning": "#ffff00", "state-critical": "#ff0000"})
    samples = [(0.001, State.OK)] * 5 + [(0.02, State.WARNING), (0.08, State.CRITICAL)]
    text = trend(samples, 3, colours)
    assert text.plain == sparkline([v for v, _ in samples], 3)
    styles = [Style.parse(str(span.style)) if isinstance(span.style, str) else span.style for span in text.spans]
    assert [s.color.name for s in styles] == ["#00ff00", "#ffff00", "#ff0000"]


# ---- a real Prometheus, where installed ---------------------------------------------------

@pytest.fixture(scope="module")
def real_prometheus(tmp_path_factory, exporter):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is not on PATH (apt-get install prometheus)")
    requests, url = exporter
    requests.labels("/pay", "500").inc(50)
    requests.labels("/cart", "200").inc(500)
    root = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    target = url.removeprefix("http://").removesuffix("/metrics")
    (root / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: shop\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n")
    proc = subprocess.Popen([binary, f"--config.file={root / 'prometheus.yml'}",
                             f"--storage.tsdb.path={root / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}", requests
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_real_prometheus_breakdown(real_prometheus, client):
    url, requests = real_prometheus
    source = PrometheusErrors(ServiceTarget("shop", "http://shop.invalid/"), PrometheusTarget(url, 3.0), client)

    async def breakdown():
        requests.labels("/pay", "500").inc(5)
        requests.labels("/cart", "200").inc(50)
        return section(await source.drill("service"), "Requests by route and code").rows

    deadline = time.monotonic() + 20
    rows = await breakdown()
    while len(rows) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        rows = await breakdown()
    assert [r[:2] for r in rows[:2]] == [("/pay", "500"), ("/cart", "200")], rows
    json.dumps([list(r) for r in rows])


async def test_a_secret_across_the_kept_bodys_cut_leaves_no_piece_on_screen():
    """Found by a red team: the body was cut at BODY_KEPT before redaction,
    and a configured token echoed across the cut showed its head."""
    import httpx

    from console import secrets
    from console.config import ServiceTarget
    from console.screens.detail import text_lines
    from console.sources.http import HealthCheck
    from console.sources.http_detail import BODY_KEPT
    from httpfaults import FaultServer, Reply

    token = "tok-SUPERSECRET-0123456789abcdef"
    secrets.add(token)
    try:
        head = b"".join(b"x" * 900 + b"\n" for _ in range(9))
        for shift in range(0, len(token), 5):  # the cut falls at every point of the token
            filler = b"echo: " + b"y" * (BODY_KEPT - len(head) - 6 - 22 - shift)
            body = head + filler + f"Authorization: Bearer {token}\n".encode()
            with FaultServer({"/debug": Reply(500, body, "text/plain")}) as server:
                async with httpx.AsyncClient() as client:
                    check = HealthCheck(ServiceTarget("api", server.url("/debug"), 1.0), client)
                    await check.poll()
                    detail = await check.drill("check")
            shown = "\n".join(text_lines(s.text).plain for s in detail.sections if s.text)
            assert token[:8] not in shown, shift
    finally:
        secrets.forget()
