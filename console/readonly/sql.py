"""What a SQL probe may be, decided by PostgreSQL's own parser (pglast).

Patterns over SQL text lose to the text: a comment ended by a carriage
return, dollar quoting, a quoted identifier. The parser sees exactly the
statement the server will see, so the rule reads the tree instead:

- one statement: SELECT (TABLE and VALUES are SELECTs), SHOW, or EXPLAIN
  without ANALYZE of a SELECT;
- nowhere inside it another kind of statement (a data-modifying CTE),
  SELECT INTO, or a locking clause;
- every function it calls is a built-in known to change nothing
  (:mod:`console.readonly.sql_functions`) or one the config names;
- every node is of a kind this module understands; anything new is refused
  rather than guessed at.

The same :func:`judge_sql` serves ``check`` and the run time; the run time
then pins names to ``pg_catalog`` and asks the catalog what syntax cannot
see (:mod:`console.readonly.sql_catalog`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from console.readonly.sql_functions import is_built_in_read

# Expression and clause nodes that compute, select or name, and call nothing
# by themselves. Function calls, operators, casts and relations are allowed
# here too, but each is looked at below.
_PLAIN_NODES = frozenset({
    "RawStmt", "SelectStmt", "ResTarget", "ColumnRef", "A_Star", "A_Const", "Integer", "Float", "String",
    "Boolean", "BitString", "A_Expr", "BoolExpr", "NullTest", "BooleanTest", "TypeCast", "TypeName",
    "FuncCall", "SubLink", "CaseExpr", "CaseWhen", "CoalesceExpr", "MinMaxExpr", "A_ArrayExpr",
    "A_Indirection", "A_Indices", "RowExpr", "SortBy", "WindowDef", "RangeVar", "RangeSubselect",
    "RangeFunction", "JoinExpr", "Alias", "WithClause", "CommonTableExpr", "CTESearchClause",
    "CTECycleClause", "GroupingSet", "GroupingFunc", "SQLValueFunction", "CollateClause", "NamedArgExpr",
    "ColumnDef",
})
_WRITES = {"InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "MergeStmt": "MERGE"}
_FUNCTION_KEY = "probes.sql_functions"


@dataclass
class SqlProbe:
    """A judged probe: its tree, and the names the run time must still pin."""

    statement: Any  # the pglast node of the one statement
    cte_names: set[str] = field(default_factory=set)

    def relations(self) -> list[Any]:
        """Every table-like name the statement reads (RangeVar nodes), CTE references left out."""
        return [n for n in _nodes(self.statement) if type(n).__name__ == "RangeVar"
                and not (n.schemaname is None and n.relname in self.cte_names)]

    def render(self) -> str:
        """The statement as SQL again: what runs is the tree that was judged."""
        from pglast.stream import RawStream

        return RawStream()(self.statement)


class _Refused(Exception):
    pass


def sql_is_read_only(text: str, functions: Iterable[str] = ()) -> str | None:
    """``None`` when ``text`` is one read-only statement, else why not.

    ``functions`` extends the built-in allow-list by name (the config's
    ``probes.sql_functions``): ``name`` for a ``pg_catalog`` function,
    ``schema.name`` for one the probe calls qualified.
    """
    judged = judge_sql(text, functions)
    return judged if isinstance(judged, str) else None


def judge_sql(text: str, functions: Iterable[str] = ()) -> SqlProbe | str:
    statement = parse_one(text)
    if isinstance(statement, str):
        return statement
    try:
        probe = _Judge(frozenset(f.lower() for f in functions)).top(statement)
    except _Refused as exc:
        return str(exc)
    return probe


def parsed_probe(text: str) -> SqlProbe | str:
    """``text`` parsed into a :class:`SqlProbe` without judging it (the run time pins any statement)."""
    statement = parse_one(text)
    if isinstance(statement, str):
        return statement
    ctes = {n.ctename for n in _nodes(statement) if type(n).__name__ == "CommonTableExpr"}
    return SqlProbe(statement, ctes)


def parse_one(text: str) -> Any:
    """The one statement in ``text`` (a pglast node), or why there is not exactly one."""
    import pglast

    if not text.strip():
        return "empty SQL"
    try:
        statements = pglast.parse_sql(text)
    except pglast.parser.ParseError as exc:
        return f"not valid SQL: {exc}"
    if not statements:
        return "empty SQL (only comments)"
    if len(statements) > 1:
        return "more than one SQL statement (a probe runs exactly one)"
    return statements[0].stmt


class _Judge:
    def __init__(self, functions: frozenset[str]) -> None:
        self.functions = functions
        self.cte_names: set[str] = set()

    def top(self, statement: Any) -> SqlProbe:
        kind = type(statement).__name__
        if kind == "VariableShowStmt":
            return SqlProbe(statement)
        if kind == "ExplainStmt":
            self.explain(statement)
            body = statement.query
        elif kind == "SelectStmt":
            body = statement
        else:
            raise _Refused(f"SQL probes must be SELECT, TABLE, VALUES, SHOW or EXPLAIN, not {_verb(kind)}")
        self.walk(body)
        return SqlProbe(statement, self.cte_names)

    @staticmethod
    def explain(statement: Any) -> None:
        for option in statement.options or ():
            if option.defname == "analyze":
                raise _Refused("EXPLAIN ANALYZE runs the statement; use EXPLAIN without ANALYZE")
        if type(statement.query).__name__ != "SelectStmt":
            raise _Refused(f"EXPLAIN of {_verb(type(statement.query).__name__)}: probes explain SELECT only")

    def walk(self, node: Any) -> None:
        if isinstance(node, (list, tuple)):
            for item in node:
                self.walk(item)
            return
        if not _is_node(node):
            return  # a scalar field: a name, a number, an enum
        kind = type(node).__name__
        if kind not in _PLAIN_NODES:
            self.unknown(node, kind)
        check = getattr(self, f"check_{kind}", None)
        if check is not None:
            check(node)
        for slot in node.__slots__:
            self.walk(getattr(node, slot, None))

    def unknown(self, node: Any, kind: str) -> None:
        if kind in _WRITES:
            raise _Refused(f"SQL probe may write: {_WRITES[kind]} inside the statement (probes are read-only)")
        if kind == "LockingClause":
            raise _Refused("SQL probe may write: FOR UPDATE/SHARE takes row locks (probes are read-only)")
        if kind == "IntoClause":
            raise _Refused("SQL probe may write: SELECT INTO creates a table (probes are read-only)")
        if kind == "ParamRef":
            raise _Refused("SQL probes take no $n parameters")
        if kind.endswith("Stmt"):
            raise _Refused(f"SQL probe may write: {_verb(kind)} inside the statement (probes are read-only)")
        raise _Refused(f"SQL probes may not use {kind} (only plain SELECT expressions are understood)")

    # ---- the nodes that reach beyond the statement ----------------------------------
    def check_SelectStmt(self, node: Any) -> None:
        if node.intoClause is not None:
            self.unknown(node.intoClause, "IntoClause")
        if node.lockingClause:
            self.unknown(node.lockingClause[0], "LockingClause")

    def check_CommonTableExpr(self, node: Any) -> None:
        self.cte_names.add(node.ctename)
        kind = type(node.ctequery).__name__
        if kind != "SelectStmt":
            raise _Refused(f"SQL probe may write: {_verb(kind)} in WITH {node.ctename} (probes are read-only)")

    def check_FuncCall(self, node: Any) -> None:
        self.function(_names(node.funcname))

    def check_A_Indirection(self, node: Any) -> None:
        # PostgreSQL reads (x).name as name(x) when name is a function:
        # (1).pg_terminate_backend signals backend 1. So a field name must be
        # a name a probe could call anyway.
        for part in node.indirection or ():
            if type(part).__name__ == "String":
                self.function([part.sval], how=f"(…).{part.sval}, which PostgreSQL may run as {part.sval}(…)")

    def check_A_Expr(self, node: Any) -> None:
        self.catalog_only(_names(node.name), "operator")

    def check_SubLink(self, node: Any) -> None:
        self.catalog_only(_names(node.operName or ()), "operator")

    def check_SortBy(self, node: Any) -> None:
        self.catalog_only(_names(node.useOp or ()), "operator")

    def check_TypeName(self, node: Any) -> None:
        if node.setof or node.pct_type:
            raise _Refused("SQL probes may not use SETOF or %TYPE")
        self.catalog_only(_names(node.names), "type")

    def check_RangeVar(self, node: Any) -> None:
        if node.catalogname:
            raise _Refused("SQL probes read the connected database only (no database.schema.table)")

    def function(self, names: list[str], how: str | None = None) -> None:
        dotted = ".".join(names).lower()
        if len(names) == 2 and names[0] == "pg_catalog":
            bare = names[1].lower()
        elif len(names) == 1:
            bare = names[0].lower()
        else:
            bare = None
        if (bare is not None and is_built_in_read(bare)) or dotted in self.functions or bare in self.functions:
            return
        shown = how or f"{dotted}()"
        raise _Refused(f"SQL probe calls {shown}: not a function known to only read "
                       f"(a probe calls read-only built-ins; name a harmless one in {_FUNCTION_KEY})")

    @staticmethod
    def catalog_only(names: list[str], what: str) -> None:
        if len(names) > 1 and names[0] != "pg_catalog":
            raise _Refused(f"SQL probe uses the {what} {'.'.join(names)}: a probe uses built-in "
                           f"{what}s only (pg_catalog)")


def _names(nodes: Iterable[Any]) -> list[str]:
    return [n.sval for n in nodes if type(n).__name__ == "String"]


def _nodes(node: Any) -> Iterable[Any]:
    """Every node of the tree, depth first."""
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from _nodes(item)
    elif _is_node(node):
        yield node
        for slot in node.__slots__:
            yield from _nodes(getattr(node, slot, None))


def _is_node(value: Any) -> bool:
    from pglast.ast import Node

    return isinstance(value, Node)


def _verb(kind: str) -> str:
    """``DeleteStmt`` -> ``DELETE``: the statement as an operator would name it."""
    words = {"VariableSetStmt": "SET", "DoStmt": "DO", "CallStmt": "CALL", "CopyStmt": "COPY",
             "TransactionStmt": "a transaction command", "AlterSystemStmt": "ALTER SYSTEM",
             "CreateTableAsStmt": "CREATE TABLE AS", "ExplainStmt": "EXPLAIN", "VacuumStmt": "VACUUM",
             "LockStmt": "LOCK", "NotifyStmt": "NOTIFY", "ListenStmt": "LISTEN"}
    if kind in words:
        return words[kind]
    if kind in _WRITES:
        return _WRITES[kind]
    name = kind.removesuffix("Stmt")
    out = "".join(f" {c}" if c.isupper() and i else c for i, c in enumerate(name)).upper()
    return out.strip() or kind
