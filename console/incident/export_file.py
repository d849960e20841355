"""Writing an export to a file: one way, for `incident-console export -o`
and the console's own export command.

An export never overwrites a journal (the journal itself, through a symlink
or a hard link, or another journal), replaces a regular file whole or not
at all (a full disk leaves the old one), and is redacted as it leaves.
"""

from __future__ import annotations

import os
import secrets as random
import stat

from console import secrets


class ExportRefused(Exception):
    """Why nothing was written; the message names the reason, not the path."""


def write_export(output: str | os.PathLike, text: str, journal: str | os.PathLike | None = None,
                 pipes: bool = True) -> None:
    """``text`` into ``output``. ``pipes``: whether a FIFO or a terminal may be
    written to as it is (the command line's ``-o /dev/stdout``); the console
    says no, a pipe with no reader would stop its screen."""
    refused = not_over_a_journal(output, journal)
    if refused:
        raise ExportRefused(refused)
    replace_file(output, secrets.redact(text).encode("utf-8"), pipes=pipes)


def not_over_a_journal(output: str | os.PathLike | None, journal: str | os.PathLike | None) -> str | None:
    """Why ``output`` must not be written with an export: it is the journal
    (through a symlink or a hard link), or another journal; None if it may."""
    if not output:
        return None
    try:
        if journal is not None and os.path.samefile(output, journal):
            return f"is the journal itself ({journal})"
        if not os.path.isfile(output):  # a pipe is not read here: it would block
            return None
        with open(os.path.realpath(output), "rb", buffering=0) as existing:
            head = existing.read(64)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        return f"cannot be checked: {exc.strerror or exc}"
    if head.replace(b" ", b"").startswith((b'{\n"events":{', b'{"events":{', b'{\n"_default":{', b'{"_default":{')):
        return "is an incident journal; an export never overwrites one"
    return None


def replace_file(output: str | os.PathLike, data: bytes, pipes: bool = True) -> None:
    """A regular file replaced whole or not at all (a temporary renamed over
    it), through a symlink rather than over it; a FIFO or a terminal written
    to as it is when ``pipes``, else refused."""
    target = os.path.realpath(output)  # through a symlink, not over it
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "is a directory")
    if st is not None and not stat.S_ISREG(st.st_mode):
        if not pipes:
            raise ExportRefused("is not a regular file")
        with open(target, "wb") as out:  # a pipe or a terminal: no rename there
            out.write(data)
        return
    tmp = f"{os.path.dirname(target)}/.{os.path.basename(target)}.{random.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        if st is not None:
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
