"""The export's batch query: the next keyset page of a tenant's leads, already mapped.

Postgres builds the request body itself (one JSON array of remote-named objects), so a
batch costs one round trip and no per-row Python work. Identifiers come only from the
mapping, which is validated against the LOCAL_FIELDS allow-list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from psycopg import sql

from shared.db import Conn
from shared.gestao.mapping import SYNC_SOURCE_COLUMN, validate_mapping

OUR_SOURCE = "tabuladormax"
START = (datetime(1, 1, 1, tzinfo=UTC), -(2**63))  # before every (criado, id)
_PAIRS_PER_CALL = 40  # jsonb_build_object takes at most 100 arguments


@dataclass(frozen=True)
class Batch:
    """One page: the JSON body to send, the local ids in order, and where it ends."""

    body: str
    ids: list[int]
    last: tuple[datetime, int] | None

    @property
    def size(self) -> int:
        return len(self.ids)


def date_bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """[start 00:00 UTC, day after end 00:00 UTC), open where a date is missing."""
    low = datetime.combine(start, time(), UTC) if start else None
    high = datetime.combine(end + timedelta(days=1), time(), UTC) if end else None
    return low, high


def remote_columns(mapping: Mapping[str, str]) -> list[str]:
    """The remote columns every exported row carries."""
    return [*mapping.values(), SYNC_SOURCE_COLUMN]


def _document(mapping: Mapping[str, str]) -> sql.Composable:
    pairs: list[sql.Composable] = [
        sql.SQL("{}, l.{}").format(sql.Literal(remote), sql.Identifier(local))
        for local, remote in mapping.items()
    ]
    pairs.append(sql.SQL("{}, {}").format(sql.Literal(SYNC_SOURCE_COLUMN), sql.Literal(OUR_SOURCE)))
    if len(pairs) <= _PAIRS_PER_CALL:  # json (text) is cheaper to build than jsonb
        return sql.SQL("json_build_object({})").format(sql.SQL(", ").join(pairs))
    calls = [  # past 100 arguments: jsonb pieces concatenated
        sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs[i : i + _PAIRS_PER_CALL]))
        for i in range(0, len(pairs), _PAIRS_PER_CALL)
    ]
    return sql.SQL("({})::json").format(sql.SQL(" || ").join(calls))


def batch_statement(mapping: Mapping[str, str]) -> sql.Composed:
    """The next page after the cursor, mapped, as one row: n, body, ids, last_criado, last_id."""
    clean = validate_mapping(mapping)
    return sql.SQL(
        """WITH batch AS (
  SELECT l.criado, l.id, {doc} AS doc
  FROM leads l
  WHERE l.tenant_id = %(tenant_id)s
    AND l.criado >= COALESCE(%(from_ts)s::timestamptz, '-infinity')
    AND l.criado < COALESCE(%(to_ts)s::timestamptz, 'infinity')
    AND (l.criado, l.id) > (%(cursor_criado)s::timestamptz, %(cursor_id)s::bigint)
  ORDER BY l.criado, l.id
  LIMIT %(limit)s
)
SELECT count(*) AS n,
       COALESCE(json_agg(doc ORDER BY criado, id), '[]'::json)::text AS body,
       COALESCE(array_agg(id ORDER BY criado, id), '{{}}'::bigint[]) AS ids,
       max(criado) AS last_criado,
       (array_agg(id ORDER BY criado DESC, id DESC))[1] AS last_id
FROM batch"""
    ).format(doc=_document(clean))


def next_batch(
    conn: Conn, stmt: sql.Composed, params: Mapping[str, Any], cursor: tuple[datetime, int]
) -> Batch:
    """Read the page after `cursor`."""
    row = conn.execute(
        stmt, {**params, "cursor_criado": cursor[0], "cursor_id": cursor[1]}
    ).fetchone()
    if row is None or not row["n"]:
        return Batch("[]", [], None)
    return Batch(row["body"], list(row["ids"]), (row["last_criado"], int(row["last_id"])))
