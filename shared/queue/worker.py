"""The worker: claim due jobs, run their provider in-process, finish under the lease, drain.

After a job ends the worker keeps claiming until nothing is due or its time budget is
spent, then re-dispatches itself if work remains (invariant 7). It never trusts a task
to arrive: the minute sweep calls `process()` too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from shared import db, log
from shared.dispatch import Task, dispatch
from shared.errors import IntegrationDisabled, UpstreamError
from shared.providers import get_provider
from shared.providers.base import JobCanceled, SyncResult
from shared.queue import store
from shared.queue.backoff import Verdict, decide
from shared.queue.models import JobStatus
from shared.queue.store import LeaseLost, Outcome, Retry
from shared.settings import Settings, get_settings
from shared.sqlfiles import query
from shared.tenancy import Tenant, enabled_integration, get_tenant

WORKER_FUNCTION = "process-integration-job"
_logger = log.get_logger("queue.worker")


class JobRun:
    """The SyncContext of one claimed job: heartbeat, cancel checks, transactions."""

    def __init__(self, row: Mapping[str, Any], tenant: Tenant, config: Mapping[str, Any]) -> None:
        self._row = row
        self._tenant = tenant
        self._config = config
        self._settings = get_settings()
        self.lease: UUID = row["lease_token"]

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
            canceled = store.heartbeat(conn, job_id=self.job_id, lease=self.lease, progress=percent)
        if canceled:
            raise JobCanceled()

    def transaction(self) -> AbstractContextManager[db.Conn]:
        return db.transaction()

    def last_success_at(self) -> datetime | None:
        with db.transaction() as conn:
            row = conn.execute(
                query("queue", "last_success_at"),
                {"tenant_id": self._tenant.id, "provider_slug": self._row["provider_slug"]},
            ).fetchone()
        return row["at"] if row else None


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


def run_claimed(row: Mapping[str, Any]) -> RunReport:
    """Run one claimed job to its next state. Never raises for a provider failure."""
    job_id, lease, attempt = row["id"], row["lease_token"], row["attempts"]
    with log.labels(job_id=job_id, tenant_id=row["tenant_id"], provider=row["provider_slug"]):
        try:
            result = _run_provider(row)
        except JobCanceled:
            return _finish(row, Outcome(job_id, lease, JobStatus.CANCELED), "job canceled")
        except LeaseLost:
            _logger.warning("lease lost; leaving the job to whoever holds it now")
            return RunReport(str(job_id), "lease_lost", attempt)
        except (UpstreamError, IntegrationDisabled) as exc:
            retryable = isinstance(exc, UpstreamError) and exc.retryable
            return _after_failure(row, exc.message, retryable=retryable)
        except Exception:
            _logger.exception("sync crashed")
            return _after_failure(row, "Internal error while running the sync.", retryable=True)
        outcome = Outcome(job_id, lease, JobStatus.SUCCESS, result=result.as_dict())
        return _finish(row, outcome, "job succeeded")


def _run_provider(row: Mapping[str, Any]) -> SyncResult:
    provider = get_provider(row["provider_slug"])
    with db.transaction() as conn:
        tenant = get_tenant(conn, tenant_id=row["tenant_id"])
        integration = enabled_integration(conn, tenant.id, row["provider_slug"])
    if provider is None:
        raise UpstreamError("Unknown provider.", retryable=False)
    _logger.info("sync started", extra=log.fields(attempt=row["attempts"]))
    return provider.sync(JobRun(row, tenant, integration["config"] or {}))


def _finish(row: Mapping[str, Any], outcome: Outcome, message: str) -> RunReport:
    with db.transaction() as conn:
        done = store.finish(conn, [outcome], message=message)
    if not done:
        _logger.warning("finish ignored: lease no longer held")
        return RunReport(str(row["id"]), "lease_lost", row["attempts"])
    return _ended(row, outcome, message)


def _ended(row: Mapping[str, Any], outcome: Outcome, message: str) -> RunReport:
    _logger.info(message, extra=log.fields(status=str(outcome.status)))
    return RunReport(
        str(row["id"]),
        str(outcome.status),
        row["attempts"],
        result=outcome.result,
        error=outcome.error,
    )


def _after_failure(row: Mapping[str, Any], error: str, *, retryable: bool) -> RunReport:
    """Retry later or end the job; a cancel requested while the attempt ran wins.

    The verdict is taken under the row lock that a cancel request also takes, so a cancel
    that came after the attempt's last heartbeat is seen, never lost to a retry.
    """
    settings = get_settings()
    job_id, lease = row["id"], row["lease_token"]
    final: tuple[Outcome, str] | None = None
    with db.transaction() as conn:
        held = store.lock_held(conn, job_id=job_id, lease=lease)
        if held is None:
            return RunReport(str(job_id), "lease_lost", row["attempts"])
        decision = decide(
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            retryable=retryable,
            cancel_requested=held["cancel_requested"],
            base_s=settings.backoff_base_s,
            cap_s=settings.backoff_cap_s,
        )
        if decision.verdict is Verdict.RETRY:
            retry = Retry(job_id, lease, error, decision.delay_s)
            store.retry(conn, [retry], message="attempt failed, retry scheduled")
        else:
            final = _final(row, decision.verdict, error)
            store.finish(conn, [final[0]], message=final[1])
    if final is not None:
        return _ended(row, *final)
    schedule_retry(job_id, row["attempts"], decision.delay_s)
    _logger.info("retry scheduled", extra=log.fields(delay_s=round(decision.delay_s, 3)))
    return RunReport(
        str(job_id), "pending", row["attempts"], retry_in_s=decision.delay_s, error=error
    )


def _final(row: Mapping[str, Any], verdict: Verdict, error: str) -> tuple[Outcome, str]:
    """The final state of a failed attempt that is not retried, and its log message."""
    if verdict is Verdict.CANCEL:
        return Outcome(row["id"], row["lease_token"], JobStatus.CANCELED), "job canceled"
    return Outcome(row["id"], row["lease_token"], JobStatus.ERROR, error=error), "job failed"


def schedule_retry(job_id: UUID, attempt: int, delay_s: float) -> None:
    """A delayed wake-up for a retry; its name is hashed from job id and attempt."""
    dispatch(
        Task(WORKER_FUNCTION, {"job_id": str(job_id)}, delay_s=delay_s, key=f"{job_id}:{attempt}")
    )


@dataclass
class ProcessReport:
    processed: list[dict[str, Any]] = field(default_factory=list)
    remaining: int = 0
    rescued: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"processed": self.processed, "remaining": self.remaining, "rescued": self.rescued}


def rescue() -> int:
    """Rescue running jobs whose heartbeat is stale; schedules their retries.

    Never raises: a rescue that fails as a whole is logged, rolled back (nothing rescued,
    nothing scheduled) and left to the next sweep, so the drain that follows still runs.
    A row that cannot be rescued is skipped alone (see store.rescue_stale).
    """
    settings = get_settings()
    try:
        with db.transaction() as conn:
            rescued = store.rescue_stale(
                conn,
                stale_after_s=settings.stale_after_s,
                base_s=settings.backoff_base_s,
                cap_s=settings.backoff_cap_s,
            )
    except Exception:
        _logger.exception("rescue of stale jobs failed; the drain goes on")
        return 0
    # Wake-ups only after the commit: a retry that was rolled back schedules nothing.
    for row in rescued.retried:
        schedule_retry(row["id"], row["attempts"], float(row["delay_s"]))
    count = len(rescued.retried) + len(rescued.finished)
    if count:
        _logger.warning("rescued stale jobs", extra=log.fields(count=count))
    return count


def process(job_id: UUID | None = None, *, budget_s: float | None = None) -> ProcessReport:
    """Claim and run due jobs until none is due or the budget is spent; re-dispatch if needed."""
    settings = get_settings()
    deadline = time.monotonic() + (settings.worker_budget_s if budget_s is None else budget_s)
    report = ProcessReport()
    wanted = job_id
    while time.monotonic() < deadline:
        with db.transaction() as conn:
            rows = store.claim(conn, limit=settings.claim_batch, job_id=wanted)
        if not rows and wanted is not None:
            wanted = None  # the named job is not due (or taken): drain the rest
            continue
        if not rows:
            break
        wanted = None
        for row in rows:
            report.processed.append(run_claimed(row).as_dict())
    with db.transaction() as conn:
        report.remaining = store.due_count(conn)
    if report.remaining:
        dispatch(Task(WORKER_FUNCTION, {}))
    return report
