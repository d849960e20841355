"""The war-room screen (``incident-console watch``): the main screen, following.

The same header, panes and timeline as the console's, but no key changes
anything: the incident's keys are disabled (and so not in the footer), and
what a pane asks for by message (a note, a note's edit, a playbook step, a
change on a row) is refused here before the main screen's handlers see it.
Looking stays: panes, zoom, filter, help, a row's or an entry's detail.
The session refuses every write as well (IncidentSession(following=True)):
two locks, so that one forgotten key cannot change the incident.
"""

from __future__ import annotations

from textual.widgets import Input

from console.incident.session import FOLLOWING
from console.screens.main import MainScreen
from console.widgets.playbook import PlaybookPane
from console.widgets.timeline import TimelinePane

# What the screen's own keys may do while following: look, never change.
LOOKING = frozenset({"help", "zoom", "filter", "focus_pane", "cycle_pane"})
# The keys of the timeline and the playbook that would write (e, x, *; Space, Enter, c).
WRITING = {TimelinePane: frozenset({"edit"}), PlaybookPane: frozenset({"toggle", "run", "copy"})}


class WatchScreen(MainScreen):
    def __init__(self, config) -> None:
        super().__init__(config, read_only=True)
        self.add_class("-watching")

    def on_mount(self) -> None:
        self.header.watching = True
        # No scribe line: a follower writes no note (and takes no focus there).
        scribe = self.query_one("#scribe", Input)
        scribe.disabled = True
        scribe.display = False
        for kind, refused in WRITING.items():
            for widget in self.query(kind):
                widget.check_action = _refusing(refused)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action in LOOKING

    def commands(self):
        """Only the palette's commands that look."""
        for title, help_text, callback in super().commands():
            if getattr(callback, "__name__", "") in ("action_zoom", "action_filter", "action_help") \
                    or title.startswith("Go to pane"):
                yield title, help_text, callback

    def _refuse(self, message) -> None:
        message.stop()
        message.prevent_default()  # the main screen's handlers would write
        self.notify(FOLLOWING, severity="warning", timeout=4)

    def on_timeline_pane_note_written(self, message: TimelinePane.NoteWritten) -> None:
        self._refuse(message)

    def on_timeline_pane_note_edit(self, message: TimelinePane.NoteEdit) -> None:
        self._refuse(message)

    def on_playbook_pane_step_requested(self, message: PlaybookPane.StepRequested) -> None:
        self._refuse(message)

    async def _change(self, ref, change) -> None:
        """A change on a row (C, K, R, U, or one in a detail view): refused
        before a confirmation is even shown."""
        self.notify(FOLLOWING, title="refused", severity="warning", timeout=4)


def _refusing(actions: frozenset[str]):
    def check_action(action: str, parameters: tuple[object, ...]) -> bool | None:
        return action not in actions
    return check_action
