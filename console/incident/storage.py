"""A TinyDB storage that a kill -9, a full disk or a second writer cannot break.

TinyDB's stock JSON storage rewrites its file in place: a kill in the middle
leaves half a file. Here every write goes to a temporary file in the same
directory, which is fsynced, renamed over the old one, and the directory
fsynced: the file on disk is always either the old or the new version.

Writers in several processes (two consoles, ``incident-console note``) are
serialised with ``flock`` on a sibling ``<file>.lock``. A write refuses to
replace a file that changed since it was read, so nobody's entries are lost:
read, change and write under :meth:`JournalStorage.locked`.

Rewriting the whole file per append must stay cheap at 10,000 entries. The
file holds one document per line (still plain TinyDB JSON), and the bytes of
every line are kept: a write serialises only new or changed documents and
hands the kernel the unchanged lines as they are; a read after another
process appended parses only the lines it has not seen; a read when the
file's identity (device, inode, size, mtime) did not change costs one stat.
:meth:`JournalStorage.append` is the journal's path: no comparison of the
documents already stored at all.

A file that cannot be read is never overwritten: :class:`JournalUnreadable`
names it (and the line, where JSON says), and :func:`set_aside` moves it out
of the way so that a new one can be started. A file in this layout whose
structure holds but some lines do not (another program wrote them, a writer
was killed mid-line) is read line by line: each line that is not a document
becomes a marker document (:data:`UNREADABLE`), and its bytes are written
back as they were, so nothing another writer put there is destroyed.

The path is resolved (a symlink is written through to its target, the lock
and temporaries sit beside the target), and anything but a regular file is
refused (:class:`JournalPathRefused`) before it is opened: a FIFO would hang,
a device node would be replaced by a regular file.

:meth:`JournalStorage.append_in_place` adds one document without reading the
file: the closing braces at the end are overwritten by the new line and
written again after it, so one ``note`` costs the same on a 250 MB journal
as on an empty one.
"""

from __future__ import annotations

import errno
import fcntl
import json
import operator
import os
import secrets
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

from tinydb.storages import Storage

Tables = dict[str, dict[str, Any]]
Identity = tuple[int, int, int, int]

# writev takes at most IOV_MAX (1024 on Linux) buffers; the unchanged body is
# kept as a list of chunks, joined into one when it grows past this.
MAX_CHUNKS = 256
# A line longer than this is not parsed (an entry this process writes is a
# few KB): it is an unreadable entry, not a gigabyte of Python objects.
MAX_LINE = 8 * 1024 * 1024
# The key of a marker document standing for a line that could not be read;
# its value says why.
UNREADABLE = "\u0000unreadable"
# How far from the end append_in_place looks for the last line's key.
TAIL_WINDOW = 64 * 1024
TRAILER = b"\n}\n}\n"


class JournalUnreadable(Exception):
    """The journal file exists but is not a journal that can be read."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.message = message
        self.line = line
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


class JournalChanged(Exception):
    """Another process replaced the file after it was last read here."""


class JournalPathRefused(OSError):
    """The path names something that is not, and cannot become, a regular
    journal file (a directory, FIFO, socket, device, or a path under a file).
    An OSError: where the disk refusing is handled, this is handled too."""

    def __init__(self, path: str | os.PathLike, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.message = message


class NotAppendable(Exception):
    """The file does not end the way append_in_place needs: use the full way."""


_FILE_TYPES = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"))


def _not_regular(mode: int) -> str | None:
    for test, name in _FILE_TYPES:
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def journal_path(path: str | os.PathLike) -> Path:
    """``path`` resolved through symlinks (a dangling one names the file to
    create), checked to be a regular file or nothing yet, under a directory.
    Raises :class:`JournalPathRefused` saying what it is instead."""
    resolved = Path(os.path.realpath(path))
    try:
        st = os.stat(resolved)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise JournalPathRefused(path, _under_a_file(resolved)) from None
    except OSError as exc:  # ELOOP, EACCES, ENAMETOOLONG
        raise JournalPathRefused(path, f"cannot be used: {exc.strerror or exc}") from None
    if st is not None:
        kind = _not_regular(st.st_mode)
        if kind is not None:
            raise JournalPathRefused(path, f"is {kind}, not a journal file; pass --incident with a regular file")
        return resolved
    for parent in resolved.parents:
        try:
            st = os.stat(parent)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            break
        if not stat.S_ISDIR(st.st_mode):
            raise JournalPathRefused(path, _under_a_file(resolved))
        break
    return resolved


def _under_a_file(path: Path) -> str:
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file, not a directory, so no journal can be under it"
    return "a part of the path is not a directory"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _loads(text: str | bytes) -> Any:
    """Strict JSON: NaN and Infinity are refused (they could not be written
    back), and nesting too deep for the parser is a ValueError."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _dumps(value: Any) -> bytes:
    # ASCII escapes keep lone surrogates and odd code points writable, and
    # make every control character inert in the file itself.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")


class _Doc(dict):
    """A stored document that tells its storage when it is changed in place
    (TinyDB's ``update`` does that), so unchanged ones keep their text."""

    __slots__ = ("_changes", "_dirty")

    def __init__(self, data: Any, changes: list[int]) -> None:
        dict.__init__(self, data)
        self._changes = changes
        self._dirty = False


def _marking(name: str) -> Any:
    method = getattr(dict, name)

    def mutate(self: _Doc, *args: Any, **kwargs: Any) -> Any:
        self._dirty = True
        self._changes[0] += 1
        return method(self, *args, **kwargs)

    mutate.__name__ = name
    return mutate


for _name in ("__setitem__", "__delitem__", "__ior__", "update", "pop", "popitem", "clear", "setdefault"):
    setattr(_Doc, _name, _marking(_name))


@dataclass
class _Table:
    """One table as it is on disk: its documents, the line of each, and the
    lines joined (in chunks), ready to be written again as they are."""

    docs: dict[str, _Doc]
    lines: dict[str, bytes]
    keys: list[str]
    values: list[_Doc]
    chunks: list[bytes]

    @classmethod
    def of(cls, docs: dict[str, _Doc], lines: dict[str, bytes]) -> "_Table":
        body = b",\n".join(lines.values())
        return cls(docs, lines, list(docs), list(docs.values()), [body] if body else [])

    def extended(self, lines: list[bytes]) -> list[bytes]:
        """The chunks of this table with ``lines`` added at the end."""
        added = b",\n".join(lines)
        chunks = self.chunks + [b",\n" + added if self.chunks else added]
        return [b"".join(chunks)] if len(chunks) > MAX_CHUNKS else chunks

    def extend(self, keys: list[str], docs: list[_Doc], lines: list[bytes], chunks: list[bytes]) -> None:
        self.docs.update(zip(keys, docs))
        self.lines.update(zip(keys, lines))
        self.keys += keys
        self.values += docs
        self.chunks = chunks


class JournalStorage(Storage):
    """Crash-safe, multi-process TinyDB storage (see the module docstring).

    Documents may be replaced or updated at their top level (as TinyDB does);
    values nested inside a stored document must not be changed in place, or
    the document's kept text would go stale.
    """

    def __init__(self, path: str | os.PathLike, create_dirs: bool = True) -> None:
        super().__init__()
        # Written through a symlink to its target: renaming a temporary over
        # the link itself would split one incident into two files.
        self.path = journal_path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._create_dirs = create_dirs
        self._tmp_prefix = f".{self.path.name}."
        # What is on disk as far as this process knows, and the identity of
        # the file that holds it.
        self._tables: dict[str, _Table] | None = None
        self._loaded = False
        self._identity: Identity | None = None
        # Counts in-place changes of stored documents; equal to _seen while
        # none happened since the tables last matched the disk.
        self._changes = [0]
        self._seen = 0
        # (identity, problem) of a file found unreadable, not read again
        # until its identity changes.
        self._unreadable: tuple[Identity | None, JournalUnreadable] | None = None
        self._lock_fd: int | None = None
        self._lock_depth = 0
        self._thread_lock = threading.RLock()
        self._swept = False

    # -- reading -----------------------------------------------------------

    def changed_on_disk(self) -> bool:
        """Whether the file differs from what this storage last read or wrote."""
        return not self._loaded or self._stat_identity() != self._identity

    def read(self) -> Tables | None:
        with self._thread_lock:
            if self.changed_on_disk():
                identity = self._stat_identity()
                if self._unreadable is not None and self._unreadable[0] == identity:
                    # Parsed and refused already: a console polling every half
                    # second must not parse a broken 3 MB file each time.
                    raise self._unreadable[1]
                try:
                    self._load()
                except JournalUnreadable as exc:
                    self._unreadable = (identity, exc)
                    raise
                self._unreadable = None
            if self._tables is None:
                return None
            # New dicts for TinyDB to rearrange; the documents are the stored
            # ones, which mark themselves when TinyDB changes them.
            return {name: dict(table.docs) for name, table in self._tables.items()}

    def _stat_identity(self) -> Identity | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self) -> None:
        if self._changes[0] != self._seen:
            self._forget()  # stored documents were changed but never written
        fd = self._open(os.O_RDONLY)
        if fd is None:
            self._settle(None, None)
            return
        try:
            # The identity of the inode whose bytes are read: files are
            # replaced, or appended to under the lock (read here under a
            # shared lock), so the two stay true together.
            st = os.fstat(fd)
            with self._shared():
                raw = _read_all(fd, st.st_size)
                st = os.fstat(fd)
        finally:
            os.close(fd)
        identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if raw.isspace() or not raw:  # isspace stops at the first "{"
            # An empty file (``touch``) is a new journal.
            self._settle(None, identity)
            return
        # The quick ways check UTF-8 where they parse: only new lines.
        tables = self._parse_appended(raw)
        if tables is None:
            tables = self._parse_lines(raw)
        if tables is None and _our_layout(raw):
            # Damaged lines in this layout: each one an unreadable entry
            # (not a whole parse of what may be a gigabyte on one line).
            tables = self._parse_lines(raw, tolerant=True)
        if tables is None:
            tables = self._parse_whole(raw)
        self._settle(tables, identity)

    def _open(self, flags: int) -> int | None:
        """The journal file opened with ``flags``, None if there is none.
        Never blocks (a FIFO), never opens what is not a regular file."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            raise JournalPathRefused(self.path, _under_a_file(self.path)) from None
        kind = _not_regular(st.st_mode)
        if kind is None:
            try:
                fd = os.open(self.path, flags | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
            # Checked again on what was opened: it may have been swapped.
            kind = _not_regular(os.fstat(fd).st_mode)
            if kind is None:
                return fd
            os.close(fd)
        raise JournalPathRefused(self.path, f"is {kind}, not a journal file")

    @contextmanager
    def _shared(self) -> Iterator[None]:
        """A shared lock while reading, so that an append in place is never
        seen half done; none needed when this storage holds the lock."""
        if self._lock_depth or self._lock_fd is None and not self._lock_file():
            yield
            return
        fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
        try:
            yield
        finally:
            if not self._lock_depth:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _lock_file(self) -> bool:
        try:
            self._lock_fd = os.open(self.lock_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError:
            return False  # a read-only directory without a lock file: nobody writes there
        return True

    def _settle(self, tables: dict[str, _Table] | None, identity: Identity | None) -> None:
        self._tables, self._identity, self._loaded = tables, identity, True
        self._seen = self._changes[0]

    def refuse(self, problem: JournalUnreadable) -> None:
        """The file as it is now is unreadable for a reason found above this
        storage (an entry of the wrong shape): forget it, and raise
        ``problem`` from :meth:`read` until the file changes."""
        with self._thread_lock:
            self._forget()
            self._unreadable = (self._stat_identity(), problem)

    def _forget(self) -> None:
        self._tables, self._identity, self._loaded = None, None, False
        self._seen = self._changes[0]

    def _parse_appended(self, raw: bytes) -> dict[str, _Table] | None:
        """Another writer appended to the last table (what journals do): the
        file is what is known here plus new lines before the closing braces.
        Compared in place, parsed only where new; None if it is otherwise."""
        if not self._tables:
            return None
        name, table = list(self._tables.items())[-1]
        if not table.chunks:
            return None
        # Everything up to the end of the last table's last line, then the
        # closing of that table and of the file.
        known = _payload({n: t.chunks for n, t in self._tables.items()})[:-2]
        trailer = b"\n}\n}\n"
        offset = 0
        for part in known:
            if not raw.startswith(part, offset):
                return None
            offset += len(part)
        if not raw.endswith(trailer) or len(raw) < offset + len(trailer):
            return None
        added = raw[offset:len(raw) - len(trailer)]
        if not added:
            return self._tables
        if not added.startswith(b",\n"):
            return None
        new = self._parse_members(name, added[2:].split(b"\n"))
        if new is None or any(key in table.docs for key in new.keys):
            return None
        chunks = table.chunks + [added]
        table.extend(new.keys, new.values, list(new.lines.values()),
                     [b"".join(chunks)] if len(chunks) > MAX_CHUNKS else chunks)
        return self._tables

    def _parse_lines(self, raw: bytes, tolerant: bool = False) -> dict[str, _Table] | None:
        """Parse the one-document-per-line layout this storage writes,
        reusing documents whose line did not change; None if the file is
        laid out differently (then it is parsed whole). ``tolerant``: a line
        that is not a document becomes a marker, and a file cut short (a
        writer killed mid-line) is read as far as it goes."""
        lines = raw.split(b"\n")
        if tolerant:
            return self._parse_damaged(lines)
        if len(lines) < 3 or lines[0] != b"{" or lines[-1] != b"" or lines[-2] != b"}":
            return None
        body = lines[1:-2]
        tables: dict[str, _Table] = {}
        i = 0
        while i < len(body):
            head = _split_key(body[i])
            if head is None:
                return None
            name, rest = head
            if rest in (b"{}", b"{},"):
                closing, members = rest[2:], []
                i += 1
            elif rest == b"{":
                start = i = i + 1
                while i < len(body) and body[i] not in (b"}", b"},"):
                    i += 1
                if i == len(body):
                    return None
                closing, members = body[i][1:], body[start:i]
                i += 1
            else:
                return None
            # Valid JSON only: a comma after every table but the last.
            if (closing == b",") != (i < len(body)):
                return None
            table = self._parse_members(name, members)
            if table is None:
                return None
            tables[name] = table
        return tables

    def _parse_damaged(self, lines: list[bytes]) -> dict[str, _Table] | None:
        """The tolerant way of :meth:`_parse_lines`: the structure (``{``,
        table heads, closing braces) must be there, or be missing at the
        end; member lines may be anything."""
        if lines and lines[-1] == b"":
            lines = lines[:-1]
        if not lines or lines[0] != b"{":
            return None
        members: dict[str, list[bytes]] = {}
        i, end = 1, len(lines)
        while i < end and lines[i] != b"}":
            head = _split_key(lines[i])
            if head is None or head[0] in members:
                return None
            name, rest = head
            i += 1
            if rest in (b"{}", b"{},"):
                members[name] = []
                continue
            if rest != b"{":
                return None
            start = i
            while i < end and lines[i] not in (b"}", b"},"):
                i += 1
            members[name] = lines[start:i]
            i += 1
        if not members:
            return None
        # Lines after the end (``echo ... >> journal``) are not dropped:
        # they join the last table, to be seen and written back.
        members[name] = members[name] + [line for line in lines[i + 1:] if line]
        return {name: self._parse_members(name, lines, tolerant=True) for name, lines in members.items()}

    def _parse_members(self, name: str, members: list[bytes], tolerant: bool = False) -> _Table | None:
        known = self._tables.get(name) if self._tables else None
        docs: dict[str, _Doc] = {}
        lines: dict[str, bytes] = {}
        last = len(members) - 1
        for index, line in enumerate(members):
            # Valid JSON only: a comma after every document but the last.
            if line.endswith(b",") != (index < last) and not tolerant:
                return None
            if line.endswith(b","):
                line = line[:-1]
            item = _split_key(line) if len(line) <= MAX_LINE else None
            key = item[0] if item is not None else None
            if key is not None and known is not None and known.lines.get(key) == line:
                docs[key] = known.docs[key]
                lines[key] = line
                continue
            problem = _document(item[1]) if item is not None else _no_key(line)
            if isinstance(problem, str):
                if not tolerant:
                    return None
                # Kept under a key no document can have, its bytes as they were.
                if key is None or key in docs:
                    key = f"\u0000{index}:{secrets.token_hex(4)}"
                docs[key] = _Doc({UNREADABLE: problem}, self._changes)
            else:
                if key in docs:
                    if not tolerant:
                        return None
                    key = f"\u0000{index}:{secrets.token_hex(4)}"
                docs[key] = _Doc(problem, self._changes)
            lines[key] = line
        return _Table.of(docs, lines)

    def _parse_whole(self, raw: bytes) -> dict[str, _Table]:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise JournalUnreadable(self.path, f"not UTF-8 text (byte {exc.start})", line) from None
        try:
            data = _loads(raw)
        except json.JSONDecodeError as exc:
            raise JournalUnreadable(self.path, f"invalid JSON: {exc.msg} (column {exc.colno})",
                                    exc.lineno) from None
        except ValueError as exc:
            raise JournalUnreadable(self.path, f"invalid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise JournalUnreadable(self.path, f"not a TinyDB file: the top level is a JSON {_kind(data)}")
        tables = {}
        for name, docs in data.items():
            if not isinstance(docs, dict):
                raise JournalUnreadable(self.path, f"not a TinyDB file: table {name!r} is a JSON {_kind(docs)}")
            for key, doc in docs.items():
                if not isinstance(doc, dict):
                    raise JournalUnreadable(
                        self.path, f"not a TinyDB file: document {key!r} of table {name!r} is a JSON {_kind(doc)}")
            own = {key: _Doc(doc, self._changes) for key, doc in docs.items()}
            tables[name] = _Table.of(own, {key: _line(key, doc) for key, doc in own.items()})
        return tables

    # -- writing -----------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the writers' lock: read, change and write as one step.

        Re-entrant within this storage; serialises the threads of this
        process as well as other processes."""
        with self._thread_lock:
            if self._lock_depth == 0:
                self._acquire()
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _acquire(self) -> None:
        if self._create_dirs:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            if self._lock_fd is None:
                # Read-only is enough for flock, and lets a responder lock a
                # lock file that another user created.
                self._lock_fd = os.open(self.lock_path, os.O_RDONLY | os.O_CREAT, 0o666)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            # A lock on a lock file that was removed since (its directory
            # deleted and made again) excludes nobody: take the new one.
            try:
                current = os.stat(self.lock_path)
            except FileNotFoundError:
                current = None
            held = os.fstat(self._lock_fd)
            if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
                return
            os.close(self._lock_fd)
            self._lock_fd = None

    def append(self, name: str, docs: Mapping[str, Mapping[str, Any]]) -> None:
        """Add ``docs`` (key -> document) at the end of table ``name``.

        Call it under :meth:`locked`, after :meth:`read`: it raises
        :class:`JournalChanged` if the file changed since, and ValueError if
        a key is already taken. Costs the new documents, not the old ones."""
        with self.locked():
            self._check_unchanged()
            if self._changes[0] != self._seen:
                # In-place changes to write as well: take the general way.
                tables = self.read() or {}
                merged = tables.setdefault(name, {})
                for key in docs:
                    if key in merged:
                        raise ValueError(f"document {key} already exists")
                merged.update(docs)
                self.write(tables)
                return
            tables = self._tables if self._tables is not None else {}
            table = tables.get(name) or _Table({}, {}, [], [], [])
            keys = [str(key) for key in docs]
            for key in keys:
                if key in table.docs:
                    raise ValueError(f"document {key} already exists")
            own = [self._own(doc) for doc in docs.values()]
            lines = [_line(key, doc) for key, doc in zip(keys, own)]
            chunks = table.extended(lines)
            identity = self._replace(_payload({**{n: t.chunks for n, t in tables.items()}, name: chunks}))
            table.extend(keys, own, lines, chunks)
            if self._tables is None:
                self._tables = {}
            self._tables[name] = table
            self._settle(self._tables, identity)

    def append_in_place(self, name: str, doc: Mapping[str, Any]) -> str:
        """Add ``doc`` at the end of table ``name`` without reading the file;
        returns its key. Costs the same at any file size: the tail is read
        (to find the last key) and the new line written over the closing
        braces, which follow it again. A full disk leaves the file as it was.

        Raises :class:`NotAppendable` when the file is missing, or does not
        end with a complete entry of ``name`` and the closing braces (then
        use :meth:`read` and :meth:`append`)."""
        with self.locked():
            fd = self._open(os.O_RDWR)
            if fd is None:
                raise NotAppendable("no file yet")
            try:
                size = os.fstat(fd).st_size
                key = self._next_key(fd, name, size)
                self._write_over_trailer(fd, [_line(key, doc)], size)
            finally:
                os.close(fd)
            return key

    def _write_over_trailer(self, fd: int, lines: list[bytes], size: int) -> os.stat_result:
        """``lines`` written over the closing braces at the end of the
        ``size`` bytes of ``fd``, which follow them again, durably; a full
        disk leaves the file as it was. Returns the file's new stat."""
        added = b",\n" + b",\n".join(lines) + TRAILER
        offset = size - len(TRAILER)
        try:
            if os.pwrite(fd, added, offset) < len(added):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
            os.fsync(fd)
        except OSError:
            # Within blocks the file already has: nothing to allocate.
            try:
                os.pwrite(fd, TRAILER, offset)
                os.ftruncate(fd, size)
                os.fsync(fd)
            except OSError:
                pass
            raise
        return os.fstat(fd)

    def _next_key(self, fd: int, name: str, size: int) -> str:
        """The key after the last one, read from the file's tail; the head
        is read to check that the file holds ``name`` alone."""
        head = os.pread(fd, 4096, 0)
        if not head.startswith(b"{\n" + _dumps(name) + b":{\n"):
            raise NotAppendable("the file does not start with the table")
        window = min(size, TAIL_WINDOW)
        tail = os.pread(fd, window, size - window)
        if len(tail) != window or not tail.endswith(TRAILER):
            raise NotAppendable("the file does not end with the closing braces")
        body = tail[:-len(TRAILER)]
        start = body.rfind(b"\n")
        if start < 0:
            raise NotAppendable("the last line is longer than the window")
        item = _split_key(body[start + 1:])
        if item is None or not item[0].isdigit():
            raise NotAppendable("the last line is not a numbered entry")
        last = _document(item[1])
        if not isinstance(last, dict) or "id" not in last or "kind" not in last:
            raise NotAppendable("the last line is not a journal entry")
        return str(int(item[0]) + 1)

    def line_numbers(self, name: str, keys: set[str]) -> dict[str, int]:
        """The line of the file each of ``keys`` of table ``name`` is on, as
        last read (for messages: another writer may have moved it since)."""
        found: dict[str, int] = {}
        line = 2  # "{", then the first table's head
        for table_name, table in (self._tables or {}).items():
            if table_name == name:
                for index, key in enumerate(table.keys):
                    if key in keys:
                        found[key] = line + 1 + index
                return found
            line += len(table.keys) + 2 if table.keys else 1
        return found

    def write(self, data: Tables) -> None:
        with self.locked():
            self._check_unchanged()
            changed_in_place = self._changes[0] != self._seen
            try:
                tables = {name: self._table(name, docs, changed_in_place) for name, docs in data.items()}
                identity = self._replace(_payload({name: table.chunks for name, table in tables.items()}))
            except BaseException:
                if changed_in_place:
                    self._forget()  # the stored documents no longer match the disk
                raise
            if changed_in_place:
                for table in tables.values():
                    for doc in table.values:
                        doc._dirty = False
            self._settle(tables, identity)

    def _check_unchanged(self) -> None:
        if self.changed_on_disk():
            # Writing now would erase what another process added.
            raise JournalChanged(f"{self.path} changed since it was read; read it again")

    def _table(self, name: str, docs: dict[str, Any], changed_in_place: bool) -> _Table:
        old = self._tables.get(name) if self._tables else None
        if old is not None and not changed_in_place:
            appended = self._appended(old, docs)
            if appended is not None:
                return appended
        out_docs: dict[str, _Doc] = {}
        out_lines: dict[str, bytes] = {}
        for key, doc in docs.items():
            key = str(key)
            if old is not None and old.docs.get(key) is doc and not doc._dirty:
                out_docs[key], out_lines[key] = doc, old.lines[key]
            else:
                own = self._own(doc)
                out_docs[key], out_lines[key] = own, _line(key, own)
        return _Table.of(out_docs, out_lines)

    def _appended(self, old: _Table, docs: dict[str, Any]) -> _Table | None:
        """TinyDB's insert: ``docs`` is ``old`` with documents added at the end."""
        n = len(old.keys)
        keys = list(docs)
        if len(keys) < n or keys[:n] != old.keys:
            return None
        values = list(docs.values())
        if not all(map(operator.is_, values, old.values)):
            return None
        new_keys = [str(key) for key in keys[n:]]
        new_docs = [self._own(doc) for doc in values[n:]]
        new_lines = [_line(key, doc) for key, doc in zip(new_keys, new_docs)]
        if not new_keys:
            return old
        table = _Table(dict(old.docs), dict(old.lines), list(old.keys), list(old.values), [])
        table.extend(new_keys, new_docs, new_lines, old.extended(new_lines))
        return table

    def _own(self, doc: Any) -> _Doc:
        if isinstance(doc, _Doc) and doc._changes is self._changes:
            return doc
        return _Doc(doc, self._changes)

    def _replace(self, payload: list[bytes]) -> Identity:
        """Make ``payload`` the file, durably; returns the file's identity."""
        self._sweep_temporaries()
        directory = self.path.parent
        tmp = directory / f"{self._tmp_prefix}{secrets.token_hex(6)}.tmp"
        # O_EXCL + 0o666: the umask decides a new journal's mode, not
        # mkstemp's 0600, so another responder's console can read it.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            try:
                os.fchmod(fd, os.stat(self.path).st_mode & 0o7777)
            except FileNotFoundError:
                pass
            _write_all(fd, payload)
            os.fsync(fd)
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp)
            raise
        os.close(fd)
        try:
            try:
                kind = _not_regular(os.lstat(self.path).st_mode)
            except FileNotFoundError:
                kind = None
            if kind is not None:
                # Made a FIFO or a device since it was opened: never replaced.
                raise JournalPathRefused(self.path, f"is {kind}, not a journal file")
            os.replace(tmp, self.path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        _fsync_directory(directory)
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _sweep_temporaries(self) -> None:
        """Remove temporaries a killed writer left; safe under the lock,
        because only the lock holder writes one."""
        if self._swept:
            return
        self._swept = True
        try:
            names = os.listdir(self.path.parent)
        except OSError:
            return
        for name in names:
            if name.startswith(self._tmp_prefix) and name.endswith(".tmp"):
                _unlink_quietly(self.path.parent / name)

    def close(self) -> None:
        with self._thread_lock:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def set_aside(path: str | os.PathLike, now: datetime | None = None) -> Path:
    """Rename an unreadable journal to ``<name>.unreadable-<UTC time>``, so
    that a new one can be started in its place; returns the new path."""
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    storage = JournalStorage(path, create_dirs=False)
    path = storage.path  # the target of a symlink, not the link
    try:
        with storage.locked():
            target = path.with_name(f"{path.name}.unreadable-{stamp}")
            n = 1
            while target.exists():
                n += 1
                target = path.with_name(f"{path.name}.unreadable-{stamp}-{n}")
            os.rename(path, target)
            _fsync_directory(path.parent)
    finally:
        storage.close()
    return target


def _our_layout(raw: bytes) -> bool:
    """The file starts the way this storage writes it: ``{``, a table head."""
    first = raw[:4096].split(b"\n", 2)
    return len(first) > 1 and first[0] == b"{" and first[1].startswith(b'"') and b'":{' in first[1]


def _document(value: bytes) -> dict | str:
    """The document ``value`` holds, or why it holds none."""
    try:
        doc = _loads(value.decode("utf-8"))
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except ValueError as exc:
        return f"invalid JSON: {getattr(exc, 'msg', exc)}"
    if not isinstance(doc, dict):
        return f"a JSON {_kind(doc)}, not an entry"
    return doc


def _no_key(line: bytes) -> str:
    if len(line) > MAX_LINE:
        return f"a line of {len(line):,} bytes, too long to be an entry"
    if not line.strip():
        return "an empty line"
    return "not an entry line (no key)"


def _split_key(line: bytes) -> tuple[str, bytes] | None:
    """``"key": rest`` -> (key, rest), for a line in the layout written here."""
    if not line.startswith(b'"'):
        return None
    end = line.find(b'":', 1)
    if end < 0:
        return None
    raw = line[1:end]
    if b"\\" not in raw:
        try:
            return raw.decode("utf-8"), line[end + 2:].lstrip(b" ")
        except UnicodeDecodeError:
            return None
    try:
        text = line.decode("utf-8")
        key, stop = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    if not isinstance(key, str) or not text.startswith(":", stop):
        return None
    return key, text[stop + 1:].lstrip(" ").encode("utf-8")


def _line(key: str, doc: Any) -> bytes:
    return _dumps(key) + b":" + _dumps(doc)


def _payload(tables: dict[str, list[bytes]]) -> list[bytes]:
    """The file, as buffers for writev: the unchanged body is not copied."""
    parts = [b"{\n"]
    names = list(tables)
    for index, name in enumerate(names):
        comma = b"," if index < len(names) - 1 else b""
        chunks = tables[name]
        if chunks:
            parts += [_dumps(name), b":{\n", *chunks, b"\n}" + comma + b"\n"]
        else:
            parts += [_dumps(name), b":{}", comma, b"\n"]
    parts.append(b"}\n")
    return parts


def _read_all(fd: int, size_hint: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, max(size_hint, 65536))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _write_all(fd: int, buffers: list[bytes]) -> None:
    total = sum(map(len, buffers))
    written = os.writev(fd, buffers)
    if written < total:
        rest = memoryview(b"".join(buffers))[written:]
        while rest:
            rest = rest[os.write(fd, rest):]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some filesystems cannot fsync a directory; the rename stands.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            type(None): "null"}.get(type(value), "number")
