"""The key line at the bottom: Textual's Footer, rebuilt only when what it
shows changes.

Textual's Footer unmounts and mounts all its keys again whenever the
screen's bindings are recomputed, which happens on every focus change and
every binding check: with our fourteen keys that was ~20 ms of the event
loop, and a full screen layout, per key press that moved the focus (issue
16). The keys it would show are compared first; the same keys, in the same
state, are not rebuilt.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeyLine(Footer):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._showing: tuple | None = None

    def bindings_changed(self, screen: Screen) -> None:
        if self.is_attached and screen is self.screen and screen.app.app_focus:
            showing = tuple((binding.key, binding.description, binding.action, enabled, tooltip)
                            for (_, binding, enabled, tooltip) in screen.active_bindings.values()
                            if binding.show)
            if showing == self._showing and self._bindings_ready:
                return
            self._showing = showing
        super().bindings_changed(screen)
