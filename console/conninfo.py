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
        raise ConninfoError(_safe_message(str(exc))) from None


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
        if found:
            path, line, password = found
            passwords.append((user, password))
            parts.append(Part("password", None, f"pgpass {path} line {line}"))
        else:
            parts.append(Part("password", None, ""))
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
                 warnings: list[str]) -> tuple[str, int, str] | None:
    """(file, line, password) of the first pgpass line for this connection,
    as libpq matches it: host (or hostaddr, or localhost for a socket), port,
    database, user; ``*`` for any; ``\\`` escapes ':' and itself."""
    path = values.get("passfile") or os.path.join(_home(env), ".pgpass")
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if not stat.S_ISREG(mode):
        warnings.append(f"pgpass {path} is not a plain file: libpq ignores it")
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.append(f"pgpass {path} is readable by others: libpq ignores it (chmod 600 it)")
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    hosts = (values.get("host") or values.get("hostaddr") or "").split(",")
    ports = (values.get("port") or "").split(",")
    dbname = values.get("dbname") or user
    for i, host in enumerate(hosts):
        port = (ports[i] if len(ports) == len(hosts) else ports[0]) or "5432"
        names = ["localhost"] if not host or host in _DEFAULT_SOCKET_DIRS else []
        for name in [host] * bool(host) + names:
            for number, line in enumerate(lines, 1):
                if line.startswith("#") or not line:
                    continue
                password = _pgpass_match(line, (name, port, dbname, user))
                if password is not None:
                    return path, number, password
    return None


def _pgpass_match(line: str, wanted: tuple[str, ...]) -> str | None:
    fields, field, escaped = [], "", False
    for ch in line:
        if escaped:
            field, escaped = field + ch, False
        elif ch == "\\":
            escaped = True
        elif ch == ":" and len(fields) < 4:
            fields.append(field)
            field = ""
        elif ch == ":":
            break  # the password ends at an unescaped ':'
        else:
            field += ch
    if len(fields) < 4:
        return None
    if all(got == "*" or got == want for got, want in zip(fields, wanted)):
        return field
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


_QUOTED = re.compile(r'"[^"]*"')
_QUOTING = "a value holding a space is written in single quotes: password='a b'"


def _safe_message(message: str) -> str:
    """libpq's complaint without the piece of the string it quotes: with a
    space in an unquoted password, that piece is part of the password. A
    misspelt keyword is named only when it is close to a real one."""
    first = message.strip().splitlines()[0] if message.strip() else "not a connection string"
    option = re.fullmatch(r'invalid (?:connection option|URI query parameter:) "([^"]*)"', first)
    if option:
        close = difflib.get_close_matches(option.group(1), _keywords(), n=1, cutoff=0.75)
        if close:
            return f"unknown parameter {option.group(1)!r} (did you mean {close[0]!r}?)"
        return f"an unknown parameter; {_QUOTING}"
    if first.startswith('missing "=" after'):
        return f"a word with no '=' after it; {_QUOTING}"
    return _QUOTED.sub('"…"', first)
