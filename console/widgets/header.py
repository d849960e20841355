"""The header: which environment, whether read-only, and the incident."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from console.text import inert

BANNER_STYLE = {
    "red": "bold white on red", "amber": "bold black on dark_orange", "yellow": "bold black on yellow",
    "green": "bold black on green", "blue": "bold white on blue", "magenta": "bold white on magenta",
    "cyan": "bold black on cyan", "grey": "bold white on grey37", "none": "bold reverse",
}


class IncidentHeader(Static):
    DEFAULT_CSS = "IncidentHeader { height: 1; }"

    def __init__(self, environment: str, banner: str, read_only: bool, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self.environment = environment
        self.banner = banner
        self.read_only = read_only
        self.incident = "no incident declared"
        self._shown: Text | None = None

    def tick(self, now: datetime) -> None:
        # Minutes, not seconds: one redraw a minute keeps an idle SSH link quiet.
        text = Text()
        text.append(f" {inert(self.environment.upper(), 30)} ", BANNER_STYLE.get(self.banner, "reverse"))
        if self.read_only:
            text.append(" READ-ONLY ", "bold black on yellow")
        text.append("  " + inert(self.incident, 80))
        text.append(f"  ·  {now:%H:%M} UTC", "dim")
        if text != self._shown:
            self._shown = text
            self.update(text)
