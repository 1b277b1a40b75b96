"""Export job rows: each function is one statement (or a few) in the caller's transaction."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from shared.db import Conn, Row
from shared.errors import Conflict, NotFound
from shared.gestao.batches import date_bounds
from shared.settings import Settings
from shared.sqlfiles import query

PAUSED_BY_ADMIN = "paused by an admin"
MAX_FAILURE_BACKOFF_S = 600.0


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


def get(conn: Conn, tenant_id: UUID, job_id: UUID | None) -> Row:
    """The named job of the tenant, or its latest one."""
    if job_id is not None:
        row = conn.execute(_q("get_job"), {"id": job_id, "tenant_id": tenant_id}).fetchone()
    else:
        row = conn.execute(_q("latest_job"), {"tenant_id": tenant_id}).fetchone()
    if row is None:
        raise NotFound("No such export job for this tenant.")
    return row


def claim(conn: Conn, tenant_id: UUID, job_id: UUID) -> Row | None:
    """Take the tenant's job if it is pending and due; None when it is not ours to run."""
    return conn.execute(_q("claim"), {"id": job_id, "tenant_id": tenant_id}).fetchone()


def heartbeat(conn: Conn, job_id: UUID, lease: UUID) -> Row | None:
    """Still ours? (None: lease lost.) The row says whether a pause was requested."""
    return conn.execute(_q("heartbeat"), {"id": job_id, "lease": lease}).fetchone()


def checkpoint(
    conn: Conn,
    *,
    job_id: UUID,
    lease: UUID,
    exported: int,
    cursor: tuple[Any, int],
    errors: list[dict[str, Any]],
) -> Row | None:
    """Account for one batch: counters, cursor and error rows in one transaction."""
    row = conn.execute(
        _q("checkpoint"),
        {
            "id": job_id,
            "lease": lease,
            "exported": exported,
            "cursor_criado": cursor[0],
            "cursor_id": cursor[1],
        },
    ).fetchone()
    if row is None or not errors:
        return row
    written = conn.execute(
        _q("insert_errors"),
        {"job_id": job_id, "tenant_id": row["tenant_id"], "errors": Jsonb(errors)},
    ).fetchall()
    if written:
        conn.execute(_q("add_errors"), {"id": job_id, "lease": lease, "count": len(written)})
    return row


def release(
    conn: Conn,
    job_id: UUID,
    lease: UUID,
    status: str,
    *,
    delay_s: float = 0.0,
    failures: int | None = None,
    reason: str | None = None,
    error: str | None = None,
) -> Row | None:
    """Hand the job back in a new state; None when the lease was already lost.

    What an admin asked meanwhile wins: a reset is carried out now (the runner has stopped),
    and a job that would only have continued later is paused instead.
    """
    held = conn.execute(_q("lock_running"), {"id": job_id, "lease": lease}).fetchone()
    if held is None:
        return None
    if held["reset_requested"]:
        return _reset(conn, held, job_id, lease)
    if held["pause_requested"] and status == "pending":
        status, reason, delay_s = "paused", PAUSED_BY_ADMIN, 0.0
    return conn.execute(
        _q("release"),
        {
            "id": job_id,
            "lease": lease,
            "status": status,
            "delay_s": delay_s,
            "failures": failures,
            "reason": reason,
            "error": error,
        },
    ).fetchone()


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
    """Start over clean: now when the job is at rest, between batches when it is running."""
    current = get(conn, tenant_id, job_id)
    if current["status"] == "running":
        params = {"id": job_id, "tenant_id": tenant_id}
        row = conn.execute(_q("request_reset"), params).fetchone()
        if row is not None:
            return row
        current = get(conn, tenant_id, job_id)  # its runner just let go: reset it now
    row = _reset(conn, current, job_id, None)
    if row is None:
        raise Conflict(
            "The job cannot be reset now.",
            code="invalid_transition",
            details={"job_id": str(job_id), "status": get(conn, tenant_id, job_id)["status"]},
        )
    return row


def _reset(conn: Conn, job: Row, job_id: UUID, lease: UUID | None) -> Row | None:
    """Counters, cursor and errors cleared, total recounted (under `lease` if running)."""
    tenant_id = job["tenant_id"]
    total = count_leads(conn, tenant_id, job["start_date"], job["end_date"])
    params = {"id": job_id, "tenant_id": tenant_id, "total": total, "lease": lease}
    try:
        with conn.transaction():
            row = conn.execute(_q("reset"), params).fetchone()
    except psycopg.errors.UniqueViolation as exc:  # another export went live meanwhile
        raise _already_live(conn, tenant_id, exc) from exc
    if row is not None:
        conn.execute(_q("delete_errors"), {"id": job_id})
    return row


def failure_delay(settings: Settings, failures: int) -> float:
    """Backoff before the next run after `failures` failed batches in a row (capped)."""
    delay = settings.gestao_scouter_failure_backoff_s * 2 ** min(max(failures - 1, 0), 20)
    return float(min(delay, MAX_FAILURE_BACKOFF_S))


def rescue_stale(conn: Conn, settings: Settings) -> list[Row]:
    """Running jobs whose runner stopped heartbeating, handed back.

    A silent runner counts as a failed batch (its batch is redone: upserts are idempotent):
    the job backs off and retries, and pauses with the reason after several in a row, so a
    batch that kills its runner every time cannot restart forever.
    """
    rescued: list[Row] = []
    stale = conn.execute(_q("stale_jobs"), {"stale_after_s": settings.gestao_scouter_stale_after_s})
    for job in stale.fetchall():
        failures = job["consecutive_failures"] + 1
        if failures >= settings.gestao_scouter_max_failing_batches:
            status, delay, error = "paused", 0.0, None
            reason = (
                f"The runner stopped without a word {failures} times in a row (crash, timeout "
                "or out of memory). Resume to try again."
            )
        else:
            status, reason, error = "pending", None, "The runner stopped responding; retrying."
            delay = failure_delay(settings, failures)
        row = release(
            conn, job["id"], job["lease_token"], status,
            delay_s=delay, failures=failures, reason=reason, error=error,
        )  # fmt: skip
        if row is not None:
            rescued.append(row)
    return rescued


def due(conn: Conn, limit: int = 100) -> list[Row]:
    """Pending jobs that should be running."""
    return conn.execute(_q("due_jobs"), {"limit": limit}).fetchall()
