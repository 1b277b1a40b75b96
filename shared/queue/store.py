"""The integration queue's rows: submit, cancel, list, and its state changes on the engine.

Claim, heartbeat, release and rescue are the engine's statements (`shared.jobs.store`)
with this table's fragments (`sql/queue.sql`): each writes its integration_logs row (and
tenant_integrations.last_* on final states) in the same statement (invariant 6).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from shared.db import Conn, Row
from shared.errors import JobAlreadyActive
from shared.jobs import store as engine
from shared.jobs.store import Release
from shared.jobs.table import JobTable
from shared.queue.models import JobStatus, Trigger
from shared.sqlfiles import query

TABLE = JobTable("integration_jobs", "queue")


def _q(name: str) -> Any:
    return query("queue", name)


def final(
    job_id: UUID,
    lease: UUID | None,
    status: JobStatus,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> Release:
    """A final state (success, error or canceled) for a job held under `lease`."""
    extra = {} if result is None else {"result": result}
    return Release(job_id, lease, str(status), error=error, final=True, extra=extra)


def retry(job_id: UUID, lease: UUID | None, error: str, delay_s: float) -> Release:
    """Back to pending, due again after `delay_s` (invariant 5)."""
    return Release(job_id, lease, str(JobStatus.PENDING), error=error, delay_s=delay_s)


def release(conn: Conn, releases: Sequence[Release], *, message: str) -> list[Row]:
    """Apply new states with their log rows; stale leases are left alone.

    A failure may pause its schedule (`release_effects`), so the schedule rows of failing
    jobs are locked before the jobs are updated: the schedules tick holds a schedule row
    while its insert waits for a live job being updated, and the other order deadlocked.
    """
    lock_schedules_of(conn, [r.job_id for r in releases if r.final and r.status == JobStatus.ERROR])
    return engine.release(conn, TABLE, releases, message=message)


def lock_schedules_of(conn: Conn, job_ids: Sequence[UUID]) -> None:
    """Lock the schedule rows of these jobs' integrations, in one order (none: nothing)."""
    if job_ids:
        conn.execute(_q("lock_schedules_of"), {"ids": list(job_ids)})


def submit(
    conn: Conn,
    *,
    tenant_id: UUID,
    provider_slug: str,
    payload: dict[str, Any],
    created_by: UUID | None,
    max_attempts: int = 3,
    running: bool = False,
    trigger: Trigger = Trigger.MANUAL,
) -> Row:
    """Insert a pending (or, for a direct run, running) job; 409 if one is already live."""
    params = {
        "tenant_id": tenant_id,
        "provider_slug": provider_slug,
        "payload": Jsonb(payload),
        "created_by": created_by,
        "max_attempts": max_attempts,
        "trigger": str(trigger),
    }
    for _ in range(3):
        try:
            with conn.transaction():  # a savepoint: the violation must not abort the caller
                row = conn.execute(
                    _q("insert_running_job" if running else "insert_job"), params
                ).fetchone()
            assert row is not None
            return row
        except psycopg.errors.UniqueViolation as exc:
            active = conn.execute(_q("active_job"), params).fetchone()
            if active is not None:
                raise JobAlreadyActive(details={"job_id": str(active["id"])}) from exc
            # The live job finished between our insert and the lookup: try again.
    raise JobAlreadyActive()


def claim(conn: Conn, *, limit: int = 1, job_id: UUID | None = None) -> list[Row]:
    """Claim up to `limit` due jobs (or the one named), oldest due first."""
    return engine.claim(conn, TABLE, limit=limit, job_id=job_id)


def get_job(conn: Conn, job_id: UUID, *, lock: bool = False) -> Row | None:
    """One job by id (optionally locked for update)."""
    return conn.execute(_q("lock_job" if lock else "get_job"), {"id": job_id}).fetchone()


def request_cancel(conn: Conn, job_id: UUID) -> Row | None:
    """Flag a running job; its worker stops at the next heartbeat."""
    return conn.execute(_q("request_cancel"), {"id": job_id}).fetchone()


def list_jobs(
    conn: Conn,
    *,
    tenant_id: UUID,
    provider_slug: str | None,
    status: str | None,
    before: UUID | None,
    limit: int,
    trigger: str | None = None,
) -> list[Row]:
    """A tenant's jobs, newest first, keyset-paged by job id."""
    return conn.execute(
        _q("list_jobs"),
        {
            "tenant_id": tenant_id,
            "provider_slug": provider_slug,
            "status": status,
            "trigger": trigger,
            "before": before,
            "limit": limit,
        },
    ).fetchall()


def last_success_at(conn: Conn, tenant_id: UUID, provider_slug: str) -> Any:
    """When the tenant's last successful sync of this provider started (or None)."""
    row = conn.execute(
        _q("last_success_at"), {"tenant_id": tenant_id, "provider_slug": provider_slug}
    ).fetchone()
    return row["at"] if row else None
