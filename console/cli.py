"""Command line: argument parsing and sub-commands (a contract, see DESIGN.md).

No Textual import at module level: ``status`` and ``check`` must start fast
and run where no terminal is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Sequence

from console import config as config_module
from console.incident import tags
from console.located import Invalid

EXIT_OK, EXIT_UNHEALTHY, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    # --config and --incident are accepted before the sub-command and after
    # it: each sub-command takes them again, with no default, so that a value
    # given before is not overwritten by a sub-command's default.
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="config file (default: $INCIDENT_CONSOLE_CONFIG, then the XDG config dir)")
    incident = argparse.ArgumentParser(add_help=False)
    incident.add_argument("--incident", metavar="FILE", default=argparse.SUPPRESS,
                          help="incident journal (default: $INCIDENT_CONSOLE_INCIDENT, "
                               "then the XDG data dir's current incident)")
    running = argparse.ArgumentParser(add_help=False)
    running.add_argument("--demo", action="store_true", default=argparse.SUPPRESS,
                         help="the running demo's config and journal (an explicit --config or --incident wins)")
    both = [config, incident]
    parser = argparse.ArgumentParser(
        prog="incident-console", parents=both,
        description="A full-screen console for the person running a production incident.")
    parser.add_argument("--read-only", action="store_true", help="refuse every action that changes a system")
    parser.add_argument("--theme", metavar="NAME", help="colour theme")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", parents=[incident], help="the console against a local sandbox it starts itself")
    demo.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS)
    demo.add_argument("--theme", metavar="NAME", default=argparse.SUPPRESS)
    status = sub.add_parser("status", parents=[*both, running], help="one poll of every source, as a table or JSON")
    status.add_argument("--json", action="store_true", help="print one JSON object (a contract)")
    sub.add_parser("check", parents=[*both, running], help="validate the config and every playbook")
    note = sub.add_parser("note", parents=[*both, running], help="append a timeline entry from a shell")
    note.add_argument("text", nargs="+", help=f"the note; tagged {tags.hint()}")
    export = sub.add_parser("export", parents=[*both, running],
                            help="the post-mortem (markdown) or raw journal (json)")
    export.add_argument("--format", choices=("markdown", "json"), default="markdown")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    watch = sub.add_parser("watch", parents=[*both, running],
                           help="a read-only follower of the incident for the war-room screen: no key changes anything")
    watch.add_argument("--theme", metavar="NAME", default=argparse.SUPPRESS,
                       help="colour theme (default: war-room, unless the config names another)")
    incidents = sub.add_parser("incidents", parents=[config],
                               help="the incident log: every journal in the data directory")
    incidents.add_argument("--markdown", action="store_true",
                           help="print the runbook's | Date | Severity | Duration | Issue | Resolution | table")
    runbook = sub.add_parser("import-runbook", help="turn a markdown runbook into playbooks (YAML)")
    runbook.add_argument("file", metavar="FILE.md|DIR")
    runbook.add_argument("-o", "--output", metavar="FILE.yaml|DIR",
                         help="write here instead of standard output (a folder for DIR: one YAML per runbook)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "console"
    if getattr(args, "demo", False) and not _reach_demo(args):
        return EXIT_USAGE
    if command in ("console", "demo", "watch"):
        from console.footprint import fewer_malloc_arenas

        fewer_malloc_arenas()  # before any thread starts
        return _run(command, args)  # the screen redacts in console.text.inert
    # Everything this process writes goes through one redacting writer: tables,
    # JSON, exports, `path:line` problems and error messages alike.
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Redacting(out), _Redacting(err)
    try:
        if command in ("note", "export", "incidents"):
            _know_secrets(args)
        return _run(command, args)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = out, err


class _Redacting:
    """A text stream that masks configured secrets (:mod:`console.secrets`)
    before they reach the real one. Whole lines are redacted at once, so a
    secret written in two pieces (``json.dump`` writes token by token) is
    still recognised."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._line = ""

    def write(self, text: str) -> int:
        from console import secrets

        self._line += text
        if "\n" in self._line:
            done, _, self._line = self._line.rpartition("\n")
            self._stream.write(secrets.redact(done + "\n"))
        return len(text)

    def flush(self) -> None:
        from console import secrets

        if self._line:
            self._stream.write(secrets.redact(self._line))
            self._line = ""
        self._stream.flush()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _reach_demo(args: argparse.Namespace) -> bool:
    """``--demo``: the running demo's config and journal, where no --config or
    --incident says otherwise; False (said why) when there is none to use."""
    from console.demo.running import NoRunningDemo, find

    try:
        demo = find()
    except NoRunningDemo as exc:
        print(f"error: --demo: {exc}", file=sys.stderr)
        return False
    if getattr(args, "config", None) is None:
        args.config = str(demo.config)
    if getattr(args, "incident", None) is None:
        args.incident = str(demo.incident)
    return True


def _know_secrets(args: argparse.Namespace) -> None:
    """Load the config, if there is one, only to learn its secrets: a note or
    an export made from a shell must not show them either."""
    try:
        config_module.load(getattr(args, "config", None))
    except (Invalid, OSError, ValueError):
        pass


def _run(command: str, args: argparse.Namespace) -> int:
    try:
        if command == "check":
            return _check(args)
        if command == "status":
            return _status(args)
        if command == "demo":
            return _demo(args)
        if command == "note":
            return _note(args)
        if command == "export":
            return _export(args)
        if command == "import-runbook":
            return _import_runbook(args)
        if command == "incidents":
            return _incidents(args)
        if command == "watch":
            return _watch(args)
        return _console(args)
    except Invalid as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _load(args: argparse.Namespace) -> config_module.Config:
    cfg = config_module.load(getattr(args, "config", None))
    for warning in cfg.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return cfg


def _check(args: argparse.Namespace) -> int:
    from console import paths
    from console.incident.desk import playbook_dirs
    from console.playbooks import load_playbooks

    try:
        if getattr(args, "config", None) is None and not paths.default_config().exists():
            # Nothing configured yet (a fresh install): check what ships, the playbooks.
            cfg = config_module.parse("{}", f"{paths.default_config()} (no config file)")
        else:
            cfg = _load(args)
    except Invalid as exc:
        print(exc)
        return EXIT_USAGE
    count = len(cfg.postgres) + len(cfg.redis) + len(cfg.services) + (1 if cfg.prometheus else 0) + (
        len(cfg.kubernetes.namespaces) if cfg.kubernetes else 0)
    print(f"{cfg.path}: ok ({count} sources)")
    dirs = playbook_dirs(cfg)
    playbooks, problems = load_playbooks(dirs, cfg)  # once: a big playbook takes seconds
    for problem in problems:
        print(problem)
    if problems:
        return EXIT_USAGE
    for line in _connection_origins(cfg):
        print(line)
    print(f"{len(playbooks)} playbooks: ok ({', '.join(str(d) for d in dirs)})")
    for warning in _role_warnings(cfg):
        print(f"warning: {warning}")
    return EXIT_OK


def _connection_origins(cfg: config_module.Config) -> list[str]:
    """Where each part of every PostgreSQL connection comes from: the config
    file, PG* variables, a service file, pgpass or libpq's defaults. Never a
    password, only where it comes from."""
    import os

    from console import conninfo
    from console.text import inert

    out = []
    for target in cfg.postgres:
        for label, dsn in ((target.name, target.dsn), (f"{target.name} (actions)", target.action_dsn)):
            if dsn is None:
                continue
            resolved = conninfo.resolve(dsn, os.environ)
            out.append(f"postgres {inert(label)}: {inert(resolved.describe(), 2000)}")
            out += [f"warning: postgres {inert(label)}: {inert(w)}" for w in resolved.warnings]
    return out


def _role_warnings(cfg: config_module.Config) -> list[str]:
    """A warning per PostgreSQL source whose role can signal other sessions.

    A server that does not answer is not a config error: it is skipped.
    """
    import asyncio

    from console.readings import role_warning
    from console.sources.postgres import role_facts

    async def ask() -> list[object]:
        return await asyncio.gather(*(role_facts(t.dsn, min(t.timeout, 2.0)) for t in cfg.postgres))

    if not cfg.postgres:
        return []
    out = []
    for target, facts in zip(cfg.postgres, asyncio.run(ask())):
        warning = role_warning(facts) if isinstance(facts, dict) else None
        if warning is not None:
            out.append(f"postgres {target.name}: {warning}")
    return out


def _import_runbook(args: argparse.Namespace) -> int:
    from console.playbooks import import_runbook, to_yaml
    from console.playbooks.importer import RunbookError

    from pathlib import Path

    if Path(args.file).is_dir():
        return _import_runbook_folder(Path(args.file), args.output)
    try:
        docs = import_runbook(args.file)
    except RunbookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _write(to_yaml(docs), args.output, f"{len(docs)} playbooks")


def _import_runbook_folder(folder: "Path", output: str | None) -> int:
    """Every runbook in ``folder`` to one YAML file each in ``output``, then a summary."""
    from pathlib import Path

    from console.playbooks import import_runbook, to_yaml
    from console.playbooks.importer import RunbookError

    if not output:
        print("error: importing a folder needs -o DIR (one YAML file per runbook)", file=sys.stderr)
        return EXIT_USAGE
    target = Path(output)
    target.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".md", ".markdown", ".txt"))
    books = steps = review = 0
    failed: list[str] = []
    ids: set[str] = set()
    for path in files:
        try:
            docs = import_runbook(path)
        except RunbookError as exc:
            failed.append(str(exc))
            continue
        for doc in docs:  # ids are unique across the folder, as the loader requires
            base, n = doc["id"], 2
            while doc["id"] in ids:
                doc["id"], n = f"{base}-{n}", n + 1
            ids.add(doc["id"])
        (target / f"{path.stem}.yaml").write_text(to_yaml(docs), encoding="utf-8")
        books += len(docs)
        steps += sum(len(d["steps"]) for d in docs)
        # Commands to copy and "work through" steps are what a person must read before relying on them.
        review += sum(1 for d in docs for s in d["steps"] if s["kind"] == "command" or s["id"] == "review")
    print(f"{len(files)} files, {books} playbooks, {steps} steps; {review} steps to review; "
          f"{len(failed)} files not imported; written to {target}", file=sys.stderr)
    for reason in failed:
        print(f"  not imported: {reason}", file=sys.stderr)
    return EXIT_USAGE if failed and len(failed) == len(files) else 0


def _write(text: str, output: str | None, what: str) -> int:
    """``text`` to the file ``output`` names, else to standard output. A
    regular file is replaced whole or not at all (a temporary renamed over
    it: a full disk leaves the old one); a FIFO or ``/dev/stdout`` is
    written to as it is."""
    from console import secrets
    from console.incident.export_file import replace_file

    if not output:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        replace_file(output, secrets.redact(text).encode("utf-8"))
    except OSError as exc:
        print(f"error: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {what} to {output}", file=sys.stderr)
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from console.incident.session import IncidentSession
    from console.sources import State, build_sources, close_all, overall
    from console.sources.base import utcnow

    cfg = _load(args)
    sources = build_sources(cfg)

    async def once():
        try:
            return await IncidentSession(cfg).check_once(sources)
        finally:
            await close_all(sources)

    checked_at = utcnow()
    snapshots = asyncio.run(once())
    if args.json:
        doc = {"checked_at": checked_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "sources": [s.to_json() for s in snapshots]}
        json.dump(doc, sys.stdout, indent=None, allow_nan=False, default=str)
        sys.stdout.write("\n")
    else:
        _print_status_table(snapshots)
    return EXIT_OK if overall(snapshots) is State.OK else EXIT_UNHEALTHY


def _print_status_table(snapshots) -> None:
    from rich.console import Console
    from rich.table import Table

    from console.readings import STATE_MARK, millis, summary
    from console.text import plain

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("kind", "name", "state", "latency", "reading"):
        table.add_column(col, no_wrap=col != "reading")
    for snap in snapshots:
        reading = summary(snap)
        if snap.breaches:
            reading += "  [" + ", ".join(b.describe() for b in snap.breaches) + "]"
        wrapped = plain(reading, limit=400)
        wrapped.no_wrap, wrapped.overflow = False, "fold"
        table.add_row(plain(snap.kind), plain(snap.name), plain(STATE_MARK[snap.state]),
                      plain(millis(snap.latency_ms)), wrapped)
    Console(highlight=False, soft_wrap=False).print(table)


def _incident_path(args: argparse.Namespace):
    import os
    from pathlib import Path

    from console import paths

    from console.incident.storage import JournalPathRefused, journal_path

    given = getattr(args, "incident", None) or os.environ.get("INCIDENT_CONSOLE_INCIDENT")
    path = Path(given) if given else paths.default_incident()
    try:
        # A symlink is written through to its target; a FIFO, device,
        # directory or a path under a file is refused, never opened.
        path = journal_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    except JournalPathRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    except OSError as exc:
        print(f"error: {path}: cannot make its directory: {exc.strerror or exc}", file=sys.stderr)
        return None
    return path


def _open_journal(path, interactive: bool, opening=None,
                  advice: str = "Pass --incident NEWFILE to start a new journal elsewhere."):
    """The journal at ``path`` (None: ``_incident_path`` refused it), opened
    with ``opening`` (a Journal by default). An unreadable file is never
    overwritten: it is set aside (renamed) only when the operator says so;
    not interactive, ``advice`` says what to do instead."""
    from console.incident.journal import Journal, JournalUnreadable, set_aside

    if path is None:
        return None
    try:
        journal = (opening or Journal)(path)
        for merged in journal.recovered:
            print(f"merged entries left unwritten by an earlier session from {merged}", file=sys.stderr)
        return journal
    except OSError as exc:  # refused (not a regular file), or cannot be read
        print(f"error: {exc if exc.strerror is None else f'{path}: {exc.strerror}'}", file=sys.stderr)
        return None
    except JournalUnreadable as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("The file was not changed.", file=sys.stderr)
        if not interactive:
            print(advice, file=sys.stderr)
            return None
        answer = input("Set it aside and start a new journal here? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            return None
        moved = set_aside(path)
        print(f"kept the unreadable file as {moved}", file=sys.stderr)
        return Journal(path)


def _note(args: argparse.Namespace) -> int:
    """One entry, appended without reading the journal (see write_event).
    When it cannot be written, it goes to a recovery file that the next
    console, note or export on this journal merges back; the message says
    which of the two happened, and exit 1 either way."""
    from console.incident.journal import JournalPathRefused, JournalUnreadable
    from console.incident.recovery import save
    from console.incident.session import IncidentSession

    path = _incident_path(args)
    if path is None:
        return EXIT_USAGE
    try:
        event, where = IncidentSession.note_to(path, " ".join(args.text))
    except JournalPathRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, JournalUnreadable) as exc:
        event, why = exc.event, _why_not_written(exc)
    else:
        print(f"noted at {event.at:%H:%M:%S} UTC in {where}")
        _sync_shared(args, where)
        return EXIT_OK
    try:
        saved = save(path, [event.to_document()])
    except OSError as exc:
        print(f"error: the entry was NOT saved: not written to {path} ({why}), and {exc}.\n"
              f"Here it is, to keep: {event.at:%Y-%m-%d %H:%M:%S} UTC {event.data['text']}", file=sys.stderr)
        return EXIT_UNHEALTHY
    print(f"error: not written to {path}: {why}.\nThe entry is in {saved}; it goes into the journal "
          f"the next time the console, note or export opens it.", file=sys.stderr)
    return EXIT_UNHEALTHY


def _sync_shared(args: argparse.Namespace, path, journal=None) -> None:
    """One sync of the journal at ``path`` with the config's ``share:``
    (none: nothing to do): its entries not yet on the stream are published,
    and it takes in what other responders wrote. An unreachable Redis is a
    one-line warning, not a failure: the journal file holds everything, and
    the next sync of it (a console, note or export) publishes it."""
    from console.incident.share import Share

    target = _share_target(args)
    if target is None:
        return
    opened = journal is None
    journal = _open_journal(path, interactive=False) if opened else journal
    if journal is None:
        return
    share = Share(target, journal.operator)
    try:
        share.sync(journal)
    finally:
        share.close()
        if opened:
            journal.close()
    if not share.state.online:
        print(f"warning: not shared with the other responders: {share.state.error}; kept in {path}, "
              f"published at the next sync", file=sys.stderr)


def _share_target(args: argparse.Namespace):
    """The config's ``share:``; None without one, or without a readable config
    (a note from a shell needs no config)."""
    try:
        return config_module.load(getattr(args, "config", None)).share
    except (Invalid, OSError, ValueError):
        return None


def _why_not_written(exc: BaseException) -> str:
    import errno

    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"disk full ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _export(args: argparse.Namespace) -> int:
    from console.incident.export import journal_json, postmortem_markdown
    from console.sources.base import utcnow

    path = _incident_path(args)
    if path is None:
        return EXIT_USAGE
    if not path.exists():
        print(f"error: {path}: no incident journal here", file=sys.stderr)
        return EXIT_USAGE
    from console.incident.export_file import not_over_a_journal

    refused = not_over_a_journal(args.output, path)
    if refused:
        print(f"error: {args.output}: {refused}; nothing written", file=sys.stderr)
        return EXIT_USAGE
    journal = _open_journal(path, interactive=False)
    if journal is None:
        return EXIT_USAGE
    try:
        _sync_shared(args, path, journal)  # the export holds what every responder wrote
        events = journal.events()
    finally:
        journal.close()
    text = journal_json(events) if args.format == "json" else postmortem_markdown(
        events, utcnow(), playbooks=_known_playbooks(args))
    return _write(text, args.output, "the journal" if args.format == "json" else "the post-mortem")


def _known_playbooks(args: argparse.Namespace) -> dict:
    """The playbooks by id, for the report's unticked follow-ups; none when
    the config or playbooks cannot be read (the report does without)."""
    from console.incident.desk import playbook_dirs
    from console.playbooks import load_playbooks

    try:
        cfg = config_module.load(getattr(args, "config", None))
        return {book.id: book for book in load_playbooks(playbook_dirs(cfg), cfg)[0]}
    except (Invalid, OSError, ValueError):
        return {}


def _incidents(args: argparse.Namespace) -> int:
    """The incident log of the data directory, where journals live."""
    from console import paths
    from console.incident import log
    from console.sources.base import utcnow

    entries = log.incident_log(paths.default_incident().parent, utcnow())
    if args.markdown:
        sys.stdout.write(log.markdown(entries))
    elif entries:
        sys.stdout.write(log.table(entries))
    else:
        print(f"no incident journals in {paths.default_incident().parent}", file=sys.stderr)
    return EXIT_OK


def _console(args: argparse.Namespace) -> int:
    cfg = _load(args)
    journal = _open_journal(_incident_path(args), interactive=sys.stdin.isatty())
    if journal is None:
        return EXIT_USAGE
    _exit_on_hangup()
    from console.app import IncidentConsole

    app = IncidentConsole(cfg, read_only=args.read_only or cfg.environment.read_only,
                          theme_name=args.theme or cfg.chosen_theme, journal=journal)
    try:
        app.run()
    finally:
        _ignore_hangups()
        _leave_journal(journal, app)
    return app.return_code or 0


def _watch(args: argparse.Namespace) -> int:
    """The war-room screen: the shared incident (``share:``) or the journal
    file, followed live; nothing it does writes to the incident."""
    import dataclasses
    import shutil

    from console import themes

    cfg = _load(args)
    theme = getattr(args, "theme", None) or (cfg.chosen_theme if cfg.chosen_theme != themes.DEFAULT else "war-room")
    if cfg.share is not None and getattr(args, "incident", None):
        # A file is followed as it is: a follower merges nothing into it,
        # and publishes nothing of it.
        print(f"warning: the config's share: ({cfg.share.incident}) is not used: --incident follows a file",
              file=sys.stderr)
        cfg = dataclasses.replace(cfg, share=None)
    journal, scratch = _followed_journal(cfg, args)
    if journal is None:
        return EXIT_USAGE
    _exit_on_hangup()
    from console.app import IncidentConsole

    app = IncidentConsole(cfg, read_only=True, theme_name=theme, journal=journal, watching=True)
    try:
        app.run()
    finally:
        _ignore_hangups()
        journal.close()  # nothing is pending: a follower wrote nothing
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return app.return_code or 0


def _followed_journal(cfg: config_module.Config, args: argparse.Namespace):
    """(the journal a follower reads, the scratch directory to remove or None).

    With ``share:`` and no --incident, the shared incident: a private copy
    in a scratch directory that only the share's merges fill (so the
    follower has nothing of its own to publish). Otherwise the journal
    file, read and never written (recovery files are left to a console)."""
    import os
    import tempfile

    from console.incident.session import FollowedJournal

    if cfg.share is not None and not getattr(args, "incident", None):
        scratch = tempfile.mkdtemp(prefix="incident-console-watch-")
        return FollowedJournal(os.path.join(scratch, "shared.json"), merges=True), scratch
    return _open_journal(_incident_path(args), interactive=False, opening=FollowedJournal,
                         advice="A console on it can set it aside."), None


def _leave_journal(journal, app) -> None:
    """Close the journal; say on the terminal where unwritten entries went
    (the app saved them at quit), or save them now if the app did not get
    to (it crashed), or print them if they can be saved nowhere."""
    from console.incident.session import leaving

    journal.close()
    for message in [*getattr(app, "exit_messages", ()), leaving(journal)]:
        if message:
            print(message, file=sys.stderr)


def _exit_on_hangup() -> None:
    """SIGHUP (the SSH session dropped) and SIGTERM end the process through
    SystemExit, so ``finally`` blocks stop what we started."""
    import signal

    def leave(signum, frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, leave)


def _ignore_hangups() -> None:
    """While we clean up after the app: a second hang-up must not cut the
    cleanup short (the app's loop put SIGHUP back to its default on close)."""
    import signal

    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def _demo(args: argparse.Namespace) -> int:
    from console.demo.sandbox import DemoSandbox

    print("starting the demo sandbox (PostgreSQL, Redis, two HTTP services, recorded Kubernetes)…",
          file=sys.stderr)
    _exit_on_hangup()
    sandbox = DemoSandbox()
    try:
        sandbox.start()
        cfg = config_module.load(sandbox.config_path)
        if not getattr(args, "incident", None):
            from console.demo.running import demo_journal

            # Each demo is an incident of its own, apart from the real current one.
            args.incident = str(demo_journal())
        journal = _open_journal(_incident_path(args), interactive=sys.stdin.isatty())
        if journal is None:
            return EXIT_USAGE
        _announce_demo(sandbox, journal.path)
        from console.app import IncidentConsole

        app = IncidentConsole(cfg, read_only=getattr(args, "read_only", False),
                              theme_name=getattr(args, "theme", None) or cfg.chosen_theme,
                              faults=sandbox.faults, journal=journal)
        app.cleanups.append(sandbox.stop)
        try:
            app.run()
        finally:
            _ignore_hangups()
            _leave_journal(journal, app)
            print(f"the demo's journal: {journal.path}\n"
                  f"  incident-console export --incident {_quoted(journal.path)}", file=sys.stderr)
        return app.return_code or 0
    finally:
        import os

        from console.demo.running import withdraw

        withdraw(os.getpid())
        sandbox.stop()


def _announce_demo(sandbox, journal_path) -> None:
    """Say where the demo's servers, config and journal are, and leave a
    pointer (``--demo``) and an environment file for a second terminal."""
    import os

    from console.demo.running import NoRunningDemo, RunningDemo, announce

    for line in sandbox.summary():
        print(line, file=sys.stderr)
    print(f"journal      {journal_path}", file=sys.stderr)
    demo = RunningDemo(os.getpid(), sandbox.config_path, journal_path)
    try:
        env_file = announce(demo)
    except (NoRunningDemo, OSError) as exc:
        print(f"warning: other terminals cannot find this demo with --demo: {exc}", file=sys.stderr)
        return
    print("From another terminal, while the demo runs:\n"
          "  incident-console status --demo        (also check, note TEXT, export)\n"
          f"  source {_quoted(env_file)}   (then status, check, note, export as usual)", file=sys.stderr)


def _quoted(path) -> str:
    import shlex

    return shlex.quote(str(path))
