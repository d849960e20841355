"""PostgreSQL connection strings as libpq reads them, and where each part comes from.

The console hands a DSN to libpq unchanged, so it accepts what psql accepts:
a URL, a key/value conninfo (``host=db port=5432 user=monitor``), or an empty
string. libpq fills what the string leaves out from the service file's section
(``service=NAME`` or ``PGSERVICE``), then the ``PG*`` environment, then its
compiled-in defaults, and a password still missing from the password file
(``PGPASSFILE`` or ``~/.pgpass``). This module follows the same order, with
libpq's own parser (:mod:`psycopg.conninfo`), so that ``check`` can say where
each part comes from and every password the connection will use is known to
the redaction (:mod:`console.secrets`) before anything is printed.

psycopg is imported where used: the secrets registry already imports it for a
configured DSN, so parsing a config costs nothing more (about 70 ms otherwise).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import pwd
import re
import stat
from dataclasses import dataclass, field
from typing import Mapping

CONFIG = "config file"
MAIN_PARTS = ("service", "host", "hostaddr", "port", "user", "dbname")
SECRET_PARTS = ("password", "sslpassword", "oauth_client_secret")  # libpq's dispchar '*' ones
# A pgpass line for "localhost" also serves a connection through libpq's
# default socket directory, which is compiled in (psycopg-binary's libpq:
# /var/run/postgresql; upstream's: /tmp); these are the usual ones.
_DEFAULT_SOCKET_DIRS = ("/var/run/postgresql", "/run/postgresql", "/tmp")


class ConninfoError(ValueError):
    """libpq refuses the string; the message quotes nothing from it."""


@dataclass(frozen=True)
class Part:
    keyword: str
    value: str | None  # None for a password: its origin is shown, never the value
    origin: str


@dataclass(frozen=True)
class Resolved:
    parts: tuple[Part, ...]
    # (user, password), for redaction only; never in a repr
    passwords: tuple[tuple[str | None, str], ...] = field(repr=False)
    warnings: tuple[str, ...]

    def describe(self) -> str:
        """``host=db (config file), port=5433 (environment PGPORT), password (pgpass …)``."""
        return ", ".join(_shown(p) for p in self.parts)


def _shown(part: Part) -> str:
    if part.value is not None:
        return f"{part.keyword}={part.value} ({part.origin})"
    return f"{part.keyword} ({part.origin})" if part.origin else f"no {part.keyword}"


def parse(dsn: str) -> dict[str, str]:
    """The parameters written in ``dsn``, as libpq parses them."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except psycopg.Error as exc:
        raise ConninfoError(_safe_message(str(exc), dsn)) from None
    except UnicodeError:  # a lone surrogate (YAML's "\ud800"): no UTF-8 for libpq
        raise ConninfoError("the connection string holds a character that is not valid text") from None


def problem(dsn: str) -> str | None:
    """Why libpq would refuse ``dsn``, or a bad host or port in it; None if fine."""
    try:
        params = parse(dsn)
    except ConninfoError as exc:
        return str(exc)
    for port in params.get("port", "").split(","):
        if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            return "the port must be a number from 1 to 65535"
    for address in filter(None, params.get("hostaddr", "").split(",")):
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return f"hostaddr {address[:60]!r} is not an IP address"
    for host in filter(None, params.get("host", "").split(",")):
        if not host.startswith(("/", "@")) and (found := _host_problem(host)):
            return found
    return None


def effective(dsn: str, env: Mapping[str, str]) -> dict[str, str]:
    """The parameters libpq takes from ``dsn``, its service and the
    environment (no compiled-in defaults, no password file)."""
    return _gathered(dsn, env, [])[0]


def resolve(dsn: str, env: Mapping[str, str]) -> Resolved:
    """What libpq will connect with, part by part, and from where."""
    warnings: list[str] = []
    values, origins = _gathered(dsn, env, warnings)
    return _parts(values, origins, env, warnings)


def _gathered(dsn: str, env: Mapping[str, str], warnings: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """libpq's order: the string, the service file's section, PG*."""
    values: dict[str, str] = {}
    origins: dict[str, str] = {}

    def take(found: Mapping[str, str], origin) -> None:
        for key, value in found.items():
            if key not in values:
                values[key], origins[key] = value, origin(key) if callable(origin) else origin

    take(parse(dsn), CONFIG)
    service = values.get("service") or env.get("PGSERVICE")
    if service:
        take({"service": service}, "environment PGSERVICE")
        section, where = _service_section(service, env, warnings)
        take(section, f"service file {where}")
    envvars = _envvars()
    take({k: env[var] for k, var in envvars.items() if var in env}, lambda k: f"environment {envvars[k]}")
    return values, origins


def _parts(values: Mapping[str, str], origins: Mapping[str, str], env: Mapping[str, str],
           warnings: list[str]) -> Resolved:
    user = values.get("user") or _login()
    shown = {k: Part(k, values[k], origins[k]) for k in MAIN_PARTS if values.get(k)}
    if not values.get("hostaddr"):
        shown.setdefault("host", Part("host", "local socket", "libpq default"))
    shown.setdefault("port", Part("port", "5432", "libpq default"))
    shown.setdefault("user", Part("user", user, "libpq default: the login name"))
    shown.setdefault("dbname", Part("dbname", user, "libpq default: the user name"))
    parts = [shown[k] for k in MAIN_PARTS if k in shown]

    passwords = [(user if k == "password" else None, values[k]) for k in SECRET_PARTS if values.get(k)]
    if values.get("password"):
        parts.append(Part("password", None, origins["password"]))
    else:
        found = _from_pgpass(values, user, env, warnings)
        passwords += [(user, password) for *_, password in found]
        parts.append(Part("password", None, _pgpass_origin(found)))
    return Resolved(tuple(parts), passwords=tuple(passwords), warnings=tuple(warnings))


# ---- libpq's files ----------------------------------------------------------------

def _service_section(service: str, env: Mapping[str, str], warnings: list[str]) -> tuple[dict[str, str], str]:
    """The section ``[service]`` of the first service file that has it, as
    libpq reads it: PGSERVICEFILE (else ~/.pg_service.conf), then
    PGSYSCONFDIR/pg_service.conf."""
    files = [env.get("PGSERVICEFILE") or os.path.join(_home(env), ".pg_service.conf")]
    if env.get("PGSYSCONFDIR"):
        files.append(os.path.join(env["PGSYSCONFDIR"], "pg_service.conf"))
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        section, found, known = {}, False, set(_keywords()) - {"service"}
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                if found:
                    break
                found = line.startswith(f"[{service}]")
            elif found:
                key, sep, value = line.partition("=")
                if not sep or key not in known:
                    warnings.append(f"service file {path} line {number}: libpq refuses this line")
                    continue
                section.setdefault(key, value)
        if found:
            return section, f"{path} [{service}]"
    warnings.append(f"service {service!r} is defined in none of {', '.join(files)}: libpq will not connect")
    return {}, ""


def _from_pgpass(values: Mapping[str, str], user: str, env: Mapping[str, str],
                 warnings: list[str]) -> list[tuple[str, int, str, str]]:
    """(file, line, host:port, password) of each pgpass line the
    connection may use: libpq looks one up for every host of a multi-host
    connection (it fails over to the next with that one's password). The
    first line that matches host (or hostaddr, or localhost for a socket),
    port, database and user wins, as libpq matches them."""
    path = values.get("passfile") or os.path.join(_home(env), ".pgpass")
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return []
    if not stat.S_ISREG(mode):
        warnings.append(f"pgpass {path} is not a plain file: libpq ignores it")
        return []
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.append(f"pgpass {path} is readable by others: libpq ignores it (chmod 600 it)")
        return []
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            lines = [line.rstrip("\r") for line in f.read().split("\n")]  # libpq's lines: no \f or \v break
    except OSError:
        return []
    dbname = values.get("dbname") or user
    found: list[tuple[str, int, str, str]] = []
    for host, port in _host_ports(values):
        # libpq reads a socket in its compiled-in directory as "localhost"
        # (which one that is depends on the build): both are looked up.
        names = [host] * bool(host) + ["localhost"] * (not host or host in _DEFAULT_SOCKET_DIRS)
        for name in names:
            for number, line in enumerate(lines, 1):
                if line.startswith("#") or not line:
                    continue
                password = _pgpass_match(line, (name, port, dbname, user))
                if password is not None:
                    found.append((path, number, f"{name}:{port}", password))
                    break
    return found


def _host_ports(values: Mapping[str, str]) -> list[tuple[str, str]]:
    """(host, port) for each host libpq will try: host, else that
    position's hostaddr; one port for all or one each; 5432 by default."""
    hosts = (values.get("host") or "").split(",")
    addrs = (values.get("hostaddr") or "").split(",") if values.get("hostaddr") else []
    count = len(addrs) if addrs else len(hosts)
    ports = (values.get("port") or "").split(",")
    pairs = []
    for i in range(count):
        host = hosts[i] if i < len(hosts) else ""
        if not host and i < len(addrs):
            host = addrs[i]
        port = ports[i] if len(ports) == count else ports[0]
        pairs.append((host, port or "5432"))
    return pairs


def _pgpass_origin(found: list[tuple[str, int, str, str]]) -> str:
    """``pgpass FILE line 3``, or for several hosts each one's line:
    ``pgpass FILE line 2 for a:5432, line 3 for b:5432``."""
    if not found:
        return ""
    path = found[0][0]
    if len({number for _, number, _, _ in found}) == 1:
        return f"pgpass {path} line {found[0][1]}"
    return f"pgpass {path} " + ", ".join(f"line {number} for {pair}" for _, number, pair, _ in found)


def _pgpass_match(line: str, wanted: tuple[str, ...]) -> str | None:
    """The password of a pgpass line whose first four fields match
    ``wanted``, as libpq's passwordFromFile: a field that is just ``*``
    matches anything; a backslash takes the next character literally (so
    ``\\*`` is a '*', not a wildcard); the password ends at an unescaped ':'."""
    at = 0
    for token in wanted:
        at = _pgpass_field(line, at, token)
        if at is None:
            return None
    password, length = [], len(line)
    while at < length and line[at] != ":":
        if line[at] == "\\" and at + 1 < length:
            at += 1
        password.append(line[at])
        at += 1
    return "".join(password)


def _pgpass_field(line: str, at: int, token: str) -> int | None:
    """Where the next field starts if the one at ``at`` matches ``token``
    (libpq's pwdfMatchesString), else None."""
    if line.startswith("*:", at):
        return at + 2
    i, length = 0, len(line)
    while at < length:
        escaped = line[at] == "\\"
        if escaped:
            at += 1
            if at == length:
                return None
        if line[at] == ":" and not escaped and i == len(token):
            return at + 1
        if i == len(token) or line[at] != token[i]:
            return None
        at, i = at + 1, i + 1
    return None


def _envvars() -> dict[str, str]:
    """Parameter -> its PG* variable, from libpq itself."""
    from psycopg import pq

    return {o.keyword.decode(): o.envvar.decode() for o in pq.Conninfo.get_defaults() if o.envvar}


def _keywords() -> list[str]:
    from psycopg import pq

    return [o.keyword.decode() for o in pq.Conninfo.get_defaults()]


def _home(env: Mapping[str, str]) -> str:
    try:
        return env.get("HOME") or pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:  # a container's uid with no passwd entry
        return os.path.expanduser("~")


def _login() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _host_problem(host: str) -> str | None:
    from console.config import _hostname_problem

    try:
        ipaddress.ip_address(host.partition("%")[0])
        return None
    except ValueError:
        return _hostname_problem(host)


_QUOTING = "a value holding a space is written in single quotes: password='a b'"
# libpq's complaints, by their fixed opening words, each told again in our
# words: whatever libpq quotes after them comes from the string, and may be
# any piece of a password (it may hold a '"' itself, so no quote can be
# trusted to end the piece). An unknown complaint (another libpq version, a
# translation) is not shown at all.
_PROBLEMS = (
    ('missing "=" after', f"a word with no '=' after it; {_QUOTING}"),
    ("unterminated quoted string", "unterminated quoted string: a value opened with ' has no closing '; "
                                   "inside quotes write \\' and \\\\"),
    ("invalid percent-encoded token", "invalid percent-encoding: '%' must be followed by two hex digits (write a '%' as %25)"),
    ("forbidden value %00", "the URL holds a percent-encoded NUL byte, which libpq refuses"),
    ("missing key/value separator", "a URL query parameter with no '=' (write ?name=value&name=value)"),
    ("extra key/value separator", "a URL query parameter with two '=' (write '=' in a value as %3D)"),
    ("end of string reached when looking for matching", "an IPv6 host address in the URL has no closing ']'"),
    ("IPv6 host address may not be empty", "an empty IPv6 host address '[]' in the URL"),
    ("unexpected character", "an unexpected character after an IPv6 host address in the URL (expected ':' or '/')"),
    ("invalid URI propagated", "not a URL libpq can read"),
    ("out of memory", "out of memory"),
)
_UNKNOWN = re.compile(r'invalid (?:connection option|URI query parameter:) "')
_KEYWORD = re.compile(r"[a-z_]+")
_SECRET_WORDS = re.compile(r"password|secret", re.I)


def _safe_message(message: str, dsn: str) -> str:
    """What is wrong with ``dsn``, in our words, never in libpq's: libpq
    quotes the piece of the string it stumbled on, and that piece may be
    part of a password (a space or a '"' in it, a raw '%' in a URL)."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    if _UNKNOWN.match(first):
        return _unknown_parameter(first, dsn)
    for opening, ours in _PROBLEMS:
        if first.startswith(opening):
            return ours
    return "libpq cannot read this connection string"


def _unknown_parameter(message: str, dsn: str) -> str:
    """An unknown parameter, named (with the one it is close to) only when it
    cannot be a piece of a password: plain lowercase letters, written before
    any password parameter and, in a URL, after the last '@'."""
    url = "://" in dsn
    what = "an unknown URL query parameter" if url else f"an unknown parameter; {_QUOTING}"
    name = message[_UNKNOWN.match(message).end():].rpartition('"')[0]
    if not _KEYWORD.fullmatch(name):
        return what
    close = difflib.get_close_matches(name, _keywords(), n=1, cutoff=0.75)
    written = re.search(rf"(?:^|[\s?&]){name}\s*=", dsn)
    if not close or not written:
        return what
    before = dsn[: written.start()]
    if _SECRET_WORDS.search(before) or (url and written.start() < dsn.rfind("@")):
        return what
    return f"unknown parameter {name!r} (did you mean {close[0]!r}?)"
