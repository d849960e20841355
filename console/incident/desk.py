"""The app's side of playbooks: which is active, what is suggested, and
turning a step request into a tick, a probe, a command or an action."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from console import paths
from console.playbooks import Playbook, load_playbooks
from console.vocabulary import Snapshot

SHIPPED = paths.shipped_playbooks()


def playbook_dirs(config) -> list[Path]:
    """The config's directories, else the playbooks shipped with the console."""
    return list(config.playbooks) or ([SHIPPED] if SHIPPED.is_dir() else [])


class PlaybookDesk:
    def __init__(self, config) -> None:
        self.playbooks, self.problems = load_playbooks(playbook_dirs(config), config)
        self.by_id = {p.id: p for p in self.playbooks}
        self.suggested: set[str] = set()

    def active(self, incident) -> Playbook | None:
        """The playbook most recently started in the journal."""
        for playbook_id in reversed(incident.playbooks if incident is not None else ()):
            if playbook_id in self.by_id:
                return self.by_id[playbook_id]
        return None

    def remember(self, events) -> None:
        """What the journal says was suggested already (a restarted console
        must not suggest it again)."""
        self.suggested |= {str(e.data.get("playbook")) for e in events if e.kind == "playbook.suggested"}

    def newly_suggested(self, snapshots: Iterable[Snapshot], started: Iterable[str] = ()) -> list[Playbook]:
        """Playbooks whose conditions now hold, suggested once per incident:
        never again once suggested (a flapping metric re-suggested the same
        playbook eight times in eight minutes), nor once ``started``."""
        readings = tuple(snapshots)
        done = self.suggested | set(started)
        fresh = [p for p in self.playbooks if p.id not in done and p.suggest_when and p.suggested_by(readings)]
        self.suggested |= {p.id for p in fresh}
        return sorted(fresh, key=lambda p: p.id)

    @staticmethod
    def due_auto_ticks(playbook: Playbook, incident, snapshots: Iterable[Snapshot]) -> list[str]:
        """Steps whose condition holds in live data and are not ticked yet."""
        readings = tuple(snapshots)
        return [s.id for s in playbook.steps
                if s.condition is not None and not incident.ticked(playbook.id, s.id)
                and s.condition.holds(readings) is True]
