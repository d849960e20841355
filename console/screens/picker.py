"""Choose a playbook: suggestions (live state matches their conditions) first."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from console.screens.modal import Modal
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from console.text import inert, plain
from console.widgets import colours


class PlaybookPicker(Modal[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="picker.cancel")]
    DEFAULT_CSS = """
    PlaybookPicker { align: center middle; }
    PlaybookPicker > Vertical { width: 90%; max-width: 100; height: 80%; border: round $primary;
                                padding: 0 1; background: $surface; }
    PlaybookPicker OptionList { height: 1fr; }
    """

    def __init__(self, playbooks, suggested: set[str]) -> None:
        super().__init__()
        self.playbooks = sorted(playbooks, key=lambda p: (p.id not in suggested, p.title))
        self.suggested = suggested

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(plain("Choose a playbook (Enter), Escape to cancel", "bold"))
            yield OptionList(*(Option(self._label(p), id=p.id) for p in self.playbooks))

    def _label(self, playbook):
        suggested = colours.of(self).style("text-accent", bold=True)
        text = plain(("★ suggested: " if playbook.id in self.suggested else "") + playbook.title,
                     suggested if playbook.id in self.suggested else "")
        if playbook.severity:
            text.append(f"  ({inert(playbook.severity, 10)})", "dim")
        return text

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        colours.follow_theme(self, self._recolour)

    def _recolour(self) -> None:
        options = self.query_one(OptionList)
        for playbook in self.playbooks:
            options.replace_option_prompt(playbook.id, self._label(playbook))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
