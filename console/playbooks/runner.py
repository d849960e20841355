"""Running playbook steps against live systems, and nothing more than asked.

Probes read. SQL is checked by :mod:`console.readonly` and then runs
in a read-only transaction with a statement timeout on the source's held
connection, so PostgreSQL refuses a write the check missed; Redis probes pass
the read-command allow-list again at the source; HTTP probes are bounded GETs;
Kubernetes probes list.

Actions and runnable commands change things. They run only after the
operator has typed the target's name (a pid, a deployment, a database), never
in read-only mode, and every attempt, whether it ran, failed or was refused,
is recorded (the journal adds who: user and SSH client). Template values
never become shell text (see :mod:`console.playbooks.shell`: an argv with no
shell, or ``bash -c`` with each value in an environment variable) and reach
an API only after validation (a pid is a whole number, a deployment a
Kubernetes name); commands run bounded in time and output.

A step runs only against a source that declares what it needs (see
:mod:`console.capabilities`); what comes back is made plain and bounded by
:mod:`console.playbooks.output`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import time
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable, Mapping, NoReturn, TypeVar
from urllib.parse import urljoin, urlsplit

from console.capabilities import (BackendSignalling, CacheFlushing, ClientKilling, HttpProbing, InNamespace,
                                  KubectlTargeting, KubernetesReading, PodDeleting, PromQuerying, RedisProbing,
                                  Source, SqlProbing, WorkloadRestarting, WorkloadScaling, WorkloadUndoing,
                                  cannot)
from console.playbooks import shell
from console.playbooks.model import ACTIONS, PROBE_KINDS, SOURCE_KINDS, TEMPLATE, Playbook, Step, placeholders
from console.playbooks.output import (MAX_BYTES, MAX_LINES, bounded, promql_result, readable_body, redis_reply,
                                      row_count, table)
from console.readonly import http_request, kubernetes_read, redis_argv, redis_is_read_only, sql_is_read_only
from console.sources.base import ProbeError, describe_error, utcnow
from console.text import inert

__all__ = ["MAX_BYTES", "MAX_LINES", "Refused", "StepResult", "StepRunner", "mutating_paths"]

Capability = TypeVar("Capability")
PROBE_TIMEOUT = 5.0
COMMAND_TIMEOUT = 30.0
CAPTURE_BYTES = 64 * 1024  # read from a command; the rest is drained unread
HTTP_BODY = 32 * 1024
POSTGRES_STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)",
                   "fastpath function call", "disabled")
# What a Kubernetes action needs of its source; rollout undo runs kubectl
# where the source cannot roll back through the API.
WORKLOAD_ACTIONS: Mapping[str, type[InNamespace]] = {
    "scale": WorkloadScaling, "rollout_restart": WorkloadRestarting, "rollout_undo": KubectlTargeting,
    "delete_pod": PodDeleting}
# ip:port as CLIENT LIST gives it (IPv6 in brackets or bare), or a unix socket path.
REDIS_ADDRESS = re.compile(r"^(\[?[0-9A-Fa-f:.]+\]?:[0-9]{1,5}|/[A-Za-z0-9_./-]{1,200}:0)$")
KUBE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
KUBE_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class StepResult:
    ok: bool
    output: str  # plain text, at most MAX_LINES lines / MAX_BYTES
    error: str | None
    took_ms: float
    exit_code: int | None = None


class Refused(Exception):
    """A step that was not run; ``str()`` is the message for the operator."""


def mutating_paths() -> list[str]:
    """Every way a step can change a system: each action kind, and a runnable command."""
    return [*ACTIONS, "command"]


@dataclass(frozen=True)
class _Plan:
    """A mutating step with its values filled in, checked, ready to run."""

    kind: str  # the journal kind: "action" or "command"
    what: str  # e.g. "terminate_backend pid 4242 on primary"
    target: str
    confirmation: str
    command: str | None  # as shown and copied; for a shell template, its pasteable text
    execute: Callable[[], Awaitable[StepResult]]
    shell_command: shell.ShellCommand | None = None  # exactly what runs, and each value as data


class StepRunner:
    def __init__(self, config: Any, sources: Mapping[str, Source], record: Callable[..., object] | None = None,
                 read_only: bool = False, environment: Mapping[str, str] | None = None, *,
                 probe_timeout: float = PROBE_TIMEOUT, command_timeout: float = COMMAND_TIMEOUT) -> None:
        self.config = config
        self.sources = sources
        self._record = record
        environment_section = getattr(config, "environment", None)
        self.read_only = bool(read_only or getattr(environment_section, "read_only", False))
        self.environment = dict(os.environ if environment is None else environment)
        self.probe_timeout = probe_timeout
        self.command_timeout = command_timeout

    # ---- what a step needs -------------------------------------------------
    def resolve(self, step: Step) -> Source | None:
        """The source a probe or action runs against: by name, else the first of its kind."""
        kind = step.target_kind
        named = step.source if step.source not in (None, *SOURCE_KINDS) else None
        if named is not None:
            found = self.sources.get(named)
            if found is not None and _is_kind(found, kind):
                return found
            return next((s for s in self.sources.values() if s.name == named and _is_kind(s, kind)), None)
        wanted = step.source or kind
        if wanted is None:
            return None
        return next((s for s in self.sources.values() if _is_kind(s, wanted)), None)

    def values_needed(self, step: Step) -> list[str]:
        """The template placeholders the operator fills in, in order, each once."""
        if step.literal:
            return []
        names: list[str] = []
        if step.kind == "command" and step.sql:
            names += list(placeholders(step.command or ""))
        elif step.kind == "command" or step.action == "shell":
            names += [n for n in shell.placeholders(step.command or "") if n not in step.params]
        if step.kind in ("command", "action"):
            names += [n for v in step.params.values() for n in _placeholders(v)]
            names += [n for n in _placeholders(step.confirm) if n not in step.params and n != "source"]
        return list(dict.fromkeys(names))

    def render_command(self, step: Step, values: Mapping[str, str]) -> str:
        """The command as it will run (or be copied), every value shell-quoted; for API actions, what they do.

        Like :meth:`expected_confirmation`, raises :class:`Refused` for a
        missing or unusable value: ask for :meth:`values_needed` first.
        """
        plan = self._plan(step, values)
        return plan.command or plan.what

    def what_runs(self, step: Step, values: Mapping[str, str]) -> list[str]:
        """Lines for the confirmation screen: the exact argv or script, and each value as data."""
        plan = self._plan(step, values)
        if plan.shell_command is not None:
            return plan.shell_command.shown()
        return [plan.what] + ([f"runs with no shell: {plan.command}"] if plan.command else [])

    def expected_confirmation(self, step: Step, values: Mapping[str, str]) -> str:
        """What the operator must type: the target's name, or the step's own ``confirm``."""
        return self._plan(step, values).confirmation

    def is_mutating(self, step: Step) -> bool:
        # SQL is copied into a database client, never run: not even when marked runnable.
        return step.kind == "action" or (step.kind == "command" and step.runnable and not step.sql)

    # ---- probes --------------------------------------------------------------
    async def probe(self, playbook: Playbook, step: Step) -> StepResult:
        """Run a probe step and record it; failures are a result, never an exception."""
        if step.kind != "probe":
            raise Refused(f"step {step.id} is a {step.kind} step, not a probe")
        source = self.resolve(step)
        started = time.perf_counter()
        try:
            output = await self._probe(step, source)
            result = StepResult(True, bounded(output), None, _since(started))
        except (ProbeError, _Failed) as exc:
            result = StepResult(False, "", str(exc), _since(started))
        except Exception as exc:  # a client library's surprise must not take the pane down
            result = StepResult(False, "", describe_error(exc), _since(started))
        self._note("probe", playbook=playbook.id, step=step.id, source=_name(source, step), query=step.query,
                   ok=result.ok, output=result.output, error=result.error, took_ms=round(result.took_ms, 1))
        return result

    async def _probe(self, step: Step, source: Source | None) -> str:
        kind, query = step.probe, step.query or ""
        if kind == "promql":
            return await self._promql(source, query)
        if kind == "http":
            return await self._http(source, query)
        if source is None:
            raise _Failed(f"no {PROBE_KINDS.get(kind or '', kind)} source configured"
                          + (f" named {step.source!r}" if step.source else ""))
        if kind == "sql":
            # The same rule as `check`, with the config's allow-list; the
            # source judges again, then pins names and asks the catalog.
            functions = getattr(getattr(self.config, "probes", None), "sql_functions", ())
            reason = sql_is_read_only(query, functions)
            if reason is not None:
                raise _Failed(f"refused: {reason}")
            # Header, rule and row count fit in MAX_LINES with the rows.
            rows = await _able(source, SqlProbing).probe_sql(query, self.probe_timeout, MAX_LINES - 3)
            return table(rows.columns, rows.rows) + row_count(len(rows.rows), rows.truncated)
        if kind == "redis":
            argv = redis_argv(query)
            reason = argv if isinstance(argv, str) else redis_is_read_only(argv)
            if reason is not None:
                raise _Failed(f"refused: {reason}")
            return redis_reply(await _able(source, RedisProbing).probe_redis(argv, self.probe_timeout))
        if kind == "kubernetes":
            return await self._kubernetes(source, query)
        raise _Failed(f"unknown probe kind {kind!r}")

    async def _http(self, source: Source | None, query: str) -> str:
        from console.sources.http import FetchError, fetch, new_client

        request = http_request(query)
        if isinstance(request, str):
            raise _Failed(f"refused: {request}")
        method, target = request
        service = source.service if isinstance(source, HttpProbing) else None
        if target.startswith("/") and service is None:
            if source is not None:
                _able(source, HttpProbing)
            raise _Failed("an HTTP probe on a path needs a configured service")
        url = urljoin(service.url, target) if service is not None and target.startswith("/") else target
        # A service's headers (often a token) go only to that service's origin.
        headers = service.headers if service is not None and _origin(url) == _origin(service.url) else ()
        async with new_client() as client:
            try:
                got = await fetch(client, url, timeout=self.probe_timeout, headers=headers, max_bytes=HTTP_BODY)
            except FetchError as exc:
                raise _Failed(str(exc)) from None
        head = f"HTTP {got.status} in {got.latency_ms:.0f} ms" + (" (body cut)" if got.truncated else "")
        if got.redirect_error:
            raise _Failed(f"{head}: {got.redirect_error}")
        body = "" if method == "HEAD" else readable_body(got.text())
        if got.status >= 400:
            raise _Failed(f"{head}" + (f": {inert(body, 200)}" if body else ""))
        return f"{head}\n{body}".rstrip()

    async def _promql(self, source: Source | None, query: str) -> str:
        from console.sources.errors import ask, read_data
        from console.sources.http import FetchError, new_client

        prometheus = (source.prometheus if isinstance(source, PromQuerying)
                      else getattr(self.config, "prometheus", None))
        if prometheus is None:
            raise _Failed("no prometheus configured")
        async with new_client() as client:
            try:
                got = await ask(client, prometheus, query)
            except FetchError as exc:
                raise _Failed(str(exc)) from None
        data, warnings, error = read_data(got)
        if error is not None:
            raise _Failed(error)
        return promql_result(data) + "".join(f"\nwarning: {w}" for w in warnings)

    async def _kubernetes(self, source: Source, query: str) -> str:
        from console.sources.kubernetes import probe_rows

        asked = kubernetes_read(query)
        if isinstance(asked, str):
            raise _Failed(f"refused: {asked}")
        resource, name = asked
        items = await _able(source, KubernetesReading).read(resource, name)
        columns, rows = probe_rows(resource, items, utcnow())
        return table(columns, rows) + row_count(len(rows), False)

    # ---- actions and commands --------------------------------------------------
    async def run(self, playbook: Playbook, step: Step, values: Mapping[str, str], typed: str) -> StepResult:
        """Run an action or runnable command once the operator typed its confirmation.

        Raises :class:`Refused` (after recording the refusal) in read-only
        mode, for values that cannot be used safely, and when ``typed`` is not
        exactly the expected confirmation.
        """
        if step.kind == "command" and step.sql:
            self._refuse(playbook, step, "command", step.id, typed,
                         f"step {step.id} is SQL to copy into a database client; it is never run "
                         "(and never as shell); nothing was run")
        if not self.is_mutating(step):
            raise Refused(f"step {step.id} is not an action or a runnable command; nothing to run")
        journal_kind = "command" if step.kind == "command" else "action"
        self.refuse_if_read_only(playbook, step, values, typed)
        try:
            plan = self._plan(step, values)
        except Refused as exc:
            self._refuse(playbook, step, journal_kind, step.id, typed, f"{exc}; step {step.id} was not run")
        if typed.strip() != plan.confirmation:
            self._refuse(playbook, step, plan.kind, plan.what, typed,
                         f"not confirmed: type {plan.confirmation!r} exactly to run {plan.what}; nothing was run",
                         plan)
        result = await plan.execute()
        self._note_run(playbook, step, plan, typed, result)
        return result

    def refuse_if_read_only(self, playbook: Playbook, step: Step, values: Mapping[str, str], typed: str) -> None:
        """In read-only mode: journal the refusal and raise :class:`Refused`.
        Before a confirmation is shown (a pane's change) as well as at run time."""
        if self.read_only:
            what = self._describe_for_refusal(step, values)
            kind = "command" if step.kind == "command" else "action"
            self._refuse(playbook, step, kind, what, typed, f"read-only mode: {what} was not run")

    def _plan(self, step: Step, values: Mapping[str, str]) -> _Plan:
        given = _checked_values(values)
        missing = [n for n in self.values_needed(step) if n not in given]
        if missing:
            raise Refused("no value given for " + ", ".join(f"{{{n}}}" for n in missing))
        params = dict(step.params) if step.literal else {k: _fill(v, given) for k, v in step.params.items()}
        if step.kind == "command" and step.sql:
            plan = self._sql_plan(step, given)
        elif step.kind == "command" or step.action == "shell":
            plan = self._shell_plan(step, given, params)
        elif step.action in ("terminate_backend", "cancel_backend"):
            plan = self._backend_plan(step, params, given)
        elif step.action == "flush_db":
            plan = self._flush_plan(step, params, given)
        elif step.action in ("scale", "rollout_restart", "rollout_undo", "delete_pod"):
            plan = self._kubernetes_plan(step, params, given)
        elif step.action == "client_kill":
            plan = self._client_kill_plan(step, params, given)
        else:
            raise Refused(f"unknown action {step.action!r}")
        if not plan.confirmation.strip():
            # Typing nothing must never confirm anything.
            return replace(plan, confirmation=step.id)
        return replace(plan, confirmation=plan.confirmation.strip())

    def _confirmation(self, step: Step, default: str, params: Mapping[str, Any], given: Mapping[str, str],
                      source: Source | None = None) -> str:
        if not step.confirm:
            return default
        if step.literal:
            return step.confirm
        known = {**{k: str(v) for k, v in params.items()}, "source": _name(source, step) or "", **given}
        return TEMPLATE.sub(lambda m: known.get(m.group(1), m.group(0)), step.confirm).strip()

    def _shell_plan(self, step: Step, given: Mapping[str, str], params: Mapping[str, Any]) -> _Plan:
        # A shell action's params are defaults for its command's placeholders.
        lookup = {**{k: str(v) for k, v in params.items()}, **given}
        try:
            built = shell.build(step.command or "", lookup)
        except shell.ValueRefused as exc:
            raise Refused(str(exc)) from None
        # The target is what the operator filled in (a pod, a host), not a default.
        names = [n for n in self.values_needed(step) if n in given] or shell.placeholders(step.command or "")
        default = lookup[names[0]] if names else step.id
        kind = "command" if step.kind == "command" else "action"
        command = built.pasteable
        return _Plan(kind, f"`{command}`", command, self._confirmation(step, default, params, given),
                     command, lambda: self._run_shell(built), built)

    def _sql_plan(self, step: Step, given: Mapping[str, str]) -> _Plan:
        """SQL to copy: its ``{name}`` placeholders filled with checked values; running it is refused."""
        for name in placeholders(step.command or ""):
            try:
                shell.check_value(name, given[name])
            except shell.ValueRefused as exc:
                raise Refused(str(exc)) from None
        text = TEMPLATE.sub(lambda m: given.get(m.group(1), m.group(0)), step.command or "")

        async def never() -> StepResult:
            raise Refused(f"step {step.id} is SQL to copy into a database client; it is never run")

        return _Plan("command", f"SQL to copy: {text}", step.id, step.id, text, never)

    def _backend_plan(self, step: Step, params: Mapping[str, Any], given: Mapping[str, str]) -> _Plan:
        source = self._need_source(step, BackendSignalling)
        verb = "pg_terminate_backend" if step.action == "terminate_backend" else "pg_cancel_backend"
        if "pid" in params:
            pid = _whole(params["pid"], "pid", minimum=1)
            backend_start = _timestamp(params.get("backend_start"))
            what = f"{step.action} pid {pid} on {source.name}"
            if backend_start is not None:
                what += f" (the session connected at {backend_start})"

            async def one() -> StepResult:
                started = time.perf_counter()
                try:
                    if backend_start is None:
                        rows = await source.execute_action(f"SELECT {verb}(%s)", [pid])
                    else:
                        rows = await source.execute_action(_ONE_SQL.format(verb=verb),
                                                           {"pid": pid, "started": backend_start})
                except ProbeError as exc:
                    return StepResult(False, "", str(exc), _since(started))
                if rows.rows and rows.rows[0][0] is True:
                    done = "terminated" if step.action == "terminate_backend" else "cancelled the query of"
                    return StepResult(True, f"{done} backend {pid}", None, _since(started))
                if backend_start is not None and not rows.rows:
                    return StepResult(False, "", f"backend {pid} is not the session shown: it ended (or its pid "
                                      "now belongs to another session); nothing was signalled", _since(started))
                return StepResult(False, "", f"backend {pid} was not signalled (no such backend, "
                                  "or not allowed)", _since(started))
            return _Plan("action", what, str(pid), self._confirmation(step, str(pid), params, given, source),
                         None, one)
        state = str(params.get("state", ""))
        if state not in POSTGRES_STATES:
            raise Refused(f"state must be one of {', '.join(POSTGRES_STATES)}, not {state!r}")
        filters = {"state": state,
                   "older": None if params.get("older_than_s") is None else _number(params["older_than_s"], "older_than_s"),
                   "database": _optional_str(params.get("database")), "user": _optional_str(params.get("user")),
                   "app": _optional_str(params.get("application_name")), "pids": _pids(params.get("pids"))}
        shown = ", ".join(f"{k}={v}" for k, v in filters.items() if v is not None and k != "pids")
        if filters["pids"] is not None:
            shown += f", and only the {len(filters['pids'])} sessions listed"
        what = f"{step.action} every session with {shown} on {source.name}"
        sql = _SESSIONS_SQL.format(verb=verb)

        async def every() -> StepResult:
            started = time.perf_counter()
            try:
                rows = await source.execute_action(sql, filters)
            except ProbeError as exc:
                return StepResult(False, "", str(exc), _since(started))
            signalled = sum(1 for r in rows.rows if r[-1] is True)
            text = f"{signalled} of {len(rows.rows)} matching sessions signalled"
            return StepResult(True, bounded(f"{text}\n{table(rows.columns, rows.rows)}"), None, _since(started))
        return _Plan("action", what, shown, self._confirmation(step, state, params, given, source), None, every)

    def _flush_plan(self, step: Step, params: Mapping[str, Any], given: Mapping[str, str]) -> _Plan:
        source = self._need_source(step, CacheFlushing)
        db = _whole(params["db"], "db") if "db" in params else source.db
        target = f"{source.name}/db{db}"

        async def flush() -> StepResult:
            started = time.perf_counter()
            try:
                await source.flush_db(db)
            except ProbeError as exc:
                return StepResult(False, "", str(exc), _since(started))
            return StepResult(True, f"flushed {target}", None, _since(started))
        return _Plan("action", f"FLUSHDB on {target}", target,
                     self._confirmation(step, target, params, given, source), None, flush)

    def _client_kill_plan(self, step: Step, params: Mapping[str, Any], given: Mapping[str, str]) -> _Plan:
        # The id picks the client (unique); the address is only shown: every
        # unix-socket client has the same one.
        source = self._need_source(step, ClientKilling)
        client_id = _whole(params.get("id", ""), "id")
        address = None if params.get("address") is None else str(params["address"])
        if address is not None and not REDIS_ADDRESS.match(address):
            raise Refused(f"not a Redis client address (ip:port): {address[:60]!r}")
        shown = f"{client_id} ({address})" if address else str(client_id)

        async def kill() -> StepResult:
            return await _api_call(lambda: source.kill_client(client_id),
                                   f"disconnected client {shown} from {source.name}")
        return _Plan("action", f"CLIENT KILL ID {shown} on {source.name}", f"client {shown}",
                     self._confirmation(step, address or str(client_id), params, given, source), None, kill)

    def _kubernetes_plan(self, step: Step, params: Mapping[str, Any], given: Mapping[str, str]) -> _Plan:
        if step.action == "rollout_undo" and isinstance(self.resolve(step), WorkloadUndoing):
            return self._undo_plan(step, params, given)
        source = self._need_source(step, WORKLOAD_ACTIONS[step.action or ""])
        if step.action == "delete_pod":
            return self._delete_pod_plan(step, source, params, given)
        kind = "statefulset" if "statefulset" in params else "deployment"
        name = _kube_name(params.get(kind), kind)
        namespace = params.get("namespace")
        if namespace is not None and not KUBE_NAMESPACE.match(str(namespace)):
            raise Refused(f"not a Kubernetes namespace: {str(namespace)[:60]!r}")
        namespace = str(namespace or source.namespace)
        where = f"{kind}/{name} in {namespace}"
        confirmation = self._confirmation(step, name, params, given, source)
        if step.action == "scale" and isinstance(source, WorkloadScaling):
            scaling, replicas = source, _whole(params.get("replicas"), "replicas")

            async def scale() -> StepResult:
                return await _api_call(lambda: scaling.scale(kind, name, replicas, namespace),
                                       f"scaled {where} to {replicas} replicas")
            return _Plan("action", f"scale {where} to {replicas} replicas", f"{kind}/{name}", confirmation,
                         None, scale)
        if step.action == "rollout_restart" and isinstance(source, WorkloadRestarting):
            restarting = source

            async def restart() -> StepResult:
                return await _api_call(lambda: restarting.restart(kind, name, utcnow(), namespace),
                                       f"restarted {where}: new pods are rolling out")
            return _Plan("action", f"rollout restart {where}", f"{kind}/{name}", confirmation, None, restart)
        argv = ["kubectl", *_able(source, KubectlTargeting, Refused).kubectl_args(namespace), "rollout", "undo",
                f"{kind}/{name}"]
        if params.get("to_revision") is not None:
            argv.append(f"--to-revision={_whole(params['to_revision'], 'to_revision', minimum=1)}")
        return _Plan("action", f"rollout undo {where}", f"{kind}/{name}", confirmation, shlex.join(argv),
                     lambda: self._run_kubectl(argv))

    def _namespace(self, source: InNamespace, params: Mapping[str, Any]) -> str:
        namespace = params.get("namespace")
        if namespace is not None and not KUBE_NAMESPACE.match(str(namespace)):
            raise Refused(f"not a Kubernetes namespace: {str(namespace)[:60]!r}")
        return str(namespace or source.namespace)

    def _delete_pod_plan(self, step: Step, source: Any, params: Mapping[str, Any],
                         given: Mapping[str, str]) -> _Plan:
        name = _kube_name(params.get("pod"), "pod")
        namespace = self._namespace(source, params)

        async def delete() -> StepResult:
            return await _api_call(lambda: source.delete_pod(name, namespace),
                                   f"deleted pod/{name} in {namespace}: its controller replaces it")
        return _Plan("action", f"delete pod/{name} in {namespace}", f"pod/{name}",
                     self._confirmation(step, name, params, given, source), None, delete)

    def _undo_plan(self, step: Step, params: Mapping[str, Any], given: Mapping[str, str]) -> _Plan:
        source = self._need_source(step, WorkloadUndoing)
        name = _kube_name(params.get("deployment"), "deployment")
        namespace = self._namespace(source, params)
        revision = None if params.get("to_revision") is None else _whole(params["to_revision"], "to_revision",
                                                                         minimum=1)
        # What the confirmation showed (a pane's undo names both): the run refuses anything else.
        replicaset, digest = params.get("replicaset"), params.get("template_digest")
        if replicaset is not None and not (isinstance(replicaset, str) and KUBE_NAME.fullmatch(replicaset)):
            raise Refused(f"not a Kubernetes replicaset name: {str(replicaset)[:60]!r}")
        if digest is not None and not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            raise Refused(f"template_digest must be a sha256 in hex, not {str(digest)[:70]!r}")
        to = f"revision {revision}" if revision is not None else "the previous revision"
        where = f"deployment/{name} in {namespace}"
        pins = ([f"ReplicaSet {replicaset}"] if replicaset is not None else []) + \
            ([f"template sha256 {digest[:16]}"] if digest is not None else [])
        pinned = f" ({', '.join(pins)})" if pins else ""

        async def undo() -> StepResult:
            return await _api_call(lambda: source.undo("deployment", name, revision, namespace, replicaset, digest),
                                   f"rolled {where} back to {to}{pinned}")
        return _Plan("action", f"rollout undo {where} to {to}{pinned}", f"deployment/{name}",
                     self._confirmation(step, name, params, given, source), None, undo)

    def _need_source(self, step: Step, capability: type[Capability]) -> Capability:
        """The source an action runs against, refused unless it can do what the action needs."""
        source = self.resolve(step)
        if source is None:
            kind = step.target_kind or "matching"
            raise Refused(f"no {kind} source configured" + (f" named {step.source!r}" if step.source else ""))
        return _able(source, capability, Refused)

    def _describe_for_refusal(self, step: Step, values: Mapping[str, str]) -> str:
        try:
            return self._plan(step, values).what
        except Refused:
            return f"{step.action or 'command'} ({step.id})"

    # ---- processes --------------------------------------------------------------
    async def _run_shell(self, command: shell.ShellCommand) -> StepResult:
        bash = shutil.which("bash", path=self.environment.get("PATH")) or shutil.which("bash") or "/bin/bash"
        return await self._run_process(command.exec_argv(bash), command.environment)

    async def _run_kubectl(self, argv: list[str]) -> StepResult:
        found = shutil.which(argv[0], path=self.environment.get("PATH", ""))
        if found is None:
            return StepResult(False, "", "kubectl not found on PATH: rollout undo needs it; install kubectl "
                              f"or run by hand: {shlex.join(argv)}", 0.0)
        return await self._run_process([found, *argv[1:]])

    async def _run_process(self, argv: list[str], values: Mapping[str, str] | None = None) -> StepResult:
        """``argv`` (never a shell line), with ``values`` as its only ``ICV_`` variables, bounded."""
        environment = {**shell.without_values(self.environment), **(values or {})}
        done = await shell.run_bounded(argv, environment, self.command_timeout, CAPTURE_BYTES)
        if done.not_started is not None:
            return StepResult(False, "", done.not_started, done.took_ms)
        output = bounded(done.output)
        if done.timed_out:
            return StepResult(False, output, f"timed out after {self.command_timeout:g}s; stopped",
                              done.took_ms, done.exit_code)
        code = done.exit_code
        return StepResult(code == 0, output, None if code == 0 else f"exit status {code}", done.took_ms, code)

    # ---- the journal -------------------------------------------------------------
    def _note(self, kind: str, **data: Any) -> None:
        if self._record is not None:
            self._record(kind, **data)

    def _note_run(self, playbook: Playbook, step: Step, plan: _Plan, typed: str, result: StepResult) -> None:
        common = {"playbook": playbook.id, "step": step.id, "ok": result.ok, "error": result.error,
                  "took_ms": round(result.took_ms, 1), "confirmed_by": typed}
        # For a shell template: the argv or script that ran, and the values it was given.
        ran = plan.shell_command.for_journal() if plan.shell_command is not None else {}
        if plan.kind == "command":
            self._note("command", command=plan.command, exit_code=result.exit_code, output=result.output,
                       **ran, **common)
        else:
            extra = {} if plan.command is None else {"command": plan.command, "exit_code": result.exit_code, **ran}
            self._note("action", action=step.action, target=plan.target, source=_name(self.resolve(step), step),
                       result=result.output if result.ok else (result.error or ""), output=result.output,
                       **extra, **common)

    def _refuse(self, playbook: Playbook, step: Step, kind: str, what: str, typed: str, message: str,
                plan: _Plan | None = None) -> NoReturn:
        common = {"playbook": playbook.id, "step": step.id, "ok": False, "refused": message,
                  "error": message, "confirmed_by": typed}
        if kind == "command":
            # The refusal is the command's whole output: the post-mortem shows it as such.
            self._note("command", command=plan.command if plan else step.command, exit_code=None, output=message,
                       **common)
        else:
            self._note("action", action=step.action, target=plan.target if plan else what,
                       source=_name(self.resolve(step), step), result=message, **common)
        raise Refused(message)


class _Failed(Exception):
    """A probe that could not run: its message is the whole story."""


_SESSIONS_SQL = """
SELECT pid, usename AS user, datname AS database, application_name, state,
       round(extract(epoch FROM now() - state_change)::numeric, 1) AS in_state_s,
       {verb}(pid) AS signalled
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND state = %(state)s
  AND (%(older)s::float8 IS NULL OR state_change < now() - make_interval(secs => %(older)s::float8))
  AND (%(database)s::text IS NULL OR datname = %(database)s::text)
  AND (%(user)s::text IS NULL OR usename = %(user)s::text)
  AND (%(app)s::text IS NULL OR application_name = %(app)s::text)
  AND (%(pids)s::int[] IS NULL OR pid = ANY(%(pids)s::int[]))
ORDER BY state_change
"""
# One backend, and only the session that was shown when it says when it started.
_ONE_SQL = """
SELECT {verb}(pid) FROM pg_stat_activity
WHERE pid = %(pid)s AND (%(started)s::timestamptz IS NULL OR backend_start = %(started)s::timestamptz)
"""


def _checked_values(values: Mapping[str, str]) -> dict[str, str]:
    checked = {}
    for name, value in values.items():
        text = str(value)
        if "\x00" in text or "\n" in text or "\r" in text:
            raise Refused(f"value for {{{name}}} contains a line break or NUL; refused")
        checked[str(name)] = text
    return checked


def _placeholders(value: Any) -> list[str]:
    return TEMPLATE.findall(value) if isinstance(value, str) else []


def _fill(value: Any, given: Mapping[str, str]) -> Any:
    if not isinstance(value, str):
        return value
    return TEMPLATE.sub(lambda m: given[m.group(1)], value)


def _whole(value: Any, name: str, minimum: int = 0) -> int:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or int(text) < minimum:
        raise Refused(f"{name} must be a whole number{' above 0' if minimum else ''}, not {str(value)[:40]!r}")
    return int(text)


def _number(value: Any, name: str) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        number = -1.0
    if not number >= 0 or number == float("inf"):
        raise Refused(f"{name} must be a number of seconds, not {str(value)[:40]!r}")
    return number


def _pids(value: Any) -> list[int] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value:
        raise Refused("pids must be a non-empty list of backend pids")
    return [_whole(v, "pid", minimum=1) for v in value]


TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}(:?\d{2})?|Z)?$")


def _timestamp(value: Any) -> str | None:
    if value is None:
        return None
    if not TIMESTAMP.match(str(value)):
        raise Refused(f"not a timestamp: {str(value)[:40]!r}")
    return str(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _kube_name(value: Any, kind: str) -> str:
    text = "" if value is None else str(value)
    if not KUBE_NAME.match(text):
        raise Refused(f"not a Kubernetes {kind} name: {text[:60]!r}")
    return text


async def _api_call(call: Callable[[], Awaitable[Any]], done: str) -> StepResult:
    started = time.perf_counter()
    try:
        await call()
    except ProbeError as exc:
        return StepResult(False, "", str(exc), _since(started))
    return StepResult(True, done, None, _since(started))


def _probe_refused(message: str) -> Exception:
    return _Failed(f"refused: {message}")


def _able(source: Source, capability: type[Capability],
          refusal: Callable[[str], Exception] = _probe_refused) -> Capability:
    """``source`` as one that has ``capability``; else a refusal naming what it cannot do."""
    if not isinstance(source, capability):
        raise refusal(cannot(source, capability))
    return source


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _is_kind(source: Source, kind: str | None) -> bool:
    if kind is None:
        return True
    if kind == "prometheus":
        return isinstance(source, PromQuerying)
    return source.kind == kind


def _name(source: Source | None, step: Step) -> str | None:
    return source.name if source is not None else step.source


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
