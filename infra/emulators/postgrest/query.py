"""The read-side subset of PostgREST's URL grammar: select, filters, order, limit, offset.

Every identifier comes from the schema cache (an allow-list); values travel as parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from infra.emulators.postgrest.errors import PostgrestError
from infra.emulators.postgrest.schema_cache import Table

RESERVED = frozenset({"select", "order", "limit", "offset", "on_conflict", "columns", "apikey"})
_COMPARE = {
    "eq": "=",
    "neq": "<>",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "LIKE",
    "ilike": "ILIKE",
}
_IS_VALUES = {"null": "NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}


@dataclass
class ReadPlan:
    """What to select, where, in which order and how much."""

    columns: list[str]
    where: list[sql.Composable] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    order: list[sql.Composable] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0


def unknown_column(table: Table, column: str) -> PostgrestError:
    """The 42703 PostgREST passes through for a column the query names but the table lacks."""
    return PostgrestError(400, "42703", f"column {table.name}.{column} does not exist")


def _parse_error(what: str, detail: str) -> PostgrestError:
    return PostgrestError(400, "PGRST100", f'"failed to parse {what}" ({detail})', detail)


def known_column(table: Table, name: str) -> str:
    """name if the cache knows it, else 42703."""
    name = name.strip().strip('"')
    if name not in table.columns:
        raise unknown_column(table, name)
    return name


def parse_select(table: Table, select: str | None) -> list[str]:
    """`select=a,b` (or `*`) as cached column names."""
    if not select or select.strip() == "*":
        return list(table.columns)
    return [known_column(table, part) for part in select.split(",") if part.strip()]


def _split_list(text: str, filter_text: str) -> list[str]:
    if not (text.startswith("(") and text.endswith(")")):
        raise _parse_error("filter", filter_text)
    return [item.strip().strip('"') for item in text[1:-1].split(",") if item.strip()]


def parse_filter(table: Table, column: str, raw: str) -> tuple[sql.Composable, list[Any]]:
    """One `col=op.value` filter as a SQL condition and its parameters."""
    ident = sql.Identifier(known_column(table, column))
    negate = raw.startswith("not.")
    body = raw[4:] if negate else raw
    op, dot, value = body.partition(".")
    if not dot:
        raise _parse_error("filter", raw)
    params: list[Any] = []
    if op in _COMPARE:
        cond: sql.Composable = sql.SQL("{} {} %s").format(ident, sql.SQL(_COMPARE[op]))
        params.append(value.replace("*", "%") if op in ("like", "ilike") else value)
    elif op == "in":
        items = _split_list(value, raw)
        if not items:
            cond = sql.SQL("FALSE")
        else:
            marks = sql.SQL(", ").join(sql.Placeholder() for _ in items)
            cond = sql.SQL("{} IN ({})").format(ident, marks)
            params.extend(items)
    elif op == "is" and value.lower() in _IS_VALUES:
        cond = sql.SQL("{} IS {}").format(ident, sql.SQL(_IS_VALUES[value.lower()]))
    else:
        raise _parse_error("filter", raw)
    if negate:
        cond = sql.SQL("NOT ({})").format(cond)
    return cond, params


def parse_order(table: Table, order: str | None) -> list[sql.Composable]:
    """`order=a.desc,b.asc.nullslast`."""
    out: list[sql.Composable] = []
    for term in (order or "").split(","):
        if not term.strip():
            continue
        name, *mods = term.strip().split(".")
        parts: list[sql.Composable] = [sql.Identifier(known_column(table, name))]
        for mod in mods:
            words = {"asc": "ASC", "desc": "DESC", "nullsfirst": "NULLS FIRST"}
            words["nullslast"] = "NULLS LAST"
            if mod not in words:
                raise _parse_error("order", term)
            parts.append(sql.SQL(words[mod]))
        out.append(sql.SQL(" ").join(parts))
    return out


def _non_negative(args: Mapping[str, str], name: str) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise _parse_error(name, raw)
    return int(raw)


def parse_filters(table: Table, args: Mapping[str, list[str]]) -> ReadPlan:
    """Every non-reserved query parameter is a column filter."""
    plan = ReadPlan(columns=[])
    for column, values in args.items():
        if column in RESERVED:
            continue
        for raw in values:
            cond, params = parse_filter(table, column, raw)
            plan.where.append(cond)
            plan.params.extend(params)
    return plan


def parse_read(table: Table, args: Mapping[str, list[str]]) -> ReadPlan:
    """A GET's select, filters, order, limit and offset."""
    first = {key: values[0] for key, values in args.items() if values}
    plan = parse_filters(table, args)
    plan.columns = parse_select(table, first.get("select"))
    plan.order = parse_order(table, first.get("order"))
    plan.limit = _non_negative(first, "limit")
    plan.offset = _non_negative(first, "offset") or 0
    return plan


def where_clause(plan: ReadPlan) -> sql.Composable:
    """` WHERE a AND b`, or nothing."""
    if not plan.where:
        return sql.SQL("")
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(plan.where)


def select_statement(table: Table, plan: ReadPlan) -> sql.Composed:
    """The SELECT, wrapped so Postgres renders the JSON array like PostgREST does."""
    inner = sql.SQL("SELECT {cols} FROM {table}{where}").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in plan.columns),
        table=sql.Identifier("public", table.name),
        where=where_clause(plan),
    )
    if plan.order:
        inner += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(plan.order)
    if plan.limit is not None:
        inner += sql.SQL(" LIMIT {}").format(sql.Literal(plan.limit))
    if plan.offset:
        inner += sql.SQL(" OFFSET {}").format(sql.Literal(plan.offset))
    return sql.SQL(
        "SELECT COALESCE(json_agg(_r), '[]')::text AS body, count(*) AS n FROM ({}) AS _r"
    ).format(inner)


def count_statement(table: Table, plan: ReadPlan) -> sql.Composed:
    """The exact count behind `Prefer: count=exact`."""
    return sql.SQL("SELECT count(*) AS n FROM {}{}").format(
        sql.Identifier("public", table.name), where_clause(plan)
    )
