"""Issue 10, class 5: attacks on the journal.

A full disk at quit and at `note`, `--incident` through symlinks and onto
special files, `export -o` onto the journal, entries another program wrote
that cannot be understood, and a journal of 50,000 entries. Every special
file is made inside the test's own temporary directory; the full disk is a
real tmpfs (skipped, with the reason, where mount is not permitted)."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from console import config
from console.app import IncidentConsole
from console.incident import recovery
from console.incident import storage as storage_module
from console.incident.journal import Journal, new_event, write_event
from console.incident.storage import JournalStorage
from disks import fill
from screen import wait, widget_texts

ROOT = Path(__file__).resolve().parent.parent
ALICE = {"user": "alice", "ssh_client": None}
CFG = config.parse("refresh: 5\n", "t.yaml", env={})


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    """Recovery files fall back to the XDG data dir: a temporary one."""
    home = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


def _run(*argv, timeout=30, env=None):
    """The real command in a child process: a hang is a failure, not a stuck test."""
    return subprocess.run([sys.executable, "-m", "console", *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def _journal(path: Path, *texts: str) -> list[str]:
    journal = Journal(path, operator=ALICE)
    ids = [journal.note(text).id for text in texts]
    journal.close()
    return ids


def _texts(path: Path) -> list[str]:
    return [e.data.get("text") for e in Journal(path, operator=ALICE).events() if e.kind == "note"]


# -- a full disk -------------------------------------------------------------------

def test_note_on_a_full_disk_says_where_the_entry_is_and_it_is_merged_back(small_disk, data_home):
    path = small_disk / "journal.json"
    _journal(path, "before")
    before = path.read_bytes()
    filler = fill(small_disk)

    # Longer than a page: an entry that fits the file's last page is written.
    text = "written while the disk is full " + "x" * 5000
    done = _run("note", "--incident", str(path), text)
    assert done.returncode == 1
    assert "disk full (No space left on device)" in done.stderr and "kept in memory" not in done.stderr
    [saved] = recovery.find(path)
    assert saved.parent == data_home / "incident-console" / "unwritten"  # the full disk took nothing
    assert str(saved) in done.stderr and path.read_bytes() == before

    filler.unlink()
    again = _run("note", "--incident", str(path), "after")
    assert again.returncode == 0, again.stderr
    assert _texts(path) == ["before", text, "after"]
    assert recovery.find(path) == []


def test_merging_a_recovery_file_twice_adds_nothing(tmp_path):
    path = tmp_path / "journal.json"
    _journal(path, "first")
    event = new_event("note", ALICE, datetime.now(timezone.utc), text="recovered", tags=[], pinned=False)
    saved = recovery.save(path, [event.to_document()])
    copy = saved.read_bytes()
    assert _texts(path) == ["first", "recovered"] and not saved.exists()
    saved.write_bytes(copy)  # the same file again (restored from a backup)
    assert _texts(path) == ["first", "recovered"] and not saved.exists()


def test_note_says_the_entry_was_not_saved_when_nothing_can_be_written(small_disk):
    path = small_disk / "journal.json"
    _journal(path, "before")
    fill(small_disk)
    done = _run("note", "--incident", str(path), "lost unless printed " + "x" * 5000,
                env={"XDG_DATA_HOME": str(small_disk / "data")})
    assert done.returncode == 1
    assert "the entry was NOT saved" in done.stderr and "lost unless printed" in done.stderr
    assert "kept in memory" not in done.stderr


def test_an_append_in_place_on_a_full_disk_leaves_the_file_as_it_was(small_disk):
    path = small_disk / "journal.json"
    _journal(path, *[f"note {n}" for n in range(40)])
    before = path.read_bytes()
    fill(small_disk)
    # Big enough to need a new page of the file.
    event = new_event("note", ALICE, Journal(path, operator=ALICE).events()[-1].at, text="x" * 20000)
    with pytest.raises(OSError) as raised:
        JournalStorage(path).append_in_place("events", event.to_document())
    assert raised.value.errno == errno.ENOSPC
    assert path.read_bytes() == before


def _console(path: Path) -> tuple[IncidentConsole, Journal]:
    journal = Journal(path, operator=ALICE)
    return IncidentConsole(CFG, sources=[], journal=journal), journal


async def test_quitting_with_unwritten_entries_saves_them_names_the_file_and_merges_them(small_disk, data_home):
    path = small_disk / "journal.json"
    app, journal = _console(path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("n", *"before", "enter")
        filler = fill(small_disk)
        await pilot.press(*"typed while the disk was full", "enter")
        await pilot.pause()
        assert len(journal.pending) == 1
        await pilot.press("escape", "q")
        await wait(pilot, lambda: app.return_code is not None or not app.is_running, what="quit")
    [saved] = recovery.find(journal.path)
    assert any(str(saved) in message for message in app.exit_messages)
    filler.unlink()
    assert _texts(path) == ["before", "typed while the disk was full"]
    assert recovery.find(journal.path) == []


async def test_quit_is_refused_when_nothing_can_be_saved_and_forced_quit_prints_the_entries(
        small_disk, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(small_disk / "data"))
    path = small_disk / "journal.json"
    app, journal = _console(path)
    shown = []
    notify = app.notify
    app.notify = lambda message, **kw: (shown.append(message), notify(message, **kw))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("n", *"before", "enter")
        fill(small_disk)
        await pilot.press(*"nowhere to go", "enter", "escape")
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running and any("Not quitting" in m and "press q again" in m for m in shown)
        await pilot.press("q")
        await wait(pilot, lambda: not app.is_running, what="forced quit")
    assert any("NOT saved" in m and "nowhere to go" in m for m in app.exit_messages)


# -- paths -------------------------------------------------------------------------

def test_a_symlinked_journal_is_written_through_to_its_target(tmp_path):
    target = tmp_path / "real.json"
    _journal(target, "first")
    link = tmp_path / "link.json"
    link.symlink_to("real.json")
    assert _run("note", "--incident", str(link), "through the link").returncode == 0
    journal = Journal(link, operator=ALICE)
    journal.note("and from the console's journal")  # the rename-replace way
    journal.close()
    assert link.is_symlink() and os.readlink(link) == "real.json"
    assert _texts(target) == ["first", "through the link", "and from the console's journal"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("xdg")) == [
        "link.json", "real.json", "real.json.lock"]


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to("made.json")
    assert _run("note", "--incident", str(link), "first").returncode == 0
    assert link.is_symlink() and _texts(tmp_path / "made.json") == ["first"]


def _fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path, "FIFO"


def _device(tmp_path):
    path = tmp_path / "null"
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    return path, "character device"


def _directory(tmp_path):
    path = tmp_path / "dir"
    path.mkdir()
    return path, "directory"


def _under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    return tmp_path / "file" / "journal.json", "is a file, not a directory"


def _socket(tmp_path):
    import socket

    path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    return path, "socket"


@pytest.mark.parametrize("make", [_fifo, _device, _directory, _under_a_file, _socket])
@pytest.mark.parametrize("command", [["note", "x"], ["export"], []])
def test_anything_but_a_regular_file_is_refused_with_one_clear_message(tmp_path, make, command):
    path, says = make(tmp_path)
    before = os.lstat(path).st_mode if path.exists() else None
    if command:
        argv = [*command[:1], "--incident", str(path), *command[1:]]
    else:  # the console itself: refused before its screen starts
        (tmp_path / "config.yaml").write_text("refresh: 5\n")
        argv = ["--config", str(tmp_path / "config.yaml"), "--incident", str(path)]
    done = _run(*argv, timeout=20)
    assert done.returncode == 2
    assert says in done.stderr and "Traceback" not in done.stderr
    if before is not None:
        assert os.lstat(path).st_mode == before  # still what it was: never replaced


def test_a_fifo_swapped_in_after_opening_is_never_replaced(tmp_path):
    path = tmp_path / "journal.json"
    journal = Journal(path, operator=ALICE)
    journal.note("first")
    path.unlink()
    os.mkfifo(path)
    journal.note("refused")
    assert journal.pending and "FIFO" in journal.write_error
    assert stat.S_ISFIFO(os.lstat(path).st_mode)


# -- export -o ---------------------------------------------------------------------

@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "other journal"])
def test_an_export_never_overwrites_a_journal(tmp_path, how):
    path = tmp_path / "journal.json"
    _journal(path, "keep me")
    target = {"same": lambda: path,
              "symlink": lambda: (tmp_path / "out.md").symlink_to(path) or tmp_path / "out.md",
              "hardlink": lambda: os.link(path, tmp_path / "out.md") or tmp_path / "out.md",
              "other journal": lambda: _journal(tmp_path / "other.json", "theirs") and tmp_path / "other.json"}[how]()
    protected = {p: p.read_bytes() for p in tmp_path.glob("*.json")}
    for fmt in ("markdown", "json"):
        done = _run("export", "--incident", str(path), "--format", fmt, "-o", str(target))
        assert done.returncode == 2 and "nothing written" in done.stderr
    assert {p: p.read_bytes() for p in tmp_path.glob("*.json")} == protected


def test_an_export_replaces_its_file_whole_or_not_at_all(small_disk):
    path = small_disk / "journal.json"
    _journal(path, *[f"a long note {n} " + "x" * 400 for n in range(30)])
    out = small_disk / "pm.md"
    out.write_text("the old post-mortem\n")
    fill(small_disk)
    done = _run("export", "--incident", str(path), "-o", str(out))
    assert done.returncode == 2 and "No space left" in done.stderr
    assert out.read_text() == "the old post-mortem\n"
    assert [p.name for p in small_disk.iterdir() if p.name.endswith(".tmp")] == []


# -- entries another program wrote --------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000
HOSTILE = {
    "NaN": b'"9":{"id":"n1","at":"2026-11-22T10:00:00Z","kind":"note","operator":{"user":"bob"},'
           b'"data":{"text":"nan","value":NaN}}',
    "Infinity": b'"9":{"id":"n2","at":"2026-11-22T10:00:00Z","kind":"probe","operator":{"user":"bob"},'
                b'"data":{"value":-Infinity}}',
    "year 1 before UTC": b'"9":{"id":"d1","at":"0001-01-01T00:30:00+01:00","kind":"note",'
                         b'"operator":{"user":"bob"},"data":{"text":"early"}}',
    "year 9999 after UTC": b'"9":{"id":"d2","at":"9999-12-31T23:59:59-01:00","kind":"update.sent",'
                           b'"operator":{"user":"bob"},"data":{"channel":"x","text":"late"}}',
    "year 9999 in UTC": b'"9":{"id":"d3","at":"9999-12-31T23:00:00Z","kind":"update.sent",'
                        b'"operator":{"user":"bob"},"data":{"channel":"x","text":"late"}}',
    "100k-deep nesting": b'"9":{"id":"deep","at":"2026-11-22T10:00:00Z","kind":"note",'
                         b'"operator":{"user":"bob"},"data":{"text":' + DEEP.encode() + b'}}',
    "500-deep nesting": b'"9":{"id":"deep","at":"2026-11-22T10:00:00Z","kind":"note",'
                        b'"operator":{"user":"bob"},"data":{"text":' + b"[" * 500 + b"]" * 500 + b'}}',
    "not JSON": b'"9":{"id": this is not json',
    "no key": b'garbage without a key',
    "binary": b'"9":\xff\xfe\x00\x1b[31m\x9b',
    "array entry": b'"9":[1,2,3]',
}
MARKUP_ID = (b'"9":{"id":"[bold red]x[/][/oops]","at":"2026-11-22T10:00:00Z","kind":"note",'
             b'"operator":{"user":"[link=https://evil]bob[/link]"},"data":{"text":"[/] markup [red]"}}')
# Understood as entries, with fields nothing expects: shown, and change nothing.
ODD = {
    "markup in id and fields": MARKUP_ID,
    "wrong types": b'"9":{"id":"w","at":"2026-11-22T10:00:00Z","kind":"note.struck","operator":{"user":"bob"},'
                   b'"data":{"note_id":["a"],"text":7,"tags":{"x":1}}}',
    "wrong types in a note": b'"9":{"id":"w2","at":"2026-11-22T10:00:00Z","kind":"note","operator":{"user":"b"},'
                             b'"data":{"text":["x"],"tags":"#a","pinned":{"x":1}}}',
    "wrong types in a tick": b'"9":{"id":"w3","at":"2026-11-22T10:00:00Z","kind":"playbook.tick",'
                             b'"operator":{"user":"b"},"data":{"playbook":{"a":[1]},"step":[{}]}}',
}


def _with_line(path: Path, line: bytes, truncated: bool = False) -> None:
    """``line`` added as the last entry of a journal by another program,
    written around this module's storage."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n}\n}\n")
    path.write_bytes(raw[:-5] + b",\n" + line + (b"" if truncated else b"\n}\n}\n"))


@pytest.mark.parametrize("name", list(HOSTILE) + ["truncated last line"])
def test_an_entry_that_cannot_be_understood_is_an_unreadable_entry_never_a_crash(tmp_path, name):
    path = tmp_path / "journal.json"
    _journal(path, "before")
    if name == "truncated last line":
        _with_line(path, b'"9":{"id":"cut","at":"2026-11-22T10:00', truncated=True)
    else:
        _with_line(path, HOSTILE[name])
    hostile = path.read_bytes().split(b"\n")[3]

    events = Journal(path, operator=ALICE).events()
    [stand_in] = [e for e in events if e.kind == "entry.unreadable"]
    assert stand_in.data["line"] == 4 and stand_in.at == events[0].at

    done = _run("note", "--incident", str(path), "after")
    assert done.returncode == 0, done.stderr
    assert hostile in [line.rstrip(b",") for line in path.read_bytes().split(b"\n")]  # kept as it was
    assert _texts(path) == ["before", "after"]
    for fmt in ("markdown", "json"):
        done = _run("export", "--incident", str(path), "--format", fmt)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "Unreadable entry (line 4)" in _run("export", "--incident", str(path)).stdout


@pytest.mark.parametrize("name", list(ODD))
def test_an_entry_with_odd_fields_is_shown_as_written_and_breaks_nothing(tmp_path, name):
    path = tmp_path / "journal.json"
    _journal(path, "before")
    _with_line(path, ODD[name])
    events = Journal(path, operator=ALICE).events()
    assert len(events) == 2 and not any(e.kind == "entry.unreadable" for e in events)
    assert _run("note", "--incident", str(path), "after").returncode == 0
    for fmt in ("markdown", "json"):
        done = _run("export", "--incident", str(path), "--format", fmt)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_a_line_too_long_to_be_an_entry_is_not_parsed(tmp_path, monkeypatch):
    monkeypatch.setattr(storage_module, "MAX_LINE", 1000)
    path = tmp_path / "journal.json"
    _journal(path, "before")
    _with_line(path, b'"9":{"id":"big","at":"2026-11-22T10:00:00Z","kind":"note","operator":{"user":"b"},'
                     b'"data":{"text":"' + b"x" * 5000 + b'"}}')
    [stand_in] = [e for e in Journal(path, operator=ALICE).events() if e.kind == "entry.unreadable"]
    assert "too long" in stand_in.data["problem"]


def test_lines_appended_after_the_end_are_kept_and_shown(tmp_path):
    path = tmp_path / "journal.json"
    _journal(path, "before")
    with open(path, "ab") as f:
        f.write(b'{"echo": "appended by a script"}\n')
    journal = Journal(path, operator=ALICE)
    assert [e.kind for e in journal.events()] == ["note", "entry.unreadable"]
    journal.note("after")
    assert b'{"echo": "appended by a script"}' in path.read_bytes()
    assert _texts(path) == ["before", "after"]


async def test_the_running_console_shows_what_another_writer_damaged_and_keeps_going(tmp_path):
    path = tmp_path / "journal.json"
    app, journal = _console(path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("n", *"before", "enter")
        await pilot.pause()
        for n, line in enumerate([*HOSTILE.values(), *ODD.values()]):
            # Each under a key of its own, one after another, as the console polls.
            _with_line(path, f'"{100 + n}"'.encode() + line[3:] if line.startswith(b'"9"') else line)
            await pilot.pause(0.6)
        unreadable = lambda: [e for e in journal.events() if e.kind == "entry.unreadable"]  # noqa: E731
        await wait(pilot, lambda: len(unreadable()) == len(HOSTILE), what="every stand-in")
        await wait(pilot, lambda: any(e.id == "[bold red]x[/][/oops]" for e in journal.events()),
                   what="the entry with markup in its id")
        await pilot.press(*"still writing", "enter")  # the scribe line still has focus
        await pilot.pause(0.6)
        text = "\n".join(widget_texts(app).values())
        assert "Unreadable entry" in text and "[/] markup [red]" in text
        assert app.is_running and journal.pending == ()
    texts = _texts(path)
    assert texts[-1] == "still writing" and "[/] markup [red]" in texts


# -- a large journal -----------------------------------------------------------------

def _large(path: Path, entries: int) -> None:
    """A journal written line by line (fast), laid out as the storage does."""
    with open(path, "wb") as f:
        f.write(b'{\n"events":{\n')
        for n in range(1, entries + 1):
            doc = {"id": f"{n:012x}", "at": "2026-11-22T10:00:00.000000Z", "kind": "note",
                   "operator": ALICE, "data": {"text": f"entry {n}", "tags": [], "pinned": False}}
            f.write(f'"{n}":'.encode() + json.dumps(doc, separators=(",", ":")).encode()
                    + (b",\n" if n < entries else b"\n"))
        f.write(b"}\n}\n")


def test_note_on_a_large_journal_reads_a_bounded_tail_not_the_journal(tmp_path, monkeypatch):
    path = tmp_path / "journal.json"
    _large(path, 50_000)
    size = path.stat().st_size
    read = []
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, at: read.append(n) or real_pread(fd, n, at))
    monkeypatch.setattr(JournalStorage, "_load", lambda self: pytest.fail("note parsed the whole journal"))
    event = new_event("note", ALICE, datetime.now(timezone.utc), text="on top")
    write_event(path, event)
    assert sum(read) <= storage_module.TAIL_WINDOW + 4096 < size / 10
    monkeypatch.undo()
    docs = json.loads(path.read_bytes())["events"]
    assert len(docs) == 50_001 and docs["50001"]["id"] == event.id


async def test_the_consoles_export_never_overwrites_the_journal_nor_waits_on_a_pipe(tmp_path):
    """The console's export (palette) writes beside the journal: a symlink
    planted there pointing at the journal, or a FIFO, must not turn into a
    journal full of markdown or a screen stopped on a pipe with no reader."""
    path = tmp_path / "incident.json"
    journal = Journal(path, operator={"user": "oncall"})
    journal.note("keep me")
    target = path.with_suffix(".postmortem.md")
    target.symlink_to(path)
    app = IncidentConsole(config.parse("refresh: 1\n", "t.yaml", env={}), sources=[], journal=journal)
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.action_export()
        await pilot.pause()
        said = [str(n.message) for n in app._notifications]
        assert any("not written" in m and "journal itself" in m for m in said), said
        target.unlink()
        os.mkfifo(target)
        app.main.action_export()  # before: open() on the FIFO stopped the event loop for good
        await pilot.pause()
        said = [str(n.message) for n in app._notifications]
        assert any("not a regular file" in m for m in said), said
        assert app.is_running
    assert b"keep me" in path.read_bytes() and not path.read_bytes().startswith(b"#")
    assert stat.S_ISFIFO(os.stat(target).st_mode)
