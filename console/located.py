"""YAML that remembers where each value came from.

Config files and playbooks are written by hand at 3 a.m.; every problem in
them is reported as ``path:line: message``. This loader keeps the line of
every mapping key and sequence item so validators can say where.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from console.text import inert

# Alias expansion is counted so a "billion laughs" document fails fast.
MAX_NODES = 200_000
MAX_BYTES = 4 * 1024 * 1024

Keypath = tuple[Any, ...]


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        # Messages quote the file's own keys and values: one inert line each.
        return f"{inert(self.path, 300)}:{self.line}: {inert(self.message, 500)}"


class Invalid(Exception):
    """One or more problems in a file; ``str()`` lists them one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Document:
    path: str
    data: Any
    lines: dict[Keypath, int]

    def line(self, *keys: Any) -> int:
        """Line of ``keys``, or of the nearest enclosing value that has one."""
        while keys:
            if keys in self.lines:
                return self.lines[keys]
            keys = keys[:-1]
        return self.lines.get((), 1)

    def problem(self, keys: Keypath, message: str) -> Problem:
        return Problem(self.path, self.line(*keys), message)


def load(path: str | Path) -> Document:
    """Read and parse ``path``; raises :class:`Invalid` with a located problem."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise Invalid([Problem(name, 0, f"cannot read: {exc.strerror or exc}")]) from None
    return parse(raw, name)


def parse(raw: bytes | str, name: str) -> Document:
    if isinstance(raw, str):
        text = raw
    else:
        if len(raw) > MAX_BYTES:
            raise Invalid([Problem(name, 1, f"file is {len(raw)} bytes; the limit is {MAX_BYTES}")])
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise Invalid([Problem(name, line, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        what = exc.problem or exc.context or "invalid YAML"
        raise Invalid([Problem(name, line, f"invalid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise Invalid([Problem(name, 1, f"invalid YAML: {exc}")]) from None
    lines: dict[Keypath, int] = {}
    if node is None:
        return Document(name, None, {(): 1})
    builder = _Builder(name, lines)
    data = builder.build(node, ())
    return Document(name, data, lines)


class _Builder:
    def __init__(self, name: str, lines: dict[Keypath, int]) -> None:
        self.name = name
        self.lines = lines
        self.count = 0
        self.constructor = yaml.SafeLoader.__new__(yaml.SafeLoader)
        yaml.constructor.SafeConstructor.__init__(self.constructor)

    def build(self, node: yaml.Node, keys: Keypath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise Invalid([Problem(self.name, node.start_mark.line + 1,
                                   f"document expands to more than {MAX_NODES} values (alias bomb?)")])
        self.lines.setdefault(keys, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            self.constructor.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    raise Invalid([Problem(self.name, key_node.start_mark.line + 1,
                                           "mapping keys must be plain scalars")])
                if key in out:
                    raise Invalid([Problem(self.name, key_node.start_mark.line + 1,
                                           f"duplicate key {key!r}")])
                self.lines[keys + (key,)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, keys + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, keys + (i,)) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return None
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.constructor.ConstructorError, ValueError, OverflowError) as exc:
            raise Invalid([Problem(self.name, node.start_mark.line + 1, f"bad value: {exc}")]) from None
