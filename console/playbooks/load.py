"""YAML playbook files -> :class:`Playbook` values, and every problem in them.

A file holds one playbook (a mapping with ``id``), several (``playbooks:``
list, or a top-level list). Problems are reported as ``path:line: message``;
a playbook with any problem is left out, because a half-understood playbook
at 3 a.m. is worse than a missing one.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from console import located
from console.located import Document, Invalid, Problem
from console.playbooks.model import (ACTIONS, OPS, PROBE_KINDS, SOURCE_KINDS, STEP_KINDS, Condition, Playbook,
                                     TEMPLATE, Step, is_template, placeholders)
from console.readonly import (http_is_read_only, kubernetes_is_read_only, redis_argv,
                                        redis_is_read_only, sql_is_read_only)
from console.thresholds import KNOWN_METRICS

if TYPE_CHECKING:
    from console.config import Config

ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
PLAYBOOK_KEYS = {"id", "title", "severity", "description", "symptoms", "suggest_when", "steps", "source_runbooks",
                 "reference"}
COMMON_STEP_KEYS = {"id", "title", "kind", "detail", "condition"}
STEP_KEYS = {
    "check": COMMON_STEP_KEYS,
    "probe": COMMON_STEP_KEYS | {"probe", "source", "query", "command"},
    "command": COMMON_STEP_KEYS | {"command", "runnable", "sql", "placeholders"},
    "action": COMMON_STEP_KEYS | {"action", "source", "params", "confirm", "command"},
}
ALL_STEP_KEYS = set().union(*STEP_KEYS.values())


def load_playbooks(dirs: Iterable[str | Path], config: "Config | None" = None) -> tuple[list[Playbook], list[Problem]]:
    """Every playbook in ``dirs`` (directories of ``*.yaml``/``*.yml``, or files)."""
    playbooks: list[Playbook] = []
    problems: list[Problem] = []
    first_seen: dict[str, Playbook] = {}
    names = _source_names(config)
    for path in _files(dirs, problems):
        try:
            doc = located.load(path)
            books = _FileReader(doc, names, problems, _sql_functions(config)).playbooks()
        except Invalid as exc:
            problems.extend(exc.problems)
            continue
        except Exception as exc:  # a bug here must cost one file, not every playbook (or the console)
            problems.append(Problem(str(path), 1, f"could not be read: {type(exc).__name__}: {exc}"))
            continue
        for book in books:
            earlier = first_seen.get(book.id)
            if earlier is not None:
                problems.append(Problem(book.path, book.line,
                                        f"duplicate playbook id '{book.id}' (first in {earlier.path}:{earlier.line})"))
                continue
            first_seen[book.id] = book
            playbooks.append(book)
    return playbooks, sorted(problems, key=lambda p: (p.path, p.line))


def check(dirs: Iterable[str | Path], config: "Config | None" = None) -> list[Problem]:
    """Every problem in the playbooks under ``dirs``; empty when all are sound."""
    return load_playbooks(dirs, config)[1]


def _files(dirs: Iterable[str | Path], problems: list[Problem]) -> list[Path]:
    out: list[Path] = []
    for entry in dirs:
        path = Path(entry)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            out.append(path)
        else:
            problems.append(Problem(str(path), 0, "no such playbook directory or file"))
    return out


def _source_names(config: "Config | None") -> dict[str, set[str]] | None:
    """Configured source name -> the kinds it is; None without a config."""
    if config is None:
        return None
    names: dict[str, set[str]] = {}
    for kind, targets in (("postgres", config.postgres), ("redis", config.redis), ("http", config.services)):
        for target in targets:
            names.setdefault(target.name, set()).add(kind)
    return names


def _sql_functions(config: "Config | None") -> tuple[str, ...]:
    """The config's ``probes.sql_functions``: the same allow-list the run time uses."""
    rules = getattr(config, "probes", None)
    return tuple(getattr(rules, "sql_functions", ()))


class _FileReader:
    def __init__(self, doc: Document, names: dict[str, set[str]] | None, problems: list[Problem],
                 sql_functions: tuple[str, ...] = ()) -> None:
        self.doc = doc
        self.names = names
        self.problems = problems
        self.sql_functions = sql_functions
        self.failed = False

    def fail(self, keys: tuple, message: str) -> None:
        self.failed = True
        self.problems.append(self.doc.problem(keys, message))

    def value(self, keys: tuple) -> Any:
        value = self.doc.data
        for k in keys:
            value = value[k]
        return value

    def typed(self, keys: tuple, kind: type | tuple, required: bool = False, default: Any = None) -> Any:
        container = self.value(keys[:-1])
        if keys[-1] not in container or container[keys[-1]] is None:
            if required:
                self.fail(keys[:-1], f"missing required key '{keys[-1]}'")
            return default
        value = container[keys[-1]]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            self.fail(keys, f"'{keys[-1]}' must be {_describe(kind)}, not {_describe(type(value))}")
            return default
        if isinstance(value, str) and required and not value.strip():
            self.fail(keys, f"'{keys[-1]}' must not be empty")
            return default
        return value

    def strings(self, keys: tuple) -> tuple[str, ...]:
        items = self.typed(keys, list, default=[])
        out = []
        for i, item in enumerate(items):
            if isinstance(item, (str, int, float)) and not isinstance(item, bool):
                out.append(str(item))
            else:
                self.fail(keys + (i,), f"each item of '{keys[-1]}' must be a string")
        return tuple(out)

    def unknown_keys(self, keys: tuple, allowed: set[str], known: set[str], what: str) -> None:
        for k in self.value(keys):
            if k in allowed:
                continue
            if k in known:
                self.fail(keys + (k,), f"'{k}' does not apply to {what}")
                continue
            hint = difflib.get_close_matches(str(k), sorted(known), n=1, cutoff=0.6)
            self.fail(keys + (k,), f"unknown key '{k}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""))

    # ---- playbooks ---------------------------------------------------------
    def playbooks(self) -> list[Playbook]:
        data = self.doc.data
        if isinstance(data, dict) and "playbooks" in data and "id" not in data:
            self.unknown_keys((), {"playbooks"}, {"playbooks"}, "a playbook file")
            entries = self.typed(("playbooks",), list, default=[])
            prefix: tuple = ("playbooks",)
        elif isinstance(data, list):
            entries, prefix = data, ()
        elif isinstance(data, dict):
            entries, prefix = None, ()
        else:
            self.fail((), "a playbook file must be a mapping (one playbook) or a list of playbooks")
            return []
        if entries is None:
            book = self.playbook(())
            return [book] if book else []
        out = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                self.fail(prefix + (i,), "each playbook must be a mapping")
                continue
            book = self.playbook(prefix + (i,))
            if book:
                out.append(book)
        return out

    def playbook(self, keys: tuple) -> Playbook | None:
        self.failed = False
        self.unknown_keys(keys, PLAYBOOK_KEYS, PLAYBOOK_KEYS, "a playbook")
        book_id = self.identifier(keys + ("id",), "playbook id")
        title = self.typed(keys + ("title",), str, required=True)
        severity = self.typed(keys + ("severity",), (str, int))
        symptoms = self.strings(keys + ("symptoms",))
        suggest = []
        for i, _ in enumerate(self.typed(keys + ("suggest_when",), list, default=[])):
            condition = self.condition(keys + ("suggest_when", i))
            if condition:
                suggest.append(condition)
        steps = self.steps(keys + ("steps",))
        runbooks = self.strings(keys + ("source_runbooks",))
        description = self.typed(keys + ("description",), str, default="")
        reference = self.typed(keys + ("reference",), str, default="")
        if self.failed or book_id is None or title is None:
            return None
        return Playbook(book_id, title, None if severity is None else str(severity), symptoms, tuple(suggest),
                        tuple(steps), self.doc.path, self.doc.line(*keys), runbooks, description, reference)

    def identifier(self, keys: tuple, what: str) -> str | None:
        value = self.typed(keys, (str, int), required=True)
        if value is None:
            return None
        value = str(value)
        if not ID.match(value):
            self.fail(keys, f"{what} {value!r} must be letters, digits, '.', '_' or '-' (at most 80)")
            return None
        return value

    def condition(self, keys: tuple) -> Condition | None:
        raw = self.value(keys)
        try:
            if isinstance(raw, dict):
                condition = self.condition_mapping(keys, raw)
                if condition is None:
                    return None
            else:
                condition = Condition.parse(raw)
        except ValueError as exc:
            self.fail(keys, str(exc))
            return None
        if condition.metric not in KNOWN_METRICS:
            hint = difflib.get_close_matches(condition.metric, sorted(KNOWN_METRICS), n=1, cutoff=0.6)
            self.fail(keys, f"unknown metric '{condition.metric}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
            return None
        if condition.source is not None and not self.source_known(keys, condition.source, condition.kind):
            return None
        return condition

    def condition_mapping(self, keys: tuple, raw: dict) -> Condition | None:
        self.unknown_keys(keys, {"metric", "op", "value", "source"}, {"metric", "op", "value", "source"},
                          "a condition")
        metric = self.typed(keys + ("metric",), str, required=True)
        op = self.typed(keys + ("op",), str, required=True)
        value = self.typed(keys + ("value",), float, required=True)
        source = self.typed(keys + ("source",), str)
        if None in (metric, op, value):
            return None
        if op not in OPS:
            self.fail(keys + ("op",), f"op must be one of {' '.join(OPS)}, not {op!r}")
            return None
        if "." not in metric:
            self.fail(keys + ("metric",), f"metric must be kind.metric, like postgres.connections_ratio, not {metric!r}")
            return None
        return Condition(metric, op, value, source)

    def source_known(self, keys: tuple, name: str, kind: str | None) -> bool:
        """``name`` is a kind, or a configured source (of ``kind`` when given)."""
        if name in SOURCE_KINDS:
            if kind is not None and name != kind:
                self.fail(keys, f"source '{name}' is not a {kind} source")
                return False
            return True
        if self.names is None:
            self.fail(keys, f"unknown source '{name}': without a config only kinds "
                            f"({', '.join(SOURCE_KINDS)}) can be checked")
            return False
        kinds = self.names.get(name)
        if not kinds:
            known = sorted(set(self.names) | set(SOURCE_KINDS))
            hint = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            self.fail(keys, f"unknown source '{name}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
            return False
        # Condition kinds name snapshots: "errors" readings belong to http services.
        wanted = "http" if kind == "errors" else kind
        if wanted is not None and wanted not in kinds:
            self.fail(keys, f"source '{name}' is a {'/'.join(sorted(kinds))} source, not {wanted}")
            return False
        return True

    # ---- steps ---------------------------------------------------------------
    def steps(self, keys: tuple) -> list[Step]:
        entries = self.typed(keys, list, required=True, default=[])
        if not entries and keys[-1] in self.value(keys[:-1]) and isinstance(self.value(keys), list):
            self.fail(keys, "a playbook needs at least one step")
        out, seen = [], {}
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                self.fail(keys + (i,), "each step must be a mapping")
                continue
            # Ids are compared as written, so a step with other problems still
            # counts as the first holder of its id.
            raw_id = entry.get("id")
            if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool):
                if str(raw_id) in seen:
                    self.fail(keys + (i, "id"), f"duplicate step id '{raw_id}' (first on line {seen[str(raw_id)]})")
                    continue
                seen[str(raw_id)] = self.doc.line(*keys, i)
            step = self.step(keys + (i,))
            if step is not None:
                out.append(step)
        return out

    def step(self, keys: tuple) -> Step | None:
        before = len(self.problems)
        kind = self.typed(keys + ("kind",), str, required=True)
        if kind is not None and kind not in STEP_KINDS:
            hint = difflib.get_close_matches(kind, STEP_KINDS, n=1, cutoff=0.5)
            self.fail(keys + ("kind",), f"unknown step kind '{kind}' (one of {', '.join(STEP_KINDS)})"
                      + (f"; did you mean '{hint[0]}'?" if hint else ""))
            kind = None
        self.unknown_keys(keys, STEP_KEYS.get(kind, ALL_STEP_KEYS), ALL_STEP_KEYS,
                          f"a {kind} step" if kind else "a step")
        fields: dict[str, Any] = {
            "id": self.identifier(keys + ("id",), "step id"),
            "title": self.typed(keys + ("title",), str, required=True),
            "detail": self.typed(keys + ("detail",), str, default=""),
            "command": self.typed(keys + ("command",), str, required=kind == "command"),
            "runnable": self.typed(keys + ("runnable",), bool, default=False),
        }
        if "condition" in self.value(keys):
            fields["condition"] = self.condition(keys + ("condition",))
        if kind == "command":
            fields.update(self.command_extras(keys, fields["runnable"]))
        if kind == "probe":
            fields.update(self.probe(keys))
        elif kind == "action":
            fields.update(self.action(keys, fields["command"]))
        if len(self.problems) > before or kind is None or fields["id"] is None or fields["title"] is None:
            return None
        return Step(kind=kind, line=self.doc.line(*keys), **fields)

    def command_extras(self, keys: tuple, runnable: bool) -> dict[str, Any]:
        """``sql`` (copied SQL, never run) and ``placeholders`` (how the runbook wrote each ``{name}``)."""
        sql = self.typed(keys + ("sql",), bool, default=False)
        if sql and runnable:
            self.fail(keys + ("runnable",), "a sql command is never run (never as shell): it is copied into "
                      "a database client; drop 'runnable'")
        written = self.typed(keys + ("placeholders",), dict, default={})
        for name, spelling in written.items():
            spellings = spelling if isinstance(spelling, list) else [spelling]
            if not isinstance(name, str) or not TEMPLATE.fullmatch(f"{{{name}}}") \
                    or not spellings or not all(isinstance(s, str) and s for s in spellings):
                self.fail(keys + ("placeholders",), "placeholders maps a {name} of the command to how the "
                          f"runbook wrote it (a string or a list of strings), not {name!r}: {spelling!r}")
                return {"sql": bool(sql)}
        return {"sql": bool(sql), "placeholders": written}

    def probe(self, keys: tuple) -> dict[str, Any]:
        probe = self.typed(keys + ("probe",), str, required=True)
        query = self.typed(keys + ("query",), str, required=True)
        source = self.typed(keys + ("source",), str)
        if probe is not None and probe not in PROBE_KINDS:
            self.fail(keys + ("probe",), f"unknown probe '{probe}' (one of {', '.join(PROBE_KINDS)})")
            return {}
        if probe is None or query is None:
            return {}
        reason = self.query_refused(probe, query)
        if reason:
            self.fail(keys + ("query",), f"probe refused: {reason}")
        if source is not None:
            self.source_known(keys + ("source",), source, PROBE_KINDS[probe])
        elif probe == "http" and query.split()[-1].startswith("/"):
            self.fail(keys + ("query",), "an HTTP probe on a path needs a source (a service name, or 'http')")
        return {"probe": probe, "query": query, "source": source}

    def query_refused(self, probe: str, query: str) -> str | None:
        if probe == "sql":
            return sql_is_read_only(query, self.sql_functions)
        if probe == "redis":
            argv = redis_argv(query)
            return argv if isinstance(argv, str) else redis_is_read_only(argv)
        if probe == "http":
            return http_is_read_only(query)
        if probe == "kubernetes":
            return kubernetes_is_read_only(query)
        return None if query.strip() else "empty PromQL query"

    def action(self, keys: tuple, command: str | None) -> dict[str, Any]:
        action = self.typed(keys + ("action",), str, required=True)
        params = self.typed(keys + ("params",), dict, default={})
        confirm = self.typed(keys + ("confirm",), str)
        source = self.typed(keys + ("source",), str)
        if action is None:
            return {}
        spec = ACTIONS.get(action)
        if spec is None:
            hint = difflib.get_close_matches(action, sorted(ACTIONS), n=1, cutoff=0.5)
            self.fail(keys + ("action",), f"unknown action '{action}' (one of {', '.join(ACTIONS)})"
                      + (f"; did you mean '{hint[0]}'?" if hint else ""))
            return {}
        self.action_params(keys + ("params",), action, params)
        if action == "shell" and command is None:
            self.fail(keys, "a shell action needs 'command'")
        if confirm is not None and not confirm.strip():
            self.fail(keys + ("confirm",), "'confirm' must not be empty (it is what the operator types)")
        if confirm is not None:
            known = set(params) | {"source"}
            for name in placeholders(confirm):
                if name not in known:
                    self.fail(keys + ("confirm",), f"confirm uses {{{name}}}, which is not a param")
        if source is not None:
            if spec.target is None:
                self.fail(keys + ("source",), "a shell action has no source")
            else:
                self.source_known(keys + ("source",), source, spec.target)
        return {"action": action, "params": params, "confirm": confirm, "source": source}

    def action_params(self, keys: tuple, action: str, params: dict) -> None:
        spec = ACTIONS[action]
        for name, value in params.items():
            if not spec.any_params and name not in spec.params:
                self.fail(keys + (name,), f"{action} takes no param '{name}' (it takes {', '.join(sorted(spec.params))})")
            elif not isinstance(value, (str, int, float)) or isinstance(value, bool) \
                    or (isinstance(value, str) and not value.strip()):
                self.fail(keys + (name,), f"param '{name}' must be a non-empty string or a number")
            elif name in spec.integers and not (isinstance(value, int) and value >= 0 or is_template(value)):
                self.fail(keys + (name,), f"param '{name}' must be a whole number or a template like {{{name}}}")
            elif name in spec.numbers and not (isinstance(value, (int, float)) and value >= 0 or is_template(value)):
                self.fail(keys + (name,), f"param '{name}' must be a number or a template like {{{name}}}")
        for group in spec.one_of:
            if not any(p in params for p in group):
                self.fail(keys if params else keys[:-1], f"{action} needs param {' or '.join(repr(p) for p in group)}")


def _describe(kind: type | tuple) -> str:
    names = {"str": "a string", "int": "an integer", "float": "a number", "dict": "a mapping",
             "list": "a list", "bool": "true or false", "NoneType": "empty"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k.__name__, k.__name__) for k in kind)
    return names.get(kind.__name__, kind.__name__)
