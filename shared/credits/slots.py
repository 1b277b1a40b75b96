"""Slot decisions and task launch.

The decision "this queued job takes a slot" is made only here, under a transaction-level
advisory lock, by counting the jobs that hold a slot (starting or running) across both
tables — so the limit holds under any number of concurrent /start calls and sweeps. Free
slots go fairly: the user holding the fewest slots first, FIFO within a user, on a tie
whoever got a slot least recently (the `fair_queue` query), so one user's burst of renders
never starves another. Promoted jobs are then launched on RunningHub outside the lock.
"""

from __future__ import annotations

from enum import Enum

import psycopg

from shared import db, log
from shared.credits import store
from shared.credits.jobs import cancel_remote, finish_job, rh_secrets
from shared.credits.models import CreditJobStatus, JobKey
from shared.credits.runninghub import (
    NOT_THIS_JOB_CODES,
    QUEUE_FULL_CODES,
    TASK_ID,
    RhAnswer,
    RunningHub,
    webhook_url,
)
from shared.db import Row
from shared.errors import UpstreamError
from shared.scrub import scrub_text
from shared.settings import get_settings

_logger = log.get_logger("credits.slots")

# HTTP statuses that say RunningHub's API is not there or refuses everyone (its API answers
# 200 with a code): a maintenance page, a route gone, a front refusing the account. Others
# (400, 413, 422, ...) may be about this request alone: that job fails, the rest go on.
NOT_THIS_JOB_STATUSES = frozenset({401, 403, 404})


class Launch(Enum):
    RUNNING = "running"
    FULL = "full"  # RunningHub had no slot: back to the queue
    HELD = "held"  # RunningHub takes no task now (the account, or RunningHub itself): ditto
    FAILED = "failed"  # hard error: failed and refunded
    UNREACHABLE = "unreachable"  # RunningHub unreachable: failed and refunded
    GONE = "gone"  # the job was finished or cancelled while starting


def promote() -> list[Row]:
    """Under the slot lock, move the next queued jobs (fair order) that fit into 'starting',
    one at a time: each start changes who holds the fewest and who was served last, which
    the fair order of the next free slot must see (read once, a newcomer took two slots
    ahead of an older waiter when two freed together)."""
    limit = get_settings().credits.max_slots
    promoted: list[Row] = []
    with db.transaction() as conn:
        store.lock_slots(conn)
        active, queued = store.counts(conn)
        for _ in range(min(limit - active, queued)):
            keys = store.next_in_queue(conn, 1)
            if not keys:
                break
            row = store.mark_starting(conn, keys[0])  # None: it moved meanwhile
            if row is not None:
                promoted.append(row)
    return promoted


def launch(row: Row, client: RunningHub) -> Launch:
    """Create the RunningHub task of a 'starting' job and record what happened; its lines
    carry its own id (a /start launches whatever the queue holds first, others' jobs too)."""
    key = JobKey.of(row)
    with log.labels(job_id=key.id, table=key.table.value):
        return _launch(key, row, client)


def _launch(key: JobKey, row: Row, client: RunningHub) -> Launch:
    settings = get_settings()
    try:
        answer = client.create(row["workflow_id"], row["inputs"], webhook_url(settings, key))
    except UpstreamError as exc:
        if _not_acted_on(exc):  # a proxy, a maintenance page or a rate limit answered:
            return _requeue(row, Launch.HELD, exc.message)  # no task was created
        _fail(key, _unreachable(exc))  # it may have been
        return Launch.UNREACHABLE if exc.retryable else Launch.FAILED
    if answer.code in QUEUE_FULL_CODES:
        return _requeue(row, Launch.FULL)
    if answer.code in NOT_THIS_JOB_CODES:
        refused = f"RunningHub refused every task (code {answer.code} {answer.msg[:80]})."
        return _requeue(row, Launch.HELD, refused)
    return _created(key, answer)


def _not_acted_on(exc: UpstreamError) -> bool:
    """The create was refused with an HTTP status that every job would meet: a rate limit
    (429, refused before acting: shared.http), or a page from in front of the API."""
    status = exc.details.get("status") if isinstance(exc.details, dict) else None
    return status == 429 or (not exc.retryable and status in NOT_THIS_JOB_STATUSES)


def _created(key: JobKey, answer: RhAnswer) -> Launch:
    """A create that RunningHub answered about this job: running, or failed (refunded)."""
    task_id = _task_id(answer)
    if not answer.ok or not task_id:
        message = f"RunningHub refused the task (code {answer.code} {answer.msg[:80]})."
        _fail(key, message)
        return Launch.FAILED
    if not TASK_ID.fullmatch(task_id):  # no webhook nor sweep could ever match it
        _fail(key, "RunningHub answered a bad task id.")
        cancel_remote(task_id)
        return Launch.FAILED
    return _record_running(key, task_id)


def _requeue(row: Row, outcome: Launch, reason: str | None = None) -> Launch:
    """Back to the queue, keeping its place and its debit: RunningHub is full, or (HELD,
    with the `reason`) takes no task now for a reason that is not this job's, until it
    does again or the queue's wait limit fails the job (refunded)."""
    _put_back(row)
    if reason is not None:
        fields = log.fields(
            code="runninghub_refused",
            reason=scrub_text(reason, rh_secrets()),
            job_id=str(row["id"]),
            table=JobKey.of(row).table.value,
        )
        _logger.error("RunningHub takes no task; queued jobs wait", extra=fields)
    return outcome


def _fail(key: JobKey, message: str) -> None:
    """A launch RunningHub answered ends the job failed (refunded), not left 'starting' by
    one dropped connection: holding a slot until the launch window failed it, and never
    cancelling a task it created with an id nothing could match."""
    finish_job(key, CreditJobStatus.FAILED, error_message=message, retried=True)


def _put_back(row: Row) -> None:
    """A promoted job that was not launched back in the queue, not left 'starting' by one
    dropped connection (holding a slot until the launch window failed it, refunded). Only
    this promotion of it: a try whose answer was lost may find it promoted again since."""
    key, started_at = JobKey.of(row), row["started_at"]
    db.retried(lambda conn: store.requeue(conn, key, started_at))


def _record_running(key: JobKey, task_id: str) -> Launch:
    """The job now runs `task_id`, unless it was cancelled meanwhile or the id is taken."""
    try:  # the task runs on RunningHub now: its id is not lost to one dropped connection
        running = db.retried(lambda conn: store.mark_running(conn, key, task_id))
    except psycopg.errors.UniqueViolation:
        # Another job already holds this task id: its webhooks could not tell the two apart.
        # The task may be that job's, so it is not cancelled; this job fails, refunded.
        message = "RunningHub answered a task id that another job already has."
        _fail(key, message)
        return Launch.FAILED
    if running is None:  # cancelled or finished while we were creating the task
        cancel_remote(task_id)
        return Launch.GONE
    return Launch.RUNNING


def _task_id(answer: RhAnswer) -> str:
    """The taskId of a create answer as text ('' when there is none)."""
    raw = answer.data.get("taskId") if isinstance(answer.data, dict) else None
    return str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""


def _requeue_all(rows: list[Row]) -> None:
    """Promoted jobs a failure kept from launching go back to the queue (each on its own:
    one that cannot be must not keep the others in 'starting' until the launch window)."""
    for row in rows:
        key = JobKey.of(row)
        with log.labels(job_id=key.id, table=key.table.value):
            try:
                _put_back(row)
            except Exception:
                _logger.exception("a promoted job could not go back to the queue")


def _unreachable(exc: UpstreamError) -> str:
    return f"RunningHub could not start the task: {exc.message}"


def pump() -> list[JobKey]:
    """Start queued jobs while slots are free; stop when RunningHub is full or unreachable.

    Returns the jobs now running. Each round promotes at most the free slots, so a round
    that frees slots (a hard failure) lets the next round take them.
    """
    settings = get_settings()
    started: list[JobKey] = []
    try:
        client = RunningHub(settings)
    except UpstreamError:
        with db.transaction() as conn:
            if store.counts(conn)[1]:
                _logger.warning("RunningHub is not configured; queued jobs wait")
        return started
    for _ in range(settings.credits.pump_rounds):
        rows = promote()
        if not rows:
            break
        stop = False
        for turn, row in enumerate(rows):
            try:
                if stop:  # RunningHub is full or down: the rest wait in the queue
                    _put_back(row)
                    continue
                outcome = launch(row, client)
            except Exception:  # the database failed under it: the rest were never sent
                _requeue_all(rows[turn + 1 :])
                raise
            if outcome is Launch.RUNNING:
                started.append(JobKey.of(row))
            stop = outcome in (Launch.FULL, Launch.HELD, Launch.UNREACHABLE)
        if stop:
            break
    return started
