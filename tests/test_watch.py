"""`incident-console watch`: the war-room follower changes nothing, follows
the incident live (a journal file, or a shared incident through Redis), and
a shared incident's header says who is there, or since when it is offline
(issue 17)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path

import pytest

from console import config
from console.app import IncidentConsole
from console.incident import recovery
from console.incident.journal import Journal, current_operator, new_event, utcnow, write_event
from console.incident.session import FollowedJournal, Refusal
from console.screens.help import HelpScreen
from console.screens.main import MainScreen
from console.screens.watch import WatchScreen
from console.widgets.header import IncidentHeader
from console.widgets.timeline import TimelinePane
from screen import wait
from test_attack_keys import FUZZ_PLAYBOOK, send
from test_layout import CONFIG, FROZEN, scripted_sources, settle


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _incident_file(path: Path) -> None:
    """A journal with something for every key to act on: a declared
    incident, a note, a playbook in progress."""
    journal = Journal(path, operator={"user": "alice", "ssh_client": None}, clock=lambda: FROZEN)
    journal.append("incident.declared", title="Checkout down", severity="P1")
    journal.append("incident.status", status="Investigating")
    journal.note("pool at 95% #finding")
    journal.append("playbook.started", playbook="fuzz-book")
    journal.close()


def _bound_keys() -> set[str]:
    """Every key bound anywhere: the app, its screens, its panes and dialogs."""
    from textual.widget import Widget

    from console.screens import confirm, confirm_target, detail, entry, moment, picker, prompt, update
    from console.widgets.pane import LivePane

    owners = [IncidentConsole, MainScreen, HelpScreen, confirm.ConfirmTyped, confirm_target.ConfirmTarget,
              detail.DetailScreen, entry.EntryScreen, moment.MomentScreen, picker.PlaybookPicker, picker.Choices,
              prompt.Prompt, update.UpdateComposer]
    import console.widgets.error_rates, console.widgets.playbook, console.widgets.postgres  # noqa: E401,F401
    import console.widgets.redis, console.widgets.services, console.widgets.timeline  # noqa: E401,F401

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    owners += [w for w in subclasses(Widget) if w.__module__.startswith("console.")]
    owners += list(subclasses(LivePane))
    keys = set()
    for owner in owners:
        for binding in getattr(owner, "BINDINGS", ()):
            key = binding.key if hasattr(binding, "key") else binding[0]
            keys.update(k.strip() for k in key.split(","))
    return keys


# The keys that change things in the console, named again in case a binding moves.
CHANGING = ["n", "e", "x", "asterisk", "s", "S", "d", "a", "r", "enter", "y", "space", "D", "u", "p", "c",
            "C", "K", "R", "U", "t", "i"]


async def test_no_key_changes_the_incident_in_watch_mode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a key that exported or saved a screenshot would write here
    path = tmp_path / "incident.json"
    _incident_file(path)
    # Entries a crashed console left unwritten: a console merges them, a follower must not.
    saved = recovery.save(path, [new_event("note", {"user": "bob"}, utcnow(), text="left behind",
                                           tags=[], pinned=False).to_document()])
    before, listing = _digest(path), sorted(p.name for p in tmp_path.iterdir())
    books = tmp_path / "books"
    books.mkdir()
    (books / "fuzz.yaml").write_text(FUZZ_PLAYBOOK)
    cfg = config.parse(CONFIG + f"playbooks: [{books}]\n", str(tmp_path / "c.yaml"), env={})
    journal = FollowedJournal(path, clock=lambda: FROZEN)
    ids = [e.id for e in journal.events()]
    app = IncidentConsole(cfg, sources=scripted_sources(), clock=lambda: FROZEN, journal=journal, watching=True)
    keys = sorted((_bound_keys() | set(CHANGING)) - {"q", "colon", "ctrl+p"})
    assert {"e", "x", "asterisk", "space", "enter", "C", "K", "R", "U", "D", "s", "n"} <= set(keys)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, WatchScreen)
        shown = {b.binding.id for b in app.screen.active_bindings.values()}
        assert not shown & {"incident.note", "incident.declare", "incident.status", "incident.update",
                            "playbook.choose", "timeline.correct", "playbook.tick"}
        # The panes with keys of their own: services, PostgreSQL, playbook, timeline.
        for pane in "3561":
            for key in keys:
                # Each key on this pane, then whatever it opened is closed again.
                for sent in (pane, key, "escape"):
                    send(app, sent)
                # Every message those keys queued is handled before the next
                # key. pause(0): without pause()'s wait for the CPU to idle
                # (20 ms at least, 228 times), which was most of this test.
                await pilot.pause(0)
            # A note typed after `n`: `n` handled (and whatever it opened shown)
            # before the text, which then goes where a typist's would.
            send(app, "n")
            await pilot.pause()
            for sent in (*"a typed note", "enter", "escape"):
                send(app, sent)
            await pilot.pause()
            app.clear_notifications()  # a refusal's toast each: thousands would slow the screen
        # The palette: only commands that look (none declares, notes or exports).
        titles = [c.title for c in app.get_system_commands(app.main)]
        assert not [t for t in titles if t.startswith(("Declare", "Set ", "Write", "Export", "Resolve", "Mark",
                                                       "Playbook:", "Choose", "Role"))]
        # Behind the keys, the session and the journal refuse as well.
        with pytest.raises(Refusal):
            app.session.note("from behind the keys")
        with pytest.raises(Refusal):
            app.session.declare("P1 again")
        with pytest.raises(Refusal):
            journal.append("note", text="straight to the journal")
        app.main.post_message(TimelinePane.NoteWritten("a message, not a key"))
        await pilot.pause()
        assert app.session.journal.pending == ()
        await pilot.press("q")
    assert [e.id for e in journal.events()] == ids
    assert _digest(path) == before and saved.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "books") == sorted(
        [*listing, path.name + ".lock"] if path.name + ".lock" not in listing else listing)


async def test_watch_follows_another_writer(tmp_path):
    path = tmp_path / "incident.json"
    _incident_file(path)
    cfg = config.parse("refresh: 3600\n", str(tmp_path / "c.yaml"), env={})
    app = IncidentConsole(cfg, sources=[], journal=FollowedJournal(path), watching=True)
    async with app.run_test(size=(120, 40)) as pilot:
        timeline = app.query_one(TimelinePane)
        await wait(pilot, lambda: timeline.table.row_count == 4, what="the journal shown")
        write_event(path, new_event("note", current_operator(), utcnow(), text="rollback started",
                                    tags=[], pinned=False))
        started = asyncio.get_running_loop().time()
        await wait(pilot, lambda: timeline.table.row_count == 5, timeout=3, what="the other writer's note")
        assert asyncio.get_running_loop().time() - started < 1.5  # one refresh (0.5 s) and a little
        assert "rollback started" in timeline.table.get_row_at(4)[2].plain
        assert "WATCHING" in app.query_one(IncidentHeader)._shown.plain


async def test_two_consoles_share_an_incident_and_a_follower_watches(tmp_path):
    from console.demo.servers import RedisServer

    server = RedisServer().start()
    try:
        name = f"t-{uuid.uuid4().hex[:8]}"
        text = f"share: {{url: '{server.url}', incident: {name}}}\nrefresh: 3600\n"
        cfg = config.parse(text, str(tmp_path / "c.yaml"), env={})
        one = IncidentConsole(cfg, sources=[], journal=Journal(tmp_path / "one.json", operator={"user": "alice"}))
        two = IncidentConsole(cfg, sources=[], journal=Journal(tmp_path / "two.json", operator={"user": "bob"}))
        wall = IncidentConsole(cfg, sources=[], watching=True,
                               journal=FollowedJournal(tmp_path / "wall.json", operator={"user": "wall"},
                                                       merges=True))
        async with one.run_test(size=(160, 48)) as p1, two.run_test(size=(160, 48)) as p2, \
                wall.run_test(size=(80, 24)) as p3:
            headers = [app.query_one(IncidentHeader) for app in (one, two, wall)]
            await wait(p1, lambda: all(h.sharing is not None and len(h.sharing.responders) == 3 for h in headers),
                       what="three responders seen")
            assert "shared · 3 responders" in headers[0]._shown.plain
            assert "shared ·3" in headers[2]._shown.plain and "WATCH " in headers[2]._shown.plain  # 80 columns: short
            second = headers[0]._shown.plain.splitlines()[1]
            assert "alice@" in second and "bob@" in second and "(watching)" in second
            await p1.press("n", *"from alice", "enter")
            await p2.press("n", *"from bob", "enter")
            started = asyncio.get_running_loop().time()

            def notes(app):
                return {e.data.get("text") for e in app.session.events() if e.kind == "note"}
            await wait(p1, lambda: all(notes(a) == {"from alice", "from bob"} for a in (one, two, wall)),
                       timeout=4, what="each console's note in the other two")
            assert asyncio.get_running_loop().time() - started < 2.0
            for app in (one, two, wall):
                await wait(p1, lambda app=app: app.query_one(TimelinePane).table.row_count == 2,
                           what="both notes in every timeline")
            # The follower published nothing of its own: only the two notes are on the stream.
            import redis

            assert redis.Redis.from_url(server.url).xlen(f"incident-console:{name}:events") == 2
            server.stop()
            await wait(p1, lambda: not headers[0].sharing.online, timeout=5, what="sharing offline")
            await p1.press("escape", "n", *"while offline", "enter")
            await wait(p1, lambda: headers[0].sharing.waiting == 1, timeout=5, what="one entry waiting")
            said = headers[0]._shown.plain
            assert f"offline since {headers[0].sharing.offline_since:%H:%M} · 1 waiting" in said
            assert "offline:" in said.splitlines()[1]
            for app in (one, two, wall):
                await app.action_quit()
    finally:
        server.cleanup()


def test_a_follower_never_writes_back_what_the_file_lost(tmp_path, monkeypatch):
    """A journal moved aside and a new one started at its path (or a backup
    restored): a console writes back the entries the file lost; a follower
    keeps them in memory and leaves the file as it is."""
    from console.incident import journal as journal_module

    monkeypatch.setattr(journal_module, "RETRY_SECONDS", 0)
    path = tmp_path / "incident.json"
    _incident_file(path)
    follower = FollowedJournal(path, operator={"user": "wall", "ssh_client": None})
    assert len(follower.events()) == 4
    moved = tmp_path / "old.json"
    path.rename(moved)
    shorter = Journal(path, operator={"user": "bob", "ssh_client": None})
    shorter.note("a new incident in the same place")
    shorter.close()
    before = _digest(path)
    for _ in range(3):
        follower.refresh()
        follower.flush()
    assert _digest(path) == before
    assert [e.data.get("text") for e in Journal(path, operator={"user": "x"}).events()] == [
        "a new incident in the same place"]
    follower.close()
    assert _digest(path) == before


async def test_the_header_says_how_many_entries_wait_for_their_time(tmp_path):
    """Entries another host stamped ahead of this one's clock are held
    (console/incident/share.py): the second header line says so."""
    from console.incident.share import ShareState
    from console.widgets.header import who_line
    from console.widgets import colours

    app = IncidentConsole(config.parse("refresh: 60\n", "t.yaml", env={}), sources=[],
                          journal=Journal(tmp_path / "i.json", operator={"user": "a", "ssh_client": None}))
    async with app.run_test(size=(120, 40)):
        colour = colours.of(app.main.header)
        state = ShareState("inc", True, None, 0, ("alice@\x1b[31mbastion",), None, held=2)
        line = who_line(state, colour)
        assert "2 held (clock ahead)" in line.plain and "\x1b" not in line.plain
        assert who_line(ShareState("inc", True, None, 0, (), None), colour) is None
