"""The incident report against golden files: a scripted incident that fills
every section of the seed template, and one where nobody tagged anything.

Regenerate after an intended change with
``UPDATE_GOLDEN=1 python -m pytest tests/test_incident_report.py`` and read the diff."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from console.incident.export import postmortem_markdown
from console.incident.impact import failed_requests
from console.incident.journal import CONSOLE, Journal
from console.incident.state import Incident
from console.incident.tags import TAGS
from scripted import Clock
from test_export import ALICE, BOB, SECTIONS, T0, check_golden

PLAYBOOKS = {"error-spike": SimpleNamespace(id="error-spike", title="High error rate", steps=(
    SimpleNamespace(id="pattern", title="Identify the error pattern"),
    SimpleNamespace(id="rollback", title="Roll back the last deploy"),
    SimpleNamespace(id="canary", title="Add a canary stage to deploys"),
))}


def _readings(ratio: float, rate: float) -> list[dict]:
    return [{"kind": "errors", "name": "api", "state": "critical" if ratio > 0.05 else "ok",
             "metrics": {"error_ratio": ratio, "request_rate": rate, "p95_latency_s": 1.2}},
            {"kind": "postgres", "name": "primary", "state": "ok",
             "metrics": {"connections_total": 31, "usable_connections": 37}},
            {"kind": "redis", "name": "cache", "state": "ok", "metrics": {"used_memory": 48_234_496}},
            {"kind": "kubernetes", "name": "app", "state": "warning", "metrics": {"unavailable_replicas": 2.0}}]


def scripted_incident(tmp_path: Path, tagged: bool = True) -> tuple[Journal, Clock]:
    """An error spike the console saw two minutes before anyone declared it."""
    clock = Clock(T0)
    console = Journal(tmp_path / "incident.json", operator=CONSOLE, clock=clock)
    alice = Journal(tmp_path / "incident.json", operator=ALICE, clock=clock)
    bob = Journal(tmp_path / "incident.json", operator=BOB, clock=clock)
    alarm = console.append("threshold.crossed", source="api", kind="errors", metric="error_ratio", value=0.25,
                           limit=0.05, state="critical", previous="ok")
    console.append("moment", at=alarm.id, readings=_readings(0.25, 40.0))
    clock.at(2)
    declared = alice.append("incident.declared", title="Checkout returning 500s", severity="P1")
    console.append("moment", at=declared.id, readings=_readings(0.25, 40.0))
    clock.at(3)
    alice.append("incident.acknowledged")
    alice.append("incident.role", role="commander", person="alice")
    alice.append("playbook.started", playbook="error-spike")
    alice.append("probe", playbook="error-spike", step="pattern", source="api", ok=True,
                 query="topk(3, rate(http_requests_total{status=~\"5..\"}[5m]))",
                 output="route          code  rate\n/checkout      502   9.8\n/cart          500   0.2\n")
    alice.append("playbook.tick", playbook="error-spike", step="pattern", auto=False)
    clock.at(5)
    wrong = bob.note("Payment provider is down #root-cause")
    bob.append("note.struck", note_id=wrong.id)
    cause = bob.note("Deploy 812 sends checkout to a retired backend #rootcause")
    clock.at(6)
    bob.append("note.corrected", note_id=cause.id, text="Deploy 812 points checkout at a retired backend #root-cause")
    alice.append("incident.status", status="Identified")
    if tagged:
        alice.note("Roll back rather than hot-fix: the backend is gone #decision")
    clock.at(8)
    alice.append("command", playbook="error-spike", step="rollback", command="kubectl rollout undo deploy/checkout",
                 exit_code=0, output="deployment.apps/checkout rolled back\n")
    alice.append("playbook.tick", playbook="error-spike", step="rollback", auto=False)
    console.append("moment", readings=_readings(0.02, 38.0))
    console.append("threshold.crossed", source="api", kind="errors", metric="error_ratio", value=0.02,
                   limit=None, state="ok", previous="critical")
    clock.at(9)
    alice.append("incident.status", status="Monitoring")
    if tagged:
        clock.at(20)
        bob.note("About 1200 shoppers could not pay #impact")
        bob.note("$18k of orders delayed, none lost #impact")
        bob.note("Deploys check that their backends exist #prevention")
        bob.note("The alert fired within a minute #went-well")
        bob.note("Nobody declared for two minutes #went-wrong")
        bob.note("A deploy can outlive its backend #lesson")
        bob.note("@carol remove the retired backend from service discovery #action")
        bob.note("Add a declare-now button to the alert @dave #action")
        bob.note("Checkout broke for 30 minutes #timeline-only", pinned=True)
    clock.at(30)
    alice.append("incident.status", status="Resolved")
    return alice, clock


def test_a_scripted_incident_fills_every_section_of_the_template(tmp_path):
    journal, clock = scripted_incident(tmp_path)
    text = postmortem_markdown(journal.events(), clock.at(60), playbooks=PLAYBOOKS)
    check_golden("report_every_section.md", text)
    assert [line for line in text.splitlines() if line.startswith("## ")] == SECTIONS
    sections = text.split("## Appendix")[0]
    assert "Not recorded" not in sections and "not recorded" not in sections
    for tag in TAGS:
        assert f"#{tag}" not in sections
    assert "Payment provider" not in sections and "sends checkout" not in sections
    assert "- [ ] @carol: remove the retired backend from service discovery" in text
    assert "- [ ] @dave: Add a declare-now button to the alert" in text
    assert "- [ ] Add a canary stage to deploys (step of High error rate left unticked)" in text
    assert "Roll back the last deploy (step" not in text
    assert "  ```\n  route          code  rate\n  /checkout      502   9.8\n" in text
    assert "- **Time to acknowledge (TTA):** 3 min" in text  # from the first alarm, not the declaration


def test_an_incident_nobody_tagged_still_reads_as_a_report(tmp_path):
    journal, clock = scripted_incident(tmp_path / "untagged", tagged=False)
    events = [e for e in journal.events() if e.kind != "note"]
    text = postmortem_markdown(events, clock.at(60))
    check_golden("report_untagged.md", text)
    assert [line for line in text.splitlines() if line.startswith("## ")] == SECTIONS
    assert "Not recorded (a note tagged #root-cause goes here)." in text


def test_a_summary_note_replaces_the_generated_summary(tmp_path):
    journal, clock = scripted_incident(tmp_path)
    journal.note("Checkout failed for 8 minutes after deploy 812. #summary")
    text = postmortem_markdown(journal.events(), clock.at(60))
    assert "## Summary\n\nCheckout failed for 8 minutes after deploy 812.\n\n## Timeline" in text


def test_failed_requests_are_rate_times_ratio_over_the_window(tmp_path):
    journal, clock = scripted_incident(tmp_path)
    incident = Incident.from_events(journal.events(), clock.now)
    failed = failed_requests(journal.events(), incident.detected_at, incident.resolved_at)
    # 8 min at 25% of 40/s, then 22 min at 2% of 38/s
    assert failed.estimated_from == ("api",)
    assert round(failed.count) == round(8 * 60 * 0.25 * 40 + 22 * 60 * 0.02 * 38)
    only_crossings = [e for e in journal.events() if e.kind != "moment"]
    assert failed_requests(only_crossings, incident.detected_at, incident.resolved_at).count is None


def test_an_estimate_ignores_readings_outside_the_incident(tmp_path):
    journal, clock = scripted_incident(tmp_path)
    start = T0 + timedelta(minutes=8)
    failed = failed_requests(journal.events(), start, start + timedelta(minutes=1))
    assert round(failed.count) == round(60 * 0.02 * 38)


def test_every_tag_the_report_understands_is_discoverable():
    from textual.widgets import Input

    from console.cli import _parser
    from console.widgets.timeline import TimelinePane

    prompt = next(w for w in TimelinePane().compose() if isinstance(w, Input)).placeholder
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    note_help = " ".join(_parser()._subparsers._group_actions[0].choices["note"].format_help().split())
    for tag in TAGS:
        assert f"#{tag}" in prompt.split(), tag
        assert f"#{tag}" in note_help, tag
        assert f"`#{tag}`" in readme, tag
