"""The `reject_ids` knob: batches holding one of these rows fail like a real bad row."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from infra.emulators.postgrest.errors import PostgrestError
from infra.emulators.postgrest.schema_cache import Table
from infra.emulators.postgrest.writes import InsertPlan

if TYPE_CHECKING:
    from infra.emulators.postgrest.state import PostgrestState


def _render(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _not_null_error(table: Table, row: dict[str, Any]) -> PostgrestError:
    """23502 as Postgres words it, blaming the first NOT NULL non-key column without a
    default (the one a row could really leave empty)."""
    empty = [c.name for c in table.columns.values() if c.required and c.default is None]
    blamed = next((n for n in empty if n not in table.primary_key), next(iter(table.columns)))
    failing = ", ".join(
        "null" if name == blamed else _render(row.get(name)) for name in table.columns
    )
    return PostgrestError(
        400,
        "23502",
        f'null value in column "{blamed}" of relation "{table.name}" violates not-null constraint',
        f"Failing row contains ({failing}).",
    )


def _unique_error(table: Table, row: dict[str, Any]) -> PostgrestError:
    """23505 on the secondary unique key when the table has one, else on the primary key."""
    if "external_id" in table.columns:
        column, constraint = "external_id", f"{table.name}_external_id_key"
    else:
        column, constraint = (table.primary_key or ["id"])[0], f"{table.name}_pkey"
    value = row.get(column) or row.get((table.primary_key or ["id"])[0])
    return PostgrestError(
        409,
        "23505",
        f'duplicate key value violates unique constraint "{constraint}"',
        f"Key ({column})=({_render(value)}) already exists.",
    )


def check_rejects(state: PostgrestState, table: Table, plan: InsertPlan) -> None:
    """Raise the configured error when the batch holds a rejected id (nothing is written)."""
    rejected = state.knobs.reject_ids
    if not rejected:
        return
    for row_id, row in zip(plan.row_ids, plan.rows, strict=True):
        if row_id in rejected:
            state.record_fault("reject")
            if state.knobs.reject_status == 409:
                raise _unique_error(table, row)
            raise _not_null_error(table, row)
