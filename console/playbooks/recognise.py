"""What a runbook's code block is: a probe, an action, or a command to copy.

A block becomes a probe only when it is one read-only request the console can
make itself against a source kind (one SQL statement, one ``redis-cli`` read,
one ``kubectl get``, one plain ``curl`` GET, PromQL); an action only when it is
one ``kubectl rollout undo/restart``, ``kubectl scale``, ``redis-cli FLUSHDB``
or a ``pg_terminate_backend`` whose WHERE clause says nothing we cannot
express. Everything else is a command shown for copying, never marked
runnable: an importer cannot judge what is harmless.

The block's text is kept byte for byte in ``query`` or ``command``.
"""

from __future__ import annotations

import re
import shlex
from typing import Any
from urllib.parse import parse_qs, urlsplit

from console.readonly import (KUBERNETES_READS, http_is_read_only, redis_is_read_only,
                                        sql_is_read_only)

_SQL_FIRST = re.compile(
    r"^\s*\(?\s*(select|with|show|explain|insert|update|delete|merge|alter|create|drop|truncate|grant|"
    r"revoke|copy|vacuum|analyze|reindex|set|begin|commit|rollback|do|call|lock)\b", re.I)
_SHELL_LANGS = {"", "bash", "sh", "shell", "console", "zsh", "shell-session", "text", "plain", "none"}
_SHELL_OPERATORS = re.compile(r"[|;&<>`]|\$\(")
_KUBE_RESOURCES = {
    "pod": "pods", "pods": "pods", "po": "pods", "deployment": "deployments", "deployments": "deployments",
    "deploy": "deployments", "statefulset": "statefulsets", "statefulsets": "statefulsets", "sts": "statefulsets",
    "event": "events", "events": "events", "ev": "events", "node": "nodes", "nodes": "nodes", "no": "nodes",
    "service": "services", "services": "services", "svc": "services", "ingress": "ingresses",
    "ingresses": "ingresses", "ing": "ingresses", "replicaset": "replicasets", "replicasets": "replicasets",
    "rs": "replicasets", "daemonset": "daemonsets", "daemonsets": "daemonsets", "ds": "daemonsets",
    "job": "jobs", "jobs": "jobs", "endpoints": "endpoints", "ep": "endpoints",
}
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_INTERVAL = re.compile(r"^(\d+)\s*(second|sec|minute|min|hour|hr|day)s?$", re.I)
_SECONDS = {"second": 1, "sec": 1, "minute": 60, "min": 60, "hour": 3600, "hr": 3600, "day": 86400}


def recognise(code: str, lang: str = "") -> dict[str, Any]:
    """Step fields (kind, probe, query, source, command, action, params) for one block."""
    lang = (lang.split() or [""])[0].lower().strip("{}.")
    if lang == "promql":
        return {"kind": "probe", "probe": "promql", "source": "prometheus", "query": code}
    if lang in ("sql", "postgresql", "psql", "pgsql", "postgres"):
        return _from_sql(code, code)
    if lang in _SHELL_LANGS and _is_sql(code):
        # Shell-style comments in a "bash" block of SQL are not SQL.
        sql = "\n".join(ln for ln in code.splitlines() if not ln.lstrip().startswith("#")).strip("\n")
        return _from_sql(sql, code)
    if lang in _SHELL_LANGS:
        line = _one_command(code)
        if line is not None:
            found = _from_shell(line, code)
            if found:
                return found
    return {"kind": "command", "command": code}


def _meaningful(code: str, comment: str = "#") -> list[str]:
    return [ln for ln in code.splitlines() if ln.strip() and not ln.lstrip().startswith(comment)]


def _is_sql(code: str) -> bool:
    lines = _meaningful(code, "--")
    lines = [ln for ln in lines if not ln.lstrip().startswith("#")]
    return bool(lines) and bool(_SQL_FIRST.match(lines[0])) and not any(
        re.match(r"\s*(psql|kubectl|docker|redis-cli|curl|sudo|export|cd|echo)\b", ln) for ln in lines)


def _one_command(code: str) -> str | None:
    """The block's only command, continuations joined, or None.

    A line continues after a trailing backslash, or while a quote is open
    (``psql -c "`` followed by SQL on the next lines).
    """
    commands: list[str] = []
    open_line = ""
    for ln in _meaningful(code):
        open_line = f"{open_line}\n{ln}" if open_line else ln.strip()
        if open_line.endswith("\\"):
            open_line = open_line[:-1].rstrip() + " "
            continue
        if _words(open_line) is None:
            continue  # an unclosed quote: the command goes on
        commands.append(open_line.strip())
        open_line = ""
    if open_line or len(commands) != 1:
        return None
    return commands[0]


def _words(line: str) -> list[str] | None:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return None


def _from_sql(sql: str, original: str, shell_line: bool = False) -> dict[str, Any]:
    if sql_is_read_only(sql) is None:
        out: dict[str, Any] = {"kind": "probe", "probe": "sql", "source": "postgres", "query": sql}
        if original != sql:
            out["command"] = original
        return out
    action = _terminate_action(sql)
    if action is not None:
        return {"kind": "action", "action": "terminate_backend", "source": "postgres", "params": action,
                "command": original}
    # Mutating, or not one statement pglast can read: SQL to copy into a
    # database client, never a shell command (a ``psql -c`` line stays a
    # shell command to copy: its text is shell).
    if shell_line:
        return {"kind": "command", "command": original}
    return {"kind": "command", "command": original, "sql": True}


def _terminate_action(sql: str) -> dict[str, Any] | None:
    """Params for ``SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ...``.

    Only a WHERE clause made of ``pid = <PID>``, ``state = '...'`` and
    ``state_change < now() - interval '...'`` is understood; anything else
    could select other sessions than the runbook meant, so it stays a command.
    """
    m = re.fullmatch(r"\s*select\s+pg_terminate_backend\s*\(\s*pid\s*\)\s+from\s+pg_stat_activity\s+"
                     r"where\s+(.+?)\s*;?\s*", sql, re.I | re.S)
    if not m:
        return None
    params: dict[str, Any] = {}
    for predicate in re.split(r"\s+and\s+", m.group(1), flags=re.I):
        p = predicate.strip()
        if re.fullmatch(r"pid\s*=\s*(<\s*pid\s*>|\{pid\}|:pid)", p, re.I):
            params["pid"] = "{pid}"
        elif (s := re.fullmatch(r"state\s*=\s*'([a-z ]+)'", p, re.I)):
            params["state"] = s.group(1)
        elif (t := re.fullmatch(r"state_change\s*<\s*now\(\)\s*-\s*interval\s*'([^']+)'", p, re.I)) \
                and _INTERVAL.match(t.group(1).strip()):
            n, unit = _INTERVAL.match(t.group(1).strip()).groups()
            params["older_than_s"] = int(n) * _SECONDS[unit.lower()]
        else:
            return None
    if "pid" not in params and "state" not in params:
        return None
    return params


def _from_shell(line: str, original: str) -> dict[str, Any] | None:
    psql = re.search(r"(?:^|\s)psql\b.*?\s-c\s+(\"(?:[^\"\\]|\\.)*\"|'[^']*')\s*$", line, re.S)
    if psql and not _SHELL_OPERATORS.search(line[:psql.start(1)]):
        sql = psql.group(1)[1:-1].strip()
        if psql.group(1)[0] == '"':
            sql = sql.replace('\\"', '"')
        if sql and "$" not in sql:
            return _from_sql(sql, original, shell_line=True)
        return None
    if _SHELL_OPERATORS.search(line):
        return None
    words = _words(line)
    if not words:
        return None
    if "redis-cli" in words:
        return _from_redis_cli(words[words.index("redis-cli") + 1:], original)
    if words[0] == "kubectl":
        return _from_kubectl(words[1:], original)
    if words[0] == "curl":
        return _from_curl(words[1:], original)
    return None


def _from_redis_cli(words: list[str], original: str) -> dict[str, Any] | None:
    with_value = {"-h", "-p", "-n", "-a", "-u", "--user", "--pass"}
    i = 0
    while i < len(words) and words[i].startswith("-"):
        i += 2 if words[i] in with_value else 1
    argv = words[i:]
    if not argv or any("$" in w for w in argv):
        return None
    if redis_is_read_only(argv) is None:
        return {"kind": "probe", "probe": "redis", "source": "redis", "query": shlex.join(argv),
                "command": original}
    if argv[0].lower() == "flushdb" and len(argv) <= 2:
        return {"kind": "action", "action": "flush_db", "source": "redis", "command": original}
    return None


def _kube_flags(words: list[str], allowed: set[str]) -> tuple[list[str], dict[str, str]] | None:
    """Positional words and ``--flag=value`` / ``-n value`` flags, or None on an unknown flag."""
    positional, flags = [], {}
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("-"):
            name, eq, value = w.partition("=")
            if name not in allowed:
                return None
            if not eq and name in ("-n", "--namespace", "--replicas", "--to-revision", "--sort-by"):
                if i + 1 >= len(words):
                    return None
                value, i = words[i + 1], i + 1
            flags[name] = value
        else:
            positional.append(w)
        i += 1
    return positional, flags


def _kube_target(positional: list[str]) -> tuple[str, str] | None:
    if len(positional) == 1 and "/" in positional[0]:
        kind, _, name = positional[0].partition("/")
    elif len(positional) == 2:
        kind, name = positional
    else:
        return None
    kind = {"deploy": "deployment", "deployments": "deployment", "deployment": "deployment",
            "sts": "statefulset", "statefulset": "statefulset", "statefulsets": "statefulset"}.get(kind.lower())
    if kind is None or not _K8S_NAME.fullmatch(name):
        return None
    return kind, name


def _from_kubectl(words: list[str], original: str) -> dict[str, Any] | None:
    if any("$" in w or "<" in w for w in words):
        return None
    if words[:2] in (["rollout", "undo"], ["rollout", "restart"]) or words[:1] == ["scale"]:
        verb = "scale" if words[0] == "scale" else f"rollout_{words[1]}"
        parsed = _kube_flags(words[1 if verb == "scale" else 2:],
                             {"-n", "--namespace", "--replicas", "--to-revision"})
        target = parsed and _kube_target(parsed[0])
        if not target:
            return None
        kind, name = target
        flags = parsed[1]
        if verb == "rollout_undo" and kind != "deployment":
            return None
        params: dict[str, Any] = {kind: name}
        if "-n" in flags or "--namespace" in flags:
            namespace = flags.get("-n") or flags.get("--namespace") or ""
            if not _K8S_NAME.fullmatch(namespace):
                return None
            params["namespace"] = namespace
        if verb == "scale":
            if not flags.get("--replicas", "").isdigit():
                return None
            params["replicas"] = int(flags["--replicas"])
        if verb == "rollout_undo" and "--to-revision" in flags:
            if not flags["--to-revision"].isdigit():
                return None
            params["to_revision"] = int(flags["--to-revision"])
        return {"kind": "action", "action": verb, "source": "kubernetes", "params": params, "command": original}
    if words[:1] == ["get"]:
        parsed = _kube_flags(words[1:], {"-n", "--namespace", "-A", "--all-namespaces", "--sort-by"})
        if not parsed or len(parsed[0]) != 1:
            return None
        resource = _KUBE_RESOURCES.get(parsed[0][0].lower())
        if resource in KUBERNETES_READS:
            return {"kind": "probe", "probe": "kubernetes", "source": "kubernetes", "query": resource,
                    "command": original}
    return None


def _from_curl(words: list[str], original: str) -> dict[str, Any] | None:
    urls = [w for w in words if not w.startswith("-")]
    flags = [w for w in words if w.startswith("-")]
    quiet = re.compile(r"-[fsSILiv]+|--(fail|silent|show-error|head|location|include)")
    if len(urls) != 1 or not all(quiet.fullmatch(f) for f in flags) or "$" in urls[0] or "<" in urls[0]:
        return None
    url = urls[0]
    if http_is_read_only(url) is not None or not url.lower().startswith(("http://", "https://")):
        return None
    parts = urlsplit(url)
    if parts.path.rstrip("/").endswith("/api/v1/query"):
        query = parse_qs(parts.query).get("query")
        if query and query[0].strip():
            return {"kind": "probe", "probe": "promql", "source": "prometheus", "query": query[0],
                    "command": original}
    return {"kind": "probe", "probe": "http", "query": url, "command": original}
