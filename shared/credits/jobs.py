"""Finishing a job (once, with its refund) and what a freed slot sets off."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from shared import db, log
from shared.credits import store
from shared.credits.models import FUNCTION, REFUNDED_STATUSES, CreditJobStatus, JobKey
from shared.credits.runninghub import RunningHub
from shared.db import Conn, Row
from shared.dispatch import Task, dispatch
from shared.errors import NotFound, UpstreamError
from shared.scrub import mask_secrets, scrub_text
from shared.settings import get_settings

_logger = log.get_logger("credits")


@dataclass(frozen=True)
class Finished:
    """The result of a finish attempt: the row now, and what this call changed."""

    row: Row
    changed: bool  # False: the job was already final (the first final state won)
    freed_slot: bool  # it held a slot (starting/running) before this call
    previous: CreditJobStatus


def finish_job(
    key: JobKey,
    status: CreditJobStatus,
    *,
    owner: UUID | None = None,
    error_message: str | None = None,
    outputs: list[dict[str, Any]] | None = None,
    task_id: str | None = None,
    only_from: Collection[CreditJobStatus] | None = None,
    retried: bool = False,
) -> Finished:
    """One transaction: lock, move to `status` unless already final, refund once if due.

    `owner` limits the call to that user's job (another user's job is a 404);
    `only_from` leaves the job alone (changed=False) unless it is in one of those states;
    `retried` writes it again on another connection when the database fails under it (a
    launch's end, after RunningHub's answer: lost, the job held its slot until the launch
    window, and a task created with a bad id was never cancelled). A try whose commit
    answer was lost finds the job final: changed=False.
    """
    if error_message is not None:  # RunningHub's own words may quote the key or user data
        error_message = scrub_text(error_message, rh_secrets())
    if outputs is not None:  # so may its outputs (kept as URLs: only the secrets go)
        outputs = mask_secrets(outputs, rh_secrets())
    change = _Change(key, status, owner, only_from, error_message, outputs, task_id)
    done = db.retried(change.apply, attempts=3 if retried else 1)
    if not done.changed:
        return done
    fields = {"job_id": str(key.id), "table": key.table.value, "status": status.value}
    # Labelled with its own job whoever calls (the sweep's expiry runs outside any job's labels).
    with log.labels(job_id=key.id, table=key.table.value):
        if status is CreditJobStatus.FAILED and owner is None:  # RunningHub, sweep or service
            _logger.error(
                "credit job failed",
                extra=log.fields(**fields, code="credit_job_failed", reason=error_message),
            )
        else:
            _logger.info("credit job finished", extra=log.fields(**fields))
    return done


@dataclass(frozen=True)
class _Change:
    """The finish `finish_job` makes, in the transaction it is given."""

    key: JobKey
    status: CreditJobStatus
    owner: UUID | None
    only_from: Collection[CreditJobStatus] | None
    error_message: str | None
    outputs: list[dict[str, Any]] | None
    task_id: str | None

    def apply(self, conn: Conn) -> Finished:
        key, status = self.key, self.status
        row = store.get_job(conn, key, lock=True)
        if row is None or (self.owner is not None and row["user_id"] != self.owner):
            raise NotFound("No such job.")
        previous = CreditJobStatus(row["status"])
        if previous.final or (self.only_from is not None and previous not in self.only_from):
            return Finished(row, False, False, previous)
        done = store.finish(
            conn,
            key,
            status,
            error_message=self.error_message,
            outputs=self.outputs,
            task_id=self.task_id,
        )
        assert done is not None  # the row is locked and was not final
        if status in REFUNDED_STATUSES:
            store.refund(conn, key)
        return Finished(done, True, previous.holds_slot, previous)


def rh_secrets() -> tuple[str, ...]:
    """The RunningHub key and webhook secret, as scrubbing needs them."""
    credits = get_settings().credits
    return tuple(s.get_secret_value() for s in (credits.api_key, credits.webhook_secret) if s)


def promote_queued() -> int:
    """Wake /start for the next queued jobs (fair order) that fit in free slots (Cloud Tasks).

    A duplicate or lost wake-up is harmless: /start re-decides under the slot lock and
    the sweep starts whatever is left.
    """
    limit = get_settings().credits.max_slots
    with db.transaction() as conn:
        active, queued = store.counts(conn)
        free = limit - active
        keys = store.next_in_queue(conn, free) if free > 0 and queued else []
    for key in keys:
        body = {"table": key.table.value, "jobId": str(key.id)}
        dispatch(Task(FUNCTION, body, path="/start"))
    return len(keys)


def cancel_remote(task_id: str | None) -> None:
    """Ask RunningHub to stop a task; best effort (a leftover webhook finds a final job)."""
    if not task_id:
        return
    try:
        RunningHub(get_settings()).cancel(task_id)
    except UpstreamError as exc:
        _logger.warning(
            "RunningHub cancel failed", extra=log.fields(error=exc.error_code, task_id=task_id)
        )
