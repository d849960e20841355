"""Drilling into Redis: SLOWLOG, clients, one client and CLIENT KILL, keyspace,
memory and replication, read from real redis-server processes; a hung Redis
fails the detail within the source's timeout; the Redis pane's rows open the
detail that explains them and keep a lost instance's values, dimmed."""

from __future__ import annotations

import socket
import time

import pytest
import redis

from console import config
from console.app import IncidentConsole
from console.drill import Detail, NoSuchRow, RowRef, Section
from console.demo.servers import RedisServer
from console.incident.journal import Journal
from console.incident.session import IncidentSession, Refusal
from console.sources.base import ProbeError, Snapshot, State, utcnow
from console.sources.redis import RedisSource
from console.sources.redis_detail import command_line, micros, parse_client_list
from console.widgets.redis import RedisPane
from screen import wait
from test_source_redis import make_source, source  # noqa: F401  (shared fixtures)

HOSTILE_NAME = "[red]x[/][link=file:///etc/passwd]y"  # what CLIENT SETNAME lets through: no spaces, no controls
HOSTILE_KEY = "k[bold red]\x1b[31m\x1b]52;c;cm0=\x07\nline\u202e"


@pytest.fixture
def admin(redis_server):
    conn = redis.Redis.from_url(redis_server.url, socket_timeout=5, decode_responses=True)
    yield conn
    conn.close()


class RawClient:
    """A bare RESP connection: no library reconnects behind the test's back,
    so a killed client is seen as killed."""

    def __init__(self, port: int, name: str | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if name is not None:
            assert self.command("CLIENT", "SETNAME", name) == b"+OK\r\n"

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def command(self, *args: str) -> bytes:
        packed = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        self.sock.sendall(packed.encode())
        return self.sock.recv(65536)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_clients(redis_server):
    opened: list[RawClient] = []

    def open_(name: str | None = None, port: int | None = None) -> RawClient:
        opened.append(RawClient(port or redis_server.port, name))
        return opened[-1]

    yield open_
    for client in opened:
        client.close()


def section(detail: Detail, title_start: str) -> Section:
    return next(s for s in detail.sections if s.title.startswith(title_start))


def fields(detail: Detail, title_start: str) -> dict[str, str]:
    return dict(section(detail, title_start).rows)


# ---- the views -------------------------------------------------------------------

async def test_slowlog_shows_a_slow_command_with_its_client(source, admin, raw_clients):
    admin.config_set("slowlog-log-slower-than", 0)
    try:
        client = raw_clients(HOSTILE_NAME)
        client.command("SET", HOSTILE_KEY, "v" * 500)
        detail = await source.drill("slowlog")
    finally:
        admin.config_set("slowlog-log-slower-than", 10000)
    log = section(detail, "SLOWLOG GET 128")
    assert log.columns == ("id", "when (UTC)", "took", "command", "client", "name")
    ours = [(row, drill) for row, drill in zip(log.rows, log.drill) if row[4] == client.address]
    row, drill = next((r, d) for r, d in ours if r[3].startswith("SET "))
    # The argument is kept as it was sent (the screen makes it inert), cut.
    assert HOSTILE_KEY in row[3] and row[5] == HOSTILE_NAME
    assert "v" * 59 + "…" in row[3] and len(row[3]) <= 200
    assert row[2].endswith(("µs", "ms", "s")) and row[1].count(":") == 2
    assert drill == f"client/{client.address}"


async def test_clients_are_grouped_by_name_and_host_with_counts(source, raw_clients):
    leaky = [raw_clients("leaky") for _ in range(3)]
    for client in leaky:
        client.command("SET", "leak", "x")
    detail = await source.drill("clients")
    groups = section(detail, "by name and host")
    assert groups.columns == ("name", "host", "clients", "max idle", "omem", "qbuf")
    assert ("leaky", "127.0.0.1", "3") in [row[:3] for row in groups.rows]
    listed = section(detail, "clients")
    for client in leaky:
        assert f"client/{client.address}" in listed.drill
    by_addr = dict(zip(listed.drill, listed.rows))
    assert by_addr[f"client/{leaky[0].address}"][1] == "leaky"
    assert by_addr[f"client/{leaky[0].address}"][5] == "set"
    assert "the console's own connection is 127.0.0.1:" in listed.text


async def test_a_client_detail_offers_K_confirmed_by_its_address(source, raw_clients):
    client = raw_clients("worker-3")
    client.command("SET", "a", "b")
    detail = await source.drill(f"client/{client.address}")
    shown = fields(detail, "client ")
    assert shown["addr"] == client.address and shown["name"] == "worker-3" and shown["cmd"] == "set"
    assert shown["omem"].endswith("B") and shown["idle"].endswith(("s", "m", "h"))
    kill = detail.change("K")
    assert kill is not None and kill.action == "client_kill"
    assert dict(kill.params) == {"address": client.address} and kill.confirm == client.address
    assert kill.preview[0].startswith("name worker-3 · idle ") and "cmd set · omem 0B" in kill.preview[0]


async def test_the_consoles_own_connection_cannot_be_killed_from_its_detail(source):
    clients = section(await source.drill("clients"), "clients")
    own = clients.text.rsplit(" ", 1)[-1]
    detail = await source.drill(f"client/{own}")
    assert detail.changes == () and "own connection" in detail.sections[-1].text


async def test_a_gone_client_or_an_unknown_view_is_no_such_row(source, raw_clients):
    client = raw_clients("short-lived")
    address = client.address
    client.close()
    deadline = time.monotonic() + 5
    with pytest.raises(NoSuchRow, match="no longer connected"):
        while time.monotonic() < deadline:  # the server notices the close on its next event loop turn
            await source.drill(f"client/{address}")
    for row in ("nonsense", "slowlog/extra", "client/", ""):
        with pytest.raises(NoSuchRow):
            await source.drill(row)


async def test_a_hostile_client_name_comes_back_as_the_same_plain_str(source, raw_clients):
    client = raw_clients(HOSTILE_NAME)
    groups = section(await source.drill("clients"), "by name and host")
    assert HOSTILE_NAME in [row[0] for row in groups.rows]
    detail = await source.drill(f"client/{client.address}")
    assert fields(detail, "client ")["name"] == HOSTILE_NAME
    assert all(type(cell) is str for s in detail.sections for row in s.rows for cell in row)
    assert HOSTILE_NAME in detail.change("K").preview[0]


async def test_keyspace_shows_each_database(source, redis_server):
    other = redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/5")
    try:
        other.set("drill:a", "1")
        other.set("drill:b", "2", ex=600)
        detail = await source.drill("keyspace")
    finally:
        other.delete("drill:a", "drill:b")
        other.close()
    keyspace = section(detail, "keyspace")
    assert keyspace.columns == ("database", "keys", "with expiry", "avg ttl")
    assert ("db5", "2", "1") in [row[:3] for row in keyspace.rows]
    lookups = fields(detail, "lookups")
    assert {"keyspace_hits", "keyspace_misses", "evicted_keys"} <= set(lookups)


async def test_memory_shows_the_breakdown_in_units(source):
    detail = await source.drill("memory")
    stats = fields(detail, "MEMORY STATS")
    assert stats["total.allocated"][-1] in "BKMGT" and stats["total.allocated"][:-1].replace(".", "").isdigit()
    assert stats["dataset.percentage"].endswith("%")
    assert stats["keys.count"].isdigit()
    limits = fields(detail, "INFO memory")
    assert limits["maxmemory"] == "no limit" and limits["maxmemory_policy"]


async def test_replication_shows_info_replication_in_full(source):
    info = fields(await source.drill("replication"), "INFO replication")
    assert info["role"] == "master" and info["connected_slaves"] == "0"
    assert {"master_repl_offset", "repl_backlog_size"} <= set(info)


async def test_a_sigstopped_redis_fails_the_drill_within_the_timeout(make_source):
    with RedisServer() as server:
        held = make_source(server.url, timeout=0.5)  # connected before the hang
        fresh = make_source(server.url, timeout=0.5)  # connects into the hang
        assert (await held.poll()).state is State.OK
        server.pause()
        try:
            for src in (held, fresh):
                started = time.monotonic()
                with pytest.raises(ProbeError, match="no answer after 0.5s"):
                    await src.drill("clients")
                assert time.monotonic() - started < 1.5
        finally:
            server.resume()
        assert section(await held.drill("clients"), "clients").rows  # back once it answers


# ---- K through the session: confirmed, journaled, refused in read-only ----------------

def _session(tmp_path, url: str, read_only: bool = False) -> IncidentSession:
    cfg = config.parse(f"refresh: 1\nredis:\n  - name: cache\n    url: {url}\n", "t.yaml", env={})
    journal = Journal(tmp_path / "incident.json", operator={"user": "oncall"})
    return IncidentSession(cfg, journal, read_only=read_only)


def _connected(admin, address: str) -> bool:
    return any(c["addr"] == address for c in admin.client_list())


async def test_K_disconnects_the_client_after_the_right_confirmation_only(tmp_path, source, admin, raw_clients,
                                                                         redis_server):
    victim = raw_clients("leaky")
    session = _session(tmp_path, redis_server.url)
    session.attach([source])
    ref = RowRef("redis", "cache", f"client/{victim.address}")
    kill = (await session.drill(ref)).change("K")

    title, preview, expected = session.confirmation(ref, kill)
    assert expected == victim.address and preview[0].startswith("name leaky")
    assert "CLIENT KILL ADDR" in " ".join(preview)
    with pytest.raises(Refusal, match="not confirmed"):
        await session.change(ref, kill, "10.0.0.1:1")
    assert _connected(admin, victim.address)

    result = await session.change(ref, kill, victim.address)
    assert result.ok, result.error
    assert not _connected(admin, victim.address)
    assert victim.command("PING") == b""  # the server closed its end
    with pytest.raises(NoSuchRow):
        await session.drill(ref)

    actions = [e.data for e in session.events() if e.kind == "action"]
    assert [(a["ok"], a["action"], a["confirmed_by"]) for a in actions] == [
        (False, "client_kill", "10.0.0.1:1"), (True, "client_kill", victim.address)]
    assert actions[1]["target"] == victim.address and actions[1]["source"] == "cache"

    # The same change again: the client is gone, said, not raised.
    again = await session.change(ref, kill, victim.address)
    assert not again.ok and "already disconnected" in again.error


async def test_K_is_refused_in_read_only_and_the_client_stays(tmp_path, source, admin, raw_clients, redis_server):
    victim = raw_clients("leaky")
    session = _session(tmp_path, redis_server.url, read_only=True)
    session.attach([source])
    ref = RowRef("redis", "cache", f"client/{victim.address}")
    kill = (await session.drill(ref)).change("K")
    with pytest.raises(Refusal, match="read-only"):
        session.confirmation(ref, kill)
    with pytest.raises(Refusal, match="read-only"):
        await session.change(ref, kill, victim.address)
    assert _connected(admin, victim.address)
    assert victim.command("PING") == b"+PONG\r\n"
    assert all(not e.data["ok"] for e in session.events() if e.kind == "action")


# ---- the pane: rows open details; a lost instance's values stay, dimmed ---------------

PANE_CFG = config.parse("refresh: 1\nredis:\n  - name: cache\n    url: redis://127.0.0.1:1/0\n"
                        "  - name: replica\n    url: redis://127.0.0.1:1/1\n", "t.yaml", env={})


def _reading(name: str, clients: int) -> Snapshot:
    return Snapshot("redis", name, State.OK, utcnow(), metrics={"connected_clients": clients, "maxclients": 9})


async def test_pane_rows_open_the_first_answering_instances_detail():
    app = IncidentConsole(PANE_CFG, sources=[])
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(RedisPane)
        assert pane.instances == ("cache", "replica")
        pane.take(_reading("cache", 5))
        pane.take(_reading("replica", 7))
        await pilot.pause()
        views = {label: ref.row for label, ref in pane.refs.items()}
        assert views["clients"] == "clients" and views["memory"] == "memory" and views["slowlog"] == "slowlog"
        assert views["role · lag"] == "replication" and views["hit rate"] == "keyspace"
        assert {ref.source for ref in pane.refs.values()} == {"cache"}
        await pilot.press("4")
        assert pane.current_ref() == RowRef("redis", "cache", "clients")

        pane.take(Snapshot("redis", "cache", State.UNREACHABLE, utcnow(), error="timed out"))
        await wait(pilot, lambda: pane.refs["clients"].source == "replica")
        kept = pane.table.get_row("clients")[1]
        assert kept.plain == "5 / 9" and "dim" in str(kept.spans[0].style if kept.spans else kept.style)
        assert pane.table.get_row("clients")[2].plain == "7 / 9"
        assert "dimmed values" in str(pane.border_subtitle)


# ---- the parsing, without a server ------------------------------------------------------

def test_client_list_keeps_equals_signs_in_names_and_skips_junk():
    reply = b"id=7 addr=10.0.0.7:51234 name=a=b=[red] idle=12 omem=0\n\ngarbage line\n"
    assert parse_client_list(reply) == [{"id": "7", "addr": "10.0.0.7:51234", "name": "a=b=[red]",
                                         "idle": "12", "omem": "0"}]


def test_a_logged_command_is_cut_argument_by_argument_then_whole():
    line = command_line([b"SET", b"x" * 100, "\xff".encode("latin-1")] + [b"y"] * 200)
    assert line.startswith("SET " + "x" * 59 + "… \ufffd y") and len(line) == 200 and line.endswith("…")
    assert (micros(7), micros(1500), micros(2_500_000)) == ("7µs", "1.5ms", "2.50s")
