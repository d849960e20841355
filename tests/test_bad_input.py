"""Random and mutated configs and playbooks through `incident-console check`,
in process: never a traceback, always `path:line: message` and exit 2, or
exit 0 when what was generated happens to be valid. (Markdown runbooks into
import-runbook are fuzzed in tests/test_importer.py.)"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from console import cli, paths

BASE_CONFIG = {
    "environment": {"name": "production", "banner": "red", "read_only": False},
    "refresh": 2,
    "postgres": [{"name": "primary", "dsn": "postgresql://monitor@127.0.0.1:9/app", "timeout": 3}],
    "redis": [{"name": "cache", "url": "redis://127.0.0.1:9/0"}],
    "services": [{"name": "api", "url": "http://127.0.0.1:9/health", "timeout": 2,
                  "metrics": "http://127.0.0.1:9/metrics", "expect_status": [200, 204],
                  "headers": {"X-Trace": "1"}}],
    "prometheus": {"url": "http://127.0.0.1:9"},
    "kubernetes": {"context": "prod", "namespaces": ["app"]},
    "thresholds": {"connections_ratio": {"warning": 0.7, "critical": 0.9}},
    "playbooks": ["./playbooks"],
    "theme": "war-room",
}
BASE_PLAYBOOK = yaml.safe_load((paths.shipped_playbooks() / "api-down.yaml").read_text())
TRIED = {"config": 0, "playbook": 0, "bytes": 0}

LINE = re.compile(r"^\S.*:\d+: \S")

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.text(alphabet=st.sampled_from("[]{}:&*!|>%@`'\"\\\x00\x1b\u202e\n#-,"), max_size=20),
    st.just("x" * 10_000), st.just("${UNSET_VARIABLE}"),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=10), inner, max_size=3), max_leaves=8)
playbook_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
playbook_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
                          st.floats(allow_nan=True, allow_infinity=True), playbook_text,
                          st.text(alphabet=st.sampled_from("[]{}:&*!|>%@`'\"\\#-,"), max_size=20),
                          st.just("x" * 10_000), st.just("{placeholder}"))
playbook_values = st.recursive(playbook_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    playbook_text, inner, max_size=3), max_leaves=8)


def paths_of(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from paths_of(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from paths_of(value, prefix + (i,))


@st.composite
def mutated(draw, base, values=values):
    """``base`` with a few values replaced by anything and a few keys dropped."""
    import copy

    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(list(paths_of(doc))[1:] or [()]))
        parent = doc
        for step in where[:-1]:
            parent = parent[step]
        if not where:
            return draw(values)
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(where[-1], None)
        else:
            parent[where[-1]] = draw(values)
        if not isinstance(doc, (dict, list)):
            break
    return doc


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))


def run_check(config_bytes: bytes, playbook_bytes: bytes | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "config.yaml"
        path.write_bytes(config_bytes)
        path.chmod(0o600)
        books = root / "playbooks"
        books.mkdir()
        if playbook_bytes is not None:
            (books / "fuzzed.yaml").write_bytes(playbook_bytes)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["check", "--config", str(path)])  # an exception fails the test: a traceback
        assert code in (0, 2), (code, out.getvalue(), err.getvalue())
        assert "Traceback" not in out.getvalue() + err.getvalue()
        lines = [line for line in out.getvalue().splitlines() if line.strip()]
        if code == 2:
            problems = [line for line in lines if not re.match(r"^\S+: ok \(\d+ sources\)$", line)]
            assert problems, out.getvalue()
            for line in problems:
                assert LINE.match(line) and line.startswith(str(root)), line
            assert len(out.getvalue()) < 200_000  # a huge value is not echoed whole
        else:
            assert lines[-1].endswith(")") and "playbooks: ok" in lines[-1]


def dump(doc) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode("utf-8", "surrogatepass")


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated({**BASE_CONFIG, "playbooks": ["./playbooks"]}))
def test_mutated_configs_give_located_problems_or_ok(doc):
    TRIED["config"] += 1
    run_check(dump(doc))


@FUZZ
@given(mutated(BASE_PLAYBOOK, playbook_values))
def test_mutated_playbooks_give_located_problems_or_ok(doc):
    TRIED["playbook"] += 1
    run_check(dump({"playbooks": ["./playbooks"]}), dump(doc))


@FUZZ
@given(st.sampled_from(["config", "playbook"]), st.binary(max_size=200),
       st.sampled_from([b"", b"\xff\xfe", b"\xc3\x28", ALIAS_BOMB.encode(), b"\t- [", b"key: !!str x", b"k: &x y\nj: *x\nl: *missing",
                        b"a: " + b"9" * 5000, b"%YAML 9.9\n---\n", b"---\n...\n---\nb: 1\n"]),
       st.integers(0, 400))
def test_mutated_bytes_never_give_a_traceback(which, noise, splice, at):
    TRIED["bytes"] += 1
    base = dump(BASE_CONFIG if which == "config" else BASE_PLAYBOOK)
    data = base[:at] + splice + noise + base[at:]
    if which == "config":
        run_check(data)
    else:
        run_check(dump({"playbooks": ["./playbooks"]}), data)



def test_a_control_byte_in_yaml_is_one_located_line():
    run_check(b"refresh: 2\n\x00\n")


def test_an_unknown_yaml_tag_is_one_located_line():
    run_check(b"refresh: !!python/object:os.system x\n")


@pytest.mark.parametrize("playbook", [
    {"id": "x", "title": "t", "steps": [{"id": "a", "title": "b", "kind": "check", "\r": 1}]},
    {"id": "x", "title": "t", "steps": [{"id": "a", "title": "b", "kind": "ch\reck"}]},
])
def test_control_characters_in_a_playbook_stay_on_one_line(playbook):
    run_check(dump({"playbooks": ["./playbooks"]}), dump(playbook))


def test_control_characters_in_the_config_stay_on_one_line():
    run_check(dump({"environment": {"\r": None, "name": "a\x1b[31m\nb"}, "refresh": "2\r"}))
