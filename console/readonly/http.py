"""HTTP probes: one bounded GET (or HEAD) of a path or URL."""

from __future__ import annotations

import re

_HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}


def http_request(query: str) -> tuple[str, str] | str:
    """``(method, path-or-URL)`` of an HTTP probe, or why it is not a GET.

    A query is a path on the probe's service (``/health``), an absolute URL,
    or either of those after ``GET``.
    """
    parts = query.split()
    if not parts:
        return "empty HTTP probe"
    method = "GET"
    if parts[0].upper() in _HTTP_METHODS:
        method = parts[0].upper()
        parts = parts[1:]
    if method not in ("GET", "HEAD"):
        return f"HTTP probes are GET only, not {method}"
    if len(parts) != 1:
        return "an HTTP probe is one path or URL (optionally after GET)"
    target = parts[0]
    if not (target.startswith("/") or re.match(r"https?://[^/\s]", target, re.I)):
        return f"HTTP probe target must be a path starting with / or an http(s) URL, not {target[:60]!r}"
    return method, target


def http_is_read_only(query: str) -> str | None:
    answer = http_request(query)
    return answer if isinstance(answer, str) else None


