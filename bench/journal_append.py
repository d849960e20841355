"""Journal append latency at 100, 1,000 and 10,000 entries (target: p99 ≤ 20 ms
at 10,000).

An append is durable when it returns: temporary file, fsync, rename, fsync of
the directory, under the writers' lock. The journal is filled to each size in
one write, then timed over ``samples`` appends of a typical note.

    python bench/journal_append.py [DIR] [samples] [--busy]   # --busy: dd writing beside it
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.incident.journal import Event, Journal  # noqa: E402
from console.incident.storage import JournalStorage  # noqa: E402

NOTE = "checked pg_stat_activity on primary: 97 of 100 connections idle in transaction #finding"
OPERATOR = {"user": "oncall", "ssh_client": "10.20.30.40"}


def fill(path: Path, entries: int) -> None:
    """``entries`` notes written in one go, as if appended one by one."""
    start = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
    docs = {str(i + 1): Event(f"{i:012x}", start + timedelta(seconds=i), "note", OPERATOR,
                              {"text": f"{NOTE} {i}", "tags": ["finding"], "pinned": False}).to_document()
            for i in range(entries)}
    storage = JournalStorage(path)
    storage.read()
    storage.write({"events": docs})
    storage.close()


def measure(directory: Path, entries: int, samples: int) -> list[float]:
    path = directory / f"journal-{entries}.json"
    fill(path, entries)
    journal = Journal(path, operator=OPERATOR)
    times = []
    for i in range(samples):
        began = time.perf_counter()
        journal.note(f"{NOTE} sample {i}")
        times.append(time.perf_counter() - began)
    journal.close()
    return times


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@contextlib.contextmanager
def busy_disk(directory: Path):
    """Another writer on the same disk: 256 MB at a time, fsynced, in a loop."""
    writer = subprocess.Popen(["bash", "-c", f"while :; do dd if=/dev/zero of={directory}/busy.bin bs=1M "
                               "count=256 conv=fsync status=none; done"], start_new_session=True)
    try:
        time.sleep(1)
        yield
    finally:
        os.killpg(writer.pid, signal.SIGKILL)
        writer.wait()


def main() -> None:
    busy = "--busy" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--busy"]
    base = Path(args[0]) if args else None
    samples = int(args[1]) if len(args) > 1 else 300
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        with busy_disk(Path(tmp)) if busy else contextlib.nullcontext():
            for entries in (100, 1_000, 10_000):
                times = measure(Path(tmp), entries, samples)
                size = os.path.getsize(Path(tmp) / f"journal-{entries}.json")
                print(f"{entries:>6} entries{' (busy disk)' if busy else ''}: "
                      f"median {statistics.median(times) * 1000:6.2f} ms, "
                      f"p99 {p99(times) * 1000:6.2f} ms, max {max(times) * 1000:6.2f} ms "
                      f"({samples} appends, file {size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
