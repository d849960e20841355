"""Issue 10, class 6: hostile configs and playbooks.

Each gets ``path:line: message`` and exit 2 from ``check`` and ``status``,
never a traceback or an "ExceptionGroup"; a broken playbook file never stops
monitoring.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from console import cli, config, located
from console.located import Invalid
from console.playbooks import load_playbooks
from console.sources.base import describe_error
from console.sources.http import FetchError, fetch, new_client
from scripted import ScriptedSource
from screen import wait

ROOT = Path(__file__).resolve().parent.parent


def problems_of(text: str, name: str = "c.yaml") -> list[str]:
    with pytest.raises(Invalid) as caught:
        config.parse(text, name, env={"PGPASSWORD": "pw"})
    return [str(p) for p in caught.value.problems]


def run_cli(*argv: str, capsys) -> tuple[int, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


# ---- deep nesting ------------------------------------------------------------

DEEP = {
    "flow sequence": "refresh: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "flow mapping": "refresh: " + "{" * 100_000 + "\n",
    "block mappings": "".join(" " * i + "k:\n" for i in range(1500)),
    "block sequences": "".join(" " * i + "-\n" for i in range(1500)),
}


@pytest.mark.parametrize("text", DEEP.values(), ids=DEEP.keys())
@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure-python"])
def test_deep_nesting_is_a_located_problem(text, libyaml, monkeypatch):
    if not libyaml:
        monkeypatch.setattr(yaml, "__with_libyaml__", False)
    with pytest.raises(Invalid) as caught:
        located.parse(text, "deep.yaml")
    (problem,) = caught.value.problems
    assert problem.path == "deep.yaml" and problem.line >= 1
    assert "nest" in problem.message


def test_nesting_within_the_limit_loads():
    text = "a: " + "[" * (located.MAX_DEPTH - 1) + "1" + "]" * (located.MAX_DEPTH - 1) + "\n"
    assert located.parse(text, "ok.yaml").data["a"]


def test_an_alias_inside_its_own_anchor_is_refused():
    with pytest.raises(Invalid, match=r"r.yaml:1: nested more than \d+ levels deep"):
        located.parse("a: &a [*a]\n", "r.yaml")


def test_check_and_status_exit_2_on_deep_nesting(tmp_path, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text(DEEP["flow mapping"])
    for command in ("check", "status"):
        code, out = run_cli(command, "--config", str(path), capsys=capsys)
        assert code == 2
        assert f"{path}:1: " in out and "Traceback" not in out and "RecursionError" not in out


def test_the_console_itself_exits_2_without_a_traceback(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text(DEEP["block mappings"])
    done = subprocess.run([sys.executable, "-m", "console", "--config", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert f"{path}:" in done.stderr and "Traceback" not in done.stderr + done.stdout


# ---- aliases: count expansion, not size --------------------------------------

def billion_laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_at_the_line_that_expands():
    with pytest.raises(Invalid) as caught:
        located.parse(billion_laughs(), "lol.yaml")
    (problem,) = caught.value.problems
    assert "alias bomb" in problem.message and 2 <= problem.line <= 9


def test_a_long_file_without_aliases_is_not_an_alias_bomb(monkeypatch):
    monkeypatch.setattr(located, "MAX_ALIAS_EXPANSION", 50)
    items = "".join(f"  - {{id: s{i}, n: {i}}}\n" for i in range(1000))  # 3000 values, no alias
    assert len(located.parse("steps:\n" + items, "long.yaml").data["steps"]) == 1000
    with pytest.raises(Invalid, match="alias bomb"):
        located.parse("base: &b {" + ", ".join(f"k{i}: {i}" for i in range(30)) + "}\n"
                      "x: [*b, *b]\n", "bomb.yaml")


def test_merge_keys_count_as_expansion(monkeypatch):
    monkeypatch.setattr(located, "MAX_ALIAS_EXPANSION", 20)
    base = "base: &b {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}\n"
    assert located.parse(base + "one: {<<: *b}\n", "m.yaml").data["one"]["k9"] == 9
    with pytest.raises(Invalid, match="alias bomb"):
        located.parse(base + "".join(f"m{i}: {{<<: *b}}\n" for i in range(5)), "m.yaml")


def test_a_60k_step_playbook_without_aliases_loads(tmp_path):
    steps = "".join(f"  - {{id: s{i}, title: step {i}, kind: check}}\n" for i in range(60_000))
    (tmp_path / "big.yaml").write_text("id: big\ntitle: Big\nsteps:\n" + steps)
    books, problems = load_playbooks([tmp_path])
    assert problems == []
    assert len(books[0].steps) == 60_000


def test_a_billion_laughs_playbook_is_one_problem_and_the_others_load(tmp_path):
    (tmp_path / "bomb.yaml").write_text(billion_laughs())
    (tmp_path / "good.yaml").write_text("id: good\ntitle: Good\nsteps:\n  - {id: a, title: A, kind: check}\n")
    books, problems = load_playbooks([tmp_path])
    assert [b.id for b in books] == ["good"]
    assert [p.path for p in problems] == [str(tmp_path / "bomb.yaml")]


def test_a_bug_reading_one_playbook_file_costs_that_file_only(tmp_path, monkeypatch):
    from console.playbooks import load as load_module

    (tmp_path / "a.yaml").write_text("id: a\ntitle: A\nsteps:\n  - {id: s, title: S, kind: check}\n")
    (tmp_path / "b.yaml").write_text("id: b\ntitle: B\nsteps:\n  - {id: s, title: S, kind: check}\n")
    real = load_module._FileReader.playbooks

    def broken(self):
        if self.doc.path.endswith("a.yaml"):
            raise RecursionError("maximum recursion depth exceeded")
        return real(self)

    monkeypatch.setattr(load_module._FileReader, "playbooks", broken)
    books, problems = load_playbooks([tmp_path])
    assert [b.id for b in books] == ["b"]
    assert str(problems[0]).startswith(f"{tmp_path / 'a.yaml'}:1: could not be read: RecursionError")


# ---- addresses -------------------------------------------------------------------

BAD_ADDRESSES = [
    ("postgres", "dsn", "postgresql://u:p@[::1/app", "unclosed '['"),
    ("postgres", "dsn", "postgresql://u:${PGPASSWORD}@db:99999/app", "port must be a number from 1 to 65535"),
    ("postgres", "dsn", "postgresql://u@db:0/app", "port must be a number from 1 to 65535"),
    ("postgres", "dsn", "postgresql://u@db:abc/app", "port must be a number from 1 to 65535"),
    ("postgres", "dsn", "postgresql://u@db:5432,db2:70000/app", "port must be a number from 1 to 65535"),
    ("services", "url", "http://127.0.0.1:99999/health", "port must be a number from 1 to 65535"),
    ("services", "url", "http://:8080/health", "names no host"),
    ("services", "url", "http:///health", "names no host"),
    ("services", "url", "http://☃.example/health", "not a valid host name"),
    ("services", "url", "http://api internal/health", "not a valid host name"),
    ("services", "url", "http://[fe80::zz]/health", "not valid"),
    ("redis", "url", "redis://cache:6379/-1", "database must be a number of 0 or more, not '-1'"),
    ("redis", "url", "redis://cache:6379/x", "database must be a number of 0 or more, not 'x'"),
    ("redis", "url", "redis://cache:6379?db=x", "database must be a number of 0 or more"),
]


@pytest.mark.parametrize("section, key, url, message", BAD_ADDRESSES, ids=[a[2] for a in BAD_ADDRESSES])
def test_bad_addresses_are_refused_with_their_line(section, key, url, message):
    text = f"refresh: 2\n{section}:\n  - name: x\n    {key}: {url}\n"
    (problem,) = problems_of(text)
    assert problem.startswith(f"c.yaml:4: '{section}[0].{key}': ")
    assert message in problem
    assert "pw" not in problem.split(":", 2)[2]  # never the password from ${PGPASSWORD}


GOOD_ADDRESSES = [
    ("postgres", "dsn", "postgresql://u:${PGPASSWORD}@[::1]:5432/app"),
    ("postgres", "dsn", "postgresql://u@db1:5432,db2:5433/app?target_session_attrs=read-write"),
    ("postgres", "dsn", "postgresql:///app?host=/var/run/postgresql"),
    ("postgres", "dsn", "postgresql://u@/app"),  # libpq: PGHOST, a service file or its default socket
    ("services", "url", "http://exämple.internal/health"),
    ("services", "url", "http://checkout_api:8080/health"),
    ("redis", "url", "redis://cache:6379/15"),
    ("redis", "url", "unix:///run/redis.sock"),
]


@pytest.mark.parametrize("section, key, url", GOOD_ADDRESSES, ids=[a[2] for a in GOOD_ADDRESSES])
def test_good_addresses_load(section, key, url):
    config.parse(f"{section}:\n  - name: x\n    {key}: {url}\n", "c.yaml", env={"PGPASSWORD": "pw"})


def test_status_with_a_bad_port_exits_2_without_exception_group(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("services:\n  - name: api\n    url: http://127.0.0.1:99999/health\n")
    code, out = run_cli("status", "--config", str(path), capsys=capsys)
    assert code == 2
    assert f"{path}:3: 'services[0].url': the port must be a number" in out
    assert "ExceptionGroup" not in out and "Traceback" not in out


async def test_a_bad_port_at_fetch_time_is_one_line_not_an_exception_group():
    # The config refuses it first; a source built by hand must not show a
    # task group either.
    client = new_client()
    try:
        with pytest.raises(FetchError) as caught:
            await fetch(client, "http://127.0.0.1:99999/health", timeout=2)
    finally:
        await client.aclose()
    assert "ExceptionGroup" not in str(caught.value) and "65535" in str(caught.value)


def test_describe_error_names_what_is_inside_an_exception_group():
    group = ExceptionGroup("unhandled errors in a TaskGroup", [OverflowError("connect(): port must be 0-65535.")])
    assert describe_error(group) == "OverflowError: connect(): port must be 0-65535."


# ---- numbers ---------------------------------------------------------------------

@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "-1"])
def test_thresholds_must_be_finite_and_not_negative(value):
    text = f"refresh: 2\nthresholds:\n  postgres.connections_ratio:\n    warning: {value}\n    critical: 0.9\n"
    (problem,) = problems_of(text)
    assert problem.startswith("c.yaml:4: 'thresholds.postgres.connections_ratio.warning' must be a finite number")


@pytest.mark.parametrize("value", [".nan", ".inf", "-1", "0"])
def test_refresh_and_timeouts_must_be_in_range(value):
    text = f"refresh: {value}\nservices:\n  - name: api\n    url: http://api/health\n    timeout: {value}\n"
    problems = problems_of(text)
    assert problems[0].startswith("c.yaml:1: 'refresh' must be between")
    assert problems[1].startswith("c.yaml:5: 'services[0].timeout' must be between")


# ---- a broken playbook never stops monitoring ------------------------------------

def _console_with_playbooks(tmp_path: Path):
    from console.app import IncidentConsole

    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "deep.yaml").write_text(DEEP["flow mapping"])
    (books / "bomb.yaml").write_text(billion_laughs())
    (books / "shape.yaml").write_text("id: x\ntitle: X\nsteps: {not: a list}\n")
    cfg = config.parse(f"refresh: 0.2\nplaybooks: [{books}]\n", str(tmp_path / "c.yaml"), env={})
    sources = [ScriptedSource("postgres", "primary", metrics={"connections_total": 1, "max_connections": 10}),
               ScriptedSource("redis", "cache", metrics={"connected_clients": 1, "maxclients": 10})]
    return IncidentConsole(cfg, sources=sources), books


def _every_pane_read(app) -> bool:
    return all(pane.snapshots for pane in app.main.panes if pane.id in ("postgres", "redis"))


async def test_broken_playbook_files_are_shown_and_every_pane_reads(tmp_path):
    app, books = _console_with_playbooks(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait(pilot, lambda: _every_pane_read(app), what="first readings")
        await wait(pilot, lambda: app.session.desk is not None, what="playbooks loaded")

        def said(name: str) -> bool:
            # A toast is a message to the app: it lands a moment after the desk does.
            return any(str(n.message).startswith(f"{books / name}:") for n in app._notifications)
        for name in ("deep.yaml", "bomb.yaml", "shape.yaml"):
            await wait(pilot, lambda: said(name), what=f"{name} shown")


async def test_playbooks_that_hang_or_crash_never_hold_back_readings(tmp_path, monkeypatch):
    import console.incident.desk as desk_module

    release = threading.Event()

    class StuckDesk:
        def __init__(self, config) -> None:
            release.wait(30)  # a playbook file that takes forever to read
            raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(desk_module, "PlaybookDesk", StuckDesk)
    app, _ = _console_with_playbooks(tmp_path)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait(pilot, lambda: _every_pane_read(app), what="first readings while playbooks load")
            assert app.session.desk is None
            release.set()
            await wait(pilot, lambda: app.playbooks_error is not None, what="the playbook error")
            assert "RecursionError" in app.playbooks_error
            assert any("playbooks not loaded" in str(n.message) for n in app._notifications)
            polls = sum(s.polls for s in app.sources)
            await asyncio.sleep(0.6)
            assert sum(s.polls for s in app.sources) > polls  # still monitoring
    finally:
        release.set()
