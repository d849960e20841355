"""The configuration file: YAML -> typed, validated objects.

Every problem is reported as ``path:line: message`` (see :mod:`console.located`).
``${VAR}`` and ``${VAR:-default}`` in string values are expanded from the
environment so that secrets stay out of the file.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from console import located, paths
from console.located import Document, Invalid, Problem
from console.thresholds import DEFAULTS, KNOWN_METRICS, Limit, merged

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# A credential written into the file itself rather than taken from ${ENV}.
LITERAL_SECRET = re.compile(r"://[^/\s:@]*:(?!\$\{)[^@\s]+@|\bpassword\s*[=:]\s*(?!\$\{)[^\s'\"]|Bearer\s+(?!\$\{)\S",
                            re.I)
BANNERS = {"red", "amber", "yellow", "green", "blue", "magenta", "cyan", "grey", "none"}


@dataclass(frozen=True)
class Environment:
    name: str = "unnamed"
    banner: str = "none"
    read_only: bool = False
    label: str | None = None  # the banner's text; the name when unset
    theme: str | None = None  # this environment's theme, over the top-level one


@dataclass(frozen=True)
class PostgresTarget:
    name: str
    dsn: str
    timeout: float = 3.0


@dataclass(frozen=True)
class RedisTarget:
    name: str
    url: str
    timeout: float = 2.0


@dataclass(frozen=True)
class ServiceTarget:
    name: str
    url: str
    timeout: float = 2.0
    expect_status: tuple[int, ...] = (200,)
    metrics: str | None = None
    job: str | None = None  # Prometheus job label; the service name when unset
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PrometheusTarget:
    url: str
    timeout: float = 3.0
    queries: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class KubernetesTarget:
    context: str | None = None
    namespaces: tuple[str, ...] = ("default",)
    kubeconfig: str | None = None
    in_cluster: bool = False
    timeout: float = 5.0


@dataclass(frozen=True)
class Config:
    path: str
    environment: Environment = Environment()
    refresh: float = 2.0
    postgres: tuple[PostgresTarget, ...] = ()
    redis: tuple[RedisTarget, ...] = ()
    services: tuple[ServiceTarget, ...] = ()
    prometheus: PrometheusTarget | None = None
    kubernetes: KubernetesTarget | None = None
    thresholds: dict[str, Limit] = field(default_factory=merged)
    playbooks: tuple[Path, ...] = ()
    theme: str = "dark"
    keymap: tuple[tuple[str, str], ...] = ()  # binding id -> keys, for App.set_keymap
    warnings: tuple[str, ...] = ()

    @property
    def chosen_theme(self) -> str:
        """The environment's theme, else the top-level one."""
        return self.environment.theme or self.theme


def load(path: str | Path | None = None) -> Config:
    """Load and validate; raises :class:`Invalid` listing every problem."""
    target = Path(path) if path is not None else paths.default_config()
    if path is None and not target.exists():
        raise Invalid([Problem(str(target), 0,
                               "no config file here; pass --config FILE, set INCIDENT_CONSOLE_CONFIG, "
                               "or try `incident-console demo`")])
    doc = located.load(target)
    return _Reader(doc, os.environ).config(_permission_warnings(target))


def parse(text: str, name: str = "<config>", env: dict[str, str] | None = None) -> Config:
    doc = located.parse(text, name)
    return _Reader(doc, dict(os.environ) if env is None else env).config(())


def _permission_warnings(path: Path) -> tuple[str, ...]:
    try:
        mode = path.stat().st_mode
    except OSError:
        return ()
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        text = path.read_text(encoding="utf-8", errors="replace")
        if LITERAL_SECRET.search(text):
            return (f"{path}:1: holds credentials and is readable by other users (chmod 600 it)",)
    return ()


def redact(url: str) -> str:
    """A URL or DSN with its password masked, for screens, logs and journals."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(password=)\S+", r"\1***", url)
    if parts.password is None:
        return re.sub(r"(password=)[^&\s]+", r"\1***", url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    netloc = f"{user}:***@{host}" if user else f":***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class _Reader:
    """Walks the document once, collecting every problem before raising."""

    def __init__(self, doc: Document, env) -> None:
        self.doc = doc
        self.env = env
        self.problems: list[Problem] = []

    def fail(self, keys: tuple, message: str) -> None:
        from console.text import inert

        # Messages quote the file's own keys and values: one line, no controls, bounded.
        self.problems.append(self.doc.problem(keys, inert(message, 300)))

    # ---- typed getters -------------------------------------------------
    def get(self, keys: tuple, kind: type | tuple, default: Any = None, required: bool = False) -> Any:
        value: Any = self.doc.data
        for k in keys:
            if not isinstance(value, (dict, list)):
                return default
            try:
                value = value[k]
            except (KeyError, IndexError, TypeError):
                if required:
                    self.fail(keys[:-1], f"missing required key '{_dotted(keys)}'")
                return default
        if value is None and not required:
            return default
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.fail(keys, f"'{_dotted(keys)}' must be {_article(want)}, not {type(value).__name__}")
            return default
        if isinstance(value, str):
            value = self.expand(keys, value)
        return value

    def number(self, keys: tuple, default: float, low: float, high: float) -> float:
        value = self.get(keys, float, default)
        if not (low <= value <= high):
            self.fail(keys, f"'{_dotted(keys)}' must be between {low:g} and {high:g}, not {value:g}")
            return default
        return value

    def expand(self, keys: tuple, value: str) -> str:
        def sub(m: re.Match) -> str:
            var, default = m.group(1), m.group(2)
            if var in self.env:
                return self.env[var]
            if default is not None:
                return default
            self.fail(keys, f"environment variable {var} is not set (used in '{_dotted(keys)}')")
            return ""
        return ENV_REF.sub(sub, value)

    def known_keys(self, keys: tuple, allowed: set[str]) -> None:
        value = self.get(keys, dict, {}) if keys else self.doc.data
        if isinstance(value, dict):
            for k in value:
                if k not in allowed:
                    hint = _closest(str(k), allowed)
                    self.fail(keys + (k,), f"unknown key '{k}'" + (f" (did you mean '{hint}'?)" if hint else ""))

    def items(self, section: str, build: Callable[[tuple], Any]) -> tuple:
        entries = self.get((section,), list, [])
        out, seen = [], {}
        for i, _ in enumerate(entries):
            keys = (section, i)
            if not isinstance(self.doc.data[section][i], dict):
                self.fail(keys, f"each entry of '{section}' must be a mapping")
                continue
            name = self.get(keys + ("name",), str, None, required=True)
            if name is None:
                continue
            if not NAME.match(name):
                self.fail(keys + ("name",), f"name {name!r} must be letters, digits, '.', '_' or '-'")
            if name in seen:
                self.fail(keys + ("name",), f"duplicate name '{name}' (first on line {seen[name]})")
            seen[name] = self.doc.line(*keys, "name")
            item = build(keys)
            if item is not None:
                out.append(item)
        return tuple(out)

    # ---- sections --------------------------------------------------------
    def config(self, warnings: tuple[str, ...]) -> Config:
        if self.doc.data is None:
            self.doc.data = {}
        if not isinstance(self.doc.data, dict):
            raise Invalid([self.doc.problem((), "the config must be a mapping of sections")])
        self.known_keys((), {"environment", "refresh", "postgres", "redis", "services", "prometheus",
                             "kubernetes", "thresholds", "playbooks", "theme", "keymap"})
        config = Config(
            path=self.doc.path,
            environment=self.environment(),
            refresh=self.number(("refresh",), 2.0, 0.2, 3600),
            postgres=self.items("postgres", self.postgres),
            redis=self.items("redis", self.redis),
            services=self.items("services", self.service),
            prometheus=self.prometheus(),
            kubernetes=self.kubernetes(),
            thresholds=merged(self.thresholds()),
            playbooks=self.playbooks(),
            theme=self.get(("theme",), str, "dark"),
            keymap=self.keymap(),
            warnings=warnings,
        )
        if self.problems:
            raise Invalid(sorted(self.problems, key=lambda p: p.line))
        return config

    def environment(self) -> Environment:
        keys = ("environment",)
        self.known_keys(keys, {"name", "banner", "read_only", "label", "theme"})
        banner = self.get(keys + ("banner",), str, "none")
        if banner not in BANNERS:
            self.fail(keys + ("banner",), f"banner must be one of {', '.join(sorted(BANNERS))}")
        return Environment(
            name=self.get(keys + ("name",), str, "unnamed"),
            banner=banner,
            read_only=self.get(keys + ("read_only",), bool, False),
            label=self.get(keys + ("label",), str, None),
            theme=self.get(keys + ("theme",), str, None),
        )

    def keymap(self) -> tuple[tuple[str, str], ...]:
        from console.keymap import BINDING_IDS, key_problem

        keys = ("keymap",)
        given = self.get(keys, dict, {})
        out = []
        for binding_id, value in given.items():
            bk = keys + (binding_id,)
            if binding_id not in BINDING_IDS:
                hint = _closest(str(binding_id), set(BINDING_IDS))
                self.fail(bk, f"unknown binding id '{binding_id}'" + (f" (did you mean '{hint}'?)" if hint else ""))
                continue
            if not isinstance(value, str):
                self.fail(bk, f"keymap '{binding_id}' must be a key string such as 'ctrl+n'")
                continue
            problem = key_problem(value)
            if problem:
                self.fail(bk, f"keymap '{binding_id}': {problem}")
                continue
            out.append((str(binding_id), value.replace(" ", "")))
        return tuple(out)

    def url(self, keys: tuple, schemes: tuple[str, ...], required: bool = True) -> str | None:
        value = self.get(keys, str, None, required=required)
        if value is None:
            return None
        scheme = urlsplit(value).scheme
        if scheme not in schemes:
            self.fail(keys, f"'{_dotted(keys)}' must be a {' or '.join(schemes)} URL, not {redact(value)!r}")
        return value

    def postgres(self, keys: tuple) -> PostgresTarget | None:
        self.known_keys(keys, {"name", "dsn", "timeout"})
        dsn = self.url(keys + ("dsn",), ("postgresql", "postgres"))
        return PostgresTarget(self.get(keys + ("name",), str), dsn or "",
                              self.number(keys + ("timeout",), 3.0, 0.1, 120))

    def redis(self, keys: tuple) -> RedisTarget | None:
        self.known_keys(keys, {"name", "url", "timeout"})
        url = self.url(keys + ("url",), ("redis", "rediss", "unix"))
        return RedisTarget(self.get(keys + ("name",), str), url or "",
                           self.number(keys + ("timeout",), 2.0, 0.1, 120))

    def service(self, keys: tuple) -> ServiceTarget | None:
        self.known_keys(keys, {"name", "url", "timeout", "expect_status", "metrics", "job", "headers"})
        url = self.url(keys + ("url",), ("http", "https"))
        expect = self.get(keys + ("expect_status",), (int, list), 200)
        codes = tuple(expect) if isinstance(expect, list) else (expect,)
        if not all(isinstance(c, int) and 100 <= c <= 599 for c in codes):
            self.fail(keys + ("expect_status",), "expect_status must be HTTP status codes (100-599)")
            codes = (200,)
        headers = self.get(keys + ("headers",), dict, {})
        return ServiceTarget(
            name=self.get(keys + ("name",), str),
            url=url or "",
            timeout=self.number(keys + ("timeout",), 2.0, 0.1, 120),
            expect_status=codes,
            metrics=self.url(keys + ("metrics",), ("http", "https"), required=False),
            job=self.get(keys + ("job",), str, None),
            headers=tuple((str(k), self.expand(keys + ("headers", k), str(v))) for k, v in headers.items()),
        )

    def prometheus(self) -> PrometheusTarget | None:
        keys = ("prometheus",)
        if self.get(keys, dict) is None:
            return None
        self.known_keys(keys, {"url", "timeout", "queries"})
        url = self.url(keys + ("url",), ("http", "https"))
        queries = self.get(keys + ("queries",), dict, {})
        for name, q in queries.items():
            if name not in {"error_ratio", "request_rate", "p95_latency_s"}:
                self.fail(keys + ("queries", name), f"unknown query '{name}' (error_ratio, request_rate, p95_latency_s)")
            elif not isinstance(q, str) or "{job}" not in q:
                self.fail(keys + ("queries", name), f"query '{name}' must be a PromQL string containing {{job}}")
        return PrometheusTarget(url or "", self.number(keys + ("timeout",), 3.0, 0.1, 120),
                                tuple((str(k), str(v)) for k, v in queries.items()))

    def kubernetes(self) -> KubernetesTarget | None:
        keys = ("kubernetes",)
        if self.get(keys, dict) is None:
            return None
        self.known_keys(keys, {"context", "namespaces", "kubeconfig", "in_cluster", "timeout"})
        spaces = self.get(keys + ("namespaces",), list, ["default"])
        if not all(isinstance(s, str) and s for s in spaces):
            self.fail(keys + ("namespaces",), "namespaces must be a list of names")
            spaces = ["default"]
        return KubernetesTarget(
            context=self.get(keys + ("context",), str, None),
            namespaces=tuple(spaces),
            kubeconfig=self.get(keys + ("kubeconfig",), str, None),
            in_cluster=self.get(keys + ("in_cluster",), bool, False),
            timeout=self.number(keys + ("timeout",), 5.0, 0.1, 120),
        )

    def thresholds(self) -> dict[str, Limit]:
        keys = ("thresholds",)
        given = self.get(keys, dict, {})
        out: dict[str, Limit] = {}
        for metric, spec in given.items():
            mk = keys + (metric,)
            if metric not in KNOWN_METRICS:
                hint = _closest(str(metric), KNOWN_METRICS)
                self.fail(mk, f"unknown metric '{metric}'" + (f" (did you mean '{hint}'?)" if hint else ""))
                continue
            if not isinstance(spec, dict):
                self.fail(mk, f"threshold '{metric}' must be a mapping with warning/critical")
                continue
            self.known_keys(mk, {"warning", "critical", "below"})
            base = DEFAULTS.get(metric, Limit())
            warning = self.get(mk + ("warning",), float, base.warning)
            critical = self.get(mk + ("critical",), float, base.critical)
            below = self.get(mk + ("below",), bool, base.below)
            if warning is not None and critical is not None and (warning > critical if not below else warning < critical):
                self.fail(mk, f"threshold '{metric}': warning {warning:g} is past critical {critical:g}")
            out[str(metric)] = Limit(warning, critical, below)
        return out

    def playbooks(self) -> tuple[Path, ...]:
        dirs = self.get(("playbooks",), list, [])
        base = Path(self.doc.path).parent
        out = []
        for i, d in enumerate(dirs):
            if not isinstance(d, str):
                self.fail(("playbooks", i), "playbook directories must be strings")
                continue
            p = Path(os.path.expanduser(self.expand(("playbooks", i), d)))
            out.append(p if p.is_absolute() else base / p)
        return tuple(out)


def _dotted(keys: tuple) -> str:
    return ".".join(f"[{k}]" if isinstance(k, int) else str(k) for k in keys).replace(".[", "[")


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + {"str": "string", "int": "integer", "float": "number",
                                                         "dict": "mapping", "list": "list", "bool": "boolean"}.get(word, word)


def _closest(word: str, options: set[str]) -> str | None:
    import difflib
    found = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return found[0] if found else None
