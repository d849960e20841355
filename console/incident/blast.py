"""Blast radius: which service a PostgreSQL session belongs to, and how that
service is doing right now.

A blocking session or the application holding most connections is a number
in the PostgreSQL pane; the question in the war room is whose it is and what
it is breaking. Each service declares its sessions in the config (its
``application_names``, by default its own name, and its ``client_networks``);
its health and error rate come from the readings the panes already show, so
nothing is read for this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from console.drill import Detail, Section
from console.readings import percent
from console.vocabulary import Snapshot


@dataclass(frozen=True)
class Blasted:
    """A service a session belongs to, as the latest readings see it."""

    service: str
    health: str   # the HTTP check's state, or "–"
    error_ratio: str  # the 5xx ratio, or "–"
    request_rate: str


def services_of(config: Any, application: str | None, client: str | None) -> list[str]:
    return [s.name for s in getattr(config, "services", ()) if s.owns(application, client)]


def blast_radius(config: Any, latest: Mapping[tuple[str, str], Snapshot], application: str | None,
                 client: str | None) -> list[Blasted]:
    out = []
    for name in services_of(config, application, client):
        check, errors = latest.get(("http", name)), latest.get(("errors", name))
        out.append(Blasted(
            name,
            check.state.value if check is not None else "–",
            percent(errors.metrics.get("error_ratio")) if errors is not None else "–",
            _rate(errors),
        ))
    return out


def _rate(errors: Snapshot | None) -> str:
    rate = errors.metrics.get("request_rate") if errors is not None else None
    return "–" if rate is None else f"{rate:.3g}/s"


def with_blast_radius(detail: Detail, config: Any, latest: Mapping[tuple[str, str], Snapshot]) -> Detail:
    """``detail`` with a section naming the services its session(s) belong to.

    A source puts ``application`` and ``client`` (one session) or
    ``sessions`` (a list of such pairs: a group) in ``Detail.extra``.
    """
    pairs: Iterable[tuple[Any, Any]]
    if "application" in detail.extra or "client" in detail.extra:
        pairs = [(detail.extra.get("application"), detail.extra.get("client"))]
    else:
        pairs = [(p.get("application"), p.get("client")) for p in detail.extra.get("sessions", ())
                 if isinstance(p, Mapping)]
    found: dict[str, Blasted] = {}
    for application, client in pairs:
        for blasted in blast_radius(config, latest, application, client):
            found.setdefault(blasted.service, blasted)
    if not found and not pairs:
        return detail
    if found:
        section = Section("Blast radius: the services these sessions belong to",
                          ("service", "health", "5xx", "requests"),
                          tuple((b.service, b.health, b.error_ratio, b.request_rate) for b in found.values()))
    else:
        section = Section("Blast radius", text="no configured service claims these sessions "
                          "(services[].application_names / client_networks in the config)")
    return Detail(detail.title, (section, *detail.sections), detail.openings, detail.changes, detail.follow,
                  detail.extra)


def in_a_line(config: Any, latest: Mapping[tuple[str, str], Snapshot], application: str | None,
              client: str | None) -> str:
    """``checkout-api critical · 5xx 12%``: the services a session belongs to, for a table cell."""
    return "; ".join(_short(b) for b in blast_radius(config, latest, application, client))


def _short(b: Blasted) -> str:
    if b.health == "–" and b.error_ratio == "–":
        return f"{b.service} (no readings)"
    # The number first: a narrow cell ends in an ellipsis, never in the middle of it.
    return f"{b.service}: 5xx {b.error_ratio}, {b.health}"
