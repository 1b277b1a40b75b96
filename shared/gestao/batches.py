"""The export's batch query: the next keyset page of a tenant's leads, already mapped.

Postgres builds the request body itself (one JSON array of remote-named objects), so a
batch costs one round trip and no per-row Python work; the body reaches us as the bytes
the server sent and goes out as they are (never decoded to a str and encoded again).
Identifiers come only from the mapping, which is validated against the LOCAL_FIELDS
allow-list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from psycopg import postgres, sql
from psycopg.abc import Buffer
from psycopg.adapt import Loader

from shared.db import Conn
from shared.gestao.mapping import SYNC_SOURCE_COLUMN, validate_mapping
from shared.sqlfiles import query

OUR_SOURCE = "tabuladormax"
START = (datetime(1, 1, 1, tzinfo=UTC), -(2**63))  # before every (criado, id)
_JSON_OID = postgres.types["json"].oid


class _JsonBytes(Loader):
    """A json value as the server sent it (UTF-8 bytes), not parsed: a request body."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


@dataclass(frozen=True)
class Batch:
    """One page: the JSON body to send, how many leads it holds, where it ends and when it
    was read."""

    body: bytes  # a UTF-8 JSON array of remote-named objects
    size: int
    last: tuple[datetime, int] | None
    read_at: datetime | None = None


def date_bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """[start 00:00 UTC, day after end 00:00 UTC), open where a date is missing.

    An end of date.max (9999-12-31, "no end") is open too: it has no day after.
    """
    low = datetime.combine(start, time(), UTC) if start else None
    if end is None or end == date.max:
        return low, None
    return low, datetime.combine(end + timedelta(days=1), time(), UTC)


def remote_columns(mapping: Mapping[str, str]) -> list[str]:
    """The remote columns every exported row carries."""
    return [*mapping.values(), SYNC_SOURCE_COLUMN]


def _columns(mapping: Mapping[str, str]) -> sql.Composable:
    """`l.celular AS phone, ...` plus our sync_source: one JSON object per row."""
    cols: list[sql.Composable] = [
        sql.SQL("l.{} AS {}").format(sql.Identifier(local), sql.Identifier(remote))
        for local, remote in mapping.items()
    ]
    cols.append(
        sql.SQL("{}::text AS {}").format(
            sql.Literal(OUR_SOURCE), sql.Identifier(SYNC_SOURCE_COLUMN)
        )
    )
    return sql.SQL(", ").join(cols)


def batch_statement(mapping: Mapping[str, str]) -> sql.Composed:
    """The page after the cursor, mapped, as one row: n, body, last_criado, last_id."""
    return sql.SQL(query("gestao", "export_page")).format(cols=_columns(validate_mapping(mapping)))


def next_batch(
    conn: Conn, stmt: sql.Composed, params: Mapping[str, Any], cursor: tuple[datetime, int]
) -> Batch:
    """Read the page after `cursor`."""
    cur = conn.cursor()
    cur.adapters.register_loader(_JSON_OID, _JsonBytes)  # this cursor only
    args = {**params, "cursor_criado": cursor[0], "cursor_id": cursor[1]}
    row = cur.execute(stmt, args).fetchone()
    if row is None or not row["n"]:
        return Batch(b"[]", 0, None)
    last = (row["last_criado"], int(row["last_id"]))
    return Batch(row["body"], int(row["n"]), last, row["read_at"])


def synced_statement(mapping: Mapping[str, str]) -> sql.Composed:
    """Leads (by id) the reverse sync wrote since a moment, mapped as `batch_statement`."""
    return sql.SQL(query("gestao", "export_synced_since")).format(
        cols=_columns(validate_mapping(mapping))
    )


def synced_lately(conn: Conn, tenant_id: Any, since: datetime) -> bool:
    """Whether a remote edit reached any of the tenant's leads since `since`."""
    args = {"tenant_id": tenant_id, "since": since}
    row = conn.execute(query("gestao", "synced_lately"), args).fetchone()
    return bool(row and row["lately"])


def synced_since(
    conn: Conn, stmt: sql.Composed, tenant_id: Any, ids: list[int], since: datetime
) -> list[dict[str, Any]]:
    """The current copies of the leads `ids` a remote edit reached since `since`."""
    args = {"tenant_id": tenant_id, "ids": ids, "since": since}
    row = conn.execute(stmt, args).fetchone()
    return list(row["body"]) if row and row["body"] else []


@dataclass
class BatchSizer:
    """How many leads the next batch reads: it starts at the job's batch size, doubles while
    full batches come back fast, stays under a byte budget (the request-body limit of
    whatever proxies sit in front of PostgREST) and halves when a batch was too big (413, a
    statement timeout, or a request that timed out)."""

    size: int
    max_rows: int
    max_bytes: int
    fast_s: float

    def answered(self, rows: int, body_bytes: int, seconds: float) -> None:
        """A batch of `rows` leads (`body_bytes` of JSON) was accepted in `seconds`."""
        if rows < self.size or rows <= 0:
            return  # a short (last) page says nothing about the next size
        fits = int(self.max_bytes // max(body_bytes / rows, 1.0))
        grown = self.size * 2 if seconds <= self.fast_s else self.size
        self.size = max(1, min(grown, self.max_rows, fits))

    def too_big(self, rows: int, body_bytes: int | None = None) -> None:
        """A batch of `rows` leads (`body_bytes` when it was refused for its size) was too big
        for the remote: half of it from now on, and never that big again."""
        self.size = max(1, min(self.size, rows) // 2)
        self.max_rows = max(1, min(self.max_rows, rows - 1))
        if body_bytes is not None:
            self.max_bytes = min(self.max_bytes, body_bytes - 1)
