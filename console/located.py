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

# Values reached again through an alias (or a ``<<`` merge) are counted, so a
# "billion laughs" document fails fast; a long file written out in full is
# bounded by its size alone.
MAX_ALIAS_EXPANSION = 100_000
MAX_BYTES = 4 * 1024 * 1024
# Hand-written configs and playbooks nest a handful of levels; PyYAML's
# composer recurses once per level, so a file of 100k "[" would otherwise end
# in RecursionError.
MAX_DEPTH = 64

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
        node = _compose(text)
    except _TooDeep as exc:
        raise Invalid([Problem(name, exc.line, _too_deep())]) from None
    except RecursionError:  # a backstop: _Loader bounds the depth first
        raise Invalid([Problem(name, 1, _too_deep())]) from None
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
    try:
        data = builder.build(node, ())
    except RecursionError:  # a backstop: build() bounds the depth first
        raise Invalid([Problem(name, 1, _too_deep())]) from None
    return Document(name, data, lines)


def _too_deep() -> str:
    return f"nested more than {MAX_DEPTH} levels deep"


def _compose(text: str) -> yaml.Node | None:
    """The node tree, by libyaml when present (a 3 MB playbook: ~3 s, not ~25 s).

    libyaml's composer recurses in C, beyond Python's recursion limit, so the
    depth is measured on its (flat) event stream first.
    """
    if not getattr(yaml, "__with_libyaml__", False):
        return yaml.compose(text, Loader=_Loader)
    depth = 0
    opening = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
    closing = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, opening):
            depth += 1
            if depth > MAX_DEPTH:
                raise _TooDeep(event.start_mark.line + 1)
        elif isinstance(event, closing):
            depth -= 1
    return yaml.compose(text, Loader=yaml.CSafeLoader)


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _Loader(yaml.SafeLoader):
    """SafeLoader whose composer stops at :data:`MAX_DEPTH` levels of nesting."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Builder:
    def __init__(self, name: str, lines: dict[Keypath, int]) -> None:
        self.name = name
        self.lines = lines
        self.expanded = 0  # values built again because an alias points at them
        self.built: set[int] = set()  # ids of nodes built once already
        self.constructor = yaml.SafeLoader.__new__(yaml.SafeLoader)
        yaml.constructor.SafeConstructor.__init__(self.constructor)

    def build(self, node: yaml.Node, keys: Keypath, via: int = 0) -> Any:
        """``via``: the line of the alias this value is reached through, if any."""
        # The composer shares one node among every alias to its anchor, so a
        # node met twice is an expansion, and so is everything under it.
        if not via and id(node) in self.built:
            via = self._line_of(keys)
        if via:
            self.expanded += 1
            if self.expanded > MAX_ALIAS_EXPANSION:
                raise Invalid([Problem(self.name, via,
                                       f"aliases expand to more than {MAX_ALIAS_EXPANSION} values (alias bomb?)")])
        else:
            self.built.add(id(node))
        if len(keys) > MAX_DEPTH:  # only an alias inside its own anchor ("&a [*a]") gets here
            raise Invalid([Problem(self.name, via or node.start_mark.line + 1,
                                   _too_deep() + " (an alias inside its own anchor?)")])
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
                out[key] = self.build(value_node, keys + (key,), via)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, keys + (i,), via) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _line_of(self, keys: Keypath) -> int:
        while keys and keys not in self.lines:
            keys = keys[:-1]
        return self.lines.get(keys, 1)

    def _scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return None
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.constructor.ConstructorError, ValueError, OverflowError) as exc:
            raise Invalid([Problem(self.name, node.start_mark.line + 1, f"bad value: {exc}")]) from None
