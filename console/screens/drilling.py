"""Opening rows and acting on them, from a pane or a detail view.

Mixed into the main screen. A pane asks (``RowRequested``: Enter, ``K``,
``l``…); the session reads the row's detail from its source in a worker;
then Enter shows it, an opening's key shows the view it names, and a
change's key asks for the typed confirmation and runs the change through
the session (the runner's checks, the read-only refusal and the journal).
Nothing here reads a system or decides what a change means.
"""

from __future__ import annotations

from functools import partial

from console.drill import Detail, NoSuchRow, RowRef
from console.incident.session import Refusal
from console.text import first_line
from console.vocabulary import ProbeError
from console.widgets.pane import RowRequested


class RowKeys:
    """The main screen's side of drilling into rows."""

    def on_row_requested(self, message: RowRequested) -> None:
        message.stop()
        self.open_row(message.ref, message.key)

    def open_row(self, ref: RowRef, key: str = "enter") -> None:
        # One at a time: a second Enter while a slow system answers replaces the first.
        # A function, not a coroutine: a worker replaced before it started leaves nothing unawaited.
        asker = self.app.screen  # the screen the key was pressed on
        self.run_worker(partial(self._open_row, ref, key, asker), group="drill", exclusive=True, exit_on_error=False,
                        name=f"open {ref.kind}:{ref.source}")

    async def read_row(self, ref: RowRef) -> Detail | None:
        """The row's detail now, or None after saying why not."""
        try:
            return await self.app.session.drill(ref)
        except NoSuchRow as gone:
            self.notify(f"{gone or 'that row is gone'}", title=ref.source, severity="warning", timeout=6)
        except ProbeError as error:
            self.notify(str(error), title=f"could not read {ref.source}", severity="error", timeout=10)
        return None

    async def _open_row(self, ref: RowRef, key: str, asker=None) -> None:
        from console.screens.detail import DetailScreen

        detail = await self.read_row(ref)
        if detail is None:
            return
        if asker is not None and self.app.screen is not asker:
            # Another screen came up while the row was read (a palette, help):
            # the operator has moved on, and a screen opened over theirs would
            # leave it under the next Escape.
            return
        if key == "enter":
            await self.app.push_screen(DetailScreen(ref, detail, self.open_row, self.read_row,
                                                    follow_every=self.app.refresh_s))
            return
        opening, change = detail.opening(key), detail.change(key)
        if opening is not None:
            await self._open_row(RowRef(ref.kind, ref.source, opening.row), "enter", asker)
        elif change is not None:
            await self._change(ref, change)
        else:
            self.notify(f"{key}: nothing to do on {detail.title}", severity="warning", timeout=4)

    async def _change(self, ref: RowRef, change) -> None:
        from console.screens.confirm import ConfirmTyped
        from console.screens.detail import DetailScreen

        session = self.app.session
        try:
            title, what, expected = session.confirmation(ref, change)
        except Refusal as refusal:
            self.notify(str(refusal), title="refused", severity="error", timeout=10)
            self.app.show_journal()
            return
        typed = await self.app.push_screen_wait(ConfirmTyped(title, what, expected))
        if typed is None:
            return
        try:
            result = await session.change(ref, change, typed)
        except Refusal as refusal:
            self.notify(str(refusal), title="refused", severity="error", timeout=10)
        else:
            # One line in the toast (a table of 34 signalled sessions is for the journal).
            if result.ok:
                self.notify(_first_line(result.output) or f"{change.label}: done", title="done", timeout=8)
            else:
                self.notify(_first_line(result.error) or "failed", title=f"{change.label} failed",
                            severity="error", timeout=12)
            self.app.action_refresh_now()  # the pane shows the effect at once
            if isinstance(self.app.screen, DetailScreen):
                self.app.screen.action_reload()  # and the detail it was made from
        self.app.show_journal()


def _first_line(text: str | None) -> str:
    """One line for a toast, saying how much more the timeline holds."""
    more = len((text or "").strip().splitlines()) - 1
    return first_line(text) + (f" (+{more} lines in the timeline)" if more > 0 else "")
