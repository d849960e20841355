"""What a monitored system can be asked to do, besides being polled.

Every source is a :class:`Source`. A playbook step needs more: a SQL probe
needs a source that can run read-only SQL, a FLUSHDB a source that can flush a
cache. Each such ability is a protocol here, and each source class names the
ones it has by subclassing them, so the runner asks ``isinstance(source,
CacheFlushing)`` and, when the answer is no, tells the operator what the
source cannot do instead of failing on a missing attribute.

``isinstance`` on a protocol only checks that the members exist, so no two
capabilities share a member name: a Redis source must not pass for one that
runs SQL because both can "probe".

This is a ground floor like :mod:`console.vocabulary`: it imports nothing
but that and ``typing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

from console.vocabulary import Snapshot

if TYPE_CHECKING:
    from datetime import datetime

    from console.drill import Detail

__all__ = ["Source", "QueryRows", "HttpService", "PrometheusEndpoint", "SqlProbing", "BackendSignalling",
           "RedisProbing", "CacheFlushing", "HttpProbing", "PromQuerying", "KubernetesReading", "InNamespace",
           "WorkloadScaling", "WorkloadRestarting", "WorkloadUndoing", "PodDeleting", "ClientKilling",
           "KubectlTargeting", "Drilling", "CAPABILITIES", "capabilities_of",
           "cannot"]


@runtime_checkable
class Source(Protocol):
    """A monitored system. ``poll`` must not raise for anything the system does."""

    kind: str
    name: str
    timeout: float

    async def poll(self) -> Snapshot: ...

    async def close(self) -> None: ...


@runtime_checkable
class Drilling(Protocol):
    """Opens one of its rows: reads what a detail view shows, on demand only.

    ``row`` is a row id the source itself made (a pane row's key, or a
    :class:`console.drill.Section`'s or :class:`console.drill.Opening`'s).
    Raises :class:`console.drill.NoSuchRow` for a row that is gone and
    :class:`console.vocabulary.ProbeError` for a system that does not answer.
    """

    async def drill(self, row: str) -> Detail: ...


# ---- what capabilities hand back or point at ----------------------------------

class QueryRows(Protocol):
    """Rows of one statement, cut to the rows asked for."""

    @property
    def columns(self) -> tuple[str, ...]: ...

    @property
    def rows(self) -> tuple[tuple[Any, ...], ...]: ...

    @property
    def truncated(self) -> bool: ...


class HttpService(Protocol):
    """Where a service answers, and the headers (often a token) only it may see."""

    @property
    def url(self) -> str: ...

    @property
    def headers(self) -> tuple[tuple[str, str], ...]: ...


class PrometheusEndpoint(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def timeout(self) -> float: ...


# ---- PostgreSQL -----------------------------------------------------------------

@runtime_checkable
class SqlProbing(Protocol):
    """Runs one read-only statement (a read-only transaction with a statement timeout)."""

    async def probe_sql(self, sql: str, timeout: float, max_rows: int = ...) -> QueryRows: ...


@runtime_checkable
class BackendSignalling(Protocol):
    """Runs one statement with bound parameters and commits: terminate or cancel backends."""

    async def execute_action(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> QueryRows: ...


# ---- Redis ------------------------------------------------------------------------

@runtime_checkable
class RedisProbing(Protocol):
    """Sends one read command and returns the parsed reply."""

    async def probe_redis(self, argv: Sequence[str], timeout: float) -> Any: ...


@runtime_checkable
class CacheFlushing(Protocol):
    """FLUSHDB on one database, its own (``db``) unless told another."""

    db: int

    async def flush_db(self, db: int | None = None) -> Any: ...


@runtime_checkable
class ClientKilling(Protocol):
    """``CLIENT KILL ID <id>``: disconnects one client, named by the ID Redis
    gave its connection (unique for the server's life; an address is not:
    every unix-socket client has the same ``/path:0``)."""

    async def kill_client(self, client_id: int) -> Any: ...


# ---- HTTP and Prometheus ------------------------------------------------------------

@runtime_checkable
class HttpProbing(Protocol):
    """An HTTP service: a probe's path is resolved against its URL, and its headers go only to it."""

    service: HttpService


@runtime_checkable
class PromQuerying(Protocol):
    """Knows the Prometheus that PromQL probes ask."""

    prometheus: PrometheusEndpoint


# ---- Kubernetes ----------------------------------------------------------------------

@runtime_checkable
class InNamespace(Protocol):
    namespace: str


@runtime_checkable
class KubernetesReading(InNamespace, Protocol):
    """Lists one kind of object (``pods``, ``deployments`` …), optionally one by name."""

    async def read(self, resource: str, name: str | None = None, namespace: str | None = None) -> list[dict]: ...


@runtime_checkable
class WorkloadScaling(InNamespace, Protocol):
    """Sets a Deployment's or StatefulSet's replicas, as ``kubectl scale`` does."""

    async def scale(self, kind: str, name: str, replicas: int, namespace: str | None = None) -> Any: ...


@runtime_checkable
class WorkloadRestarting(InNamespace, Protocol):
    """Rolls a workload's pods, as ``kubectl rollout restart`` does."""

    async def restart(self, kind: str, name: str, at: datetime, namespace: str | None = None) -> Any: ...


@runtime_checkable
class WorkloadUndoing(InNamespace, Protocol):
    """Rolls a Deployment back to a revision (the previous one when None), as
    ``kubectl rollout undo`` does: the ReplicaSet's pod template, patched back.
    Given ``replicaset`` and ``template_digest`` (what a confirmation showed),
    it refuses any other ReplicaSet, or that one with its template changed."""

    async def undo(self, kind: str, name: str, revision: int | None, namespace: str | None = None,
                   replicaset: str | None = None, template_digest: str | None = None) -> Any: ...


@runtime_checkable
class PodDeleting(InNamespace, Protocol):
    """Deletes one pod (its controller makes a new one)."""

    async def delete_pod(self, name: str, namespace: str | None = None) -> Any: ...


@runtime_checkable
class KubectlTargeting(InNamespace, Protocol):
    """The flags that point ``kubectl`` (rollout undo) at the cluster this source watches."""

    def kubectl_args(self, namespace: str | None = None) -> list[str]: ...


# What each capability lets the operator do, for a refusal that says so.
CAPABILITIES: Mapping[type, str] = {
    SqlProbing: "run a read-only SQL probe",
    BackendSignalling: "terminate or cancel PostgreSQL backends",
    RedisProbing: "run a Redis read command",
    CacheFlushing: "flush a Redis database",
    HttpProbing: "resolve an HTTP probe's path against a service",
    PromQuerying: "run a PromQL query",
    KubernetesReading: "read Kubernetes objects",
    WorkloadScaling: "scale a Kubernetes workload",
    WorkloadRestarting: "restart a Kubernetes workload",
    ClientKilling: "disconnect a Redis client",
    WorkloadUndoing: "roll a Kubernetes workload back",
    PodDeleting: "delete a Kubernetes pod",
    KubectlTargeting: "point kubectl at its cluster (rollout undo)",
    Drilling: "open a row's detail",
}


def capabilities_of(source: object) -> list[type]:
    """The capabilities ``source`` has, in the order above."""
    return [c for c in CAPABILITIES if isinstance(source, c)]


def cannot(source: Source, capability: type) -> str:
    """A refusal naming what ``source`` cannot do, and the capability it lacks."""
    what = CAPABILITIES.get(capability, capability.__name__)
    return f"{source.kind} source {source.name!r} cannot {what} (it is not {capability.__name__})"
