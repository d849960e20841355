"""`incident-console incidents`: the incident log of the data directory.

A broken, hostile or foreign file there is listed as what it is and never
stops the list; a symlink out of the data directory is not followed."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

from console import cli
from console.incident.journal import Journal
from scripted import Clock
from test_export import ALICE, T0, demo_walk


@pytest.fixture()
def incidents(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("INCIDENT_CONSOLE_CONFIG", "INCIDENT_CONSOLE_INCIDENT"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "data" / "incident-console" / "incidents"
    folder.mkdir(parents=True)
    return folder


def _ongoing(path: Path) -> None:
    clock = Clock(T0 - timedelta(days=3))
    journal = Journal(path, operator=ALICE, clock=clock)
    journal.append("incident.declared", title="Slow | queries", severity="P2")
    clock.at(5)
    journal.append("incident.acknowledged")
    journal.close()


def _run(capsys, *argv: str) -> str:
    assert cli.main(["incidents", *argv]) == 0
    return capsys.readouterr().out


def test_past_incidents_are_listed_oldest_first(incidents, tmp_path, capsys):
    walked, _, _ = demo_walk(tmp_path / "walk")
    walked.close()
    (incidents / "2026-11-22.json").write_bytes((tmp_path / "walk" / "incident.json").read_bytes())
    _ongoing(incidents / "current.json")
    lines = _run(capsys).splitlines()
    assert lines[0].split() == ["DATE", "SEV", "DURATION", "TTA", "TTM", "TTR", "STATUS", "TITLE"]
    assert lines[1].split()[:3] == ["2026-11-19", "14:30", "P2"]  # the older one, still going
    assert re.search(r"P2\s+\d+ d( \d+ h)?\+\s+5 min\s", lines[1])  # runs to now; TTA fixed
    assert "Investigating" in lines[1] and lines[1].endswith("Slow | queries")
    assert lines[2].split()[:12] == ["2026-11-22", "14:30", "P1", "42", "min", "3", "min", "20", "min",
                                     "42", "min", "Resolved"]
    assert lines[2].endswith("API returning 500s")


def test_markdown_prints_the_runbooks_incident_log(incidents, tmp_path, capsys):
    walked, _, _ = demo_walk(tmp_path / "walk")
    walked.close()
    (incidents / "a.json").write_bytes((tmp_path / "walk" / "incident.json").read_bytes())
    _ongoing(incidents / "b.json")
    lines = _run(capsys, "--markdown").splitlines()
    assert lines[:2] == ["| Date | Severity | Duration | Issue | Resolution |",
                         "|------|----------|----------|-------|------------|"]
    assert lines[2].startswith("| 2026-11-19 | P2 | ongoing, ")  # runs to now
    assert lines[2].endswith(" | Slow \\| queries | Investigating |")
    assert lines[3] == "| 2026-11-22 | P1 | 42 min | API returning 500s | " \
                       "Rolled back deploy 4711 and terminated idle backends |"
    assert len(lines) == 4


def test_corrupt_foreign_and_odd_files_are_listed_never_crash(incidents, tmp_path, capsys):
    _ongoing(incidents / "good.json")
    (incidents / "corrupt.json").write_bytes(b"{\x00\xff not json")
    (incidents / "array.json").write_text("[1, 2, 3]")
    (incidents / "empty.json").write_text("")
    (incidents / "dir.json").mkdir()
    os.mkfifo(incidents / "fifo.json")
    (incidents / "notes.txt").write_text("not a journal")
    out = _run(capsys)
    rows = {line.split()[-1]: line for line in out.splitlines()[1:]}
    assert set(rows) == {"queries", "corrupt.json", "array.json", "empty.json", "dir.json",
                         "fifo.json"}
    assert "unreadable" in rows["corrupt.json"] and "unreadable" in rows["array.json"]
    assert "no incident declared" in rows["empty.json"]
    assert "not a regular file" in rows["dir.json"] and "not a regular file" in rows["fifo.json"]


def test_a_symlink_out_of_the_data_directory_is_not_followed(incidents, tmp_path, capsys):
    outside = tmp_path / "elsewhere.json"
    _ongoing(outside)
    (incidents / "link.json").symlink_to(outside)
    inside = incidents / "real.json"
    _ongoing(inside)
    (incidents / "alias.json").symlink_to(inside)
    out = _run(capsys)
    link = next(line for line in out.splitlines() if line.endswith("link.json"))
    assert "symlink out of the data directory" in link
    assert out.count("Slow | queries") == 2  # the real one and its alias inside the folder
    md = _run(capsys, "--markdown")
    assert "| link.json | a symlink out of the data directory, not followed |" in md


def test_no_data_directory_yet_is_an_empty_log(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "nothing"))
    assert cli.main(["incidents"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no incident journals" in captured.err
    assert cli.main(["incidents", "--markdown"]) == 0
    assert capsys.readouterr().out.count("\n") == 2
