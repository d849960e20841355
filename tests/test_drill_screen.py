"""Live tables as tools (issue 12): a cursor that stays on its row, sort,
pause, `+`/`-`, dimmed old values, and Enter opening a row's detail.

The sources here replay readings and details the test gives them: what is
tested is what the screen does with them. Reading details from real
PostgreSQL, Redis and the recorded Kubernetes API is tested in
test_drill_postgres/redis/kubernetes.py; acting from a pane against real
servers in test_drill_actions.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from rich.text import Text

from console import config
from console.app import IncidentConsole
from console.drill import Change, Detail, NoSuchRow, Opening, Section
from console.screens.detail import DetailScreen, text_lines
from console.vocabulary import ProbeError, State
from console.widgets.table import sort_key
from test_layout import CONFIG, FROZEN, FrozenSource

SESSIONS = [
    {"pid": 101, "state": "active", "query_s": 5.0, "query": "SELECT slow()", "user": "alice", "application": "api"},
    {"pid": 202, "state": "idle in transaction", "xact_s": 90.0, "query": "UPDATE t", "user": "bob",
     "application": "worker"},
    {"pid": 303, "state": "active", "query_s": 30.0, "query": "SELECT 1", "user": "carol", "application": "api"},
]


class DrillingSource(FrozenSource):
    """A PostgreSQL-shaped source whose rows open into details it was given."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.opened: list[str] = []
        self.signalled: list = []
        self.down = False

    async def poll(self):
        snap = await super().poll()
        if self.down:
            return replace(snap, state=State.UNREACHABLE, error="connection refused")
        return snap

    async def execute_action(self, sql, params):
        """Stands in for the signal only: terminating real backends is test_drill_postgres.py's."""
        self.signalled.append((sql, list(params)))

        class Rows:
            columns, rows, truncated = ("signalled",), ((True,),), False
        return Rows()

    async def drill(self, row: str) -> Detail:
        self.opened.append(row)
        if row == "session/999":
            raise NoSuchRow("session 999 has ended")
        if row == "session/666":
            raise ProbeError("timed out after 0.5 s")
        if row.endswith("/logs"):
            return Detail(f"logs of {row}", (Section("log", text="line 1\n\x1b[31m[red]line 2\x1b[0m\n"),), follow=True)
        pid = int(row.split("/")[1])
        return Detail(f"session {pid}", (
            Section("query", text="SELECT *\nFROM [bold]orders[/bold]\x07"),
            Section("blocks", ("pid", "user"), (("404", "dave"),), drill=("session/404",)),
        ), openings=(Opening("l", "logs", f"{row}/logs"),),
            changes=(Change("K", f"Terminate {pid}", "terminate_backend", {"pid": pid}, str(pid)),))


def drill_app(**kwargs) -> tuple[IncidentConsole, DrillingSource]:
    pg = DrillingSource("postgres", "primary", metrics={
        "connections_total": 3, "max_connections": 40, "connections_ratio": 0.08,
        "connections_by_state": {"active": 2}, "blocked_sessions": 0, "longest_transaction_s": 90.0},
        details={"sessions": SESSIONS})
    sources = [FrozenSource("http", "checkout-api", metrics={"status_code": 200, "latency_ms": 12.0}),
               FrozenSource("errors", "checkout-api", metrics={"error_ratio": 0.0}),
               pg, FrozenSource("redis", "cache", metrics={"connected_clients": 5})]
    cfg = config.parse(CONFIG, "t.yaml", env={})
    return IncidentConsole(cfg, sources=sources, clock=lambda: FROZEN, **kwargs), pg


async def ready(pilot) -> None:
    app = pilot.app
    deadline = asyncio.get_running_loop().time() + 5
    while len(app.session.latest) < 4 or app.session.desk is None or app.session.runner is None:
        assert asyncio.get_running_loop().time() < deadline, "sources never answered"
        await pilot.pause(0.05)
    await pilot.pause(0.1)
    app.clear_notifications()


def pids(table) -> list[str]:
    return [table.get_row_at(i)[0].plain for i in range(table.row_count)]


async def test_the_cursor_is_visible_and_stays_on_its_row_when_rows_move():
    app, pg = drill_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("3")
        table = app.main.pane("postgres").table
        assert table.show_cursor
        await pilot.press("down")
        assert table.current_key() == "postgres:primary:session/202"
        # A session above it ends: the cursor follows 202, not its old position.
        pg.details = {"sessions": SESSIONS[1:]}
        app.action_refresh_now()
        await pilot.pause(0.3)
        assert pids(table) == ["202", "303"]
        assert table.current_key() == "postgres:primary:session/202"


async def test_sort_by_column_with_angle_brackets_and_back_the_other_way():
    app, _ = drill_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("3")
        table = app.main.pane("postgres").table
        assert pids(table) == ["101", "202", "303"]  # the source's order: what matters first
        await pilot.press("greater_than_sign", "greater_than_sign", "greater_than_sign")  # PID, State, Time
        assert table.sort_column == 2
        assert pids(table) == ["101", "303", "202"]  # 5 s, 30 s, 1m30s: as durations, not as text
        assert "▲" in table.ordered_columns[2].label.plain
        await pilot.press("I")
        assert pids(table) == ["202", "303", "101"]
        await pilot.press("less_than_sign")
        assert table.sort_column == 1 and "▲" not in table.ordered_columns[2].label.plain


def test_numbers_sort_with_their_units():
    cells = ["2m", "13 ms", "5s", "1h", "idle", "900ms", "3.5 GB", "12 kB"]
    ordered = sorted(cells, key=lambda c: sort_key(Text(c)))
    assert ordered[:4] == ["13 ms", "900ms", "5s", "2m"]
    assert ordered[-1] == "idle"


async def test_space_pauses_the_focused_pane_and_resumes_with_what_arrived():
    app, pg = drill_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("3", "space")
        pane = app.main.pane("postgres")
        assert pane.paused and "paused" in str(pane.border_subtitle)
        pg.details = {"sessions": SESSIONS[:1]}
        app.action_refresh_now()
        await pilot.pause(0.3)
        assert len(pids(pane.table)) == 3  # frozen while paused
        assert app.session.latest[("postgres", "primary")].details["sessions"][0]["pid"] == 101  # still observed
        await pilot.press("space")
        assert not pane.paused and pids(pane.table) == ["101"]


async def test_plus_and_minus_change_the_refresh_interval():
    app, _ = drill_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        app.refresh_s = 2.0
        await pilot.press("plus")
        assert app.refresh_s == 3.0
        await pilot.press("minus", "minus")
        assert app.refresh_s == 1.0
        for _ in range(12):
            await pilot.press("minus")
        assert app.refresh_s == 0.5  # never zero: a poll loop with no pause would hammer the server


async def test_a_source_that_stops_answering_keeps_its_rows_dimmed_with_their_age():
    app, pg = drill_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        pane = app.main.pane("postgres")
        pg.down = True
        app.action_refresh_now()
        await pilot.pause(0.3)
        assert pids(pane.table) == ["101", "202", "303"]  # not "–"
        assert "dim" in str(pane.table.get_row_at(0)[0].spans or pane.table.get_row_at(0)[0].style)
        assert "dimmed values" in str(pane.border_subtitle)


async def test_enter_opens_the_row_and_everything_in_it_is_inert():
    app, pg = drill_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("3", "down", "enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, DetailScreen)
        assert pg.opened == ["session/202"]
        shown = "\n".join(str(w.render()) for w in app.screen.query("Static"))
        assert "[bold]orders[/bold]" in shown and "\x07" not in shown
        # Enter on a row of the detail opens that row, from the same source.
        app.screen.query_one("SectionTable").focus()
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert pg.opened[-1] == "session/404" and len(app.screen_stack) == 3
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert len(app.screen_stack) == 1


async def test_an_opening_key_shows_its_view_and_a_followed_view_reads_again():
    app, pg = drill_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        app.refresh_s = 0.2
        await pilot.press("3", "enter")
        await pilot.pause(0.2)
        await pilot.press("l")
        await pilot.pause(0.2)
        assert pg.opened[-1] == "session/101/logs"
        screen = app.screen
        assert isinstance(screen, DetailScreen) and screen.detail.follow
        text = text_lines(screen.detail.sections[0].text).plain
        assert "\x1b" not in text and "[red]line 2" in text
        before = len(pg.opened)
        await pilot.pause(0.7)
        assert len(pg.opened) > before  # followed: read again every refresh


async def test_a_row_that_is_gone_or_a_system_that_hangs_is_said_not_raised():
    app, pg = drill_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        for pid in ("999", "666"):
            pg.details = {"sessions": [{**SESSIONS[0], "pid": int(pid)}]}
            app.action_refresh_now()
            await pilot.pause(0.3)
            await pilot.press("3", "enter")
            await pilot.pause(0.3)
            assert len(app.screen_stack) == 1 and app._exception is None
        said = " ".join(str(n.message) for n in app._notifications)
        assert "session 999 has ended" in said and "timed out" in said


async def test_a_change_key_in_read_only_mode_is_refused_and_journaled(tmp_path):
    from console.incident.journal import Journal

    journal = Journal(tmp_path / "i.json", operator={"user": "t", "ssh_client": ""}, clock=lambda: FROZEN)
    app, pg = drill_app(read_only=True, journal=journal)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("3", "K")
        await pilot.pause(0.3)
        assert len(app.screen_stack) == 1  # no confirmation offered
        refused = [e for e in journal.events() if e.kind == "action"]
        assert refused and refused[-1].data["refused"] and refused[-1].data["action"] == "terminate_backend"


async def test_a_change_key_asks_for_the_typed_confirmation_and_escape_runs_nothing(tmp_path):
    from console.incident.journal import Journal
    from console.screens.confirm import ConfirmTyped

    journal = Journal(tmp_path / "i.json", operator={"user": "t", "ssh_client": ""}, clock=lambda: FROZEN)
    app, pg = drill_app(journal=journal)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("3", "K")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ConfirmTyped) and app.screen.expected == "101"
        await pilot.press("escape")
        await pilot.pause()
        assert not [e for e in journal.events() if e.kind == "action"] and not pg.signalled
        # A wrong pid is refused and journaled; the right one runs, once.
        for typed in ("202", "101"):
            await pilot.press("K")
            await pilot.pause(0.3)
            assert isinstance(app.screen, ConfirmTyped)
            await pilot.press(*typed, "enter")
            await pilot.pause(0.3)
        actions = [e.data for e in journal.events() if e.kind == "action"]
        assert [a["ok"] for a in actions] == [False, True] and actions[0]["refused"]
        assert pg.signalled == [("SELECT pg_terminate_backend(%s)", [101])]


async def test_keys_typed_faster_than_a_row_opens_never_stack_two_details():
    app, pg = drill_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("3")
        for _ in range(10):
            app.main.pane("postgres")._request("enter")
        await pilot.pause(0.5)
        assert len(app.screen_stack) == 2
        await pilot.press("escape")
        await asyncio.sleep(0.1)
        assert len(app.screen_stack) == 1


async def test_the_lock_tree_names_the_service_a_root_blocker_belongs_to_and_how_it_is_doing():
    blocker = {"pid": 500, "state": "idle in transaction", "xact_s": 60.0, "query": "LOCK orders",
               "user": "mig", "application": "checkout-api", "client": "10.0.0.5:4431", "blocked_by": []}
    waiter = {"pid": 501, "state": "active", "query_s": 59.0, "query": "SELECT 1", "user": "web",
              "application": "payments-api", "client": "10.0.0.6:1", "blocked_by": [500]}
    app, pg = drill_app()
    app.config = config.parse(CONFIG + "services:\n  - name: checkout-api\n    url: http://127.0.0.1:9/h\n",
                              "t.yaml", env={})
    pg.details = {"sessions": [waiter, blocker]}
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("3", "L")
        table = app.main.pane("postgres").table
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        assert [r[0].plain for r in rows] == ["500", "└501"]
        assert rows[0][4].plain.startswith("⇢ checkout-api: 5xx 0.0%, ok · LOCK orders")
        assert "blocks" not in rows[0][4].plain  # its waiter belongs to no configured service
        assert "⇢" not in rows[1][4].plain  # only root blockers are linked


async def test_a_followed_view_under_another_screen_reads_nothing():
    app, pg = drill_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        app.refresh_s = 0.1
        await pilot.press("3", "enter")
        await pilot.pause(0.2)
        await pilot.press("l")
        await pilot.pause(0.3)
        assert app.screen.detail.follow
        from console.screens.prompt import Prompt

        await app.push_screen(Prompt("covering the logs"))  # as a confirmation would
        await pilot.pause(0.1)
        before = len(pg.opened)
        await pilot.pause(0.8)
        assert len(pg.opened) == before


def test_a_long_text_keeps_its_start_and_logs_keep_their_end():
    """A red team hid a DELETE at the top of a 1,000-line query behind harmless lines."""
    query = "DELETE FROM orders\n" + "\n".join(f"-- {i}" for i in range(1000))
    assert text_lines(query).plain.startswith("DELETE FROM orders")
    assert "more lines not shown" in text_lines(query).plain
    logs = "\n".join(f"line {i}" for i in range(1000)) + "\nOOMKilled"
    assert text_lines(logs, newest=True).plain.endswith("OOMKilled")


async def test_i_shows_what_an_imported_runbook_says_besides_its_steps(tmp_path):
    """Issue 15: import-runbook keeps escalation, contacts and message
    templates as a playbook's reference; the console shows them, inert."""
    books = tmp_path / "books"
    books.mkdir()
    (books / "pool.yaml").write_text(
        "id: pool\ntitle: Pool exhausted\ndescription: |\n  Meaning: the pool is full.\n"
        "reference: \"Escalation: page the DBA on call [bold]now[/bold]\\a\"\n"
        "steps:\n  - id: look\n    title: Look\n    kind: check\n")
    from console.incident.journal import Journal

    journal = Journal(tmp_path / "i.json", operator={"user": "t", "ssh_client": ""}, clock=lambda: FROZEN)
    app, _ = drill_app(journal=journal)
    app.config = app.session.config = config.parse(CONFIG + f"playbooks: [{books}]\n", "t.yaml", env={})
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        app.main.start_playbook("pool")
        await pilot.pause(0.2)
        await pilot.press("5", "i")
        await pilot.pause(0.3)
        assert isinstance(app.screen, DetailScreen)
        shown = "\n".join(s.text for s in app.screen.detail.sections)
        assert "Meaning: the pool is full." in shown and "page the DBA on call" in shown
        rendered = "\n".join(str(w.render()) for w in app.screen.query("Static"))
        assert "[bold]now[/bold]" in rendered and "\x07" not in rendered
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.screen_stack) == 1
