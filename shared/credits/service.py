"""The routes of runninghub-queue-manager: /create /check /start /finish /cancel /webhook."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID, uuid4

from shared import db, log
from shared.auth import Principal
from shared.credits import store
from shared.credits.jobs import cancel_remote, finish_job, promote_queued
from shared.credits.models import (
    CheckRequest,
    CreateRequest,
    CreditJob,
    CreditJobRef,
    CreditJobStatus,
    CreditJobTable,
    FinishRequest,
    JobKey,
    OwnRequest,
    WebhookEvent,
    clean_outputs,
)
from shared.credits.runninghub import (
    RunningHub,
    TaskOutcome,
    configured,
    outcome_of,
    parse_event_data,
)
from shared.credits.slots import pump
from shared.db import Conn, Row
from shared.errors import (
    Forbidden,
    IdempotencyKeyReused,
    JobFinished,
    JobNotStarted,
    NotFound,
    RunningHubNotConfigured,
    TooManyActiveJobs,
    UnknownWorkflow,
    UpstreamError,
)
from shared.settings import get_settings

_logger = log.get_logger("credits.service")
_STARTED = frozenset(
    {CreditJobStatus.STARTING, CreditJobStatus.RUNNING}
)  # what RunningHub may complete


A = TypeVar("A")
R = TypeVar("R")


def labelled(action: Callable[[Principal, A], R]) -> Callable[[Principal, A], R]:
    """Every log line of a request about one job carries its job_id (and table) as labels,
    as the queue's and the export's do."""

    @functools.wraps(action)
    def run(principal: Principal, req: A) -> R:
        key: JobKey | None = getattr(req, "key", None)
        if key is None:
            return action(principal, req)
        with log.labels(job_id=key.id, table=key.table.value):
            return action(principal, req)

    return run


def _visible(principal: Principal, row: Row | None) -> Row:
    """The row if this caller may see it; another user's job is the same 404 as none."""
    if row is None or (not principal.is_service and row["user_id"] != principal.user_id):
        raise NotFound("No such job.")
    return row


def _owner(principal: Principal) -> UUID | None:
    """The user a call is limited to (None: the service, any job)."""
    return None if principal.is_service else principal.user_id


def _answer(key: JobKey) -> CreditJob:
    with db.transaction() as conn:
        row = store.get_job(conn, key)
        assert row is not None
        return store.present(conn, row, store.position_of(conn, key))


def create(
    principal: Principal, req: CreateRequest, idempotency_key: str | None = None
) -> CreditJob:
    """A new pending job for the caller, priced by the server (the browser's createJob).

    The rules of the insert it replaces: a user creates jobs for themself only (another
    `userId` is 403, and so is the service: it may not create a job for a user); the
    insert runs as the user under RLS; the cost comes from `credit_prices` (a workflow
    without a price is 422 unknown_workflow); the table from the allow-list (400).

    With an `idempotency_key` (the Idempotency-Key header), a create the user already
    made with that key in the last 24 hours makes nothing: it answers that job as it is
    now, or 422 idempotency_key_reused when the key came with another request.
    """
    if principal.is_service or principal.user_id is None:
        raise Forbidden("Jobs are created by their owner with their own token.")
    if req.user_id is not None and req.user_id != principal.user_id:
        raise Forbidden("You may only create jobs for yourself.", details={"loc": ["userId"]})
    table = req.target  # 400 unknown_table before any query
    if idempotency_key is not None:
        return _create_once(principal.user_id, table, req, idempotency_key)
    with db.user_transaction(principal.user_id) as conn:
        return store.present(conn, store.create_job(conn, table, principal.user_id, req))


def _create_once(
    user_id: UUID, table: CreditJobTable, req: CreateRequest, idempotency_key: str
) -> CreditJob:
    """create with a key: the key is claimed (as the service) before the job is inserted
    (as the user), in one transaction, so a concurrent create with the same key waits for
    this one and then answers its job; a refused insert leaves the key unclaimed."""
    fingerprint = req.fingerprint()
    job = JobKey(table, req.id or uuid4())
    with db.transaction() as conn:
        if not store.claim_idempotency_key(conn, user_id, idempotency_key, fingerprint, job):
            held = store.idempotency_key(conn, user_id, idempotency_key)
            assert held is not None  # claimed by a create that committed; never deleted
            if held["request_hash"] != fingerprint:
                raise IdempotencyKeyReused()
            first = JobKey(CreditJobTable(held["job_table"]), held["job_id"])
            row = store.get_job(conn, first)
            assert row is not None and row["user_id"] == user_id  # the key's foreign key
            return store.present(conn, row, store.position_of(conn, first))
        db.act_as_user(conn, user_id)  # the insert runs as the user, under RLS
        created = store.create_job(conn, table, user_id, req.model_copy(update={"id": job.id}))
        return store.present(conn, created)


@labelled
def check(principal: Principal, req: CheckRequest) -> dict[str, Any]:
    """Slots in use, the queue length and, for a user, where their queued jobs stand."""
    limit = get_settings().credits.max_slots
    key = req.key
    with db.transaction() as conn:
        active, queued = store.counts(conn)
        answer: dict[str, Any] = {
            "limit": limit,
            "running": active,
            "queued": queued,
            "free_slots": max(0, limit - active),
        }
        places = store.queue_positions(conn, _owner(principal), key)
        if not principal.is_service:
            answer["my_queue"] = [
                {"table": p.key.table.value, "jobId": str(p.key.id), "position": p.position}
                for p in places
                if p.user_id == principal.user_id
            ]
        if key is not None:
            row = _visible(principal, store.get_job(conn, key))
            position = next((p.position for p in places if p.key == key), None)
            answer["job"] = store.present(conn, row, position).model_dump(mode="json")
    return answer


def _own_user(principal: Principal) -> UUID:
    """The signed-in user; the service has no account of its own (403)."""
    if principal.is_service or principal.user_id is None:
        raise Forbidden("Only the owner reads their own account and jobs.")
    return principal.user_id


def ledger(principal: Principal, req: OwnRequest) -> dict[str, Any]:
    """The caller's balance and latest ledger rows (read as the user, under RLS)."""
    user_id = _own_user(principal)
    with db.snapshot(user_id) as conn:  # the balance as the entries left it
        balance, moves = store.account(conn, user_id, req.limit)
    entries = [
        {
            "kind": m["kind"],
            "amount": m["amount"],
            "table": m["job_table"],
            "jobId": str(m["job_id"]),
            "created_at": m["created_at"].isoformat(),
        }
        for m in moves
    ]
    return {"balance": balance, "entries": entries}


def jobs(principal: Principal, req: OwnRequest) -> dict[str, Any]:
    """The caller's latest jobs (read under RLS), queued ones with their place in the queue
    (the fair order spans every user's jobs, so it is read as the service)."""
    user_id = _own_user(principal)
    with db.user_transaction(user_id) as conn:
        found = [store.present(conn, row) for row in store.user_jobs(conn, user_id, req.limit)]
    with db.transaction() as conn:
        places = {p.key: p.position for p in store.queue_positions(conn, user_id, None)}
    for job in found:
        job.position = places.get(JobKey(job.table, job.id))
    return {"jobs": [job.model_dump(mode="json") for job in found]}


@labelled
def start(principal: Principal, req: CreditJobRef) -> CreditJob:
    """Debit once (402 and nothing changes when short), queue, and start what fits.

    A pending job is refused, with nothing changed, when RunningHub is not configured
    (503), its owner is at the cap of active jobs (429) or its workflow has no price (422).
    """
    key = req.key
    with db.transaction() as conn:
        row = _visible(principal, store.get_job(conn, key, lock=True))
        if row["status"] == CreditJobStatus.PENDING:
            row = _debit_and_queue(conn, key, row)
    if row["status"] == CreditJobStatus.QUEUED:
        pump()
    return _answer(key)


def _debit_and_queue(conn: Conn, key: JobKey, row: Row) -> Row:
    """pending -> queued, debited at the server's current price (the row is locked)."""
    settings = get_settings()
    if not configured(settings):  # nothing could ever start it: do not take the money
        raise RunningHubNotConfigured()
    user_id = row["user_id"]
    store.lock_user(conn, user_id)
    active, cap = store.active_jobs(conn, user_id), settings.credits.max_active_per_user
    if active >= cap:
        raise TooManyActiveJobs(details={"limit": cap, "active": active})
    priced = store.price_job(conn, key)
    if priced is None:
        details = {"table": key.table.value, "workflowId": row["workflow_id"]}
        raise UnknownWorkflow(details=details)
    store.debit(conn, key, user_id, priced["credits_cost"])
    return store.queue(conn, key) or priced


@labelled
def finish(principal: Principal, req: FinishRequest) -> CreditJob:
    """Finish a job; the first final state wins and later calls answer the same job.

    The owner may only move their own unfinished job to failed or cancelled (the
    browser's markJobFailed); the service may also complete it with outputs, once it was
    started (a pending job was never debited, a queued one never ran: 409).
    """
    status = CreditJobStatus(req.status)
    if not principal.is_service and status is CreditJobStatus.COMPLETED:
        raise Forbidden("Only the service may complete a job.")
    outputs = (
        [o.dump() for o in req.outputs]
        if req.outputs is not None and status is CreditJobStatus.COMPLETED
        else None
    )
    completing = status is CreditJobStatus.COMPLETED
    done = finish_job(
        req.key,
        status,
        owner=_owner(principal),
        error_message=None if completing else req.error_message,
        outputs=outputs,
        only_from=_STARTED if completing else None,
    )
    if not done.changed and not done.previous.final:  # pending (never debited) or queued
        raise JobNotStarted(details={"status": done.previous.value})
    if done.changed and done.freed_slot and status is not CreditJobStatus.COMPLETED:
        cancel_remote(done.row["external_task_id"])  # the task may still run there
    if done.changed and done.freed_slot:
        promote_queued()
    return _answer(req.key)


@labelled
def cancel(principal: Principal, req: CreditJobRef) -> CreditJob:
    """Cancel a job: at once when pending/queued; a running one is also stopped on RunningHub.

    The job is finished here first, so RunningHub's own TASK_END for the stopped task
    finds it final and changes nothing: the outcome is 'cancelled', refunded once.
    """
    key = req.key
    done = finish_job(
        key, CreditJobStatus.CANCELLED, owner=_owner(principal), error_message="Cancelled."
    )
    if not done.changed:
        raise JobFinished(details={"jobId": str(key.id), "status": done.row["status"]})
    if done.freed_slot:
        cancel_remote(done.row["external_task_id"])
        promote_queued()
    return _answer(key)


def webhook(key: JobKey, event: WebhookEvent) -> dict[str, Any]:
    with log.labels(job_id=key.id, table=key.table.value):
        return _webhook(key, event)


def _webhook(key: JobKey, event: WebhookEvent) -> dict[str, Any]:
    """RunningHub's TASK_END: finish the job once; replays and strays are answered 200."""
    with db.transaction() as conn:
        row = store.get_job(conn, key)
        stray = store.task_held_elsewhere(conn, key, event.task_id)
    if event.event != "TASK_END" or row is None:
        return {"received": True, "action": "ignored"}
    if CreditJobStatus(row["status"]).final:
        return {"received": True, "action": "duplicate", "status": row["status"]}
    if not CreditJobStatus(row["status"]).holds_slot:
        return {"received": True, "action": "ignored"}  # never launched: no task to end
    if stray or row["external_task_id"] not in (None, event.task_id):
        return {"received": True, "action": "ignored"}  # another job's, or an older one
    outcome = _event_outcome(event)
    if outcome is None:
        return {"received": True, "action": "pending"}
    done = settle(key, outcome, event.task_id)
    return {"received": True, "action": "finished" if done else "duplicate"}


def _event_outcome(event: WebhookEvent) -> TaskOutcome | None:
    """The outcome carried by the event, else asked from RunningHub."""
    envelope = parse_event_data(event.event_data)
    outcome = outcome_of(envelope) if envelope is not None else None
    if outcome is not None:
        return outcome
    try:
        return outcome_of(RunningHub(get_settings()).outputs(event.task_id))
    except UpstreamError as exc:
        _logger.warning("RunningHub outputs failed", extra=log.fields(error=exc.error_code))
        raise


def settle(key: JobKey, outcome: TaskOutcome, task_id: str) -> bool:
    """Finish a job as RunningHub says its task ended; True when this call finished it."""
    status = CreditJobStatus.COMPLETED if outcome.completed else CreditJobStatus.FAILED
    done = finish_job(
        key,
        status,
        error_message=outcome.error_message,
        outputs=clean_outputs(outcome.outputs) if outcome.outputs is not None else None,
        task_id=task_id,
    )
    if done.changed and done.freed_slot:
        promote_queued()
    return done.changed
