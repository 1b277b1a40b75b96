"""The OpenAPI (Swagger 2.0) root document PostgREST serves at `GET /rest/v1/`.

Mirrors src/PostgREST/Response/OpenAPI.hs (v10-v12): `required` lists every NOT NULL
column (defaults included), `format` is the schema cache's data type, `type` comes from
`toSwaggerType`, and `default` is the default expression when it reads as JSON once
string-typed columns are unwrapped (`parseDefault`) - so `'{}'::jsonb`, `'{}'::text[]`,
`nextval(...)` or `'-1'::integer` give no `default` at all.
"""

from __future__ import annotations

import json
from typing import Any

from infra.emulators.postgrest.schema_cache import Column, SchemaCache, Table

POSTGREST_VERSION = "12.2.3"
CONTENT_TYPE = "application/openapi+json; charset=utf-8"
DOCS_URL = "https://postgrest.org/en/v12/references/api.html"
_SWAGGER_TYPES = {
    "character varying": "string", "character": "string", "text": "string",
    "boolean": "boolean",
    "smallint": "integer", "integer": "integer", "bigint": "integer",
    "numeric": "number", "real": "number", "double precision": "number",
    "json": None, "jsonb": None,
}  # fmt: skip


def swagger_type(pg_type: str) -> str | None:
    """`toSwaggerType`: known scalars, `[]` -> array, json(b) -> none, anything else string."""
    if pg_type in _SWAGGER_TYPES:
        return _SWAGGER_TYPES[pg_type]
    return "array" if pg_type.endswith("[]") else "string"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")  # Aeson refuses NaN / Infinity


def parse_default(pg_type: str, expression: str) -> tuple[bool, Any]:
    """`parseDefault` then JSON decoding: (shown, value). String-typed columns drop a
    `::type` suffix and surrounding quotes and are read as a JSON string; other columns
    must already be JSON (`false`, `42`, `1.50`)."""
    text = expression
    if swagger_type(pg_type) == "string":
        suffix = f"::{pg_type}"
        if text.endswith(suffix):
            text = text[: -len(suffix)].strip("'")
        text = f'"{text}"'
    try:
        return True, json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return False, None


def _description(column: Column) -> str | None:
    """The column comment, then `Note:` and the primary-key marker (foreign keys: none here)."""
    if not column.is_pk:
        return column.description
    note = "Note:\nThis is a Primary Key.<pk/>"
    return f"{column.description}\n\n{note}" if column.description else note


def property_for(column: Column) -> dict[str, Any]:
    """A column as PostgREST describes it."""
    prop: dict[str, Any] = {}
    if column.default is not None:
        shown, value = parse_default(column.data_type, column.default)
        if shown:
            prop["default"] = value
    description = _description(column)
    if description is not None:
        prop["description"] = description
    if column.enum_values:
        prop["enum"] = list(column.enum_values)
    prop["format"] = column.data_type
    if column.max_length is not None:
        prop["maxLength"] = column.max_length
    kind = swagger_type(column.data_type)
    if kind is not None:
        prop["type"] = kind
    if kind == "array":
        item = swagger_type(column.data_type[:-2])
        prop["items"] = {"type": item} if item is not None else {}
    return prop


def definition_for(table: Table) -> dict[str, Any]:
    """`definitions.<table>`: properties in column order, `required` = NOT NULL columns."""
    out: dict[str, Any] = {}
    if table.description:
        out["description"] = table.description
    out["properties"] = {name: property_for(col) for name, col in table.columns.items()}
    required = [col.name for col in table.columns.values() if col.required]
    if required:
        out["required"] = required
    out["type"] = "object"
    return out


def _table_path(table: Table) -> dict[str, Any]:
    """`makePathItem`: get always; post, patch and delete when the relation is writable
    (whatever the role's grants: the document is filtered by table, not by verb)."""
    ref = {"$ref": f"#/definitions/{table.name}"}
    ok = {"description": "OK", "schema": {"items": ref, "type": "array"}}
    verbs: dict[str, dict[str, Any]] = {
        "get": {"200": ok, "206": {"description": "Partial Content"}},
    }
    if table.writable:
        verbs["post"] = {"201": {"description": "Created"}}
        verbs["patch"] = {"204": {"description": "No Content"}}
        verbs["delete"] = {"204": {"description": "No Content"}}
    return {verb: {"tags": [table.name], "responses": r} for verb, r in verbs.items()}


def document(cache: SchemaCache, role: str, host: str) -> dict[str, Any]:
    """The Swagger 2.0 document as seen by `role`: only the tables and functions it may use."""
    tables = [t for t in cache.tables.values() if t.visible_to(role)]
    paths: dict[str, Any] = {
        "/": {"get": {"tags": ["Introspection"], "summary": "OpenAPI description (this document)",
                      "produces": ["application/openapi+json", "application/json"],
                      "responses": {"200": {"description": "OK"}}}},
    }  # fmt: skip
    for table in tables:
        paths[f"/{table.name}"] = _table_path(table)
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
        "externalDocs": {"description": "PostgREST Documentation", "url": DOCS_URL},
        "host": host,
        "basePath": "/rest/v1",
        "schemes": ["http"],
        "consumes": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "produces": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "paths": paths,
        "definitions": {t.name: definition_for(t) for t in tables},
    }
