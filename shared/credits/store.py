"""SQL of the credits queue manager (queries in shared/sql/credits.sql).

Every function takes an open connection; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from shared.credits.models import (
    CreateRequest,
    CreditJob,
    CreditJobStatus,
    CreditJobTable,
    JobKey,
    clean_json,
    clean_text,
)
from shared.db import Conn, Row
from shared.errors import JobExists, PaymentRequired, UnknownWorkflow
from shared.sqlfiles import query

# The price trigger's refusal of a workflow without a price (migration 0032).
PRICED_WORKFLOW = "ai_jobs_priced_workflow"
# A user may insert only into a partition (no grant on ai_jobs): one query per table.
_CREATE = {CreditJobTable.IMAGE: "create_image_job", CreditJobTable.VIDEO: "create_video_job"}


def _one(conn: Conn, name: str, params: dict[str, Any]) -> Row | None:
    return conn.execute(query("credits", name), params).fetchone()


def create_job(conn: Conn, table: CreditJobTable, user_id: UUID, req: CreateRequest) -> Row:
    """Insert a pending job (in a user transaction: RLS applies); the server sets its price.

    409 job_exists when `req.id` is taken; 422 unknown_workflow when the workflow has no
    price (the trigger's refusal, translated here).
    """
    statement = query("credits", _CREATE[table])
    params = {
        "id": req.id,
        "user_id": user_id,
        "workflow_id": req.workflow_id,
        "inputs": Jsonb(req.inputs),
        "session_id": req.session_id,
    }
    try:
        row = conn.execute(statement, params).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise JobExists(details={"table": table.value, "jobId": str(req.id)}) from exc
    except psycopg.errors.CheckViolation as exc:
        if exc.diag.constraint_name != PRICED_WORKFLOW:
            raise
        details = {"table": table.value, "workflowId": req.workflow_id}
        raise UnknownWorkflow(details=details) from exc
    assert row is not None
    return row


def claim_idempotency_key(
    conn: Conn, user_id: UUID, key: str, request_hash: str, job: JobKey
) -> bool:
    """Claim a /create's Idempotency-Key for the job about to be inserted (as the service,
    in the same transaction); False when the key is held (after waiting for a concurrent
    claim to commit or roll back)."""
    params = {"user_id": user_id, "key": key, "request_hash": request_hash, **job.params()}
    return _one(conn, "claim_idempotency_key", params) is not None


def idempotency_key(conn: Conn, user_id: UUID, key: str) -> Row | None:
    """The user's key: the job it made (job_table, job_id) and its request_hash."""
    return _one(conn, "idempotency_key", {"user_id": user_id, "key": key})


def get_job(conn: Conn, key: JobKey, *, lock: bool = False) -> Row | None:
    """The job row (locked FOR UPDATE when asked)."""
    return _one(conn, "lock_job" if lock else "get_job", key.params())


def task_held_elsewhere(conn: Conn, key: JobKey, task_id: str) -> bool:
    """Whether another job of the same table runs RunningHub task `task_id`."""
    row = _one(conn, "task_held_elsewhere", {**key.params(), "task_id": task_id})
    return bool(row and row["held"])


def ledger_kinds(conn: Conn, key: JobKey) -> set[str]:
    """Which ledger rows (debit, refund) the job has."""
    rows = conn.execute(query("credits", "ledger_kinds"), key.params()).fetchall()
    return {r["kind"] for r in rows}


def present(conn: Conn, row: Row, position: int | None = None) -> CreditJob:
    """The job as routes answer it, with its ledger flags."""
    return CreditJob.from_row(row, ledger_kinds(conn, JobKey.of(row)), position)


def debit(conn: Conn, key: JobKey, user_id: UUID, amount: int) -> bool:
    """Debit the job's cost once; 402 (and the caller's rollback) when the balance is short.

    Returns True when the debit happened now, False when it already had.
    """
    _one(conn, "lock_account", {"user_id": user_id})  # before the ledger row is stamped
    inserted = _one(conn, "insert_debit", {**key.params(), "user_id": user_id, "amount": amount})
    if inserted is None:
        return False
    if amount > 0 and _one(conn, "take_balance", {"user_id": user_id, "amount": amount}) is None:
        balance = _one(conn, "balance", {"user_id": user_id})
        raise PaymentRequired(
            details={"required": amount, "balance": balance["balance"] if balance else 0}
        )
    return True


def grant(conn: Conn, user_id: UUID, amount: int) -> int:
    """Add credits to a user's account (created when missing); the new balance."""
    row = _one(conn, "grant_credits", {"user_id": user_id, "amount": amount})
    assert row is not None
    return int(row["balance"])


def account(conn: Conn, user_id: UUID, limit: int = 20) -> tuple[int, list[Row]]:
    """A user's balance (0 without an account) and latest ledger rows."""
    row = _one(conn, "balance", {"user_id": user_id})
    params = {"user_id": user_id, "limit": limit}
    moves = conn.execute(query("credits", "user_ledger"), params).fetchall()
    return (int(row["balance"]) if row else 0), moves


def user_jobs(conn: Conn, user_id: UUID, limit: int) -> list[Row]:
    """A user's latest jobs, newest first (call it in the user's transaction: RLS)."""
    params = {"user_id": user_id, "limit": limit}
    return conn.execute(query("credits", "user_jobs"), params).fetchall()


def refund(conn: Conn, key: JobKey) -> int | None:
    """Refund the job's debit if it has one and was not refunded yet; the amount or None."""
    _one(conn, "lock_refund_account", key.params())  # before the ledger row is stamped
    row = _one(conn, "refund", key.params())
    return None if row is None else int(row["amount"])


def lock_user(conn: Conn, user_id: UUID) -> None:
    """Take the user's /start lock until the end of the transaction."""
    conn.execute(query("credits", "lock_user"), {"user_id": user_id})


def active_jobs(conn: Conn, user_id: UUID) -> int:
    """How many of the user's jobs are queued or hold a slot."""
    row = _one(conn, "user_active_jobs", {"user_id": user_id})
    return int(row["n"]) if row else 0


def price_job(conn: Conn, key: JobKey) -> Row | None:
    """Set a pending job's cost to its workflow's current price; None without a price."""
    return _one(conn, "price_job", key.params())


def queue(conn: Conn, key: JobKey) -> Row | None:
    """pending -> queued."""
    return _one(conn, "queue_job", key.params())


def lock_slots(conn: Conn) -> None:
    """Take the slot lock until the end of the transaction."""
    conn.execute(query("credits", "lock_slots"))


def counts(conn: Conn) -> tuple[int, int]:
    """(jobs holding a slot, jobs queued)."""
    row = _one(conn, "counts", {})
    return (int(row["active"]), int(row["queued"])) if row else (0, 0)


def next_in_queue(conn: Conn, limit: int) -> list[JobKey]:
    """The next `limit` jobs to take a slot, in the fair order (fewest slots held first)."""
    params = {"user_id": None, "job_table": None, "id": None, "limit": limit}
    rows = conn.execute(query("credits", "fair_queue"), params).fetchall()
    return [JobKey.of(r) for r in rows]


def mark_starting(conn: Conn, key: JobKey) -> Row | None:
    """queued -> starting (under the slot lock)."""
    return _one(conn, "mark_starting", key.params())


def mark_running(conn: Conn, key: JobKey, task_id: str) -> Row | None:
    """starting -> running with RunningHub's taskId; None if the job moved meanwhile."""
    return _one(conn, "mark_running", {**key.params(), "task_id": task_id})


def requeue(conn: Conn, key: JobKey, started_at: datetime) -> Row | None:
    """starting -> queued (RunningHub was full), if still the promotion of `started_at`."""
    return _one(conn, "requeue", {**key.params(), "started_at": started_at})


def finish(
    conn: Conn,
    key: JobKey,
    status: CreditJobStatus,
    *,
    error_message: str | None,
    outputs: list[dict[str, Any]] | None,
    task_id: str | None,
) -> Row | None:
    """Move an unfinished job to a final state; None when it was already final.

    Text and outputs are cleaned first (no NUL, no NaN/Infinity): they may come from
    RunningHub, and a value PostgreSQL refuses must not leave the job unfinishable.
    """
    params = {
        **key.params(),
        "status": status.value,
        "error_message": clean_text(error_message) if error_message is not None else None,
        "outputs": Jsonb(clean_json(outputs)) if outputs is not None else None,
        "task_id": clean_text(task_id) if task_id is not None else None,
    }
    return _one(conn, "finish_job", params)


@dataclass(frozen=True)
class Queued:
    """A queued job's 1-based place in the one queue across both tables (fair order)."""

    key: JobKey
    position: int
    user_id: UUID


def queue_positions(conn: Conn, user_id: UUID | None, key: JobKey | None) -> list[Queued]:
    """Places, in the fair order, of a user's queued jobs and of `key` (when queued)."""
    if user_id is None and key is None:
        return []
    params = {
        "user_id": user_id,
        "job_table": key.table.value if key else None,
        "id": key.id if key else None,
        "limit": None,
    }
    rows = conn.execute(query("credits", "fair_queue"), params).fetchall()
    return [Queued(JobKey.of(r), int(r["position"]), r["user_id"]) for r in rows]


def position_of(conn: Conn, key: JobKey) -> int | None:
    """The job's place in the queue, None when it is not queued."""
    return next((p.position for p in queue_positions(conn, None, key) if p.key == key), None)


def due_for_check(conn: Conn, after_s: int, limit: int) -> list[Row]:
    """Slot holders older than `after_s`, oldest first."""
    params = {"after_s": after_s, "limit": limit}
    return conn.execute(query("credits", "due_for_check"), params).fetchall()


def overdue_queued(conn: Conn, max_wait_s: int, limit: int) -> list[JobKey]:
    """Queued jobs that have waited longer than `max_wait_s`, oldest first."""
    params = {"max_wait_s": max_wait_s, "limit": limit}
    rows = conn.execute(query("credits", "overdue_queued"), params).fetchall()
    return [JobKey.of(r) for r in rows]
