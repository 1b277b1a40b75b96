"""Export job rows: each function is one statement (or a few) in the caller's transaction.

Claim, heartbeat, release and rescue are the engine's (`shared.jobs`) with this table's
fragments (`sql/gestao.sql`); the checkpoint and the admin's transitions are the export's.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from shared.db import Conn, Row
from shared.errors import Conflict, LeaseLost, NotFound
from shared.gestao.batches import date_bounds
from shared.gestao.mapping import load_mapping
from shared.gestao.models import ADMIN_PAUSE, ExportStatus, Pause, PauseCode
from shared.jobs.lease import Lease
from shared.jobs.policy import Verdict, decide
from shared.jobs.table import JobTable
from shared.settings import get_settings
from shared.sqlfiles import query

TABLE = JobTable("gestao_scouter_export_jobs", "gestao")


def _q(name: str) -> Any:
    return query("gestao", name)


def count_leads(conn: Conn, tenant_id: UUID, start: date | None, end: date | None) -> int:
    """Leads of the tenant created in [start, end] (UTC days)."""
    low, high = date_bounds(start, end)
    row = conn.execute(
        _q("count_leads"), {"tenant_id": tenant_id, "from_ts": low, "to_ts": high}
    ).fetchone()
    return int(row["n"]) if row else 0


def ensure_none_live(conn: Conn, tenant_id: UUID) -> None:
    """409 early (before talking to the remote) when the tenant has a live export."""
    if conn.execute(_q("live_job"), {"tenant_id": tenant_id}).fetchone() is not None:
        raise _already_live(conn, tenant_id, None)


def _already_live(conn: Conn, tenant_id: UUID, exc: Exception | None) -> Conflict:
    live = conn.execute(_q("live_job"), {"tenant_id": tenant_id}).fetchone()
    details = {"job_id": str(live["id"]), "status": live["status"]} if live else None
    return Conflict(
        "An export is already live for this tenant.", code="export_already_active", details=details
    )


def create(
    conn: Conn,
    *,
    tenant_id: UUID,
    start: date | None,
    end: date | None,
    mapping: dict[str, str],
    batch_size: int,
    created_by: UUID | None,
) -> Row:
    """A pending job with its total; 409 when the tenant already has a live one."""
    params = {
        "tenant_id": tenant_id,
        "start_date": start,
        "end_date": end,
        "total": count_leads(conn, tenant_id, start, end),
        "field_mappings": Jsonb(mapping),
        "batch_size": batch_size,
        "created_by": created_by,
    }
    try:
        with conn.transaction():  # a savepoint: the violation must not abort the caller
            row = conn.execute(_q("insert_job"), params).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise _already_live(conn, tenant_id, exc) from exc
    assert row is not None
    return row


def get(conn: Conn, tenant_id: UUID, job_id: UUID | None, *, lock: bool = False) -> Row:
    """The named job of the tenant (locked for the rest of the transaction with `lock`), or
    its latest one."""
    if job_id is not None:
        statement = _q("lock_job" if lock else "get_job")
        row = conn.execute(statement, {"id": job_id, "tenant_id": tenant_id}).fetchone()
    else:
        row = next(iter(recent(conn, tenant_id, 1)), None)
    if row is None:
        raise NotFound("No such export job for this tenant.")
    return row


def recent(conn: Conn, tenant_id: UUID, limit: int) -> list[Row]:
    """The tenant's latest `limit` export jobs, newest first."""
    return conn.execute(_q("recent_jobs"), {"tenant_id": tenant_id, "limit": limit}).fetchall()


def checkpoint(
    conn: Conn,
    lease: Lease,
    *,
    exported: int,
    cursor: tuple[Any, int],
    errors: list[dict[str, Any]],
) -> Row:
    """Account for one batch under the lease: counters, cursor and error rows, in one
    transaction (the kind's checkpoint; a stale runner's raises LeaseLost, changing nothing)."""
    job_id = lease.job_id
    row = conn.execute(
        _q("checkpoint"),
        {
            "id": job_id,
            "lease": lease.token,
            "exported": exported,
            "cursor_criado": cursor[0],
            "cursor_id": cursor[1],
        },
    ).fetchone()
    if row is None:
        raise LeaseLost(str(job_id))
    if not errors:
        return row
    written = conn.execute(
        _q("insert_errors"),
        {"job_id": job_id, "tenant_id": row["tenant_id"], "errors": Jsonb(errors)},
    ).fetchall()
    if written:
        conn.execute(_q("add_errors"), {"id": job_id, "lease": lease.token, "count": len(written)})
    return row


def release(
    conn: Conn,
    lease: Lease,
    status: ExportStatus,
    *,
    delay_s: float = 0.0,
    failures: int | None = None,
    pause: Pause | None = None,
    error: str | None = None,
    batch_size: int | None = None,
) -> Row:
    """Hand the job back in a new state (raises LeaseLost when it is no longer ours).

    What an admin asked meanwhile wins: a reset is carried out now (the runner has stopped;
    paused if a pause was asked after it), a job that would only have continued later is
    paused instead, and a runner stopping for a pause that a resume has since taken back
    hands the job on instead.
    """
    held = lease.lock(conn)
    if held["reset_requested"]:
        row = _reset(conn, held, lease.job_id, lease.token, batch_size=batch_size)
        if row is None:
            raise LeaseLost(str(lease.job_id))
        if held["pause_requested"]:  # asked after the reset (which clears it): start over paused
            params = {"id": lease.job_id, "tenant_id": held["tenant_id"]}
            paused = conn.execute(_q("request_pause"), params).fetchone()
            row = {**row, **paused} if paused is not None else row
        return row
    if status is not ExportStatus.PAUSED:
        pause = None
    admin_pause = pause is not None and pause.code is PauseCode.ADMIN
    if held["pause_requested"] and status is ExportStatus.PENDING:
        status, pause = ExportStatus.PAUSED, ADMIN_PAUSE
    elif admin_pause and not held["pause_requested"]:
        status, pause = ExportStatus.PENDING, None  # the pause was taken back (a resume)
    # A pause the export decided itself (a fault a person must fix) raises an alert.
    alert = pause is not None and pause.code is not PauseCode.ADMIN
    extra: dict[str, Any] = {
        "reason": pause.reason if pause else None,
        "pause_code": str(pause.code) if pause else None,
        "alert": alert,
    }
    if failures is not None:
        extra["failures"] = failures
    if batch_size is not None:
        extra["batch_size"] = batch_size
    return lease.release(
        conn,
        str(status),
        error=error,
        delay_s=delay_s if status is ExportStatus.PENDING else None,
        final=status in (ExportStatus.COMPLETED, ExportStatus.FAILED),
        extra=extra,
    )


def after_failure(
    conn: Conn,
    lease: Lease,
    failures: int,
    error: str,
    give_up: Pause,
    *,
    batch_size: int | None = None,
    retry_after_s: float | None = None,
) -> Row:
    """A failed batch (or a runner that died): `failures` in a row so far. Back off (no
    sooner than the remote asked) and go on, or pause for `give_up` once the policy gives
    up on it."""
    settings = get_settings()
    decision = decide(
        attempts=failures,
        max_attempts=settings.gestao.max_failing_batches,
        retryable=True,
        base_s=settings.gestao.failure_backoff_s,
        cap_s=settings.gestao.failure_backoff_cap_s,
        asked_s=retry_after_s,
    )
    if decision.verdict is Verdict.RETRY:
        return release(
            conn, lease, ExportStatus.PENDING, delay_s=decision.delay_s, failures=failures,
            error=error, batch_size=batch_size,
        )  # fmt: skip
    paused = ExportStatus.PAUSED
    return release(conn, lease, paused, failures=failures, pause=give_up, batch_size=batch_size)


def _transition(conn: Conn, name: str, params: dict[str, Any], what: str) -> Row:
    try:
        with conn.transaction():
            row = conn.execute(_q(name), params).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise _already_live(conn, params["tenant_id"], exc) from exc
    if row is None:
        current = conn.execute(_q("get_job"), params).fetchone()
        if current is None:
            raise NotFound("No such export job for this tenant.")
        raise Conflict(
            f"The job cannot be {what} now.",
            code="invalid_transition",
            details={"job_id": str(current["id"]), "status": current["status"]},
        )
    return row


def pause(conn: Conn, tenant_id: UUID, job_id: UUID) -> Row:
    """Pause now (pending) or between batches (running)."""
    return _transition(conn, "request_pause", {"id": job_id, "tenant_id": tenant_id}, "paused")


def resume(conn: Conn, tenant_id: UUID, job_id: UUID) -> Row:
    """Back to pending from paused or failed (or cancel a pause not yet taken)."""
    return _transition(conn, "resume", {"id": job_id, "tenant_id": tenant_id}, "resumed")


def reset(conn: Conn, tenant_id: UUID, job_id: UUID) -> Row:
    """Start over clean: now when the job is at rest, between batches when it is running.

    The job is locked first: a runner can neither take it (a pending job read at rest and
    claimed before the reset wrote was refused 409) nor let it go meanwhile."""
    current = get(conn, tenant_id, job_id, lock=True)
    if current["status"] == "running":
        params = {"id": job_id, "tenant_id": tenant_id}
        row = conn.execute(_q("request_reset"), params).fetchone()
        assert row is not None  # running, and locked
        return row
    row = _reset(conn, current, job_id, None)
    if row is None:
        raise Conflict(
            "The job cannot be reset now.",
            code="invalid_transition",
            details={"job_id": str(job_id), "status": get(conn, tenant_id, job_id)["status"]},
        )
    return row


def _reset(
    conn: Conn, job: Row, job_id: UUID, lease: UUID | None, *, batch_size: int | None = None
) -> Row | None:
    """Counters, cursor and errors cleared, total recounted, the mapping read again (a job
    paused by a column the remote dropped starts over with the mapping saved since), under
    `lease` if running (keeping the batch size its runner adapted to the remote)."""
    tenant_id = job["tenant_id"]
    total = count_leads(conn, tenant_id, job["start_date"], job["end_date"])
    params = {
        "id": job_id,
        "tenant_id": tenant_id,
        "total": total,
        "lease": lease,
        "field_mappings": Jsonb(load_mapping(conn, tenant_id)),
        "batch_size": batch_size,
    }
    try:
        with conn.transaction():
            row = conn.execute(_q("reset"), params).fetchone()
    except psycopg.errors.UniqueViolation as exc:  # another export went live meanwhile
        raise _already_live(conn, tenant_id, exc) from exc
    if row is not None:
        conn.execute(_q("delete_errors"), {"id": job_id})
    return row
