"""Run the console in a pseudo-terminal of fixed size and watch what it writes."""

from __future__ import annotations

import compileall
import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path


# The console's frame is complete when its footer (the last row) is written;
# the footer's first key is Quit.
CONSOLE_DONE = b"Quit"
XTGETTCAP = re.compile(rb"\x1bP\+q([0-9a-fA-F;]+)\x1b\\")


@dataclass
class Terminal:
    argv: list[str]
    cols: int = 120
    rows: int = 40
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        pid, fd = pty.fork()
        if pid == 0:
            env = {**os.environ, "TERM": "xterm-256color", **self.env}
            os.execvpe(self.argv[0], self.argv, env)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", self.rows, self.cols, 0, 0))
        self.written = 0
        self.buffer = bytearray()

    def read(self, timeout: float) -> bytes:
        out = bytearray()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                break
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            self.answer(chunk)
        self.written += len(out)
        return bytes(out)

    def answer(self, chunk: bytes) -> None:
        """Answer the queries a real terminal answers, so that a program which
        waits for them (pg_activity's blessed does) is not held up for seconds."""
        replies = b"".join(b"\x1bP0+r" + q + b"\x1b\\" for q in XTGETTCAP.findall(chunk))
        if b"\x1b[6n" in chunk:
            replies += b"\x1b[1;1R"
        if b"\x1b[c" in chunk:
            replies += b"\x1b[?62;22c"
        if replies:
            os.write(self.fd, replies)

    def wait_for(self, marker: bytes, timeout: float) -> float | None:
        """Seconds since launch when ``marker`` was first written, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = self.read(0.02)
            self.buffer += chunk
            if marker in self.buffer:
                return time.monotonic() - self.started
        return None

    def send(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def stop(self) -> None:
        try:
            self.send(b"q")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                self.read(0.05)
                done, _ = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    return
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (OSError, ChildProcessError):
            pass


def compile_console() -> None:
    """The console's modules compiled, as a wheel is when it is installed
    (an editable install, on its first run). Where PYTHONDONTWRITEBYTECODE is
    set (these machines) every launch would compile them again: ~90 ms of a
    first frame that a user's second launch does not pay."""
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "console"), quiet=1)


def console_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "console", *args]
