"""Inert text: what monitored systems send, made safe to show.

A query text, pod name or error body may hold Rich markup, ANSI CSI/OSC
sequences (an OSC 52 clipboard write), BEL, NUL, carriage returns or
right-to-left overrides. Nothing of it may reach the terminal as anything but
visible characters, and none of it is ever parsed as markup.
"""

from __future__ import annotations

import re

from rich.text import Text

# ESC-initiated sequences (CSI, OSC up to BEL/ST, and two-byte escapes), and
# their 8-bit C1 forms: removed whole so no fragment can act on the terminal.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"          # CSI
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC ... BEL/ST
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS/SOS/PM/APC
    r"|\x1b[@-Z\\-_]?"                            # other escapes
)
# Remaining C0/C1 controls and bidirectional overrides become a visible mark.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
REPLACEMENT = "\ufffd"


def inert(value: object, limit: int = 500) -> str:
    """``value`` as one line of harmless characters, at most ``limit`` long."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit * 4:
        text = text[: limit * 4]
    text = _ESCAPES.sub(REPLACEMENT, text)
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    text = _CONTROLS.sub(REPLACEMENT, text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def plain(value: object, style: str = "", limit: int = 500) -> Text:
    """A Rich ``Text`` that is never parsed as markup."""
    return Text(inert(value, limit), style=style, no_wrap=True, overflow="ellipsis")
