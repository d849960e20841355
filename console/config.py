"""The configuration file: YAML -> typed, validated objects.

Every problem is reported as ``path:line: message`` (see :mod:`console.located`).
``${VAR}`` and ``${VAR:-default}`` in string values are expanded from the
environment so that secrets stay out of the file.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlsplit

from console import located, paths
from console import secrets as secret_values
from console.located import Document, Invalid, Problem
from console.thresholds import DEFAULTS, KNOWN_METRICS, Limit, merged, with_min_requests

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# A credential written into the file itself rather than taken from ${ENV}.
LITERAL_SECRET = re.compile(r"://[^/\s:@]*:(?!\$\{)[^@\s]+@|\bpassword\s*[=:]\s*'?(?!\$\{)[^\s'\"]|Bearer\s+(?!\$\{)\S",
                            re.I)
SQL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
SQL_QUALIFIED = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*$")
# Names the incident's Redis keys (``incident-console:NAME:*``), which an
# ACL pattern must be able to match literally: no '*', '?', '[' or ':'.
SHARE_INCIDENT = re.compile(r"[A-Za-z0-9._-]{1,100}")
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
    action_dsn: str | None = None  # the role mutating actions run as; the monitoring dsn's when unset
    sql_functions: tuple[str, ...] = ()  # probes.sql_functions, copied here for the source's own check
    sql_views: tuple[str, ...] = ()  # probes.sql_views


@dataclass(frozen=True)
class ProbeRules:
    """What the operator vouches for beyond the built-in read-only rules."""

    sql_functions: tuple[str, ...] = ()  # name (pg_catalog) or schema.name: functions that only read
    sql_views: tuple[str, ...] = ()  # schema.name: views whose functions only read


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
    verify: bool = True  # false: accept any certificate (a self-signed one on a staging host)
    ca_file: str | None = None  # PEM bundle of the CA(s) to trust instead of the system's
    # Blast radius: the PostgreSQL sessions that belong to this service, by
    # application_name (default: the service's name) and client address or network.
    application_names: tuple[str, ...] = ()
    client_networks: tuple[str, ...] = ()

    def owns(self, application: str | None, client: str | None) -> bool:
        """Is a session with this application_name and client address (ip:port or 'local') this service's?"""
        if application and application in (self.application_names or (self.name,)):
            return True
        address = _address(client or "")
        if address is None:
            return False
        return any(address in ipaddress.ip_network(n, strict=False) for n in self.client_networks)


def _address(client: str):
    """The IP of ``10.0.0.5``, ``10.0.0.5:4431``, ``fd00::5`` or ``[fd00::5]:4431``; None for ``local``."""
    for candidate in (client, client.rsplit(":", 1)[0]):
        try:
            return ipaddress.ip_address(candidate.strip("[]"))
        except ValueError:
            continue
    return None


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
class ShareTarget:
    """``share:``: the Redis that carries one incident between consoles on
    several hosts (see :mod:`console.incident.share`). Defined here, not
    there, because the config sits below the incident in the layers."""

    url: str       # redis:// or rediss://, ${ENV} expanded; its password is a registered secret
    incident: str  # names the stream's keys: letters, digits, '.', '_', '-'


@dataclass(frozen=True)
class Damping:
    """How much a reading must repeat itself before the incident hears of it."""

    # Consecutive readings a source's new state needs before it is journaled,
    # suggests a playbook or ticks a step (1: every reading counts at once).
    readings: int = 2
    # Requests in the window before a ratio over them (error_ratio) can breach.
    min_requests: int = 20


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
    probes: ProbeRules = ProbeRules()
    warnings: tuple[str, ...] = ()
    damping: Damping = Damping()
    share: ShareTarget | None = None

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


# ``password=...`` in a key=value DSN (quoted or not) or a URL's query string.
_SECRET_PARAM = re.compile(r"(\b[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key)[\w-]*\s*=\s*)"
                           r"('(?:[^'\\]|\\.)*'|[^&\s]*)", re.I)


def redact(url: str) -> str:
    """A URL or DSN with its password masked, for screens, logs and journals.

    The password runs from ``user:`` to the *last* '@' before the host (as
    urllib and redis-py read it; libpq stops at the first, which would show the
    rest of the password as a host). The host is kept as written, so an IPv6
    ``[::1]`` keeps its brackets. Configured secrets are also masked by value
    wherever they go (:mod:`console.secrets`); this also covers passwords
    too short to register.
    """
    text = _SECRET_PARAM.sub(r"\1***", url)
    scheme, sep, rest = text.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return text
    userinfo, at, host_and_path = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not at or not colon or re.search(r"[/?#]", user):
        return text
    if re.search(r"[/?#]", userinfo) and not secret_values.cut_short(url):
        return text  # the '@' is in the path or query, not after a password
    return f"{scheme}://{user}:***@{host_and_path}"


def _unescaped_userinfo(url: str) -> bool:
    """A user or password holding a raw '@', '/', '?' or '#': libpq, urllib
    and httpx would each read a different password and host from it."""
    if secret_values.cut_short(url) and re.search(r"://[^/?#]*:[^@]*[/?#][^@]*@", url):
        return True
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return True
    return "@" in netloc.rpartition("@")[0]


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
        if not (low <= value <= high):  # NaN fails this too
            self.fail(keys, f"'{_dotted(keys)}' must be between {low:g} and {high:g}, not {value:g}")
            return default
        return value

    def expand(self, keys: tuple, value: str) -> str:
        userinfo_end = _userinfo_end(value)
        in_conninfo = keys[:1] == ("postgres",) and keys[-1:] in (("dsn",), ("action_dsn",))

        def sub(m: re.Match) -> str:
            var, default = m.group(1), m.group(2)
            if var in self.env:
                found = self.env[var]
                if secret_values.SECRET_NAME.search(var):
                    secret_values.add(found)
            elif default is not None:
                found = default
            else:
                self.fail(keys, f"environment variable {var} is not set (used in '{_dotted(keys)}')")
                return ""
            # A variable holds the password itself; in a URL's user:password
            # it is URL-escaped, so that '@', '/', ':' or '#' in it stay in it,
            # and in a key=value value, a space, quote or backslash is escaped.
            if m.start() < userinfo_end:
                return quote(found, safe="")
            if in_conninfo and _in_conninfo_value(value, m.start()):
                return re.sub(r"([\s\\'])", r"\\\1", found)
            return found
        expanded = ENV_REF.sub(sub, value)
        _register_secrets(keys, expanded)
        return expanded

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
                             "kubernetes", "thresholds", "playbooks", "theme", "keymap", "probes", "damping",
                             "share"})
        damping = self.damping()
        config = Config(
            path=self.doc.path,
            environment=self.environment(),
            refresh=self.number(("refresh",), 2.0, 0.2, 3600),
            postgres=self.items("postgres", self.postgres),
            redis=self.items("redis", self.redis),
            services=self.items("services", self.service),
            prometheus=self.prometheus(),
            kubernetes=self.kubernetes(),
            thresholds=with_min_requests(merged(self.thresholds()), damping.min_requests),
            playbooks=self.playbooks(),
            theme=self.get(("theme",), str, "dark"),
            keymap=self.keymap(),
            probes=self.probe_rules(),
            warnings=warnings,
            damping=damping,
            share=self.share(),
        )
        if self.problems:
            raise Invalid(sorted(self.problems, key=lambda p: p.line))
        return config

    def share(self) -> ShareTarget | None:
        """``share:``: the Redis stream that carries this incident to the
        consoles on other hosts; none when the section is absent."""
        keys = ("share",)
        if self.get(keys, dict) is None:
            return None
        self.known_keys(keys, {"url", "incident"})
        url = self.get(keys + ("url",), str, None, required=True)
        if url is not None and self.url_checked(keys + ("url",), url, ("redis", "rediss")) and (
                "?" in url or "#" in url):
            # redis-py reads options from the query (socket_timeout=…) over
            # the console's own, and checks them only when it connects.
            self.fail(keys + ("url",), "'share.url' takes no query string or fragment ('?…', '#…')")
            url = None
        incident = self.get(keys + ("incident",), str, None, required=True)
        if incident is not None and not SHARE_INCIDENT.fullmatch(incident):
            self.fail(keys + ("incident",), f"'share.incident' {incident[:60]!r} must be 1 to 100 letters, "
                                            "digits, '.', '_' or '-' (it names the Redis keys)")
            return None
        return ShareTarget(url, incident) if url is not None and incident is not None else None

    def damping(self) -> Damping:
        keys = ("damping",)
        self.known_keys(keys, {"readings", "min_requests"})
        return Damping(readings=self.count(keys + ("readings",), Damping.readings, 1, 100),
                       min_requests=self.count(keys + ("min_requests",), Damping.min_requests, 0, 1_000_000))

    def count(self, keys: tuple, default: int, low: int, high: int) -> int:
        value = self.get(keys, int, default)
        if not (low <= value <= high):
            self.fail(keys, f"'{_dotted(keys)}' must be a whole number from {low} to {high}, not {value}")
            return default
        return value

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
        if value is not None:
            self.url_checked(keys, value, schemes)
        return value

    def url_checked(self, keys: tuple, value: str, schemes: tuple[str, ...]) -> bool:
        scheme = _scheme(value)
        if scheme not in schemes:
            self.fail(keys, f"'{_dotted(keys)}' must be a {' or '.join(schemes)} URL, not {redact(value)!r}")
        elif _unescaped_userinfo(value) and not _host_at_fault(value, scheme):
            self.fail(keys, f"the user or password in '{_dotted(keys)}' holds a raw '@', '/', '?' or '#': "
                            "URL-escape it (%40, %2F, %3F, %23) or take it from ${ENV_VAR}")
        elif problem := address_problem(value, scheme):
            self.fail(keys, f"'{_dotted(keys)}': {problem}")
        else:
            return True
        return False

    def conninfo(self, keys: tuple, required: bool = True) -> str | None:
        """A PostgreSQL connection string, anything libpq takes: a URL,
        key=value pairs, or empty (PG* variables, a service file, pgpass).
        Every password the connection will use is known to the redaction."""
        from console import conninfo

        value = self.get(keys, str, None, required=required)
        if value is None:
            return None
        if _URL_LIKE.match(value) and _scheme(value) not in ("postgresql", "postgres"):
            self.fail(keys, f"'{_dotted(keys)}' must be a postgresql:// URL, key=value pairs "
                            f"(host=… dbname=…) or empty, not {redact(value)!r}")
            return value
        if _URL_LIKE.match(value) and not self.url_checked(keys, value, ("postgresql", "postgres")):
            return value
        if problem := conninfo.problem(value):
            self.fail(keys, f"'{_dotted(keys)}': {problem}")
            return value
        for user, password in conninfo.resolve(value, self.env).passwords:
            secret_values.add(password, user)
        return value

    def postgres(self, keys: tuple) -> PostgresTarget | None:
        self.known_keys(keys, {"name", "dsn", "timeout", "action_dsn"})
        dsn = self.conninfo(keys + ("dsn",))
        rules = self.probe_rules()
        return PostgresTarget(self.get(keys + ("name",), str), dsn or "",
                              self.number(keys + ("timeout",), 3.0, 0.1, 120),
                              action_dsn=self.conninfo(keys + ("action_dsn",), required=False),
                              sql_functions=rules.sql_functions, sql_views=rules.sql_views)

    def probe_rules(self) -> ProbeRules:
        """``probes:``: SQL functions and views the operator vouches for, read once."""
        if getattr(self, "_probe_rules", None) is None:
            keys = ("probes",)
            self.known_keys(keys, {"sql_functions", "sql_views"})
            self._probe_rules = ProbeRules(self.sql_names(keys + ("sql_functions",), qualified=False),
                                           self.sql_names(keys + ("sql_views",), qualified=True))
        return self._probe_rules

    def sql_names(self, keys: tuple, qualified: bool) -> tuple[str, ...]:
        out = []
        for i, name in enumerate(self.get(keys, list, [])):
            shape = SQL_QUALIFIED if qualified else SQL_NAME
            if not isinstance(name, str) or not shape.match(name):
                want = "schema.name" if qualified else "a name or schema.name"
                self.fail(keys + (i,), f"'{_dotted(keys)}' entries must be {want} (unquoted SQL identifiers)")
                continue
            out.append(name.lower())
        return tuple(out)

    def redis(self, keys: tuple) -> RedisTarget | None:
        self.known_keys(keys, {"name", "url", "timeout"})
        url = self.url(keys + ("url",), ("redis", "rediss", "unix"))
        return RedisTarget(self.get(keys + ("name",), str), url or "",
                           self.number(keys + ("timeout",), 2.0, 0.1, 120))

    def service(self, keys: tuple) -> ServiceTarget | None:
        self.known_keys(keys, {"name", "url", "timeout", "expect_status", "metrics", "job", "headers",
                               "verify", "ca_file", "application_names", "client_networks"})
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
            verify=self.get(keys + ("verify",), bool, True),
            ca_file=self.ca_file(keys + ("ca_file",)),
            application_names=self.strings(keys + ("application_names",)),
            client_networks=self.networks(keys + ("client_networks",)),
        )

    def strings(self, keys: tuple) -> tuple[str, ...]:
        values = self.get(keys, list, [])
        if not all(isinstance(v, str) and v for v in values):
            self.fail(keys, f"'{_dotted(keys)}' must be a list of non-empty strings")
            return ()
        return tuple(values)

    def networks(self, keys: tuple) -> tuple[str, ...]:
        out = []
        for i, value in enumerate(self.strings(keys)):
            try:
                out.append(str(ipaddress.ip_network(value, strict=False)))
            except ValueError:
                self.fail(keys + (i,), f"'{_dotted(keys)}': {value[:60]!r} is not an IP address or network")
        return tuple(out)

    def ca_file(self, keys: tuple) -> str | None:
        value = self.get(keys, str, None)
        if value is None:
            return None
        path = Path(os.path.expanduser(value))
        path = path if path.is_absolute() else Path(self.doc.path).parent / path
        if not path.is_file():
            self.fail(keys, f"'{_dotted(keys)}': no such file {str(path)!r}")
        return str(path)

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
            warning = self.limit(mk + ("warning",), base.warning)
            critical = self.limit(mk + ("critical",), base.critical)
            below = self.get(mk + ("below",), bool, base.below)
            if warning is not None and critical is not None and (warning > critical if not below else warning < critical):
                self.fail(mk, f"threshold '{metric}': warning {warning:g} is past critical {critical:g}")
            out[str(metric)] = Limit(warning, critical, below)
        return out

    def limit(self, keys: tuple, default: float | None) -> float | None:
        # A NaN limit never compares true, so it would never fire; an infinite
        # or negative one cannot either (every metric here counts up from 0).
        value = self.get(keys, float, default)
        if value is not None and not (math.isfinite(value) and value >= 0):
            self.fail(keys, f"'{_dotted(keys)}' must be a finite number of 0 or more, not {value!r}")
            return default
        return value

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


_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Inside the value of a key=value pair: "key=" and the value so far, quoted or not.
_CONNINFO_VALUE = re.compile(r"[A-Za-z_]\w*\s*=\s*(?:'(?:[^'\\]|\\.)*|(?:[^\s'\\]|\\.)+|)$")


def _in_conninfo_value(template: str, at: int) -> bool:
    """Does ``${VAR}`` at ``at`` of a key=value conninfo template stand in a
    value (``password=${PW}``), rather than for whole pairs (``${PG_DSN}``)?"""
    if _URL_LIKE.match(template):
        return False
    before = ENV_REF.sub(lambda m: "x" * len(m.group(0)), template[:at])
    return bool(_CONNINFO_VALUE.search(before))


def _userinfo_end(template: str) -> int:
    """Where the ``user:password@`` of a URL template ends (0 when it has none),
    counting each ``${VAR}`` as opaque."""
    if "://" not in template:
        return 0
    start = template.index("://") + 3
    plain = ENV_REF.sub(lambda m: "x" * len(m.group(0)), template)
    end = len(plain)
    for stop in "/?#":
        at = plain.find(stop, start)
        if at != -1:
            end = min(end, at)
    return max(plain.rfind("@", start, end), 0)


def _register_secrets(keys: tuple, value: str) -> None:
    """Every credential a configured value holds, known by value from now on
    (see :mod:`console.secrets`): URLs' and DSNs' passwords, header values,
    keys named like a password or token."""
    if "://" in value or re.search(r"\bpassword\s*=", value):
        secret_values.add_url(value)
    name = str(keys[-1]) if keys else ""
    if len(keys) >= 2 and keys[-2] == "headers":
        secret_values.add_header(name, value)
    elif secret_values.SECRET_NAME.search(name):
        secret_values.add(value)


def _dotted(keys: tuple) -> str:
    return ".".join(f"[{k}]" if isinstance(k, int) else str(k) for k in keys).replace(".[", "[")


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + {"str": "string", "int": "integer", "float": "number",
                                                         "dict": "mapping", "list": "list", "bool": "boolean"}.get(word, word)


def _closest(word: str, options: set[str]) -> str | None:
    import difflib
    found = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return found[0] if found else None


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme
    except ValueError:  # a broken host part; the scheme is still readable
        return url.partition("://")[0].lower() if "://" in url else ""


def _host_part(url: str) -> str:
    """``host:port`` (or several, comma-separated, for libpq) of a URL, as written."""
    rest = url.partition("://")[2]
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return netloc.rpartition("@")[2]


def _host_at_fault(url: str, scheme: str) -> bool:
    """The host part is wrong and no '@' hints at a raw '/', '?' or '#' in a
    password (which would make a piece of the password look like the host)."""
    rest = url.partition("://")[2]
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in rest[len(netloc):] or netloc.count("@") > 1:
        return False
    return address_problem(url, scheme) is not None


_HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def address_problem(url: str, scheme: str) -> str | None:
    """What is wrong with the host, port or (Redis) database of ``url``, checked
    here so that a bad one is a ``path:line`` problem, not a traceback or an
    "ExceptionGroup" from the client library at the first poll. Never echoes
    the port or the password: they may be pieces of a mistyped password."""
    if scheme == "unix":
        return None if urlsplit(url).path else "a unix:// URL needs the socket's path"
    hosts = _host_part(url)
    query = url.partition("?")[2].partition("#")[0]
    # libpq takes "host1:5432,host2:5433".
    several = hosts.split(",") if scheme in ("postgresql", "postgres") else [hosts]
    for hostport in several:
        # libpq takes no host at all: PGHOST, a service file or its default socket.
        problem = _endpoint_problem(hostport, socket_ok=scheme.startswith("postgres"))
        if problem:
            return problem
    if scheme in ("redis", "rediss"):
        return _redis_db_problem(urlsplit(url).path, query)
    return None


def _endpoint_problem(hostport: str, socket_ok: bool) -> str | None:
    if ("[" in hostport) != ("]" in hostport):
        return f"host {hostport!r} has an unclosed '[' (an IPv6 address is written [::1]:5432)"
    try:
        parts = urlsplit("//" + hostport)
        host, port = parts.hostname or "", parts.port
    except ValueError as exc:
        if "Port" in str(exc):
            return "the port must be a number from 1 to 65535"
        return f"host {hostport!r} is not valid ({exc})"
    if port == 0:
        return "the port must be a number from 1 to 65535"
    if not host:
        return None if socket_ok else "the URL names no host"
    if hostport.startswith("["):
        import ipaddress
        try:
            ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            return f"host {host!r} is not an IPv6 address"
        return None
    return _hostname_problem(host)


def _hostname_problem(host: str) -> str | None:
    if not host.isascii():
        try:
            import idna
            host = idna.encode(host, uts46=True).decode("ascii")
        except Exception as exc:  # idna's errors are all "this is no host name"
            return f"host {host!r} is not a valid host name ({exc})"
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        return f"host {host!r} is not a valid host name (letters, digits, '-', '_' and '.')"
    return None


def _redis_db_problem(path: str, query: str) -> str | None:
    db = path.strip("/")
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "db":
            db = value
    if db and not (db.isascii() and db.isdigit()):
        return f"the Redis database must be a number of 0 or more, not {db!r}"
    return None
