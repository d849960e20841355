"""Markdown runbooks -> playbook documents (``incident-console import-runbook``).

A team's runbook usually holds several scenarios ("API down", "Redis down")
among sections about the process (severity tables, templates, contacts).
Each scenario heading becomes one playbook; whatever lies outside every
scenario becomes one more playbook named after the document, so no command
of the original is lost. Steps come from numbered lists, ``- [ ]``
checklists, bold "Step N" labels, table rows and code blocks; code is kept
byte for byte (line endings aside) and recognised as a probe, an action or a
command by :mod:`console.playbooks.recognise`. Prose that is no step is kept
as the playbook's ``description`` (under its heading: Meaning, Impact, ...);
sections an operator looks up (escalation, contacts, templates, severity) as
its ``reference``, code included, never as steps.

Prose is repaired of mis-encoded characters (UTF-8 read as Windows-1252 or
Mac Roman, ``ðŸš¨`` for 🚨) with ftfy; code is never touched.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import ftfy
import yaml
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from console.located import MAX_BYTES
from console.playbooks.parameters import parameterise
from console.playbooks.recognise import recognise


class RunbookError(ValueError):
    """The file cannot be read as a markdown runbook; ``str()`` says why."""


_MD = MarkdownIt("commonmark", {"html": False}).enable("table")
_FTFY = ftfy.TextFixerConfig(
    unescape_html=False, restore_byte_a0=False, decode_inconsistent_utf8=False, uncurl_quotes=False,
    fix_character_width=False, fix_latin_ligatures=False, fix_line_breaks=False, normalization=None,
    explain=False)
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]{2,}")

_SCENARIO_PREFIX = re.compile(r"^(?:playbook|runbook|scenario)\s*[:\-–—]\s*(?=\S)", re.I)
_CONTAINER = re.compile(r"\b(?:playbooks|runbooks|incidents|scenarios)\b", re.I)
_NOT_SCENARIO = re.compile(
    r"\b(?:severity|severities|escalation|contacts?|templates?|communications?|post-?mortems?|post-incident|"
    r"resources|tools|appendix|reference|overview|process|lessons|glossary|roles|incident log|"
    r"table of contents|useful commands)\b", re.I)
_SYMPTOM_HEADING = re.compile(r"(?:symptoms?|detection|signs)\s*:?", re.I)
_SYMPTOM_TEXT = re.compile(r"^(?:symptoms?|signs)\s*:\s*(.*)$", re.I | re.S)
_STEP_LABEL = re.compile(r"^step\s*(\d+)\b\s*[:.)\-–—]?\s*(.*)$", re.I | re.S)
_CHECKBOX = re.compile(r"^\[([ xX])\]\s*(.*)$", re.S)
_SEVERITY = re.compile(r"\b(P[0-4]|SEV ?[1-5])\b")
_TABLE_STEPS = re.compile(r"command|check|step|action|run", re.I)
_ALARMS = set("🚨⚠🔥🔴❗🆘")
# Sections an operator looks things up in rather than works through.
_REFERENCE = re.compile(
    r"\b(?:escalation|contacts?|on-?call|rotation|communications?|channels?|templates?|severity|severities|"
    r"stakeholders?|glossary|appendix|resources|links)\b", re.I)


def import_runbook(path: str | Path) -> list[dict]:
    """Playbook documents (plain dicts, ready for :func:`to_yaml`) from a markdown file."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RunbookError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise RunbookError(f"{name}: {len(raw)} bytes is too large for a runbook (limit {MAX_BYTES})")
    try:
        text = _decode(raw)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RunbookError(f"{name}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                           "convert it first, e.g. iconv -f WINDOWS-1252 -t UTF-8") from None
    if "\x00" in text:
        raise RunbookError(f"{name}: holds NUL bytes; not a markdown file")
    return import_markdown(text, Path(path).name)


def _decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), or UTF-16 when a BOM or its NUL pattern says so."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    sample = raw[:200]
    if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4 and not sample[0::2].count(0):
        return raw.decode("utf-16-le")
    if len(sample) >= 4 and sample[0::2].count(0) > len(sample) // 4 and not sample[1::2].count(0):
        return raw.decode("utf-16-be")
    return raw.decode("utf-8-sig")


def _front_matter(text: str) -> tuple[str, str, str]:
    """(title, the other front matter lines, the rest) of a document opening with ``---``."""
    m = re.match(r"---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|$)", text, re.S)
    if not m:
        return "", "", text
    title, other = "", []
    for line in m.group(1).splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip().lower() == "title" and not title:
            title = value.strip().strip("'\"")
        elif line.strip():
            other.append(line.rstrip())
    return title, "\n".join(other), text[m.end():]


def import_markdown(text: str, name: str = "runbook.md") -> list[dict]:
    """Playbook documents from markdown ``text``; ``name`` is recorded as the source runbook."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    fm_title, fm_rest, text = _front_matter(text)
    try:
        sections = _sections(_block_tree(text).children)
    except RecursionError:
        raise RunbookError(f"{name}: markdown nested too deeply to read") from None
    chosen = _scenarios(sections)
    reference = frozenset(id(sections[i]) for i in _references(sections))
    docs: list[dict] = []
    ids: set[str] = set()
    covered: set[int] = set()
    for i in chosen:
        members = [i] + _descendants(sections, i)
        covered.update(members)
        title = _SCENARIO_PREFIX.sub("", sections[i].title) or f"Scenario on line {sections[i].line}"
        docs.append(_playbook(title, [sections[j] for j in members], name, ids, scenario=True,
                              reference=reference))
    rest = [s for j, s in enumerate(sections) if j not in covered]
    if rest:
        main = _clean(_repair(fm_title)) or _document_title(sections) or _humane(Path(name).stem) or "Runbook"
        doc = _playbook(main, rest, name, ids, scenario=False, skip_heading=_single_h1(sections),
                        front=_repair(fm_rest), reference=reference)
        # The rest of a document is a playbook when it holds steps or says
        # something a reader needs (a description, reference text).
        if doc["steps"][0]["id"] != "review" or "detail" in doc["steps"][0] \
                or doc.get("description") or doc.get("reference"):
            docs.append(doc)
    return docs


def _block_tree(text: str) -> SyntaxTreeNode:
    """The block structure, with each inline token's children kept flat in its meta.

    markdown-it bounds block nesting but not emphasis nesting; a tree of
    ``***...***`` would recurse once per level, so inline content stays a list.
    """
    tokens = [t.copy(children=None, meta={"inline": t.children or []}) if t.type == "inline" else t
              for t in _MD.parse(text)]
    return SyntaxTreeNode(tokens)


# ---- sections and scenarios -------------------------------------------------------

@dataclass
class _Section:
    level: int  # 0: the text before the first heading
    title: str
    line: int
    parent: int | None
    alarm: bool = False  # the heading opens with an alarm sign (🚨 ⚠️ 🔥 🔴): a scenario
    blocks: list[SyntaxTreeNode] = field(default_factory=list)
    children: list[int] = field(default_factory=list)


def _sections(nodes: Iterable[SyntaxTreeNode]) -> list[_Section]:
    sections = [_Section(0, "", 1, None)]
    stack: list[int] = [0]
    for node in nodes:
        if node.type == "heading":
            level = int(node.tag[1:])
            while len(stack) > 1 and sections[stack[-1]].level >= level:
                stack.pop()
            raw = _inline(node.children[0]) if node.children else ""
            sections.append(_Section(level, _clean(raw), (node.map or (0, 0))[0] + 1, stack[-1],
                                     alarm=raw.lstrip()[:1] in _ALARMS))
            sections[stack[-1]].children.append(len(sections) - 1)
            stack.append(len(sections) - 1)
        else:
            sections[stack[-1]].blocks.append(node)
    return sections


def _descendants(sections: list[_Section], i: int) -> list[int]:
    out: list[int] = []
    for child in sections[i].children:
        out += [child] + _descendants(sections, child)
    return out


def _single_h1(sections: list[_Section]) -> bool:
    return sum(1 for s in sections if s.level == 1) == 1


def _document_title(sections: list[_Section]) -> str:
    if _single_h1(sections):
        return next(s.title for s in sections if s.level == 1)
    return ""


def _scenarios(sections: list[_Section]) -> list[int]:
    """Sections that are scenarios: the most specific heading that qualifies.

    A heading qualifies when it says so ("Playbook: ..."), when its body
    names symptoms, or when it sits under "... Playbooks/Runbooks/Incidents"
    and holds steps; never when it or a parent is about process, severity,
    templates or contacts, and never the document's own title.
    """
    single_h1 = _single_h1(sections)
    qualifies: dict[int, bool] = {}

    def visit(i: int, excluded: bool) -> bool:
        s = sections[i]
        excluded = excluded or bool(_NOT_SCENARIO.search(s.title))
        below = [visit(c, excluded) for c in s.children]
        if any(below) or excluded or s.level == 0 or (s.level == 1 and single_h1):
            qualifies[i] = False
            return any(below)
        members = [i] + _descendants(sections, i)
        parent = sections[s.parent] if s.parent is not None else None
        qualifies[i] = bool(
            _SCENARIO_PREFIX.match(s.title) or s.alarm
            or _names_symptoms(sections, members)
            or (parent is not None and _CONTAINER.search(parent.title) and _has_steps(sections, members)))
        return qualifies[i]

    visit(0, False)
    return [i for i in range(len(sections)) if qualifies.get(i)]


def _names_symptoms(sections: list[_Section], members: list[int]) -> bool:
    for j in members:
        if j != members[0] and _SYMPTOM_HEADING.fullmatch(sections[j].title):
            return True
        for block in sections[j].blocks:
            if block.type == "paragraph" and _SYMPTOM_TEXT.match(_inline(block.children[0])):
                return True
    return False


def _has_steps(sections: list[_Section], members: list[int]) -> bool:
    kinds = {"ordered_list", "bullet_list", "fence", "code_block", "table"}
    return any(b.type in kinds for j in members for b in sections[j].blocks)


# ---- one playbook -------------------------------------------------------------------

def _playbook(title: str, sections: list[_Section], name: str, ids: set[str], scenario: bool,
              skip_heading: bool = False, front: str = "", reference: frozenset[int] = frozenset()) -> dict:
    """``reference``: ``id()`` of the sections kept as reference text rather than steps."""
    builder, lookup = _Steps(), _Steps(reference=True)
    if front:
        builder.note(front)
    for k, section in enumerate(sections):
        target = lookup if id(section) in reference else builder
        if k > 0 or not scenario:
            if section.level and not (skip_heading and section.level == 1):
                target.heading(section.title)
        for block in section.blocks:
            target.block(block)
    title = _clean(title) or "Runbook"
    doc: dict[str, Any] = {"id": _unique(_slug(title) or "runbook", ids), "title": title}
    severity = _SEVERITY.search(" ".join(builder.prose)) if scenario else None
    if severity:
        doc["severity"] = severity.group(1).replace(" ", "")
    if builder.notes:
        doc["description"] = "\n\n".join(builder.notes)
    if builder.symptoms:
        doc["symptoms"] = builder.symptoms
    if lookup.notes:
        doc["reference"] = "\n\n".join(lookup.notes)
    doc["source_runbooks"] = [name]
    doc["steps"] = builder.finished(title)
    return doc


def _references(sections: list[_Section]) -> set[int]:
    """Indexes of sections about escalation, contacts, templates, and of the sections under them."""
    out: set[int] = set()
    for i, section in enumerate(sections):
        if section.level and _REFERENCE.search(section.title) and not section.alarm:
            out.update([i] + _descendants(sections, i))
    return out


class _Steps:
    """Walks a section's blocks in order, turning them into steps."""

    def __init__(self, reference: bool = False) -> None:
        self.reference = reference  # everything becomes text to look up, nothing a step
        self.notes: list[str] = []  # what the runbook says that is no step: the description
        self.pending: str | None = None  # the heading the next note sits under
        self.steps: list[dict] = []
        self.symptoms: list[str] = []
        self.prose: list[str] = []
        self.label: str | None = None  # a heading or "Label:" paragraph naming what follows
        self.collecting_symptoms = False
        self.open: dict | None = None  # a bold "Step N" gathering what follows it

    def note(self, text: str) -> None:
        if not text.strip():
            return
        if self.pending:
            text = f"{self.pending}\n{text}"
            self.pending = None
        self.notes.append(text)

    def heading(self, title: str) -> None:
        self.pending = title or None
        self.open = None
        self.collecting_symptoms = bool(_SYMPTOM_HEADING.fullmatch(title))
        self.label = None if self.collecting_symptoms else title
        self.prose.append(title)

    def block(self, node: SyntaxTreeNode) -> None:
        kind = node.type
        if kind == "paragraph":
            self.paragraph(node)
        elif kind in ("bullet_list", "ordered_list"):
            self.list(node, ordered=kind == "ordered_list")
        elif kind in ("fence", "code_block"):
            self.code(node)
        elif kind == "table":
            self.table(node)
        elif kind == "blockquote":
            for child in node.children:
                self.block(child)
        elif kind == "heading":  # inside a list or quote: a label
            self.label = _clean(_inline(node.children[0]) if node.children else "") or self.label
        elif kind == "hr":
            self.label, self.open = None, None

    def paragraph(self, node: SyntaxTreeNode) -> None:
        inline = node.children[0] if node.children else None
        text = _inline(inline) if inline is not None else ""
        if not text:
            return
        self.prose.append(text)
        if self.reference:
            self.note(text)
            return
        symptoms = _SYMPTOM_TEXT.match(text)
        if symptoms:
            rest = symptoms.group(1).strip()
            if rest:
                self.symptoms += [" ".join(s.split()) for s in rest.split(",") if s.strip()]
            self.collecting_symptoms = not rest
            return
        self.collecting_symptoms = False
        step = _STEP_LABEL.match(text) if _starts_bold(inline) else None
        if step:
            rest = _clean(step.group(2).rstrip(":"))
            self.open = {"title": f"Step {step.group(1)}: {rest}" if rest else f"Step {step.group(1)}",
                         "kind": "check"}
            self.steps.append(self.open)
            self.label = None
            return
        if self.open is not None:
            if self.open["title"].endswith(tuple("0123456789")) and ":" not in self.open["title"]:
                self.open["title"] += f": {_cut(text)}"
            else:
                self.open["detail"] = _join(self.open.get("detail"), text)
            return
        # A paragraph names the block after it when it is short or ends in
        # "Label:" ("**Impact:** ... **Examples:**" is labelled "Examples").
        self.note(text)
        last = text.splitlines()[-1].strip()
        if last.endswith(":"):
            self.label = _cut(_clean(last)) or self.label
        elif len(text) <= 100:
            self.label = _cut(text) or self.label

    def list(self, node: SyntaxTreeNode, ordered: bool) -> None:
        self.open = None
        items = [c for c in node.children if c.type == "list_item"]
        if self.collecting_symptoms:
            self.symptoms += [t for t in (_item_text(i) for i in items) if t]
            nested = [ln for i in items for ln in _item_lines(i)[1:]]
            if nested:
                self.note("\n".join(nested))
            self.collecting_symptoms = False
            return
        if self.reference:
            self.note("\n".join(ln for i in items for ln in _item_lines(i)))
            return
        checklist = any(_CHECKBOX.match(_item_text(i)) for i in items)
        if ordered or checklist or any(_codes(i) or _item_command(i) for i in items):
            for item in items:
                self.item(item)
            return
        texts = [t for t in (_item_text(i) for i in items) if t]
        self.prose += texts
        lines = "\n".join(ln for i in items for ln in _item_lines(i))
        if self.label and texts:
            self.steps.append({"title": self.label, "kind": "check", "detail": lines})
            self.label = None
        else:
            self.note(lines)

    def item(self, item: SyntaxTreeNode) -> None:
        title, detail = "", []
        for child in item.children:
            if child.type == "paragraph":
                text = _inline(child.children[0]) if child.children else ""
                if not title:
                    title = text
                elif text:
                    detail.append(text)
            elif child.type in ("bullet_list", "ordered_list"):
                detail += [ln for i in child.children for ln in _item_lines(i)]
            elif child.type == "table":
                detail += _table_lines(child)
        box = _CHECKBOX.match(title)
        if box:
            title = box.group(2).strip()
        self.prose.append(title)
        title = title.rstrip(":").strip()
        if len(title) > 120:
            detail.insert(0, title)
        codes = [c for c in _codes(item) if _code_fields(c)]
        if not codes:
            # `Check pod events via `kubectl -n $NAMESPACE describe pod $POD``: the
            # item's inline command is its step's command (the text stays its title).
            inline = _item_command(item)
            fields = recognise(inline, "bash") if inline else {"kind": "check"}
            self.steps.append(_without_empty({"title": _cut(title), **fields, "detail": "\n".join(detail)}))
            return
        for n, code in enumerate(codes, 1):
            step_title = _cut(title) or _code_title(code) or "Run this"
            if n > 1:
                step_title = f"{step_title} ({n})"
            self.steps.append(_without_empty({"title": step_title, **_code_fields(code),
                                              "detail": "\n".join(detail) if n == 1 else ""}))

    def code(self, node: SyntaxTreeNode) -> None:
        if self.reference:
            # A message template is text, not a command: its mojibake is repaired
            # (seed 000's Slack template began with "\uf8ffüö®" for 🚨).
            text = _repair(_code_text(node))
            if text.strip():
                self.note(f"```\n{text}\n```")
            return
        fields = _code_fields(node)
        if not fields:
            return
        if self.open is not None and self.open["kind"] == "check":
            detail = self.open.pop("detail", "")
            self.open.update(fields)
            if detail:
                self.open["detail"] = detail
            return
        self.steps.append({"title": self.label or _code_title(node) or "Run this", **fields})
        self.label = None

    def table(self, node: SyntaxTreeNode) -> None:
        self.open = None
        rows = [r for part in node.children for r in part.children if r.type == "tr"]
        if not rows:
            return
        header = [_inline(c.children[0]) if c.children else "" for c in rows[0].children]
        body = rows[1:] if node.children[0].type == "thead" else rows
        cells = [[c.children[0] if c.children else None for c in r.children] for r in body]
        has_code = any(_spans(c) for row in cells for c in row)
        if self.reference or not (has_code or any(_TABLE_STEPS.search(h) for h in header)):
            self.note("\n".join(_table_lines(node)))
            return
        for row in cells:
            texts = [_inline(c) if c is not None else "" for c in row]
            spans = [code for c in row for code in _spans(c)]
            words = [t for t, c in zip(texts, row) if t and not _spans(c)]
            title = _cut(" — ".join(words) or (texts[0] if texts else ""))
            detail = "\n".join(f"{h}: {t}" if h else t for h, t in zip(header, texts) if t)
            if not title and not spans:
                continue
            step: dict[str, Any] = {"title": title or _cut(spans[0]) or "Row", "kind": "check", "detail": detail}
            if len(spans) == 1 and spans[0].strip():
                step.update(recognise(spans[0]))
            self.steps.append(_without_empty(step))

    def finished(self, title: str) -> list[dict]:
        steps = [s for s in self.steps if s.get("title")]
        if not steps:
            detail = "\n\n".join(self.prose[:40])
            steps = [_without_empty({"id": "review", "title": f"Work through: {title}", "kind": "check",
                                     "detail": detail})]
        ids: set[str] = set()
        out = []
        for n, step in enumerate(steps, 1):
            step_id = step.get("id") or _unique(_slug(step["title"])[:50].strip("-") or f"step-{n}", ids)
            ids.add(step_id)
            if step["kind"] == "command" and step.get("command"):
                # Placeholders become {name} parameters the console prompts for.
                command, written = parameterise(step["command"])
                if written:
                    step = {**step, "command": command, "placeholders": written}
            ordered = {"id": step_id, "title": step["title"], "kind": step["kind"]}
            for key in ("detail", "source", "probe", "query", "action", "params", "command", "sql",
                        "placeholders"):
                if step.get(key) not in (None, "", {}):
                    ordered[key] = step[key]
            out.append(ordered)
        return out


# ---- inline text and code -----------------------------------------------------------

def _inline_tokens(node: SyntaxTreeNode | None) -> list:
    return [] if node is None else list((node.meta or {}).get("inline", []))


def _inline(node: SyntaxTreeNode | None) -> str:
    """Plain text of an inline node; code spans kept as `code`, prose repaired."""
    parts: list[str] = []
    for token in _inline_tokens(node):
        if token.type == "text":
            parts.append(re.sub(r"\s+", " ", _repair(token.content)))
        elif token.type == "code_inline":
            parts.append(f"`{token.content}`")
        elif token.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif token.type in ("html_inline", "image"):
            parts.append(token.content)
    return "".join(parts).strip()


def _starts_bold(inline: SyntaxTreeNode | None) -> bool:
    first = next((t for t in _inline_tokens(inline) if not (t.type == "text" and not t.content.strip())), None)
    return first is not None and first.type == "strong_open"


# The first word of an inline code span that is a command an operator runs.
COMMAND_WORDS = frozenset({
    "kubectl", "helm", "psql", "pg_dump", "pg_ctl", "pg_isready", "redis-cli", "curl", "wget", "systemctl",
    "journalctl", "service", "docker", "podman", "crictl", "aws", "gcloud", "az", "terraform", "ssh", "scp",
    "df", "du", "free", "top", "htop", "ps", "kill", "pkill", "ss", "netstat", "dig", "nslookup", "ping",
    "traceroute", "tail", "head", "grep", "cat", "less", "ls", "find", "openssl", "iostat", "vmstat", "lsof",
    "dmesg", "uptime", "git", "make", "ansible", "nc", "telnet", "mysql", "mongosh", "sudo", "rm", "mv", "cp",
})


def _item_command(item: SyntaxTreeNode) -> str | None:
    """The inline command of a list item's first paragraph, if it has one."""
    first = next((c for c in item.children if c.type == "paragraph"), None)
    return _inline_command(first.children[0] if first is not None and first.children else None)


def _inline_command(inline: SyntaxTreeNode | None) -> str | None:
    """The first inline code span of ``inline`` that is a command (``kubectl …``), else None."""
    for span in _spans(inline):
        words = span.strip().removeprefix("$ ").split()
        if len(words) >= 2 and words[0] in COMMAND_WORDS:
            return span.strip().removeprefix("$ ")
    return None


def _spans(inline: SyntaxTreeNode | None) -> list[str]:
    return [t.content for t in _inline_tokens(inline) if t.type == "code_inline"]


def _item_text(item: SyntaxTreeNode) -> str:
    first = next((c for c in item.children if c.type == "paragraph"), None)
    return " ".join(_inline(first.children[0]).split()) if first is not None and first.children else ""


def _item_lines(item: SyntaxTreeNode, depth: int = 0) -> list[str]:
    """A list item as ``- text`` lines, its paragraphs and nested lists indented below it."""
    lines: list[str] = []
    pad = "  " * depth
    for child in item.children:
        if child.type == "paragraph" and child.children:
            text = _inline(child.children[0])
            if text:
                lines.append(f"{pad}- {text}" if not lines else f"{pad}  {text}")
        elif child.type in ("bullet_list", "ordered_list"):
            lines += [ln for i in child.children for ln in _item_lines(i, depth + 1)]
        elif child.type == "table":
            lines += [f"{pad}  {ln}" for ln in _table_lines(child)]
    return lines


def _table_lines(node: SyntaxTreeNode) -> list[str]:
    rows = [r for part in node.children for r in part.children if r.type == "tr"]
    return [" | ".join(_inline(c.children[0]) if c.children else "" for c in r.children) for r in rows]


def _codes(node: SyntaxTreeNode) -> list[SyntaxTreeNode]:
    found: list[SyntaxTreeNode] = []

    def walk(n: SyntaxTreeNode) -> None:
        if n.type in ("fence", "code_block"):
            found.append(n)
        for c in n.children:
            walk(c)

    walk(node)
    return found


def _code_text(node: SyntaxTreeNode) -> str:
    text = node.content
    return text[:-1] if text.endswith("\n") else text


def _code_fields(node: SyntaxTreeNode) -> dict[str, Any]:
    code = _code_text(node)
    if not code.strip():
        return {}
    return recognise(code, node.info if node.type == "fence" else "")


def _code_title(node_or_code: SyntaxTreeNode | str) -> str:
    code = node_or_code if isinstance(node_or_code, str) else _code_text(node_or_code)
    for line in code.splitlines():
        line = line.strip()
        if not line:
            continue
        comment = re.match(r"^(?:#+|--|//)\s*(?:\d+[.)]\s*)?(.*)$", line)
        text = comment.group(1) if comment else line
        return _cut(_clean(text), 80)
    return ""


# ---- text helpers ---------------------------------------------------------------------

def _repair(text: str) -> str:
    """Mis-encoded characters fixed: ftfy first, then Mac Roman mojibake it misses."""
    fixed = ftfy.fix_text(text, _FTFY)
    return _NON_ASCII_RUN.sub(_macroman, fixed)


def _macroman(match: re.Match) -> str:
    # ftfy knows Mac Roman but its detector does not flag runs like "\uf8ffüö®"
    # (🚨); re-decoding them is still ftfy's own plan, applied only where it
    # yields valid UTF-8.
    run = match.group(0)
    try:
        return ftfy.apply_plan(run, [("encode", "macroman"), ("decode", "utf-8")])
    except (UnicodeError, ValueError, LookupError):
        return run


def _clean(text: str) -> str:
    """A title: no leading emoji or symbols, no trailing colon, one line."""
    text = " ".join(text.split())
    while text and (unicodedata.category(text[0]) in ("So", "Sk", "Cf", "Mn", "Co", "Cn", "Zs")):
        text = text[1:].lstrip()
    return text.rstrip(":").strip()


def _cut(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _join(first: str | None, more: str) -> str:
    return f"{first}\n{more}" if first else more


def _without_empty(step: dict) -> dict:
    return {k: v for k, v in step.items() if v not in (None, "", {})}


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].strip("-")


def _unique(base: str, taken: set[str]) -> str:
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _humane(stem: str) -> str:
    return " ".join(re.split(r"[_\-\s]+", stem)).strip().capitalize()


# ---- YAML -------------------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Multi-line commands as literal blocks, so the file shows them as written.
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _represent_str)


def to_yaml(docs: list[dict]) -> str:
    """One playbook as a mapping, several under ``playbooks:``; loads back unchanged."""
    sources = sorted({s for d in docs for s in d.get("source_runbooks", ())})
    header = (f"# Imported from {', '.join(sources) or 'a markdown runbook'} by incident-console import-runbook.\n"
              "# Review every step before relying on it: probes and actions were recognised automatically.\n")
    body: Any = docs[0] if len(docs) == 1 else {"playbooks": docs}
    return header + yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000,
                              default_flow_style=False)
