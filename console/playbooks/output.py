"""A step's output as the operator reads it: plain, inert text, bounded.

Whatever a system sends (rows, a Redis reply, a PromQL result, an HTTP body,
a command's output) becomes lines of plain text with control characters
made harmless (:func:`console.text.inert`), each line and the whole cut to a
size a pane and the journal can hold, with a note of what was cut.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Mapping, Sequence

from console.readings import general, metric_value
from console.text import inert

MAX_LINES = 100
MAX_BYTES = 8 * 1024
CELL_CHARS = 80
LINE_CHARS = 400


def bounded(text: str) -> str:
    """Each line made inert, at most MAX_LINES lines and about MAX_BYTES, with a note of what was cut."""
    lines = [inert(line.rstrip("\r"), LINE_CHARS) for line in text.splitlines()]
    kept: list[str] = []
    size = 0
    for line in lines:
        size += len(line.encode()) + 1
        if len(kept) == MAX_LINES or size > MAX_BYTES:
            kept.append(f"… {len(lines) - len(kept)} more lines not shown")
            break
        kept.append(line)
    return "\n".join(kept)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A small aligned plain-text table; every cell on one inert line."""
    if not columns:
        return ""
    head = [inert(c, CELL_CHARS) for c in columns]
    # A number is written as its column's name says (``idle_s``: ``19s``; ``hit_ratio``: ``93%``).
    body = [[_cell(v, columns[i] if i < len(columns) else "") for i, v in enumerate(row)]
            for row in rows[:MAX_LINES]]
    widths = [max([len(head[i])] + [len(r[i]) for r in body if i < len(r)]) for i in range(len(head))]
    numeric = [all(_is_number(row[i]) for row in rows[:MAX_LINES] if i < len(row) and row[i] is not None)
               and bool(rows) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()
    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in body)])


def row_count(count: int, truncated: bool) -> str:
    if truncated:
        return f"\n(first {count} rows)"
    return f"\n({count} row{'s' if count != 1 else ''})"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal, timedelta)) and not isinstance(value, bool)


def _cell(value: Any, column: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    elif isinstance(value, datetime):
        value = value.isoformat(sep=" ", timespec="seconds")
    elif isinstance(value, date):
        value = value.isoformat()
    elif _is_number(value):
        value = metric_value(str(column), value)
    elif isinstance(value, (dict, list, tuple)):
        value = json.dumps(value, default=str, ensure_ascii=False)
    return inert(value, CELL_CHARS)


def redis_reply(reply: Any) -> str:
    """A parsed Redis reply as redis-cli would show it, more or less."""
    if isinstance(reply, Mapping):
        items = [(str(_plain(k)), v) for k, v in reply.items()]
        if not items:
            return "(empty)"
        width = min(max(len(k) for k, _ in items), 40)
        return "\n".join(f"{inert(k, 40).ljust(width)}  {_inline(v)}" for k, v in items)
    if isinstance(reply, (list, tuple)):
        if not reply:
            return "(empty list)"
        if all(isinstance(r, Mapping) for r in reply):
            columns = list(dict.fromkeys(str(_plain(k)) for r in reply for k in r))
            rows = [[_inline(_lookup(r, c)) for c in columns] for r in reply]
            return table(columns, rows)
        return "\n".join(f"{i}) {_inline(r)}" for i, r in enumerate(reply, 1))
    if reply is None:
        return "(nil)"
    return _inline(reply)


def _lookup(row: Mapping[Any, Any], key: str) -> Any:
    for k, v in row.items():
        if str(_plain(k)) == key:
            return v
    return None


def _plain(value: Any) -> Any:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _inline(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, Mapping):
        return inert(", ".join(f"{_plain(k)}={_inline(v)}" for k, v in value.items()), LINE_CHARS)
    if isinstance(value, (list, tuple)):
        return inert(" ".join(_inline(v) for v in value), LINE_CHARS)
    if value is None:
        return "(nil)"
    if isinstance(value, float):
        value = general(value)
    return inert(value, LINE_CHARS)


def promql_result(data: Mapping[str, Any]) -> str:
    """An instant query's result: one row per series, its labels and value."""
    kind, result = data.get("resultType"), data.get("result")
    if kind in ("scalar", "string") and isinstance(result, list) and len(result) == 2:
        return inert(result[1], LINE_CHARS)
    if not isinstance(result, list):
        return f"unexpected result type {inert(kind, 40)}"
    if not result:
        return "no data (no series matched)"
    rows = []
    for series in result:
        if not isinstance(series, Mapping):
            continue
        labels = series.get("metric") or {}
        name = labels.get("__name__", "")
        shown = name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items() if k != "__name__") + "}"
        if kind == "matrix":
            values = series.get("values") or []
            last = _sample(name, values[-1][1]) if values else ""
            rows.append((shown, f"{last} (last of {len(values)})"))
        else:
            pair = series.get("value") or ["", ""]
            rows.append((shown, _sample(name, pair[1]) if len(pair) > 1 else ""))
    return table(("series", "value"), rows) + row_count(len(rows), False)


def _sample(name: str, value: Any) -> str:
    """A sample's value (Prometheus sends it as text) written as its metric's name says."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return inert(value, LINE_CHARS)
    return metric_value(str(name), number)


def readable_body(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
