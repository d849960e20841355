"""Services: HTTP health checks and Kubernetes workloads."""

from __future__ import annotations

from rich.text import Text

from console.readings import duration, general, millis
from console.vocabulary import Snapshot, State
from console.text import plain
from console.widgets.pane import LivePane, state_cell
from console.widgets.table import Row

EVENTS_SHOWN = 3


class ServicesPane(LivePane):
    TITLE = "1 Services"
    KINDS = ("http", "kubernetes")
    # A name may be cut to 10; a reading (``200 · 13ms``, ``1/3 ready · 12↻``) never is.
    COLUMNS = (("State", 7), ("Service", 18, 10), ("Reading", 15), ("Note", 100))
    # k9s's keys on a workload row: ``l`` opens the logs of its most-restarted
    # pod (the previous container's, for a crash loop), so they are two keys
    # from here; the changes are confirmed by typing the workload's name.
    ROW_KEYS = (("l", "Logs"), ("d", "Describe"), ("R", "Rollout restart"), ("U", "Rollout undo"))

    def summary(self) -> Text:
        checks = self.ordered("http")
        up = sum(1 for s in checks if s.state is State.OK)
        text = Text(f"{up}/{len(checks)} health checks ok" if checks else "no health checks")
        for ns in self.ordered("kubernetes"):
            m = ns.metrics
            if ns.reachable:
                text.append(f" · k8s {ns.name}: {general(m.get('unavailable_replicas', 0))} unavailable, "
                            f"{general(m.get('crashlooping_pods', 0))} crashlooping")
        return plain(text.plain)

    def snapshot_rows(self, snap: Snapshot) -> list[Row]:
        if snap.kind == "http":
            return [self._check_row(snap)]
        return self._namespace_rows(snap)

    def unreachable_rows(self, snap: Snapshot) -> list[Row]:
        row_key, cells = self._check_row(snap) if snap.kind == "http" else self._namespace_rows(snap)[0]
        return [(f"{snap.kind}:{snap.name}:{row_key}", cells)]

    def _check_row(self, snap: Snapshot) -> Row:
        m = snap.metrics
        code = m.get("status_code")
        colour = self.colours
        reading = f"{code if code is not None else '—'} · {millis(m.get('latency_ms'))}"
        return ("check", (state_cell(snap.state, colour), plain(snap.name), plain(reading),
                                      plain(snap.error or "", colour.style("state-critical"))))

    def _namespace_rows(self, ns: Snapshot) -> list[Row]:
        colour = self.colours
        error = colour.style("state-critical")
        if not ns.reachable:
            return [("namespace", (state_cell(ns.state, colour), plain(f"ns/{ns.name}"), plain("—"),
                                        plain(ns.error or "", error)))]
        rows: list[Row] = []
        for w in ns.details.get("workloads", ()):
            ready, desired = w.get("ready", 0), w.get("desired", 0)
            problems = list(w.get("problems", ()))
            state = State.OK
            if ready < desired:
                state = State.CRITICAL if ready == 0 or problems else State.WARNING
            elif problems:
                state = State.WARNING
            reading = f"{ready}/{desired} ready · {w.get('restarts', 0)}↻"
            kind = {"Deployment": "deploy", "StatefulSet": "sts"}.get(w.get("kind"), str(w.get("kind")))
            rows.append((f"{str(w.get('kind')).lower()}/{w.get('name')}",
                         (state_cell(state, colour), plain(f"{kind}/{w.get('name')}"), plain(reading),
                          plain(", ".join(problems), error))))
        for i, e in enumerate(ns.details.get("events", ())[:EVENTS_SHOWN]):
            # The row opens the event's object (``Pod/x``); the index keeps two
            # events about one object apart.
            rows.append((f"event/{i}/{e.get('object', '')}",
                         (plain("⚠ event", colour.style("state-warning")), plain(e.get("object", "")),
                          plain(f"{e.get('reason', '')} {duration(e.get('age_s'))} ago"),
                          plain(e.get("message", "")))))
        return rows
