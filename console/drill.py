"""Drilling into a row: what a detail view holds, and what can be done from it.

A live pane's row names something in a monitored system (a PostgreSQL
session, a Kubernetes workload, a Redis client). Enter on the row asks that
row's source for a :class:`Detail`: sections of text and tables, the views
one key away (a pod's logs, ``l``), the rows that drill further (a workload's
pods), and the :class:`Change` actions the operator may take on it (``K``
terminates a backend), each behind a typed confirmation.

This is pure data on the ground floor, like :mod:`console.vocabulary`: a
source builds a Detail from what it reads *when the detail is opened* (never
on every refresh), a screen renders it as inert text, and a Change runs
through the same runner, read-only refusal and journal as a playbook action.
Row ids are strings in the source's own terms (``session/4242``,
``deployment/checkout-api``, ``pod/checkout-api-7d9/logs/previous``); only
the source that made one reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from console.frozen import freeze


@dataclass(frozen=True)
class RowRef:
    """Which source a row came from, and the row in that source's terms."""

    kind: str
    source: str
    row: str


@dataclass(frozen=True)
class Section:
    """A titled block of a detail: a table (``columns``/``rows``), text, or both.

    ``drill`` is parallel to ``rows``: the row id Enter opens for that row
    ("" where a row opens nothing). All strings come from monitored systems:
    whoever shows them makes them inert.
    """

    title: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    text: str = ""
    drill: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.drill and len(self.drill) != len(self.rows):
            raise ValueError(f"section {self.title!r}: {len(self.drill)} drill ids for {len(self.rows)} rows")


@dataclass(frozen=True)
class Opening:
    """Another view one key away: ``l`` the logs, ``d`` a describe."""

    key: str
    label: str
    row: str


@dataclass(frozen=True)
class Change:
    """A change to the monitored system, run as a playbook action would be.

    ``action`` and ``params`` are an action of :data:`console.playbooks.model.ACTIONS`;
    ``confirm`` is what the operator must type (a pid, a pod's name);
    ``preview`` the lines the confirmation shows: who and what it will hit.
    """

    key: str
    label: str
    action: str
    params: Mapping[str, Any]
    confirm: str
    preview: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", freeze(dict(self.params)))
        if not self.confirm.strip():
            raise ValueError(f"change {self.label!r}: an empty confirmation would confirm anything")


@dataclass(frozen=True)
class Detail:
    """Everything about one row, read when it was opened."""

    title: str
    sections: tuple[Section, ...] = ()
    openings: tuple[Opening, ...] = ()
    changes: tuple[Change, ...] = ()
    # Follow mode (logs): the screen asks for the same row again every refresh.
    # ``extra["newest_last"]``: shown scrolled to its end (logs: where the crash is).
    follow: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def change(self, key: str) -> Change | None:
        return next((c for c in self.changes if c.key == key), None)

    def opening(self, key: str) -> Opening | None:
        return next((o for o in self.openings if o.key == key), None)


class NoSuchRow(LookupError):
    """The row is gone (a session ended, a pod was replaced): said, not raised further."""
