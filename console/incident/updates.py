"""Status updates composed from the incident, in the seeds' own wording.

Three channels: the internal incident channel (seed 000's "INCIDENT
DECLARED"/"INCIDENT RESOLVED" and seed 001's numbered update), the public
status page (seed 001's Investigating/Identified/Monitoring/Resolved lines)
and a customer email (seed 000's [INCIDENT]/[UPDATE] notices, seed 001's
customer letter once resolved). The text is a draft the operator reads and
may edit before it is copied and journaled (``update.sent``); what the
journal does not know is left as a ``[bracketed]`` placeholder.

Notes are the responders' internal record: only the internal channel quotes
them. A public channel (status page, email) carries nothing from a note; what
customers read about cause and impact the operator writes into that draft.
Every channel promises the same next update: this update's time plus the
cadence, which is when the console will count the next one due.

Everything taken from the journal is made inert: the result is plain text,
safe to put on a clipboard with OSC 52.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from console.incident.state import Incident, Note, format_duration
from console.text import inert

CHANNELS = ("internal", "status-page", "email")
FIELD_LIMIT = 300

_STATUS_PAGE = {
    "Investigating": "We are investigating {issue}. Some users may experience service degradation.",
    "Identified": "We have identified the issue as {cause}. We are implementing a fix.",
    "Monitoring": "A fix has been implemented. We are monitoring the situation to ensure stability.",
    "Resolved": "The issue has been resolved. All services are operating normally. "
                "We will conduct a post-mortem to prevent future occurrences.",
}


def compose(channel: str, incident: Incident, now: datetime) -> str:
    """The update for ``channel`` (one of :data:`CHANNELS`), as plain text."""
    try:
        composer = {"internal": _internal, "status-page": _status_page, "email": _email}[channel]
    except KeyError:
        raise ValueError(f"no update channel {channel!r}; one of {', '.join(CHANNELS)}") from None
    return composer(incident, now).rstrip("\n") + "\n"


def _internal(incident: Incident, now: datetime) -> str:
    if incident.resolved:
        return "\n".join([
            "INCIDENT RESOLVED", "",
            "The issue has been resolved.", "",
            f"Issue: {_title(incident)}",
            f"Root Cause: {_notes(incident.tagged('root-cause'), '[root cause]')}",
            f"Fix: {_notes(incident.tagged('resolution', 'fix'), '[what fixed it]')}",
            f"Duration: {format_duration(incident.ttr) if incident.ttr is not None else '[duration]'}",
            f"Impact: {_notes(incident.tagged('impact'), '[impact]')}", "",
            "We're continuing to monitor the situation.",
            "Post-mortem to follow within 24 hours.",
        ])
    sent = sum(1 for update in incident.updates if update.channel == "internal")
    status = incident.status or "Investigating"
    # The declaration heading only while nothing is known beyond it.
    head = ("INCIDENT DECLARED" if sent == 0 and status == "Investigating" else
            f"Incident Update #{sent + 1} ({_hhmm(now)}): {_clean(status)}")
    lines = [
        head, "",
        f"Issue: {_title(incident)}",
        f"Severity: {_severity(incident)}",
        f"Status: {_clean(status)}",
        f"Impact: {_notes(incident.tagged('impact'), 'being assessed')}",
        f"Start Time: {_when(incident.started_at)}",
        *(f"{role.capitalize()}: {_clean(person)}" for role, person in incident.roles.items()),
    ]
    latest = _latest(incident.tagged("action", "decision", "finding"))
    if latest:
        lines.append(f"Actions: {latest}")
    lines += ["", _next_update(incident, now)]
    return "\n".join(lines)


def _status_page(incident: Incident, now: datetime) -> str:
    status = incident.status if incident.status in _STATUS_PAGE else "Investigating"
    text = _STATUS_PAGE[status].format(
        issue=_lower_first(_title(incident)), cause="[brief technical description]")
    due = next_update_at(incident, now)
    if due is not None:
        text += f" We will provide an update by {_hhmm(due)}."
    return f"{status} ({_hhmm(now)})\n{text}"


def _email(incident: Incident, now: datetime) -> str:
    if incident.resolved:
        return _customer_letter(incident)
    title = _title(incident)
    if incident.status in ("Identified", "Monitoring"):
        said = ("We have identified the root cause and are implementing a fix."
                if incident.status == "Identified" else
                "A fix has been implemented. We are monitoring the situation to ensure stability.")
        return "\n".join([f"Subject: [UPDATE] {title}", "", said, "",
                          f"Status: {incident.status}",
                          _email_next_update(incident, now)])
    return "\n".join([
        f"Subject: [INCIDENT] {title}", "",
        f"We are currently investigating issues with {_lower_first(title)}.", "",
        "Status: Investigating",
        "Impact: Users may experience errors",
        f"Start Time: {_hhmm(incident.started_at)}",
        _email_next_update(incident, now), "",
        "Updates: [status page address]",
    ])


def _email_next_update(incident: Incident, now: datetime) -> str:
    due = next_update_at(incident, now)
    return f"Next update: {_hhmm(due)}" if due else "Next update: when status changes"


def _customer_letter(incident: Incident) -> str:
    start, end = incident.started_at, incident.resolved_at
    day = start.strftime("%Y-%m-%d") if start else "[date]"

    return "\n".join([
        f"Subject: [RESOLVED] Service Interruption - {day}", "",
        "Dear Customers,", "",
        f"We experienced a service interruption on {day} from {_hhmm(start, utc=False)} to "
        f"{_hhmm(end, utc=False)} UTC affecting {_lower_first(_title(incident))}.", "",
        "Impact:", "- [Specific impact on users]", "",
        "Root Cause:", "- [Brief technical explanation]", "",
        "Resolution:", "- [What was done to fix]", "",
        "Prevention:", "- [Steps being taken to prevent recurrence]", "",
        "We apologize for any inconvenience. If you have questions, please contact [support address].", "",
        "Best regards,",
        "[Team]",
    ])


def next_update_at(incident: Incident, now: datetime) -> datetime | None:
    """When the update after one sent at ``now`` is due: the time every
    channel promises. None once resolved or without a cadence."""
    if incident.resolved or incident.update_every is None:
        return None
    return now + incident.update_every


def _next_update(incident: Incident, now: datetime) -> str:
    every, due = incident.update_every, next_update_at(incident, now)
    if every is None or due is None:
        return "Next update: when status changes"
    return f"Next update: in {_spoken(every)} ({_hhmm(due)}) or when status changes"


def _spoken(span: timedelta) -> str:
    """``15 minutes``, ``1 hour``: a cadence as the seeds' templates say it."""
    minutes = int(span.total_seconds() // 60)
    if minutes % 60 == 0 and minutes:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _title(incident: Incident) -> str:
    return _clean(incident.title) if incident.title else "[issue]"


def _severity(incident: Incident) -> str:
    level = incident.level
    return level.label if level else (_clean(incident.severity) if incident.severity else "[severity]")


def _notes(notes: tuple[Note, ...], placeholder: str) -> str:
    return "; ".join(_clean(note.body) for note in notes) or placeholder


def _latest(notes: tuple[Note, ...]) -> str | None:
    return _clean(notes[-1].body) if notes else None


def _clean(text: object) -> str:
    return inert(text, FIELD_LIMIT)


def _lower_first(text: str) -> str:
    # "API returning 500s" stays; "Checkout failing" reads "checkout failing".
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _hhmm(at: datetime | None, utc: bool = True) -> str:
    if at is None:
        return "[time]"
    return at.strftime("%H:%M") + (" UTC" if utc else "")


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "[time]"

