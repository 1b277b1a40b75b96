"""The engine's statements, each run inside the caller's transaction (`sql/jobs.sql`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from shared import jsonio
from shared.db import Conn, Row
from shared.jobs.table import JobTable


@dataclass(frozen=True)
class Release:
    """A new state for a job held under `lease` (None: a pending job nobody holds).

    `delay_s` sets run_after (None keeps it); `final` stamps finished_at; `extra` carries
    the kind's own values to its `release_set`/`release_effects` fragments.
    """

    job_id: UUID
    lease: UUID | None
    status: str
    error: str | None = None
    delay_s: float | None = None
    final: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


def claim(
    conn: Conn, table: JobTable, *, limit: int = 1, job_id: UUID | None = None, **params: Any
) -> list[Row]:
    """Claim up to `limit` due jobs (or the one named), oldest due first, each under a new
    lease (attempts + 1). Locked rows are skipped, never waited for."""
    args = {**params, "limit": limit, "job_id": job_id}
    return conn.execute(table.statement("claim"), args).fetchall()


def heartbeat(conn: Conn, table: JobTable, job_id: UUID, lease: UUID, **params: Any) -> Row | None:
    """Touch the lease; the job row as it now stands, or None when the lease is lost."""
    args = {**params, "id": job_id, "lease": lease}
    return conn.execute(table.statement("heartbeat"), args).fetchone()


def renew(conn: Conn, table: JobTable, job_id: UUID, lease: UUID) -> bool:
    """Touch a claimed job's lease before it runs; False when it is no longer ours."""
    args = {"id": job_id, "lease": lease}
    return conn.execute(table.statement("renew"), args).fetchone() is not None


def lock_held(conn: Conn, table: JobTable, job_id: UUID, lease: UUID) -> Row | None:
    """The job locked, if it is still running under `lease` (None: the lease is lost)."""
    return conn.execute(table.statement("lock_held"), {"id": job_id, "lease": lease}).fetchone()


def release(conn: Conn, table: JobTable, releases: Sequence[Release], **params: Any) -> list[Row]:
    """Apply new states; rows whose lease no longer matches are left alone."""
    if not releases:
        return []
    args = {
        **params,
        "ids": [r.job_id for r in releases],
        "leases": [r.lease for r in releases],
        "statuses": [r.status for r in releases],
        "errors": [None if r.error is None else jsonio.db_text(r.error) for r in releases],
        "delays": [r.delay_s for r in releases],
        "finals": [r.final for r in releases],
        "extras": [Jsonb(dict(r.extra)) for r in releases],
    }
    return conn.execute(table.statement("release"), args).fetchall()


def lock_stale(conn: Conn, table: JobTable, *, stale_after_s: float, limit: int) -> list[Row]:
    """Running jobs whose lease expired, locked (SKIP LOCKED) for their rescue."""
    args = {"stale_after_s": stale_after_s, "limit": limit}
    return conn.execute(table.statement("lock_stale"), args).fetchall()


def due(conn: Conn, table: JobTable, *, limit: int) -> list[Row]:
    """Ids (and tenants) of pending jobs that are due, oldest first."""
    return conn.execute(table.statement("due"), {"limit": limit}).fetchall()


def due_count(conn: Conn, table: JobTable) -> int:
    """How many pending jobs are due now."""
    row = conn.execute(table.statement("due_count")).fetchone()
    return int(row["n"]) if row else 0


def depth(conn: Conn, table: JobTable, tenant_id: UUID | None = None) -> Row:
    """Live jobs (pending + running) of every tenant or one, and the oldest due one's age."""
    row = conn.execute(table.statement("depth"), {"tenant_id": tenant_id}).fetchone()
    assert row is not None
    return row
