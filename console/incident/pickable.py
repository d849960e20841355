"""Values a step asks for, offered from what the panes show.

A playbook step that needs ``{pid}``, ``{namespace}``, ``{deployment}``,
``{pod}`` or ``{database}`` is answered at 3 a.m. by copying a number off
another pane; here the latest readings offer them, each with what it is
(a session's user, application and query; a pod's phase and restarts), and
free text still works. Nothing is read for this: only the readings the
panes already hold.
"""

from __future__ import annotations

from typing import Iterator, Mapping

from console.readings import duration
from console.vocabulary import Snapshot

Choice = tuple[str, str]  # (the value, what it is)
MAX_CHOICES = 200

# The names steps use for the same thing.
SESSION_FIELDS = {"database": "database", "db": "database", "datname": "database", "user": "user",
                  "usename": "user", "application_name": "application", "application": "application",
                  "app": "application", "client": "client", "client_addr": "client"}


def choices(name: str, latest: Mapping[tuple[str, str], Snapshot]) -> list[Choice]:
    """What the panes show that could be ``{name}``, most telling first, each once."""
    wanted = name.lower()
    found: dict[str, str] = {}
    for value, what in _candidates(wanted, latest):
        if value and value not in found:
            found[value] = what
        if len(found) >= MAX_CHOICES:
            break
    return list(found.items())


def _candidates(name: str, latest: Mapping[tuple[str, str], Snapshot]) -> Iterator[Choice]:
    for (kind, source), snap in sorted(latest.items()):
        if not snap.reachable:
            continue
        if kind == "postgres":
            yield from _sessions(name, source, snap)
        elif kind == "kubernetes":
            yield from _kubernetes(name, source, snap)


def _sessions(name: str, source: str, snap: Snapshot) -> Iterator[Choice]:
    sessions = snap.details.get("sessions", ())
    if name in ("pid", "backend", "backend_pid"):
        for s in sessions:
            age = s.get("xact_s") if str(s.get("state", "")).startswith("idle in") else s.get("query_s")
            yield (str(s.get("pid")), f"{source} · {s.get('user') or '?'} · {s.get('application') or '-'} · "
                   f"{s.get('state')} {duration(age)} · {(s.get('query') or '')[:80]}")
    elif name in SESSION_FIELDS:
        field = SESSION_FIELDS[name]
        counts: dict[str, int] = {}
        for s in sessions:
            value = str(s.get(field) or "")
            counts[value] = counts.get(value, 0) + 1
        for value, count in sorted(counts.items(), key=lambda kv: -kv[1]):
            yield value, f"{source} · {count} session{'s' if count != 1 else ''}"


def _kubernetes(name: str, namespace: str, snap: Snapshot) -> Iterator[Choice]:
    if name in ("namespace", "ns"):
        yield namespace, f"{len(snap.details.get('workloads', ()))} workloads"
    elif name in ("deployment", "statefulset", "workload"):
        for w in snap.details.get("workloads", ()):
            if name == "workload" or str(w.get("kind", "")).lower() == name:
                yield (str(w.get("name")), f"{namespace} · {w.get('ready', 0)}/{w.get('desired', 0)} ready · "
                       f"{w.get('restarts', 0)} restarts")
    elif name in ("pod", "pod_name"):
        for p in sorted(snap.details.get("pods", ()), key=lambda p: -(p.get("restarts") or 0)):
            yield (str(p.get("name")), f"{namespace} · {p.get('phase')} · {p.get('ready')} ready · "
                   f"{p.get('restarts')} restarts · {p.get('reason') or ''}")
