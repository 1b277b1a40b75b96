"""Validate the remote schema against the mapped local fields; reload the remote cache.

The remote's OpenAPI root lists `definitions.leads.properties.<col>.format` (the Postgres
type), `default` and `required`. PostgREST's `required` is every NOT NULL column, defaults
included, so a column needs a mapped value only when it is required *and* has no default.
The columns are cached per tenant for a few minutes in the database, so every function
instance shares them, and a reload drops them.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from shared.db import Conn
from shared.gestao.mapping import LOCAL_FIELDS, SYNC_SOURCE_COLUMN
from shared.gestao.remote import TABLE, RemoteClient, Target, require_ok
from shared.sqlfiles import query

# Postgres type -> kind, for compatibility checks.
_KINDS = {
    "smallint": "integer", "integer": "integer", "bigint": "integer",
    "numeric": "number", "real": "number", "double precision": "number",
    "boolean": "boolean", "date": "date",
    "timestamp with time zone": "timestamp", "timestamp without time zone": "timestamp",
    "text": "text", "character varying": "text", "character": "text", "citext": "text",
    "json": "json", "jsonb": "json", "uuid": "uuid",
}  # fmt: skip
# Remote kind -> local kinds it accepts without loss or failure.
_ACCEPTS = {
    "text": {"text", "integer", "number", "boolean", "date", "timestamp"},
    "integer": {"integer"},
    "number": {"integer", "number"},
    "boolean": {"boolean"},
    "date": {"date"},
    "timestamp": {"timestamp", "date"},
    "json": {"json"},
}


# Decimal digits a numeric type holds exactly (a value of a type with more may not fit or
# be rounded: an id above 2^31 in an integer, a coordinate in a real).
_EXACT_DIGITS = {"smallint": 4, "integer": 9, "bigint": 18, "real": 6, "double precision": 15}
_NUMERIC = re.compile(r"numeric\s*\(\s*(\d+)")


def exact_digits(pg_type: str) -> float:
    """`integer` -> 9, `numeric(12,2)` -> 12, `numeric` -> unbounded."""
    base = pg_type.split("(", 1)[0].strip().lower()
    if base in _EXACT_DIGITS:
        return _EXACT_DIGITS[base]
    precision = _NUMERIC.match(pg_type.strip().lower())
    return int(precision.group(1)) if precision else math.inf


def fits(local_type: str, remote_type: str) -> bool:
    """Whether every value of the local column reaches the remote column unchanged."""
    local_kind, remote_kind = kind_of(local_type), kind_of(remote_type)
    if local_kind not in _ACCEPTS.get(remote_kind, set()):
        return False
    numeric = {"integer", "number"}
    if local_kind in numeric and remote_kind in numeric:
        return exact_digits(local_type) <= exact_digits(remote_type)
    return True


def kind_of(pg_type: str) -> str:
    """`numeric(12,2)` -> number, `character varying(80)` -> text, unknown -> the type."""
    base = pg_type.split("(", 1)[0].strip().lower()
    return _KINDS.get(base, "array" if base.endswith("[]") else base)


CACHE_FORMAT = 2  # 2: columns carry has_default; older cache entries are fetched again
_DEFAULT_ALWAYS_SHOWN = frozenset({"string", "boolean"})


def has_default(prop: Mapping[str, Any]) -> bool | None:
    """Whether a remote column has a default, as far as PostgREST's document can tell.

    True when the property shows a `default`. PostgREST shows a default only when its text
    reads as JSON (OpenAPI.hs `parseDefault`): for string-typed columns it wraps the text in
    quotes, so a string (or boolean) column without `default` has none -> False. For json,
    jsonb, arrays and numbers a default such as `'{}'::jsonb`, `'{}'::text[]`,
    `nextval('s')` or `'-1'::integer` is left out -> None (cannot tell).
    """
    if "default" in prop:
        return True
    kind = prop.get("type")
    return False if isinstance(kind, str) and kind in _DEFAULT_ALWAYS_SHOWN else None


def needs_value(column: Mapping[str, Any]) -> bool:
    """A NOT NULL column known to have no default: an insert must give it a value."""
    return bool(column.get("required")) and column.get("has_default", False) is False


def columns_from_openapi(doc: Any) -> dict[str, dict[str, Any]] | None:
    """`{column: {"format", "required", "has_default"}}` of remote leads, or None when the
    table is absent."""
    definitions = doc.get("definitions") if isinstance(doc, dict) else None
    leads = definitions.get(TABLE) if isinstance(definitions, dict) else None
    if not isinstance(leads, dict):
        return None
    # The remote's document is input: a malformed part reads as absent, never as a crash.
    listed = leads.get("required")
    required = {r for r in listed if isinstance(r, str)} if isinstance(listed, list) else set()
    props = leads.get("properties")
    if not isinstance(props, dict):
        props = {}
    return {
        str(name): {
            "format": str(p.get("format") or p.get("type") or ""),
            "required": name in required,
            "has_default": has_default(p),
        }
        for name, p in props.items()
        if isinstance(p, dict)
    }


@dataclass
class SchemaReport:
    """What validate-gestao-scouter-schema answers."""

    valid: bool
    table_present: bool
    missing_columns: list[str] = field(default_factory=list)
    type_mismatches: list[dict[str, str]] = field(default_factory=list)
    unmapped_required: list[str] = field(default_factory=list)
    # NOT NULL, unmapped, and a default PostgREST's document cannot show (jsonb, arrays,
    # numbers): not blocking; the config check's probe row shows whether inserts work.
    unverified_defaults: list[str] = field(default_factory=list)
    suggested_sql: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _ident(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def _target_type(local_field: str) -> str:
    pg_type = LOCAL_FIELDS[local_field]
    return "timestamptz" if pg_type == "timestamp with time zone" else pg_type


def compare(mapping: Mapping[str, str], columns: dict[str, dict[str, Any]] | None) -> SchemaReport:
    """The mapped local fields against the remote columns, with SQL that would fix them."""
    wanted = [*mapping.items(), (SYNC_SOURCE_COLUMN, SYNC_SOURCE_COLUMN)]
    if columns is None:
        return SchemaReport(
            False, False, [r for _, r in wanted], suggested_sql=_create_sql(mapping)
        )
    report = SchemaReport(True, True)
    statements: list[str] = []
    table = f"public.{_ident(TABLE)}"
    for local, remote in wanted:
        col_type = "text" if local == SYNC_SOURCE_COLUMN else _target_type(local)
        local_type = "text" if local == SYNC_SOURCE_COLUMN else LOCAL_FIELDS[local]
        if remote not in columns:
            report.missing_columns.append(remote)
            statements.append(
                f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {_ident(remote)} {col_type};"
            )
            continue
        remote_format = columns[remote]["format"]
        if not fits(local_type, remote_format):
            report.type_mismatches.append(
                {"local_field": local, "remote_column": remote,
                 "local_type": LOCAL_FIELDS.get(local, "text"), "remote_type": remote_format}
            )  # fmt: skip
            col = _ident(remote)
            statements.append(
                f"ALTER TABLE {table} ALTER COLUMN {col} TYPE {col_type} USING {col}::{col_type};"
            )
    statements.extend(_check_unmapped(report, columns, {remote for _, remote in wanted}))
    report.valid = not (
        report.missing_columns or report.type_mismatches or report.unmapped_required
    )
    if statements:
        statements.append("-- then reload the schema cache (reload-gestao-scouter-schema-cache)")
    report.suggested_sql = "\n".join(statements)
    return report


def _check_unmapped(
    report: SchemaReport, columns: dict[str, dict[str, Any]], mapped: set[str]
) -> list[str]:
    """Report the NOT NULL columns the export leaves out. Only those without a default
    block, and only they get SQL: Postgres fills in the others, nothing is to be dropped."""
    unmapped = {c: v for c, v in columns.items() if v["required"] and c not in mapped}
    report.unmapped_required = sorted(c for c, v in unmapped.items() if needs_value(v))
    report.unverified_defaults = sorted(
        c for c, v in unmapped.items() if v.get("has_default", False) is None
    )
    table = f"public.{_ident(TABLE)}"
    return [
        f"ALTER TABLE {table} ALTER COLUMN {_ident(col)} DROP NOT NULL;"
        for col in report.unmapped_required
    ]


def _create_sql(mapping: Mapping[str, str]) -> str:
    cols = [f"  {_ident(remote)} {_target_type(local)}" for local, remote in mapping.items()]
    cols[list(mapping).index("id")] += " PRIMARY KEY"
    cols.append(f"  {_ident(SYNC_SOURCE_COLUMN)} text")
    body = ",\n".join(cols)
    return (
        f"CREATE TABLE public.{_ident(TABLE)} (\n{body}\n);\n"
        f"ALTER TABLE public.{_ident(TABLE)} ENABLE ROW LEVEL SECURITY;\n"
        f"CREATE POLICY service_role_full_access_leads ON public.{_ident(TABLE)}\n"
        "  FOR ALL TO service_role USING (true) WITH CHECK (true);\n"
        "-- then reload the schema cache (reload-gestao-scouter-schema-cache)"
    )


def fetch_columns(target: Target, client: RemoteClient) -> dict[str, dict[str, Any]] | None:
    """Read the remote OpenAPI document now."""
    answer = require_ok(client.openapi(), "the schema request", client.secrets)
    return columns_from_openapi(answer.body)


def cached_columns(
    conn: Conn, tenant_id: UUID, client: RemoteClient, *, max_age_s: float
) -> dict[str, dict[str, Any]] | None:
    """The remote columns from the shared cache, fetched (and stored) when stale."""
    params = {
        "tenant_id": tenant_id,
        "project_url": client.target.project_url,
        "max_age_s": max_age_s,
    }
    row = conn.execute(query("gestao", "get_schema_cache"), params).fetchone()
    if row is not None:
        cached = row["columns"]
        if isinstance(cached, dict) and cached.get("format") == CACHE_FORMAT:
            return cached.get("columns")
    columns = fetch_columns(client.target, client)
    store_cache(conn, tenant_id, client.target.project_url, columns)
    return columns


def store_cache(
    conn: Conn, tenant_id: UUID, project_url: str, columns: dict[str, dict[str, Any]] | None
) -> None:
    """Remember the remote columns for the next few minutes."""
    conn.execute(
        query("gestao", "put_schema_cache"),
        {
            "tenant_id": tenant_id,
            "project_url": project_url,
            "columns": Jsonb({"format": CACHE_FORMAT, "columns": columns}),
        },
    )


def drop_cache(conn: Conn, tenant_id: UUID) -> None:
    """Forget the cached remote schema (a reload changed it)."""
    conn.execute(query("gestao", "drop_schema_cache"), {"tenant_id": tenant_id})


def wait_for_reload(
    client: RemoteClient,
    mapping: Mapping[str, str],
    before: dict[str, dict[str, Any]] | None,
    wait_s: float,
) -> tuple[dict[str, dict[str, Any]] | None, SchemaReport]:
    """After the reload RPC: poll the OpenAPI until it changed or validates (the remote
    reloads asynchronously), up to wait_s."""
    deadline = time.monotonic() + wait_s
    while True:
        columns = fetch_columns(client.target, client)
        report = compare(mapping, columns)
        if report.valid or columns != before or time.monotonic() >= deadline:
            return columns, report
        time.sleep(0.2)
