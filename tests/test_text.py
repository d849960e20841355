"""What monitored systems send is shown as inert text, never acted on."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, strategies as st

from console.text import inert, plain

HOSTILE = [
    "[bold red]pwned[/]",
    "[link=http://evil]click[/link]",
    "\x1b[31mred\x1b[0m",
    "\x1b]52;c;cm0gLXJmIC8=\x07",          # OSC 52 clipboard write
    "\x1b]0;title\x1b\\",
    "\x9b31m",                              # 8-bit CSI
    "bell\x07nul\x00cr\roverwrite",
    "\u202eevil.exe\u202c",
    "x" * 10_000,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_strings_become_inert(value):
    out = inert(value)
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out and "\x00" not in out
    assert "\r" not in out and "\n" not in out and "\u202e" not in out
    assert len(out) <= 500


def test_markup_is_shown_not_parsed():
    text = plain("[bold red]pwned[/]")
    assert text.plain == "[bold red]pwned[/]" and not text.spans


def test_osc52_payload_never_survives_as_a_sequence():
    assert inert("a\x1b]52;c;cm0=\x07b") == "a\ufffdb"


@given(st.text())
def test_no_control_character_survives(value):
    out = inert(value)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)


@given(st.text(st.characters(categories=("Cc", "Cf", "Zl", "Zp", "Cs", "Ll", "Mn"))))
def test_no_format_separator_or_surrogate_survives(value):
    """Bidi marks, zero-width characters, tag characters, line separators and
    lone surrogates: each becomes a visible mark (see tests/test_attack_text.py)."""
    out = inert(value)
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs") for c in out)
    out.encode("utf-8")
