"""Every number a person reads goes through one formatting (issue 13: the
timeline, probe output and the export showed ``0.058823529411764705``,
``(limit )``, ``unavailable_replicas = 2.0`` and ``0:00:19.113606``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from console.incident.export import describe, postmortem_markdown
from console.incident.journal import Event
from console.playbooks.output import promql_result, redis_reply, table
from console.readings import metric_value, summary
from console.vocabulary import Breach, Snapshot, State
from test_playbooks import seed_tables  # noqa: F401  (a fixture: the seed schemas, on the pg_server)

AT = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
FLAP = 0.058823529411764705  # one 5xx in 17 requests


@pytest.mark.parametrize("name, value, shown", [
    ("error_ratio", FLAP, "5.9%"),
    ("connections_ratio", 0.95, "95%"),
    ("hit_rate", 0.931, "93%"),
    ("unavailable_replicas", 2.0, "2"),
    ("blocked_sessions", 3, "3"),
    ("longest_transaction_s", 19.113606, "19s"),
    ("p95_latency_s", 4.66, "4.7s"),
    ("anything", timedelta(seconds=19, microseconds=113606), "19s"),
    ("ping_ms", 13.2, "13ms"),
    ("used_memory", 900 * 1024 * 1024, "900.0M"),
    ("evictions_per_sec", 12.5, "12.5/s"),
    ("count", Decimal("42"), "42"),
    ("anything", Decimal("0.05882352941176470588"), "0.0588"),
    ("anything", 1234.5678, "1234.6"),
    ("anything", float("nan"), "–"),
    ("anything", None, "–"),
    ("state", "critical", "critical"),
])
def test_a_metric_reads_as_its_name_says(name, value, shown):
    assert metric_value(name, value) == shown


def test_a_breach_reads_as_a_percentage():
    said = Breach("error_ratio", FLAP, 0.05, State.CRITICAL).describe()
    assert said == "error_ratio=5.9% ≥ 5.0%"
    assert Breach("unavailable_replicas", 2.0, 1.0, State.WARNING).describe() == "unavailable_replicas=2 ≥ 1"
    assert Breach("hit_rate", 0.5, 0.8, State.WARNING).describe() == "hit_rate=50% ≤ 80%"


def crossed(metric: str, value, limit, state: str = "critical", previous: str = "ok") -> Event:
    return Event("e1", AT, "threshold.crossed", {"user": "console"},
                 {"source": "payments-api", "kind": "errors", "metric": metric, "value": value,
                  "limit": limit, "state": state, "previous": previous})


def test_a_crossing_says_its_value_and_limit_in_their_units():
    said = describe(crossed("error_ratio", FLAP, 0.05))
    assert said == "payments-api error_ratio = 5.9% (limit 5.0%): ok -> critical"
    said = describe(crossed("unavailable_replicas", 2.0, 1.0, "warning"))
    assert "unavailable_replicas = 2 (limit 1)" in said


def test_a_crossing_back_never_says_an_empty_limit():
    said = describe(crossed("error_ratio", 0.0, None, "ok", "critical"))
    assert "(limit )" not in said and "limit" in said  # the reader still learns it is back under it
    assert said == "payments-api error_ratio = 0.0% (back within its limits): critical -> ok"


def test_the_export_timeline_has_no_raw_number():
    text = postmortem_markdown([crossed("error_ratio", FLAP, 0.05)], AT + timedelta(minutes=5))
    assert "5.9%" in text and "0.0588" not in text and "0.058823529411764705" not in text


def test_probe_output_reads_intervals_decimals_and_floats():
    out = table(["pid", "xact_age", "idle_s", "hit_ratio", "n"],
                [[4242, timedelta(seconds=19.113606), 61.5, Decimal("0.9312"), 2.0]])
    row = out.splitlines()[2].split()
    assert row == ["4242", "19s", "62s", "93%", "2"]
    assert "0:00:19" not in out


def test_a_prometheus_sample_is_a_number_not_its_text():
    data = {"resultType": "vector",
            "result": [{"metric": {"job": "payments"}, "value": [1700000000, str(FLAP)]}]}
    assert "0.0588" in promql_result(data) and str(FLAP) not in promql_result(data)


def test_a_redis_float_is_not_seventeen_digits():
    assert redis_reply({"ratio": FLAP}).split()[-1] == "0.0588"


def test_the_status_line_counts_without_decimals():
    snap = Snapshot("kubernetes", "app", State.WARNING, AT,
                    metrics={"workloads": 3, "unavailable_replicas": 2.0, "crashlooping_pods": 1.0,
                             "warning_events": 4})
    assert summary(snap).startswith("3 workloads, 2 replicas unavailable, 1 crashlooping")


# ---- PostgreSQL: the shipped probes count what the pane counts ------------------------------

@pytest.fixture
async def probed(seed_tables):
    """A source on a database holding the tables the shipped probes name."""
    from console.config import PostgresTarget
    from console.sources.postgres import PostgresSource

    source = PostgresSource(PostgresTarget("primary", seed_tables, 3.0))
    yield source, seed_tables
    await source.close()


async def test_shipped_sql_probes_are_read_only_and_count_what_the_pane_counts(probed, sessions):
    from console import paths
    from console.playbooks.load import load_playbooks
    from console.readonly import sql_is_read_only
    from console.sources.base import bounded_poll

    source, dsn = probed
    for _ in range(3):
        await sessions(dsn)
    stuck = await sessions(dsn, autocommit=False)
    await stuck.execute("SELECT 1")  # idle in transaction, holding its slot
    books, problems = load_playbooks([paths.shipped_playbooks()])
    assert problems == []
    snap = await bounded_poll(source)
    m = snap.metrics
    ran = {}
    for book in books:
        for step in book.steps:
            if step.probe != "sql":
                continue
            assert sql_is_read_only(step.query) is None, (book.id, step.id)
            if "pg_stat_statements" not in step.query:  # needs shared_preload_libraries
                ran[f"{book.id}/{step.id}"] = await source.probe_sql(step.query, 3.0)
    assert len(ran) >= 12
    total = m["connections_total"]
    assert total >= 4  # ours; background processes and the console's own session are not counted

    by_state = ran["postgres-pool-exhausted/connections-by-state"]
    assert dict(by_state.rows) == dict(m["connections_by_state"])
    assert sum(n for _, n in by_state.rows) == total
    [headroom] = [dict(zip(r.columns, row)) for r in [ran["postgres-pool-exhausted/headroom"]] for row in r.rows]
    assert headroom["client_connections"] == total
    assert headroom["usable_slots"] == m["usable_connections"]
    assert headroom["reserved_slots"] == m["reserved_connections"] > 0
    assert headroom["max_connections"] == m["max_connections"]
    assert "%" in table(ran["postgres-pool-exhausted/headroom"].columns, ran["postgres-pool-exhausted/headroom"].rows)
    for step in ("postgres-pool-exhausted/who-holds-them", "high-error-rate/database"):
        rows = ran[step]
        assert sum(row[rows.columns.index("connections")] for row in rows.rows) == total, step
