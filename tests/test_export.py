"""The post-mortem and status updates of a demo incident, against golden
files, and what hostile strings become in them.

Regenerate the golden files after an intended change with
``UPDATE_GOLDEN=1 python -m pytest tests/test_export.py`` and read the diff."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from console.incident.export import code, describe, journal_json, md, postmortem_markdown
from console.incident.journal import Journal
from console.incident.state import Incident
from console.incident.updates import CHANNELS, compose
from scripted import Clock

GOLDEN = Path(__file__).parent / "golden"
T0 = datetime(2026, 11, 22, 14, 30, tzinfo=timezone.utc)
ALICE = {"user": "alice", "ssh_client": "10.0.0.5"}
BOB = {"user": "bob", "ssh_client": "10.0.0.6"}
HOSTILE = ("\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07<script>alert(1)</script> [click](http://evil.example) "
           "`code` ``two`` *bold* _it_ | ~~gone~~ $x$ &amp; \u202edesrever\x00\r\n## Fake heading")




def demo_walk(tmp_path: Path) -> tuple[Journal, Clock, dict[str, datetime]]:
    """A P1 incident from alert to resolution, as two responders would
    journal it; returns the journal, its clock and when things happened."""
    clock = Clock(T0)
    alice = Journal(tmp_path / "incident.json", operator=ALICE, clock=clock)
    bob = Journal(tmp_path / "incident.json", operator=BOB, clock=clock)
    clock.at(2)
    alice.append("incident.declared", title="API returning 500s", severity="P1")
    alice.append("incident.detected", at=T0)
    clock.at(3)
    alice.append("incident.acknowledged")
    alice.append("incident.role", role="commander", person="alice")
    bob.append("incident.role", role="scribe", person="bob")
    clock.at(4)
    alice.append("threshold.crossed", source="api", kind="http", metric="error_ratio", value=0.31,
                 limit=0.05, state="critical", previous="ok")
    clock.at(5)
    alice.append("playbook.started", playbook="db-connections")
    alice.append("probe", playbook="db-connections", step="count", source="primary",
                 query="SELECT count(*) FROM pg_stat_activity", ok=True, output="98\n", error=None)
    alice.append("playbook.tick", playbook="db-connections", step="count", auto=True)
    clock.at(7)
    wrong = bob.note("Redis is evicting keys #root-cause")
    finding = bob.note("98 of 100 connections idle in transaction on replica #finding")
    clock.at(8)
    bob.append("note.struck", note_id=wrong.id)
    bob.append("note.corrected", note_id=finding.id,
               text="98 of 100 connections idle in transaction on primary #finding")
    clock.at(9)
    alice.append("source.lost", source="cache", kind="redis", error="timed out after 2.0s")
    clock.at(10)
    bob.note("Connection leak in the aggregator since deploy 4711 #root-cause", pinned=True)
    alice.append("incident.status", status="Identified")
    clock.at(11)
    alice.append("source.recovered", source="cache", kind="redis")
    clock.at(12)
    alice.append("update.sent", channel="internal", text="Incident Update #2 (14:42 UTC)\nStatus: Identified")
    clock.at(15)
    alice.append("command", playbook="db-connections", step="rollback", command="kubectl rollout undo deploy/api",
                 exit_code=0, output="deployment.apps/api rolled back")
    clock.at(18)
    alice.append("action", playbook="db-connections", step="terminate", action="terminate idle backends",
                 target="primary", ok=True, result="41 backends terminated", confirmed_by="alice")
    alice.append("playbook.tick", playbook="db-connections", step="terminate", auto=False)
    clock.at(20)
    alice.append("incident.status", status="Monitoring")
    clock.at(25)
    bob.note("About 500 users saw errors for 20 minutes #impact")
    bob.note("Rolled back deploy 4711 and terminated idle backends #resolution")
    bob.note("Rollback took two minutes #went-well")
    bob.note("No alert on connection pool usage #went-wrong")
    bob.note("Alert when the pool is over 80% #action")
    bob.note("Load test before feature launches #lesson")
    clock.at(42)
    alice.append("incident.status", status="Resolved")
    bob.refresh()
    times = {"detected": T0, "acknowledged": T0 + timedelta(minutes=3),
             "mitigated": T0 + timedelta(minutes=20), "resolved": T0 + timedelta(minutes=42)}
    return alice, clock, times


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from its golden file"


def test_the_demo_incident_exports_the_post_mortem_of_what_happened(tmp_path):
    journal, clock, times = demo_walk(tmp_path)
    events = journal.events()
    text = postmortem_markdown(events, clock.at(60))
    check_golden("postmortem_demo.md", text)

    appendix = text.split("## Appendix: Full Journal (UTC)\n\n")[1].splitlines()
    entries = [line for line in appendix if line.startswith("- **")]
    folded = [e for e in events if e.kind in ("note.corrected", "note.struck")]
    assert len(entries) == len(events) - len(folded)  # every other event, one line, newest last
    assert "~~Note: Redis is evicting keys #root-cause~~" in text
    assert "Redis is evicting" not in text.split("## Appendix")[0]  # struck: out of every section
    assert "on replica" not in text  # a corrected note once, in its last version
    assert "\\#" not in text.split("## Appendix")[0] and "#root-cause" not in text.split("## Appendix")[0]
    incident = Incident.from_events(events, clock.now)
    assert (incident.tta, incident.ttm, incident.ttr) == (
        times["acknowledged"] - times["detected"], times["mitigated"] - times["detected"],
        times["resolved"] - times["detected"])
    assert "- **Time to acknowledge (TTA):** 3 min" in text
    assert "- **Time to mitigate (TTM):** 20 min" in text
    assert "- **Time to resolve (TTR):** 42 min" in text
    assert "## Root Cause\n\n1. Connection leak in the aggregator since deploy 4711\n" in text


def test_the_demo_incident_status_updates(tmp_path):
    journal, clock, _ = demo_walk(tmp_path)
    events = journal.events()
    identified = Incident.from_events([e for e in events if e.at <= T0 + timedelta(minutes=12)],
                                      T0 + timedelta(minutes=12))
    resolved = Incident.from_events(events, clock.at(43))
    parts = []
    for label, incident in (("identified", identified), ("resolved", resolved)):
        for channel in CHANNELS:
            parts.append(f"===== {channel}, {label} =====\n{compose(channel, incident, incident.now)}")
    check_golden("updates_demo.txt", "\n".join(parts))


def test_the_raw_journal_is_every_event_as_stored(tmp_path):
    journal, _, _ = demo_walk(tmp_path)
    raw = json.loads(journal_json(journal.events()))
    assert raw["events"] == [event.to_document() for event in journal.events()]
    on_disk = json.loads((tmp_path / "incident.json").read_text())["events"]
    assert sorted(doc["id"] for doc in raw["events"]) == sorted(doc["id"] for doc in on_disk.values())


def _walk_with_hostile_strings(tmp_path: Path) -> Journal:
    clock = Clock(T0)
    journal = Journal(tmp_path / "hostile.json", operator={"user": "ev\x1b[1mil", "ssh_client": None}, clock=clock)
    journal.append("incident.declared", title=HOSTILE, severity="P0")
    journal.append("incident.role", role="commander", person=HOSTILE)
    for tag in ("root-cause", "impact", "resolution", "went-well", "went-wrong", "action", "lesson", "summary"):
        clock.at(1)
        journal.note(f"{HOSTILE} #{tag}")
    journal.note("#leading hash\n# and a heading #action")
    journal.note("1. looks like a list #lesson")
    journal.append("probe", playbook=HOSTILE, step=HOSTILE, source=HOSTILE, query=HOSTILE, ok=False,
                   output=HOSTILE, error=HOSTILE)
    journal.append("action", playbook="p", step="s", action="run `x` and ``y``", target="`", ok=True,
                   result=HOSTILE, confirmed_by=HOSTILE)
    journal.append("threshold.crossed", source=HOSTILE, kind="http", metric=HOSTILE, value=HOSTILE,
                   limit=1, state="critical", previous="ok")
    journal.append("update.sent", channel=HOSTILE, text=HOSTILE)
    journal.append("some.future.kind", **{"weird key": HOSTILE})
    clock.at(5)
    journal.append("incident.status", status="Resolved")
    return journal


# The seed template's sections, one for one, then the journal.
SECTIONS = ["## Summary", "## Timeline", "## Impact", "## Response Times", "## Root Cause", "## Resolution",
            "## Prevention", "## Lessons Learned", "## Action Items", "## Appendix: Full Journal (UTC)"]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_hostile_strings_are_inert_in_the_post_mortem(tmp_path):
    journal = _walk_with_hostile_strings(tmp_path)
    text = postmortem_markdown(journal.events(), T0 + timedelta(minutes=10))
    assert not CONTROL.search(text), "a control character or escape reached the document"
    headings = [line for line in text.splitlines() if line.startswith("# ") or line.startswith("## ")]
    assert headings == [headings[0]] + SECTIONS
    assert headings[0].startswith("# Incident Report: 2026-11-22 - ")
    for markup in (r"<script", r"\[click", r"`code", r"``two", r"\*bold", r"_it", r"~~gone", r"\$x", r"&amp;",
                   r"\| "):
        assert not re.search(r"(?<!\\)" + markup, text), f"{markup} is live markup in the document"
    for block_start in ("- [ ] \\#leading hash", "2. 1\\. looks like a list"):
        assert any(block_start in line for line in text.splitlines()), block_start
    assert "``` run `x` and ``y`` ```" in text
    assert "`` ` ``" in text  # a lone backtick in its own span


def test_hostile_strings_are_inert_in_updates_and_the_raw_journal(tmp_path):
    journal = _walk_with_hostile_strings(tmp_path)
    for upto in (3, len(journal.events())):
        incident = Incident.from_events(journal.events()[:upto], T0 + timedelta(minutes=10))
        for channel in CHANNELS:
            assert not CONTROL.search(compose(channel, incident, incident.now).replace("\n", ""))
    raw = journal_json(journal.events())
    assert not CONTROL.search(raw.replace("\n", "")) and "\\u001b" in raw
    assert json.loads(raw)["events"][0]["data"]["title"] == HOSTILE  # kept exactly, escaped
    with pytest.raises(ValueError, match="internal, status-page, email"):
        compose("pager", incident, incident.now)


def test_every_kind_of_event_is_described_in_one_line(tmp_path):
    journal = _walk_with_hostile_strings(tmp_path)
    incident = Incident.from_events(journal.events(), T0)
    for event in journal.events():
        line = describe(event, incident)
        assert line and "\n" not in line and not CONTROL.search(line)
    kinds = {e.kind for e in demo_walk(tmp_path / "demo")[0].events()}
    assert {"incident.declared", "incident.detected", "incident.acknowledged", "incident.role",
            "incident.status", "note", "note.struck", "note.corrected", "playbook.started", "playbook.tick",
            "probe", "command", "action", "threshold.crossed", "source.lost", "source.recovered",
            "update.sent"} <= kinds


@pytest.mark.parametrize("value, said", [
    ("plain", "plain"), ("a*b_c", "a\\*b\\_c"), ("# heading", "\\# heading"), ("> quote", "\\> quote"),
    ("- item", "\\- item"), ("12. item", "12\\. item"), ("<b>", "\\<b\\>"), ("[x](y)", "\\[x\\](y)"),
    ("a\nb", "a b"), ("\x1b[31mred", "\ufffdred")])
def test_markdown_text_shows_as_written(value, said):
    assert md(value) == said


@pytest.mark.parametrize("value, said", [
    ("ls", "`ls`"), ("a `b` c", "``a `b` c``"), ("`", "`` ` ``"), ("x ``y``", "``` x ``y`` ```")])
def test_code_spans_cannot_be_closed_from_inside(value, said):
    assert code(value) == said



def test_a_taken_back_change_and_a_suggestion_read_as_what_they_were(tmp_path):
    journal = Journal(tmp_path / "i.json", operator={"user": "oncall", "ssh_client": ""})
    journal.append("playbook.suggested", playbook="pool-exhausted", title="Pool exhausted")
    journal.append("incident.status", status="Identified", undoes="e1", undone="Monitoring")
    suggested, status = journal.events()[-2:]
    assert describe(suggested) == "Playbook suggested: pool-exhausted"
    assert describe(status) == "Status: Identified (took back Monitoring)"


def test_an_actions_table_of_results_is_a_code_block_and_its_first_line_the_resolution(tmp_path):
    """Seen in a demo walk: 32 signalled sessions flattened into one line of the report."""
    journal = Journal(tmp_path / "i.json", operator={"user": "oncall", "ssh_client": ""})
    journal.append("incident.declared", title="Pool", severity="P1")
    table = "32 of 32 matching sessions signalled\n  pid  user\n-----  ----\n15481  checkout"
    journal.append("action", action="terminate_backend", target="idle sessions", source="app-db", ok=True,
                   result=table, output=table, playbook="pane", step="postgres.terminate_backend",
                   confirmed_by="checkout-api")
    report = postmortem_markdown(journal.events(), journal.events()[-1].at)
    resolution = report.split("## Resolution")[1].split("##")[0]
    assert "32 of 32 matching sessions signalled" in resolution and "15481" not in resolution
    appendix = report.split("## Appendix")[1]
    assert "  ```\n  32 of 32 matching sessions signalled\n    pid  user\n  -----  ----\n  15481  checkout\n  ```" \
        in appendix
