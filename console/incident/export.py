"""The journal, turned into the post-mortem or handed over raw.

:func:`postmortem_markdown` follows the seeds' post-mortem template (seeds
001, 003, 004): summary, impact, response times, the timeline in UTC (every
event one line, newest last), root cause, resolution, what went well and
wrong, action items and lessons. Tagged notes go to their sections
(``#root-cause``, ``#impact``, ``#resolution``, ``#went-well``,
``#went-wrong``, ``#action``, ``#lesson``, ``#summary``); struck notes only
appear, struck, in the timeline.

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
from console.incident.journal import Event, parse_time
from console.incident.state import Incident, Note, format_duration
from console.readings import metric_value
from console.text import inert

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
                f"{_t(d.get('result'), OUTPUT_LIMIT)}{by}")
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


def postmortem_markdown(events: Iterable[Event], now: datetime, incident: Incident | None = None) -> str:
    """The post-mortem document for the journal ``events``, as of ``now``."""
    events = sorted(events, key=lambda e: e.at)
    incident = incident or Incident.from_events(events, now)
    sections = [
        _header(incident),
        _summary(incident),
        _impact(incident, events),
        _response_times(incident),
        _timeline(incident, events),
        _section("Root Cause", incident.tagged("root-cause")),
        _resolution(incident, events),
        _section("What Went Well", incident.tagged("went-well")),
        _section("What Went Wrong", incident.tagged("went-wrong")),
        _action_items(incident),
        _lessons(incident),
    ]
    # Redacted whole, as it leaves: a journal written before a secret was
    # configured, or by another process, may still hold it.
    return secret_values.redact("\n\n".join(section.rstrip("\n") for section in sections) + "\n")


def _header(incident: Incident) -> str:
    level = incident.level
    severity = md(level.label) if level else (md(incident.severity) if incident.severity else "not set")
    lines = [f"# Post-Mortem: {md(incident.title) if incident.title else 'Untitled incident'}", ""]
    if incident.started_at:
        lines.append(f"**Date:** {incident.started_at:%Y-%m-%d}  ")
    lines += [f"**Severity:** {severity}  ",
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


def _summary(incident: Incident) -> str:
    steps = [("detected", incident.detected_at), ("declared", incident.declared_at),
             ("acknowledged", incident.acknowledged_at), ("mitigated", incident.mitigated_at),
             ("resolved", incident.resolved_at)]
    said = [f"{word} at {_clock(at, incident)}" for word, at in steps if at is not None]
    lines = ["## Summary", ""]
    if said:
        sentence = ", ".join(said[:-1]) + (" and " if len(said) > 1 else "") + said[-1]
        lines.append(f"{md(incident.title) if incident.title else 'The incident'}: {sentence[0].upper()}{sentence[1:]}.")
    else:
        lines.append("_No incident was declared in this journal._")
    notes = _unique(incident.tagged("summary") + incident.pinned)
    if notes:
        lines += [""] + [f"- {md(note.body)}" for note in notes]
    return "\n".join(lines)


def _impact(incident: Incident, events: list[Event]) -> str:
    lines = ["## Impact", "", f"- **Duration:** {_duration(incident)}"]
    touched: dict[str, None] = {}
    for event in events:
        if event.kind in ("threshold.crossed", "source.lost", "source.state") and event.data.get("source") is not None \
                and event.data.get("state") != "ok":
            touched.setdefault(md(event.data["source"], 100), None)
    lines.append(f"- **Sources affected:** {', '.join(touched) if touched else 'none recorded'}")
    lines += [f"- {md(note.body)}" for note in incident.tagged("impact")]
    return "\n".join(lines)


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


def _timeline(incident: Incident, events: list[Event]) -> str:
    lines = ["## Timeline (UTC)", ""]
    if not events:
        return "\n".join(lines + ["_The journal is empty._"])
    days = {event.at.date() for event in events}
    stamp = "%H:%M:%S" if len(days) == 1 else "%Y-%m-%d %H:%M:%S"
    notes = {note.id: note for note in incident.notes}
    for event in events:
        text = md(describe(event, incident), 2 * TEXT_LIMIT)
        note = None
        if event.kind.startswith("note"):
            note = notes.get(event.id) or notes.get(str(event.data.get("note_id")))
        if note is not None and note.struck and event.kind in ("note", "note.corrected"):
            text = f"~~{text}~~"
        if event.kind == "note" and note is not None:
            text += _history(note)
        lines.append(f"- **{event.at.strftime(stamp)}** {text} — {md(event.user, 100)}")
    return "\n".join(lines)


def _history(note: Note) -> str:
    said = []
    if note.corrected:
        said.append(f"corrected {len(note.versions) - 1}×, now: {md(note.text)}")
    if note.struck:
        said.append(f"struck at {note.struck_at:%H:%M:%S} by {md(note.struck_by, 100)}")
    return f" _({'; '.join(said)})_" if said else ""


def _resolution(incident: Incident, events: list[Event]) -> str:
    lines = ["## Resolution", ""]
    body = [f"- {md(note.body)}" for note in incident.tagged("resolution", "fix")]
    for event in events:
        if event.kind == "action" and event.data.get("ok"):
            d = event.data
            by = f", confirmed by {md(d.get('confirmed_by'), 100)}" if d.get("confirmed_by") else ""
            body.append(f"- {event.at:%H:%M:%S} {code(d.get('action'), 200)} on {code(d.get('target'), 200)}"
                        f"{by}: {md(d.get('result'), OUTPUT_LIMIT)}")
    return "\n".join(lines + (body or ["_Not recorded in the journal._"]))


def _section(title: str, notes: tuple[Note, ...]) -> str:
    body = [f"- {md(note.body)}" for note in notes] or ["_Not recorded in the journal._"]
    return "\n".join([f"## {title}", "", *body])


def _action_items(incident: Incident) -> str:
    body = [f"- [ ] {md(note.body)} (noted by {md(note.user, 100)} at {_clock(note.at, incident)})"
            for note in incident.tagged("action")]
    return "\n".join(["## Action Items", "", *(body or ["_None recorded in the journal._"])])


def _lessons(incident: Incident) -> str:
    body = [f"{n}. {md(note.body)}" for n, note in enumerate(incident.tagged("lesson"), 1)]
    return "\n".join(["## Lessons Learned", "", *(body or ["_None recorded in the journal._"])])


def _clock(at: datetime, incident: Incident) -> str:
    start = incident.started_at
    fmt = "%H:%M UTC" if start is None or at.date() == start.date() else "%Y-%m-%d %H:%M UTC"
    return at.strftime(fmt)


def _unique(notes: tuple[Note, ...]) -> list[Note]:
    seen: dict[str, Note] = {}
    for note in notes:
        seen.setdefault(note.id, note)
    return list(seen.values())


# -- raw ------------------------------------------------------------------------

def journal_json(events: Iterable[Event]) -> str:
    """The raw journal: every event as stored, oldest first. Values are kept
    exactly; JSON's ASCII escapes make control characters inert text."""
    docs = [secret_values.redact_data(event.to_document()) for event in sorted(events, key=lambda e: e.at)]
    return json.dumps({"events": docs}, ensure_ascii=True, indent=2) + "\n"
