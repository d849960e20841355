"""The header: which environment, whether read-only, and the incident."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from console.incident.state import format_duration, update_countdown
from console.text import inert
from console.widgets import colours
from console.widgets.colours import Colours
from console.widgets.table import same

# The environment's banner is the colour the config names (`banner: red`), the
# same in every theme: it says which system this is, not how it is doing.
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
        self.incident = None
        self._shown: Text | None = None
        self._now: datetime | None = None

    def on_mount(self) -> None:
        colours.follow_theme(self, self._recolour)

    def _recolour(self) -> None:
        if self._now is not None:
            self.tick(self._now)

    def tick(self, now: datetime) -> None:
        """Redraw only when the text changes: elapsed time is shown in whole
        minutes so an idle SSH link carries one header line a minute."""
        self._now = now
        colour = colours.of(self)
        text = Text()
        text.append(f" {inert(self.environment.upper(), 30)} ", BANNER_STYLE.get(self.banner, "reverse"))
        if self.read_only:
            text.append(" READ-ONLY ", colour.on("state-warning"))
        text.append(" ")
        text.append_text(incident_line(self.incident, now, colour))
        text.append(f"  {now:%H:%M} UTC", "dim")
        if self._shown is None or not same(text, self._shown):
            self._shown = text
            self.update(text)


# Severity as the theme's state colour it calls for; P2 is told from P1 by
# its name and by having no background.
SEVERITY_STATE = {"P0": "state-critical", "SEV1": "state-critical", "P1": "state-warning", "SEV2": "state-warning"}
LOW_SEVERITIES = {"P2", "SEV3"}


def severity_style(severity: str, colour: Colours):
    if severity in SEVERITY_STATE:
        return colour.on(SEVERITY_STATE[severity])
    if severity in LOW_SEVERITIES:
        return colour.style("state-warning", bold=True)
    return "reverse"


def incident_line(incident, now: datetime, colour: Colours) -> Text:
    """Title, severity, status, commander, elapsed, and the update countdown."""
    if incident is None or not incident.declared:
        return Text("no incident declared (press D to declare)", "dim")
    text = Text()
    severity = incident.severity or "?"
    text.append(f" {inert(severity, 6)} ", severity_style(severity, colour))
    text.append(f" {inert(incident.title or '', 50)} ", "bold")
    text.append(f"· {inert(incident.status or 'Investigating', 15)} ")
    if incident.commander:
        text.append(f"· IC {inert(incident.commander, 16)} ")
    if incident.elapsed is not None:
        text.append(f"· {_minutes(incident.elapsed)} ")
    left = update_countdown(incident, now)
    if left is not None:
        if left.total_seconds() < 0:
            text.append(f" ⚠ UPDATE OVERDUE {_minutes(-left)} ", colour.on("state-critical"))
        else:
            text.append(f"· next update {_minutes(left)}",
                        colour.style("state-warning") if left.total_seconds() < 180 else "")
    return text


def _minutes(span) -> str:
    seconds = int(span.total_seconds())
    return format_duration(span) if seconds >= 3600 else f"{seconds // 60} min"
