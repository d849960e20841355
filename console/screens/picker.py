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


class Choices(Modal[str | None]):
    """Choose one of a few values (a status), the current one marked and under
    the cursor, so a reflexive Enter changes nothing. Dismisses with the
    chosen id, or None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="choices.cancel")]
    DEFAULT_CSS = """
    Choices { align: center middle; }
    Choices > Vertical { width: 80%; max-width: 100; height: auto; border: round $primary; padding: 0 1;
                         background: $surface; }
    Choices OptionList { height: auto; max-height: 16; }
    Choices .hint { color: $text-muted; }
    """

    def __init__(self, title: str, options: list[tuple[str, str, bool]], hint: str = "") -> None:
        """``options``: (id, label, is it the current one)."""
        super().__init__()
        self.title_text, self.options, self.hint = title, options, hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(plain(self.title_text, "bold"))
            yield OptionList(*(Option(plain(("● " if current else "  ") + label + (" (now)" if current else ""),
                                            "bold" if current else "", limit=300), id=option_id)
                               for option_id, label, current in self.options))
            yield Label(plain(self.hint or "Enter chooses, Escape leaves it as it is"), classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        current = [i for i, (_, _, is_current) in enumerate(self.options) if is_current]
        options.highlighted = current[0] if current else 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
