"""Redis detail views: what Enter on a Redis row reads, and how it reads.

Each view is a few fixed read commands sent when the view is opened (never
on a refresh) and a pure function from their replies to a
:class:`console.drill.Detail`. The source owns the connection and the
timeout; this module owns only the commands and the shapes of their replies,
so the parsing is tested without a server.

Replies are hostile: a client name may be ``[red]x[/]``, a SLOWLOG argument
may hold escapes and newlines. They stay ``str`` here (bytes decoded with
replacement characters, long arguments cut); the screen makes them inert.
A SLOWLOG argument may also be a configured secret (an AUTH, a SET of a
token): it is redacted before it is cut, since a cut secret's remaining
prefix is no longer a form the screen's redaction recognises.

A client is named by its CLIENT ID (``client/<id>``), never by its address
alone: every unix-socket client has the same address, ``/path:0``.
redis-py speaks RESP2 or RESP3 depending on its version, so maps arrive as
either a dict or a flat key/value list: both are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

from console.drill import Change, Detail, NoSuchRow, Section
from console.readings import duration, micros, number, percent, size
from console import secrets

SLOWLOG_ENTRIES = 128
# A detail of 10,000 clients helps nobody and costs a screen redraw each:
# the groups count them all, the list shows the heaviest.
CLIENTS_SHOWN = 500
ARG_CHARS = 60       # one SLOWLOG argument (Redis itself cuts at 128 bytes)
COMMAND_CHARS = 200  # a SLOWLOG command line, all arguments joined
READ_CHARS = 4096    # of one reply string, at most, redacted whole (Redis's own are far shorter)
# How Redis ends a SLOWLOG argument it cut (after 128 bytes).
REDIS_CUT = re.compile(r"\.\.\. \((\d+) more bytes\)\Z")

# CLIENT LIST fields that are byte counts or seconds, written as such.
CLIENT_SIZES = frozenset({"qbuf", "qbuf-free", "argv-mem", "multi-mem", "rbs", "rbp", "obl", "omem", "tot-mem"})
CLIENT_SECONDS = frozenset({"age", "idle"})
MEMORY_LIMITS = ("used_memory", "used_memory_rss", "used_memory_peak", "maxmemory", "maxmemory_policy",
                 "mem_fragmentation_ratio")
KEYSPACE_STATS = ("keyspace_hits", "keyspace_misses", "expired_keys", "evicted_keys",
                  "total_commands_processed", "instantaneous_ops_per_sec")

Argv = tuple[str, ...]


@dataclass(frozen=True)
class Read:
    """The commands a view sends (one turn on the source's connection) and
    what it makes of their replies."""

    commands: tuple[Argv, ...]
    build: Callable[[Sequence[Any]], Detail]


def read_for(source: str, row: str) -> Read:
    """The read behind a row id; NoSuchRow for one this source never makes."""
    view, _, rest = row.partition("/")
    if view == "client" and rest:
        if rest.isascii() and rest.isdigit():
            return Read((("CLIENT", "LIST"), ("CLIENT", "ID")), lambda r: client_detail(source, rest, r[0], r[1]))
        # A SLOWLOG entry knows only its client's address.
        return Read((("CLIENT", "LIST"), ("CLIENT", "ID")), lambda r: client_at_detail(source, rest, r[0], r[1]))
    views: dict[str, Read] = {
        "slowlog": Read((("SLOWLOG", "GET", str(SLOWLOG_ENTRIES)),), lambda r: slowlog_detail(source, r[0])),
        "clients": Read((("CLIENT", "LIST"), ("CLIENT", "ID")), lambda r: clients_detail(source, r[0], r[1])),
        "keyspace": Read((("INFO", "keyspace"), ("INFO", "stats")),
                         lambda r: keyspace_detail(source, r[0], r[1])),
        "memory": Read((("MEMORY", "STATS"), ("INFO", "memory")), lambda r: memory_detail(source, r[0], r[1])),
        "replication": Read((("INFO", "replication"),), lambda r: replication_detail(source, r[0])),
    }
    if rest or view not in views:
        raise NoSuchRow(f"redis {source}: no view {row[:80]!r}")
    return views[view]


# ---- SLOWLOG ----------------------------------------------------------------------

def slowlog_detail(source: str, reply: Any) -> Detail:
    entries = [_slow_entry(e) for e in (reply or ()) if isinstance(e, (list, tuple)) and len(e) >= 4]
    rows = tuple((e["id"], e["when"], e["took"], e["command"], e["addr"], e["name"]) for e in entries)
    # A slow command's client may still be connected: Enter opens it (or says
    # it left). SLOWLOG names it by address only: the client at that address.
    drill = tuple(f"client/{e['addr']}" if e["addr"] else "" for e in entries)
    section = Section(f"SLOWLOG GET {SLOWLOG_ENTRIES}: {len(rows)} entries, newest first",
                      ("id", "when (UTC)", "took", "command", "client", "name"), rows,
                      "" if rows else "the slowlog is empty", drill)
    return Detail(f"{source} · slowlog", (section,))


def _slow_entry(entry: Sequence[Any]) -> dict[str, str]:
    args = entry[3] if isinstance(entry[3], (list, tuple)) else [entry[3]]
    # Redis < 4 sends no client fields.
    addr, name = (_text(entry[4]), _text(entry[5])) if len(entry) >= 6 else ("", "")
    return {"id": _text(entry[0]), "when": _utc(entry[1]), "took": micros(entry[2]),
            "command": command_line(args), "addr": addr, "name": name}


def command_line(args: Iterable[Any]) -> str:
    """A logged command as one cut line: each argument redacted and cut, then the whole.

    Redacted before each cut: a secret the cut fell inside would leave a
    prefix that no redaction matches any more.
    """
    return _cut(_redacted(" ".join(_cut(_logged_arg(a), ARG_CHARS) for a in args)), COMMAND_CHARS)


def _logged_arg(arg: Any) -> str:
    """A SLOWLOG argument, redacted. Redis already cut one longer than 128
    bytes: a secret running past that cut left a prefix that no secret form
    matches, so a tail that begins one is dropped."""
    text = _text(arg)
    redis_cut = REDIS_CUT.search(text)
    if redis_cut is None:
        return _redacted(text)
    kept = secrets.redact(text[: redis_cut.start()].rstrip("\ufffd"))  # a character Redis cut in two
    whole = secrets.without_cut_secret(kept)
    return kept + redis_cut.group(0) if whole == kept else whole + "…"


def _redacted(text: str) -> str:
    """``text`` with every configured secret masked before anything cuts it:
    a cut secret's remaining prefix is no form that redaction recognises."""
    if len(text) <= READ_CHARS:
        return secrets.redact(text)
    return secrets.redact_cut(text, READ_CHARS) + "…"


def _utc(seconds: Any) -> str:
    stamp = _number(seconds)
    if stamp is None:
        return "–"
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# ---- CLIENT LIST ----------------------------------------------------------------------

def parse_client_list(reply: Any) -> list[dict[str, str]]:
    """CLIENT LIST as one dict per client, fields in Redis's order.

    A name cannot hold spaces or newlines (Redis refuses them) but may hold
    ``=``: a field is split at its first ``=`` only.
    """
    clients = []
    for line in _text(reply).splitlines():
        fields = dict(token.partition("=")[::2] for token in line.split(" ") if token)
        if fields.get("addr"):
            clients.append(fields)
    return clients


def clients_detail(source: str, reply: Any, own_id: Any) -> Detail:
    clients = parse_client_list(reply)
    own = _own(clients, own_id)
    groups = _groups(clients)
    by_group = Section(f"by name and host: {len(clients)} clients in {len(groups)} groups",
                       ("name", "host", "clients", "max idle", "omem", "qbuf"), tuple(groups))
    heaviest = sorted(clients, key=lambda c: (-_int(c, "omem") - _int(c, "qbuf"), -_int(c, "idle")))
    shown = heaviest[:CLIENTS_SHOWN]
    note = [f"the console's own connection is client {_text(own_id)} at {own}"] if own else []
    if len(shown) < len(clients):
        note.append(f"the {len(shown)} heaviest of {len(clients)} (output and query buffers, then idle)")
    listed = Section("clients", CLIENT_COLUMNS, tuple(_client_row(c) for c in shown), "\n".join(note),
                     tuple(_client_drill(c) for c in shown))
    return Detail(f"{source} · clients", (by_group, listed))


def _groups(clients: list[dict[str, str]]) -> list[tuple[str, ...]]:
    """Who holds the connections: count, longest idle and buffers per name and host."""
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    for c in clients:
        groups.setdefault((c.get("name", ""), _host(c["addr"])), []).append(c)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return [(name, host, str(len(members)), duration(max(_int(c, "idle") for c in members)),
             size(sum(_int(c, "omem") for c in members)), size(sum(_int(c, "qbuf") for c in members)))
            for (name, host), members in ordered]


CLIENT_COLUMNS = ("id", "addr", "name", "age", "idle", "db", "cmd", "omem", "qbuf", "flags")


def _client_drill(c: Mapping[str, str]) -> str:
    # A client Redis lists without an id (none does since 2.8.12) cannot be opened.
    return f"client/{c['id']}" if _is_id(c.get("id", "")) else ""


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _client_row(c: Mapping[str, str]) -> tuple[str, ...]:
    return (c.get("id", ""), c["addr"], c.get("name", ""), duration(_int(c, "age")), duration(_int(c, "idle")), c.get("db", ""),
            c.get("cmd", ""), size(_int(c, "omem")), size(_int(c, "qbuf")), c.get("flags", ""))


def client_detail(source: str, client_id: str, reply: Any, own_id: Any) -> Detail:
    """One client, by its CLIENT ID; NoSuchRow once it has disconnected."""
    clients = parse_client_list(reply)
    client = next((c for c in clients if c.get("id") == client_id), None)
    if client is None:
        raise NoSuchRow(f"redis {source}: client {client_id[:40]} is no longer connected")
    addr = client["addr"]
    title = f"{source} · client {client_id} at {addr}"
    fields = Section(f"client {client_id} at {addr}", ("field", "value"),
                     tuple((k, _client_field(k, v)) for k, v in client.items()))
    if client_id == _text(own_id):
        # SKIPME: Redis would not let the console's connection disconnect itself anyway.
        note = Section("", text="this is the console's own connection")
        return Detail(title, (fields, note))
    return Detail(title, (fields,), changes=(kill_change(client),))


def client_at_detail(source: str, addr: str, reply: Any, own_id: Any) -> Detail:
    """The client at an address (what a SLOWLOG entry names): its detail if
    it is the only one there, else the list of those sharing it (unix-socket
    clients all have ``/path:0``), each opening its own detail."""
    clients = parse_client_list(reply)
    there = [c for c in clients if c["addr"] == addr and _is_id(c.get("id", ""))]
    if not there:
        raise NoSuchRow(f"redis {source}: no client at {addr[:80]}: it is no longer connected")
    if len(there) == 1:
        return client_detail(source, there[0]["id"], reply, own_id)
    listed = Section(f"{len(there)} clients at {addr}", CLIENT_COLUMNS, tuple(_client_row(c) for c in there),
                     "they share this address (a unix socket): open one to see it, or to disconnect it",
                     tuple(_client_drill(c) for c in there))
    return Detail(f"{source} · clients at {addr}", (listed,))


def kill_change(client: Mapping[str, str]) -> Change:
    """``K``: CLIENT KILL ID of this one client, confirmed by typing its address.

    By ID, the only thing that names one client: all unix-socket clients
    share one address. The preview says which of them it is.
    """
    addr, client_id = client["addr"], client["id"]
    preview = (f"client {client_id} at {addr} · name {client.get('name') or '(none)'}"
               f" · idle {duration(_int(client, 'idle'))} · cmd {client.get('cmd', '–')}"
               f" · omem {size(_int(client, 'omem'))}",)
    return Change(key="K", label=f"Disconnect client {client_id} ({addr})", action="client_kill",
                  params={"id": client_id, "address": addr}, confirm=addr, preview=preview)


def _client_field(key: str, value: str) -> str:
    if key in CLIENT_SECONDS and value.isdigit():
        return duration(int(value))
    if key in CLIENT_SIZES and value.isdigit():
        return size(int(value))
    return value


def _own(clients: list[dict[str, str]], own_id: Any) -> str:
    """The address of the connection that asked (CLIENT ID on the same turn)."""
    wanted = _text(own_id)
    return next((c["addr"] for c in clients if c.get("id") == wanted), "")


def _host(addr: str) -> str:
    return addr.rpartition(":")[0] or addr


# ---- INFO and MEMORY STATS ------------------------------------------------------------

def keyspace_detail(source: str, keyspace: Any, stats: Any) -> Detail:
    dbs = sorted(((k, v) for k, v in _map(keyspace).items() if isinstance(v, Mapping)),
                 key=lambda kv: int(kv[0][2:]) if kv[0][2:].isdigit() else 0)
    rows = tuple((db, number(v.get("keys")), number(v.get("expires")), _ttl(v.get("avg_ttl"))) for db, v in dbs)
    per_db = Section("keyspace", ("database", "keys", "with expiry", "avg ttl"), rows,
                     "" if rows else "no keys in any database")
    counters = _map(stats)
    hits, misses = _number(counters.get("keyspace_hits")), _number(counters.get("keyspace_misses"))
    lookups = [(k, number(counters.get(k))) for k in KEYSPACE_STATS if k in counters]
    if hits is not None and misses is not None and hits + misses:
        lookups.append(("hit rate since start or CONFIG RESETSTAT", percent(hits / (hits + misses))))
    return Detail(f"{source} · keyspace", (per_db, Section("lookups", ("field", "value"), tuple(lookups))))


def _ttl(ms: Any) -> str:
    value = _number(ms)
    return "–" if not value else duration(value / 1000)


def memory_detail(source: str, stats: Any, info: Any) -> Detail:
    rows = tuple((key, _memory_value(key, value)) for key, value in _flat(_map(stats)))
    breakdown = Section("MEMORY STATS", ("field", "value"), rows)
    memory = _map(info)
    limits = tuple((k, _limit(k, memory[k])) for k in MEMORY_LIMITS if k in memory)
    return Detail(f"{source} · memory", (breakdown, Section("INFO memory", ("field", "value"), limits)))


def _memory_value(key: str, value: Any) -> str:
    n = _number(value)
    if n is None:
        return _text(value)
    if "percentage" in key:
        return f"{n:.1f}%"
    if "count" in key:
        return number(int(n))
    if "ratio" in key or key == "fragmentation":
        return f"{n:.2f}"
    return size(n)


def _limit(key: str, value: Any) -> str:
    if key == "maxmemory" and _number(value) == 0:
        return "no limit"
    if key.startswith("used_memory") or key == "maxmemory":
        return size(_number(value))
    return _text(value)


def replication_detail(source: str, info: Any) -> Detail:
    rows = tuple((key, _text(value)) for key, value in _flat(_map(info)))
    return Detail(f"{source} · replication", (Section("INFO replication", ("field", "value"), rows),))


# ---- replies, whatever the protocol ---------------------------------------------------

def _map(reply: Any) -> dict[str, Any]:
    """A RESP3 map or a RESP2 flat list, with str keys."""
    if isinstance(reply, Mapping):
        return {_text(k): v for k, v in reply.items()}
    if isinstance(reply, (list, tuple)):
        return {_text(k): v for k, v in zip(reply[0::2], reply[1::2])}
    return {}


def _flat(fields: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested maps (MEMORY STATS's ``db.0``, INFO's ``slave0``) as dotted keys."""
    out: list[tuple[str, Any]] = []
    for key, value in fields.items():
        nested = _map(value) if isinstance(value, (Mapping, list, tuple)) else None
        if nested:
            out += _flat(nested, f"{prefix}{key} ")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(_text(value))
    except ValueError:
        return None


def _int(fields: Mapping[str, str], key: str) -> int:
    value = fields.get(key, "")
    return int(value) if value.lstrip("-").isdigit() else 0


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
