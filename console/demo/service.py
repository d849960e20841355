"""A small HTTP service for the demo: ``/health`` and Prometheus ``/metrics``.

The service runs in background threads of the calling process. A traffic
generator feeds simulated requests into the metrics, so the error ratio, the
request rate and the p95 latency move the way they would behind a real load
balancer; :class:`ServiceFaults` bends them on demand.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

# Fine steps around 1-3 s so that histogram_quantile lands near the real p95
# when the "slow" fault pushes the tail past the 1 s threshold.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
HANDLERS = (("GET", "/api/products"), ("GET", "/api/cart"), ("POST", "/api/cart"), ("POST", "/api/checkout"))
HANG_SECONDS = 30.0
SLOW_SHARE = 0.25  # the share of requests the latency fault slows: a tail, not the median


@dataclass
class ServiceFaults:
    """What is wrong with the service right now; plain attributes, set from any thread."""

    error_rate: float = 0.0   # fraction of simulated requests answered with a 5xx
    latency: float = 0.0      # seconds added to the slow tail and to /health
    health_down: bool = False  # /health answers 503
    hang: bool = False         # /health does not answer (for up to HANG_SECONDS)


class _Share:
    """Spreads a fraction evenly over events (error diffusion), so 20 % means
    one in five, not "about one in five on a lucky second"."""

    def __init__(self) -> None:
        self.owed = 0.0

    def hit(self, fraction: float) -> bool:
        if fraction <= 0:
            self.owed = 0.0
            return False
        self.owed += fraction
        if self.owed >= 1.0:
            self.owed -= 1.0
            return True
        return False


class DemoService:
    """One HTTP service on a free loopback port, with its own metrics registry."""

    def __init__(self, name: str, rate: float = 20.0, median_s: float = 0.06,
                 base_error_rate: float = 0.0) -> None:
        self.name = name
        self.rate = rate
        self.median_s = median_s
        self.base_error_rate = base_error_rate
        self.faults = ServiceFaults()
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("http_requests", "HTTP requests served.",
                                ("job", "handler", "method", "status"), registry=self.registry)
        self.duration = Histogram("http_request_duration_seconds", "Time spent serving HTTP requests.",
                                  ("job", "handler", "method"), buckets=BUCKETS, registry=self.registry)
        self._errors = _Share()
        self._slow = _Share()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []

    # ---- lifecycle -------------------------------------------------------
    def start(self) -> "DemoService":
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.service = self
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                             name=f"demo-{self.name}-http", daemon=True),
            threading.Thread(target=self._generate_traffic, name=f"demo-{self.name}-traffic", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # also wakes hung /health handlers
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        for t in self._threads:
            t.join(5)
        self._threads = []

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        return self.url + "/health"

    @property
    def metrics_url(self) -> str:
        return self.url + "/metrics"

    # ---- simulated traffic ----------------------------------------------
    def _generate_traffic(self) -> None:
        owed, last = 0.0, time.monotonic()
        while not self._stopping.wait(0.25):
            # Paced by the clock, not by the tick, so a busy machine does not
            # make the request rate sag.
            now = time.monotonic()
            owed, last = owed + self.rate * (now - last), now
            count = int(owed)
            owed -= count
            for _ in range(count):
                self._simulate_request()

    def _simulate_request(self) -> None:
        method, handler = random.choice(HANDLERS)
        status = "200" if method == "GET" else random.choice(("200", "200", "201"))
        if self._errors.hit(max(self.faults.error_rate, self.base_error_rate)):
            status = random.choice(("500", "502", "503"))
        elif random.random() < 0.01:
            status = "404"
        seconds = random.lognormvariate(math.log(self.median_s), 0.45)
        if self._slow.hit(SLOW_SHARE if self.faults.latency > 0 else 0.0):
            seconds += self.faults.latency * random.uniform(0.9, 1.1)
        self.record(handler, method, status, seconds)

    def record(self, handler: str, method: str, status: str, seconds: float) -> None:
        self.requests.labels(self.name, handler, method, status).inc()
        self.duration.labels(self.name, handler, method).observe(seconds)

    # ---- real requests ---------------------------------------------------
    def health(self) -> tuple[int, dict]:
        """Answer /health the way the faults say; may block (latency, hang)."""
        faults = self.faults
        if faults.hang:
            deadline = time.monotonic() + HANG_SECONDS
            # Polls so that clearing the fault or stopping the service lets go.
            while self.faults.hang and time.monotonic() < deadline:
                if self._stopping.wait(0.1):
                    break
        if faults.latency > 0:
            self._stopping.wait(faults.latency)
        if faults.health_down:
            return 503, {"status": "unavailable", "service": self.name, "reason": "dependency check failed"}
        return 200, {"status": "ok", "service": self.name}

    def metrics(self) -> bytes:
        return generate_latest(self.registry)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung /health handler must not keep the process alive
    service: DemoService

    def handle_error(self, request, client_address) -> None:
        # The console owns the terminal: a client hanging up mid-answer must
        # not print a traceback over the screen.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        service = self.server.service
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, service.metrics(), CONTENT_TYPE_LATEST)
            return
        if path == "/health":
            started = time.perf_counter()
            code, body = service.health()
            service.record("/health", "GET", str(code), time.perf_counter() - started)
            self._send(code, json.dumps(body).encode(), "application/json")
            return
        self._send(404, json.dumps({"error": "not found", "path": path}).encode(), "application/json")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass  # no access log on the console's terminal
