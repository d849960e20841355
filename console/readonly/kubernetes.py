"""Kubernetes probes: list one kind of object, or read one by name."""

from __future__ import annotations

import re

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
