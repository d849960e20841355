"""The command palette's system commands, shown as text and never as markup.

Textual's own provider hands each command's title and help to
``Content.from_markup``: a playbook title ``[/var/lib/postgresql]`` raised a
markup error and ``[@click=app.quit]x`` became a clickable action. Here the
title and help are ``Content`` built from the string, which the palette shows
as it is; the fuzzy highlight is laid on the same plain title.
"""

from __future__ import annotations

from textual import work
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits
from textual.content import Content
from textual.css.query import NoMatches
from textual.system_commands import SystemCommandsProvider

from console.text import inert


class InertSystemCommands(SystemCommandsProvider):
    async def discover(self) -> Hits:
        commands = sorted(self.app.get_system_commands(self.screen), key=lambda command: command[0])
        for title, help_text, callback, discover in commands:
            if discover:
                yield DiscoveryHit(Content(inert(title, 200)), callback, text=inert(title, 200),
                                   help=_help(help_text))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback, *_ in self.app.get_system_commands(self.screen):
            title = inert(title, 200)
            score, offsets = matcher.fuzzy_search.match(matcher.query, title)
            if score > 0:
                shown = Content(title)
                for offset in offsets:
                    if not title[offset].isspace():
                        shown = shown.stylize(matcher.match_style, offset, offset + 1)
                yield Hit(score, shown, callback, text=title, help=_help(help_text))


class Palette(CommandPalette):
    """Textual's palette, safe to close while it is still gathering commands.

    The palette gathers hits in a worker; an Escape in the same burst as the
    keys typed into it takes the palette's widgets down while that worker
    still runs, and its last look-up of the command list raised NoMatches,
    which failed the whole app (a fuzzed key sequence in CI). A palette that
    is gone has nothing left to show: its late look-ups are dropped.
    """

    def _watch__list_visible(self) -> None:
        try:
            super()._watch__list_visible()
        except NoMatches:
            pass  # taken down mid-gather

    @work(exclusive=True, group=CommandPalette._GATHER_COMMANDS_GROUP)
    async def _gather_commands(self, search_value: str) -> None:
        try:
            await CommandPalette._gather_commands.__wrapped__(self, search_value)
        except NoMatches:
            pass  # taken down mid-gather


def _help(help_text: str) -> Content | None:
    # The palette passes help through Content.from_markup, which returns a
    # Content unchanged.
    return Content(inert(help_text, 300)) if help_text else None
