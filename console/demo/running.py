"""Where the running demo is, for commands run from a second terminal.

``incident-console demo`` writes its config in a temporary directory and its
journal beside the real incidents. While it runs it leaves files in the
user's runtime directory: a pointer ``running-demo-<pid>.json``, which
``status``, ``check``, ``note`` and ``export`` read with ``--demo``, and
``demo.env``, to ``source`` in a shell (``INCIDENT_CONSOLE_CONFIG`` and
``INCIDENT_CONSOLE_INCIDENT``). With several demos running, both name the
most recently started one; when a demo ends its pointer goes and
``demo.env`` names the newest demo left, or goes too.

They are believed only when they are the user's own: the directory is private
(0700, the user's, not a symlink), the pointer is a regular file of the
user's that nobody else can write, its demo still runs, and the config and
journal it names are the user's. Anything else is refused, never followed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from console import paths

POINTER = "running-demo-{pid}.json"
ENV_FILE = "demo.env"
JOURNAL_NAME = "demo-%Y%m%d-%H%M%S.json"  # one journal per demo run, apart from current.json


class NoRunningDemo(Exception):
    """No demo to reach, or one that cannot be trusted; the message says which."""


@dataclass(frozen=True)
class RunningDemo:
    pid: int
    config: Path
    incident: Path


def demo_journal(now: float | None = None) -> Path:
    """A new journal for one demo run, in the data directory's incidents."""
    return paths.data_dir() / "incidents" / time.strftime(JOURNAL_NAME, time.localtime(now))


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR/incident-console``, else a private folder in the
    temporary directory named for the user's id."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isabs(base):
        return Path(base) / paths.APP
    return Path(tempfile.gettempdir()) / f"{paths.APP}-{os.getuid()}"


def announce(demo: RunningDemo) -> Path:
    """Write the pointer and the environment file; returns the environment
    file's path. Raises NoRunningDemo when the runtime directory is not private."""
    where = _private_dir(create=True)
    _replace(where / POINTER.format(pid=demo.pid), json.dumps({
        "pid": demo.pid, "config": str(demo.config), "incident": str(demo.incident), "started": time.time()}) + "\n")
    _write_env(where, demo)
    return where / ENV_FILE


def withdraw(pid: int) -> None:
    """Remove this demo's pointer; ``demo.env`` then names the newest demo
    still running, or goes too."""
    with contextlib.suppress(NoRunningDemo, OSError):
        where = _private_dir(create=False)
        with contextlib.suppress(FileNotFoundError):
            (where / POINTER.format(pid=pid)).unlink()
        try:
            _write_env(where, _newest(where))
        except NoRunningDemo:
            with contextlib.suppress(FileNotFoundError):
                (where / ENV_FILE).unlink()


def find() -> RunningDemo:
    """The running demo (the newest, when several run), or NoRunningDemo
    saying why there is none to use."""
    demo = _newest(_private_dir(create=False))
    _owned(demo.config, "config")
    if demo.incident.exists() or demo.incident.is_symlink():
        _owned(demo.incident, "journal")
    else:
        _owned(demo.incident.parent, "journal's folder", kind=stat.S_ISDIR)
    return demo


def _newest(where: Path) -> RunningDemo:
    running: list[tuple[float, RunningDemo]] = []
    why = "no demo is running (start one with `incident-console demo`)"
    for pointer in sorted(where.glob(POINTER.format(pid="*"))):
        try:
            doc = _read(pointer)
            demo = RunningDemo(int(doc["pid"]), Path(doc["config"]), Path(doc["incident"]))
            started = float(doc.get("started", 0))
        except NoRunningDemo as exc:
            why = str(exc)
            continue
        except (KeyError, TypeError, ValueError):
            why = f"{pointer}: not a demo pointer"
            continue
        if _alive(demo.pid):
            running.append((started, demo))
        else:
            why = f"the demo that wrote {pointer} (pid {demo.pid}) has ended"
    if not running:
        raise NoRunningDemo(why)
    return max(running, key=lambda found: found[0])[1]


def _write_env(where: Path, demo: RunningDemo) -> None:
    _replace(where / ENV_FILE, (
        f"# the incident-console demo running as pid {demo.pid}; removed when the last demo ends\n"
        f"export INCIDENT_CONSOLE_CONFIG={shlex.quote(str(demo.config))}\n"
        f"export INCIDENT_CONSOLE_INCIDENT={shlex.quote(str(demo.incident))}\n"))


# ---- the files are the user's own, or nothing -----------------------------------
def _private_dir(create: bool) -> Path:
    where = runtime_dir()
    if create:
        with contextlib.suppress(FileExistsError):
            where.mkdir(mode=0o700, parents=False)
    try:
        info = os.lstat(where)
    except FileNotFoundError:
        raise NoRunningDemo("no demo is running (start one with `incident-console demo`)") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise NoRunningDemo(f"{where}: not a private folder of yours (mode 0700, yours, not a link); "
                            "not used")
    return where


def _read(pointer: Path) -> dict:
    try:
        fd = os.open(pointer, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise NoRunningDemo(f"{pointer}: {exc.strerror}; not used") from None
    with os.fdopen(fd, encoding="utf-8") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
            raise NoRunningDemo(f"{pointer}: not a file of yours that only you can write; not used")
        try:
            doc = json.loads(f.read(65536))
        except ValueError:
            raise NoRunningDemo(f"{pointer}: not a demo pointer") from None
    if not isinstance(doc, dict):
        raise NoRunningDemo(f"{pointer}: not a demo pointer")
    return doc


def _owned(path: Path, what: str, kind=stat.S_ISREG) -> None:
    try:
        info = os.lstat(path)
    except OSError:
        raise NoRunningDemo(f"the running demo's {what} {path} is gone") from None
    if not kind(info.st_mode) or info.st_uid != os.getuid():
        raise NoRunningDemo(f"{path}: the running demo's {what} is not yours (or is a link); not used")
    _safe_folders(path, what)


def _safe_folders(path: Path, what: str) -> None:
    """Every folder above ``path`` is root's or yours, and nobody else can
    rename in it: otherwise another user could swap the file between this
    check and its use (a world-writable folder without the sticky bit)."""
    for folder in path.absolute().parents:
        try:
            info = os.stat(folder)
        except OSError:
            raise NoRunningDemo(f"{folder}: cannot be checked; the running demo's {what} is not used") from None
        if info.st_uid not in (0, os.getuid()):
            raise NoRunningDemo(f"{folder}: belongs to another user; the running demo's {what} is not used")
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            raise NoRunningDemo(f"{folder}: others may rename files in it; the running demo's {what} "
                                "is not used")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process took the number
        return False
    return True


def _replace(path: Path, text: str) -> None:
    """Written whole, 0600, then renamed over the old one: a reader never
    sees half a file, and an existing link is replaced, not followed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
