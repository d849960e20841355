"""import-runbook: markdown runbooks -> playbooks that keep every command.

The seeds are checked with an extractor written here, line by line and
independent of the importer's markdown parser: every fenced or indented code
block and every inline code span must come out byte for byte, and the output
must pass `check`.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.playbooks import check, load_playbooks
from console.playbooks.importer import RunbookError, import_markdown, import_runbook, to_yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from import_runbooks import strings  # noqa: E402  every string in a YAML document, as the bench counts them
from console.playbooks.parameters import parameterise, restore

# A copy of ../shared/seeds: the runbooks our users have, kept with the tests.
SEEDS = Path(__file__).resolve().parent / "seeds"
SEED_FILES = sorted(p.name for p in SEEDS.glob("*.txt"))

SCENARIO_TITLES = {
    "000_339aa9a24859bc43.txt": ["API Down / Not Responding", "Database Connection Failures",
                                 "Payment Processing Failures", "High Error Rate", "Slow Response Times",
                                 "Data Corruption"],
    "001_eb9f7071a35a1eaf.txt": ["Marketing Site Down", "Database Connection Exhausted", "Redis Down",
                                 "API Rate Limit Exceeded"],
    "002_e553a3c957542cac.txt": ["Database Connection Pool Exhausted", "High Error Rate (>5% 5xx errors)",
                                 "High Response Time (P95 > 1 second)", "Payment Processing Failure",
                                 "SSL Certificate Expiring", "Security: Potential Breach", "Complete System Outage",
                                 "Performance Troubleshooting"],
    "003_6257f6b5cfeae902.txt": ["Service Unavailable (5xx errors)", "Database Issues", "High Latency",
                                 "Security Incident"],
    "004_f70e8bfeafc3ed5e.txt": ["Database Connection Pool Exhausted", "High Memory Usage", "OpenAI API Failure",
                                 "Redis Cache Failure", "DDoS Attack", "Security Breach"],
}


# ---- an independent extractor -------------------------------------------------------

def fenced_blocks(text: str) -> list[str]:
    """Contents of ``` and ~~~ fences, with the fence's own indent removed (CommonMark)."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        m = re.match(r"^( {0,3}|(?:\s*(?:[-*]|\d+\.)\s+)?\s*)(`{3,}|~{3,})(.*)$", lines[i])
        if m and not (m.group(2)[0] == "`" and "`" in m.group(3)):
            indent, fence = len(m.group(1)), m.group(2)
            body, i = [], i + 1
            while i < len(lines) and not re.match(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[i]):
                line = lines[i]
                strip = len(line) - len(line.lstrip(" "))
                body.append(line[min(indent, strip):])
                i += 1
            out.append("\n".join(body))
        i += 1
    return [b for b in out if b.strip()]


def indented_blocks(text: str) -> list[str]:
    """Indented code blocks after a blank line, outside lists and fences (for our own samples)."""
    out, block, previous_blank = [], [], True
    for line in text.split("\n"):
        if line.startswith("    ") and (block or previous_blank):
            block.append(line[4:])
        elif block and not line.strip():
            block.append("")
        else:
            if block:
                out.append("\n".join(block).rstrip("\n"))
            block = []
        previous_blank = not line.strip()
    if block:
        out.append("\n".join(block).rstrip("\n"))
    return out


def inline_spans(text: str) -> list[str]:
    """Single-backtick code spans outside fences."""
    outside = re.sub(r"(?ms)^\s*(```|~~~).*?^\s*\1\s*$", "", text)
    return re.findall(r"(?<!`)`([^`\n]+)`(?!`)", outside)


def imported(tmp_path: Path, text: str, name: str = "runbook.md"):
    """Docs, the written YAML, and what the real loader makes of it."""
    docs = import_markdown(text, name)
    out = tmp_path / (Path(name).stem + ".yaml")
    out.write_text(to_yaml(docs), encoding="utf-8")
    books, problems = load_playbooks([out])
    assert [str(p) for p in problems] == []
    return docs, out, books


def step_texts(books) -> list[str]:
    return [t for b in books for s in b.steps for t in (s.query, s.command, s.detail, s.title) if t]


# ---- the five seeds --------------------------------------------------------------------

def test_the_extractor_finds_what_a_reader_sees():
    sample = "1. Do\n   ```bash\n   echo a\n     indented\n   ```\n\n~~~\nx\n~~~\n"
    assert fenced_blocks(sample) == ["echo a\n  indented", "x"]
    assert inline_spans("| a | `kubectl top pods` |\n```\n`not this`\n```\n") == ["kubectl top pods"]


@pytest.mark.parametrize("seed", SEED_FILES)
def test_every_scenario_of_a_seed_becomes_a_playbook(tmp_path, seed):
    docs, _, books = imported(tmp_path, (SEEDS / seed).read_text(encoding="utf-8"), seed)
    titles = [d["title"] for d in docs]
    assert titles[: len(SCENARIO_TITLES[seed])] == SCENARIO_TITLES[seed]
    assert len(titles) == len(SCENARIO_TITLES[seed]) + 1  # plus the rest of the document
    assert all(d["source_runbooks"] == [seed] for d in docs)
    assert len(books) == len(docs)


@pytest.mark.parametrize("seed", SEED_FILES)
def test_every_code_block_of_a_seed_survives_byte_for_byte(tmp_path, seed):
    text = (SEEDS / seed).read_text(encoding="utf-8")
    _, _, books = imported(tmp_path, text, seed)
    # A command with placeholders ({namespace} for $NAMESPACE) is kept as written once they are mapped back.
    fields = {t for b in books for s in b.steps
              for t in (s.query, s.command, s.command and restore(s.command, s.placeholders)) if t}
    # Message templates and other reference sections are kept as reference text, fenced, not as steps.
    reference = "\n".join(b.reference for b in books)
    blocks = fenced_blocks(text)
    assert len(blocks) >= 15
    # Reference fences (message templates) are text: kept with their mojibake repaired.
    missing = [b for b in blocks if b not in fields and f"```\n{b}\n```" not in reference
               and f"```\n{repaired(b)}\n```" not in reference]
    assert missing == []


def repaired(text: str) -> str:
    from console.playbooks.importer import _repair

    return _repair(text)


@pytest.mark.parametrize("seed", SEED_FILES)
def test_every_inline_command_of_a_seed_survives(tmp_path, seed):
    text = (SEEDS / seed).read_text(encoding="utf-8")
    docs, _, books = imported(tmp_path, text, seed)
    everything = "\n".join(strings(docs))
    assert [s for s in inline_spans(text) if s not in everything] == []


def test_seed_commands_become_probes_and_actions_where_the_console_can_run_them(tmp_path):
    text = (SEEDS / "001_eb9f7071a35a1eaf.txt").read_text(encoding="utf-8")
    _, _, books = imported(tmp_path, text, "001.md")
    steps = [s for b in books for s in b.steps]
    # A block of several commands stays one command: splitting it would lose bytes.
    undo = next(s for s in steps if s.title == "If Recent Deployment")
    assert undo.kind == "command" and undo.command.count("kubectl rollout") == 2
    table = [s for s in steps if s.command == "kubectl top pods"]
    assert table and table[0].title == "High CPU — Running processes"
    pool = next(b for b in books if b.title == "Database Connection Exhausted")
    [probe] = [s for s in pool.steps if s.kind == "probe"]
    assert (probe.probe, probe.source, probe.query) == ("sql", "postgres", "SELECT count(*) FROM pg_stat_activity;")
    assert probe.command.startswith("# Check active connections\nkubectl exec -it deploy/postgres")

    text = (SEEDS / "003_6257f6b5cfeae902.txt").read_text(encoding="utf-8")
    _, _, books = imported(tmp_path, text, "003.md")
    steps = [s for b in books for s in b.steps]
    undo = next(s for s in steps if s.action == "rollout_undo")
    assert dict(undo.params) == {"deployment": "optimal-build-backend", "namespace": "optimal-build"}
    assert undo.command == "kubectl rollout undo deployment/optimal-build-backend -n optimal-build"
    assert any(s.action == "scale" and s.params["replicas"] == 6 for s in steps)
    assert any(s.probe == "promql" and s.query.startswith("histogram_quantile(0.95") for s in steps)

    text = (SEEDS / "000_339aa9a24859bc43.txt").read_text(encoding="utf-8")
    _, _, books = imported(tmp_path, text, "000.md")
    failures = next(b for b in books if b.title == "Database Connection Failures")
    kill = next(s for s in failures.steps if s.title == "Kill idle connections")
    assert (kill.kind, kill.action, dict(kill.params)) == ("action", "terminate_backend",
                                                           {"state": "idle", "older_than_s": 3600})
    alter = next(s for s in failures.steps if s.title == "Increase max connections")
    assert alter.kind == "command" and not alter.runnable  # mutating SQL is never a probe
    assert failures.symptoms == ('"Connection refused" errors', '"Max connections reached"', "Query timeouts")


def test_seed_mojibake_is_repaired_in_prose_and_left_alone_in_code(tmp_path):
    text = (SEEDS / "002_e553a3c957542cac.txt").read_text(encoding="utf-8")
    docs, _, _ = imported(tmp_path, text, "002.md")
    assert docs[0]["title"] == "Database Connection Pool Exhausted"  # was "ðŸš¨ Database ..."
    # The escalation table is reference text now, not steps.
    prose = " ".join([s["title"] for d in docs for s in d["steps"]]
                     + [d.get(k, "") for d in docs for k in ("description", "reference")])
    assert "🔴 Critical" in prose and "ðŸ" not in prose
    text = (SEEDS / "000_339aa9a24859bc43.txt").read_text(encoding="utf-8")
    _, _, books = imported(tmp_path, text, "000.md")
    # The Mac Roman "\uf8ffüö®" (🚨) of a message template is repaired too: a
    # template is text for people (issue 15), not a command to keep byte for byte.
    assert any("🚨 INCIDENT DECLARED" in b.reference for b in books)
    assert any("⚠️ Service Disruption" in b.reference for b in books)
    assert not any(m in b.reference for b in books for m in ("\uf8ff", "‚ö†", "Ô∏è"))
    assert not any("INCIDENT DECLARED" in (s.command or "") for b in books for s in b.steps)


# ---- other styles ------------------------------------------------------------------------

OTHER_STYLE = (
    "\ufeff# Payments runbook\r\n\r\n"
    "## Scenario: Card declines spike\r\n\r\n"
    "**Symptoms:** declines, 402s from the gateway\r\n\r\n"
    "**Step 1:** Look at the failed payments\r\n\r\n"
    "~~~sql\r\nSELECT count(*)\r\n  FROM payments\r\n WHERE status = 'failed'\r\n~~~\r\n\r\n"
    "**Step 2** - Restart the worker\r\n\r\n"
    "    kubectl rollout restart deployment/payments-worker -n pay\r\n\r\n"
    "| Check | Command |\r\n|---|---|\r\n"
    "| Redis memory | `redis-cli INFO memory` |\r\n"
    "| Queue depth | `redis-cli LLEN payments:queue` |\r\n"
    "| Drain it | `redis-cli DEL payments:queue` |\r\n\r\n"
    "- [ ] Tell support\r\n"
    "- [x] Page the payments on-call\r\n\r\n"
    "## Scenario: Gateway down\r\n\r\n"
    "1. Announce \uf8ffüö® INCIDENT in the channel\r\n"
    "2. Mark âœ… when the status page is updated\r\n"
    "3. Check the gateway\r\n\r\n"
    "   ```\r\n   curl -sf https://status.gateway.example/api/v2/status.json\r\n   ```\r\n"
)


def test_a_crlf_bom_runbook_with_tildes_indents_tables_and_bold_steps(tmp_path):
    docs, _, books = imported(tmp_path, OTHER_STYLE, "payments.md")
    assert [b.title for b in books] == ["Card declines spike", "Gateway down"]
    cards = books[0]
    assert cards.symptoms == ("declines", "402s from the gateway")
    by_title = {s.title: s for s in cards.steps}
    step1 = by_title["Step 1: Look at the failed payments"]
    assert (step1.kind, step1.probe, step1.query) == ("probe", "sql",
                                                      "SELECT count(*)\n  FROM payments\n WHERE status = 'failed'")
    step2 = by_title["Step 2: Restart the worker"]
    assert (step2.kind, step2.action, dict(step2.params)) == (
        "action", "rollout_restart", {"deployment": "payments-worker", "namespace": "pay"})
    assert step2.command == "kubectl rollout restart deployment/payments-worker -n pay"
    memory = by_title["Redis memory"]
    assert (memory.kind, memory.probe, memory.query, memory.command) == (
        "probe", "redis", "INFO memory", "redis-cli INFO memory")
    assert by_title["Queue depth"].query == "LLEN payments:queue"
    drain = by_title["Drain it"]
    assert (drain.kind, drain.command, drain.runnable) == ("command", "redis-cli DEL payments:queue", False)
    assert {"Tell support", "Page the payments on-call"} <= set(by_title)
    gateway = [s.title for s in books[1].steps]
    assert gateway[:2] == ["Announce 🚨 INCIDENT in the channel", "Mark ✅ when the status page is updated"]
    assert books[1].steps[2].probe == "http"
    # Line endings aside, every block and span is kept as written.
    lf = OTHER_STYLE.replace("\r\n", "\n")
    texts = step_texts(books)
    for block in fenced_blocks(lf) + indented_blocks(lf) + inline_spans(lf):
        assert block in texts, block


def test_a_runbook_without_scenarios_is_one_playbook(tmp_path):
    text = "Restart notes\n\n1. Drain the node\n\n```\nkubectl drain node-1\n```\n"
    docs, _, books = imported(tmp_path, text, "restart-notes.md")
    assert [d["title"] for d in docs] == ["Restart notes"]
    assert [s.command for s in books[0].steps] == [None, "kubectl drain node-1"]


def test_a_runbook_of_prose_only_still_gives_a_checkable_playbook(tmp_path):
    docs, _, books = imported(tmp_path, "# Nothing to run\n\nJust call Alice.\n", "prose.md")
    assert [s.id for s in books[0].steps] == ["review"]
    assert "Just call Alice." in books[0].steps[0].detail


def test_to_yaml_round_trips_and_keeps_multiline_commands_readable():
    docs = import_markdown(OTHER_STYLE, "payments.md")
    text = to_yaml(docs)
    assert yaml.safe_load(text) == {"playbooks": docs}
    assert "    query: |-\n      SELECT count(*)\n        FROM payments\n" in text
    one = to_yaml(docs[:1])
    assert yaml.safe_load(one) == docs[0]


def test_files_that_are_not_runbooks_give_a_clear_error(tmp_path):
    with pytest.raises(RunbookError, match="cannot read"):
        import_runbook(tmp_path / "missing.md")
    latin = tmp_path / "latin.md"
    latin.write_bytes(b"# Caf\xe9 down\n\n1. Restart\n")
    with pytest.raises(RunbookError, match=r"latin.md:1: not UTF-8 text \(byte 0xe9\)"):
        import_runbook(latin)
    binary = tmp_path / "image.md"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(RunbookError):
        import_runbook(binary)
    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    assert import_runbook(empty) == []


@pytest.mark.parametrize("text, kept", [
    ("*" * 5000 + "a" + "*" * 5000, True), ("_" * 4000 + "a" + "_" * 4000, True),
    ("[" * 3000 + "a" + "]" * 3000, True), ("> " * 3000 + "deep", True),
    # Past markdown-it's nesting limit the rest of a list is not parsed: no
    # traceback, an empty result.
    ("- " * 3000 + "deep", False),
], ids=["emphasis", "underscores", "brackets", "quotes", "lists"])
def test_deeply_nested_markup_neither_recurses_nor_hangs(tmp_path, text, kept):
    docs, _, books = imported(tmp_path, text + "\n\n```\nredis-cli ping\n```\n", "deep.md")
    assert [s.query for b in books for s in b.steps if s.probe] == (["ping"] if kept else [])


# ---- fuzzing -------------------------------------------------------------------------------

COMMANDS = st.sampled_from([
    "SELECT count(*) FROM pg_stat_activity;", "SELECT 1; DROP TABLE x", "DELETE FROM t",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle'",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = <PID>;",
    "redis-cli ping", "redis-cli FLUSHDB", "redis-cli -n 2 CONFIG SET x y", "redis-cli GET 'unclosed",
    "kubectl rollout undo deployment/api -n prod", "kubectl scale deploy/api --replicas=3",
    "kubectl scale deploy/api --replicas=-1", "kubectl rollout restart sts/db -n ''", "kubectl get pods -A",
    "curl -sf http://localhost:9090/api/v1/query?query=up", "curl -I https://x.example", "curl -X POST https://x",
    "curl http://h/api/v1/query?query=%20", 'psql -c "SELECT 1"', "psql -c 'DELETE FROM t'",
    "echo ${TOKEN} | jq", "  \t", "```", "~~~", "kubectl rollout undo deployment/API_ -n x",
])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
CODE = st.one_of(COMMANDS, TEXT, st.lists(COMMANDS, max_size=3).map("\n".join))
FRAGMENT = st.one_of(
    TEXT,
    st.builds(lambda n, t: "#" * n + " " + t, st.integers(1, 7), TEXT),
    st.builds(lambda t: f"## Playbook: {t}", TEXT),
    st.builds(lambda t, c: f"1. {t}\n   ```bash\n   {c}\n   ```", TEXT, CODE),
    st.builds(lambda t: f"- [ ] {t}", TEXT),
    st.builds(lambda t: f"- [x] {t}\n  - {t}", TEXT),
    st.builds(lambda f, i, c: f"{f}{i}\n{c}\n{f}", st.sampled_from(["```", "~~~", "````"]),
              st.sampled_from(["", "sql", "bash", "promql", "redis", "python", "sh {.x}"]), CODE),
    st.builds(lambda c: "    " + c.replace("\n", "\n    "), CODE),
    st.builds(lambda a, c: f"| Check | Command |\n|---|---|\n| {a} | `{c}` |", TEXT, COMMANDS),
    st.builds(lambda a, b: f"| {a} |\n|--|\n| {b} |", TEXT, TEXT),
    st.builds(lambda n, t: f"**Step {n}:** {t}", st.integers(0, 99), TEXT),
    st.builds(lambda t: f"**Symptoms:** {t}", TEXT),
    st.builds(lambda t: f"> {t}\n> ```\n> redis-cli INFO\n> ```", TEXT),
    st.sampled_from(["---", "**Symptoms**:", "ðŸš¨ âœ… \uf8ffüö®", "\ufeff", "[x]", "1.", "- ", "|", "<div>", "\x00"]),
)
SOUP = st.lists(st.sampled_from(list("#-*|`~[]x> \n\t1.:{}$'\"\\") + [
    "```", "~~~", "    ", "**Step 1:**", "**Symptoms:**", "redis-cli ", "kubectl ", "SELECT ", "psql -c ",
    "\u2028", "\x85", "ðŸš¨", "\x1b[31m"]), max_size=60).map("".join)
FRAGMENT = st.one_of(FRAGMENT, SOUP)
DOCUMENTS = st.builds(
    lambda parts, sep, bom: ("\ufeff" if bom else "") + sep.join(parts),
    st.lists(FRAGMENT, max_size=12), st.sampled_from(["\n\n", "\r\n\r\n", "\n", "\r"]), st.booleans())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_any_markdown_imports_without_a_traceback_and_passes_check(text):
    docs = import_markdown(text, "fuzz.md")
    with tempfile.TemporaryDirectory() as where:
        out = Path(where) / "fuzz.yaml"
        out.write_text(to_yaml(docs), encoding="utf-8")
        assert [str(p) for p in check([out])] == []
        books, _ = load_playbooks([out])
        assert len(books) == len(docs)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_playbooks_or_a_runbook_error(data):
    with tempfile.TemporaryDirectory() as where:
        path = Path(where) / "x.md"
        path.write_bytes(data)
        try:
            docs = import_runbook(path)
        except RunbookError as exc:
            assert str(exc).startswith(str(path))
            return
        out = Path(where) / "x.yaml"
        out.write_text(to_yaml(docs), encoding="utf-8")
        assert [str(p) for p in check([out])] == []


# ---- the corpus of styles (tests/runbooks, measured by bench/import_runbooks.py) -----------

RUNBOOKS = Path(__file__).resolve().parent / "runbooks"
RUNBOOK_FILES = sorted(p.name for p in RUNBOOKS.glob("*.md"))


def _bench():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "import_runbooks_bench", Path(__file__).resolve().parent.parent / "bench" / "import_runbooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_corpus_covers_thirty_runbooks_in_six_styles():
    styles = {name.split("_")[0] for name in RUNBOOK_FILES}
    assert len(RUNBOOK_FILES) >= 30 and len(styles) >= 6


@pytest.mark.parametrize("name", RUNBOOK_FILES)
def test_a_corpus_runbook_keeps_its_commands_words_and_scenarios(tmp_path, name):
    bench = _bench()
    import json
    scenarios = json.loads((RUNBOOKS / "scenarios.json").read_text())[name]
    row = bench.measure(RUNBOOKS / name, scenarios)
    assert row["crash"] == ""
    assert row["code_kept"] == row["code"]
    assert row["words_kept"] >= 0.95 * row["words"], row["lost"]
    assert row["playbooks"] >= scenarios
    out = tmp_path / "out.yaml"
    out.write_text(to_yaml(import_runbook(RUNBOOKS / name)), encoding="utf-8")
    assert [str(p) for p in check([out])] == []


def test_utf16_and_mojibake_corpus_files_read_as_the_utf8_original():
    titles = {n: [d["title"] for d in import_runbook(RUNBOOKS / n)] for n in RUNBOOK_FILES if n.startswith("encoding")}
    assert len({tuple(t) for n, t in titles.items() if "latin1" not in n}) == 1  # latin1 says "usage"
    texts = "\n".join(s for n in titles for d in import_runbook(RUNBOOKS / n) for s in _bench().strings(d))
    assert "⚠️ Do not delete" in texts and "ðŸ" not in texts and "‚ö" not in texts


def test_reference_sections_are_kept_as_reference_not_steps(tmp_path):
    docs, _, books = imported(tmp_path, (RUNBOOKS / "handbook_00_payments-api.md").read_text(), "h.md")
    rest = books[-1]
    assert "Level 2: engineering manager after 30 minutes" in rest.reference
    assert "We are investigating errors on payments-api" in rest.reference
    assert not any("investigating" in (s.command or "") for b in books for s in b.steps)
    alert, _, books = imported(tmp_path, (RUNBOOKS / "alert_00_payments-api.md").read_text(), "a.md")
    assert "Meaning\nThis alert fires" in books[0].description
    assert "Impact\nCustomers of payments-api" in books[0].description
    assert any("- Look for `OOMKilled` in the last state" in s.detail for s in books[0].steps)


def test_import_runbook_dir_writes_one_loadable_file_per_runbook_and_a_summary(tmp_path, capsys):
    from console.cli import main
    out = tmp_path / "out"
    assert main(["import-runbook", str(RUNBOOKS), "-o", str(out)]) == 0
    assert len(list(out.glob("*.yaml"))) == len(RUNBOOK_FILES)
    books, problems = load_playbooks([out])
    assert problems == [] and len(books) >= len(RUNBOOK_FILES)
    assert f"{len(RUNBOOK_FILES)} files, {len(books)} playbooks" in capsys.readouterr().err


# ---- mutating SQL, placeholders (issue 15) ------------------------------------------------

ISSUE_SQL = ["REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public FROM payments_writer;",
             "ALTER SYSTEM SET max_connections = 300;", "SELECT pg_drop_replication_slot('standby_1');",
             "DELETE FROM node_leases WHERE node = 'node-7';", "UPDATE t SET a = 1;", "INSERT INTO t VALUES (1);",
             "VACUUM FULL invoices;", "SELECT 1; SELECT 2;", "SELEC broken from"]


@pytest.mark.parametrize("sql", ISSUE_SQL)
@pytest.mark.parametrize("fence", ["sql", "", "bash", "postgresql"])
def test_mutating_sql_is_sql_to_copy_never_a_shell_command(tmp_path, sql, fence):
    if fence != "sql" and sql.startswith("SELEC "):
        return  # not recognisable as SQL outside a sql fence: a command to copy, as any text
    docs, _, books = imported(tmp_path, f"# Fix\n\n1. Do it\n\n   ```{fence}\n   {sql}\n   ```\n", "f.md")
    step = books[0].steps[0]
    assert (step.kind, step.command, step.sql, step.runnable) == ("command", sql, True, False)
    from console.playbooks.runner import StepRunner
    from console.config import parse
    assert not StepRunner(parse("refresh: 2\n"), {}).is_mutating(step)


def test_read_only_sql_is_a_probe_and_psql_lines_stay_shell(tmp_path):
    text = ("# Fix\n\n1. Look\n\n   ```sql\n   SELECT count(*) FROM pg_stat_activity;\n   ```\n"
            "2. Write\n\n   ```bash\n   psql -c \"DELETE FROM t\"\n   ```\n")
    _, _, books = imported(tmp_path, text, "f.md")
    look, write = books[0].steps
    assert (look.kind, look.probe) == ("probe", "sql")
    assert (write.kind, write.sql, write.runnable) == ("command", False, False)


def test_seed_sql_that_writes_is_marked_sql(tmp_path):
    seed = "000_339aa9a24859bc43.txt"
    _, _, books = imported(tmp_path, (SEEDS / seed).read_text(encoding="utf-8"), seed)
    sql = {s.command for b in books for s in b.steps if s.sql}
    assert "ALTER SYSTEM SET max_connections = 200;\nSELECT pg_reload_conf();" in sql
    assert "REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public FROM kamiyo;" in sql
    assert not any(s.sql for b in books for s in b.steps if s.kind != "command")


@pytest.mark.parametrize("code, command, written", [
    ("kubectl -n $NAMESPACE describe pod <pod-name>", "kubectl -n {namespace} describe pod {pod}",
     {"namespace": "$NAMESPACE", "pod": "<pod-name>"}),
    ("kubectl -n ${NAMESPACE} logs $POD -n $NAMESPACE", "kubectl -n {namespace} logs {pod} -n {namespace}",
     {"namespace": ["${NAMESPACE}", "$NAMESPACE"], "pod": "$POD"}),
    ("kill -TERM <PID>", "kill -TERM {pid}", {"pid": "<PID>"}),
    ("kubectl rollout restart deployment/<deployment> -n <your-namespace>",
     "kubectl rollout restart deployment/{deployment} -n {namespace}",
     {"deployment": "<deployment>", "namespace": "<your-namespace>"}),
    ("curl -X POST https://api.statuspage.io/v1/pages/PAGE_ID/incidents",
     "curl -X POST https://api.statuspage.io/v1/pages/{page_id}/incidents", {"page_id": "PAGE_ID"}),
])
def test_placeholders_become_parameters(code, command, written):
    assert parameterise(code) == (command, written)
    assert restore(command, written) == code


@pytest.mark.parametrize("code", [
    "for p in $(kubectl get pods -o name); do kubectl delete $p; done",
    "NAMESPACE=payments\nkubectl -n $NAMESPACE get pods",
    "export POD_NAME=api-0; kubectl logs $POD_NAME",
    "for POD in a b; do kubectl logs $POD; done",
    "echo $HOME $PATH $KUBECONFIG",
    "curl -H \"Authorization: Bearer $API_TOKEN\" $DATABASE_URL",  # secrets come from the environment
    "sort <in.txt >out.txt && cat <<EOF\nx\nEOF",
    "# set <pod-name> first\nkubectl get pods",
    "psql -c 'SELECT CURRENT_USER'",
    "awk '{print $1}' file",
])
def test_what_is_no_placeholder_is_left_byte_for_byte(code):
    assert parameterise(code) == (code, {})


def test_an_imported_command_asks_for_its_placeholders_with_pickable_names(tmp_path):
    text = "# Pods\n\n1. Describe\n\n   ```bash\n   kubectl -n $NAMESPACE describe pod <pod-name>\n   ```\n"
    _, _, books = imported(tmp_path, text, "p.md")
    step = books[0].steps[0]
    assert step.command == "kubectl -n {namespace} describe pod {pod}"
    assert dict(step.placeholders) == {"namespace": "$NAMESPACE", "pod": "<pod-name>"}
    from console.config import parse
    from console.playbooks.runner import StepRunner
    runner = StepRunner(parse("refresh: 2\n"), {})
    assert runner.values_needed(step) == ["namespace", "pod"]
    assert runner.render_command(step, {"namespace": "shop", "pod": "api-0"}) == \
        "kubectl -n shop describe pod api-0"


def test_an_inline_command_in_a_bullet_is_that_steps_command_with_its_placeholders():
    """Issue 15: `Check pod events via `kubectl -n $NAMESPACE describe pod $POD`` became
    one check step holding the whole list as text, its nested sub-list cut."""
    from console.playbooks.importer import import_markdown

    md = ("# KubePodCrashLooping\n\n## Meaning\nA pod is restarting.\n\n## Diagnosis\n"
          "- Check pod events via `kubectl -n $NAMESPACE describe pod $POD`\n"
          "- Look at the `restartCount` field\n"
          "- Read logs: `kubectl -n $NAMESPACE logs $POD --previous`\n"
          "  - then compare with `kubectl get pods`\n")
    (book,) = import_markdown(md)
    steps = book["steps"]
    assert [s["kind"] for s in steps] == ["command", "check", "command"]
    assert steps[0]["command"] == "kubectl -n {namespace} describe pod {pod}"
    assert steps[0]["placeholders"] == {"namespace": "$NAMESPACE", "pod": "$POD"}
    assert "restartCount" in steps[1]["title"]  # a code span that is no command stays text
    assert steps[2]["detail"] == "- then compare with `kubectl get pods`"  # the nested list kept
    assert not steps[2].get("runnable")  # imported commands are copied, not run
