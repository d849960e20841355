"""The journal's size over a scripted 2-hour incident at 1 s refresh, with
and without moments (time travel's readings, console/incident/moments.py).

Five sources read every second, headless (IncidentSession.observe with a
fake clock, no screen): the error ratio flaps across its critical limit
every few seconds and the PostgreSQL connections across theirs, so there are
far more crossings than the moments' budget; the incident is declared,
acknowledged, identified, mitigated and resolved along the way.

    python bench/moments_size.py [minutes]
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console import config  # noqa: E402
from console.incident import moments  # noqa: E402
from console.incident.journal import Journal  # noqa: E402
from console.incident.session import IncidentSession  # noqa: E402
from console.thresholds import judge, merged  # noqa: E402
from console.vocabulary import Snapshot, State  # noqa: E402

START = datetime(2026, 11, 22, 14, 0, tzinfo=timezone.utc)
OPERATOR = {"user": "oncall", "ssh_client": "10.20.30.40"}
# (minute, what the operator does)
MILESTONES = ((6, lambda s: s.declare("P1 Checkout returns 502")), (8, lambda s: s.acknowledge()),
              (30, lambda s: s.set_status("Identified")), (60, lambda s: s.mitigated()),
              (61, lambda s: s.set_status("Monitoring")), (115, lambda s: s.resolve()))


def readings(second: int) -> list[Snapshot]:
    """The five sources at ``second`` into the incident: trouble from minute
    5 to 110, flapping (8 s and 20 s periods) rather than steady."""
    trouble = 300 <= second < 6600
    errors_bad = trouble and second % 8 < 4
    pg_bad = trouble and second % 20 < 10
    at = START + timedelta(seconds=second)
    raw = [
        Snapshot("http", "checkout-api", State.OK, at, latency_ms=12.3 + second % 7,
                 metrics={"status_code": 502 if errors_bad else 200, "latency_ms": 12.345 + second % 7}),
        Snapshot("http", "payments-api", State.OK, at, metrics={"status_code": 200, "latency_ms": 31.0}),
        Snapshot("errors", "checkout-api", State.OK, at,
                 metrics={"error_ratio": 0.0823 if errors_bad else 0.0012, "request_rate": 41.7,
                          "p95_latency_s": 0.412 + (second % 10) / 100},
                 details={"window_requests": 2500}),
        Snapshot("postgres", "primary", State.OK, at, metrics={
            "connections_total": 93 if pg_bad else 40, "max_connections": 100,
            "connections_ratio": 0.93 if pg_bad else 0.40, "connections_by_state": {"idle": 30, "active": 10},
            "idle_in_transaction": 2, "blocked_sessions": 0, "longest_transaction_s": 3.21,
            "longest_query_s": 1.5, "role": "primary", "server_version": "16.4"},
            details={"sessions": tuple({"pid": 100 + i, "state": "active", "query": "SELECT 1"} for i in range(40))}),
        Snapshot("redis", "cache", State.OK, at, metrics={
            "connected_clients": 57, "maxclients": 10000, "clients_ratio": 0.0057, "hit_rate": 0.9312,
            "used_memory": 734003200, "maxmemory": 1073741824, "memory_ratio": 0.6836, "ops_per_sec": 1834,
            "evictions_per_sec": 0.0, "blocked_clients": 0}),
    ]
    limits = merged({})
    return [judge(s, limits) for s in raw]


def scripted_incident(path: Path, minutes: int = 120, keep_moments: bool = True) -> int:
    """Run the incident into the journal at ``path``; its size in bytes."""
    clock = [START]
    journal = Journal(path, OPERATOR, clock=lambda: clock[0])
    session = IncidentSession(config.parse("refresh: 1\n", "moments.yaml", env={}), journal, clock=lambda: clock[0])
    to_do = list(MILESTONES)
    with mock.patch.object(moments, "MAX_MOMENTS", moments.MAX_MOMENTS if keep_moments else 0):
        for second in range(minutes * 60):
            clock[0] = START + timedelta(seconds=second)
            while to_do and to_do[0][0] * 60 <= second:
                to_do.pop(0)[1](session)
            for snapshot in readings(second):
                session.observe(snapshot)
    journal.close()
    return path.stat().st_size


def main(minutes: int = 120) -> None:
    with tempfile.TemporaryDirectory() as folder:
        without = scripted_incident(Path(folder) / "without.json", minutes, keep_moments=False)
        with_ = scripted_incident(Path(folder) / "with.json", minutes, keep_moments=True)
        journal = Journal(Path(folder) / "with.json", OPERATOR)
        events = journal.events()
        kept = [e for e in events if e.kind == moments.KIND]
        journal.close()
    each = (with_ - without) / max(len(kept), 1)
    print(f"{minutes} min at 1 s refresh, 5 sources: {len(events)} events, {len(kept)} moments")
    print(f"journal without moments: {without:,} bytes")
    print(f"journal with moments:    {with_:,} bytes ({with_ - without:,} for moments, ~{each:,.0f} each)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 120)
