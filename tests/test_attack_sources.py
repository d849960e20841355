"""Issue 10, class 8: what monitored systems send.

TLS failures are named as certificate problems, against a real local HTTPS
server with certificates made here by openssl. A 100k-series ``/metrics`` is
read by a scan for our two metrics, bounded, off the event loop, and never
makes a healthy endpoint beside it cross a threshold. (The timings are in
bench/metrics_scrape.py.)
"""

from __future__ import annotations

import asyncio
import http.server
import shutil
import ssl
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from console import config
from console.config import ServiceTarget
from console.located import Invalid
from console.sources import errors as errors_module
from console.sources import poll_judged
from console.sources.base import State
from console.sources.errors import MAX_SERIES, ScrapedErrors, parse_exposition
from console.sources.http import TLS_HINT, HealthCheck
from console.thresholds import merged

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not on PATH")


# ---- certificates ------------------------------------------------------------------

def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class Certs:
    """A CA, and leaf certificates for 127.0.0.1: self-signed, CA-signed,
    CA-signed for another host, and CA-signed but expired."""

    def __init__(self, where: Path) -> None:
        self.dir = where
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "self.key", "-out", "self.pem",
                 "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", cwd=where)
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                 "-days", "2", "-subj", "/CN=test CA", cwd=where)
        for name, san in (("good", "IP:127.0.0.1"), ("other", "DNS:other.example")):
            self._signed(name, san, "-days", "2")
        self._expired()

    def _signed(self, name: str, san: str, *validity: str) -> None:
        (self.dir / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=self.dir)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-extfile", f"{name}.ext", *validity, cwd=self.dir)

    def _expired(self) -> None:
        # `openssl ca` is the one that takes explicit dates.
        (self.dir / "index.txt").write_text("")
        (self.dir / "ca.cnf").write_text(textwrap.dedent("""\
            [ca]
            default_ca = test
            [test]
            database = index.txt
            new_certs_dir = .
            serial = ca.serial
            default_md = sha256
            policy = any
            copy_extensions = copy
            [any]
            commonName = supplied
        """))
        (self.dir / "ca.serial").write_text("1000\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "expired.key", "-out", "expired.csr",
                 "-subj", "/CN=expired", "-addext", "subjectAltName=IP:127.0.0.1", cwd=self.dir)
        _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", "expired.csr",
                 "-out", "expired.pem", "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-notext",
                 cwd=self.dir)

    def path(self, name: str) -> str:
        return str(self.dir / name)


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


class TlsServer:
    def __init__(self, cert: str, key: str) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def servers(certs):
    running = {name: TlsServer(certs.path(f"{name}.pem"), certs.path(f"{name}.key"))
               for name in ("self", "good", "other", "expired")}
    yield running
    for server in running.values():
        server.stop()


async def check(servers, which: str, **tls) -> object:
    source = HealthCheck(ServiceTarget("api", f"https://127.0.0.1:{servers[which].port}/health", timeout=5, **tls))
    try:
        return await source.poll()
    finally:
        await source.close()


@pytest.mark.parametrize("which, tls, reason", [
    ("self", {}, "self-signed certificate"),
    ("good", {}, "unable to get local issuer certificate"),  # a CA nobody told us about
    ("expired", {"ca_file": "ca.pem"}, "certificate has expired"),
    ("other", {"ca_file": "ca.pem"}, "mismatch"),  # made for other.example
])
async def test_tls_failures_are_named_as_certificate_problems(servers, certs, which, tls, reason):
    tls = {k: certs.path(v) for k, v in tls.items()}
    snap = await check(servers, which, **tls)
    assert snap.state is State.UNREACHABLE
    port = servers[which].port
    assert snap.error.startswith(f"certificate problem with 127.0.0.1:{port}: ")
    assert reason in snap.error and snap.error.endswith(TLS_HINT)
    assert "Operation not permitted" not in snap.error


async def test_verify_false_and_ca_file_are_the_way_out(servers, certs):
    assert (await check(servers, "self", verify=False)).state is State.OK
    assert (await check(servers, "self", ca_file=certs.path("self.pem"))).state is State.OK
    assert (await check(servers, "good", ca_file=certs.path("ca.pem"))).state is State.OK


async def test_a_ca_file_that_is_no_certificate_says_so(servers, certs):
    snap = await check(servers, "self", ca_file=certs.path("self.key"))
    assert snap.state is State.UNREACHABLE
    assert snap.error.startswith(f"cannot use ca_file {certs.path('self.key')}: ")
    assert "\n" not in snap.error


async def test_https_to_a_plain_http_port_is_a_tls_problem():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = HealthCheck(ServiceTarget("api", f"https://127.0.0.1:{server.server_address[1]}/", timeout=5))
        snap = await source.poll()
        await source.close()
    finally:
        server.shutdown()
        server.server_close()
    assert snap.state is State.UNREACHABLE
    assert snap.error == (f"TLS handshake with 127.0.0.1:{server.server_address[1]} failed: wrong version number "
                          "(is it plain HTTP? then use an http:// URL)")


def test_verify_and_ca_file_in_the_config(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    cfg = config.parse("services:\n  - name: api\n    url: https://api/health\n    verify: false\n"
                       "  - name: web\n    url: https://web/health\n    ca_file: ca.pem\n",
                       str(tmp_path / "c.yaml"), env={})
    assert cfg.services[0].verify is False and cfg.services[0].ca_file is None
    assert cfg.services[1].verify is True and cfg.services[1].ca_file == str(tmp_path / "ca.pem")
    with pytest.raises(Invalid, match=r"c.yaml:4: 'services\[0\].ca_file': no such file"):
        config.parse("services:\n  - name: api\n    url: https://api/health\n    ca_file: nope.pem\n",
                     str(tmp_path / "c.yaml"), env={})
    with pytest.raises(Invalid, match=r"c.yaml:4: 'services\[0\].verify' must be a boolean"):
        config.parse("services:\n  - name: api\n    url: https://api/health\n    verify: maybe\n",
                     str(tmp_path / "c.yaml"), env={})


# ---- a 100k-series /metrics ----------------------------------------------------------

OURS = ('# TYPE http_requests_total counter\n'
        'http_requests_total{status="200",method="GET"} 1000\n'
        'http_requests_total{status="500",method="GET"} 10\n'
        '# TYPE http_request_duration_seconds histogram\n'
        'http_request_duration_seconds_bucket{le="0.1"} 900\n'
        'http_request_duration_seconds_bucket{le="+Inf"} 1010\n')


def big_exposition(series: int = 100_000) -> str:
    other = "".join(f'go_thing_total{{shard="{i % 64}",path="/api/v1/items/{i}"}} {i}\n' for i in range(series))
    return "# TYPE go_thing_total counter\n" + other + OURS


def test_only_our_metrics_lines_are_parsed(monkeypatch):
    from prometheus_client import parser

    fed: list[str] = []
    real = parser.text_string_to_metric_families

    def counting(text):
        fed.append(text)
        return real(text)

    monkeypatch.setattr(parser, "text_string_to_metric_families", counting)
    text = big_exposition()
    scrape = parse_exposition(text, 0.0)
    assert sum(scrape.requests.values()) == 1010 and len(scrape.buckets) == 2
    assert sum(len(t) for t in fed) < 64 * 1024 + 1000  # the head, and our six lines: not 5 MB
    assert any(t.count("\n") == 4 and "go_thing" not in t for t in fed)


def test_a_malformed_line_elsewhere_is_not_ours_but_in_ours_it_is_refused():
    text = big_exposition(5_000)
    assert parse_exposition(text + "go_thing_total{oops 1\n", 0.0).requests
    with pytest.raises(errors_module.MalformedExposition, match="malformed metrics exposition"):
        parse_exposition(text + 'http_requests_total{status="200} 1\n', 0.0)
    with pytest.raises(errors_module.MalformedExposition, match="malformed metrics exposition"):
        parse_exposition("<html><title>Login</title></html>\n" + text, 0.0)


def test_a_label_explosion_in_our_metric_is_refused_not_half_read():
    lines = "".join(f'http_requests_total{{status="200",path="/item/{i}"}} 1\n' for i in range(MAX_SERIES + 1))
    with pytest.raises(errors_module.TooManySeries, match=f"more than {MAX_SERIES} series of http_requests_total"):
        parse_exposition(lines, 0.0)


def test_lookalike_metric_names_are_not_ours():
    text = OURS + 'http_requests_total_created{status="200"} 5\nhttp_requests_totalx 7\n'
    assert sum(parse_exposition(text, 0.0).requests.values()) == 1010


@pytest.fixture(scope="module")
def big_endpoint(tmp_path_factory):
    # Another process, so serving 5 MB competes with nothing in ours.
    where = tmp_path_factory.mktemp("metrics")
    (where / "metrics").write_text(big_exposition())
    (where / "health").write_text("ok")
    child = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                              "--directory", str(where)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        yield "http://127.0.0.1:" + child.stdout.readline().split(" port ")[1].split()[0]
    finally:
        child.terminate()
        child.wait(10)


async def test_the_scrape_parses_off_the_event_loop(big_endpoint, monkeypatch):
    threads = []
    real = errors_module.parse_exposition

    def recording(text, at):
        threads.append(threading.current_thread())
        return real(text, at)

    monkeypatch.setattr(errors_module, "parse_exposition", recording)
    source = ScrapedErrors(ServiceTarget("big", f"{big_endpoint}/health", timeout=10, metrics=f"{big_endpoint}/metrics"))
    try:
        snap = await source.poll()
    finally:
        await source.close()
    # A first scrape has no rate yet: unknown, not ok, since issue 13.
    assert snap.state is State.UNKNOWN, snap.error
    assert threads and threading.main_thread() not in threads


async def test_a_healthy_endpoint_beside_a_100k_series_scrape_crosses_no_threshold(big_endpoint):
    scraper = ScrapedErrors(ServiceTarget("big", f"{big_endpoint}/health", timeout=10,
                                          metrics=f"{big_endpoint}/metrics"))
    healthy = HealthCheck(ServiceTarget("healthy", f"{big_endpoint}/health", timeout=5))
    limits = merged({})
    stop = asyncio.Event()
    scraped = []

    async def scrape_back_to_back():
        while not stop.is_set():
            scraped.append(await poll_judged(scraper, limits))

    task = asyncio.create_task(scrape_back_to_back())
    readings = []
    try:
        while len(scraped) < 3:
            readings.append(await poll_judged(healthy, limits))
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
        await scraper.close()
        await healthy.close()
    # The first scrape has no rate yet: unknown (issue 13), no threshold crossed.
    assert scraped[0].state is State.UNKNOWN and all(s.state is State.OK for s in scraped[1:]), \
        [(s.state, s.error) for s in scraped]
    assert readings and all(r.state is State.OK and not r.breaches for r in readings), \
        [(r.state, r.latency_ms) for r in readings if r.breaches or r.state is not State.OK]


def test_a_scrape_with_our_metrics_is_parsed_once_and_other_bodies_are_refused(monkeypatch):
    """Issue 16: the head of the body is parsed as a whole only when none of
    our lines is there (a second full parse per scrape was most of its CPU);
    what does not even start like an exposition is refused at once."""
    calls = []
    real = errors_module._parse
    monkeypatch.setattr(errors_module, "_parse", lambda text: calls.append(len(text)) or real(text))
    assert parse_exposition(big_exposition(2_000), 0.0).requests
    assert len(calls) == 1 and calls[0] < 2_000
    for body in ('{"status": "ok"}\n', "\x00\x01binary\n", "<!doctype html><p>Sign in</p>\n"):
        with pytest.raises(errors_module.MalformedExposition, match="starts with"):
            parse_exposition(body + OURS, 0.0)
    calls.clear()
    assert not parse_exposition("# nothing of ours\ngo_thing_total 1\n", 0.0).requests
    assert len(calls) == 2  # nothing of ours: the head is checked as a whole
