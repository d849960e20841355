"""Drilling into Redis: SLOWLOG, clients, one client and CLIENT KILL (by ID:
unix-socket clients share one address), keyspace, memory and replication,
read from real redis-server processes; no piece of a configured secret in a
SLOWLOG argument survives its cut; a hung Redis
fails the detail within the source's timeout; the Redis pane's rows open the
detail that explains them and keep a lost instance's values, dimmed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import redis

from console import config, secrets
from console.app import IncidentConsole
from console.drill import Detail, NoSuchRow, RowRef, Section
from console.demo.servers import RedisServer, free_port, wait_for_port
from console.incident.journal import Journal
from console.incident.session import IncidentSession, Refusal
from console.sources.base import ProbeError, Snapshot, State, utcnow
from console.sources.redis import RedisSource
from console.readings import micros
from console.sources.redis_detail import command_line, parse_client_list
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

    def __init__(self, port: int | None = None, name: str | None = None, unix: str | None = None) -> None:
        if unix is None:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        else:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(5)
            self.sock.connect(unix)
        self.name = name
        if name is not None:
            assert self.command("CLIENT", "SETNAME", name) == b"+OK\r\n"
        reply = self.command("CLIENT", "ID")
        assert reply.startswith(b":")
        self.id = int(reply[1:].strip())

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def command(self, *args: str) -> bytes:
        packed = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        self.sock.sendall(packed.encode())
        return self.sock.recv(65536)

    def connected(self) -> bool:
        try:
            return self.command("PING") == b"+PONG\r\n"
        except OSError:
            return False

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
    # SLOWLOG names a client by address only: the one there opens, by its id.
    assert drill == f"client/{client.address}"
    opened = await source.drill(drill)
    assert fields(opened, "client ")["id"] == str(client.id) and opened.change("K").params["id"] == str(client.id)


async def test_clients_are_grouped_by_name_and_host_with_counts(source, raw_clients):
    leaky = [raw_clients("leaky") for _ in range(3)]
    for client in leaky:
        client.command("SET", "leak", "x")
    detail = await source.drill("clients")
    groups = section(detail, "by name and host")
    assert groups.columns == ("name", "host", "clients", "max idle", "omem", "qbuf")
    assert ("leaky", "127.0.0.1", "3") in [row[:3] for row in groups.rows]
    listed = section(detail, "clients")
    assert listed.columns[:3] == ("id", "addr", "name")
    for client in leaky:
        assert f"client/{client.id}" in listed.drill
    by_id = dict(zip(listed.drill, listed.rows))
    assert by_id[f"client/{leaky[0].id}"][:3] == (str(leaky[0].id), leaky[0].address, "leaky")
    assert by_id[f"client/{leaky[0].id}"][6] == "set"
    assert "the console's own connection is client " in listed.text and " at 127.0.0.1:" in listed.text


async def test_a_client_detail_offers_K_by_id_confirmed_by_its_address(source, raw_clients):
    client = raw_clients("worker-3")
    client.command("SET", "a", "b")
    detail = await source.drill(f"client/{client.id}")
    shown = fields(detail, "client ")
    assert shown["id"] == str(client.id) and shown["addr"] == client.address
    assert shown["name"] == "worker-3" and shown["cmd"] == "set"
    assert shown["omem"].endswith("B") and shown["idle"].endswith(("s", "m", "h"))
    kill = detail.change("K")
    assert kill is not None and kill.action == "client_kill"
    assert dict(kill.params) == {"id": str(client.id), "address": client.address} and kill.confirm == client.address
    assert kill.preview[0].startswith(f"client {client.id} at {client.address} · name worker-3 · idle ")
    assert "cmd set · omem 0B" in kill.preview[0]


def _own(listed: Section) -> tuple[str, str]:
    """(id, addr) of the console's own connection, from the clients list's note."""
    words = listed.text.split("the console's own connection is client ", 1)[1].split()
    return words[0], words[2]


async def test_the_consoles_own_connection_cannot_be_killed_from_its_detail(source):
    own_id, own_addr = _own(section(await source.drill("clients"), "clients"))
    for row in (f"client/{own_id}", f"client/{own_addr}"):  # from the list, from SLOWLOG
        detail = await source.drill(row)
        assert fields(detail, "client ")["id"] == own_id
        assert detail.changes == () and "own connection" in detail.sections[-1].text


async def test_a_gone_client_or_an_unknown_view_is_no_such_row(source, raw_clients):
    client = raw_clients("short-lived")
    address, client_id = client.address, client.id
    client.close()
    deadline = time.monotonic() + 5
    with pytest.raises(NoSuchRow, match="no longer connected"):
        while time.monotonic() < deadline:  # the server notices the close on its next event loop turn
            await source.drill(f"client/{client_id}")
    with pytest.raises(NoSuchRow, match="no longer connected"):
        await source.drill(f"client/{address}")
    for row in ("nonsense", "slowlog/extra", "client/", ""):
        with pytest.raises(NoSuchRow):
            await source.drill(row)


async def test_a_hostile_client_name_comes_back_as_the_same_plain_str(source, raw_clients):
    client = raw_clients(HOSTILE_NAME)
    groups = section(await source.drill("clients"), "by name and host")
    assert HOSTILE_NAME in [row[0] for row in groups.rows]
    detail = await source.drill(f"client/{client.id}")
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
    ref = RowRef("redis", "cache", f"client/{victim.id}")
    kill = (await session.drill(ref)).change("K")

    title, preview, expected = session.confirmation(ref, kill)
    assert expected == victim.address and preview[0].startswith(f"client {victim.id} at {victim.address} · name leaky")
    assert f"CLIENT KILL ID {victim.id} ({victim.address}) on cache" in " ".join(preview)
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
    assert actions[1]["target"] == f"client {victim.id} ({victim.address})" and actions[1]["source"] == "cache"
    assert actions[1]["result"] == f"disconnected client {victim.id} ({victim.address}) from cache"

    # The same change again: the client is gone, said, not raised.
    again = await session.change(ref, kill, victim.address)
    assert not again.ok and "already disconnected" in again.error


async def test_K_is_refused_in_read_only_and_the_client_stays(tmp_path, source, admin, raw_clients, redis_server):
    victim = raw_clients("leaky")
    session = _session(tmp_path, redis_server.url, read_only=True)
    session.attach([source])
    ref = RowRef("redis", "cache", f"client/{victim.id}")
    kill = (await session.drill(ref)).change("K")
    with pytest.raises(Refusal, match="read-only"):
        session.confirmation(ref, kill)
    with pytest.raises(Refusal, match="read-only"):
        await session.change(ref, kill, victim.address)
    assert _connected(admin, victim.address)
    assert victim.command("PING") == b"+PONG\r\n"
    assert all(not e.data["ok"] for e in session.events() if e.kind == "action")


# ---- unix-socket clients: one address for all of them, so a client is its id ----------

@pytest.fixture
def unix_redis():
    """A redis-server also listening on a unix socket (RedisServer has no option for one)."""
    binary = shutil.which("redis-server")
    if not binary:
        pytest.skip("redis-server not installed")
    root = tempfile.mkdtemp(prefix="ic-rsock-")  # short: a socket path has ~100 bytes
    path, port = os.path.join(root, "r.sock"), free_port()
    process = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                "--appendonly", "no", "--dir", root, "--unixsocket", path,
                                "--logfile", os.path.join(root, "redis.log")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0", path
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(root, ignore_errors=True)


async def test_K_on_one_unix_socket_client_disconnects_that_client_only(tmp_path, unix_redis, make_source):
    url, path = unix_redis
    workers = [RawClient(name=f"worker-{i}", unix=path) for i in range(3)]
    try:
        source = make_source(url)
        session = _session(tmp_path, url)
        session.attach([source])
        listed = section(await source.drill("clients"), "clients")
        rows = {row[0]: (row, drill) for row, drill in zip(listed.rows, listed.drill)}
        for worker in workers:  # the same address, each its own row
            row, drill = rows[str(worker.id)]
            assert row[1] == f"{path}:0" and row[2] == worker.name and drill == f"client/{worker.id}"

        victim, spared = workers[1], (workers[0], workers[2])
        ref = RowRef("redis", "cache", f"client/{victim.id}")
        detail = await session.drill(ref)
        assert fields(detail, "client ")["name"] == "worker-1"  # its own, not the first at the address
        kill = detail.change("K")
        assert dict(kill.params) == {"id": str(victim.id), "address": f"{path}:0"}
        title, preview, expected = session.confirmation(ref, kill)
        assert expected == f"{path}:0" and preview[0].startswith(f"client {victim.id} at {path}:0 · name worker-1")
        assert f"CLIENT KILL ID {victim.id} ({path}:0) on cache" in " ".join(preview)

        result = await session.change(ref, kill, expected)
        assert result.ok, result.error
        assert not victim.connected()
        assert all(w.connected() for w in spared), "a client the preview did not name was disconnected"
        with pytest.raises(NoSuchRow, match="no longer connected"):
            await session.drill(ref)
    finally:
        for worker in workers:
            worker.close()


async def test_a_shared_address_from_the_slowlog_lists_its_clients_and_kills_none(unix_redis, make_source):
    url, path = unix_redis
    workers = [RawClient(name=f"worker-{i}", unix=path) for i in range(2)]
    try:
        detail = await make_source(url).drill(f"client/{path}:0")
        listed = section(detail, "2 clients at ")
        assert detail.changes == ()  # which one would K hit?
        assert sorted(listed.drill) == sorted(f"client/{w.id}" for w in workers)
        assert {row[2] for row in listed.rows} == {"worker-0", "worker-1"}
    finally:
        for worker in workers:
            worker.close()


# ---- a secret in a SLOWLOG argument: masked before any cut ------------------------------

SECRET = "Zq7vKe2TnW9rXy4b"  # no 'Zq' anywhere else in these commands
LONG_SECRET = "Zq" + "H3mN8kWv" * 12  # a token longer than Redis keeps of an argument (128 bytes)


@pytest.fixture
def registered():
    secrets.forget()
    secrets.add(SECRET)
    secrets.add(LONG_SECRET)
    yield
    secrets.forget()


def _pieces(secret: str) -> set[str]:
    """Every piece of ``secret`` that would give some of it away."""
    return {secret[:2]} | {secret[i:i + 4] for i in range(len(secret) - 3)}


async def test_no_piece_of_a_secret_in_a_slowlog_argument_survives_the_cuts(source, admin, raw_clients,
                                                                           registered):
    sent = [
        ("SET", "k1", "p" * 50 + SECRET),                      # across the 60-character argument cut
        ("SET", "k2", "p" * 40 + LONG_SECRET),                 # across Redis's own 128-byte cut
        ("RPUSH", "k3", *["f" * 50] * 3, "g" * 30 + SECRET),   # across the 200-character line cut
    ]
    admin.config_set("slowlog-log-slower-than", 0)
    try:
        client = raw_clients("leaky")
        for argv in sent:
            client.command(*argv)
        logged = admin.slowlog_get(128)
        detail = await source.drill("slowlog")
    finally:
        admin.config_set("slowlog-log-slower-than", 10000)
    raw = " ".join(str(e["command"]) for e in logged)
    assert SECRET[:9] in raw and LONG_SECRET[:19] in raw  # Redis did log them, and the cuts fall inside
    log = section(detail, "SLOWLOG GET 128")
    ours = [row[3] for row in log.rows if row[4] == client.address and row[3].split(" ")[0] in ("SET", "RPUSH")]
    assert len(ours) == 3, ours
    shown = "\n".join(cell for s in detail.sections for row in s.rows for cell in row)
    leaked = {p for secret in (SECRET, LONG_SECRET) for p in _pieces(secret) if p in shown}
    assert not leaked, ours
    assert all(line.startswith(("SET k", "RPUSH k3 fff")) for line in ours)


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
