"""The queue's state changes, each a statement run inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from shared import log
from shared.db import Conn, Row
from shared.errors import JobAlreadyActive
from shared.queue.backoff import Verdict, decide
from shared.queue.models import JobStatus
from shared.sqlfiles import query

_logger = log.get_logger("queue.store")


class LeaseLost(Exception):
    """The job is no longer ours: it was rescued, canceled or finished by someone else."""


@dataclass(frozen=True)
class Outcome:
    """A final state for a job held under `lease`."""

    job_id: UUID
    lease: UUID | None
    status: JobStatus
    result: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Retry:
    """Send a job held under `lease` back to pending after `delay_s`."""

    job_id: UUID
    lease: UUID | None
    error: str
    delay_s: float


def _q(name: str) -> Any:
    return query("queue", name)


def submit(
    conn: Conn,
    *,
    tenant_id: UUID,
    provider_slug: str,
    payload: dict[str, Any],
    created_by: UUID | None,
    max_attempts: int = 3,
    running: bool = False,
) -> Row:
    """Insert a pending (or, for a direct run, running) job; 409 if one is already live."""
    params = {
        "tenant_id": tenant_id,
        "provider_slug": provider_slug,
        "payload": Jsonb(payload),
        "created_by": created_by,
        "max_attempts": max_attempts,
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
    return conn.execute(_q("claim"), {"limit": limit, "job_id": job_id}).fetchall()


def heartbeat(conn: Conn, *, job_id: UUID, lease: UUID, progress: int) -> bool:
    """Record progress (the heartbeat); returns whether a cancel was requested."""
    row = conn.execute(
        _q("heartbeat"), {"id": job_id, "lease": lease, "progress": max(0, min(100, progress))}
    ).fetchone()
    if row is None:
        raise LeaseLost(str(job_id))
    return bool(row["cancel_requested"])


def lock_held(conn: Conn, *, job_id: UUID, lease: UUID) -> Row | None:
    """The job locked, if it is still running under `lease` (None: the lease is lost).

    cancel_job takes the same lock, so a state decided under it sees every cancel request.
    """
    return conn.execute(_q("lock_held"), {"id": job_id, "lease": lease}).fetchone()


def finish(conn: Conn, outcomes: Sequence[Outcome], *, message: str) -> list[Row]:
    """Apply final states; rows whose lease no longer matches are left alone."""
    if not outcomes:
        return []
    return conn.execute(
        _q("finish"),
        {
            "ids": [o.job_id for o in outcomes],
            "leases": [o.lease for o in outcomes],
            "statuses": [str(o.status) for o in outcomes],
            "results": [Jsonb(o.result) if o.result is not None else None for o in outcomes],
            "errors": [o.error for o in outcomes],
            "message": message,
        },
    ).fetchall()


def retry(conn: Conn, retries: Sequence[Retry], *, message: str) -> list[Row]:
    """Send jobs back to pending with their delays; stale leases are left alone."""
    if not retries:
        return []
    return conn.execute(
        _q("retry"),
        {
            "ids": [r.job_id for r in retries],
            "leases": [r.lease for r in retries],
            "errors": [r.error for r in retries],
            "delays": [r.delay_s for r in retries],
            "message": message,
        },
    ).fetchall()


@dataclass(frozen=True)
class Rescued:
    retried: list[Row]
    finished: list[Row]
    failed: list[UUID]


def rescue_stale(
    conn: Conn, *, stale_after_s: float, base_s: float, cap_s: float, limit: int = 500
) -> Rescued:
    """Running jobs with an expired lease: retry with backoff, or error "timed out".

    Each row is rescued under its own savepoint: a row that cannot be rescued is rolled back
    alone (still locked by us, still 'running', left for the next sweep) and named in
    `failed`, while the others are rescued in this same transaction.
    """
    stale = conn.execute(
        _q("lock_stale"), {"stale_after_s": stale_after_s, "limit": limit}
    ).fetchall()
    rescued = Rescued(retried=[], finished=[], failed=[])
    for row in stale:
        try:
            with conn.transaction():
                retried, finished = _rescue_one(conn, row, base_s=base_s, cap_s=cap_s)
        except Exception:  # whatever poisons one row must not stop the rescue of the others
            _logger.exception("stale job could not be rescued", extra=log.fields(job_id=row["id"]))
            rescued.failed.append(row["id"])
            continue
        rescued.retried.extend(retried)
        rescued.finished.extend(finished)
    return rescued


def _rescue_one(
    conn: Conn, row: Row, *, base_s: float, cap_s: float
) -> tuple[list[Row], list[Row]]:
    """One stale row to pending with backoff, or to its final state: (retried, finished)."""
    decision = decide(
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        retryable=True,
        cancel_requested=row["cancel_requested"],
        base_s=base_s,
        cap_s=cap_s,
    )
    if decision.verdict is Verdict.RETRY:
        again = Retry(row["id"], row["lease_token"], "timed out", decision.delay_s)
        return retry(conn, [again], message="rescued: heartbeat stale, retry scheduled"), []
    status = JobStatus.CANCELED if decision.verdict is Verdict.CANCEL else JobStatus.ERROR
    error = None if status is JobStatus.CANCELED else "timed out"
    outcome = Outcome(row["id"], row["lease_token"], status, error=error)
    return [], finish(conn, [outcome], message="rescued: heartbeat stale")


def due_count(conn: Conn) -> int:
    """How many pending jobs are due now."""
    row = conn.execute(_q("due_count")).fetchone()
    return int(row["n"]) if row else 0


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
) -> list[Row]:
    """A tenant's jobs, newest first, keyset-paged by job id."""
    return conn.execute(
        _q("list_jobs"),
        {
            "tenant_id": tenant_id,
            "provider_slug": provider_slug,
            "status": status,
            "before": before,
            "limit": limit,
        },
    ).fetchall()
