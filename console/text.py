"""Inert text: what monitored systems send, made safe to show.

A query text, pod name, playbook title or error body may hold Rich markup,
ANSI CSI/OSC sequences (an OSC 52 clipboard write), BEL, NUL, carriage
returns, bidirectional overrides or invisible characters. Nothing of it may
reach the terminal as anything but visible characters, and none of it is ever
parsed as markup.
"""

from __future__ import annotations

import re

from rich.text import Text

from console import secrets as secret_values

# ESC-initiated sequences (CSI, OSC up to BEL/ST, and two-byte escapes), and
# their 8-bit C1 forms: removed whole so no fragment can act on the terminal.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"          # CSI
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC ... BEL/ST
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS/SOS/PM/APC
    r"|\x1b[@-Z\\-_]?"                            # other escapes
)

# Every character of the Unicode categories Cc (controls), Cf (format: bidi
# marks, embeddings, overrides and isolates, zero-width space/joiners, word
# joiner, invisible operators, BOM, soft hyphen, Arabic letter mark,
# interlinear annotations, tag characters), Zl/Zp (line and paragraph
# separators) and Cs (lone surrogates, which would make writing to the
# terminal raise). Written out rather than computed from unicodedata at import
# (a pass over 1.1M code points costs startup time); tests/test_text.py checks
# the list against unicodedata, so a newer Unicode fails a test, not silently.
_FORMAT = (
    "\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
# Invisible although not of those categories: combining grapheme joiner,
# Hangul fillers, Khmer inherent vowels, Mongolian variation selectors, and
# variation selectors other than VS15/VS16 (U+FE0E/U+FE0F, kept: runbooks
# write ⚠️), which can smuggle hidden bytes after a visible character.
_INVISIBLE = "\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u180f\u3164\uffa0\ufe00-\ufe0d\U000e0100-\U000e01ef"
# U+200D (zero-width joiner) is replaced too, although emoji sequences use it:
# the issue lists it as a hiding place, and Rich counts a joined emoji as
# several wide cells where a terminal draws one, which tears the row.
_CONTROLS = re.compile(f"[{_FORMAT}{_INVISIBLE}]")
# More than three stacked combining marks ("zalgo") would draw over the lines
# above and below; no language needs that many on one letter.
_STACKED = re.compile(r"[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]{4,}")
REPLACEMENT = "\ufffd"


def inert(value: object, limit: int = 500) -> str:
    """``value`` as one line of harmless characters, at most ``limit`` long.
    What was invisible or a control becomes a visible mark, so an operator
    sees that something was there."""
    # Secrets go first, before any cut could leave half of one (console/secrets.py).
    text = secret_values.redact_cut(value if isinstance(value, str) else str(value), limit * 4)
    text = _ESCAPES.sub(REPLACEMENT, text)
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    text = _CONTROLS.sub(REPLACEMENT, text)
    text = _STACKED.sub(REPLACEMENT, text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def plain(value: object, style: str = "", limit: int = 500) -> Text:
    """A Rich ``Text`` that is never parsed as markup."""
    return Text(inert(value, limit), style=style, no_wrap=True, overflow="ellipsis")


def first_line(text: object) -> str:
    """The first line of a multi-line result (a table of signalled sessions):
    what a toast or a report's summary line says; the rest is kept elsewhere."""
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else ""
