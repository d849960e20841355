"""What a probe may ask: reads only.

One set of rules serves ``incident-console check`` (refuse a playbook whose
probe would write) and the probe runner (refuse it again at run time, and then
run SQL in a read-only transaction anyway). Each function returns ``None``
when the probe is fine, else the reason in words an operator can act on.

The SQL rule is deliberately narrow: one SELECT / WITH / SHOW / EXPLAIN
statement, with comments, string literals and quoted identifiers removed
before looking for anything that writes, so neither ``/* DELETE */`` nor a
``'DROP'`` literal can hide or fake a keyword.
"""

from __future__ import annotations

import re
import shlex
from typing import Sequence

SQL_STARTS = ("select", "with", "show", "explain")
# Keywords that change data, schema or privileges. Other statements (SET,
# LOCK, VACUUM ...) cannot start a probe; inside a SELECT or WITH these are the
# ways to write: a data-modifying CTE, SELECT INTO, FOR UPDATE.
_SQL_WRITES = re.compile(
    r"\b(insert|update|delete|merge|alter|drop|truncate|create|grant|revoke|copy|call|do|into|"
    r"vacuum|reindex)\b")
# Row locks taken by SELECT ... FOR SHARE / FOR KEY SHARE (FOR UPDATE is caught above).
_SQL_ROW_LOCK = re.compile(r"\bfor\s+(?:key\s+)?share\b")
# Functions that act on the server even inside a read-only transaction
# (pg_terminate_backend works there), or that run other SQL we cannot see.
_SQL_FUNCTIONS = re.compile(
    r"\b(pg_terminate_backend|pg_cancel_backend|set_config|pg_reload_conf|pg_ctl_reload|nextval|setval|"
    r"pg_(?:try_)?advisory\w*|pg_rotate_logfile\w*|pg_switch_(?:wal|xlog)|pg_promote|"
    r"pg_create_restore_point|pg_stat_reset\w*|pg_\w*replication_slot\w*|pg_replication_origin\w*|"
    r"pg_logical_emit_message|pg_notify|pg_file_\w+|lo_\w+|dblink\w*|query_to_xml\w*|"
    r"pg_import_system_collations)\b")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def sql_is_read_only(text: str) -> str | None:
    """``None`` when ``text`` is one read-only statement, else why not."""
    cleaned = _without_literals(text)
    if isinstance(cleaned, _Refusal):
        return cleaned.reason
    code, identifiers = cleaned
    statements = [s for s in code.split(";") if s.strip()]
    if not statements:
        return "empty SQL"
    if len(statements) > 1:
        return "more than one SQL statement (a probe runs exactly one)"
    statement = statements[0].lower()
    first = re.match(r"[\s(]*([a-z_]+)", statement)
    word = first.group(1) if first else statement.strip()[:20]
    if word not in SQL_STARTS:
        return f"SQL probes must be SELECT, WITH, SHOW or EXPLAIN, not {word.upper() or '?'}"
    if word == "explain" and re.search(r"\banaly[sz]e\b", statement):
        return "EXPLAIN ANALYZE runs the statement; use EXPLAIN without ANALYZE"
    found = _SQL_WRITES.search(statement) or _SQL_ROW_LOCK.search(statement)
    if found:
        return f"SQL probe may write: {' '.join(found.group(0).upper().split())} (probes are read-only)"
    for name in [statement, *identifiers]:
        found = _SQL_FUNCTIONS.search(name)
        if found:
            return f"SQL probe calls {found.group(1)}(), which changes the server (use an action)"
    return None


class _Refusal:
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _without_literals(text: str) -> tuple[str, list[str]] | _Refusal:
    """SQL with comments, strings and quoted identifiers blanked out.

    Returns the remaining code and the contents of quoted identifiers (which
    can name a function: ``"pg_terminate_backend"(pid)``).
    """
    out: list[str] = []
    identifiers: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        two = text[i:i + 2]
        if two == "--":
            end = text.find("\n", i)
            i = n if end < 0 else end
            out.append(" ")
        elif two == "/*":
            end = _comment_end(text, i)
            if end < 0:
                return _Refusal("unterminated /* comment in SQL")
            i = end
            out.append(" ")
        elif c == "'":
            escapes = i > 0 and text[i - 1] in "eE" and (i < 2 or not _word_char(text[i - 2]))
            end = _string_end(text, i, escapes)
            if end < 0:
                return _Refusal("unterminated string literal in SQL")
            i = end
            out.append(" '' ")
        elif c == '"':
            if i >= 2 and text[i - 2:i].upper() == "U&":
                return _Refusal("unicode-escaped identifiers (U&\"...\") are not allowed in probes")
            end = _string_end(text, i, False, quote='"')
            if end < 0:
                return _Refusal("unterminated quoted identifier in SQL")
            identifiers.append(text[i + 1:end - 1].replace('""', '"').lower())
            i = end
            out.append(" ident ")
        elif c == "$" and (i == 0 or not _word_char(text[i - 1])) and _DOLLAR_TAG.match(text, i):
            tag = _DOLLAR_TAG.match(text, i).group(0)
            end = text.find(tag, i + len(tag))
            if end < 0:
                return _Refusal(f"unterminated {tag} quote in SQL")
            i = end + len(tag)
            out.append(" '' ")
        else:
            out.append(c)
            i += 1
    return "".join(out), identifiers


def _word_char(c: str) -> bool:
    return c.isalnum() or c in "_$"


def _comment_end(text: str, start: int) -> int:
    # PostgreSQL block comments nest.
    depth, i = 0, start
    while i < len(text):
        two = text[i:i + 2]
        if two == "/*":
            depth += 1
            i += 2
        elif two == "*/":
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return -1


def _string_end(text: str, start: int, escapes: bool, quote: str = "'") -> int:
    i = start + 1
    while i < len(text):
        c = text[i]
        if escapes and c == "\\":
            i += 2
            continue
        if c == quote:
            if text[i + 1:i + 2] == quote:  # doubled quote stands for itself
                i += 2
                continue
            return i + 1
        i += 1
    return -1


# ---- Redis -------------------------------------------------------------------

REDIS_READS = frozenset({
    "ping", "info", "dbsize", "time", "lastsave", "role", "echo",
    "ttl", "pttl", "expiretime", "pexpiretime", "type", "exists",
    "get", "mget", "strlen", "getrange", "getbit", "bitcount", "bitpos",
    "hget", "hmget", "hgetall", "hkeys", "hvals", "hlen", "hexists", "hstrlen", "hscan", "hrandfield",
    "llen", "lrange", "lindex", "lpos",
    "scard", "sismember", "smismember", "smembers", "srandmember", "sscan", "sinter", "sunion", "sdiff",
    "sintercard",
    "zcard", "zscore", "zmscore", "zrange", "zrangebyscore", "zrevrange", "zrevrangebyscore",
    "zrangebylex", "zrevrangebylex", "zrank", "zrevrank", "zcount", "zlexcount", "zscan", "zrandmember",
    "xlen", "xrange", "xrevrange", "xpending",
    "geopos", "geodist", "geohash",
    "scan",
})
# Commands that are reads only with some subcommands (CONFIG GET, not CONFIG SET).
REDIS_READ_SUBCOMMANDS = {
    "client": frozenset({"list", "info", "getname", "id"}),
    "slowlog": frozenset({"get", "len"}),
    "memory": frozenset({"stats", "usage", "doctor", "malloc-stats"}),
    "config": frozenset({"get"}),
    "latency": frozenset({"latest", "history", "doctor", "histogram"}),
    "cluster": frozenset({"info", "nodes", "slots", "shards", "myid", "keyslot", "countkeysinslot", "links"}),
    "object": frozenset({"encoding", "freq", "idletime", "refcount"}),
    "xinfo": frozenset({"stream", "groups", "consumers"}),
    "pubsub": frozenset({"channels", "numsub", "numpat", "shardchannels", "shardnumsub"}),
    "command": frozenset({"count", "info", "docs", "list"}),
}
_REDIS_WHY_NOT = {
    "keys": "KEYS blocks the server while it walks every key; use SCAN",
    "monitor": "MONITOR streams forever; it is not a probe",
    "debug": "DEBUG can stall or crash the server",
}


def redis_is_read_only(argv: Sequence[str]) -> str | None:
    """``None`` when ``argv`` (a command and its arguments) only reads."""
    words = [str(a) for a in argv]
    if not words or not words[0].strip():
        return "empty Redis command"
    name = words[0].lower()
    if name in _REDIS_WHY_NOT:
        return _REDIS_WHY_NOT[name]
    if name in REDIS_READS:
        return None
    allowed = REDIS_READ_SUBCOMMANDS.get(name)
    if allowed is not None:
        sub = words[1].lower() if len(words) > 1 else ""
        if sub in allowed:
            return None
        shown = f"{name} {sub}".strip().upper()
        return f"{shown} is not a read command (Redis probes may use {name.upper()} " \
               f"{'/'.join(sorted(s.upper() for s in allowed))})"
    return f"{name.upper()} is not a read command (Redis probes run read commands only)"


def redis_argv(line: str) -> list[str] | str:
    """A Redis command line split like redis-cli does, or why it cannot be."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        return f"cannot split the Redis command: {exc}"


# ---- HTTP and Kubernetes --------------------------------------------------------

_HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}


def http_request(query: str) -> tuple[str, str] | str:
    """``(method, path-or-URL)`` of an HTTP probe, or why it is not a GET.

    A query is a path on the probe's service (``/health``), an absolute URL,
    or either of those after ``GET``.
    """
    parts = query.split()
    if not parts:
        return "empty HTTP probe"
    method = "GET"
    if parts[0].upper() in _HTTP_METHODS:
        method = parts[0].upper()
        parts = parts[1:]
    if method not in ("GET", "HEAD"):
        return f"HTTP probes are GET only, not {method}"
    if len(parts) != 1:
        return "an HTTP probe is one path or URL (optionally after GET)"
    target = parts[0]
    if not (target.startswith("/") or re.match(r"https?://[^/\s]", target, re.I)):
        return f"HTTP probe target must be a path starting with / or an http(s) URL, not {target[:60]!r}"
    return method, target


def http_is_read_only(query: str) -> str | None:
    answer = http_request(query)
    return answer if isinstance(answer, str) else None


KUBERNETES_READS = ("pods", "deployments", "statefulsets", "replicasets", "daemonsets", "jobs",
                    "events", "nodes", "services", "ingresses", "endpoints")


def kubernetes_read(query: str) -> tuple[str, str | None] | str:
    """``(resource, name or None)`` of a Kubernetes probe like ``pods`` or ``deployments/api``."""
    text = query.strip()
    resource, _, name = text.partition("/")
    resource = resource.strip().lower()
    if resource not in KUBERNETES_READS:
        return f"Kubernetes probes read one of {', '.join(KUBERNETES_READS)}, not {text[:40]!r}"
    name = name.strip()
    if "/" in text and not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name):
        return f"not a Kubernetes object name: {name[:60]!r}"
    return resource, (name or None)


def kubernetes_is_read_only(query: str) -> str | None:
    answer = kubernetes_read(query)
    return answer if isinstance(answer, str) else None
