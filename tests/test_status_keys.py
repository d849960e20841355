"""Status and severity are chosen, and can be taken back (issue 13).

`s` once advanced the status with no confirmation and no undo, and a
pg_activity user presses `s` for sort. Now it opens a list with the current
status marked and under the cursor (a reflexive Enter changes nothing), and
the last status or severity change can be taken back: the journal is
append-only, so taking back is a new entry restoring the value before it.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from console import config
from console.app import IncidentConsole
from console.incident.journal import Journal
from console.incident.session import IncidentSession, Refusal
from console.incident.state import Incident
from scripted import Clock
from textual.widgets import OptionList

START = datetime(2026, 11, 30, 14, 0, tzinfo=timezone.utc)
CFG = config.parse("refresh: 5\n", "t.yaml", env={})


def _session(tmp_path):
    clock = Clock(START)
    journal = Journal(tmp_path / "incident.json", operator={"user": "oncall"}, clock=clock)
    return IncidentSession(CFG, journal, clock), clock


def _app(tmp_path):
    clock = Clock(START)
    journal = Journal(tmp_path / "i.json", operator={"user": "alice"}, clock=clock)
    return IncidentConsole(CFG, sources=[], journal=journal, clock=clock), journal, clock


def _statuses(journal):
    return [e.data["status"] for e in journal.events() if e.kind == "incident.status"]


# ---- headless -----------------------------------------------------------------

def test_a_status_is_set_from_the_list_and_the_current_one_is_marked(tmp_path):
    session, _ = _session(tmp_path)
    with pytest.raises(Refusal, match="declare"):
        session.status_choices()
    session.declare("P1 Checkout down")
    assert [(s, current) for s, _, current in session.status_choices()] == [
        ("Investigating", True), ("Identified", False), ("Monitoring", False), ("Resolved", False)]
    assert session.set_status("Monitoring") is True  # any status, not only the next
    assert session.set_status("Monitoring") is False  # already: nothing journaled
    with pytest.raises(Refusal, match="not a status"):
        session.set_status("Fixed")
    assert [e.data.get("status") for e in session.events() if e.kind == "incident.status"] == [
        "Investigating", "Monitoring"]


def test_taking_back_journals_the_previous_value_newest_first(tmp_path):
    session, clock = _session(tmp_path)
    session.declare("P2 Checkout slow")
    clock.at(1)
    session.set_status("Identified")
    clock.at(2)
    session.choose_severity("p0")
    clock.at(3)
    assert "severity P0" in session.take_back_offer()[1] and "back to P2" in session.take_back_offer()[1]
    assert session.undo_last_change() == "Severity back to P2 (took back P0)"
    assert session.undo_last_change() == "Status back to Investigating (took back Identified)"
    with pytest.raises(Refusal, match="nothing|no status"):
        session.undo_last_change()
    incident = session.incident()
    assert (incident.status, incident.severity) == ("Investigating", "P2")
    taken_back = [e for e in session.events() if e.data.get("undoes")]
    assert len(taken_back) == 2 and all(e.kind in ("incident.status", "incident.severity") for e in taken_back)


def test_monitoring_taken_back_mitigated_nothing(tmp_path):
    session, clock = _session(tmp_path)
    session.declare("P1 x")
    clock.at(5)
    session.set_status("Monitoring")  # pressed by mistake
    assert session.incident().mitigated_at is not None
    clock.at(6)
    session.undo_last_change()
    assert session.incident().mitigated_at is None and session.incident().status == "Investigating"
    clock.at(20)
    session.set_status("Monitoring")
    assert session.incident().mitigated_at == START.replace(minute=20)


def test_a_resolved_incident_taken_back_is_open_again(tmp_path):
    session, clock = _session(tmp_path)
    session.declare("P1 x")
    clock.at(1)
    session.set_status("Resolved")
    clock.at(2)
    session.undo_last_change()
    incident = session.incident()
    assert incident.status == "Investigating" and not incident.resolved and incident.next_update_due is not None


def test_a_change_made_since_the_offer_is_not_taken_back_blindly(tmp_path):
    session, clock = _session(tmp_path)
    session.declare("P1 x")
    session.set_status("Identified")
    offered, _ = session.take_back_offer()
    clock.at(1)
    session.set_status("Monitoring")  # another writer, meanwhile
    before = len(session.events())
    with pytest.raises(Refusal, match="choose again"):
        session.undo_last_change(offered)
    assert len(session.events()) == before


def test_a_declaration_since_the_offer_is_the_newer_word_and_is_not_taken_back_over(tmp_path):
    # Red team: Alice set P2 -> P1 and opened the list; Bob declared again at P3;
    # Alice's undo was accepted, set P2 and said "took back P1".
    alice, clock = _session(tmp_path)
    alice.declare("P2 Checkout slow")
    clock.at(1)
    assert alice.choose_severity("P1")
    alice.journal.flush()
    offered, _ = alice.take_back_offer()
    bob = IncidentSession(CFG, Journal(tmp_path / "incident.json", operator={"user": "bob"}, clock=clock), clock)
    clock.at(2)
    bob.declare("P3 Checkout slow, one region only")
    bob.journal.flush()
    alice.journal.refresh()
    assert alice.incident().severity == "P3"
    before = len(alice.events())
    clock.at(3)
    with pytest.raises(Refusal, match="choose again") as refused:
        alice.undo_last_change(offered)
    assert "bob declared it again at 14:02:00 as P3" in str(refused.value)
    assert len(alice.events()) == before and alice.incident().severity == "P3"
    # The declaration is itself the change an undo now offers to take back.
    offered, text = alice.take_back_offer()
    assert text == "severity P3 (declared again by bob at 14:02:00) back to P1"
    assert alice.undo_last_change(offered) == "Severity back to P1 (took back P3)"


def test_a_declaration_that_restates_the_severity_is_not_undone_over(tmp_path):
    session, clock = _session(tmp_path)
    session.declare("P2 Checkout slow")
    clock.at(1)
    session.choose_severity("P1")
    clock.at(2)
    session.declare("P1 Checkout down in one region")  # the same severity, said again
    clock.at(3)
    with pytest.raises(Refusal, match="declared it again at 14:02:00 as P1.*set the severity from the list"):
        session.undo_last_change()
    assert session.incident().severity == "P1"


# ---- at the keyboard ------------------------------------------------------------

async def test_s_opens_the_status_list_and_a_reflexive_enter_changes_nothing(tmp_path):
    app, journal, _ = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.session.declare("P1 Checkout down")
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        assert app.screen is not app.main  # a list to choose from, nothing changed yet
        assert _statuses(journal) == ["Investigating"]
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert labels[0].startswith("● Investigating") and "(now)" in labels[0]
        assert options.highlighted == 0
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("s", "escape")
        await pilot.pause()
        assert _statuses(journal) == ["Investigating"]


async def test_a_status_chosen_by_mistake_is_taken_back_from_the_same_list(tmp_path):
    from console.widgets.timeline import TimelinePane

    app, journal, clock = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.session.declare("P1 Checkout down")
        await pilot.pause()
        await pilot.press("s", "down", "down", "enter")  # Monitoring
        await pilot.pause()
        assert _statuses(journal)[-1] == "Monitoring"
        clock.at(1)
        await pilot.press("s")
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        last = str(options.get_option_at_index(options.option_count - 1).prompt)
        assert "Take back" in last and "Monitoring" in last and "back to Investigating" in last
        options.highlighted = options.option_count - 1
        await pilot.press("enter")
        await pilot.pause()
        assert _statuses(journal)[-1] == "Investigating"
        incident = Incident.from_events(journal.events(), clock())
        assert incident.status == "Investigating" and incident.mitigated_at is None
        timeline = app.query_one(TimelinePane).table
        assert "took back Monitoring" in timeline.get_row_at(timeline.row_count - 1)[2].plain


async def test_the_palette_offers_every_status_and_taking_back(tmp_path):
    app, journal, _ = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.session.declare("P1 Checkout down")
        commands = {title: callback for title, _, callback in app.main.commands()}
        assert {"Set status…", "Set status: Identified", "Set status: Resolved",
                "Take back the last status or severity change"} <= set(commands)
        commands["Set status: Resolved"]()
        await pilot.pause()
        commands["Take back the last status or severity change"]()
        await pilot.pause()
    assert _statuses(journal) == ["Investigating", "Resolved", "Investigating"]
