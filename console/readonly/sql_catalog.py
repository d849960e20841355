"""What the catalog must confirm before a SQL probe runs.

The parse tree (:mod:`console.readonly.sql`) shows what the probe says, not
what its names mean in this database. A user can define, in a schema on the
search_path, a SECURITY DEFINER wrapper named like an allowed function, an
operator, a domain whose CHECK calls a function, a view that calls
pg_terminate_backend, a row-level-security policy, or a cast run by a
plpgsql function. None of these shows in the probe's text.

So, inside the probe's own read-only transaction:

1. every relation the probe names is resolved under the session's
   search_path, and refused when reading it runs code someone else wrote:
   a view outside the system schemas (unless trusted: a pg_stat_statements
   view, or one the config names in ``probes.sql_views``), a foreign table,
   a table under row-level security, a table with a column whose type has a
   cast written in a procedural language or is a domain with a CHECK;
2. the probe is rewritten with those relations schema-qualified, and
   search_path is pinned to ``pg_catalog, pg_temp``: every unqualified
   function, operator and type now means the built-in one, so a lookalike
   in ``public`` is never chosen, whatever its argument types.

This module holds the SQL and the judgement; the source runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from console.readonly.sql import SqlProbe

PINNED_SEARCH_PATH = "pg_catalog, pg_temp"
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})
# Extensions whose views read statistics and nothing else.
TRUSTED_EXTENSIONS = ("pg_stat_statements",)
_VIEW_KEY = "probes.sql_views"

# One round trip for every relation the probe names. C and internal
# functions need a superuser to create; a cast in any other language is
# code a database user wrote.
RELATIONS_SQL = """
SELECT r.ord::int, n.nspname::text, c.relname::text, c.relkind::text, c.relrowsecurity,
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
               WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
                 AND d.deptype = 'e' AND e.extname = ANY(%(extensions)s::text[])) AS in_trusted_extension,
       EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
               JOIN pg_catalog.pg_cast k ON k.castsource = a.atttypid
               JOIN pg_catalog.pg_proc p ON p.oid = k.castfunc
               JOIN pg_catalog.pg_language l ON l.oid = p.prolang
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 AND l.lanname NOT IN ('internal', 'c')) AS user_written_cast,
       EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
               JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
               JOIN pg_catalog.pg_constraint k
                 ON k.contypid IN (t.oid, t.typelem, t.typbasetype) AND k.contype = 'c'
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS checked_domain
FROM pg_catalog.unnest(%(names)s::text[]) WITH ORDINALITY AS r(name, ord)
JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(r.name)
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
"""


@dataclass(frozen=True)
class Relation:
    """What one name in the probe turned out to be."""

    ordinal: int  # 1-based, in the order of SqlProbe.relations()
    schema: str
    name: str
    kind: str  # pg_class.relkind
    row_security: bool
    in_trusted_extension: bool
    user_written_cast: bool
    checked_domain: bool  # a column of a domain with a CHECK: filling the row type runs it

    @property
    def shown(self) -> str:
        return f"{self.schema}.{self.name}"


def relation_names(probe: SqlProbe) -> list[str]:
    """The probe's relation names as ``to_regclass`` reads them (quoted, as written)."""
    return [".".join(_quoted(p) for p in (rv.schemaname, rv.relname) if p) for rv in probe.relations()]


def refusal(relation: Relation, trusted_views: Iterable[str] = ()) -> str | None:
    """Why reading ``relation`` may run code a database user wrote, or ``None``."""
    where = relation.shown
    if relation.kind == "v" and relation.schema not in SYSTEM_SCHEMAS and not relation.in_trusted_extension \
            and where.lower() not in {v.lower() for v in trusted_views}:
        return (f"{where} is a view, and a view can call any function; "
                f"name it in {_VIEW_KEY} in the config if it only reads")
    if relation.kind == "f":
        return f"{where} is a foreign table: reading it runs a query on another server"
    if relation.row_security:
        return f"{where} has row-level security: its policies run expressions a database user wrote"
    if relation.user_written_cast:
        return f"{where} has a column whose type has a cast written in a procedural language"
    if relation.checked_domain:
        return (f"{where} has a column of a domain with a CHECK constraint, which can call any function "
                "when a value is made of that type")
    return None


def pinned(probe: SqlProbe, relations: Iterable[Relation]) -> str:
    """The probe with each resolved relation schema-qualified, for the pinned search_path."""
    nodes = probe.relations()
    for relation in relations:
        nodes[relation.ordinal - 1].schemaname = relation.schema
    return probe.render()


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
