"""Which local lead field goes to which remote column.

`LOCAL_FIELDS` is the allow-list of local columns (with their Postgres types): a mapping
can only name these, and they are the only identifiers the export and the reverse sync
put into SQL. Remote names must look like plain Postgres identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from shared.db import Conn
from shared.errors import ValidationFailed
from shared.sqlfiles import query

# Local column -> Postgres type (mirrors infra/migrations/0030_leads.sql; a test checks it).
LOCAL_FIELDS: dict[str, str] = {
    "id": "bigint",
    "name": "text",
    "age": "integer",
    "address": "text",
    "celular": "text",
    "telefone": "text",
    "email": "text",
    "responsavel": "text",
    "scouter": "text",
    "projeto": "text",
    "etapa": "text",
    "status": "text",
    "fonte": "text",
    "foto_url": "text",
    "data_nascimento": "date",
    "genero": "text",
    "latitude": "double precision",
    "longitude": "double precision",
    "valor_ficha": "numeric(12,2)",
    "ficha_confirmada": "boolean",
    "observacoes": "text",
    "criado": "timestamp with time zone",
    "updated_at": "timestamp with time zone",
}

# The remote project's names where they differ from ours; the rest keep their name.
DEFAULT_MAPPING: dict[str, str] = {
    "id": "id",
    "name": "name",
    "age": "age",
    "address": "address",
    "celular": "phone",
    "telefone": "telephone",
    "email": "email",
    "responsavel": "responsible",
    "scouter": "scouter",
    "projeto": "project",
    "etapa": "stage",
    "status": "status",
    "fonte": "source",
    "foto_url": "photo_url",
    "data_nascimento": "date_of_birth",
    "genero": "gender",
    "latitude": "latitude",
    "longitude": "longitude",
    "valor_ficha": "ficha_value",
    "ficha_confirmada": "ficha_confirmed",
    "criado": "criado",
    "updated_at": "updated_at",
}

# Columns the export always writes itself; a mapping may not target them.
SYNC_SOURCE_COLUMN = "sync_source"
RESERVED_REMOTE = frozenset({SYNC_SOURCE_COLUMN})
REMOTE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_BAD_REMOTE_NAME = "remote name must be 1-63 of a-z, 0-9, _ (not a digit first)"
REQUIRED_LOCAL = ("id",)


def _problem(loc: list[str], message: str) -> dict[str, Any]:
    return {"loc": ["field_mappings", *loc], "type": "invalid_mapping", "message": message}


def mapping_problems(mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Everything wrong with a mapping against the local schema and the naming rules."""
    problems: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for local, remote in mapping.items():
        if local not in LOCAL_FIELDS:
            problems.append(_problem([str(local)], "not a local lead field"))
        if not isinstance(remote, str) or not REMOTE_NAME.fullmatch(remote):
            problems.append(_problem([str(local)], _BAD_REMOTE_NAME))
            continue
        if remote in RESERVED_REMOTE:
            problems.append(_problem([str(local)], f"{remote} is written by the export itself"))
        if remote in seen:
            problems.append(
                _problem([str(local)], f"{remote} is already mapped from {seen[remote]}")
            )
        seen[remote] = str(local)
    problems.extend(_problem([f], "must be mapped") for f in REQUIRED_LOCAL if f not in mapping)
    return problems


def validate_mapping(mapping: Mapping[str, Any]) -> dict[str, str]:
    """The mapping as a clean dict, or 422 with every problem."""
    problems = mapping_problems(mapping)
    if problems:
        raise ValidationFailed("The field mapping is not valid.", details=problems)
    return {str(k): str(v) for k, v in mapping.items()}


def load_mapping(conn: Conn, tenant_id: UUID) -> dict[str, str]:
    """The tenant's stored mapping, or the default one."""
    rows = conn.execute(query("gestao", "get_mappings"), {"tenant_id": tenant_id}).fetchall()
    if not rows:
        return dict(DEFAULT_MAPPING)
    return {r["local_field"]: r["remote_field"] for r in rows}


def save_mapping(
    conn: Conn, tenant_id: UUID, mapping: Mapping[str, str], user: UUID | None
) -> None:
    """Replace the tenant's mapping (validated first)."""
    clean = validate_mapping(mapping)
    conn.execute(query("gestao", "lock_mappings"), {"tenant_id": tenant_id})
    conn.execute(query("gestao", "delete_mappings"), {"tenant_id": tenant_id})
    conn.execute(
        query("gestao", "insert_mappings"),
        {"tenant_id": tenant_id, "mapping": Jsonb(clean), "user_id": user},
    )


def reverse(mapping: Mapping[str, str]) -> dict[str, str]:
    """Remote column -> local field."""
    return {remote: local for local, remote in mapping.items()}
