"""The integration sync as a job kind: run a provider in-process under the job's lease.

A claimed job runs its provider's `sync(ctx)`; the context's `progress()` is the heartbeat
(and where a cancel is noticed). The attempt ends in one state change under the lease:
success, a retry with backoff, error once attempts are spent, or canceled.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from shared import db, log
from shared.errors import (
    IntegrationDisabled,
    JobCanceled,
    LeaseLost,
    UpstreamError,
    UpstreamUnavailable,
)
from shared.jobs.drain import DrainReport, drain
from shared.jobs.lease import Lease
from shared.jobs.policy import Decision, Verdict, decide
from shared.jobs.store import Release
from shared.jobs.table import JobTable
from shared.jobs.wake import wake
from shared.providers import get_provider
from shared.providers.base import SyncResult
from shared.queue import store
from shared.queue.models import JobStatus
from shared.scrub import scrub_text
from shared.settings import Settings, get_settings
from shared.tenancy import Tenant, enabled_integration, get_tenant

FUNCTION = "process-integration-job"
TIMED_OUT = "timed out"
_logger = log.get_logger("queue.worker")


class JobRun:
    """The SyncContext of one claimed job: heartbeat, cancel checks, transactions."""

    def __init__(self, row: Mapping[str, Any], tenant: Tenant, config: Mapping[str, Any]) -> None:
        self._row = row
        self._tenant = tenant
        self._config = config
        self._settings = get_settings()
        self._lease = Lease(store.TABLE, dict(row))

    @property
    def tenant(self) -> Tenant:
        return self._tenant

    @property
    def job_id(self) -> UUID:
        return UUID(str(self._row["id"]))

    @property
    def config(self) -> Mapping[str, Any]:
        return self._config

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def payload(self) -> Mapping[str, Any]:
        payload = self._row.get("payload")
        return payload if isinstance(payload, dict) else {}

    def progress(self, percent: int) -> None:
        with db.transaction() as conn:
            row = self._lease.heartbeat(conn, progress=max(0, min(100, percent)))
        if row["cancel_requested"]:
            raise JobCanceled()

    def transaction(self) -> AbstractContextManager[db.Conn]:
        return db.transaction()

    def last_success_at(self) -> datetime | None:
        with db.transaction() as conn:
            at: datetime | None = store.last_success_at(
                conn, self._tenant.id, self._row["provider_slug"]
            )
        return at


@dataclass
class RunReport:
    job_id: str
    status: str
    attempt: int
    retry_in_s: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Failure:
    """Why an attempt failed: a code for logs and alerts, a message safe to show."""

    code: str
    message: str
    retryable: bool
    retry_after_s: float | None = None  # the wait the provider asked for (Retry-After)


def run_claimed(row: Mapping[str, Any]) -> RunReport:
    """Run one claimed job to its next state. Never raises for a provider failure."""
    job_id, lease = row["id"], row["lease_token"]
    with log.labels(job_id=job_id, tenant_id=row["tenant_id"], provider=row["provider_slug"]):
        try:
            result = _run_provider(row)
        except JobCanceled:
            return _finish(row, store.final(job_id, lease, JobStatus.CANCELED), "job canceled")
        except LeaseLost:
            _logger.warning("lease lost; leaving the job to whoever holds it now")
            return RunReport(str(job_id), "lease_lost", row["attempts"])
        except (UpstreamError, IntegrationDisabled) as exc:
            retryable = isinstance(exc, UpstreamError) and exc.retryable
            asked = exc.retry_after_s if isinstance(exc, UpstreamUnavailable) else None
            return _after_failure(row, Failure(exc.error_code, exc.message, retryable, asked))
        except Exception:
            _logger.exception("sync crashed")
            failure = Failure("internal_error", "Internal error while running the sync.", True)
            return _after_failure(row, failure)
        done = store.final(job_id, lease, JobStatus.SUCCESS, result=result.as_dict())
        return _finish(row, done, "job succeeded")


def _run_provider(row: Mapping[str, Any]) -> SyncResult:
    provider = get_provider(row["provider_slug"])
    with db.transaction() as conn:
        tenant = get_tenant(conn, tenant_id=row["tenant_id"])
        integration = enabled_integration(conn, tenant.id, row["provider_slug"])
    if provider is None:
        raise UpstreamError("Unknown provider.", retryable=False)
    _logger.info("sync started", extra=log.fields(attempt=row["attempts"]))
    return provider.sync(JobRun(row, tenant, integration["config"] or {}))


def _finish(row: Mapping[str, Any], done: Release, message: str) -> RunReport:
    # The end of a sync that ran: not lost to a dropped connection (under its lease, so
    # written once however often it is tried).
    tries = 0

    def write(conn: db.Conn) -> bool:
        nonlocal tries
        tries += 1
        if store.release(conn, [done], message=message):
            return True
        return tries > 1 and _written_before(conn, done)

    released = db.retried(write)
    if not released:
        _logger.warning("finish ignored: lease no longer held")
        return RunReport(str(row["id"]), "lease_lost", row["attempts"])
    return _ended(row, done, message)


def _written_before(conn: db.Conn, done: Release) -> bool:
    """An earlier try's commit did happen, its answer lost with the connection: the job is
    in the state that try wrote, nobody holding it."""
    now = store.get_job(conn, done.job_id)
    return now is not None and now["status"] == done.status and now["lease_token"] is None


def _ended(
    row: Mapping[str, Any], done: Release, message: str, code: str | None = None
) -> RunReport:
    if done.status == JobStatus.ERROR:
        fields = log.fields(status=done.status, code=code, reason=scrub_text(done.error or ""))
        _logger.error(message, extra=fields)
    else:
        _logger.info(message, extra=log.fields(status=done.status))
    result = done.extra.get("result")
    return RunReport(str(row["id"]), done.status, row["attempts"], result=result, error=done.error)


def _decide(
    row: Mapping[str, Any],
    *,
    retryable: bool,
    cancel_requested: bool,
    retry_after_s: float | None = None,
) -> Decision:
    settings = get_settings()
    return decide(
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        retryable=retryable,
        stop_requested=cancel_requested,
        base_s=settings.queue.backoff_base_s,
        cap_s=settings.queue.backoff_cap_s,
        asked_s=retry_after_s,
    )


def _next_state(row: Mapping[str, Any], decision: Decision, error: str) -> tuple[Release, str]:
    """The state after a failed attempt and its log message (`error` is safe to show)."""
    job_id, lease = row["id"], row["lease_token"]
    if decision.verdict is Verdict.RETRY:
        return store.retry(
            job_id, lease, error, decision.delay_s
        ), "attempt failed, retry scheduled"
    if decision.verdict is Verdict.STOP:
        return store.final(job_id, lease, JobStatus.CANCELED), "job canceled"
    return store.final(job_id, lease, JobStatus.ERROR, error=error), "job failed"


def _after_failure(row: Mapping[str, Any], failure: Failure) -> RunReport:
    """Retry later or end the job; a cancel requested while the attempt ran wins.

    The verdict is taken under the row lock that a cancel request also takes, so a cancel
    that came after the attempt's last heartbeat is seen, never lost to a retry.
    """
    lease = Lease(store.TABLE, dict(row))
    tried: list[tuple[Decision, Release, str]] = []  # what an earlier try wrote, if it did

    def settle(conn: db.Conn) -> tuple[Decision, Release, str] | None:
        try:
            held = lease.lock(conn)
        except LeaseLost:
            return tried[-1] if tried and _written_before(conn, tried[-1][1]) else None
        decision = _decide(
            row,
            retryable=failure.retryable,
            cancel_requested=held["cancel_requested"],
            retry_after_s=failure.retry_after_s,
        )
        nxt, message = _next_state(row, decision, failure.message)
        tried.append((decision, nxt, message))
        store.release(conn, [nxt], message=message)
        return decision, nxt, message

    decided = db.retried(settle)  # as _finish: not lost to a dropped connection
    if decided is None:
        return RunReport(str(row["id"]), "lease_lost", row["attempts"])
    decision, nxt, message = decided
    if decision.verdict is not Verdict.RETRY:
        return _ended(row, nxt, message, failure.code)
    wake(KIND, row["id"], event=("retry", row["attempts"]), delay_s=decision.delay_s)
    fields = log.fields(
        code=failure.code, reason=scrub_text(failure.message), delay_s=round(decision.delay_s, 3)
    )
    _logger.warning("attempt failed, retry scheduled", extra=fields)
    return RunReport(
        str(row["id"]),
        "pending",
        row["attempts"],
        retry_in_s=decision.delay_s,
        error=failure.message,
    )


@dataclass(frozen=True)
class IntegrationSync:
    """The integration queue's jobs (`integration_jobs`) as a kind of the engine."""

    name: str = "integration"
    table: JobTable = store.TABLE
    function: str = FUNCTION
    drains_in_sweep: bool = True

    def stale_after_s(self) -> float:
        return float(get_settings().queue.stale_after_s)

    def wake_body(self, job_id: UUID | None, tenant_id: UUID | None) -> dict[str, Any]:
        return {} if job_id is None else {"job_id": str(job_id)}

    def run(self, row: db.Row, deadline: float) -> dict[str, Any]:
        return run_claimed(row).as_dict()

    def before_rescue(self, conn: db.Conn, rows: list[db.Row]) -> None:
        """The schedules of these jobs' integrations: ending one may pause its schedule, and
        the tick takes schedule rows before it inserts jobs (ARCHITECTURE.md, invariant 6)."""
        store.lock_schedules_of(conn, [row["id"] for row in rows])

    def rescue(self, conn: db.Conn, row: db.Row) -> list[db.Row]:
        """A job whose worker died: retry with backoff, or error "timed out" (or canceled)."""
        decision = _decide(row, retryable=True, cancel_requested=row["cancel_requested"])
        nxt, _ = _next_state(row, decision, TIMED_OUT)
        retried = decision.verdict is Verdict.RETRY
        message = "rescued: heartbeat stale" + (", retry scheduled" if retried else "")
        return store.release(conn, [nxt], message=message)


KIND = IntegrationSync()


def process(job_id: UUID | None = None, *, budget_s: float | None = None) -> DrainReport:
    """Claim and run due jobs until none is due or the budget is spent (the worker)."""
    settings = get_settings()
    budget = settings.queue.worker_budget_s if budget_s is None else budget_s
    return drain(KIND, budget_s=budget, batch=settings.queue.claim_batch, job_id=job_id)
