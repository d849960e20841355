"""The config's ``keymap:``: binding ids -> keys, checked without Textual.

Every ``Binding`` in the app and its panes has an id; the config rebinds one
by naming its id (``incident.note: ctrl+n``), which the app hands to
``App.set_keymap``. The ids are listed here so ``incident-console check``
can report an unknown id as ``path:line`` without importing the TUI; a test
keeps this list equal to the bindings the app really has.
"""

from __future__ import annotations

import re

BINDING_IDS = (
    "quit", "refresh", "palette", "help", "zoom", "filter", "pane.next", "pane.previous",
    "pane.services", "pane.errors", "pane.postgres", "pane.redis", "pane.playbook", "pane.timeline",
    "playbook.choose", "incident.note", "incident.declare", "incident.status", "incident.acknowledge",
    "incident.update",
    "playbook.tick", "playbook.run", "playbook.copy", "playbook.about",
    "timeline.correct", "timeline.strike", "timeline.pin", "timeline.leave", "timeline.open", "timeline.travel",
    "entry.close", "entry.travel", "moment.close", "moment.previous", "moment.next",
    "choices.cancel",
    "help.close", "picker.cancel", "confirm.cancel", "prompt.cancel", "update.cancel", "update.send",
    "update.channel",
    "refresh.slower", "refresh.faster", "pane.pause", "pane.sort_left", "pane.sort_right", "pane.sort_invert",
    "detail.back", "detail.reload",
    # A pane's keys on the row under the cursor (console/widgets/*.py ROW_KEYS).
    "postgres.idle", "postgres.groups", "postgres.locks",
    "row.postgres.C", "row.postgres.K", "row.services.l", "row.services.d", "row.services.R", "row.services.U",
)

MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
# A single printable character, or a Textual key name (f5, pageup, question_mark).
KEY = re.compile(r"^(?:[^\s,+]|[a-z][a-z0-9_]*|\+)$")


def key_problem(keys: str) -> str | None:
    """Why ``keys`` ("ctrl+n" or "n,ctrl+n") is not a key string, or None."""
    if not keys.strip():
        return "a key is required (e.g. 'ctrl+n' or 'n,ctrl+n')"
    for key in keys.split(","):
        parts = key.strip().split("+")
        if key.strip().endswith("++"):
            parts = parts[:-2] + ["+"]
        *mods, last = parts
        bad = [m for m in mods if m not in MODIFIERS]
        if bad:
            return f"'{key.strip()}': unknown modifier '{bad[0]}' ({', '.join(MODIFIERS)})"
        if not KEY.match(last):
            return f"'{key.strip()}' is not a key"
    return None
