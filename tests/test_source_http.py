"""HTTP health checks against a real local server that misbehaves on purpose."""

from __future__ import annotations

import json
import random
import time
import tracemalloc

import httpx
import pytest

from console.config import ServiceTarget
from console.sources.base import State, bounded_poll
from console.sources.http import BODY_SHOWN, HealthCheck, poll_all
from httpfaults import FaultServer, Garbage, Hang, Huge, Redirect, Reply, Reset, refused_url

MARKUP = "[bold red]boom[/] <b>html</b> \x1b[31mred\x1b[0m ünïcode {braces} \\ end"

ROUTES = {
    "/health": Reply(200, "ok"),
    "/down": Reply(503, "upstream database unavailable " + "x" * 1000),
    "/empty": Reply(204),
    "/markup": Reply(500, MARKUP, "text/html; charset=utf-8"),
    "/hang": Hang(),
    "/stall": Hang(after_headers=True),
    "/reset": Reset(),
    "/garbage": Garbage(),
    "/loop": Redirect("/loop"),
    "/ping": Redirect("/pong"),
    "/pong": Redirect("/ping"),
    # /hop1 -> ... -> /hop5 -> /health: five redirects, the most we follow.
    **{f"/hop{i}": Redirect(f"/hop{i + 1}" if i < 5 else "/health") for i in range(1, 6)},
    # /far1 -> ... -> /far6 -> /health: one too many.
    **{f"/far{i}": Redirect(f"/far{i + 1}" if i < 6 else "/health") for i in range(1, 7)},
}


@pytest.fixture(scope="module")
def server():
    with FaultServer(ROUTES) as s:
        yield s


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as c:
        yield c


def target(server: FaultServer, name: str, path: str, timeout: float = 1.0, **kw) -> ServiceTarget:
    return ServiceTarget(name=name, url=server.url(path), timeout=timeout, **kw)


def assert_json_safe(snapshot) -> dict:
    return json.loads(json.dumps(snapshot.to_json(), allow_nan=False))


async def test_healthy_endpoint_reports_status_and_latency(server, client):
    snap = await HealthCheck(target(server, "api", "/health"), client).poll()
    assert snap.kind == "http" and snap.name == "api"
    assert snap.state is State.OK and snap.error is None
    assert snap.metrics["status_code"] == 200
    assert 0 < snap.metrics["latency_ms"] < 1000
    assert snap.latency_ms is not None
    assert assert_json_safe(snap)["metrics"]["status_code"] == 200


async def test_wrong_status_is_critical_with_the_start_of_the_body(server, client):
    snap = await HealthCheck(target(server, "api", "/down"), client).poll()
    assert snap.state is State.CRITICAL
    assert snap.error == "HTTP 503 (expected 200)"
    assert snap.metrics["status_code"] == 503
    assert snap.details["body"].startswith("upstream database unavailable")
    assert len(snap.details["body"]) == BODY_SHOWN


async def test_any_of_several_expected_statuses_is_ok(server, client):
    ok = await HealthCheck(target(server, "api", "/empty", expect_status=(200, 204)), client).poll()
    assert ok.state is State.OK and ok.metrics["status_code"] == 204
    bad = await HealthCheck(target(server, "api", "/down", expect_status=(200, 204)), client).poll()
    assert bad.error == "HTTP 503 (expected 200 or 204)"


async def test_markup_and_escape_sequences_stay_plain_text(server, client):
    snap = await HealthCheck(target(server, "web", "/markup"), client).poll()
    assert snap.state is State.CRITICAL
    body = snap.details["body"]
    assert type(body) is str and body == MARKUP  # untouched: the pane escapes, not the source


async def test_twenty_checks_five_hung_finish_within_the_timeout(server, client):
    timeout = 1.0
    checks = [HealthCheck(target(server, f"ok{i}", "/health", timeout), client) for i in range(15)]
    checks += [HealthCheck(target(server, f"hung{i}", "/hang", timeout), client) for i in range(5)]
    random.Random(7).shuffle(checks)

    started = time.monotonic()
    snaps = await poll_all(checks)
    elapsed = time.monotonic() - started

    assert timeout <= elapsed < timeout * 1.10
    assert [s.name for s in snaps] == [c.name for c in checks]
    for snap in snaps:
        assert_json_safe(snap)
        if snap.name.startswith("hung"):
            assert snap.state is State.UNREACHABLE
            assert snap.error == "timed out after 1s"
            assert dict(snap.metrics) == {"status_code": None, "latency_ms": None}
        else:
            assert snap.state is State.OK
            assert snap.metrics["latency_ms"] < 500  # not held up by the hung ones


async def test_bounded_poll_lets_the_check_time_out_in_its_own_terms(server, client):
    snap = await bounded_poll(HealthCheck(target(server, "api", "/hang", timeout=0.3), client))
    assert snap.error == "timed out after 0.3s"
    assert dict(snap.metrics) == {"status_code": None, "latency_ms": None}


class LateStart(HealthCheck):
    """A check whose clock starts late, as when the event loop is busy drawing."""

    async def poll(self):
        time.sleep(0.2)  # blocks the loop on purpose
        return await super().poll()


async def test_poll_all_backstop_still_reports_in_the_checks_terms(server, client):
    started = time.monotonic()
    [snap] = await poll_all([LateStart(target(server, "api", "/hang", timeout=0.5), client)])
    assert time.monotonic() - started < 0.5 * 1.10 + 0.05
    assert snap.state is State.UNREACHABLE and snap.error == "timed out after 0.5s"
    assert dict(snap.metrics) == {"status_code": None, "latency_ms": None}
    assert snap.details["url"] == server.url("/hang")


async def test_a_body_that_never_finishes_still_times_out(server, client):
    started = time.monotonic()
    snap = await HealthCheck(target(server, "api", "/stall", timeout=0.3), client).poll()
    assert time.monotonic() - started < 0.6
    assert snap.state is State.UNREACHABLE and snap.error == "timed out after 0.3s"


async def test_connection_reset_is_unreachable_with_one_clear_line(server, client):
    snap = await HealthCheck(target(server, "api", "/reset"), client).poll()
    assert snap.state is State.UNREACHABLE
    assert "\n" not in snap.error
    assert "reset" in snap.error.lower() or "disconnected" in snap.error.lower()
    assert f"127.0.0.1:{server.port}" in snap.error


async def test_connection_refused_is_unreachable_with_one_clear_line(client):
    url = refused_url("/health")
    snap = await HealthCheck(ServiceTarget("api", url, timeout=1.0), client).poll()
    assert snap.state is State.UNREACHABLE
    assert snap.error.startswith("cannot connect to 127.0.0.1:")
    assert snap.error.endswith("Connection refused")
    assert snap.metrics["status_code"] is None


async def test_garbage_instead_of_http_is_unreachable(server, client):
    snap = await HealthCheck(target(server, "api", "/garbage"), client).poll()
    assert snap.state is State.UNREACHABLE
    assert snap.error.startswith("bad HTTP answer from 127.0.0.1:")
    assert "\n" not in snap.error
    assert_json_safe(snap)


@pytest.mark.parametrize("status", [200, 500])
async def test_fifty_megabyte_body_is_read_only_in_part(server, client, status):
    huge = Huge(size=50 * 1024 * 1024, status=status)
    server.route("/huge", huge)
    check = HealthCheck(target(server, "api", "/huge", timeout=5.0), client)
    tracemalloc.start()
    started = time.monotonic()
    try:
        snap = await check.poll()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 1.0
    assert peak < 4 * 1024 * 1024
    assert huge.sent < huge.size  # we hung up long before the end
    assert snap.metrics["status_code"] == status
    if status == 500:
        assert snap.details["body"] == "x" * BODY_SHOWN


async def test_redirect_loop_is_named(server, client):
    snap = await HealthCheck(target(server, "api", "/loop"), client).poll()
    assert snap.state is State.CRITICAL
    assert snap.error == "redirect loop: /loop → /loop"
    snap = await HealthCheck(target(server, "api", "/ping"), client).poll()
    assert snap.error == "redirect loop: /ping → /pong → /ping"
    assert snap.metrics["status_code"] == 302


async def test_five_redirects_are_followed_six_are_not(server, client):
    ok = await HealthCheck(target(server, "api", "/hop1"), client).poll()
    assert ok.state is State.OK and ok.metrics["status_code"] == 200
    far = await HealthCheck(target(server, "api", "/far1"), client).poll()
    assert far.state is State.CRITICAL
    assert far.error.startswith("more than 5 redirects")


@pytest.mark.parametrize("path", ["/health", "/down", "/hang", "/garbage", "/loop", None])
async def test_url_password_never_shown(server, client, path):
    url = server.url(path, "monitor:hunter2") if path else refused_url().replace("//", "//monitor:hunter2@")
    snap = await HealthCheck(ServiceTarget("api", url, timeout=0.3), client).poll()
    shown = json.dumps(snap.to_json()) + repr(dict(snap.details)) + str(snap.error)
    assert "hunter2" not in shown
    assert "monitor:***@" in snap.details["url"]


async def test_configured_headers_are_sent(server, client):
    before = len(server.seen)
    t = target(server, "api", "/health", headers=(("X-Probe", "incident-console"),))
    await HealthCheck(t, client).poll()
    assert server.seen[before].headers["x-probe"] == "incident-console"


async def test_shared_client_survives_close_own_client_is_closed(server, client):
    shared = HealthCheck(target(server, "api", "/health"), client)
    await shared.poll()
    await shared.close()
    assert not client.is_closed

    own = HealthCheck(target(server, "api", "/health"))
    assert (await own.poll()).state is State.OK
    inner = own._client
    await own.close()
    await own.close()  # twice is harmless
    assert inner is not None and inner.is_closed
