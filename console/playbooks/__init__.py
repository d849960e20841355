"""Playbooks: YAML checklists whose steps run against live systems.

The model and loader are imported eagerly (the console loads playbooks at
start-up); the markdown importer pulls in markdown-it and ftfy, so it is
imported only when asked for (``import-runbook``).
"""

from __future__ import annotations

from typing import Any

from console.playbooks.load import check, load_playbooks
from console.playbooks.model import ACTIONS, PROBE_KINDS, SOURCE_KINDS, STEP_KINDS, Condition, Playbook, Step

__all__ = ["ACTIONS", "PROBE_KINDS", "SOURCE_KINDS", "STEP_KINDS", "Condition", "Playbook", "Step",
           "check", "load_playbooks", "import_runbook", "to_yaml"]


def __getattr__(name: str) -> Any:
    if name in ("import_runbook", "to_yaml"):
        from console.playbooks import importer
        return getattr(importer, name)
    raise AttributeError(name)
