"""The OpenAPI (Swagger 2.0) root document PostgREST serves at `GET /rest/v1/`."""

from __future__ import annotations

from typing import Any

from infra.emulators.postgrest.schema_cache import Column, SchemaCache, Table

POSTGREST_VERSION = "12.2.3"
_INTEGER_TYPES = {"smallint", "integer", "bigint"}


def property_for(column: Column) -> dict[str, Any]:
    """A column as PostgREST describes it: JSON type plus the Postgres type as format."""
    prop: dict[str, Any] = {"format": column.pg_type}
    if column.pg_type in _INTEGER_TYPES:
        prop["type"] = "integer"
    elif column.category == "N":
        prop["type"] = "number"
    elif column.category == "B":
        prop["type"] = "boolean"
    elif column.category == "A":
        prop["type"] = "array"
        prop["items"] = {"type": "string"}
    elif column.pg_type not in {"json", "jsonb"}:
        prop["type"] = "string"
    notes = []
    if column.description:
        notes.append(column.description)
    if column.is_pk:
        notes.append("Note:\nThis is a Primary Key.<pk/>")
    if notes:
        prop["description"] = "\n\n".join(notes)
    return prop


def definition_for(table: Table) -> dict[str, Any]:
    """`definitions.<table>`."""
    out: dict[str, Any] = {
        "properties": {name: property_for(col) for name, col in table.columns.items()},
        "type": "object",
    }
    required = [col.name for col in table.columns.values() if col.required]
    if required:
        out["required"] = required
    if table.description:
        out["description"] = table.description
    return out


def _table_path(table: Table, role: str) -> dict[str, Any]:
    ref = {"$ref": f"#/definitions/{table.name}"}
    ok = {"description": "OK", "schema": {"items": ref, "type": "array"}}
    methods = {
        "select": ("get", {"200": ok, "206": {"description": "Partial Content"}}),
        "insert": ("post", {"201": {"description": "Created"}}),
        "update": ("patch", {"204": {"description": "No Content"}}),
        "delete": ("delete", {"204": {"description": "No Content"}}),
    }
    granted = table.privileges.get(role, set())
    return {
        verb: {"tags": [table.name], "responses": responses}
        for privilege, (verb, responses) in methods.items()
        if privilege in granted
    }


def document(cache: SchemaCache, role: str, host: str) -> dict[str, Any]:
    """The Swagger 2.0 document as seen by `role`: only what it may touch."""
    tables = [t for t in cache.tables.values() if t.visible_to(role)]
    paths: dict[str, Any] = {
        "/": {"get": {"tags": ["Introspection"], "summary": "OpenAPI description (this document)",
                      "produces": ["application/openapi+json", "application/json"],
                      "responses": {"200": {"description": "OK"}}}},
    }  # fmt: skip
    for table in tables:
        paths[f"/{table.name}"] = _table_path(table, role)
    for fn in cache.functions.values():
        if role in fn.roles:
            paths[f"/rpc/{fn.name}"] = {
                "post": {"tags": ["(rpc) " + fn.name], "responses": {"200": {"description": "OK"}}}
            }
    return {
        "swagger": "2.0",
        "info": {
            "description": "",
            "title": "standard public schema",
            "version": POSTGREST_VERSION,
        },
        "host": host,
        "basePath": "/rest/v1",
        "schemes": ["http"],
        "consumes": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "produces": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "paths": paths,
        "definitions": {t.name: definition_for(t) for t in tables},
    }
