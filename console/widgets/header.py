"""The header: which environment, whether read-only, and the incident.

One line at any width from 80 columns: the environment, severity, status,
the next update's countdown and the clock always show; the title is cut to
the room left, and the commander and elapsed time go first when there is none.
A shared incident (``share:``) adds its state before the clock ("shared · 3
responders", "offline since 14:32 · 5 waiting", shorter below 120 columns),
and from 120 columns a second line says who is connected, or why offline.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from console.incident.state import format_duration, update_countdown
from console.text import inert, plain
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
        self.watching = False  # `incident-console watch`: says WATCHING, not READ-ONLY
        self.sharing = None  # the last ShareState, when the incident is shared
        self._shown: Text | None = None
        self._lines = 1
        self._now: datetime | None = None

    def on_mount(self) -> None:
        colours.follow_theme(self, self._recolour)

    def _recolour(self) -> None:
        if self._now is not None:
            self.tick(self._now)

    def on_resize(self) -> None:
        self._recolour()

    def share(self, state) -> None:
        """The sharing state after a sync (console/incident/share.py ShareState)."""
        if state != self.sharing:
            self.sharing = state
            self._recolour()

    def tick(self, now: datetime) -> None:
        """Redraw only when the text changes: elapsed time is shown in whole
        minutes so an idle SSH link carries one header line a minute."""
        self._now = now
        colour = colours.of(self)
        width = self.size.width or None  # None before the first layout: nothing to fit yet
        clock = Text(f"  {now:%H:%M} UTC", "dim")
        text = Text()
        name_room = 30 if width is None or width >= 100 else 16
        text.append(f" {inert(self.environment.upper(), name_room)} ", BANNER_STYLE.get(self.banner, "reverse"))
        if self.watching:
            text.append(" WATCH " if width is not None and width < NARROW else " WATCHING ",
                        colour.on("state-warning"))
        elif self.read_only:
            text.append(" READ-ONLY ", colour.on("state-warning"))
        text.append(" ")
        wide = width is None or width >= WIDE
        if self.sharing is not None:
            clock = sharing_line(self.sharing, colour, width) + clock
        room = None if width is None else width - text.cell_len - clock.cell_len
        text.append_text(incident_line(self.incident, now, colour, room))
        if width is not None:
            text.truncate(max(width - clock.cell_len, 0), overflow="ellipsis")
        text.append_text(clock)
        second = who_line(self.sharing, colour) if self.sharing is not None and wide else None
        if second is not None:
            if width is not None:
                second.truncate(width, overflow="ellipsis")
            text = Text("\n").join([text, second])
        if self._shown is None or not same(text, self._shown):
            self._shown = text
            lines = 2 if second is not None else 1
            if lines != self._lines:  # set only when it changes: the CSS says 1
                self._lines = lines
                self.styles.height = lines
            self.update(text)


WIDE = 120  # from here the sharing state is said in words, and who on a second line
NARROW = 100  # below this the badges and the sharing state are said shortest


def sharing_line(state, colour: Colours, width: int | None = None) -> Text:
    """ "shared · 3 responders" or "offline since 14:32 · 5 waiting"; shorter
    below WIDE columns ("shared ·3", "offline 14:32 ·5") and below NARROW
    ("offline ·5"), where the update countdown needs the room."""
    wide, narrow = width is None or width >= WIDE, width is not None and width < NARROW
    if state.online:
        n = len(state.responders)
        said = f"shared · {n} responder{'' if n == 1 else 's'}" if wide else f"shared ·{n}"
        return Text(f" {said} ", colour.style("state-ok"))
    since = f"{state.offline_since:%H:%M}" if state.offline_since is not None and not narrow else ""
    if wide:
        said = f"offline{f' since {since}' if since else ''}" + (f" · {state.waiting} waiting" if state.waiting else "")
    else:
        said = f"offline {since}".strip() + (f" ·{state.waiting}" if state.waiting else "")
    return Text.assemble(" ", (f" {said} ", colour.on("state-warning")))


def who_line(state, colour: Colours) -> Text | None:
    """Who is connected (user@host, as Redis holds them: inert), or why
    the sharing is offline; None when there is nothing to say."""
    if not state.online:
        why = inert(state.error or "Redis does not answer", 200)
        waiting = f" · {state.waiting} {'entry' if state.waiting == 1 else 'entries'} to publish" \
            if state.waiting else ""
        return Text.assemble((f" sharing {inert(state.incident, 60)} offline: ", colour.style("state-warning")),
                             plain(why), waiting)
    held = getattr(state, "held", 0)
    if not state.responders and not held:
        return None
    line = Text(f" shared {inert(state.incident, 60)} with: ", "dim")
    for i, who in enumerate(state.responders):
        if i:
            line.append(", ", "dim")
        line.append_text(plain(who, limit=60))
    if held:
        # Stamped ahead of this host's clock: merged once their time is near.
        line.append(f" · {held} held (clock ahead)", colour.style("state-warning"))
    return line


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


MIN_TITLE = 12  # below this the commander and elapsed time give up their room to the title


def incident_line(incident, now: datetime, colour: Colours, room: int | None = None) -> Text:
    """Severity, title, status, commander, elapsed, and the update countdown,
    in ``room`` cells when given: the title is cut first, then the commander
    and the elapsed time are left out; severity, status and countdown stay."""
    if incident is None or not incident.declared:
        said = "no incident declared (press D to declare)"
        return Text(said if room is None or len(said) <= room else "no incident (D declares)", "dim")
    severity = incident.severity or "?"
    head = Text(f" {inert(severity, 6)} ", severity_style(severity, colour))
    status = Text(f"· {inert(incident.status or 'Investigating', 15)} ")
    countdown = _countdown(incident, now, colour)
    if room is not None and head.cell_len + status.cell_len + countdown.cell_len + 1 > room:
        countdown = _countdown(incident, now, colour, short=True)
    optional = [Text(f"· IC {inert(incident.commander, 16)} ") if incident.commander else None,
                Text(f"· {_minutes(incident.elapsed)} ") if incident.elapsed is not None else None]
    title = inert(incident.title or "", 50)
    title_room = None if room is None else room - head.cell_len - status.cell_len - countdown.cell_len - 2
    kept = []
    for part in optional:
        if part is None:
            continue
        if title_room is None or title_room - part.cell_len >= min(MIN_TITLE, len(title)):
            kept.append(part)
            title_room = None if title_room is None else title_room - part.cell_len
    if title_room is not None:
        cut = Text(title)
        cut.truncate(title_room, overflow="ellipsis")  # by cells: a wide title is cut as drawn
        title = cut.plain if title_room >= 4 else ""
    text = head
    text.append(f" {title} " if title else " ", "bold")
    text.append_text(status)
    for part in kept:
        text.append_text(part)
    text.append_text(countdown)
    return text


def _countdown(incident, now: datetime, colour: Colours, short: bool = False) -> Text:
    """The next update's countdown, or how overdue it is (shorter words when ``short``)."""
    left = update_countdown(incident, now)
    if left is None:
        return Text()
    if left.total_seconds() < 0:
        return Text(f" ⚠ {'' if short else 'UPDATE '}OVERDUE {_minutes(-left)} ", colour.on("state-critical"))
    return Text(f"· {'update' if short else 'next update'} {_minutes(left)}",
                colour.style("state-warning") if left.total_seconds() < 180 else "")


def _minutes(span) -> str:
    seconds = int(span.total_seconds())
    return format_duration(span) if seconds >= 3600 else f"{seconds // 60} min"
