"""POST (insert / bulk upsert), PATCH and DELETE as PostgREST runs them.

A POST becomes `INSERT ... SELECT ... FROM json_to_recordset($body) AS _(col type, ...)`,
one statement for the whole batch (the body travels as one parameter), inside the request's
transaction: one bad row rejects the batch, as with the real PostgREST (v10 and later; the
column types come from the schema cache, so a stale cache keeps the old types).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import postgres, sql
from psycopg.adapt import Dumper

from infra.emulators.postgrest.errors import PostgrestError, column_not_found, invalid_body
from infra.emulators.postgrest.query import ReadPlan, parse_filters, where_clause
from infra.emulators.postgrest.schema_cache import Table

_ACCEPTED = {
    "resolution": ("merge-duplicates", "ignore-duplicates"),
    "missing": ("default", "null"),
    "return": ("minimal", "headers-only", "representation"),
    "count": ("exact", "planned", "estimated"),
}
# The order PostgREST writes Preference-Applied in (Preferences.hs, prefAppliedHeader).
_APPLIED_ORDER = ("resolution", "missing", "return", "count")


@dataclass(frozen=True)
class Prefer:
    """The `Prefer` preferences the emulator honours (the first value of each wins)."""

    given: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, headers: list[str]) -> Prefer:
        """Parse every Prefer header; unknown or malformed preferences are ignored."""
        values: dict[str, str] = {}
        for header in headers:
            for item in header.split(","):
                key, _, value = item.strip().partition("=")
                if value in _ACCEPTED.get(key, ()) and key not in values:
                    values[key] = value
        return cls(values)

    @property
    def resolution(self) -> str | None:
        """merge-duplicates | ignore-duplicates | None."""
        return self.given.get("resolution")

    @property
    def returning(self) -> str:
        """minimal (the default) | headers-only | representation."""
        return self.given.get("return", "minimal")

    @property
    def missing(self) -> str | None:
        """default | null | None."""
        return self.given.get("missing")

    @property
    def count(self) -> str | None:
        """exact | planned | estimated | None (the emulator counts exactly for all three)."""
        return self.given.get("count")

    def applied(self, *keys: str) -> str | None:
        """`Preference-Applied`: the given preferences among `keys`, in PostgREST's order."""
        values = [f"{k}={self.given[k]}" for k in _APPLIED_ORDER if k in keys and k in self.given]
        return ", ".join(values) or None


class RawBody:
    """A request body handed to Postgres as the bytes that arrived, as PostgREST does."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class RawBodyDumper(Dumper):
    """Sends a RawBody untouched as a json parameter (no decoding, no re-encoding)."""

    oid = postgres.types["json"].oid

    def dump(self, obj: RawBody) -> bytes:
        return obj.data


# Once, for every connection: the type is ours, so nothing else is dumped differently.
psycopg.adapters.register_dumper(RawBody, RawBodyDumper)


@dataclass
class InsertGroup:
    """Rows sharing the set of columns actually inserted (one statement)."""

    present: list[str]
    body: str | RawBody


@dataclass
class InsertPlan:
    """A validated POST: columns, rows grouped for INSERT, conflict handling."""

    columns: list[str]
    groups: list[InsertGroup] = field(default_factory=list)
    row_ids: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    conflict: list[str] = field(default_factory=list)


def parse_rows(raw: bytes) -> tuple[list[dict[str, Any]], bool]:
    """The body as a list of objects, and whether it was already a JSON array."""
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError as exc:
        raise invalid_body() from exc
    if isinstance(body, dict):
        return [body], False
    if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
        raise invalid_body()
    return body, True


def _column_list(table: Table, raw: str) -> list[str]:
    names = [n.strip().strip('"') for n in raw.split(",") if n.strip()]
    for name in names:
        if name not in table.columns:
            raise column_not_found(table.name, name)
    return names


def _payload_columns(
    table: Table, rows: list[dict[str, Any]], columns_arg: str | None
) -> list[str]:
    """`columns=` when given, else the (identical) key set of every row."""
    if columns_arg is not None:
        return _column_list(table, columns_arg)
    if not rows:
        return []
    keys = list(rows[0])
    first = set(keys)
    if any(set(row) != first for row in rows[1:]):
        raise invalid_body("All object keys must match")
    for key in keys:
        if key not in table.columns:
            raise column_not_found(table.name, key)
    return keys


def _unparsed_plan(table: Table, raw: bytes, args: Mapping[str, str], prefer: Prefer) -> InsertPlan:
    """With `columns=`, PostgREST hands the body to Postgres unparsed (its fast path): bytes
    that are not UTF-8 are refused there (22021), and so is a NUL byte, which libpq could
    not even carry in a text parameter."""
    body = raw.strip()
    if not body or body[:1] not in (b"[", b"{"):
        raise invalid_body()
    if b"\x00" in body:
        raise PostgrestError(400, "22021", 'invalid byte sequence for encoding "UTF8": 0x00')
    if body[:1] == b"{":
        body = b"[" + body + b"]"
    plan = InsertPlan(columns=_column_list(table, args["columns"]))
    plan.groups.append(InsertGroup(plan.columns, RawBody(body)))
    if prefer.resolution:
        conflict = args.get("on_conflict")
        plan.conflict = _column_list(table, conflict) if conflict else table.primary_key
    return plan


def plan_insert(
    table: Table, raw: bytes, args: Mapping[str, str], prefer: Prefer, *, need_rows: bool = True
) -> InsertPlan:
    """Validate a POST body against the schema cache and group its rows.

    `need_rows=False` allows the unparsed fast path when `columns=` is given (invalid JSON
    then fails in Postgres with 22P02, as with the real PostgREST).
    """
    if not need_rows and "columns" in args and prefer.missing != "default":
        return _unparsed_plan(table, raw, args, prefer)
    rows, is_array = parse_rows(raw)
    columns = _payload_columns(table, rows, args.get("columns"))
    if rows and not columns:
        raise invalid_body()
    plan = InsertPlan(columns=columns, rows=rows)
    key = (table.primary_key or ["id"])[0]
    plan.row_ids = [str(row.get(key)) for row in rows]
    if prefer.resolution:
        conflict = args.get("on_conflict")
        plan.conflict = _column_list(table, conflict) if conflict else table.primary_key
    if not rows:
        return plan
    if prefer.missing != "default":
        body = raw.decode() if is_array else json.dumps(rows)
        plan.groups.append(InsertGroup(columns, body))
        return plan
    grouped: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(tuple(c for c in columns if c in row), []).append(row)
    for present, members in grouped.items():
        plan.groups.append(InsertGroup(list(present), json.dumps(members)))
    return plan


def _idents(names: list[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _typed(table: Table, names: list[str]) -> sql.Composed:
    """`"col" type, ...` for json_to_record(set), with the types the schema cache knows."""
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(table.columns[n].pg_type)) for n in names
    )


def insert_statement(
    table: Table, plan: InsertPlan, group: InsertGroup, prefer: Prefer
) -> sql.Composed:
    """INSERT ... SELECT FROM json_to_recordset, with ON CONFLICT, counted like PostgREST:
    one row `(n, inserted, body)`, `inserted` telling new rows from merged ones (xmax = 0)
    and `body` the rows for return=representation."""
    typed = _typed(table, group.present)
    stmt = sql.SQL(
        "INSERT INTO {t} AS _t ({cols}) SELECT {cols}"
        " FROM json_to_recordset(%(body)s::json) AS _({typed})"
    ).format(t=sql.Identifier("public", table.name), cols=_idents(group.present), typed=typed)
    # Without a primary key or on_conflict there is nothing to resolve on: a plain insert.
    if plan.conflict and prefer.resolution == "ignore-duplicates":
        stmt += sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(_idents(plan.conflict))
    elif plan.conflict and prefer.resolution == "merge-duplicates":
        # EXCLUDED holds the default for a column this group omitted (missing=default).
        sets = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in plan.columns
        )
        stmt += sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(_idents(plan.conflict), sets)
    returning, body = "(_t.xmax = 0) AS _inserted", "NULL"
    if prefer.returning == "representation":
        returning += ", to_json(_t) AS _row"
        body = "COALESCE(json_agg(_row), '[]')::text"
    return sql.SQL(
        "WITH _w AS ({} RETURNING {}) SELECT count(*) AS n,"
        " count(*) FILTER (WHERE _inserted) AS inserted, {} AS body FROM _w"
    ).format(stmt, sql.SQL(returning), sql.SQL(body))


def _returning(stmt: sql.Composed, table: Table, prefer: Prefer) -> sql.Composed:
    if prefer.returning != "representation":
        return stmt
    return sql.SQL("WITH _w AS ({} RETURNING {}) SELECT COALESCE(json_agg(_w), '[]')::text AS body, count(*) AS n FROM _w").format(  # noqa: E501
        stmt, _idents(list(table.columns))
    )  # fmt: skip


def update_statement(
    table: Table, raw: bytes, args: Mapping[str, list[str]], prefer: Prefer
) -> tuple[sql.Composed, list[Any]]:
    """PATCH: `UPDATE t SET (cols) = (SELECT cols FROM json_to_record(...)) WHERE ...`;
    Supabase's safeupdate refuses an UPDATE without WHERE, as it does a DELETE."""
    rows, is_array = parse_rows(raw)
    if is_array or not rows[0]:
        raise invalid_body()
    columns = _payload_columns(table, rows, None)
    plan = parse_filters(table, args)
    if not plan.where:
        raise PostgrestError(400, "21000", "UPDATE requires a WHERE clause")
    target = "({cols})" if len(columns) > 1 else "{cols}"  # one column: no row-constructor
    template = "UPDATE {t} SET " + target + " = (SELECT {cols} FROM json_to_record(%s::json)"
    stmt = sql.SQL(template + " AS _({typed}))").format(
        t=sql.Identifier("public", table.name), cols=_idents(columns), typed=_typed(table, columns)
    )
    stmt += where_clause(plan)
    return _returning(stmt, table, prefer), [json.dumps(rows[0]), *plan.params]


def delete_statement(
    table: Table, args: Mapping[str, list[str]], prefer: Prefer
) -> tuple[sql.Composed, list[Any]]:
    """DELETE with filters; Supabase's safeupdate refuses a DELETE without WHERE."""
    plan: ReadPlan = parse_filters(table, args)
    if not plan.where:
        raise PostgrestError(400, "21000", "DELETE requires a WHERE clause")
    stmt = sql.SQL("DELETE FROM {}").format(sql.Identifier("public", table.name))
    stmt += where_clause(plan)
    return _returning(stmt, table, prefer), plan.params
