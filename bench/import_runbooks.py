"""How much of a runbook ``import-runbook`` keeps, on the corpus in tests/runbooks.

Measured with an extractor written here, line by line and independent of the
importer's markdown parser:

- files that crash (an exception other than RunbookError): target 0;
- fenced (```, ~~~) and inline code lines found in the playbooks: target 100 %;
- words of the source found in the playbooks (as a multiset, ASCII words;
  HTML tags, list numbers, checkboxes and fence languages left out): target at least 95 %;
- playbooks per scenario heading (tests/runbooks/scenarios.json counts the
  scenarios a reader sees in each file): at least 1.

    python bench/import_runbooks.py [DIR] [--files]
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.playbooks.importer import RunbookError, import_runbook  # noqa: E402
from console.playbooks.parameters import restore  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "runbooks"
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_']*")
_TAG = re.compile(r"</?[A-Za-z][^>\n]*>")


def source_text(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig", errors="replace")


def code_lines(text: str) -> list[str]:
    """Non-blank lines of fenced blocks (stripped) and every inline code span."""
    out, fence, indent = [], None, 0
    for line in text.splitlines():
        m = _FENCE.match(line)
        if fence is None and m:
            fence, indent = m.group(2), len(m.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
                fence = None
            elif line.strip():
                out.append(line.strip())
            continue
        out += [s for s in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", line) if s.strip()]
    return out


# Markup, not words: list numbers, checkboxes, a fence's language.
_MARKUP = re.compile(r"^(\s*(?:[-*+]\s+)?)(?:\d+[.)]\s|\[[ xX]\]\s)|^(\s*(?:```|~~~)+)\S*", re.M)


def words(text: str, source: bool = False) -> Counter:
    if source:
        text = _MARKUP.sub(lambda m: m.group(1) or m.group(2) or "", text)
    return Counter(w.lower() for w in _WORD.findall(_TAG.sub(" ", text)))


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in strings(v)]
    return []


def measure(path: Path, scenarios: int | None) -> dict:
    text = source_text(path.read_bytes())
    row = {"file": path.name, "crash": "", "code": 0, "code_kept": 0, "words": 0, "words_kept": 0,
           "playbooks": 0, "scenarios": scenarios or 0}
    try:
        docs = import_runbook(path)
    except RunbookError as exc:
        row["crash"] = f"refused: {exc}"
        return row
    except Exception as exc:  # noqa: BLE001 - counting crashes is the point
        row["crash"] = f"{type(exc).__name__}: {exc}"
        return row
    # A command's {name} parameters mapped back to how the runbook wrote them ($NAMESPACE, <pod-name>).
    restored = [restore(st["command"], st["placeholders"]) for d in docs for st in d.get("steps", ())
                if st.get("placeholders") and st.get("command")]
    out = "\n".join([*(s for d in docs for s in strings(d)), *restored])
    out_lines = {ln.strip() for ln in out.splitlines()}
    codes = code_lines(text)
    row["code"] = len(codes)
    row["code_kept"] = sum(1 for c in codes if c in out_lines or c in out)
    src, kept = words(text, source=True), words(out)
    row["words"] = sum(src.values())
    row["words_kept"] = sum(min(n, kept[w]) for w, n in src.items())
    row["lost"] = sorted((src - kept).elements())[:12]
    row["playbooks"] = len(docs)
    return row


def main(argv: list[str]) -> int:
    corpus = Path(next((a for a in argv if not a.startswith("-")), CORPUS))
    manifest_path = corpus / "scenarios.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".md", ".txt", ".markdown") and p.is_file())
    rows = [measure(p, manifest.get(p.name)) for p in files]
    if "--files" in argv:
        for r in rows:
            share = r["words_kept"] / r["words"] if r["words"] else 1
            print(f"{r['file']:40} words {share:6.1%}  code {r['code_kept']}/{r['code']}  "
                  f"playbooks {r['playbooks']}/{r['scenarios']}  {r['crash']}  lost: {' '.join(r.get('lost', []))}")
    crashed = [r for r in rows if r["crash"]]
    code = sum(r["code"] for r in rows)
    code_kept = sum(r["code_kept"] for r in rows)
    n_words = sum(r["words"] for r in rows)
    words_kept = sum(r["words_kept"] for r in rows)
    counted = [r for r in rows if r["scenarios"]]
    split = sum(1 for r in counted if r["playbooks"] >= r["scenarios"])
    scenario_books = sum(min(r["playbooks"], r["scenarios"]) for r in counted)
    worst = min(rows, key=lambda r: r["words_kept"] / r["words"] if r["words"] else 1)
    print(f"| measure ({len(rows)} files) | result | target |")
    print("|---|---|---|")
    print(f"| files that crash | {len(crashed)} | 0 |")
    print(f"| code lines kept (fenced + inline) | {code_kept}/{code} = {code_kept / max(code, 1):.1%} | 100 % |")
    print(f"| words of the source kept | {words_kept}/{n_words} = {words_kept / max(n_words, 1):.1%} | ≥ 95 % |")
    print(f"| worst file, words kept | {worst['file']}: {worst['words_kept'] / max(worst['words'], 1):.1%} | |")
    print(f"| playbooks per scenario heading | {scenario_books}/{sum(r['scenarios'] for r in counted)} "
          f"({split}/{len(counted)} files split) | 1 |")
    for r in crashed:
        print(f"crash: {r['file']}: {r['crash']}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
