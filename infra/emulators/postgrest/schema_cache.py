"""PostgREST's schema cache: the tables, columns and functions it knows about.

Loaded at start and replaced only on `NOTIFY pgrst, 'reload schema'`: between the two, a
column added in the database is unknown here (PGRST204) and absent from the OpenAPI root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from infra.emulators.postgrest._sqlfile import query
from infra.emulators.postgrest.auth import API_ROLES

EXPOSED_SCHEMA = "public"


@dataclass(frozen=True)
class Column:
    """One column as the cache saw it (the fields PostgREST's schema cache keeps)."""

    name: str
    pg_type: str  # nominal type with its modifier (`numeric(12,2)`): types json_to_recordset
    data_type: str  # what the OpenAPI `format` says (`numeric`, `public.my_enum`)
    nullable: bool
    default: str | None  # the default expression's text, as pg_get_expr renders it
    is_pk: bool
    max_length: int | None = None
    description: str | None = None
    enum_values: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        """OpenAPI `required`: every NOT NULL column, with a default or not (OpenAPI.hs:
        `filter (not . colNullable)`)."""
        return not self.nullable


@dataclass
class Table:
    """One table or view with its columns and the roles allowed to touch it."""

    name: str
    kind: str
    description: str | None = None
    writable: bool = True  # insertable, updatable or deletable (relkind, or an updatable view)
    columns: dict[str, Column] = field(default_factory=dict)
    privileges: dict[str, set[str]] = field(default_factory=dict)  # role -> {select, ...}

    @property
    def primary_key(self) -> list[str]:
        """Primary key columns in table order."""
        return [c.name for c in self.columns.values() if c.is_pk]

    def visible_to(self, role: str) -> bool:
        """PostgREST lists a table in the OpenAPI root when the role has any privilege."""
        return bool(self.privileges.get(role))


@dataclass(frozen=True)
class Function:
    """A function exposed as `/rpc/<name>`."""

    name: str
    nargs: int
    returns: str
    roles: frozenset[str]
    description: str | None = None


@dataclass(frozen=True)
class SchemaCache:
    """An immutable snapshot; the state swaps in a new one on reload."""

    tables: dict[str, Table]
    functions: dict[str, Function]

    def table(self, name: str) -> Table | None:
        """The cached table, or None (PGRST205)."""
        return self.tables.get(name)


def load_schema_cache(conn: psycopg.Connection[Any]) -> SchemaCache:
    """Read the exposed schema from the catalogs (in one transaction, search path emptied)."""
    with conn.transaction():
        conn.execute(query("cache_search_path"))
        return _read_catalogs(conn)


def _read_catalogs(conn: psycopg.Connection[Any]) -> SchemaCache:
    params = {"schema": EXPOSED_SCHEMA, "roles": list(API_ROLES)}
    tables = {
        row["name"]: Table(row["name"], row["kind"], row["description"], row["writable"])
        for row in conn.execute(query("cache_tables"), params).fetchall()
    }
    for row in conn.execute(query("cache_columns"), params).fetchall():
        table = tables.get(row["table_name"])
        if table is not None and row["name"] not in table.columns:
            table.columns[row["name"]] = Column(
                row["name"],
                row["pg_type"],
                row["data_type"],
                row["nullable"],
                row["column_default"],
                row["is_pk"],
                row["max_length"],
                row["description"],
                tuple(row["enum_values"]),
            )
    for row in conn.execute(query("cache_table_privileges"), params).fetchall():
        table = tables.get(row["table_name"])
        if table is not None:
            granted = {p for p in ("select", "insert", "update", "delete") if row[f"can_{p}"]}
            table.privileges[row["role"]] = granted
    functions = {
        row["name"]: Function(
            row["name"],
            row["nargs"],
            row["returns"],
            frozenset(row["roles"] or ()),
            row["description"],
        )
        for row in conn.execute(query("cache_functions"), params).fetchall()
    }
    return SchemaCache(tables, functions)
