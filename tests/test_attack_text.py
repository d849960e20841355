"""Issue 10: text that is not inert.

Hostile strings (Rich/Textual markup, escape sequences, C0/C1 controls, bidi
overrides, zero-width and other invisible characters, tag characters, lone
surrogates, very long lines) are pushed through every surface that shows text
from outside: playbook title, severity, symptoms and steps (loaded from a
directory), the declared incident title, commander names, notes, the
operator's name, the journal's path, notifications, the command palette,
the playbook picker, prompts, the typed confirmation, help, the update
composer, the header, every pane, and the markdown export; PostgreSQL query
text and application_name and Redis client names come from real servers.

What is asserted is what reaches the terminal: the compositor's segments
(text, links and @click metadata), checked against Unicode categories
computed here, independently of console.text.
"""

from __future__ import annotations

import asyncio
import unicodedata

import psycopg
import pytest
import redis as redis_sync
import yaml
from markdown_it import MarkdownIt

from console import config
from console.app import IncidentConsole
from console.incident.export import postmortem_markdown
from console.incident.journal import Journal
from console.screens.confirm import ConfirmTyped
from console.screens.prompt import Prompt
from console.text import REPLACEMENT, inert, plain
from console.widgets.postgres import PostgresPane
from console.widgets.redis import RedisPane
from textual.command import CommandPalette
from textual.widgets._toast import Toast

from screen import latest, live_yaml, screen_text, wait, widget_texts

# Each attack carries a visible tag, so its remains can be found on screen.
ATTACKS = {
    "link": "[link=https://evil.example/]LINK[/link]",
    "click": "[@click=app.quit]CLICK[/]",
    "path": "[/var/lib/postgresql]PATH",
    "open": "[bold OPEN",
    "close": "CLOSE[/]",
    "dollar": "[$accent]DOLLAR $foo[/]",
    "csi": "\x1b[31mCSI\x1b[2J\x1b[H",
    "osc52": "\x1b]52;c;cm0gLXJmIH4K\x07OSC52",
    "osc8": "\x1b]8;;https://evil.example\x1b\\OSC8\x1b]8;;\x1b\\",
    "dcs": "\x1bPq#0;2;0;0;0\x1b\\DCS",
    "c1": "\x9b31mC1\x9d0;title\x9c\x85NEL",
    "ctl": "BEL\x07NUL\x00BS\x08CR\rVT\x0bDEL\x7f",
    "bidi": "BIDI\u202egnp.exe\u202c\u202a\u202b\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
    "zw": "ZW\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u034f\u3164",
    "lines": "LS\u2028PS\u2029",
    "tags": "TAG\U000e0001\U000e0041\U000e0042\U000e007f",
    "annot": "ANN\ufff9x\ufffay\ufffb",
    "smuggle": "SMUG\U0001f600\ufe00\U000e0100\U000e01ef",
    "zalgo": "ZALGO" + "\u0301\u0302\u0303\u0304\u0305\u0306" * 5,
}
TAGS = ("LINK", "CLICK", "PATH", "OPEN", "CLOSE", "DOLLAR", "CSI", "OSC52", "OSC8", "DCS", "C1", "BEL", "BIDI",
        "ZW", "LS", "TAG", "ANN", "SMUG", "ZALGO")
ALL = " ".join(ATTACKS.values())
LONG = "LONG" + "[b]x[/b]\u202e" * 3000
SURROGATE = "LONE\ud800\udfffSUR"  # json.loads("\"\\ud800\"") hands these over

BAD_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
# Invisible although not in those categories (the console replaces them too).
INVISIBLE = {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0} | set(range(0xFE00, 0xFE0E)) | set(
    range(0xE0100, 0xE01F0))


def bad_characters(text: str) -> list[str]:
    return sorted({c for c in text if c != "\n" and (unicodedata.category(c) in BAD_CATEGORIES
                                                      or ord(c) in INVISIBLE)})


def assert_clean_text(text: str, where: str) -> None:
    bad = bad_characters(text)
    assert not bad, f"{where}: {[f'U+{ord(c):04X}' for c in bad]} reached the output"
    for payload in ("]8;;", "52;c;", "#0;2;0"):
        assert payload not in text, f"{where}: an escape sequence's payload survived: {payload!r}"
    assert len(max(text.splitlines() or [""], key=len)) < 5000, f"{where}: a line was not bounded"


def segments(app):
    for strip in app.screen._compositor.render_strips():
        yield from strip


def assert_clean_screen(app, where: str) -> str:
    """Every cell on the terminal, and every widget's own lines (scrolled out
    of view or not): no raw control, bidi or invisible character, no link and
    no click action that text from outside made."""
    assert app.is_running and app._exception is None, f"{where}: the app died: {app._exception!r}"
    shown = screen_text(app)
    assert_clean_text(shown, f"{where} (screen)")
    for segment in segments(app):
        style = segment.style
        if style is None:
            continue
        assert not style.link, f"{where}: a link reached the screen: {segment!r}"
        meta = style.meta or {}
        click = str(meta.get("@click", ""))
        assert "quit" not in click, f"{where}: a clickable quit reached the screen: {segment!r}"
    for name, rendered in widget_texts(app).items():
        assert_clean_text(rendered, f"{where}: {name}")
    return shown


# -- the function itself -----------------------------------------------------------

@pytest.mark.parametrize("name", list(ATTACKS))
def test_each_attack_is_inert_and_keeps_its_visible_tag(name):
    out = inert(ATTACKS[name])
    assert_clean_text(out, name)
    assert any(tag in out for tag in TAGS)
    assert plain(ATTACKS[name]).spans == []


@pytest.mark.parametrize("char", ["\u061c", "\u200b", "\u200c", "\u200d", "\u2060", "\u2064", "\ufeff", "\u2028",
                                  "\u2029", "\u00ad", "\U000e0041", "\u180e", "\ufff9", "\ufffb", "\u202e",
                                  "\u2067", "\ud800", "\x85", "\x1b"])
def test_an_invisible_character_becomes_a_visible_mark(char):
    assert inert(f"a{char}b") == f"a{REPLACEMENT}b"


def test_emoji_presentation_selectors_are_kept():
    assert inert("⚠️ disk ✔︎") == "⚠️ disk ✔︎"


def test_lone_surrogates_can_be_written_out():
    inert(SURROGATE).encode("utf-8")


def test_every_format_or_control_character_known_to_unicodedata_is_replaced():
    missed = [f"U+{cp:04X}" for cp in range(0x110000)
              if cp not in (0x09, 0x0A, 0x0D) and unicodedata.category(chr(cp)) in BAD_CATEGORIES
              and REPLACEMENT not in inert(chr(cp))]
    assert not missed, missed


# -- the app, headless: every surface ------------------------------------------------

def _playbooks(folder):
    folder.mkdir()
    book = {"id": "hostile", "title": "BOOK " + ALL, "severity": "P1",
            "symptoms": [f"SYM {v}" for v in ATTACKS.values()],
            "steps": [{"id": f"s{i}", "title": f"STEP {v}", "kind": "check", "detail": f"DETAIL {v}"}
                      for i, v in enumerate(ATTACKS.values())]}
    (folder / "hostile.yaml").write_text(yaml.safe_dump(book, allow_unicode=False), encoding="utf-8")
    # A second one with the title alone, so the palette's fuzzy search meets a bare `[/...]`.
    (folder / "bare.yaml").write_text(yaml.safe_dump({
        "id": "bare", "title": "[/var/lib/postgresql]", "severity": "P2[@click=app.quit]\u202e\x1b[5m", "symptoms": ["[@click=app.quit]x[/]"],
        "steps": [{"id": "a", "title": "[link=https://evil.example/]a[/link]", "kind": "check"}]}), encoding="utf-8")
    (folder / "long.yaml").write_text(yaml.safe_dump({
        "id": "long", "title": LONG, "severity": "P3", "symptoms": [LONG],
        "steps": [{"id": "a", "title": LONG, "kind": "check"}]}, allow_unicode=False), encoding="utf-8")
    return folder


def _journal(path):
    journal = Journal(path, operator={"user": "OPER[@click=app.quit]u\u202e\u200b", "ssh_client": None})
    journal.append("incident.declared", title="TITLE " + ALL, severity="P1")
    journal.append("incident.status", status="Investigating")
    journal.append("incident.role", role="commander", person="IC[@click=app.quit]\u202eeve\u200d\x1b[31m")
    journal.append("incident.role", role="scribe", person="[link=https://evil.example/]bob[/link]\u2066")
    for value in ATTACKS.values():
        journal.note(f"NOTE {value}")
    journal.note(SURROGATE)
    journal.note(LONG)
    journal.note("#root-cause " + ALL)
    journal.note("#action [click me](https://evil.example) <img src=x onerror=alert(1)> &#x202E; ![i](http://e/i.png)")
    journal.flush()
    return journal


async def _step_back(pilot, app, where: str) -> None:
    await pilot.pause(0.2)
    assert_clean_screen(app, where)
    await pilot.press("escape")
    await pilot.pause(0.1)


async def test_hostile_text_through_every_surface_of_the_console(tmp_path):
    books = _playbooks(tmp_path / "books")
    # The journal lives in a folder whose name is itself an attack: the export's toast names it.
    home = tmp_path / "[@click=app.quit]HOME\x1b[31m\u202e"
    home.mkdir()
    journal = _journal(home / "incident.json")
    cfg = config.parse(f"refresh: 5\nplaybooks: [{str(books)!r}]\n", "hostile.yaml", env={})
    app = IncidentConsole(cfg, journal=journal)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await wait(pilot, lambda: app.session.desk is not None, what="playbooks loaded")
        assert {p.id for p in app.session.desk.playbooks} >= {"hostile", "bare", "long"}, app.session.desk.problems
        app.main.start_playbook("hostile")
        await pilot.pause(0.3)
        shown = assert_clean_screen(app, "main screen")
        # Markup is shown as written: the header, the playbook's border, summary and steps, the timeline.
        assert "TITLE [link=https://evil.example/]LINK[/link]" in shown and "IC IC[@click=app.q" in shown
        assert "Playbook · BOOK [link=https://evil.example/]" in shown and "STEP [@click=app.quit]CLICK[/]" in shown
        assert "OPER[@cli" in shown and "Note: NOTE ZW\ufffd" in shown
        cells = [cell for table in (app.main.timeline.table, app.main.playbook_pane.table)
                 for key in table.rows for cell in table.get_row(key)]
        assert_clean_text("\n".join(cell.plain for cell in cells), "timeline and checklist cells")
        assert any("NOTE [@click=app.quit]CLICK[/]" in cell.plain for cell in cells)
        assert all(not cell.spans for cell in cells)
        assert app.main.playbook_pane.border_title and "BOOK" in str(app.main.playbook_pane.border_title)

        app.main.timeline.notify("[@click=app.quit]WIDGET[/] [/var/lib/postgresql]")  # a widget's notify too
        app.notify(SURROGATE + LONG)
        app.notify("TOAST " + ALL, title="TOASTED " + ALL, severity="warning")  # last: toasts show one at a time
        await pilot.pause(0.3)
        shown = assert_clean_screen(app, "notifications")
        toasts = [toast.render() for toast in app.query(Toast)]
        said = "\n".join(content.plain for content in toasts)
        assert_clean_text(said, "toasts")
        assert "TOAST [link=https://evil.example/]LINK[/link]" in said and "[@click=app.quit]WIDGET[/]" in said
        assert "TOASTED [link=" in said and "LONE\ufffd\ufffdSUR" in said
        assert "TOASTED" in shown and "[link=https://evil.example/]LINK[/link]" in shown  # the newest toast

        app.main.action_export()  # its toast names the hostile folder
        await pilot.pause(0.3)
        shown = assert_clean_screen(app, "export toast")
        assert "post-mortem written to" in shown and "HOME" in shown
        exported = (home / "incident.postmortem.md").read_text(encoding="utf-8")
        app.clear_notifications()

        await pilot.press("colon")  # the palette (":"; the app's binding replaces ctrl+p), first its list...
        await pilot.pause(0.5)
        assert isinstance(app.screen, CommandPalette)
        await _step_back(pilot, app, "palette (discovery)")
        for query, expected in (("[/var/lib", "[/var/lib/postgresql]"),  # ...then its fuzzy search
                                ("BOOK LINK", "Playbook: BOOK [link=https://evil.example/]LINK[/link] [@click"),
                                ("Playbook: LONG", "LONG[b]x[/b]\ufffd[b]x")):  # wrapped under "Playbook:"
            await pilot.press("colon")
            await pilot.pause(0.3)
            await pilot.press(*query)
            await pilot.pause(0.6)
            shown = assert_clean_screen(app, f"palette searching {query!r}")
            assert expected in shown, f"{query!r} did not show {expected!r}: " + "\n".join(l for l in shown.splitlines() if "Playbook" in l or "🔎" in l)
            await pilot.press("escape")
            await pilot.pause(0.1)

        await pilot.press("p")  # the picker
        await pilot.pause(0.2)
        assert "[/var/lib/postgresql]" in screen_text(app)
        await _step_back(pilot, app, "picker")

        await pilot.press("question_mark")  # help lists the palette's commands
        await pilot.pause(0.2)
        assert "Playbook: BOOK" in "\n".join(widget_texts(app).values())
        await _step_back(pilot, app, "help")

        await pilot.press("u")  # the update composer, filled from the incident
        await _step_back(pilot, app, "update composer")

        notes = [n.id for n in app.session.incident(app.clock()).notes]
        table = app.main.timeline.table
        table.focus()
        row = table.get_row_index(notes[0])
        table.move_cursor(row=row)
        await pilot.pause(0.1)
        await pilot.press("e")  # correct a hostile note: the prompt holds it
        await pilot.pause(0.2)
        assert isinstance(app.screen, Prompt)
        await _step_back(pilot, app, "correction prompt")

        app.push_screen(Prompt("Q " + ALL, value="V " + ALL, hint="H " + ALL))
        await _step_back(pilot, app, "prompt")
        app.push_screen(ConfirmTyped("C " + ALL, "W " + ALL + LONG, "[@click=app.quit]x"))
        await _step_back(pilot, app, "typed confirmation")

        await pilot.press("slash", *"[@click=app.quit]F")  # the filter echoes typed text in the pane's title
        await pilot.pause(0.2)
        assert_clean_screen(app, "filter")
        await pilot.press("escape")
        assert app.is_running

    assert app._exception is None
    _assert_inert_markdown(exported)


def _assert_inert_markdown(exported: str) -> None:
    assert_clean_text(exported, "post-mortem markdown")
    for tag in ("TITLE", "NOTE", "IC", "bob", "LONE"):
        assert tag in exported, tag
    html = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(exported)
    assert "<a " not in html and "<img" not in html, "markdown from outside made a link or an image"
    assert "&lt;img" in html  # shown as written
    assert "\u202e" not in html  # not even through a character reference


def test_postmortem_markdown_from_hostile_journal_is_inert(tmp_path):
    journal = _journal(tmp_path / "incident.json")
    from datetime import datetime, timezone
    _assert_inert_markdown(postmortem_markdown(journal.events(), datetime.now(timezone.utc)))


# -- real servers: PostgreSQL query text and application_name, Redis client names ---

PG_TEXT = " ".join(v for k, v in ATTACKS.items() if k not in ("ctl", "c1"))  # PostgreSQL text holds no NUL


async def test_hostile_text_from_postgres_and_redis_reaches_the_screen_inert(pg_server, redis_server, sessions,
                                                                              tmp_path):
    cfg = config.parse(live_yaml(pg_server.dsn(), redis_server.url), "hostile.yaml", env={})
    literal = PG_TEXT.replace("'", "''")
    session = await psycopg.AsyncConnection.connect(
        pg_server.dsn(), autocommit=True,
        application_name="APP[@click=app.quit]\u202e\u200b\u2060\ufeff\U000e0041[/]")
    # pg_sleep first: pg_stat_activity keeps only the query's first 1 kB.
    running = asyncio.create_task(session.execute(f"SELECT pg_sleep(30), '{literal}'"))
    # Redis refuses spaces and non-printable bytes in names: markup is what it can carry.
    named = redis_sync.Redis(host="127.0.0.1", port=redis_server.port)
    named.client_setname("[@click=app.quit]CLIENT[/][/var/lib/postgresql]")
    app = IncidentConsole(cfg, journal=Journal(tmp_path / "incident.json"))
    try:
        async with app.run_test(size=(200, 60), notifications=True) as pilot:
            pg, rd = app.query_one(PostgresPane), app.query_one(RedisPane)
            await wait(pilot, lambda: latest(pg) and any(
                "pg_sleep" in (s.get("query") or "") for s in latest(pg).details.get("sessions", ())),
                what="hostile query seen")
            await wait(pilot, lambda: latest(rd) is not None, what="redis read")
            await pilot.pause(0.3)
            assert_clean_screen(app, "postgres and redis panes")
            cells = [cell for key in pg.table.rows for cell in pg.table.get_row(key)]
            every = "\n".join(cell.plain for cell in cells)
            assert_clean_text(every, "postgres cells")
            assert "[link=https://evil.example/]LINK" in every and "BIDI" in every and "APP[@click" in every
            assert all(not cell.spans for cell in cells)
            clients = redis_sync.Redis(host="127.0.0.1", port=redis_server.port).client_list()
            assert any("CLIENT" in c.get("name", "") for c in clients)
            # the palette and the notifications, while live panes run
            app.notify(PG_TEXT)
            await pilot.press("colon", *"cache")
            await pilot.pause(0.4)
            assert_clean_screen(app, "palette over live panes")
            await pilot.press("escape")
            assert app.is_running
            await pilot.press("q")  # closes the sources while the loop still runs
    finally:
        running.cancel()
        await session.close()
        named.close()
