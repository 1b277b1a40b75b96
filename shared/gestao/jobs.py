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
from shared.sqlfiles import query


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


def claim(conn: Conn, job_id: UUID, stale_after_s: float) -> Row | None:
    """Take the job if it is due (or its runner died); None when it is not ours to run."""
    return conn.execute(_q("claim"), {"id": job_id, "stale_after_s": stale_after_s}).fetchone()


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
    """Hand the job back in a new state; None when the lease was already lost."""
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
    """Start over clean: counters, cursor and errors cleared, total recounted."""
    current = get(conn, tenant_id, job_id)
    total = count_leads(conn, tenant_id, current["start_date"], current["end_date"])
    params = {"id": job_id, "tenant_id": tenant_id, "total": total}
    row = _transition(conn, "reset", params, "reset")
    conn.execute(_q("delete_errors"), {"id": job_id})
    return row


def rescue_stale(conn: Conn, stale_after_s: float) -> list[Row]:
    """Running jobs whose runner stopped heartbeating, handed back."""
    return conn.execute(_q("rescue_stale"), {"stale_after_s": stale_after_s}).fetchall()


def due(conn: Conn, limit: int = 100) -> list[Row]:
    """Pending jobs that should be running."""
    return conn.execute(_q("due_jobs"), {"limit": limit}).fetchall()
