"""No data is not ok (issue 13): an error-rates source that answered with
not one number is `unknown`, on screen, in `status` and its exit status;
and unknown is no breach: nothing crosses, nothing is suggested."""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import pytest

from console import config, themes
from console.config import PrometheusTarget, ServiceTarget
from console.incident.export import postmortem_markdown
from console.incident.journal import Journal
from console.incident.session import IncidentSession
from console.readings import STATE_MARK
from console.sources import overall, poll_judged
from console.sources.errors import PrometheusErrors
from console.thresholds import DEFAULTS
from console.vocabulary import Snapshot, State, utcnow
from console.widgets.colours import Colours
from console.widgets.pane import state_cell
from httpfaults import FaultServer, Reply, json_reply
from scripted import Clock

EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}
SHIPPED = sorted(p.stem for p in themes.SHIPPED.glob("*.yaml"))


def _no_data(name: str = "payments-api") -> Snapshot:
    return Snapshot("errors", name, State.UNKNOWN, utcnow(),
                    metrics={"error_ratio": None, "request_rate": None, "p95_latency_s": None, "via": "prometheus"},
                    details={"notes": ("error_ratio: no data (no series matched)",), "no_data": True})


async def test_an_answer_without_one_number_is_unknown():
    async with httpx.AsyncClient() as client:
        with FaultServer({"/api/v1/query": json_reply(EMPTY)}) as prom:
            source = PrometheusErrors(ServiceTarget("payments-api", "http://api.invalid/", job="wrong-job"),
                                      PrometheusTarget(prom.url(""), 1.0), client)
            snap = await poll_judged(source, DEFAULTS)
    assert snap.state is State.UNKNOWN and snap.reachable and snap.breaches == ()
    assert snap.to_json()["state"] == "unknown"


def test_unknown_is_worse_than_ok_and_better_than_warning():
    assert State.OK.worst(State.UNKNOWN) is State.UNKNOWN
    assert State.UNKNOWN.worst(State.WARNING) is State.WARNING
    ok = Snapshot("redis", "cache", State.OK, utcnow())
    assert overall([ok, _no_data()]) is State.UNKNOWN  # not ok: status exits 1


async def _status(path, *extra: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "console", "status", "--config", str(path), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert "Traceback" not in err.decode(), err.decode()
    return proc.returncode, out.decode()


async def test_status_says_unknown_and_exits_one(tmp_path):
    with FaultServer({"/health": Reply(200, "ok"), "/api/v1/query": json_reply(EMPTY)}) as server:
        path = tmp_path / "c.yaml"
        path.write_text(f"services:\n  - name: payments-api\n    url: {server.url('/health')}\n"
                        f"prometheus:\n  url: {server.url('')}\n")
        code, out = await _status(path, "--json")
        by_kind = {s["kind"]: s for s in json.loads(out)["sources"]}
        assert (code, by_kind["errors"]["state"], by_kind["http"]["state"]) == (1, "unknown", "ok")
        code, out = await _status(path)
        row = next(line for line in out.splitlines() if line.startswith("errors"))
        assert code == 1 and "○ none" in row


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_theme_draws_unknown_in_a_colour_of_its_own(name):
    spec = themes.read(themes.SHIPPED / f"{name}.yaml")
    unknown = spec.variables["state-unknown"]
    others = {spec.variables[f"state-{s.value}"] for s in State if s is not State.UNKNOWN}
    assert unknown not in others
    cell = state_cell(State.UNKNOWN, Colours(spec.variables))
    assert cell.plain == "○ none"
    assert cell.style.color == Colours(spec.variables).rich("state-unknown") is not None


def test_unknown_has_a_mark_of_its_own():
    # A tab shows a pane's worst state by its symbol alone: "◌" already means stale.
    symbols = [mark.split()[0] for mark in STATE_MARK.values()] + ["◌"]
    assert STATE_MARK[State.UNKNOWN].split()[0] == "○" and symbols.count("○") == 1


def test_unknown_is_no_breach_no_suggestion_and_no_affected_source(tmp_path):
    journal = Journal(tmp_path / "incident.json", operator={"user": "oncall"}, clock=Clock(utcnow()))
    session = IncidentSession(config.parse("refresh: 1\n", "t.yaml", env={}), journal)
    session.load_playbooks()
    seen = [session.observe(_no_data()) for _ in range(4)]
    assert not any(o.events or o.suggestions or o.ticks for o in seen)
    assert session.crossings.settled(("errors", "payments-api")).state is State.UNKNOWN
    assert "**Sources Affected:** none recorded" in postmortem_markdown(session.events(), utcnow())


async def test_status_on_a_scraped_service_reads_twice_and_reports_its_rates(tmp_path):
    """A first scrape is only a baseline (rates need two): `status` once
    reported such a service as unknown and exited 1 although it answered."""
    exposition = ('# TYPE http_requests_total counter\n'
                  'http_requests_total{code="200"} 100\nhttp_requests_total{code="500"} 1\n')
    with FaultServer({"/health": Reply(200, "ok"),
                      "/metrics": Reply(200, exposition, "text/plain; version=0.0.4")}) as server:
        path = tmp_path / "c.yaml"
        path.write_text(f"services:\n  - name: api\n    url: {server.url('/health')}\n"
                        f"    metrics: {server.url('/metrics')}\n")
        code, out = await _status(path, "--json")
        errors = next(s for s in json.loads(out)["sources"] if s["kind"] == "errors")
        # No request between the two scrapes: a rate of 0/s, read, not a baseline.
        assert (code, errors["state"], errors["metrics"]["request_rate"]) == (0, "ok", 0.0)
        assert sum(1 for seen in server.seen if "/metrics" in str(seen)) == 2
