"""Immutable copies of JSON-like values, and back: snapshots and journal
events are shared between workers and panes, so nothing may change them."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

_SCALARS = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """Mappings become read-only proxies and lists tuples, all the way down."""
    if type(value) in _SCALARS:  # most values: no ABC check needed
        return value
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again, for JSON."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value
