"""`?`: every binding of the focused pane and of the app, and every command
of the palette. Built from the bindings themselves (keymap applied), so a
key rebound in the config shows here as it really is."""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from console.screens.modal import Modal
from textual.widgets import Static

from console.text import inert

Section = tuple[str, Sequence[tuple[str, str]]]


class HelpScreen(Modal[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 90%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def __init__(self, sections: Sequence[Section]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "Keys and commands (Esc closes; arrows scroll)"
            yield Static(self.text(), markup=False, id="help-text")

    def text(self) -> Text:
        text = Text()
        # Command descriptions carry playbook titles and symptoms: inert.
        width = max((len(inert(key, 40)) for _, rows in self.sections for key, _ in rows), default=4) + 2
        for title, rows in self.sections:
            text.append(f"{inert(title, 100)}\n", "bold underline")
            for key, description in rows:
                text.append(f"  {inert(key, 40):<{width}}", "bold")
                text.append(f"{inert(description, 400)}\n")
            text.append("\n")
        return text

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    async def action_dismiss(self, result=None) -> None:
        self.dismiss(None)


def binding_rows(node, keymap, key_display) -> list[tuple[str, str]]:
    """``node``'s bindings as (keys, description), keymap applied, one row
    per action even when several keys are bound to it."""
    bindings_map = node._bindings.copy()
    if keymap:
        bindings_map.apply_keymap(keymap)
    rows: dict[str, tuple[list[str], str]] = {}
    for key, bindings in bindings_map.key_to_bindings.items():
        for binding in bindings:
            name = binding.description or binding.action.replace("_", " ")
            keys, _ = rows.setdefault(binding.id or binding.action, ([], name))
            keys.append(key_display(binding.with_key(key) if hasattr(binding, "with_key") else binding))
    return [(" ".join(dict.fromkeys(keys)), description) for keys, description in rows.values()]
