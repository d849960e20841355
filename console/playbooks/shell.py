"""A playbook's shell command: its ``{name}`` placeholders, and how the values
the operator types reach the command as data, never as shell text.

Quoting a value for the place it lands cannot be made right: bash evaluates a
variable's *contents* as code in ``$(( ))``, ``[[ -gt ]]``, ``let``,
``declare -i``, ``printf -v`` and ``${!x}`` (``a[$(cmd)]`` runs cmd), and a
nested ``bash -c``, ``ssh`` or ``watch`` parses the text once more. So two
guards, one for how a value travels and one for what it may hold:

1. The value never becomes text our shell parses. A template with no shell
   syntax runs as an argv with no shell at all, each value filling (part of)
   one word. Anything else runs as ``bash -c SCRIPT`` where each placeholder
   is a constant reference ``"${ICV_name}"`` and the value travels in the
   environment variable ``ICV_name``.
2. A value may hold only ASCII letters, digits and ``_ . / : @ % + , -``,
   and no ``++`` or ``--``: none of them is syntax to any shell, glob, brace
   or tilde expansion, and in arithmetic they can only read a variable, never
   write one or run anything. This is what holds where bash evaluates a
   variable's contents (``$(( "${ICV_x}" ))``), and where the template hands
   the text to another interpreter (``bash -c "... {x}"``, ``ssh host {x}``).

On top, a value never chooses the program: a placeholder where a command name
goes (first word, after ``;``, ``bash -c``, ``eval``, ``sudo`` ...) is refused,
and a value starting with ``-`` where it starts a word is refused as an option.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import string
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from console.playbooks.model import TEMPLATE

ENV_PREFIX = "ICV_"  # incident-console value
MAX_VALUE = 256  # a DNS name is at most 253; nothing an incident needs is longer
ALLOWED = frozenset(string.ascii_letters + string.digits + "_./:@%+,-")
ALLOWED_SHOWN = "ASCII letters, digits and _ . / : @ % + , -"

# Why each refused character is dangerous, in the operator's terms.
_WHY = {
    "$": "a shell expands it ($VAR, $(command))", "`": "a shell runs what it encloses",
    "(": "a shell groups or runs commands with it", ")": "a shell groups or runs commands with it",
    "[": "it is a glob, and an array subscript that arithmetic runs as code", "]": "it closes an array subscript",
    ";": "it ends a command", "&": "it chains or backgrounds commands", "|": "it pipes into another command",
    "<": "it redirects input", ">": "it redirects output", "'": "it opens a quoted string",
    '"': "it opens a quoted string", "\\": "it escapes the next character", "*": "it globs file names",
    "?": "it globs file names", "{": "brace expansion turns one value into several words",
    "}": "brace expansion turns one value into several words", "~": "it expands to a home directory",
    "#": "it starts a comment where a shell re-reads the text", "!": "it negates a command or expands history",
    "=": "it assigns a variable (in arithmetic, or before a command)", "^": "it is an operator in arithmetic",
    " ": "it splits the value into several words", "\t": "it splits the value into several words",
    "\n": "it ends the command", "\r": "it can end the command or hide text on screen",
    "\x00": "it cannot pass through a command line",
}
# Words after which the next word is run as a command, not passed as data.
_RUNS_NEXT = (r"eval|exec|command|builtin|sudo|doas|env|nohup|nice|xargs|watch|time|timeout\s+\S+|"
              r"(?:ba|da|z|k|mk|a)?sh\s+(?:-\S+\s+)*-\w*c|su\s+(?:-\S+\s+)*-c|ssh\s+(?:-\S+\s+)*[^\s-]\S*")
# Where a command begins: not inside ((...)) or $((...)), which is arithmetic.
_COMMAND_START = (r"(?:^|[;&|\n`]|(?<![($])\((?!\()|\$\((?!\()|(?<!\$)\{\s|"
                  r"\b(?:then|do|else|elif|if|while|until)\s|!\s)")
_SHELL_SYNTAX = frozenset("|&;<>()$`\\*?[]{}~#!\n")  # outside placeholders: needs bash to mean it
# Words bash gives a meaning no program on PATH has: they need bash.
_SHELL_WORDS = frozenset(
    "alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown "
    "enable eval exec exit export fc fg getopts hash history jobs let local logout mapfile popd pushd read "
    "readarray readonly return set shift shopt source suspend times trap type typeset ulimit umask unalias "
    "unset wait . : [[ ]] ! { } case coproc do done elif else esac fi for function if in select then time "
    "until while".split())


class ValueRefused(ValueError):
    """A value or template this module will not run; ``str()`` tells the operator why."""


@dataclass(frozen=True)
class ShellCommand:
    """A template with its values, built into exactly what will run."""

    template: str
    values: Mapping[str, str]  # name -> value, in placeholder order
    argv: tuple[str, ...] | None = None  # no shell: the program and its words, values filled in
    script: str | None = None  # bash -c: values only as "${ICV_name}" references
    environment: Mapping[str, str] = field(default_factory=dict)  # ICV_name -> value, with the script

    def exec_argv(self, bash: str = "bash") -> list[str]:
        return list(self.argv) if self.argv is not None else [bash, "-c", self.script or ""]

    @property
    def pasteable(self) -> str:
        """What the clipboard gets, for a human to paste into a shell.

        The values are spliced in as text here: a value that passed
        :func:`check_value` is one literal word in any shell context, and the
        operator sees it before pasting.
        """
        if self.argv is not None:
            return shlex.join(self.argv)
        return TEMPLATE.sub(lambda m: self.values.get(m.group(1), m.group(0))
                            if _is_placeholder(self.template, m) else m.group(0), self.template)

    def shown(self) -> list[str]:
        """Lines for the confirmation screen: how it runs, and each value as data."""
        if self.argv is not None:
            lines = ["runs with no shell, as these words:", *(f"  [{i}] {w}" for i, w in enumerate(self.argv))]
        else:
            lines = ["runs in bash; values are passed as environment variables, never as shell text:",
                     *(f"  {line}" for line in (self.script or "").splitlines() or [""])]
        if self.values:
            lines.append("values:")
            lines += [f"  {ENV_PREFIX}{name} = {value}" if self.argv is None else f"  {{{name}}} = {value}"
                      for name, value in self.values.items()]
        return lines

    def for_journal(self) -> dict[str, object]:
        shape = {"argv": list(self.argv)} if self.argv is not None else {"script": self.script}
        return {**shape, "values": dict(self.values)}


def placeholders(template: str) -> list[str]:
    """``{name}`` placeholders of a command, in order, each once; ``${NAME}`` is the shell's own."""
    return list(dict.fromkeys(m.group(1) for m in TEMPLATE.finditer(template) if _is_placeholder(template, m)))


def build(template: str, values: Mapping[str, str]) -> ShellCommand:
    """The command ``template`` filled with ``values``; raises :class:`ValueRefused`."""
    names = placeholders(template)
    missing = [n for n in names if n not in values]
    if missing:
        raise ValueRefused("no value given for " + ", ".join(f"{{{n}}}" for n in missing))
    used = {n: str(values[n]) for n in names}
    script, commands = _script(template)
    for name, value in used.items():
        if value.startswith("-") and _starts_a_word(commands, name):
            raise ValueRefused(f"value for {{{name}}} starts with '-', which the command would take as an option")
        check_value(name, value)
        _refuse_command_position(commands, name)
    argv = _argv(template, used)
    if argv is not None:
        return ShellCommand(template, used, argv=argv)
    return ShellCommand(template, used, script=script, environment={ENV_PREFIX + n: v for n, v in used.items()})


def check_value(name: str, value: str) -> None:
    """Refuse a value that any shell, or bash arithmetic, could read as more than a word."""
    if not value:
        raise ValueRefused(f"value for {{{name}}} is empty; a command needs something there")
    if len(value) > MAX_VALUE:
        raise ValueRefused(f"value for {{{name}}} is {len(value)} characters long; at most {MAX_VALUE}")
    for char in value:
        if char not in ALLOWED:
            raise ValueRefused(f"value for {{{name}}} holds {_describe(char)}, refused because {_why(char)}; "
                               f"a value in a command may hold only {ALLOWED_SHOWN}")
    for run in ("++", "--"):
        if run in value:
            raise ValueRefused(f"value for {{{name}}} holds {run!r}, refused because in arithmetic it "
                               f"changes a variable; a value in a command may not hold '++' or '--'")


# ---- building ------------------------------------------------------------------

def _is_placeholder(template: str, match: re.Match[str]) -> bool:
    return not template[:match.start()].endswith("$")


def _refuse_command_position(template: str, name: str) -> None:
    where = re.compile(rf"{_COMMAND_START}\s*(?:(?:{_RUNS_NEXT})\s+)*['\"]?(?<!\$)\{{{name}\}}")
    if where.search(template):
        raise ValueRefused(f"{{{name}}} stands where a command name goes; a typed value never chooses "
                           "what runs (write the program in the playbook, pass the value as its argument)")


def _starts_a_word(template: str, name: str) -> bool:
    # Read conservatively: after a quote counts as a word's start even when it is mid-word.
    return any(_is_placeholder(template, m) and (m.start() == 0 or template[m.start() - 1] in " \t\n;&|(`'\"")
               for m in TEMPLATE.finditer(template) if m.group(1) == name)


def _argv(template: str, values: Mapping[str, str]) -> tuple[str, ...] | None:
    """The words of a template that needs no shell, values filled in after splitting; else None."""
    sentinels = {f"\x00{i}\x00": name for i, name in enumerate(values)}
    marked = TEMPLATE.sub(lambda m: f"\x00{list(values).index(m.group(1))}\x00"
                          if _is_placeholder(template, m) else m.group(0), template)
    if any(c in _SHELL_SYNTAX for c in marked):
        return None
    try:
        words = shlex.split(marked)
    except ValueError:  # an unclosed quote: let bash say what it thinks
        return None
    if not words or words[0] in _SHELL_WORDS or "=" in words[0]:
        return None
    filled = []
    for word in words:
        for sentinel, name in sentinels.items():
            word = word.replace(sentinel, values[name])
        filled.append(word)
    return tuple(filled)


def _script(template: str) -> tuple[str, str]:
    """``template`` with each placeholder replaced by a reference to its ``ICV_`` variable,
    and the template with comments and here-document bodies blanked: its commands.

    The quote state decides only which reference form reads correctly there;
    every form is balanced in every state, so a misread state can make a
    value show up wrong, never let it (or the rest of the script) out.
    """
    out: list[str] = []
    commands: list[str] = []
    stack = ["U"]  # U: unquoted or $( ), B: `...`, S: '...', D: "...", A: $'...', M: ((...)), m: ( ) in M
    heredocs: list[tuple[str, bool, bool]] = []  # (delimiter, quoted, strip tabs), pending bodies
    i, n = 0, len(template)
    while i < n:
        match = TEMPLATE.match(template, i)
        top = stack[-1]
        if match and _is_placeholder(template, match):
            out.append(_reference(match.group(1), top))
            commands.append(match.group(0))
            i = match.end()
            continue
        c = template[i]
        step = 1
        if top == "S" or (top == "A" and c == "'"):
            if c == "'":
                stack.pop()
        elif c == "\\":
            step = 2
        elif top == "M" and template.startswith("))", i):
            stack.pop()
            step = 2
        elif (top, c) in (("m", ")"), ("D", '"'), ("B", "`")) or (top, c) == ("U", ")") and len(stack) > 1:
            stack.pop()
        elif (opened := _opening(template, i, top)) is not None:
            state, step = opened
            stack.append(state)
        elif top in "UB" and template.startswith("<<<", i):
            step = 3  # a here-string: its word is an ordinary word
        elif top in "UB" and template.startswith("<<", i):
            step, heredoc = _heredoc_start(template, i)
            heredocs.append(heredoc)
        elif top in "UB" and c == "#" and (i == 0 or template[i - 1] in " \t\n;&|("):
            end = template.find("\n", i)
            step = (n if end < 0 else end) - i  # a comment: copied as written, no command in it
            out.append(template[i:i + step])
            commands.append(" " * step)
            i += step
            continue
        elif top in "UB" and c == "\n" and heredocs:
            out.append(c)
            commands.append(c)
            i = _heredoc_bodies(template, i + 1, heredocs, out, commands)
            heredocs = []
            continue
        out.append(template[i:i + step])
        commands.append(template[i:i + step])
        i += step
    return "".join(out), "".join(commands)


# What opens a nested state, longest first, and in which states it does:
# inside "..." only $((, $( and `; in arithmetic a bare ( only nests.
_OPENERS = (("$((", "M"), ("$(", "U"), ("$'", "A"), ("((", "M"), ("(", "U"), ("'", "S"), ('"', "D"), ("`", "B"))
_OPENED_IN = {"U": "$(( $( $' (( ( ' \" `", "B": "$(( $( $' (( ( ' \" `", "D": "$(( $( `",
              "M": "$(( $( ( ' \" `", "m": "$(( $( ( ' \" `"}


def _opening(template: str, i: int, state: str) -> tuple[str, int] | None:
    """The state that starts at ``i``, and how many characters open it; None if nothing opens here."""
    for token, opens in _OPENERS:
        if token in _OPENED_IN.get(state, "").split() and template.startswith(token, i):
            return ("m" if state in "Mm" and token == "(" else opens), len(token)
    return None


def _reference(name: str, state: str) -> str:
    ref = "${" + ENV_PREFIX + name + "}"
    # In arithmetic (M, m) a reference is not split, and quotes are not needed.
    return {"U": f'"{ref}"', "B": f'"{ref}"', "D": ref, "M": ref, "m": ref, "S": f"'\"{ref}\"'",
            "A": f"'\"{ref}\"$'"}[state]


def _heredoc_start(template: str, i: int) -> tuple[int, tuple[str, bool, bool]]:
    """Length of ``<<[-] WORD`` at ``i``, and the here-document it opens."""
    j = i + 2
    strip = template.startswith("-", j)
    j += strip
    while j < len(template) and template[j] in " \t":
        j += 1
    start = j
    while j < len(template) and template[j] not in " \t\n;&|<>()":
        j += 1
    word = template[start:j]
    quoted = any(q in word for q in "'\"\\")
    return j - i, (word.replace("'", "").replace('"', "").replace("\\", ""), quoted, strip)


def _heredoc_bodies(template: str, i: int, heredocs: list[tuple[str, bool, bool]], out: list[str],
                    commands: list[str]) -> int:
    """Copy each pending here-document body from ``i``; return where the script resumes."""
    for delimiter, quoted, strip in heredocs:
        while i < len(template):
            end = template.find("\n", i)
            end = len(template) if end < 0 else end + 1
            line = template[i:end]
            commands.append("\n" if line.endswith("\n") else "")
            if (line.lstrip("\t") if strip else line).rstrip("\n") == delimiter:
                out.append(line)
                i = end
                break
            out.append(_heredoc_line(line, quoted))
            i = end
    return i


def _heredoc_line(line: str, quoted: bool) -> str:
    def reference(match: re.Match[str]) -> str:
        if not _is_placeholder(line, match):
            return match.group(0)
        if quoted:
            raise ValueRefused(f"{{{match.group(1)}}} sits in a here-document whose delimiter is quoted, "
                               "where nothing is expanded; unquote the delimiter")
        return "${" + ENV_PREFIX + match.group(1) + "}"
    return TEMPLATE.sub(reference, line)


def _describe(char: str) -> str:
    names = {" ": "a space", "\t": "a tab", "\n": "a line break", "\r": "a carriage return", "\x00": "a NUL"}
    if char in names:
        return names[char]
    if char.isprintable() and char.isascii():
        return repr(char)
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')})"


def _why(char: str) -> str:
    if char in _WHY:
        return _WHY[char]
    if not char.isascii():
        return "it is not ASCII, and may pass on screen for another character"
    return "it is a control character" if not char.isprintable() else "a shell or arithmetic gives it a meaning"


# ---- running -----------------------------------------------------------------------

@dataclass(frozen=True)
class Finished:
    """What a process did: its merged output (at most ``capture_bytes``), and how it ended."""

    output: str
    exit_code: int | None
    took_ms: float
    timed_out: bool = False
    not_started: str | None = None  # why it could not start


async def run_bounded(argv: Sequence[str], environment: Mapping[str, str], timeout: float,
                      capture_bytes: int) -> Finished:
    """``argv`` (never a shell line), stdout and stderr merged, bounded in time and size.

    It runs in its own session, so a timeout kills everything it started
    (a pipeline, ``sleep`` in the background), not only its first process.
    """
    started = time.perf_counter()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=dict(environment), start_new_session=True)
    except OSError as exc:
        return Finished("", None, _since(started), not_started=f"cannot start {argv[0]}: {exc.strerror or exc}")
    captured = bytearray()
    try:
        async with asyncio.timeout(timeout):
            await _capture(process, captured, capture_bytes)
            code = await process.wait()
    except (TimeoutError, asyncio.CancelledError) as exc:
        _kill_group(process)
        await process.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        return Finished(_decode(captured), process.returncode, _since(started), timed_out=True)
    return Finished(_decode(captured), code, _since(started))


def without_values(environment: Mapping[str, str]) -> dict[str, str]:
    """The environment minus inherited ``ICV_`` variables, so a reference is never filled by a stale one."""
    return {k: v for k, v in environment.items() if not k.startswith(ENV_PREFIX)}


async def _capture(process: asyncio.subprocess.Process, captured: bytearray, limit: int) -> None:
    assert process.stdout is not None
    while chunk := await process.stdout.read(16 * 1024):
        room = limit - len(captured)
        if room > 0:
            captured += chunk[:room]
        # Past the cap, keep reading so the command never blocks on a full pipe.


def _kill_group(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _decode(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace")


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
