"""Redis probes: read commands only, and none that hands back a secret.

An allow-list of commands, and of subcommands for the commands that both
read and write (CONFIG GET, not CONFIG SET). Read with an attacker's eye:

- CONFIG GET takes no glob (``*`` returns every parameter, requirepass
  included) and no parameter that holds a credential;
- no scripts (EVAL, EVAL_RO, FCALL, FUNCTION, SCRIPT): a script is a program,
  not a read, and read-only scripts can still loop forever;
- no ACL, AUTH or HELLO (they show or change who is connected), no MODULE,
  no DEBUG, no MONITOR, no blocking or storing variants (BLPOP, SORT ... STORE).
"""

from __future__ import annotations

import re
import shlex
from typing import Sequence

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
    # CLIENT LIST/INFO show the last command's name, never its arguments.
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
    "eval": "EVAL runs a script; probes run read commands only",
    "eval_ro": "EVAL_RO runs a script; probes run read commands only",
    "evalsha": "EVALSHA runs a script; probes run read commands only",
    "evalsha_ro": "EVALSHA_RO runs a script; probes run read commands only",
    "fcall": "FCALL runs a function; probes run read commands only",
    "fcall_ro": "FCALL_RO runs a function; probes run read commands only",
    "acl": "ACL shows or changes users and their passwords; it is not a probe",
    "auth": "AUTH changes who the probe connection is; it is not a probe",
    "hello": "HELLO can authenticate and change the protocol; it is not a probe",
}
# Parameters whose value is a credential, found by the words such names use
# (requirepass, masterauth, Valkey's primaryauth, tls-key-file-pass, and any
# future *-pass); the replication user names go with their passwords.
_SECRET_WORDS = re.compile(r"pass|auth|secret|token|cred")
_SECRET_NAMES = frozenset({"masteruser", "primaryuser"})
_CONFIG_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def redis_is_read_only(argv: Sequence[str]) -> str | None:
    """``None`` when ``argv`` (a command and its arguments) only reads and reveals no secret."""
    words = [str(a) for a in argv]
    if not words or not words[0].strip():
        return "empty Redis command"
    name = words[0].lower()
    if name in _REDIS_WHY_NOT:
        return _REDIS_WHY_NOT[name]
    if name in REDIS_READS:
        return None
    allowed = REDIS_READ_SUBCOMMANDS.get(name)
    if allowed is None:
        return f"{name.upper()} is not a read command (Redis probes run read commands only)"
    sub = words[1].lower() if len(words) > 1 else ""
    if sub not in allowed:
        shown = f"{name} {sub}".strip().upper()
        return f"{shown} is not a read command (Redis probes may use {name.upper()} " \
               f"{'/'.join(sorted(s.upper() for s in allowed))})"
    if name == "config":
        return _config_get_refused(words[2:])
    return None


def _config_get_refused(parameters: list[str]) -> str | None:
    if not parameters:
        return "CONFIG GET needs a parameter name"
    for parameter in parameters:
        lowered = parameter.lower()
        if not _CONFIG_NAME.match(lowered):
            return f"CONFIG GET {parameter!r}: name one parameter exactly (a pattern would include passwords)"
        if _SECRET_WORDS.search(lowered) or lowered in _SECRET_NAMES:
            return f"CONFIG GET {lowered}: may hold a credential; probes never read secrets"
    return None


def redis_argv(line: str) -> list[str] | str:
    """A Redis command line split like redis-cli does, or why it cannot be."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        return f"cannot split the Redis command: {exc}"
