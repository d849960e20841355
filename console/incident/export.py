"""The journal, turned into the incident report or handed over raw.

:func:`postmortem_markdown` fills the incident-report template of seed 000
section for section: Summary (generated, or the ``#summary`` note), Timeline
(milestones, pinned and tagged notes), Impact (with failed requests estimated
from the error-rate readings, see :mod:`console.incident.impact`), Response
Times, Root Cause, Resolution, Prevention, Lessons Learned and Action Items,
then the full journal as an appendix. Which tag goes where is defined once,
in :mod:`console.incident.tags`; sections show a note's last version without
its tags, and struck notes only in the appendix, struck.

What operators typed and monitored systems sent is made inert (no escape
sequences or control characters) and, in markdown, cannot act as markup:
no links, HTML, emphasis, headings or code fences of its own.
:func:`describe` is the one-line wording of an event, shared with the
console's timeline pane.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Iterable, Mapping

from console import secrets as secret_values
from console import units
from console.incident.impact import FailedRequests, failed_requests
from console.incident.journal import _TAG, CONSOLE, Event, in_order, parse_time, untagged
from console.incident.state import Incident, Note, format_duration, is_alarm
from console.incident.tags import TAGS, TIMELINE_LABEL
from console.readings import metric_value
from console.text import first_line, inert

TEXT_LIMIT = 500
OUTPUT_LIMIT = 160

# Backslash-escaped wherever they appear: inline markup, HTML, links, tables,
# strikethrough and math.
_INLINE = re.compile(r"([\\`*_\[\]<>|~&$])")
# What would start a block when it leads a list item: heading, quote, list,
# thematic break, setext underline; and an ordered list's "1." or "1)".
_LEADING = re.compile(r"^([#>+\-=])")
_ORDERED = re.compile(r"^(\d+)([.)])")


# -- one line per event ---------------------------------------------------------

def _took_back(d: Mapping[str, Any]) -> str:
    """A change that undoes another says so: the post-mortem must not read as two decisions."""
    return f" (took back {_t(d.get('undone'))})" if d.get("undoes") else ""


def describe(event: Event, incident: Incident | None = None) -> str:
    """``event`` in one line of plain, inert text. With ``incident``, notes
    that a correction, strike or pin refers to are quoted."""
    d = event.data
    kind = event.kind
    if kind == "incident.declared":
        return f"Incident declared: {_q(d.get('title'))} ({_t(d.get('severity'))})"
    if kind == "incident.severity":
        return f"Severity set to {_t(d.get('severity'))}" + _took_back(d)
    if kind == "incident.status":
        return f"Status: {_t(d.get('status'))}" + _took_back(d)
    if kind == "incident.role":
        person = d.get("person")
        return f"{_t(person)} is {_t(d.get('role'))}" if person else f"No {_t(d.get('role'))} any more"
    if kind == "incident.acknowledged":
        return "Incident acknowledged"
    if kind == "incident.mitigated":
        return "Incident mitigated"
    if kind == "incident.detected":
        return f"Detected at {_hms(d.get('at'))}" if d.get("at") else "Incident detected"
    if kind == "note":
        return f"Note: {_t(d.get('text'))}" + (" (pinned)" if d.get("pinned") else "")
    if kind == "note.corrected":
        return f"Corrected{_of_note(d, incident)}: {_t(d.get('text'))}"
    if kind == "note.struck":
        return f"Struck{_of_note(d, incident)}"
    if kind == "note.pinned":
        return f"{'Pinned' if d.get('pinned', True) else 'Unpinned'}{_of_note(d, incident)}"
    if kind == "playbook.suggested":
        return f"Playbook suggested: {_t(d.get('playbook'))}"
    if kind == "playbook.started":
        return f"Playbook started: {_t(d.get('playbook'))}"
    if kind in ("playbook.tick", "playbook.untick"):
        verb = "Ticked" if kind == "playbook.tick" else "Unticked"
        auto = " (automatically)" if d.get("auto") else ""
        return f"{verb} {_t(d.get('playbook'))} step {_t(d.get('step'))}{auto}"
    if kind == "probe":
        said = _t(d.get("output"), OUTPUT_LIMIT) if d.get("ok") else f"failed: {_t(d.get('error'), OUTPUT_LIMIT)}"
        return f"Probe {_step(d)} on {_t(d.get('source'))}: {_t(d.get('query'), OUTPUT_LIMIT)} -> {said}"
    if kind == "command":
        return (f"Command {_step(d)}: {_t(d.get('command'), OUTPUT_LIMIT)} -> exit {_t(d.get('exit_code'))}: "
                f"{_t(d.get('output'), OUTPUT_LIMIT)}")
    if kind == "action":
        outcome = "done" if d.get("ok") else "failed"
        by = f" (confirmed by {_t(d.get('confirmed_by'))})" if d.get("confirmed_by") else ""
        return (f"Action {_step(d)}: {_t(d.get('action'))} on {_t(d.get('target'))} {outcome}: "
                f"{_t(first_line(d.get('result')), OUTPUT_LIMIT)}{by}")
    if kind == "threshold.crossed":
        metric = str(d.get("metric") or "")
        limit = d.get("limit")
        # A crossing back to ok has no limit of its own to say.
        against = (f" (limit {_t(metric_value(metric, limit))})" if limit is not None
                   else " (back within its limits)" if d.get("state") == "ok" else "")
        return (f"{_t(d.get('source'))} {_t(metric)} = {_t(metric_value(metric, d.get('value')))}{against}: "
                f"{_t(d.get('previous'))} -> {_t(d.get('state'))}")
    if kind == "source.state":
        why = f": {_t(d.get('reason'), OUTPUT_LIMIT)}" if d.get("reason") else ""
        return f"{_t(d.get('source'))}: {_t(d.get('previous'))} -> {_t(d.get('state'))}{why}"
    if kind == "source.lost":
        return f"Lost {_t(d.get('kind'))} source {_t(d.get('source'))}: {_t(d.get('error'), OUTPUT_LIMIT)}"
    if kind == "source.recovered":
        return f"Recovered {_t(d.get('kind'))} source {_t(d.get('source'))}"
    if kind == "entry.unreadable":
        line = d.get("line")
        return f"Unreadable entry{f' (line {line})' if isinstance(line, int) else ''}: {_t(d.get('problem'))}"
    if kind == "update.sent":
        first = str(d.get("text") or "").strip().splitlines()[:1]
        return f"Status update sent ({_t(d.get('channel'))}): {_t(first[0] if first else '', OUTPUT_LIMIT)}"
    fields = ", ".join(f"{_t(key)}={_t(metric_value(str(key), value), OUTPUT_LIMIT)}" for key, value in d.items())
    return f"{_t(kind)}: {fields}" if fields else _t(kind)


def _of_note(data: Mapping[str, Any], incident: Incident | None) -> str:
    note = incident.note(str(data.get("note_id"))) if incident else None
    if note is None:
        return f" note {_t(data.get('note_id'))}"
    return f" the note of {note.at.strftime('%H:%M:%S')} {_q(note.versions[0].text, OUTPUT_LIMIT)}"


def _step(data: Mapping[str, Any]) -> str:
    return f"{_t(data.get('playbook'))}/{_t(data.get('step'))}"


def _t(value: Any, limit: int = TEXT_LIMIT) -> str:
    return inert("" if value is None else value, limit)


def _q(value: Any, limit: int = TEXT_LIMIT) -> str:
    return f'"{_t(value, limit)}"'


def _hms(value: Any) -> str:
    try:
        return parse_time(str(value)).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return _t(value)


# -- markdown -----------------------------------------------------------------

def md(value: Any, limit: int = TEXT_LIMIT) -> str:
    """``value`` as inert markdown text: shown as written, never as markup."""
    text = inert("" if value is None else value, limit).strip()
    text = _INLINE.sub(r"\\\1", text)
    return _ORDERED.sub(r"\1\\\2", _LEADING.sub(r"\\\1", text))


def code(value: Any, limit: int = TEXT_LIMIT) -> str:
    """``value`` as an inline code span that no backtick inside can close."""
    text = inert("" if value is None else value, limit)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def postmortem_markdown(events: Iterable[Event], now: datetime, incident: Incident | None = None,
                        playbooks: Mapping[str, Any] | None = None) -> str:
    """The incident report for the journal ``events``, as of ``now``: the
    seed template's sections one for one, then the full journal.
    ``playbooks`` (id -> playbook) names the steps the active playbook left
    unticked, as follow-ups."""
    events = sorted(events, key=in_order)
    incident = incident or Incident.from_events(events, now)
    end = incident.resolved_at or now
    failed = failed_requests(events, incident.started_at, end)
    sections = [
        _header(incident),
        _summary(incident, events, failed),
        # The readings go under the timeline: the template's sections stay one for one.
        _timeline(incident, events) + "\n\n" + _readings_at_milestones(incident, events),
        _impact(incident, events, failed),
        _response_times(incident),
        _listed("Root Cause", incident.tagged("root-cause"), "root-cause"),
        _resolution(incident, events),
        _prevention(incident, playbooks or {}),
        _lessons(incident),
        _action_items(incident),
        _appendix(incident, events),
    ]
    # Redacted whole, as it leaves: a journal written before a secret was
    # configured, or by another process, may still hold it.
    return secret_values.redact("\n\n".join(section.rstrip("\n") for section in sections) + "\n")


def _header(incident: Incident) -> str:
    level = incident.level
    severity = md(level.label) if level else (md(incident.severity) if incident.severity else "not set")
    date = f"{incident.started_at:%Y-%m-%d} - " if incident.started_at else ""
    lines = [f"# Incident Report: {date}{md(incident.title) if incident.title else 'Untitled incident'}", "",
             f"**Severity:** {severity}  ",
             f"**Status:** {md(incident.status) if incident.status else 'not declared'}  ",
             f"**Duration:** {_duration(incident)}  "]
    names = {"commander": "Incident Commander", "scribe": "Scribe", "communications": "Communications"}
    for role, title in names.items():
        if role in incident.roles:
            lines.append(f"**{title}:** {md(incident.roles[role])}  ")
    lines[-1] = lines[-1].rstrip()
    return "\n".join(lines)


def _duration(incident: Incident) -> str:
    if incident.ttr is not None:
        return format_duration(incident.ttr)
    if incident.elapsed is not None:
        return f"ongoing, {format_duration(incident.elapsed)} so far"
    return "not recorded"


# -- summary ------------------------------------------------------------------

def _summary(incident: Incident, events: list[Event], failed: FailedRequests) -> str:
    lines = ["## Summary", ""]
    written = incident.tagged("summary")
    if written:
        return "\n".join(lines + [" ".join(_said(note) for note in written)])
    if not incident.declared:
        return "\n".join(lines + ["No incident was declared in this journal."])
    title = md(incident.title) if incident.title else "The incident"
    level = f" ({md(incident.level.label)})" if incident.level else ""
    sentences = [f"{title}{level}: {_what_broke(incident, events)}.", _impact_sentence(incident, failed)]
    sentences.append(_mitigation_sentence(incident, events))
    return "\n".join(lines + [" ".join(sentences)])


def _what_broke(incident: Incident, events: list[Event]) -> str:
    first: dict[str, Event] = {}
    for event in events:
        source = event.data.get("source")
        critical = event.kind == "source.lost" or (is_alarm(event) and event.data.get("state") == "critical")
        if critical and isinstance(source, str) and source not in first:
            first[source] = event
    if not first:
        return "no source went critical in the journal"
    said = [f"{md(source, 100)}{' went critical first' if n == 0 else ''} "
            f"({md(_alarm_words(event))}, at {_clock(event.at, incident)})"
            for n, (source, event) in enumerate(list(first.items())[:3])]
    more = f" and {len(first) - 3} more" if len(first) > 3 else ""
    return ", then ".join(said) + more


def _alarm_words(event: Event) -> str:
    """An alarm in plain words (``error ratio 31%, limit 5.0%``), not yet markdown."""
    d = event.data
    if event.kind == "source.lost":
        return f"lost: {_t(d.get('error'), 80)}"
    if event.kind == "source.state":
        return f"{_t(d.get('state'), 40)}: {_t(d.get('reason'), 80)}" if d.get("reason") else _t(d.get("state"), 40)
    metric = str(d.get("metric") or "")
    limit = f", limit {_t(metric_value(metric, d.get('limit')), 40)}" if d.get("limit") is not None else ""
    return f"{_t(metric.replace('_', ' '), 60)} {_t(metric_value(metric, d.get('value')), 40)}{limit}"


def _impact_sentence(incident: Incident, failed: FailedRequests) -> str:
    said = [_said(note) for note in incident.tagged("impact")]
    if failed.count is not None:
        said.append(f"an estimated {_about(failed.count)} requests failed")
    if not said:
        return "Its impact was not recorded."
    text = "; ".join(said)
    return f"Impact: {text}{'' if text.endswith('.') else '.'}"


def _mitigation_sentence(incident: Incident, events: list[Event]) -> str:
    fixes = [_fix_words(event) for event in events if _succeeded(event)][:2]
    how = f" by {' and '.join(fixes)}" if fixes else ""
    if incident.mitigated_at is not None and incident.ttm is not None:
        said = f"It was mitigated at {_clock(incident.mitigated_at, incident)}{how}, " \
               f"{format_duration(incident.ttm)} after detection"
    else:
        said = f"It was not recorded as mitigated{f' (tried{how})' if how else ''}"
    if incident.ttr is not None:
        return f"{said}, and resolved after {format_duration(incident.ttr)}."
    return f"{said}; it is {_duration(incident)}."


def _fix_words(event: Event) -> str:
    d = event.data
    if event.kind == "action":
        return f"{code(d.get('action'), 200)} on {code(d.get('target'), 200)}"
    return code(d.get("command"), 200)


def _succeeded(event: Event) -> bool:
    if event.kind == "action":
        return bool(event.data.get("ok"))
    return event.kind == "command" and event.data.get("exit_code") == 0


def _about(count: float) -> str:
    """An estimate to two significant digits: ``~5800``, not ``5803.2``."""
    whole = int(round(count))
    return f"~{units.general(int(round(whole, 1 - len(str(whole)) + 1)) if whole >= 100 else whole)}"


# -- timeline -------------------------------------------------------------------

def _timeline(incident: Incident, events: list[Event]) -> str:
    rows = _milestones(incident, events)
    shown = _notes_shown(incident)
    for note in shown:
        rows.append((note.at, _note_line(note)))
    lines = ["## Timeline", ""]
    if not rows:
        return "\n".join(lines + ["Nothing happened that the report would mark."])
    # Stable: at one minute, the milestone before the note that explains it.
    for at, text in sorted(rows, key=lambda row: row[0]):
        lines.append(f"- **{_clock(at, incident)}** - {text}")
    return "\n".join(lines)


MILESTONE_KINDS = {"incident.declared": "declared", "incident.acknowledged": "acknowledged",
                   "incident.mitigated": "mitigated"}
READINGS_COLUMNS = ("Time (UTC)", "Moment", "PostgreSQL conns", "Worst 5xx", "Worst p95", "Redis memory",
                    "Unavailable replicas")


def _readings_at_milestones(incident: Incident, events: list[Event]) -> str:
    """What the panes read at each milestone and the first alarm, from the
    ``moment`` events the console kept (console/incident/moments.py)."""
    by_id = {event.id: event for event in events}
    first_alarm = next((e for e in events if is_alarm(e)), None)
    rows = []
    for moment in (e for e in events if e.kind == "moment"):
        of = by_id.get(str(moment.data.get("at")))
        name = _moment_name(of, first_alarm)
        readings = moment.data.get("readings")
        if name is None or not isinstance(readings, (list, tuple)):
            continue
        rows.append((moment.at, name, *_key_readings([r for r in readings if isinstance(r, Mapping)])))
    lines = ["### Readings at each milestone", ""]
    if not rows:
        return "\n".join(lines + ["No readings were kept (a journal written before moments were kept, "
                                   "or no source was read)."])
    lines += ["| " + " | ".join(READINGS_COLUMNS) + " |", "|" + "---|" * len(READINGS_COLUMNS)]
    for at, *cells in rows:
        lines.append("| " + " | ".join([_clock(at, incident), *(md(c, 60) for c in cells)]) + " |")
    return "\n".join(lines)


def _moment_name(event: Event | None, first_alarm: Event | None) -> str | None:
    if event is None:
        return None
    if event is first_alarm:
        return "first alarm"
    if event.kind == "incident.status":
        return f"status {_t(event.data.get('status'), 30)}"
    return MILESTONE_KINDS.get(event.kind)


def _key_readings(readings: list[Mapping[str, Any]]) -> tuple[str, str, str, str, str]:
    def of(kind: str) -> list[Mapping[str, Any]]:
        return [r.get("metrics") or {} for r in readings if r.get("kind") == kind]

    pg = [f"{m.get('connections_total')}/{m.get('usable_connections', m.get('max_connections'))}"
          for m in of("postgres") if m.get("connections_total") is not None]
    ratios = [m["error_ratio"] for m in of("errors") if isinstance(m.get("error_ratio"), (int, float))]
    p95 = [m["p95_latency_s"] for m in of("errors") if isinstance(m.get("p95_latency_s"), (int, float))]
    memory = [metric_value("used_memory", m["used_memory"]) for m in of("redis")
              if isinstance(m.get("used_memory"), (int, float))]
    unavailable = [m["unavailable_replicas"] for m in of("kubernetes")
                   if isinstance(m.get("unavailable_replicas"), (int, float))]
    return (", ".join(pg) or "–",
            metric_value("error_ratio", max(ratios)) if ratios else "–",
            metric_value("p95_latency_s", max(p95)) if p95 else "–",
            ", ".join(memory) or "–",
            metric_value("unavailable_replicas", sum(unavailable)) if unavailable else "–")


def _milestones(incident: Incident, events: list[Event]) -> list[tuple[datetime, str]]:
    rows: list[tuple[datetime, str]] = []
    if incident.detected_at is not None:
        alarm = next((e for e in events if is_alarm(e) and e.at == incident.detected_at), None)
        said = "Detected" if alarm is None else \
            "Detected: " + md(f"{_t(alarm.data.get('source'), 100)} {_alarm_words(alarm)}")
        rows.append((incident.detected_at, said))
    if incident.declared_at is not None:
        level = f" ({md(incident.severity, 20)})" if incident.severity else ""
        rows.append((incident.declared_at, f"Incident declared{level}{_by_whom(events, 'incident.declared')}"))
    if incident.acknowledged_at is not None:
        rows.append((incident.acknowledged_at, f"Acknowledged{_by_whom(events, 'incident.acknowledged')}"))
    identified = next((e for e in events if e.kind == "incident.status" and e.data.get("status") == "Identified"),
                      None)
    if identified is not None:
        rows.append((identified.at, "Cause identified"))
    for event in events:
        if _succeeded(event):
            rows.append((event.at, f"{'Action' if event.kind == 'action' else 'Command'} done: {_fix_words(event)}"))
    if incident.mitigated_at is not None:
        rows.append((incident.mitigated_at, "Mitigated, monitoring"))
    if incident.resolved_at is not None:
        rows.append((incident.resolved_at, "Resolved"))
    return rows


def _by_whom(events: list[Event], kind: str) -> str:
    event = next((e for e in events if e.kind == kind), None)
    return f" by {md(event.user, 100)}" if event is not None and event.user != CONSOLE["user"] else ""


def _notes_shown(incident: Incident) -> list[Note]:
    """Pinned notes and notes with a tag the report knows, once each."""
    return [note for note in incident.live_notes if note.pinned or set(note.tags) & set(TAGS)]


def _note_line(note: Note) -> str:
    label = next((TIMELINE_LABEL[tag] for tag in note.tags if tag in TIMELINE_LABEL), "Note")
    return f"{label}: {_said(note)}"


# -- impact -------------------------------------------------------------------

_REVENUE = re.compile(r"revenue|\$|€|£|payment|refund|billing", re.IGNORECASE)


def _impact(incident: Incident, events: list[Event], failed: FailedRequests) -> str:
    window = ""
    if incident.started_at is not None:
        until = (f"resolution at {_clock(incident.resolved_at, incident)}" if incident.resolved_at
                 else "the time of this report")
        window = f" (from detection at {_clock(incident.started_at, incident)} to {until})"
    notes = incident.tagged("impact")
    users = [_said(n) for n in notes if not _REVENUE.search(n.body)]
    revenue = [_said(n) for n in notes if _REVENUE.search(n.body)]
    lines = ["## Impact", "", f"- **Duration:** {_duration(incident)}{window}",
             f"- **Affected Users:** {'; '.join(users) if users else 'not recorded'}",
             f"- **Failed Requests:** {_failed_words(failed)}",
             f"- **Revenue Impact:** {'; '.join(revenue) if revenue else 'not recorded'}"]
    touched: dict[str, None] = {}
    for event in events:
        if is_alarm(event) and isinstance(event.data.get("source"), str):
            touched.setdefault(md(event.data["source"], 100), None)
    lines.append(f"- **Sources Affected:** {', '.join(touched) if touched else 'none recorded'}")
    return "\n".join(lines)


def _failed_words(failed: FailedRequests) -> str:
    peaks = ", ".join(f"{md(source, 100)} {units.percent(ratio)}" for source, ratio in failed.peak_ratio.items())
    if failed.count is None:
        if not failed.peak_ratio:
            return "not estimated: no 5xx ratio was recorded"
        return f"not estimated: no request rate was recorded with the 5xx ratio (peak {peaks})"
    missing = (f"; {', '.join(md(s, 100) for s in failed.without_rate)} not counted (no request rate recorded)"
               if failed.without_rate else "")
    return (f"{_about(failed.count)} (estimated: request rate × 5xx ratio of "
            f"{', '.join(md(s, 100) for s in failed.estimated_from)}, each journaled reading held until the next, "
            f"summed over the incident window; peak {peaks}{missing})")


def _response_times(incident: Incident) -> str:
    lines = ["## Response Times", ""]
    for name, span in (("Time to acknowledge (TTA)", incident.tta), ("Time to mitigate (TTM)", incident.ttm),
                       ("Time to resolve (TTR)", incident.ttr)):
        lines.append(f"- **{name}:** {format_duration(span) if span is not None else 'not recorded'}")
    level = incident.level
    if level is not None:
        verdict = ""
        if level.respond_within is not None and incident.tta is not None:
            verdict = " (met)" if incident.tta <= level.respond_within else " (missed)"
        lines.append(f"- **Response target for {md(level.code)}:** {md(level.response)}{verdict}")
    return "\n".join(lines)


# -- what was done, and what is left --------------------------------------------

def _listed(title: str, notes: tuple[Note, ...], tag: str, numbered: bool = True) -> str:
    body = [f"{n}. {_said(note)}" if numbered else f"- {_said(note)}" for n, note in enumerate(notes, 1)]
    return "\n".join([f"## {title}", "", *(body or [_untold(tag)])])


def _untold(*tags: str) -> str:
    return f"Not recorded (a note tagged {' or '.join('#' + tag for tag in tags)} goes here)."


def _resolution(incident: Incident, events: list[Event]) -> str:
    body = [_said(note) for note in incident.tagged("resolution")]
    body += [f"Decision: {_said(note)}" for note in incident.tagged("decision")]
    for event in events:
        if _succeeded(event):
            d = event.data
            by = f", confirmed by {md(d.get('confirmed_by'), 100)}" if d.get("confirmed_by") else ""
            said = d.get("result") if event.kind == "action" else d.get("output")
            # Its first line: a table of 32 signalled sessions is the appendix's code block.
            body.append(f"{_fix_words(event)} at {_clock(event.at, incident)}{by}: "
                        f"{md(first_line(said), OUTPUT_LIMIT)}")
    lines = ["## Resolution", "", *(f"{n}. {text}" for n, text in enumerate(body, 1))]
    if not body:
        lines.append(_untold("resolution", "decision"))
    if incident.mitigated_at is not None and incident.ttm is not None:
        lines += ["", f"Mitigated at {_clock(incident.mitigated_at, incident)}, "
                      f"{format_duration(incident.ttm)} after detection."]
    return "\n".join(lines)


def _prevention(incident: Incident, playbooks: Mapping[str, Any]) -> str:
    body = [f"- [ ] {_said(note)}" for note in incident.tagged("prevention")]
    active = next((playbooks[p] for p in reversed(incident.playbooks) if p in playbooks), None)
    if active is not None:
        for step in getattr(active, "steps", ()):
            if not incident.ticked(active.id, step.id):
                body.append(f"- [ ] {md(step.title, 200)} (step of {md(active.title, 200)} left unticked)")
    return "\n".join(["## Prevention", "", *(body or [_untold("prevention")])])


def _lessons(incident: Incident) -> str:
    body = [_said(note) for note in incident.tagged("lesson")]
    body += [f"Went well: {_said(note)}" for note in incident.tagged("went-well")]
    body += [f"Went wrong: {_said(note)}" for note in incident.tagged("went-wrong")]
    return "\n".join(["## Lessons Learned", "", *(f"{n}. {text}" for n, text in enumerate(body, 1)),
                      *([] if body else [_untold("lesson", "went-well", "went-wrong")])])


_OWNER = re.compile(r"(?<![\w@])@([A-Za-z][\w.-]*[\w])")


def _action_items(incident: Incident) -> str:
    body = []
    for note in incident.tagged("action"):
        text = _said(note)
        owners = _OWNER.findall(note.body)
        if owners:
            text = _said(note, _OWNER.sub("", note.body))
            text = f"@{', @'.join(md(owner, 60) for owner in dict.fromkeys(owners))}: {text}"
        body.append(f"- [ ] {text}")
    return "\n".join(["## Action Items", "", *(body or [_untold("action")])])


def _said(note: Note, text: str | None = None) -> str:
    """A note's last version as a section shows it: no tags, inert markdown."""
    return md(stripped(note.body if text is None else text))


_SPACES = re.compile(r"[ \t]{2,}")


def stripped(text: str) -> str:
    """``text`` without the report's tags, wherever they stand."""
    def drop(match: re.Match) -> str:
        return "" if match.group(1).lower().rstrip("-") in TAGS else match.group(0)
    return _SPACES.sub(" ", _TAG.sub(drop, untagged(text))).strip()


# -- appendix -------------------------------------------------------------------

def _appendix(incident: Incident, events: list[Event]) -> str:
    lines = ["## Appendix: Full Journal (UTC)", ""]
    if not events:
        return "\n".join(lines + ["The journal is empty."])
    days = {event.at.date() for event in events}
    stamp = "%H:%M:%S" if len(days) == 1 else "%Y-%m-%d %H:%M:%S"
    notes = {note.id: note for note in incident.notes}
    # Who wrote an entry is said only when more than one wrote (the
    # console's own observations count as one): where it changes, and on
    # every note and action, whose author is part of what they say.
    several = len({event.user for event in events}) > 1
    last = None
    for event in events:
        if event.kind in ("note.corrected", "note.struck", "moment"):
            continue  # folded into the note they change; moments are the readings table
        said = event.user != last or event.kind in ("note", "action")
        who = f" — {md(event.user, 100)}" if several and said else ""
        last = event.user
        lines.append(f"- **{event.at.strftime(stamp)}** {_entry(event, notes.get(event.id), incident)}{who}")
        block = _output(event)
        if block:
            lines.append(block)
    return "\n".join(lines)


def _entry(event: Event, note: Note | None, incident: Incident) -> str:
    d = event.data
    if event.kind == "note" and note is not None:
        text = md(f"Note: {inert(note.text)}" + (" (pinned)" if note.pinned else ""), 2 * TEXT_LIMIT)
        if note.corrected:
            text += f" _(corrected at {note.versions[-1].at:%H:%M:%S})_"
        if note.struck:
            return f"~~{text}~~ _(struck at {note.struck_at:%H:%M:%S} by {md(note.struck_by, 100)})_"
        return text
    if event.kind == "probe":
        outcome = "" if d.get("ok") else f" failed: {md(d.get('error'), OUTPUT_LIMIT)}"
        return f"Probe {md(_step(d))} on {md(d.get('source'), 100)}: {md(d.get('query'), OUTPUT_LIMIT)}{outcome}"
    if event.kind == "command":
        return f"Command {md(_step(d))}: {code(d.get('command'), OUTPUT_LIMIT)} exited {md(d.get('exit_code'), 20)}"
    if event.kind == "moment" and isinstance(d.get("readings"), (list, tuple)):
        kept = [f"{_t(r.get('name'), 60)} {_t(r.get('state'), 20)}" for r in d["readings"] if isinstance(r, Mapping)]
        return md(f"Readings kept: {', '.join(kept) or 'none'}", 2 * TEXT_LIMIT)
    return md(describe(event, incident), 2 * TEXT_LIMIT)


OUTPUT_LINES = 20


def _output(event: Event) -> str:
    """What a probe, command or action printed, as a fenced code block under its line."""
    if event.kind not in ("probe", "command", "action") or (event.kind != "command" and not event.data.get("ok")):
        return ""
    if event.kind == "action" and len(str(event.data.get("output") or "").strip().splitlines()) < 2:
        return ""  # one line: said in the entry itself
    raw = event.data.get("output")
    if raw is None or not str(raw).strip():
        return ""
    lines = str(raw).rstrip("\n").splitlines()
    kept = [inert(line, 200) for line in lines[:OUTPUT_LINES]]
    if len(lines) > OUTPUT_LINES:
        kept.append(f"… ({len(lines) - OUTPUT_LINES} more lines)")
    longest = max((len(run) for line in kept for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join(f"  {line}".rstrip() for line in [fence, *kept, fence])


def _clock(at: datetime, incident: Incident) -> str:
    start = incident.started_at
    fmt = "%H:%M UTC" if start is None or at.date() == start.date() else "%Y-%m-%d %H:%M UTC"
    return at.strftime(fmt)


# -- raw ------------------------------------------------------------------------

def journal_json(events: Iterable[Event]) -> str:
    """The raw journal: every event as stored, oldest first. Values are kept
    exactly; JSON's ASCII escapes make control characters inert text."""
    docs = [secret_values.redact_data(event.to_document()) for event in sorted(events, key=in_order)]
    return json.dumps({"events": docs}, ensure_ascii=True, indent=2) + "\n"
