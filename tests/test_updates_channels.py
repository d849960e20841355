"""What each update channel says: public channels carry no internal note, every
channel promises the same next update, and the internal heading follows the
status. Headless, plus the composer under Pilot with a clock that moves."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from console import config
from console.app import IncidentConsole
from console.incident.journal import Journal
from console.incident.state import Incident
from console.incident.updates import CHANNELS, compose
from scripted import Clock

T0 = datetime(2026, 11, 22, 14, 30, tzinfo=timezone.utc)
OPERATOR = {"user": "alice", "ssh_client": "10.0.0.5"}
PUBLIC = ("status-page", "email")
NOTES = ("#root-cause checkout-api connection leak in the pool",
         "About 500 users saw errors #impact",
         "Restarted checkout-api pods #resolution",
         "Alert on pool usage over 80% #action",
         "Pool at 98/100, idle in transaction #finding")
SAID = ("connection leak", "500 users", "Restarted", "pool usage", "idle in transaction", "#")


def _incident(tmp_path, status: str | None, *, sent_at: float | None = 3, notes=NOTES, now=8) -> Incident:
    clock = Clock(T0)
    journal = Journal(tmp_path / "i.json", operator=OPERATOR, clock=clock)
    clock.at(1)
    journal.append("incident.declared", title="Checkout failing", severity="P1")
    for text in notes:
        journal.note(text)
    if sent_at is not None:
        clock.at(sent_at)
        journal.append("update.sent", channel="status-page", text="Investigating")
    if status:
        clock.at(5)
        journal.append("incident.status", status=status)
    return Incident.from_events(journal.events(), clock.at(now))


def _next_update_times(text: str) -> set[str]:
    """Every HH:MM a draft promises the next update for."""
    promised = [line for line in re.split(r"\n|(?<=\.) ", text) if re.search(r"(?i)next update|update by", line)]
    return {time for line in promised for time in re.findall(r"\b\d\d:\d\d\b", line)}


@pytest.mark.parametrize("status", ["Investigating", "Identified", "Monitoring", "Resolved"])
def test_public_channels_carry_no_internal_note(tmp_path, status):
    incident = _incident(tmp_path, status)
    for channel in PUBLIC:
        text = compose(channel, incident, incident.now)
        for said in SAID:
            assert said not in text, f"{channel} ({status}) quotes a note: {said!r}\n{text}"


def test_the_status_page_says_identified_with_a_placeholder_for_the_cause(tmp_path):
    incident = _incident(tmp_path, "Identified")
    assert "We have identified the issue as [brief technical description]." in compose(
        "status-page", incident, incident.now)


def test_the_internal_channel_still_quotes_the_notes(tmp_path):
    text = compose("internal", _incident(tmp_path, "Identified"), T0 + timedelta(minutes=8))
    assert "Actions: Pool at 98/100, idle in transaction" in text
    assert "Impact: About 500 users saw errors" in text


@pytest.mark.parametrize("status", [None, "Identified", "Monitoring"])
@pytest.mark.parametrize("sent_at", [None, 3])
def test_every_channel_promises_one_next_update_time(tmp_path, status, sent_at):
    # Declared at 14:31, an update sent at 14:33 or none, composed at 14:38:
    # the update sent now makes the next one due at 14:53 on every channel.
    incident = _incident(tmp_path, status, sent_at=sent_at)
    times = {channel: _next_update_times(compose(channel, incident, incident.now)) for channel in CHANNELS}
    assert times == {channel: {"14:53"} for channel in CHANNELS}, times


def test_no_channel_promises_a_time_once_resolved(tmp_path):
    incident = _incident(tmp_path, "Resolved")
    for channel in CHANNELS:
        assert not _next_update_times(compose(channel, incident, incident.now)), channel


@pytest.mark.parametrize("status", ["Identified", "Monitoring"])
def test_the_internal_heading_follows_the_status(tmp_path, status):
    incident = _incident(tmp_path, status, sent_at=None)
    head = compose("internal", incident, incident.now).splitlines()[0]
    assert "DECLARED" not in head and status in head
    assert head == f"Incident Update #1 (14:38 UTC): {status}"


def test_the_declaration_heading_while_investigating(tmp_path):
    incident = _incident(tmp_path, None, sent_at=None)
    text = compose("internal", incident, incident.now)
    assert text.startswith("INCIDENT DECLARED\n") and "Status: Investigating" in text


async def test_the_composer_keeps_one_next_update_time_while_the_clock_moves(tmp_path):
    from console.screens.update import UpdateComposer
    from textual.widgets import TextArea

    now = [T0]
    journal = Journal(tmp_path / "i.json", operator=OPERATOR, clock=lambda: now[0])
    journal.append("incident.declared", title="Checkout failing", severity="P1")
    journal.append("incident.status", status="Identified")
    app = IncidentConsole(config.parse("refresh: 5\n", "t.yaml", env={}), sources=[], journal=journal,
                          clock=lambda: now[0])
    async with app.run_test(size=(160, 48)) as pilot:
        now[0] = T0 + timedelta(minutes=4)
        await pilot.press("u")
        await pilot.pause()
        assert isinstance(app.screen, UpdateComposer)
        seen = {}
        for channel in CHANNELS:
            seen[app.screen.channel] = _next_update_times(app.screen.query_one(TextArea).text)
            now[0] += timedelta(minutes=3)  # the operator reads before pressing Tab
            await pilot.press("tab")
            await pilot.pause()
    assert seen == {channel: {"14:49"} for channel in CHANNELS}, seen
