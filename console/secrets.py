"""Secret values: every configured password, token and key, known by value.

Redaction happens at the few places text leaves the process (the screen via
:func:`console.text.inert`, the journal, the exports, the command line), not
at each caller: an error message, a probe's output or a service echoing our
headers back may carry a secret from anywhere, and only a lookup by value
catches all of them.

A secret is registered with every form it is likely to travel in: raw,
URL-escaped (as the usual libraries do it, either hex case, ``+`` for a space), base64 of ``user:password`` (HTTP Basic auth) and of the value
alone (standard and URL-safe alphabets, with and without padding), hex,
JSON-escaped, Python ``repr`` of the text and of its UTF-8 bytes, libpq's
key=value quoting, HTML-escaped, and both Unicode normal forms.

Values shorter than :data:`MIN_LENGTH` are not registered: a one- to
three-character password would turn every ``a`` or ``ok`` on the screen into
``***`` and, worse, tell an onlooker which characters it is made of. Such a
password is still masked where it sits in a URL (:func:`console.config.redact`).

No Textual import here, and nothing heavy: the screen calls :func:`redact`
for every piece of text it shows.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

MIN_LENGTH = 4
MASK = "***"
# Names of environment variables, query parameters and header or config keys
# whose values are credentials.
SECRET_NAME = re.compile(r"pass|secret|token|key|auth|credential|pwd|cookie|session", re.I)


def literal_forms(secret: str, user: str | None = None) -> set[str]:
    """The exact strings ``secret`` may appear as ."""
    forms: set[str] = set()
    for value in {secret, unicodedata.normalize("NFC", secret), unicodedata.normalize("NFD", secret)}:
        raw = value.encode("utf-8")
        forms.update({
            value,
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            repr(value)[1:-1],
            repr(raw)[2:-1],
            html.escape(value),
            value.replace("\\", "\\\\").replace("'", "\\'"),  # libpq key=value quoting
            raw.hex(),
            raw.hex().upper(),
        })
        forms |= _url_forms(value)
        pairs = [raw] + ([f"{user}:{value}".encode("utf-8")] if user is not None else [])
        pairs.append(b":" + raw)  # Basic auth with an empty user name (Redis, some proxies)
        for blob in pairs:
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                text = encode(blob).decode("ascii")
                forms.update({text, text.rstrip("=")})
    return {f for f in forms if len(f) >= MIN_LENGTH}


# The characters URL writers leave unescaped: none, a path's '/', the
# userinfo's sub-delimiters (RFC 3986, as httpx and browsers write them), ...
_URL_SAFE = ("", "/", ":@", "/:@", "!$&'()*+,;=:", "!$&'()*+,;=:@/", "-._~")


def _url_forms(value: str) -> set[str]:
    """``value`` URL-escaped the ways libraries do it, in either hex case.

    Literal strings rather than one pattern allowing any character escaped or
    not: a pattern of character choices defeats the regex engine's fast scan
    and made redaction ten times slower, on text the screen redacts constantly.
    """
    forms = set()
    for safe in _URL_SAFE:
        for quoted in (quote(value, safe=safe), quote_plus(value, safe=safe)):
            forms.add(quoted)
            forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted))
    return forms


class SecretValues:
    """A set of secret values and the one pattern that finds any of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, set[str | None]] = {}  # value -> users it was seen with
        self._pattern: re.Pattern[str] | None = None
        self._longest = 0  # the longest registered form
        self._forms: tuple[str, ...] = ()
        self._firsts: frozenset[str] = frozenset()
        self._dirty = False

    def add(self, value: str | None, user: str | None = None) -> None:
        if not value or len(value) < MIN_LENGTH:
            return
        with self._lock:
            users = self._secrets.setdefault(value, set())
            if user not in users:
                users.add(user)
                self._dirty = True

    def forget(self) -> None:
        """Drop every value (tests; a reloaded config)."""
        with self._lock:
            self._secrets.clear()
            self._pattern, self._dirty = None, False

    def __len__(self) -> int:
        return len(self._secrets)

    def pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._dirty:
                self._pattern = self._compile()
                self._dirty = False
            return self._pattern

    def _compile(self) -> re.Pattern[str] | None:
        forms: set[str] = set()
        for value, users in self._secrets.items():
            for user in users:
                forms |= literal_forms(value, user)
        self._longest = max((len(f) for f in forms), default=0)
        self._forms = tuple(forms)
        self._firsts = frozenset(f[0] for f in forms)
        return re.compile(_trie_pattern(forms)) if forms else None

    def redact(self, text: str) -> str:
        pattern = self.pattern()
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def redact_cut(self, text: str, limit: int) -> str:
        """At most ``limit`` characters of ``text``, redacted, without
        redacting all of a long text. A secret the cut falls inside would
        leave its prefix, which no form matches: the window is one longest
        form wider, and what a cut secret can have left is its tail end."""
        pattern = self.pattern()
        if pattern is None:
            return text[:limit]
        window = text[: limit + self._longest]
        redacted = pattern.sub(MASK, window)
        if len(text) > len(window):
            redacted = redacted[: self._start_of_cut_secret(redacted)]
        return redacted[:limit]

    def _start_of_cut_secret(self, text: str) -> int:
        """Where a tail of ``text`` that begins some secret form starts (the
        window's cut fell inside it), else the end of ``text``."""
        for start in range(max(0, len(text) - self._longest), len(text)):
            if text[start] in self._firsts:
                tail = text[start:]
                if any(form.startswith(tail) for form in self._forms):
                    return start
        return len(text)


def _trie_pattern(words: Iterable[str]) -> str:
    """One regex matching any of ``words``, longest first, shaped as a trie.

    A flat alternation of a few hundred forms makes the engine try each of
    them at every position of the text; sharing prefixes lets it drop out
    after a character or two, which keeps redaction of screen text cheap.
    """
    trie: dict = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}  # the end of a word

    def build(node: dict) -> str:
        ends = "" in node
        branches = []
        for ch, child in sorted(node.items()):
            if not ch:
                continue
            # A run with no branching (most of a long token) is plain text, not
            # recursion: a 2000-character hex form must not exhaust the stack.
            run = [ch]
            while len(child) == 1 and "" not in child:
                (ch, child), = child.items()
                run.append(ch)
            branches.append(re.escape("".join(run)) + build(child))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        # Greedy '?': where one form is a prefix of another, the longer goes.
        return f"(?:{body})?" if ends else body

    return build(trie)


REGISTRY = SecretValues()


def redact(text: str) -> str:
    """``text`` with every registered secret, in any of its forms, as ``***``."""
    return REGISTRY.redact(text)


def redact_cut(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text``, redacted, no piece of a secret left at the cut."""
    return REGISTRY.redact_cut(text, limit)


def without_cut_secret(text: str) -> str:
    """``text`` (already redacted) without a tail that begins a secret: what
    is left when someone else (Redis, a server's own limit) cut one short."""
    if REGISTRY.pattern() is None:  # also brings its forms up to date
        return text
    return text[:REGISTRY._start_of_cut_secret(text)]


def redact_data(value: Any) -> Any:
    """``value`` with every string in it redacted, keys included, recursively."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_data(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_data(v) for v in value)
    return value


def add(value: str | None, user: str | None = None) -> None:
    REGISTRY.add(value, user)


def forget() -> None:
    REGISTRY.forget()


# ---- what counts as a secret in a configured value ------------------------------

def add_url(url: str) -> None:
    """The password of a URL (or PostgreSQL DSN, URL or key=value), as every
    parser that will see it reads it, and secret-looking query parameters."""
    for user, password in _passwords(url):
        add(password, user)
        if password and "@" in password:
            # libpq splits the userinfo at the first '@', so a host in an error
            # message may start with the rest of the password.
            for piece in password.split("@")[1:]:
                add(piece)


def add_header(name: str, value: str) -> None:
    """A configured HTTP header: an API key, a token, an Authorization."""
    if not value:
        return
    scheme, _, credential = value.strip().partition(" ")
    if SECRET_NAME.search(name) or name.lower() in ("authorization", "proxy-authorization"):
        add(value)
        if credential:
            add(credential.strip())
            if scheme.lower() == "basic":
                _add_basic(credential.strip())


def _add_basic(token: str) -> None:
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=False).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return
    user, sep, password = decoded.partition(":")
    if sep:
        add(password, user)


def _passwords(url: str) -> Iterable[tuple[str | None, str]]:
    found: list[tuple[str | None, str]] = []
    text = url.strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("postgres", "postgresql") or ("=" in text and "://" not in text):
        found.extend(_libpq_passwords(text))
    if "://" in text:
        try:
            parts = urlsplit(text)
            if parts.password:
                found.append((unquote(parts.username or ""), unquote(parts.password)))
            for key, value in parse_qsl(parts.query):
                if SECRET_NAME.search(key):
                    found.append((None, value))
        except ValueError:
            pass
        # What lies between "user:" and the last '@': the password as the user
        # meant it, even with an unescaped '/', '?' or '#' that URL parsers stop at.
        loose = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://([^:/?#@\s]*):(.+)@[^@]*$", text, re.S)
        if loose and cut_short(text):
            found.append((unquote(loose.group(1)), loose.group(2)))
            found.append((unquote(loose.group(1)), unquote(loose.group(2))))
    return found


def cut_short(url: str) -> bool:
    """True when URL parsers would read a password, or cut one short (an
    unescaped '/' makes the rest of it look like a port and a path)."""
    try:
        parts = urlsplit(url)
        parts.port
    except ValueError:
        return True
    return parts.password is not None


def _libpq_passwords(dsn: str) -> list[tuple[str | None, str]]:
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return []
    try:
        params = conninfo_to_dict(dsn)
    except Exception:  # psycopg.ProgrammingError: not a DSN libpq reads
        return []
    password = params.get("password")
    return [(str(params.get("user") or "") or None, str(password))] if password else []
