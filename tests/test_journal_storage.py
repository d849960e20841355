"""The journal file survives kill -9, a second writer, a full disk, a read-only
directory and a corrupted file, with nothing lost and nothing written twice.

Every failure here is real: processes are killed with SIGKILL, the disk is
a tmpfs that fills up, the directory is made immutable with chattr."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from tinydb import TinyDB
from tinydb.storages import JSONStorage

from console.incident import journal as journal_module
from console.incident import storage as storage_module
from console.incident.journal import Journal, JournalUnreadable, set_aside
from console.incident.storage import JournalChanged, JournalStorage
from disks import fill

ROOT = Path(__file__).resolve().parent.parent
ALICE = {"user": "alice", "ssh_client": "10.0.0.5"}

KILLS = 250
KILL_BUDGET_S = 80
# Fewer than KILLS fit in the budget on a loaded machine: the proof needs
# enough kills, mid-write ones above all, not a speed (that is bench's job).
ENOUGH_KILLS = 150
# Files are started afresh after this many entries, so every kill costs
# about the same; each file still sees dozens of kills.
ENTRIES_PER_FILE = 1500


def _ids_on_disk(path: Path) -> list[str]:
    """Event ids in the file, read with plain json: the file is valid JSON."""
    data = json.loads(path.read_bytes())
    return [doc["id"] for doc in data.get("events", {}).values()]


def _writer(path: Path, out: int, seed: int) -> None:
    """Child process: append notes as fast as possible, printing each id
    once append has returned."""
    journal = Journal(path, operator={"user": f"writer{seed}", "ssh_client": None})
    os.write(out, b"ready\n")
    n = 0
    while True:
        event = journal.note(f"writer {seed} note {n} #finding")
        os.write(out, event.id.encode() + b"\n")
        n += 1


def _read_lines(fd: int) -> list[bytes]:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    return data.split(b"\n")


@pytest.mark.slow
def test_kill_nine_at_random_moments_loses_nothing_that_was_returned(tmp_path):
    rng = random.Random(4)
    path = tmp_path / "journal.json"
    printed: list[str] = []
    kills = mid_write = 0
    began = time.monotonic()
    while kills < KILLS and time.monotonic() - began < KILL_BUDGET_S:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the writer: never returns into pytest
            try:
                os.close(read)
                _writer(path, write, kills)
            finally:
                os._exit(0)
        os.close(write)
        ready = os.read(read, 6)
        assert ready == b"ready\n", f"writer failed to open the journal: {ready!r}"
        time.sleep(rng.uniform(0, 0.012))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        kills += 1
        lines = _read_lines(read)
        os.close(read)
        # The last line may have been cut by the kill: only whole ids count.
        printed += [line.decode() for line in lines[:-1] if len(line) == 12]
        if any(name.endswith(".tmp") for name in os.listdir(tmp_path)):
            mid_write += 1

        on_disk = _ids_on_disk(path) if path.exists() else []
        assert len(on_disk) == len(set(on_disk)), "an entry was written twice"
        missing = set(printed) - set(on_disk)
        assert not missing, f"kill {kills}: {len(missing)} returned entries lost"
        reopened = Journal(path, operator=ALICE)
        assert [e.id for e in reopened.events()] == on_disk
        reopened.close()

        if len(on_disk) > ENTRIES_PER_FILE:
            path = tmp_path / f"journal-{kills}.json"
            printed = []
    took = time.monotonic() - began
    print(f"\n{kills} kills in {took:.0f} s; {mid_write} left a temporary file (killed mid-write)")
    assert kills >= ENOUGH_KILLS, f"only {kills} kills in {KILL_BUDGET_S} s"
    assert mid_write >= ENOUGH_KILLS // 20, "too few kills landed inside a write to prove anything"


WRITER = """
import sys
from console.incident.journal import Journal
path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
journal = Journal(path, operator={"user": name, "ssh_client": None})
for n in range(count):
    journal.note(f"{name} {n}")
assert not journal.pending, journal.write_error
journal.close()
"""


def _spawn_writer(path: Path, name: str, count: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, str(count)], env=env,
                            stderr=subprocess.PIPE, text=True)


def test_two_writer_processes_leave_exactly_every_entry(tmp_path):
    path = tmp_path / "journal.json"
    watcher = Journal(path, operator=ALICE)
    writers = [_spawn_writer(path, "one", 1000), _spawn_writer(path, "two", 1000)]
    seen: list = []
    while any(w.poll() is None for w in writers):
        seen += watcher.refresh()
        time.sleep(0.05)
    for w in writers:
        assert w.wait() == 0, w.stderr.read()
    seen += watcher.refresh()

    texts = [e.data["text"] for e in Journal(path, operator=ALICE).events()]
    assert len(texts) == 2000
    assert set(texts) == {f"{name} {n}" for name in ("one", "two") for n in range(1000)}
    for name in ("one", "two"):  # each writer's entries in its own order
        own = [t for t in texts if t.startswith(name)]
        assert own == [f"{name} {n}" for n in range(1000)]
    # A running console saw every entry the others wrote, each once.
    assert sorted(e.data["text"] for e in seen) == sorted(texts)


def test_refresh_sees_another_writer_and_costs_a_stat_when_nothing_changed(tmp_path):
    path = tmp_path / "journal.json"
    mine, theirs = Journal(path, operator=ALICE), Journal(path, operator={"user": "bob", "ssh_client": None})
    for n in range(300):
        mine.note(f"note {n}")
    assert len(theirs.refresh()) == 300
    began = time.perf_counter()
    for _ in range(1000):
        assert theirs.refresh() == []
    assert time.perf_counter() - began < 0.5
    event = theirs.note("from bob")
    assert mine.refresh() == [event]
    assert mine.events()[-1] == event


# A file whose structure holds but whose entries do not (cut short, wrong
# shape, a bad time) opens, with those entries shown as unreadable: see
# tests/test_attack_journal.py.
@pytest.mark.parametrize("content, line, says", [
    (b'{"events": {"1": {"id": "a"', 1, "invalid JSON"),
    (b"[1, 2, 3]\n", None, "top level is a JSON array"),
    (b'{"events": [1]}', None, "table 'events' is a JSON array"),
    (b'{"events": {}}\n\xff\xfe garbage', 2, "not UTF-8"),
])
def test_an_unreadable_file_is_named_never_overwritten_and_can_be_set_aside(tmp_path, content, line, says):
    path = tmp_path / "journal.json"
    path.write_bytes(content)
    with pytest.raises(JournalUnreadable) as raised:
        Journal(path, operator=ALICE)
    assert raised.value.path == str(path) and raised.value.line == line
    assert says in str(raised.value) and str(path) in str(raised.value)
    assert path.read_bytes() == content

    moved = set_aside(path, now=datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc))
    assert moved.name == "journal.json.unreadable-20261122T100000Z"
    assert moved.read_bytes() == content and not path.exists()
    fresh = Journal(path, operator=ALICE)
    fresh.note("starting over")
    assert [e.data["text"] for e in Journal(path, operator=ALICE).events()] == ["starting over"]


def test_a_file_corrupted_under_a_running_journal_is_kept_and_nothing_is_lost(tmp_path):
    path = tmp_path / "journal.json"
    journal = Journal(path, operator=ALICE)
    first = journal.note("before the damage")
    path.write_bytes(b"{ this is not json")
    damaged = path.read_bytes()

    second = journal.note("while the file is damaged")
    assert journal.pending == (second,)
    assert journal.unreadable is not None and "invalid JSON" in journal.write_error
    assert journal.events() == (first, second)
    assert path.read_bytes() == damaged and not journal.flush()

    moved = journal.set_aside()
    assert moved.read_bytes() == damaged
    assert journal.pending == () and journal.write_error is None
    assert Journal(path, operator=ALICE).events() == (first, second)


def test_an_entry_of_the_wrong_shape_from_another_writer_is_an_unreadable_entry_and_kept(tmp_path):
    path = tmp_path / "journal.json"
    journal = Journal(path, operator=ALICE)
    first = journal.note("first")
    other = JournalStorage(path)
    tables = other.read()
    tables["events"]["2"] = {"id": "bad", "kind": "note"}  # no time, no operator
    other.write(tables)

    [stand_in] = journal.refresh()
    assert stand_in.kind == "entry.unreadable" and "'bad': no time" in stand_in.data["problem"]
    assert stand_in.data["line"] == 4 and stand_in.at == first.at
    assert journal.unreadable is None and journal.write_error is None
    after = journal.note("written after it")
    assert journal.pending == ()
    # The other writer's entry is written back as it was, never as an event.
    assert json.loads(path.read_bytes())["events"]["2"] == {"id": "bad", "kind": "note"}
    assert _ids_on_disk(path) == [first.id, "bad", after.id]
    assert [e.kind for e in Journal(path, operator=ALICE).events()] == ["note", "entry.unreadable", "note"]


def test_a_full_disk_keeps_entries_in_memory_and_writes_them_once_there_is_room(small_disk, monkeypatch):
    path = small_disk / "journal.json"
    journal = Journal(path, operator=ALICE)
    written = [journal.note(f"before {n}") for n in range(20)]
    filler = fill(small_disk)

    held = [journal.note(f"disk full {n}") for n in range(3)]
    assert journal.pending == tuple(held)
    assert "No space left on device" in journal.write_error and "3 entries not written yet, held by this process" in journal.write_error
    assert journal.events() == tuple(written + held)
    assert _ids_on_disk(path) == [e.id for e in written]  # the old file is intact
    assert not journal.flush()

    filler.unlink()
    monkeypatch.setattr(journal_module, "RETRY_SECONDS", 0)
    assert journal.refresh() == []  # retries the write on its own
    assert journal.pending == () and journal.write_error is None
    assert _ids_on_disk(path) == [e.id for e in written + held]
    assert journal.flush()
    assert _ids_on_disk(path) == [e.id for e in written + held]
    journal.close()


@pytest.fixture
def immutable(tmp_path):
    """A directory even root cannot write into (chattr +i)."""
    directory = tmp_path / "locked"
    directory.mkdir()
    if subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    subprocess.run(["chattr", "-i", str(directory)], check=True)
    yield directory
    subprocess.run(["chattr", "-i", str(directory)], capture_output=True)


def test_a_read_only_directory_keeps_entries_pending_until_writable(immutable):
    path = immutable / "journal.json"
    journal = Journal(path, operator=ALICE)
    first = journal.note("written")
    subprocess.run(["chattr", "+i", str(immutable)], check=True)
    try:
        held = journal.note("directory read-only")
        assert journal.pending == (held,)
        assert "Operation not permitted" in journal.write_error
        assert _ids_on_disk(path) == [first.id]
    finally:
        subprocess.run(["chattr", "-i", str(immutable)], check=True)
    assert journal.flush() and journal.write_error is None
    assert _ids_on_disk(path) == [first.id, held.id]


def test_a_directory_replaced_by_a_file_then_restored_loses_nothing(tmp_path):
    directory = tmp_path / "incidents"
    path = directory / "journal.json"
    journal = Journal(path, operator=ALICE)
    first = journal.note("first")
    shutil.rmtree(directory)
    directory.write_text("not a directory")

    held = journal.note("while the directory is gone")
    assert journal.pending == (first, held) or journal.pending == (held,)
    assert journal.write_error and str(directory) in journal.write_error

    directory.unlink()
    assert journal.flush()
    # The whole journal, rewritten where it was: what the disk lost and
    # what it refused, each once.
    assert _ids_on_disk(path) == [first.id, held.id]


def test_a_write_that_fails_after_the_rename_is_not_written_twice(tmp_path, monkeypatch):
    path = tmp_path / "journal.json"
    journal = Journal(path, operator=ALICE)
    first = journal.note("first")
    real = storage_module._fsync_directory

    def failing(directory):
        real(directory)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(storage_module, "_fsync_directory", failing)
    second = journal.note("landed, though the fsync said otherwise")
    assert journal.pending == (second,) and "Input/output error" in journal.write_error
    monkeypatch.setattr(storage_module, "_fsync_directory", real)
    assert journal.flush()
    assert _ids_on_disk(path) == [first.id, second.id]


def test_storage_refuses_to_write_over_a_change_it_has_not_read(tmp_path):
    path = tmp_path / "journal.json"
    mine, theirs = JournalStorage(path), JournalStorage(path)
    mine.read()
    mine.write({"events": {"1": {"n": 1}}})
    theirs.read()
    theirs.write({"events": {"1": {"n": 1}, "2": {"n": 2}}})
    with pytest.raises(JournalChanged):
        mine.write({"events": {"1": {"n": 1}, "2": {"n": 3}}})
    assert mine.read() == {"events": {"1": {"n": 1}, "2": {"n": 2}}}


def test_the_file_is_plain_tinydb_json_both_ways(tmp_path):
    path = tmp_path / "journal.json"
    db = TinyDB(path, storage=JournalStorage)
    table = db.table("events")
    table.insert({"n": 1, "text": "\x1b[31mred\u202e"})
    table.insert({"n": 2})
    table.update({"n": 20}, doc_ids=[2])  # in place: must not keep the old text
    table.remove(doc_ids=[1])
    db.close()
    stock = TinyDB(path, storage=JSONStorage, access_mode="r")
    assert stock.table("events").all() == [{"n": 20}]
    assert b"\x1b" not in path.read_bytes()  # escapes are JSON text in the file
    stock.close()

    other = tmp_path / "stock.json"
    written = TinyDB(other)  # TinyDB's own layout: one line
    written.table("events").insert({"n": 1})
    written.close()
    ours = TinyDB(other, storage=JournalStorage)
    ours.table("events").insert({"n": 2})
    assert [d["n"] for d in ours.table("events").all()] == [1, 2]
    assert json.loads(other.read_text()) == {"events": {"1": {"n": 1}, "2": {"n": 2}}}


def test_a_killed_writers_temporary_is_swept_and_the_mode_kept(tmp_path):
    path = tmp_path / "journal.json"
    journal = Journal(path, operator=ALICE)
    journal.note("one")
    os.chmod(path, 0o640)
    stale = tmp_path / ".journal.json.deadbeef0000.tmp"
    stale.write_bytes(b"half a fi")
    Journal(path, operator=ALICE).note("two")
    assert not stale.exists()
    assert path.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "journal.json.lock").exists()
