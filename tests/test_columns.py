"""A column never cuts a number or its unit (issue 13: at 120x40 a reading
of 13 ms showed as ``200 · 13m``): the table hides what does not fit, and a
cell too long ends at a word, with an ellipsis, never inside a number."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from rich.text import Text
from textual.geometry import Region

from console import config
from console.app import IncidentConsole
from console.widgets.postgres import PostgresPane
from console.widgets.services import ServicesPane
from console.widgets.table import ReadingTable, fit, plan
from test_layout import FrozenSource, settle

# Written independently of the table's own pattern: digits, a decimal part, a unit.
NUMBER = re.compile(r"\d+(?:\.\d+)?[a-zµ%↻]*", re.IGNORECASE)
READINGS = ["200 · 13ms", "1/3 ready · 12↻", "1.0M / 64.0M", "master · 0.25s", "FailedScheduling 2m ago",
            "38/40 usable conns (95%)", "10.0.0.5:54321", "app unavailable_replicas = 2 (limit 0)"]


def numbers(text: str) -> list[str]:
    return [m.group() for m in re.finditer(r"(?<![\w.])" + NUMBER.pattern + r"(?![\w.])", text, re.IGNORECASE)]


@pytest.mark.parametrize("reading", READINGS)
def test_a_cell_is_whole_or_ends_at_a_word_and_never_inside_a_number(reading):
    for width in range(1, len(reading) + 2):
        shown = fit(Text(reading, style="bold"), width).plain
        assert len(shown) <= width
        if shown != reading:
            assert shown.endswith("…")
            # every number shown is one of the reading's, whole
            assert set(numbers(shown)) <= set(numbers(reading)), (width, shown)


def test_a_cut_keeps_the_style_and_prefers_a_word():
    cell = fit(Text("app unavailable_replicas = 2 (limit 0)", style="red"), 26)
    assert cell.plain == "app unavailable_replicas…" and cell.style == "red"
    assert fit(Text("200 · 13ms"), 9).plain == "200…"


def test_a_plan_never_exceeds_the_room_and_shows_a_reading_whole_or_not_at_all():
    columns = ServicesPane.COLUMNS
    for room in range(20, 160):
        widths = plan(columns, room)
        shown = [w for w in widths if w]
        assert sum(shown) + len(shown) - 1 <= room
        assert widths[2] in (0, 15)  # Reading
        assert widths == sorted(widths, key=lambda w: w == 0)  # only trailing columns are hidden
    assert plan(columns, 36)[:3] == [7, 12, 15]  # a half pane at 120x40: the name gives way


def test_columns_for_a_wider_screen_come_after_the_query_has_its_width():
    assert plan(PostgresPane.COLUMNS, 76)[4:] == [43, 0, 0, 0]
    assert plan(PostgresPane.COLUMNS, 156)[4:] == [60, 10, 10, 20]


# ---- every live pane, at every size -----------------------------------------------------

FROZEN = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
CONFIG = ("refresh: 3600\nredis:\n  - name: cache\n    url: redis://127.0.0.1:1/0\n"
          "  - name: sessions-store\n    url: redis://127.0.0.1:1/1\n")
SESSIONS = [{"pid": 41234 + i, "state": state, "query_s": 13.0, "xact_s": 61.0, "state_s": 700.0,
             "query": "SELECT email, created_at FROM users WHERE id = 123456 FOR UPDATE",
             "database": "app", "user": "checkout", "application": "checkout-api", "client": "10.0.0.5:54321",
             "blocked_by": [41234] if i == 2 else []}
            for i, state in enumerate(["idle in transaction", "active", "active"])]


def sources() -> list[FrozenSource]:
    redis = {"connected_clients": 5123, "maxclients": 10000, "used_memory": 1048576 * 900,
             "maxmemory": 1048576 * 1024, "hit_rate": 0.931, "ops_per_sec": 12345.6, "role": "master",
             "replication_lag_s": 0.25, "ping_ms": 13.0, "slowlog_len": 128, "blocked_clients": 0}
    return [
        FrozenSource("http", "checkout-api", metrics={"status_code": 200, "latency_ms": 13.0}),
        FrozenSource("kubernetes", "app", metrics={"workloads": 1, "unavailable_replicas": 2},
                     details={"workloads": [{"kind": "Deployment", "name": "worker", "ready": 1, "desired": 3,
                                             "restarts": 12, "problems": ["CrashLoopBackOff"]}],
                              "events": [{"object": "Pod/worker-5c8d7f9b4-x2k9q", "reason": "FailedScheduling",
                                          "age_s": 125.0, "message": "0/3 nodes are available"}]}),
        FrozenSource("errors", "checkout-api", metrics={"error_ratio": 0.0588, "request_rate": 1234.5,
                                                          "p95_latency_s": 0.25}),
        FrozenSource("postgres", "primary", metrics={
            "connections_total": 38, "max_connections": 40, "connections_ratio": 0.95, "blocked_sessions": 1,
            "connections_by_state": {"idle": 30, "active": 8}, "idle_in_transaction": 1,
            "longest_transaction_s": 61.0},
            details={"sessions": SESSIONS, "groups": [
                {"row": "g1", "application": "checkout-api", "user": "checkout", "client": "10.0.0.5",
                 "total": 37, "active": 12, "idle": 24, "idle_in_transaction": 1, "oldest_s": 3605.0}]}),
        FrozenSource("redis", "cache", metrics=redis),
        FrozenSource("redis", "sessions-store", metrics=redis),
    ]


def rendered(table: ReadingTable) -> str:
    width, height = table.size
    return "\n".join("".join(s.text for s in strip) for strip in table.render_lines(Region(0, 0, width, height)))


def check_tables(app) -> list[str]:
    """Every table on screen: as wide as its pane at most, and each number it shows one of its cells' own."""
    checked = []
    for table in app.query(ReadingTable):
        if not table.region.area or not table.row_count:
            continue
        room = table.scrollable_content_region.width
        assert sum(c.get_render_width(table) for c in table.ordered_columns) <= room, table.parent
        whole = {n for key in table.rows for cell in table.get_row(key) for n in numbers(cell.plain)}
        whole |= {n for c in table.ordered_columns for n in numbers(c.label.plain)}
        for line in rendered(table).splitlines():
            cut = [n for n in numbers(line) if n not in whole]
            assert not cut, f"{type(table.parent).__name__} cut {cut} in {line!r}"
        checked.append(type(table.parent).__name__)
    return checked


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_no_live_pane_cuts_a_number_at_any_size(size):
    cfg = config.parse(CONFIG, "t.yaml", env={})
    app = IncidentConsole(cfg, sources=sources(), clock=lambda: FROZEN)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        seen: set[str] = set()
        for view in ([], ["3", "g"], ["g", "L"]):  # sessions; groups; the lock tree
            for key in view:
                await pilot.press(key)
            for pane in "1234" if size == (80, 24) else "1":
                await pilot.press(pane)
                await pilot.pause(0.1)
                seen |= set(check_tables(app))
        assert {"ServicesPane", "ErrorRatesPane", "PostgresPane", "RedisPane"} <= seen
        if size != (80, 24):
            text = rendered(app.query_one(ServicesPane).table)
            assert "200 · 13ms" in text
