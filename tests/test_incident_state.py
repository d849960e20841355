"""The incident computed from its journal: lifecycle, TTA/TTM/TTR with an
injected clock, corrections and strikes, severity schemes, update countdown."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from console.incident.journal import Journal, current_operator, parse_tags, untagged
from console.incident.state import (P_SCHEME, SEV_SCHEME, Incident, format_duration, scheme_for,
                                    update_countdown)
from scripted import Clock

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
ALICE = {"user": "alice", "ssh_client": "10.0.0.5"}




@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def journal(tmp_path, clock):
    j = Journal(tmp_path / "incident.json", operator=ALICE, clock=clock)
    yield j
    j.close()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_lifecycle_and_durations_follow_what_happened(journal, clock):
    clock.at(3)
    journal.append("incident.declared", title="API returning 500s", severity="P1")
    journal.append("incident.detected", at=T0)  # the alert fired three minutes earlier
    clock.at(5)
    journal.append("incident.acknowledged")
    journal.append("incident.role", role="commander", person="alice")
    journal.append("incident.role", role="scribe", person="bob")
    clock.at(12)
    journal.append("incident.status", status="Identified")

    now = clock.at(15)
    incident = Incident.from_events(journal.events(), now)
    assert (incident.title, incident.severity, incident.status) == ("API returning 500s", "P1", "Identified")
    assert incident.commander == "alice" and dict(incident.roles) == {"commander": "alice", "scribe": "bob"}
    assert incident.declared_at == T0 + minutes(3) and incident.detected_at == T0
    assert incident.tta == minutes(5) and incident.ttm is None and incident.ttr is None
    assert incident.elapsed == minutes(15) and not incident.resolved

    clock.at(20)
    journal.append("incident.mitigated")
    clock.at(30)
    journal.append("incident.status", status="Monitoring")  # the explicit mitigation counts
    clock.at(42)
    journal.append("incident.status", status="Resolved")
    later = clock.at(90)
    done = Incident.from_events(journal.events(), later)
    assert done.status == "Resolved" and done.resolved
    assert (done.tta, done.ttm, done.ttr) == (minutes(5), minutes(20), minutes(42))
    assert done.elapsed == minutes(42)  # the clock stops at resolution
    assert done.next_update_due is None


def test_detection_defaults_to_declaration_and_monitoring_counts_as_mitigation(journal, clock):
    clock.at(0)
    journal.append("incident.declared", title="Checkout slow", severity="P2")
    clock.at(10)
    journal.append("incident.status", status="Monitoring")
    clock.at(11)
    journal.append("incident.status", status="Identified")  # back: the fix did not hold
    clock.at(25)
    journal.append("incident.status", status="Monitoring")
    incident = Incident.from_events(journal.events(), clock.at(30))
    assert incident.detected_at == incident.declared_at == T0
    assert incident.ttm == minutes(10) and incident.tta is None

    clock.at(40)
    journal.append("incident.status", status="Resolved")
    clock.at(45)
    journal.append("incident.status", status="Investigating")  # reopened
    reopened = Incident.from_events(journal.events(), clock.at(50))
    assert reopened.resolved_at is None and reopened.ttr is None and reopened.elapsed == minutes(50)


def test_a_later_detection_event_corrects_the_first(journal, clock):
    clock.at(5)
    journal.append("incident.declared", title="x", severity="P0")
    journal.append("incident.detected", at=T0 + minutes(2))
    journal.append("incident.detected", at=T0 + minutes(1))
    assert Incident.from_events(journal.events(), clock.now).detected_at == T0 + minutes(1)


def test_the_first_alarm_before_the_declaration_is_the_detection(journal, clock):
    journal.append("threshold.crossed", source="db", kind="postgres", metric="connections_ratio", value=0.99,
                   limit=0.95, state="critical", previous="ok")  # an earlier episode, cleared
    clock.at(1)
    journal.append("threshold.crossed", source="db", kind="postgres", metric="connections_ratio", value=0.5,
                   limit=None, state="ok", previous="critical")
    clock.at(2)
    journal.append("source.lost", source="cache", kind="redis", error="timed out")
    clock.at(3)
    journal.append("threshold.crossed", source="api", kind="errors", metric="error_ratio", value=0.3,
                   limit=0.05, state="critical", previous="ok")
    journal.append("source.recovered", source="cache", kind="redis")  # api still firing
    clock.at(5)
    journal.append("incident.declared", title="x", severity="P1")
    clock.at(6)
    journal.append("source.lost", source="db", kind="postgres", error="refused")  # after: not detection
    clock.at(8)
    journal.append("incident.acknowledged")
    incident = Incident.from_events(journal.events(), clock.now)
    assert incident.declared_at == T0 + minutes(5)
    assert incident.detected_at == T0 + minutes(2)
    assert incident.tta == minutes(6)


def test_alarms_that_all_cleared_before_the_declaration_are_not_its_detection(journal, clock):
    journal.append("source.state", source="api", kind="http", state="critical", previous="ok", reason="503")
    clock.at(1)
    journal.append("source.state", source="api", kind="http", state="ok", previous="critical")
    clock.at(4)
    journal.append("incident.declared", title="x", severity="P1")
    assert Incident.from_events(journal.events(), clock.now).detected_at == T0 + minutes(4)


def test_an_operator_said_detection_wins_over_the_first_alarm(journal, clock):
    clock.at(2)
    journal.append("source.lost", source="cache", kind="redis", error="timed out")
    clock.at(5)
    journal.append("incident.declared", title="x", severity="P1")
    journal.append("incident.detected", at=T0 + minutes(1))
    assert Incident.from_events(journal.events(), clock.now).detected_at == T0 + minutes(1)


def test_notes_keep_their_history_when_corrected_struck_and_pinned(journal, clock):
    clock.at(1)
    first = journal.note("pool exhausted on replica #finding")
    clock.at(2)
    wrong = journal.note("it is the cache #root-cause")
    clock.at(3)
    journal.append("note.corrected", note_id=first.id, text="pool exhausted on primary #finding #decision")
    clock.at(4)
    journal.append("note.struck", note_id=wrong.id)
    journal.append("note.pinned", note_id=first.id, pinned=True)
    journal.append("note.corrected", note_id="no-such-note", text="ignored")
    clock.at(5)
    pinned_then_unpinned = journal.note("temporary #action", pinned=True)
    journal.append("note.pinned", note_id=pinned_then_unpinned.id, pinned=False)

    incident = Incident.from_events(journal.events(), clock.now)
    note = incident.note(first.id)
    assert [v.text for v in note.versions] == ["pool exhausted on replica #finding",
                                               "pool exhausted on primary #finding #decision"]
    assert note.text == note.versions[-1].text and note.corrected and note.body == "pool exhausted on primary"
    assert note.tags == ("finding", "decision") and note.pinned and not note.struck
    struck = incident.note(wrong.id)
    assert struck.struck and struck.struck_at == T0 + minutes(4) and struck.struck_by == "alice"
    assert incident.tagged("root-cause") == ()  # struck notes feed no section
    assert incident.tagged("#decision") == (note,)
    assert incident.pinned == (note,)
    assert len(incident.notes) == 3 and len(incident.live_notes) == 2


def test_checklist_ticks_last_tick_or_untick_wins(journal, clock):
    journal.append("playbook.started", playbook="pg-connections")
    journal.append("playbook.tick", playbook="pg-connections", step="count", auto=True)
    journal.append("playbook.tick", playbook="pg-connections", step="terminate", auto=False)
    clock.at(1)
    journal.append("playbook.untick", playbook="pg-connections", step="terminate", auto=False)
    journal.append("playbook.started", playbook="pg-connections")
    incident = Incident.from_events(journal.events(), clock.now)
    assert incident.playbooks == ("pg-connections",)
    assert incident.ticked("pg-connections", "count") and incident.checklist[("pg-connections", "count")].auto
    assert not incident.ticked("pg-connections", "terminate")
    assert not incident.ticked("pg-connections", "never")


def test_severity_schemes_follow_the_seed_runbooks():
    assert [(lvl.code, lvl.response, lvl.update_every) for lvl in P_SCHEME.levels] == [
        ("P0", "< 15 minutes", minutes(15)), ("P1", "< 1 hour", minutes(15)),
        ("P2", "< 4 hours", minutes(60)), ("P3", "< 24 hours", None)]
    assert P_SCHEME.level("p0").label == "P0 - Critical"
    assert [lvl.respond_within for lvl in SEV_SCHEME.levels] == [minutes(15), minutes(30), minutes(120), None]
    assert SEV_SCHEME.level("SEV2").label == "SEV2 - Major functionality impaired"
    assert scheme_for("SEV3") is SEV_SCHEME and scheme_for("P2") is P_SCHEME and scheme_for(None) is P_SCHEME
    faster = P_SCHEME.with_cadence({"p2": minutes(30), "P3": minutes(120)})
    assert faster.level("P2").update_every == minutes(30) and faster.level("P3").update_every == minutes(120)
    assert P_SCHEME.level("P2").update_every == minutes(60)  # the default is untouched
    with pytest.raises(ValueError, match="SEV1"):
        P_SCHEME.with_cadence({"SEV1": minutes(5)})


def test_the_scheme_comes_from_the_declared_severity_and_sets_the_response_target(journal, clock):
    clock.at(2)
    journal.append("incident.declared", title="x", severity="SEV2")
    journal.append("incident.detected", at=T0)
    incident = Incident.from_events(journal.events(), clock.now)
    assert incident.scheme is SEV_SCHEME and incident.level.code == "SEV2"
    assert incident.respond_by == T0 + minutes(30)
    assert incident.next_update_due == T0 + minutes(2 + 30)


def test_update_countdown_runs_from_the_last_update_and_turns_negative_when_overdue(journal, clock):
    journal.append("incident.declared", title="x", severity="P1")
    incident = Incident.from_events(journal.events(), clock.now)
    assert update_countdown(incident, T0 + minutes(10)) == minutes(5)
    assert update_countdown(incident, T0 + minutes(20)) == minutes(-5)

    clock.at(20)
    journal.append("update.sent", channel="internal", text="Incident Update #2")
    incident = Incident.from_events(journal.events(), clock.now)
    assert incident.last_update.channel == "internal"
    assert update_countdown(incident, T0 + minutes(21)) == minutes(14)

    clock.at(22)
    journal.append("incident.severity", severity="P3")  # no cadence at P3
    assert update_countdown(Incident.from_events(journal.events(), clock.now), clock.now) is None
    custom = Incident.from_events(journal.events(), clock.now, cadence={"P3": minutes(60)})
    assert update_countdown(custom, T0 + minutes(30)) == minutes(50)

    clock.at(23)
    journal.append("incident.severity", severity="P0")
    journal.append("incident.status", status="Resolved")
    assert update_countdown(Incident.from_events(journal.events(), clock.now), clock.now) is None


def test_nothing_declared_is_an_empty_incident():
    incident = Incident.from_events([], T0)
    assert incident.title is None and incident.status is None and not incident.declared
    assert incident.elapsed is None and incident.next_update_due is None and update_countdown(incident, T0) is None


def test_from_events_is_pure_and_ignores_input_order(journal, clock):
    for n in range(30):
        clock.at(n)
        kind = ["note", "incident.status", "playbook.tick", "incident.role"][n % 4]
        if n == 0:
            journal.append("incident.declared", title="t", severity="P1")
        elif kind == "note":
            journal.note(f"note {n} #finding")
        elif kind == "incident.status":
            journal.append(kind, status=["Investigating", "Identified", "Monitoring"][n % 3])
        elif kind == "playbook.tick":
            journal.append(kind, playbook="p", step=n % 3, auto=False)
        else:
            journal.append(kind, role="commander", person=f"p{n}")
    events = list(journal.events())
    shuffled = events[:]
    random.Random(1).shuffle(shuffled)
    assert Incident.from_events(shuffled, clock.now) == Incident.from_events(events, clock.now)


@pytest.mark.parametrize("span, said", [
    (timedelta(seconds=42), "42 s"), (minutes(42), "42 min"), (minutes(72), "1 h 12 min"),
    (minutes(120), "2 h"), (timedelta(days=2, hours=3), "2 d 3 h"), (minutes(-5), "-5 min")])
def test_durations_read_like_a_post_mortem(span, said):
    assert format_duration(span) == said


def test_tags_are_words_after_a_hash():
    text = "pool #Root-Cause exhausted #decision see issue#12 #123 http://x/#frag #root-cause #went-well"
    assert parse_tags(text) == ["root-cause", "decision", "went-well"]
    assert untagged("Rolled back #resolution #went-well") == "Rolled back"
    assert untagged("#action") == "#action"


def test_the_operator_is_the_user_and_the_ssh_client_address():
    assert current_operator({"USER": "carol", "SSH_CLIENT": "192.0.2.7 51234 22"}) == \
        {"user": "carol", "ssh_client": "192.0.2.7"}
    assert current_operator({"LOGNAME": "dave", "SSH_CONNECTION": "2001:db8::1 5 2001:db8::2 22"}) == \
        {"user": "dave", "ssh_client": "2001:db8::1"}
    assert current_operator({"USER": "erin"})["ssh_client"] is None


def test_events_survive_the_file_as_they_were_appended(tmp_path, clock):
    path = tmp_path / "incident.json"
    journal = Journal(path, operator=ALICE, clock=clock)
    sent = journal.append("threshold.crossed", source="primary", kind="postgres", metric="connections",
                          value=97.5, limit=float("inf"), state="critical", previous="warning",
                          at=T0, extra={"nested": [1, (2, 3)]})
    again = Journal(path, operator=ALICE).events()
    assert again == (sent,)
    assert again[0].data["limit"] == "inf" and again[0].data["at"] == "2026-11-22T10:00:00.000000Z"
    assert again[0].data["extra"]["nested"] == (1, (2, 3))
    with pytest.raises(TypeError):
        sent.data["value"] = 1  # events are immutable
    with pytest.raises(TypeError):
        journal.append("note", text=object())
