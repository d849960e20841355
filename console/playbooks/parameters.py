"""A runbook's placeholders (``$NAMESPACE``, ``${NAMESPACE}``, ``<pod-name>``,
``<PID>``, ``PAGE_ID``) as a step's ``{name}`` parameters.

The runner asks for each ``{name}`` (offering what the panes show for pid,
namespace, deployment, pod ...) and passes the value as data, never as shell
text (:mod:`console.playbooks.shell`). Only what looks like a placeholder is
one: an UPPER_CASE ``$VARIABLE`` that the block never assigns and that is no
well-known environment variable or a secret (``$API_TOKEN``,
``$DATABASE_URL``: read from the environment, never typed), an ``<angle-bracketed>`` name, and a bare
UPPER_SNAKE word ending in what a placeholder names (``PAGE_ID``,
``POD_NAME``). Lower-case ``$p`` of a loop, ``$HOME``, comment lines and
anything the block sets itself are left alone, byte for byte.
"""

from __future__ import annotations

import re

from console.playbooks.model import TEMPLATE

# Set by the shell or the login, not by whoever wrote the runbook.
_ENVIRONMENT = frozenset(
    "HOME PATH USER LOGNAME PWD OLDPWD SHELL TERM EDITOR VISUAL PAGER LANG LC_ALL TMPDIR TMP HOSTNAME UID EUID "
    "PPID RANDOM SECONDS LINENO IFS PS1 PS2 OPTARG OPTIND REPLY BASH BASH_SOURCE BASHPID FUNCNAME PIPESTATUS "
    "KUBECONFIG DISPLAY SSH_AUTH_SOCK XDG_CONFIG_HOME GOPATH JAVA_HOME "
    # SQL's own words that look like placeholders.
    "CURRENT_USER SESSION_USER SYSTEM_USER CURRENT_ROLE CURRENT_CATALOG".split())
# Secrets and connection strings come from the environment: asking for them
# would show them on screen and write them to the journal.
_SECRET = re.compile(r"SECRET|PASSW|PASS$|TOKEN|KEY$|KEYS$|CREDENTIAL|AUTH|DSN|DATABASE_URL|CONN(?:ECTION)?_?(?:STR|URI|URL)|"
                     r"_URI$|PRIVATE")
# The last part of a bare UPPER_SNAKE word that names something to fill in.
_BARE_ENDS = ("ID", "NAME", "NAMESPACE", "NS", "POD", "PID", "HOST", "HOSTNAME", "PORT", "URL", "DB", "DATABASE",
              "USER", "DEPLOYMENT", "STATEFULSET", "SERVICE", "REGION", "CLUSTER", "NODE", "TOPIC", "BUCKET",
              "TOKEN", "KEY", "SLOT", "TABLE", "INDEX", "VERSION", "REVISION", "TAG", "IP", "ADDR", "ADDRESS")
_DOLLAR = re.compile(r"\$(?:\{([A-Z][A-Z0-9_]*)\}|([A-Z][A-Z0-9_]*)\b)")
_ANGLE = re.compile(r"(?<![<\w])<([A-Za-z][A-Za-z0-9_-]*)>(?![>\w])")
_BARE = re.compile(r"(?<![\w$.{-])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?![\w(}-])")
_ASSIGNED = (
    re.compile(r"(?:^|[\s;&|(`])(?:(?:export|local|readonly|declare|typeset)\s+(?:-\w+\s+)*)?([A-Za-z_]\w*)\+?="),
    re.compile(r"\bfor\s+([A-Za-z_]\w*)\s+in\b"),
    re.compile(r"\bread\s+(?:-\w+\s+(?:\S+\s+)?)*([A-Za-z_][\w\s]*)"),
    re.compile(r"\bexport\s+([A-Za-z_]\w*)\s*(?:$|[;&|])", re.M),
)
# What the panes offer (console/incident/pickable.py), by the names runbooks use.
_SYNONYMS = {
    "pod": "pod", "pod_name": "pod", "podname": "pod", "pod_id": "pod",
    "namespace": "namespace", "ns": "namespace", "namespace_name": "namespace", "k8s_namespace": "namespace",
    "kube_namespace": "namespace",
    "pid": "pid", "backend_pid": "pid", "process_id": "pid",
    "deployment": "deployment", "deployment_name": "deployment", "deploy": "deployment",
    "statefulset": "statefulset", "statefulset_name": "statefulset", "sts": "statefulset",
    "database": "database", "db": "database", "db_name": "database", "dbname": "database",
    "database_name": "database", "datname": "database",
    "user": "user", "username": "user", "db_user": "user", "usename": "user",
    "application_name": "application_name", "app_name": "application_name",
}


def parameter_name(spelling: str) -> str | None:
    """``$NAMESPACE`` -> ``namespace``, ``<pod-name>`` -> ``pod``, ``PAGE_ID`` -> ``page_id``; None if unusable."""
    core = spelling.strip("${}<>")
    name = re.sub(r"[^a-z0-9]+", "_", core.lower()).strip("_")
    name = re.sub(r"^(?:your|my|the)_", "", name)
    name = _SYNONYMS.get(name, name)
    return name if name and TEMPLATE.fullmatch(f"{{{name}}}") else None


def assigned(code: str) -> set[str]:
    """Names the block sets itself (``X=``, ``export X``, ``for x in``, ``read x y``)."""
    names: set[str] = set()
    for pattern in _ASSIGNED:
        for m in pattern.finditer(code):
            names.update(m.group(1).split())
    return names


def parameterise(code: str) -> tuple[str, dict[str, str | list[str]]]:
    """``code`` with its placeholders as ``{name}``, and how each ``{name}`` was written.

    Unchanged (and an empty mapping) when it holds no placeholder.
    """
    own = assigned(code)
    written: dict[str, list[str]] = {}
    out_lines = []
    for line in code.split("\n"):
        if line.lstrip().startswith("#") or not line.strip():
            out_lines.append(line)
            continue
        out_lines.append(_line(line, own, written))
    if not written:
        return code, {}
    # One spelling per name, or (written differently) the spelling of each occurrence in order.
    mapping: dict[str, str | list[str]] = {n: s[0] if len(set(s)) == 1 else s for n, s in written.items()}
    command = "\n".join(out_lines)
    if restore(command, mapping) != code:  # a {name} the runbook wrote itself: leave it all as written
        return code, {}
    return command, mapping


def _line(line: str, own: set[str], written: dict[str, list[str]]) -> str:
    def note(spelling: str, name: str | None) -> str | None:
        if name is None:
            return None
        written.setdefault(name, []).append(spelling)
        return f"{{{name}}}"

    def dollar(m: re.Match) -> str:
        var = m.group(1) or m.group(2)
        if var in own or var in _ENVIRONMENT or var.startswith(("BASH", "KUBE", "XDG_", "LC_")) or len(var) < 2 \
                or _SECRET.search(var):
            return m.group(0)
        return note(m.group(0), parameter_name(var)) or m.group(0)

    def angle(m: re.Match) -> str:
        return note(m.group(0), parameter_name(m.group(1))) or m.group(0)

    def bare(m: re.Match) -> str:
        word = m.group(1)
        ends = word.rsplit("_", 1)[-1]
        if word in own or word in _ENVIRONMENT or ends not in _BARE_ENDS or line[m.end():m.end() + 1] == "=" \
                or _SECRET.search(word):
            return m.group(0)
        return note(word, parameter_name(word)) or m.group(0)

    line = _DOLLAR.sub(dollar, line)
    line = _ANGLE.sub(angle, line)
    # Bare words only outside what was just made a {name}.
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", line)
    return "".join(p if i % 2 else _BARE.sub(bare, p) for i, p in enumerate(parts))


def restore(command: str, written: dict) -> str:
    """The command as the runbook wrote it: :func:`parameterise` undone, byte for byte."""
    seen: dict[str, int] = {}

    def back(m: re.Match) -> str:
        name = m.group(1)
        spelling = written.get(name)
        if isinstance(spelling, str):
            return spelling
        if isinstance(spelling, (list, tuple)):
            n = seen.get(name, 0)
            seen[name] = n + 1
            if n < len(spelling):
                return spelling[n]
        return m.group(0)
    return TEMPLATE.sub(back, command)
