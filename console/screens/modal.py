"""The one modal every console dialog is: it closes once.

Textual's ``Screen.dismiss`` pops whatever screen is on top. Enter and a
queued Escape in one burst dismiss the same dialog twice, and the second
pop took the main screen (ScreenStackError: the console ended). A dialog
that is no longer on top has nothing left to close.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from textual.await_complete import AwaitComplete
from textual.screen import ModalScreen

Result = TypeVar("Result")


class Modal(ModalScreen[Result]):
    def dismiss(self, result: Result | None = None) -> AwaitComplete:
        if self not in self.app.screen_stack[1:] or self.app.screen is not self:
            return AwaitComplete(asyncio.sleep(0))
        return super().dismiss(result)
