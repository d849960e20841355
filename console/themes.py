"""Colour themes: YAML files turned into Textual themes.

Shipped themes live in the package, ``console/shipped/themes/``; a user adds
one by dropping a YAML file in ``$XDG_CONFIG_HOME/incident-console/themes/``.
A theme file that cannot be used is reported as ``path:line: message`` and
left out, so the console always starts with a theme it can draw (the default).

This module imports no Textual at import time: ``check`` and the config
reader use :func:`theme_names` without paying for the TUI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console import located, paths
from console.located import Invalid, Problem

SHIPPED = paths.shipped_themes()
DEFAULT = "dark"
COLOR_KEYS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground", "background",
              "surface", "panel", "boost")
# The app's own colours, used by console.tcss; a theme may set any of them.
# Unset, they follow the theme's own colours (so Textual's built-in themes,
# offered by the palette's theme switcher, still draw pane states).
APP_VARIABLES = {
    "state-ok": "success",
    "state-warning": "warning",
    "state-critical": "error",
    "state-unreachable": "error",
    "state-unknown": "secondary",
    "state-stale": "warning",
    "pane-border": "primary",
    "pane-focus": "primary",
}


@dataclass(frozen=True)
class ThemeSpec:
    """A theme as read from its file, before Textual sees it."""

    name: str
    path: str
    colors: dict[str, str]
    dark: bool = True
    ansi: bool = False
    variables: dict[str, str] = field(default_factory=dict)

    def to_theme(self):
        from textual.theme import Theme

        return Theme(name=self.name, dark=self.dark, ansi=self.ansi, variables=dict(self.variables),
                     **self.colors)


def user_dir() -> Path:
    return paths.config_dir() / "themes"


def read(path: Path) -> ThemeSpec:
    """One theme file; raises :class:`Invalid` with every problem located."""
    from textual.color import Color, ColorParseError

    doc = located.load(path)
    data = doc.data
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise Invalid([doc.problem((), "a theme must be a mapping (name, dark, colors, variables)")])
    for key in data:
        if key not in {"name", "dark", "ansi", "colors", "variables", "description"}:
            problems.append(doc.problem((key,), f"unknown key '{key}' (name, dark, ansi, colors, variables)"))
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        problems.append(doc.problem(("name",), "name must be a non-empty string"))
        name = path.stem
    flags = {}
    for flag, default in (("dark", True), ("ansi", False)):
        value = data.get(flag, default)
        if not isinstance(value, bool):
            problems.append(doc.problem((flag,), f"'{flag}' must be true or false"))
            value = default
        flags[flag] = value

    def colours(section: str, allowed: tuple[str, ...] | None) -> dict[str, str]:
        given = data.get(section, {}) or {}
        if not isinstance(given, dict):
            problems.append(doc.problem((section,), f"'{section}' must be a mapping of name: colour"))
            return {}
        out = {}
        for key, value in given.items():
            if allowed is not None and key not in allowed:
                problems.append(doc.problem((section, key), f"unknown colour '{key}' ({', '.join(allowed)})"))
                continue
            if key.endswith("-style"):  # a text style (bold, reverse, none), not a colour
                out[str(key)] = str(value)
                continue
            try:
                Color.parse(str(value).split()[0] if str(value).strip() else "")
            except (ColorParseError, IndexError):
                problems.append(doc.problem((section, key), f"'{value}' is not a colour"))
                continue
            out[str(key)] = str(value)
        return out

    colors = colours("colors", COLOR_KEYS)
    variables = colours("variables", None)
    if "primary" not in colors and not any(p.line == doc.line("colors") for p in problems):
        problems.append(doc.problem(("colors",), "colors.primary is required"))
    if problems:
        raise Invalid(sorted(problems, key=lambda p: p.line))
    return ThemeSpec(name.strip(), str(path), colors, flags["dark"], flags["ansi"], variables)


def discover(*dirs: Path) -> tuple[dict[str, ThemeSpec], list[Problem]]:
    """Every readable theme in ``dirs`` (later ones override earlier ones by
    name), and the problems of those that could not be read."""
    found: dict[str, ThemeSpec] = {}
    problems: list[Problem] = []
    for directory in dirs or (SHIPPED, user_dir()):
        try:
            files = sorted(p for p in Path(directory).iterdir() if p.suffix in (".yaml", ".yml"))
        except OSError:
            continue
        for path in files:
            try:
                spec = read(path)
            except Invalid as invalid:
                problems.extend(invalid.problems)
                continue
            found[spec.name] = spec
    return found, problems


def theme_names() -> set[str]:
    return set(discover()[0])


def variable_defaults(theme) -> dict[str, str]:
    """Values for the app's variables a theme leaves unset, from its colours."""
    fallback = {"success": "#4EBF71", "warning": "#ffa62b", "error": "#ba3c5b", "primary": "#0178D4",
                "secondary": "#8a8fa3"}
    return {name: getattr(theme, source, None) or fallback[source] for name, source in APP_VARIABLES.items()}


def choose(requested: str | None, available: Any) -> tuple[str, str | None]:
    """The theme to use and, when the requested one is missing, why not."""
    if not requested:
        return DEFAULT, None
    if requested in available:
        return requested, None
    return DEFAULT, f"no theme named '{requested}'; using '{DEFAULT}' (themes: {', '.join(sorted(available))})"
