"""The command palette's system commands, shown as text and never as markup.

Textual's own provider hands each command's title and help to
``Content.from_markup``: a playbook title ``[/var/lib/postgresql]`` raised a
markup error and ``[@click=app.quit]x`` became a clickable action. Here the
title and help are ``Content`` built from the string, which the palette shows
as it is; the fuzzy highlight is laid on the same plain title.
"""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits
from textual.content import Content
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


def _help(help_text: str) -> Content | None:
    # The palette passes help through Content.from_markup, which returns a
    # Content unchanged.
    return Content(inert(help_text, 300)) if help_text else None
