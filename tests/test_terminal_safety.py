"""Hostile strings put into real servers, and what reaches the terminal.

A query text in pg_stat_activity, a Redis client name, a deployment name and
an event message in a Kubernetes API answer, and an HTTP error body carry
Rich markup, CSI/OSC sequences (an OSC 52 clipboard write, an OSC 8 link),
BEL, NUL, CR, right-to-left overrides, very long lines and wide characters.
The whole app runs headless against them and every widget's rendered strips
are checked, then `status` (table and --json), the journal and the exports.
(console.text.inert itself is fuzzed in tests/test_text.py.)
"""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
import unicodedata

import psycopg
import pytest
import redis as redis_sync

from console import config
from console.app import IncidentConsole
from console.incident.journal import Journal
from console.demo.kubefake import KubeFake, load_responses
from console.widgets.postgres import PostgresPane
from console.widgets.services import ServicesPane
from httpfaults import FaultServer, Reply
from screen import FORBIDDEN, latest, live_yaml, screen_text, wait, widget_texts
from test_source_kubernetes import RECORDED

# Each fragment is tagged so that its visible remains can be found on screen.
HOSTILE = {
    "markup": "[bold red]MARKUP[/bold red]",
    "link": "[link=https://evil.example/]LINK[/link]",
    "csi": "\x1b[31mCSI\x1b[0m\x1b[2J\x1b[H",
    "osc52": "\x1b]52;c;cm0gLXJmIH4K\x07OSC52",
    "osc8": "\x1b]8;;https://evil.example\x1b\\OSC8\x1b]8;;\x1b\\",
    "bel": "BEL\x07\x07",
    "cr": "CR\rOVERWRITTEN",
    "c1": "\x9b31mC1\x9d0;title\x9c",
    "bidi": "BIDI\u202egnp.exe\u2066x\u2069",
    "wide": "WIDE宽字符🚀",
    "nul": "NUL\x00NUL",
    "invisible": "INVISIBLE\u200b\u200d\u2060\ufeff\u061c\u00ad\u2028\U000e0041",
}
LONG = "LONG" + "x" * 20000
SURFACES_CHECKED: dict[str, int] = {}


def hostile(without: tuple[str, ...] = ()) -> str:
    return " ".join(v for k, v in HOSTILE.items() if k not in without)


def assert_inert(text: str, where: str) -> None:
    bad = FORBIDDEN.search(text)
    assert bad is None, f"{where}: {bad.group()!r} reached the terminal near {text[max(0, bad.start() - 40):bad.end() + 40]!r}"
    invisible = {c for c in text if c != "\n" and unicodedata.category(c) in ("Cf", "Zl", "Zp", "Cs")}
    assert not invisible, f"{where}: {sorted(invisible)!r} reached the terminal"
    assert "]8;;" not in text and "52;c;" not in text, f"{where}: an OSC payload survived"


def assert_no_links(app) -> None:
    for strip in app.screen._compositor.render_strips():
        for segment in strip:
            assert not (segment.style and segment.style.link), f"a link reached the screen: {segment!r}"


@pytest.fixture
def k8s(tmp_path):
    responses = copy.deepcopy(load_responses(RECORDED))
    responses["events"]["items"][0]["message"] = hostile()
    responses["deployments"]["items"][0]["metadata"]["name"] = "api" + HOSTILE["csi"] + HOSTILE["bidi"]
    with KubeFake(responses, live=True) as fake:
        yield fake.write_kubeconfig(tmp_path / "kubeconfig", context="test", namespace="app")


async def test_hostile_strings_from_real_servers_reach_the_screen_inert(pg_server, redis_server, k8s, tmp_path):
    text = hostile(without=("nul",))  # PostgreSQL text cannot hold NUL
    with FaultServer({"/health": Reply(500, hostile() + LONG)}) as http:
        cfg_text = live_yaml(pg_server.dsn(), redis_server.url) + f"""services:
  - name: api
    url: {http.url('/health')}
kubernetes:
  context: test
  namespaces: [app]
  kubeconfig: {k8s}
  timeout: 2
"""
        cfg = config.parse(cfg_text, "hostile.yaml", env={})
        literal = text.replace("'", "''")
        query = f"SELECT '{literal}', pg_sleep(30)"
        session = await psycopg.AsyncConnection.connect(
            pg_server.dsn(), application_name="[red]APP[/red]\x1b[31m", autocommit=True)
        running = asyncio.create_task(session.execute(query))
        named = redis_sync.Redis(host="127.0.0.1", port=redis_server.port)
        named.client_setname("[bold]CLIENT[/bold]")  # Redis refuses spaces and controls in names
        journal = Journal(tmp_path / "incident.json")
        app = IncidentConsole(cfg, journal=journal)
        try:
            async with app.run_test(size=(200, 60)) as pilot:
                pg, svc = app.query_one(PostgresPane), app.query_one(ServicesPane)
                await wait(pilot, lambda: latest(pg) and any(
                    "pg_sleep" in (s.get("query") or "") for s in latest(pg).details.get("sessions", ())),
                    what="hostile query seen")
                await wait(pilot, lambda: len(svc.snapshots) == 2, timeout=15, what="services read")
                await pilot.press("n", *"note ", "enter")
                await pilot.pause(0.5)
                shown = screen_text(app)
                assert "SELECT '[bold red]MARKUP" in shown and "Pod/worker" in shown  # markup shown as written, not parsed
                assert_inert(shown, "screen")
                assert_no_links(app)
                widgets = widget_texts(app)
                for where, rendered in widgets.items():
                    assert_inert(rendered, where)
                # Each surface really carried the hostile text into a pane's cells
                # (which are wider than what fits on this screen).
                cells = []
                for pane in app.main.panes:
                    for key in pane.table.rows:
                        cells += pane.table.get_row(key)
                for cell in cells:
                    assert_inert(cell.plain, f"cell {cell.plain[:40]!r}")
                    assert not any("link" in str(span.style) for span in cell.spans)
                every = "\n".join(cell.plain for cell in cells)
                for marker in ("MARKUP", "CSI", "BIDI", "WIDE"):
                    assert every.count(marker) >= 2, marker  # the query and the event message
                SURFACES_CHECKED.update({"postgres query": len(HOSTILE) - 1, "kubernetes event": len(HOSTILE),
                                         "kubernetes name": 2,
                                         "postgres application_name": 1, "redis client name": 1})
                await pilot.press("q")

            # `status`, as a table and as JSON, in its own process.
            path = tmp_path / "hostile.yaml"
            path.write_text(cfg_text)
            path.chmod(0o600)
            for extra in ([], ["--json"]):
                done = subprocess.run([sys.executable, "-m", "console", "status", "--config", str(path), *extra],
                                      capture_output=True, text=True, timeout=30,
                                      env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
                assert "Traceback" not in done.stderr
                assert done.returncode == 1, done.stderr  # the API answers 500
                assert_inert(done.stdout, f"status {extra}")
                assert "api" in done.stdout  # status shows names, states and errors, not query texts
                if extra:
                    json.loads(done.stdout)
            SURFACES_CHECKED["status (same hostile servers)"] = len(HOSTILE)
        finally:
            running.cancel()
            await session.close()
            named.close()


def test_hostile_notes_in_the_journal_and_exports_stay_inert(tmp_path):
    incident = tmp_path / "incident.json"
    run = lambda *args: subprocess.run([sys.executable, "-m", "console", *args, "--incident", str(incident)],
                                       capture_output=True, text=True, timeout=30)
    for key, value in HOSTILE.items():
        if key == "nul":  # argv cannot carry NUL: written as another writer would
            Journal(incident).note(value)
            continue
        done = run("note", value)
        assert done.returncode == 0, done.stderr
    run("note", LONG)
    stored = [e.data["text"] for e in Journal(incident).events()]
    assert stored[:1] and all(isinstance(s, str) for s in stored)
    for fmt in ("markdown", "json"):
        done = run("export", "--format", fmt)
        assert done.returncode == 0 and "Traceback" not in done.stderr
        if fmt == "markdown":
            assert_inert(done.stdout, "export markdown")
            assert "MARKUP" in done.stdout and "WIDE宽字符" in done.stdout
            assert len(max(done.stdout.splitlines(), key=len)) < 5000
        else:  # the raw journal: escaped by JSON (no control byte on the terminal), kept as written
            assert FORBIDDEN.search(done.stdout) is None
            assert [n for n in json.dumps(json.loads(done.stdout)) if n == "\x1b"] == []
    SURFACES_CHECKED["journal export"] = len(HOSTILE) + 1
