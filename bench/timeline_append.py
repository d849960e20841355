"""A note appended to a long incident: time until it is visible in the
timeline (issue 16: ≤ 20 ms at 10,000 entries), and what one append costs
the event loop, headless (App.run_test at 120x40).

For each size the journal is filled with that many entries (notes, with a
correction and a pin every 50, and crossings), the console is opened on it,
then ``samples`` notes are written the way the scribe's Enter writes them
(session.note, then show_journal) and timed until the next frame has been
drawn with the new row in the table.

    python bench/timeline_append.py [samples] [sizes...]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console import config  # noqa: E402
from console.app import IncidentConsole  # noqa: E402
from console.incident.journal import Event, Journal  # noqa: E402
from console.incident.storage import JournalStorage  # noqa: E402
from console.widgets.timeline import TimelinePane  # noqa: E402

OPERATOR = {"user": "oncall", "ssh_client": "10.20.30.40"}
NOTE = "checked pg_stat_activity on primary: 97 of 100 connections idle in transaction #finding"


def fill(path: Path, entries: int) -> None:
    start = datetime.now(timezone.utc) - timedelta(seconds=entries + 60)
    docs = {}
    for i in range(entries):
        at = start + timedelta(seconds=i)
        if i % 50 == 49:
            doc = Event(f"c{i:011x}", at, "note.corrected", OPERATOR,
                        {"note_id": f"{i - 1:012x}", "text": f"{NOTE} (corrected)"})
        elif i % 50 == 48:
            doc = Event(f"p{i:011x}", at, "note.pinned", OPERATOR, {"note_id": f"{i - 3:012x}", "pinned": True})
        elif i % 10 == 5:
            doc = Event(f"{i:012x}", at, "threshold.crossed", {"user": "console", "ssh_client": None},
                        {"source": "db", "kind": "postgres", "metric": "connections_pct", "value": 91.0,
                         "limit": 90, "state": "warning", "previous": "ok"})
        else:
            doc = Event(f"{i:012x}", at, "note", OPERATOR,
                        {"text": f"{NOTE} {i}", "tags": ["finding"], "pinned": False})
        docs[str(i + 1)] = doc.to_document()
    storage = JournalStorage(path)
    storage.read()
    storage.write({"events": docs})
    storage.close()


async def measure(path: Path, samples: int) -> dict:
    journal = Journal(path, operator=OPERATOR)
    app = IncidentConsole(config.parse("refresh: 60\n", "bench.yaml", env={}), sources=[], journal=journal)
    visible, loop_cost = [], []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.query_one(TimelinePane).table
        for i in range(samples):
            before = table.row_count
            began = time.perf_counter()
            app.session.note(f"{NOTE} sample {i}")
            app.show_journal()
            loop_cost.append(time.perf_counter() - began)
            await pilot.pause()  # the frame with the new row
            visible.append(time.perf_counter() - began)
            assert table.row_count == before + 1, (table.row_count, before)
    journal.close()
    return {"visible": visible, "loop": loop_cost}


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def run(sizes: list[int], samples: int) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for entries in sizes:
            path = Path(tmp) / f"timeline-{entries}.json"
            fill(path, entries)
            times = asyncio.run(measure(path, samples))
            out[str(entries)] = {
                "samples": samples,
                **{f"{name}_median_ms": round(statistics.median(v) * 1000, 2) for name, v in times.items()},
                **{f"{name}_p99_ms": round(p99(v) * 1000, 2) for name, v in times.items()},
            }
    return out


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    sizes = [int(s) for s in sys.argv[2:]] or [100, 1_000, 10_000]
    for entries, r in run(sizes, samples).items():
        print(f"{entries:>6} entries: append→visible median {r['visible_median_ms']:7.2f} ms, "
              f"p99 {r['visible_p99_ms']:7.2f} ms; on the event loop median {r['loop_median_ms']:7.2f} ms, "
              f"p99 {r['loop_p99_ms']:7.2f} ms ({samples} notes)")


if __name__ == "__main__":
    main()
