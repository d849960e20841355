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
from console.located import Invalid

EXIT_OK, EXIT_UNHEALTHY, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="config file (default: $INCIDENT_CONSOLE_CONFIG, then the XDG config dir)")
    parser = argparse.ArgumentParser(
        prog="incident-console", parents=[common],
        description="A full-screen console for the person running a production incident.")
    parser.add_argument("--incident", metavar="FILE", help="incident journal file")
    parser.add_argument("--read-only", action="store_true", help="refuse every action that changes a system")
    parser.add_argument("--theme", metavar="NAME", help="colour theme")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="the console against a local sandbox it starts itself")
    demo.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS)
    demo.add_argument("--theme", metavar="NAME", default=argparse.SUPPRESS)
    status = sub.add_parser("status", parents=[common], help="one poll of every source, as a table or JSON")
    status.add_argument("--json", action="store_true", help="print one JSON object (a contract)")
    sub.add_parser("check", parents=[common], help="validate the config and every playbook")
    incident = argparse.ArgumentParser(add_help=False)
    incident.add_argument("--incident", metavar="FILE", default=argparse.SUPPRESS,
                          help="incident journal (default: the XDG data dir's current incident)")
    note = sub.add_parser("note", parents=[incident], help="append a timeline entry from a shell")
    note.add_argument("text", nargs="+", help="the note; #decision #finding #action #root-cause tag it")
    export = sub.add_parser("export", parents=[incident], help="the post-mortem (markdown) or raw journal (json)")
    export.add_argument("--format", choices=("markdown", "json"), default="markdown")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    runbook = sub.add_parser("import-runbook", help="turn a markdown runbook into playbooks (YAML)")
    runbook.add_argument("file", metavar="FILE.md")
    runbook.add_argument("-o", "--output", metavar="FILE.yaml", help="write here instead of standard output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "console"
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
    from console.playbook_desk import playbook_dirs
    from console.playbooks import check, load_playbooks

    try:
        cfg = _load(args)
    except Invalid as exc:
        print(exc)
        return EXIT_USAGE
    count = len(cfg.postgres) + len(cfg.redis) + len(cfg.services) + (1 if cfg.prometheus else 0) + (
        len(cfg.kubernetes.namespaces) if cfg.kubernetes else 0)
    print(f"{cfg.path}: ok ({count} sources)")
    dirs = playbook_dirs(cfg)
    problems = check(dirs, cfg)
    for problem in problems:
        print(problem)
    if problems:
        return EXIT_USAGE
    playbooks, _ = load_playbooks(dirs, cfg)
    print(f"{len(playbooks)} playbooks: ok ({', '.join(str(d) for d in dirs)})")
    return EXIT_OK


def _import_runbook(args: argparse.Namespace) -> int:
    from console.playbooks import import_runbook, to_yaml
    from console.playbooks.importer import RunbookError

    try:
        docs = import_runbook(args.file)
    except RunbookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _write(to_yaml(docs), args.output, f"{len(docs)} playbooks")


def _write(text: str, output: str | None, what: str) -> int:
    """``text`` to the file ``output`` names, else to standard output."""
    if not output:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        with open(output, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        print(f"error: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {what} to {output}", file=sys.stderr)
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from console.sources import State, build_sources, close_all, overall, poll_once
    from console.sources.base import utcnow

    cfg = _load(args)
    sources = build_sources(cfg)

    async def once():
        try:
            return await poll_once(sources, cfg.thresholds)
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
    from pathlib import Path

    from console import paths

    given = getattr(args, "incident", None)
    path = Path(given) if given else paths.default_incident()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _open_journal(path, interactive: bool):
    """The journal at ``path``. An unreadable file is never overwritten: it is
    set aside (renamed) only when the operator says so."""
    from console.incident.journal import Journal, JournalUnreadable, set_aside

    try:
        return Journal(path)
    except JournalUnreadable as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("The file was not changed.", file=sys.stderr)
        if not interactive:
            print("Pass --incident NEWFILE to start a new journal elsewhere.", file=sys.stderr)
            return None
        answer = input("Set it aside and start a new journal here? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            return None
        moved = set_aside(path)
        print(f"kept the unreadable file as {moved}", file=sys.stderr)
        return Journal(path)


def _note(args: argparse.Namespace) -> int:
    journal = _open_journal(_incident_path(args), interactive=False)
    if journal is None:
        return EXIT_USAGE
    try:
        event = journal.note(" ".join(args.text))
        if journal.pending:
            print(f"error: {journal.write_error}", file=sys.stderr)
            return EXIT_UNHEALTHY
        print(f"noted at {event.at:%H:%M:%S} UTC in {journal.path}")
        return EXIT_OK
    finally:
        journal.close()


def _export(args: argparse.Namespace) -> int:
    from console.incident.export import journal_json, postmortem_markdown
    from console.sources.base import utcnow

    path = _incident_path(args)
    if not path.exists():
        print(f"error: {path}: no incident journal here", file=sys.stderr)
        return EXIT_USAGE
    journal = _open_journal(path, interactive=False)
    if journal is None:
        return EXIT_USAGE
    try:
        events = journal.events()
    finally:
        journal.close()
    text = journal_json(events) if args.format == "json" else postmortem_markdown(events, utcnow())
    return _write(text, args.output, "the journal" if args.format == "json" else "the post-mortem")


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
        journal.close()
    return app.return_code or 0


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
            import time

            from console import paths
            # Each demo is an incident of its own, apart from the real current one.
            args.incident = str(paths.data_dir() / "incidents" / time.strftime("demo-%Y%m%d-%H%M%S.json"))
        journal = _open_journal(_incident_path(args), interactive=sys.stdin.isatty())
        if journal is None:
            return EXIT_USAGE
        from console.app import IncidentConsole

        app = IncidentConsole(cfg, read_only=getattr(args, "read_only", False),
                              theme_name=getattr(args, "theme", None) or cfg.chosen_theme,
                              faults=sandbox.faults, journal=journal)
        app.cleanups.append(sandbox.stop)
        try:
            app.run()
        finally:
            _ignore_hangups()
            journal.close()
            print(f"the demo's journal: {journal.path}\n"
                  f"  incident-console export --incident {journal.path}", file=sys.stderr)
        return app.return_code or 0
    finally:
        sandbox.stop()
