"""Entries a process could not write to its journal, kept until they are.

When the console quits, or ``note`` gives up, with entries the disk refused
(full, read-only, gone), they go to a recovery file: beside the journal when
its directory takes it, else in the XDG data dir, which is often on another
filesystem than a full one. The name is shown to the operator. The next
:class:`~console.incident.journal.Journal` opened on that journal merges the
entries back by event id (merging twice adds nothing) and removes the file
once they are on disk.

A recovery file is JSON lines: a header naming the journal, then one event
document per line, so a half-written one still gives up every whole line.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

MARK = ".unwritten-"
SUFFIX = ".jsonl"
FORMAT = "incident-console unwritten entries"


def places(journal: Path) -> list[tuple[Path, str]]:
    """Where recovery files for ``journal`` go, in order: (directory,
    file-name prefix). The data dir holds files for many journals, told
    apart by a hash of the journal's path."""
    from console import paths

    tag = hashlib.sha256(str(journal).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return [(journal.parent, f"{journal.name}{MARK}"),
            (paths.data_dir() / "unwritten", f"{tag}-{journal.name}{MARK}")]


def save(journal: Path, docs: list[dict[str, Any]]) -> Path:
    """Write ``docs`` to a new recovery file for ``journal``, durably;
    returns its path. OSError names every place tried and why it failed."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    header = {"format": FORMAT, "journal": str(journal), "saved_at": stamp, "entries": len(docs)}
    body = b"".join(json.dumps(doc, ensure_ascii=True, allow_nan=False).encode("ascii") + b"\n"
                    for doc in [header, *docs])
    failures = []
    for directory, prefix in places(journal):
        target = directory / f"{prefix}{stamp}-{os.getpid()}-{secrets.token_hex(3)}{SUFFIX}"
        try:
            _write_new(target, body)
        except OSError as exc:
            failures.append(f"{directory}: {exc.strerror or exc}")
            continue
        return target
    raise OSError("no recovery file could be written (" + "; ".join(failures) + ")")


def _write_new(target: Path, body: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(target)
        except OSError:
            pass
        raise
    os.close(fd)
    dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def find(journal: Path) -> list[Path]:
    """The recovery files waiting for ``journal``, oldest first."""
    found = []
    for directory, prefix in places(journal):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name.startswith(prefix) and name.endswith(SUFFIX) and _for(directory / name, journal):
                found.append(directory / name)
    return sorted(found, key=lambda p: p.name[p.name.index(MARK):])


def _for(path: Path, journal: Path) -> bool:
    try:
        with open(path, "rb") as f:
            header = json.loads(f.readline(65536))
    except (OSError, ValueError):
        return False
    return isinstance(header, dict) and header.get("format") == FORMAT and header.get("journal") == str(journal)


def load(path: Path) -> list[dict[str, Any]]:
    """The event documents in a recovery file; lines that are not (a
    process killed mid-write) are skipped."""
    docs = []
    try:
        lines = path.read_bytes().split(b"\n")[1:]
    except OSError:
        return docs
    for line in lines:
        try:
            doc = json.loads(line, parse_constant=_refuse)
        except (ValueError, RecursionError):
            continue
        if isinstance(doc, dict):
            docs.append(doc)
    return docs


def _refuse(name: str) -> Any:
    raise ValueError(name)


def remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
