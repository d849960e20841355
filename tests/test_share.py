"""Sharing one incident between consoles through Redis, against real servers.

Each "host" is a journal file of its own with its own Journal and Share, as
on separate bastions; `incident-console note` is the deploy hook on a third.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from console import config, secrets
from console.cli import main
from console.config import ShareTarget
from console.demo.servers import RedisServer
from console.incident.journal import Event, Journal, new_event
from console.incident.share import FIELD, Share, responders_key, stream_key

PW = "s3cret-share-pw/+=?"
TOKEN = "tok-7f9a1c2e4b6d8f0a"

def _readme_acl() -> str:
    """The ACL the README gives the sharing user, as a template: what is
    tested is what users are told to set up."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    [line] = [line for line in readme.splitlines() if line.startswith("ACL SETUSER incident-share ")]
    return line.removeprefix("ACL SETUSER incident-share ").replace(">PASSWORD", ">{pw}").replace(
        "~incident-console:NAME:*", "~incident-console:{incident}:*")


ACL = _readme_acl()
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def server():
    with RedisServer() as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_registry():
    secrets.forget()
    yield
    secrets.forget()


def admin(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url)


def console(path: Path, url: str, incident: str, user: str) -> tuple[Journal, Share]:
    journal = Journal(path, operator={"user": user, "ssh_client": None})
    return journal, Share(ShareTarget(url, incident), journal.operator, host=f"{user}-host", timeout=1.0)


def file_ids(path: Path) -> list[str]:
    """Every event id in the journal file as written, duplicates included."""
    return [doc["id"] for doc in json.loads(path.read_text())["events"].values()]


def note_config(tmp_path: Path, url: str, incident: str) -> Path:
    path = tmp_path / "hook.yaml"
    path.write_text(f"share:\n  url: {url}\n  incident: {incident}\n")
    path.chmod(0o600)
    return path


def syncing(journal: Journal, share: Share, stop: threading.Event, seen: list) -> threading.Thread:
    """A console's sync loop, as the App runs it: one sync after the other."""
    def loop() -> None:
        while not stop.is_set():
            share.sync(journal)
            seen.append(share.state)
            time.sleep(0.02)
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


LEAD = 10  # events a writer may be ahead of the slowest one


def run_three_writers(tmp_path: Path, url: str, incident: str, n: int = 300, outage=None) -> dict:
    """Two consoles and a `note` hook each write ``n`` events at once while
    the consoles sync in a loop. No writer gets more than :data:`LEAD`
    events ahead of the slowest (the hook, which reads the whole stream at
    each note), so the three write together from the first event to the
    last. ``outage``, if given, is ``(stop, restart)``: every writer waits
    at a third of its events until ``stop(states)`` has returned, and at two
    thirds until ``restart(states)`` has, so that a third of each writer's
    events is written before, during and after it.
    Returns the consoles' journals, shares and the states they went through."""
    a, share_a = console(tmp_path / "a.json", url, incident, "alice")
    b, share_b = console(tmp_path / "b.json", url, incident, "bob")
    hook_config, hook_file = note_config(tmp_path, url, incident), tmp_path / "hook.json"
    stop, states = threading.Event(), []
    syncers = [syncing(a, share_a, stop, states), syncing(b, share_b, stop, states)]
    phase = threading.Barrier(4) if outage else None
    written, progress = [0, 0, 0], threading.Condition()

    def paced(writer: int, write_one) -> None:
        try:
            for i in range(n):
                if outage and i in (n // 3, 2 * n // 3):
                    phase.wait(60)  # all three there: the outage begins (or ends)
                    phase.wait(60)  # and it has
                with progress:
                    progress.wait_for(lambda: min(written) >= i - LEAD, timeout=60)
                write_one(i)
                with progress:
                    written[writer] += 1
                    progress.notify_all()
        except BaseException:
            if outage:
                phase.abort()  # the others stop waiting for this one
            raise
        finally:
            with progress:
                written[writer] = n  # done, or failed: holds no one back
                progress.notify_all()

    def write(journal: Journal, who: str, writer: int) -> None:
        def one(i: int) -> None:
            journal.note(f"{who} {i}")
            time.sleep(0.001)
        paced(writer, one)

    def hook() -> None:
        def one(i: int) -> None:
            assert main(["note", "--config", str(hook_config), "--incident", str(hook_file), f"deploy {i}"]) == 0
        paced(2, one)

    writers = [threading.Thread(target=write, args=(a, "alice", 0)),
               threading.Thread(target=write, args=(b, "bob", 1)), threading.Thread(target=hook)]
    for thread in writers:
        thread.start()
    for act in outage or ():
        phase.wait(60)
        try:
            act(states)
        except BaseException:
            phase.abort()
            raise
        phase.wait(60)
    for thread in writers:
        thread.join(120)
    stop.set()
    for thread in syncers:
        thread.join(30)
    return {"a": a, "b": b, "share_a": share_a, "share_b": share_b, "states": states, "hook": hook_file}


def converge(run: dict) -> None:
    """Every file takes in what the others published: the consoles publish
    what they still hold, the hook's file syncs by one `export` (which
    publishes its own backlog), and the consoles take that in."""
    consoles = ((run["share_a"], run["a"]), (run["share_b"], run["b"]))
    for share, journal in consoles:
        share.sync(journal)
    hook = Path(run["hook"])
    assert main(["export", "--config", str(hook.parent / "hook.yaml"), "--incident", str(hook), "--format", "json",
                 "-o", str(hook.parent / "export.json")]) == 0
    for share, journal in consoles:
        share.sync(journal)
        assert share.state.online and share.state.waiting == 0, share.state
        assert {"alice@alice-host", "bob@bob-host"} <= set(share.state.responders)
        share.close()
        journal.close()


def assert_same_events(tmp_path: Path, run: dict, total: int) -> None:
    files = [tmp_path / "a.json", tmp_path / "b.json", Path(run["hook"])]
    held = [file_ids(path) for path in files]
    for path, ids in zip(files, held):
        assert len(ids) == len(set(ids)), f"{path.name} holds a duplicate"
    assert len(held[0]) == total
    assert set(held[0]) == set(held[1]) == set(held[2])
    reopened = Journal(files[1])
    times = [event.at for event in reopened.events()]
    assert times == sorted(times)
    reopened.close()


def test_two_consoles_and_a_note_hook_end_with_the_same_900_events(server, tmp_path):
    incident = "concurrent-900"
    started = time.perf_counter()
    run = run_three_writers(tmp_path, server.url, incident)
    converge(run)
    TIMINGS["900 events, 3 writers"] = time.perf_counter() - started
    assert_same_events(tmp_path, run, 900)
    store = admin(server)
    length = store.xlen(stream_key(incident))
    assert length >= 900  # a lost XADD reply may publish twice; never fewer
    fields = [entry[1][FIELD] for entry in store.xrange(stream_key(incident))]
    TIMINGS["stream bytes per event (MEMORY USAGE)"] = store.memory_usage(stream_key(incident), samples=0) / length
    TIMINGS["JSON field bytes per event"] = sum(map(len, fields)) / len(fields)
    print(f"\nsharing figures: {TIMINGS}")


def test_redis_stopped_in_the_middle_and_restarted_loses_nothing(tmp_path):
    incident = "partition"
    with RedisServer() as outage_server:
        outage: dict = {}

        def stop(states: list) -> None:
            outage_server.stop()
            outage["began"] = time.perf_counter()

        def restart(states: list) -> None:
            # A third of every writer's events written since the stop: the
            # consoles' syncs find Redis gone, with entries waiting.
            deadline = time.perf_counter() + 10
            while time.perf_counter() < deadline and not any(not s.online and s.waiting for s in states):
                time.sleep(0.02)
            outage["states"] = [s for s in states if not s.online]
            outage_server.start()  # same port, and empty: it kept nothing
            outage["seconds"] = time.perf_counter() - outage["began"]

        started = time.perf_counter()
        run = run_three_writers(tmp_path, outage_server.url, incident, n=100, outage=(stop, restart))
        converge(run)
        TIMINGS["300 events, Redis stopped and restarted"] = time.perf_counter() - started
        TIMINGS["of which Redis was down"] = outage["seconds"]
        assert_same_events(tmp_path, run, 300)
        offline = outage["states"]
        assert offline and any(s.waiting > 0 for s in offline)
        assert all(s.offline_since is not None and s.offline_since.tzinfo is not None and s.error for s in offline)
        print(f"\nsharing figures: {TIMINGS}")


def test_a_console_that_joins_after_500_events_catches_up_on_its_first_sync(server, tmp_path):
    incident = "late-joiner"
    first, share = console(tmp_path / "first.json", server.url, incident, "alice")
    for i in range(500):
        first.note(f"early {i}")
    share.sync(first)
    late, late_share = console(tmp_path / "late.json", server.url, incident, "carol")
    late.note("carol arrives")
    merged = late_share.sync(late)
    assert len(merged) == 500
    assert [e.id for e in merged] == [e.id for e in first.events()]
    assert late_share.state.online and late_share.state.waiting == 0
    assert late_share.state.responders == ("alice@alice-host", "carol@carol-host")
    assert [e.data["text"] for e in share.sync(first)] == ["carol arrives"]
    assert len(file_ids(tmp_path / "late.json")) == 501
    for journal, s in ((first, share), (late, late_share)):
        s.close()
        journal.close()


def acl_user(server: RedisServer, incident: str) -> str:
    """A Redis user allowed only the incident's keys and the commands sharing
    uses; the share URL that logs in as it."""
    admin(server).execute_command("ACL", "SETUSER", f"responder-{incident}",
                                  *ACL.format(pw=PW, incident=incident).split())
    return f"redis://responder-{incident}:{quote(PW, safe='')}@127.0.0.1:{server.port}/0"


def test_the_stream_holds_no_configured_secret(server, tmp_path, monkeypatch):
    incident = "no-secrets"
    url = acl_user(server, incident)
    monkeypatch.setenv("REDIS_SHARE_PASSWORD", PW)
    monkeypatch.setenv("API_TOKEN", TOKEN)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"share:\n  url: redis://responder-{incident}:${{REDIS_SHARE_PASSWORD}}@127.0.0.1:{server.port}/0\n"
                   f"  incident: {incident}\n"
                   "services:\n  - name: api\n    url: http://127.0.0.1:1/health\n"
                   "    headers: {Authorization: 'Bearer ${API_TOKEN}'}\n")
    cfg.chmod(0o600)
    assert config.load(cfg).share.url == url
    journal_path = tmp_path / "j.json"
    assert main(["note", "--config", str(cfg), "--incident", str(journal_path),
                 f"pasted by mistake: {url} and Bearer {TOKEN}"]) == 0
    # An event made before the secrets were known (an old file, another
    # program) is redacted where it leaves the process.
    secrets.forget()
    raw = new_event("note", {"user": "dave", "ssh_client": None}, datetime.now(timezone.utc),
                    text=f"{PW} {quote(PW, safe='')} {base64.b64encode(PW.encode()).decode()} {TOKEN}",
                    tags=[], pinned=False)
    journal, share = console(journal_path, url, incident, "dave")
    journal.add(raw)
    config.load(cfg)  # the console knows its config's secrets
    share.sync(journal)
    assert share.state.online and share.state.waiting == 0, share.state
    entries = admin(server).xrange(stream_key(incident))
    assert len(entries) == 2
    stream = b"".join(k + v for _, fields in entries for k, v in fields.items())
    forms = secrets.literal_forms(PW, f"responder-{incident}") | secrets.literal_forms(TOKEN)
    leaked = {form for form in forms if form.encode() in stream or form in stream.decode()}
    assert not leaked
    assert b"***" in stream
    share.close()
    journal.close()


def test_the_sharing_acl_is_enough_and_nothing_more(server, tmp_path):
    incident = "acl-only"
    url = acl_user(server, incident)
    a, share_a = console(tmp_path / "a.json", url, incident, "alice")
    b, share_b = console(tmp_path / "b.json", url, incident, "bob")
    a.note("from alice")
    b.note("from bob")
    share_a.sync(a)
    assert [e.data["text"] for e in share_b.sync(b)] == ["from alice"]
    assert [e.data["text"] for e in share_a.sync(a)] == ["from bob"]
    assert share_a.state.online and share_b.state.online, (share_a.state, share_b.state)
    assert share_a.state.responders == ("alice@alice-host", "bob@bob-host")
    limited = redis.Redis.from_url(url)
    for refused in (("GET", stream_key(incident)), ("KEYS", "*"), ("FLUSHALL",), ("DEL", stream_key(incident)),
                    ("XADD", stream_key("another-incident"), "*", "event", "{}"), ("CONFIG", "GET", "*"),
                    ("XTRIM", stream_key(incident), "MAXLEN", "0")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            limited.execute_command(*refused)
    limited.close()
    for journal, s in ((a, share_a), (b, share_b)):
        s.close()
        journal.close()


HOSTILE = [
    {b"event": b"not json at all"},
    {b"event": json.dumps({"at": "2024-01-01T00:00:00Z", "kind": "note", "operator": {"user": "x"}}).encode()},
    {b"event": b"[" * 100_000 + b"]" * 100_000},
    {b"event": json.dumps({"id": "x" * 500, "at": "2024-01-01T00:00:00Z", "kind": "note",
                           "operator": {"user": "x"}, "data": {}}).encode()},
    {b"event": b'{"id": "deep", "at": "2024-01-01T00:00:00Z", "kind": "note", "operator": {"user": "x"}, '
               b'"data": ' + b'{"a": ' * 40 + b'1' + b'}' * 40 + b'}'},
    {b"event": b"\xff\xfe not utf-8"},
    {b"something-else": b"1"},
    {b"event": json.dumps({"id": "entry.unreadable", "at": "2024-01-01T00:00:00Z", "kind": "entry.unreadable",
                           "operator": {"user": "x"}, "data": {}}).encode()},
    {b"event": b"x" * (10 * 2 ** 20)},
]


def test_hostile_stream_entries_are_skipped_and_never_corrupt_the_journal(server, tmp_path):
    incident = "hostile"
    store = admin(server)
    store.xadd(stream_key(incident), {b"event": b"{}"}, id=f"1-{2 ** 64 - 1}")  # no id can follow in its ms
    for fields in HOSTILE:
        store.xadd(stream_key(incident), fields)
    escapes = new_event("note", {"user": "\x1b]0;owned\x07mallory", "ssh_client": None}, datetime.now(timezone.utc),
                        text="\x1b[2J\x1b[31mred\x1b[0m [bold]markup[/]", tags=[], pinned=False)
    store.xadd(stream_key(incident), {FIELD: json.dumps(escapes.to_document()).encode()})
    store.hset(responders_key(incident), mapping={"\x1b[2Jevil@host": str(int(time.time())), "old@host": "1",
                                                 "nonsense@host": "soon"})
    journal, share = console(tmp_path / "j.json", server.url, incident, "alice")
    journal.note("mine")
    started = time.perf_counter()
    merged = share.sync(journal)
    assert time.perf_counter() - started < 5
    assert share.state.online, share.state
    assert [e.id for e in merged] == [escapes.id]
    assert share.skipped == len(HOSTILE) + 1
    assert "\x1b" not in "".join(share.state.responders)
    assert len(share.state.responders) == 2 and "alice@alice-host" in share.state.responders
    journal.close()
    reopened = Journal(tmp_path / "j.json")
    assert {e.data.get("text") for e in reopened.events()} == {"mine", escapes.data["text"]}
    assert all(e.kind == "note" for e in reopened.events())
    reopened.close()
    share.close()


def test_a_huge_stream_is_read_a_bounded_amount_per_sync(server, tmp_path, monkeypatch):
    from console.incident import share as share_module

    monkeypatch.setattr(share_module, "PAGE", 100)
    monkeypatch.setattr(share_module, "MAX_ENTRIES", 300)
    incident = "huge"
    store = admin(server)
    pipe = store.pipeline(transaction=False)
    for _ in range(700):
        pipe.xadd(stream_key(incident), {FIELD: b"junk"})
    pipe.execute()
    journal, share = console(tmp_path / "j.json", server.url, incident, "alice")
    journal.note("waits until the whole stream is read")
    share.sync(journal)
    # Not caught up: nothing published yet, the rest read by the next syncs.
    assert share.skipped == 300 and share.state.online and share.state.waiting == 1
    share.sync(journal)
    assert share.skipped == 600 and share.state.waiting == 1
    share.sync(journal)
    assert share.skipped == 700 and share.state.waiting == 0 and store.xlen(stream_key(incident)) == 701
    share.close()
    journal.close()


def test_unreachable_redis_is_offline_quickly_and_keeps_appending(tmp_path):
    with RedisServer() as gone:
        url = gone.url
    journal, share = console(tmp_path / "j.json", url, "unreachable", "alice")
    journal.note("while offline")
    started = time.perf_counter()
    assert share.sync(journal) == []
    assert time.perf_counter() - started < 1
    state = share.state
    assert not state.online and state.waiting == 1 and state.offline_since is not None
    assert "127.0.0.1" in state.error and "\n" not in state.error
    journal.note("still offline")
    share.sync(journal)
    assert share.state.offline_since == state.offline_since and share.state.waiting == 2
    share.close()
    journal.close()


def test_note_warns_in_one_line_and_succeeds_when_redis_is_unreachable(tmp_path, monkeypatch, capsys):
    with RedisServer() as gone:
        port = gone.port
    monkeypatch.setenv("REDIS_SHARE_PASSWORD", PW)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"share:\n  url: redis://:${{REDIS_SHARE_PASSWORD}}@127.0.0.1:{port}/0\n  incident: x\n")
    cfg.chmod(0o600)
    journal_path = tmp_path / "j.json"
    assert main(["note", "--config", str(cfg), "--incident", str(journal_path), "written anyway"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning: not shared" in err and f"redis://:***@127.0.0.1:{port}/0" in err
    assert PW not in err and quote(PW, safe="") not in err
    assert len(file_ids(journal_path)) == 1


@pytest.mark.parametrize("section, line, message", [
    ("share:\n  url: http://h/\n  incident: x\n", 2, "'share.url' must be a redis or rediss URL"),
    ("share:\n  url: redis://h/0\n  incident: 'a:b*'\n", 3, "must be 1 to 100 letters"),
    ("share:\n  url: redis://h/0\n", 1, "missing required key 'share.incident'"),
    ("share:\n  url: redis://h/0\n  incident: x\n  ttl: 3\n", 4, "unknown key 'ttl'"),
    ("share: [1]\n", 1, "'share' must be a mapping"),
    ("share:\n  url: redis://:${NOT_SET_ANYWHERE}@h/0\n  incident: x\n", 2, "NOT_SET_ANYWHERE is not set"),
    # redis-py takes options from the query, over the console's own (and
    # checks them only when it connects: every sync would fail).
    ("share:\n  url: redis://h/0?socket_timeout=30\n  incident: x\n", 2, "no query string or fragment"),
    ("share:\n  incident: x\n  url: redis://h/0?socket_timeout=abc\n", 3, "no query string or fragment"),
    ("share:\n  url: rediss://h:6380/0?\n  incident: x\n", 2, "no query string or fragment"),
    ("share:\n  url: redis://h/0#x\n  incident: x\n", 2, "no query string or fragment"),
])
def test_share_section_problems_name_the_line_and_check_exits_2(tmp_path, capsys, section, line, message):
    path = tmp_path / "c.yaml"
    path.write_text("refresh: 1\n" + section)
    assert main(["check", "--config", str(path)]) == 2
    out = capsys.readouterr()
    assert f"{path}:{line + 1}: " in out.out + out.err and message in out.out + out.err


def test_share_section_parses(monkeypatch):
    cfg = config.parse("share:\n  url: rediss://:${REDIS_SHARE_PASSWORD}@redis.internal:6380/0\n"
                       "  incident: db-outage_2024.1\n", env={"REDIS_SHARE_PASSWORD": PW})
    assert cfg.share == ShareTarget(f"rediss://:{quote(PW, safe='')}@redis.internal:6380/0", "db-outage_2024.1")
    assert secrets.redact(cfg.share.url) == "rediss://:***@redis.internal:6380/0"
    assert config.parse("refresh: 1\n").share is None


def test_a_hung_redis_costs_one_timeout_per_sync(server, tmp_path):
    journal = Journal(tmp_path / "j.json", operator={"user": "alice", "ssh_client": None})
    share = Share(ShareTarget(server.url, "hung"), journal.operator, host="h", timeout=0.3)
    share.sync(journal)
    journal.note("written while Redis hangs")
    server.pause()
    try:
        started = time.perf_counter()
        share.sync(journal)
        took = time.perf_counter() - started
    finally:
        server.resume()
    assert took < 0.9 and not share.state.online and share.state.waiting == 1, (took, share.state)
    share.sync(journal)
    assert share.state.online and share.state.waiting == 0
    share.close()
    journal.close()


def test_redis_back_from_an_older_snapshot_gets_what_it_lost(tmp_path):
    """Redis restarted from an RDB snapshot taken before the last publishes
    (or a failover to a replica that lagged): the stream's first entry is the
    same, its last ones are gone. Every console notices, and what the stream
    lacks is published again."""
    incident = "older-snapshot"
    (tmp_path / "redis").mkdir()
    with RedisServer(root=tmp_path / "redis") as older:
        a, share_a = console(tmp_path / "a.json", older.url, incident, "alice")
        b, share_b = console(tmp_path / "b.json", older.url, incident, "bob")
        for i in range(5):
            a.note(f"before {i}")
        share_a.sync(a)
        share_b.sync(b)
        admin(older).save()  # the snapshot: dump.rdb in the server's directory
        for i in range(5):
            a.note(f"after {i}")
        share_a.sync(a)      # published after the snapshot: alice's last entries
        b.note("bob, after")
        share_b.sync(b)      # bob read alice's and published his: bob's last entry
        older.restart()      # --save '': nothing saved on the way down; dump.rdb loaded
        store = admin(older)
        assert store.xlen(stream_key(incident)) == 5
        for _ in range(2):
            share_a.sync(a)
            share_b.sync(b)
        c, share_c = console(tmp_path / "c.json", older.url, incident, "carol")
        share_c.sync(c)
        everything = {event.id for event in a.events()} | {event.id for event in b.events()}
        assert len(everything) == 11
        on_stream = {json.loads(fields[FIELD])["id"] for _, fields in store.xrange(stream_key(incident))}
        assert on_stream == everything
        for journal, share in ((a, share_a), (b, share_b), (c, share_c)):
            assert {event.id for event in journal.events()} == everything
            assert share.state.online and share.state.waiting == 0, share.state
            share.close()
            journal.close()
        store.close()


def test_a_short_secret_that_matches_a_time_or_kind_never_keeps_an_event_back(server, tmp_path):
    """Only what can carry a secret is redacted (data, operator): a numeric
    password equal to the year, or one equal to a kind, must not leave an
    event unpublished while the console says it is."""
    incident = "short-secrets"
    secrets.add("2026")
    secrets.add("note")
    at = datetime(2026, 3, 4, 20, 26, 20, 260000, tzinfo=timezone.utc)
    a = Journal(tmp_path / "a.json", operator={"user": "alice", "ssh_client": None}, clock=lambda: at)
    share_a = Share(ShareTarget(server.url, incident), a.operator, host="alice-host", timeout=1.0)
    b, share_b = console(tmp_path / "b.json", server.url, incident, "bob")
    a.append("incident.declared", title="db down in 2026", severity="P1")
    a.note("the note says the PIN is 2026")
    a.note("plain")
    share_a.sync(a)
    assert share_a.state.online and share_a.state.waiting == 0, share_a.state
    share_b.sync(b)
    assert [(e.id, e.at, e.kind) for e in b.events()] == [(e.id, e.at, e.kind) for e in a.events()]
    docs = [json.loads(fields[FIELD]) for _, fields in admin(server).xrange(stream_key(incident))]
    assert len(docs) == 3
    text = json.dumps([[doc["data"], doc["operator"]] for doc in docs])
    assert "2026" not in text and "note" not in text and "***" in text
    for journal, share in ((a, share_a), (b, share_b)):
        share.close()
        journal.close()


def test_an_event_from_the_future_waits_until_its_time_is_near(server, tmp_path):
    """Another host's clock a day ahead, or a forged year 8999: merged as
    they are, they would outrank every later change. They are held, counted,
    and merged once their time is within five minutes of the local clock."""
    from datetime import timedelta

    incident = "from-the-future"
    now = [datetime.now(timezone.utc)]
    a = Journal(tmp_path / "a.json", operator={"user": "alice", "ssh_client": None}, clock=lambda: now[0])
    share_a = Share(ShareTarget(server.url, incident), a.operator, host="alice-host", timeout=1.0,
                    clock=lambda: now[0])
    ahead = Journal(tmp_path / "ahead.json", operator={"user": "skewed", "ssh_client": None},
                    clock=lambda: now[0] + timedelta(days=1))
    share_ahead = Share(ShareTarget(server.url, incident), ahead.operator, host="skewed-host", timeout=1.0,
                        clock=lambda: now[0] + timedelta(days=1))
    slightly = new_event("note", {"user": "skewed", "ssh_client": None}, now[0] + timedelta(minutes=4),
                         text="four minutes ahead: merged", tags=[], pinned=False)
    forged = new_event("incident.status", {"user": "mallory", "ssh_client": None},
                       datetime(8999, 1, 1, tzinfo=timezone.utc), status="Monitoring")
    ahead.append("incident.status", status="Monitoring")
    ahead.add(slightly)
    ahead.add(forged)
    share_ahead.sync(ahead)
    a.append("incident.status", status="Resolved")
    merged = share_a.sync(a)
    assert [e.id for e in merged] == [slightly.id]
    assert share_a.state.online and share_a.state.held == 2 and share_a.state.waiting == 0, share_a.state
    assert [e.data.get("status") for e in a.events() if e.kind == "incident.status"] == ["Resolved"]
    share_a.sync(a)
    assert share_a.state.held == 2 and len(a.events()) == 2
    now[0] += timedelta(days=1)
    merged = share_a.sync(a)
    assert [e.data.get("status") for e in merged] == ["Monitoring"] and merged[0].id != forged.id
    assert share_a.state.held == 1 and forged.id not in {e.id for e in a.events()}
    assert len(file_ids(tmp_path / "a.json")) == 3
    for journal, share in ((a, share_a), (ahead, share_ahead)):
        share.close()
        journal.close()


def test_a_follower_publishes_nothing_even_after_a_reset(server, tmp_path):
    """The war-room screen reads the stream and says it is there; when the
    stream is found new (Redis restarted empty), it does not publish what it
    merged: only the consoles that wrote it do."""
    from console.incident.session import FollowedJournal

    incident = "follower-reset"
    key = stream_key(incident)
    a, share_a = console(tmp_path / "a.json", server.url, incident, "alice")
    for i in range(3):
        a.note(f"n{i}")
    share_a.sync(a)
    wall = FollowedJournal(tmp_path / "wall.json", operator={"user": "wall", "ssh_client": None}, merges=True)
    share_wall = Share(ShareTarget(server.url, incident), wall.operator, host="wall (watching)", timeout=1.0,
                       publishes=False)
    assert len(share_wall.sync(wall)) == 3
    store = admin(server)
    store.delete(key)  # as a Redis restarted empty
    share_wall.sync(wall)
    assert store.xlen(key) == 0
    assert share_wall.state.online and share_wall.state.waiting == 0, share_wall.state
    assert "wall@wall (watching)" in share_wall.state.responders
    share_a.sync(a)  # alice's console republishes its own
    share_wall.sync(wall)
    users = [json.loads(fields[FIELD])["operator"]["user"] for _, fields in store.xrange(key)]
    assert users == ["alice"] * 3
    for journal, share in ((a, share_a), (wall, share_wall)):
        share.close()
        journal.close()
    store.close()


def test_watch_of_a_file_does_not_share_it(tmp_path, monkeypatch, capsys):
    """`watch --incident FILE` with a `share:` config follows the file only:
    a follower cannot merge into a file it must not write, nor publish it."""
    from console import app as app_module, cli

    seen = {}

    def run(self, *args, **kwargs):
        seen["share"], seen["journal"] = self.config.share, self.session.journal

    monkeypatch.setattr(app_module.IncidentConsole, "run", run)
    monkeypatch.setattr(cli, "_exit_on_hangup", lambda: None)
    monkeypatch.setattr(cli, "_ignore_hangups", lambda: None)
    path = tmp_path / "incident.json"
    journal = Journal(path, operator={"user": "alice", "ssh_client": None})
    journal.note("local only")
    journal.close()
    cfg = note_config(tmp_path, "redis://127.0.0.1:1/0", "watched-file")
    assert main(["watch", "--config", str(cfg), "--incident", str(path)]) == 0
    assert seen["share"] is None and seen["journal"].path == path
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "share" in err and "not used" in err
