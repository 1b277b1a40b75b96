"""The queue's request-level services, one per function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from shared import db
from shared.auth import Principal
from shared.contract import Caller, Endpoint, Function
from shared.errors import Conflict, JobFinished, NotFound, NotRetryable, UpstreamError
from shared.jobs.wake import wake
from shared.queue import store
from shared.queue.kind import KIND, run_claimed
from shared.queue.models import SYNC_ERRORS, Job, JobStatus, SyncAnswer, Trigger
from shared.queue.schemas import JobRef, ListJobsQuery, RunIntegrationRequest, SyncRequest
from shared.tenancy import (
    Role,
    Tenant,
    enabled_integration,
    has_role,
    reading_as,
    require_role,
    tenant_with_role,
)


def run_integration(principal: Principal, req: RunIntegrationRequest) -> dict[str, Any]:
    """Create a pending job (409 if one is live) and wake the worker; with `retry_of`, a
    new run of a job that failed or was canceled (trigger `retry`)."""
    with db.transaction() as conn:
        require_role(conn, principal, req.tenant_id, Role.ADMIN)
        enabled_integration(conn, req.tenant_id, req.provider_slug)
        payload, trigger = req.payload, Trigger.MANUAL
        if req.retry_of is not None:
            retried = _retried(conn, req, req.retry_of)
            payload, trigger = req.payload or retried["payload"], Trigger.RETRY
        row = store.submit(
            conn,
            tenant_id=req.tenant_id,
            provider_slug=req.provider_slug,
            payload=payload,
            created_by=principal.user_id,
            trigger=trigger,
        )
    wake(KIND, row["id"], event=("first",))
    return {"job_id": str(row["id"]), "status": row["status"]}


def _retried(conn: db.Conn, req: RunIntegrationRequest, job_id: UUID) -> dict[str, Any]:
    """The job to run again: this integration's, and failed or canceled. Another tenant's
    or provider's job is the same 404 as an unknown id."""
    old = store.get_job(conn, job_id)
    if old is None or (old["tenant_id"], old["provider_slug"]) != (
        req.tenant_id,
        req.provider_slug,
    ):
        raise NotFound("No such job for this integration.")
    if old["status"] not in (JobStatus.ERROR, JobStatus.CANCELED):
        raise NotRetryable(details={"job_id": str(old["id"]), "status": old["status"]})
    return old


def cancel_job(principal: Principal, req: JobRef) -> Job:
    """Cancel a pending job now, or ask a running one to stop at its next heartbeat.

    Another tenant's job answers the same 404 as an unknown id, so job ids cannot be
    probed; membership is checked before the row is locked, so a stranger cannot hold it.
    """
    with db.transaction() as conn:
        seen = store.get_job(conn, req.job_id)
        if seen is None or not has_role(conn, principal, seen["tenant_id"], Role.MEMBER):
            raise NotFound("No such job.")
        require_role(conn, principal, seen["tenant_id"], Role.ADMIN)
        row = store.get_job(conn, req.job_id, lock=True)
        if row is None:
            raise NotFound("No such job.")
        if row["status"] == JobStatus.PENDING:
            canceled = store.final(row["id"], None, JobStatus.CANCELED)
            store.release(conn, [canceled], message="job canceled")
            row = store.get_job(conn, row["id"]) or row
        elif row["status"] == JobStatus.RUNNING:
            row = store.request_cancel(conn, row["id"]) or row
        else:
            raise JobFinished(details={"job_id": str(row["id"]), "status": row["status"]})
    return Job.from_row(row)


def list_jobs(principal: Principal, req: ListJobsQuery) -> dict[str, Any]:
    """A tenant's job history, newest first; users read under RLS."""
    with db.transaction() as conn:
        require_role(conn, principal, req.tenant_id, Role.MEMBER)
    params: dict[str, Any] = {
        "tenant_id": req.tenant_id,
        "provider_slug": req.provider_slug,
        "status": str(req.status) if req.status else None,
        "trigger": str(req.trigger) if req.trigger else None,
        "before": req.before,
        "limit": req.limit,
    }
    with reading_as(principal) as conn:
        rows = store.list_jobs(conn, **params)
    jobs = [Job.from_row(r).model_dump(mode="json") for r in rows]
    next_before = jobs[-1]["id"] if len(jobs) == req.limit else None
    return {"jobs": jobs, "next_before": next_before}


def sync_action(provider_slug: str) -> Callable[[Principal, SyncRequest], dict[str, Any]]:
    """The action of `sync-<provider>`: run that provider's sync now, in this request."""

    def sync(principal: Principal, req: SyncRequest) -> dict[str, Any]:
        return run_direct(
            principal,
            provider_slug,
            tenant_id=req.tenant_id,
            tenant_slug=req.tenant_slug,
            job_id=req.job_id,
        )

    return sync


def sync_function(name: str, provider_slug: str, provider_name: str) -> Function:
    """The contract of `sync-<provider>`: one route that runs the sync in the request."""
    return Function(
        name,
        f"Run a tenant's {provider_name} sync in this request (same slot and history as "
        "queued jobs).",
        (
            Endpoint(
                summary=f"Sync {provider_name} now",
                request=SyncRequest,
                action=sync_action(provider_slug),
                answers={200: SyncAnswer},
                callers=(Caller.ADMIN, Caller.SERVICE),
                errors=SYNC_ERRORS,
            ),
        ),
    )


def run_direct(
    principal: Principal,
    provider_slug: str,
    *,
    tenant_id: UUID | None = None,
    tenant_slug: str | None = None,
    job_id: UUID | None = None,
) -> dict[str, Any]:
    """A sync function called over HTTP: the same state machine, run in this request."""
    with db.transaction() as conn:
        tenant: Tenant = tenant_with_role(
            conn, principal, Role.ADMIN, tenant_id=tenant_id, slug=tenant_slug
        )
        enabled_integration(conn, tenant.id, provider_slug)
        row = _take_slot(conn, principal, tenant, provider_slug, job_id)
    report = run_claimed(row)
    if report.status == JobStatus.SUCCESS and report.result is not None:
        return {**report.result, "job_id": report.job_id}
    details: dict[str, Any] = {"job_id": report.job_id, "status": report.status}
    if report.status == JobStatus.CANCELED:
        raise Conflict("The job was canceled.", code="job_canceled", details=details)
    if report.retry_in_s is not None:
        details["retry_in_s"] = round(report.retry_in_s, 3)
    raise UpstreamError(report.error or "The sync did not finish.", details=details)


def _take_slot(
    conn: db.Conn, principal: Principal, tenant: Tenant, provider_slug: str, job_id: UUID | None
) -> db.Row:
    """Claim the named pending job, or insert a running one through the unique index."""
    if job_id is None:
        return store.submit(
            conn,
            tenant_id=tenant.id,
            provider_slug=provider_slug,
            payload={},
            created_by=principal.user_id,
            running=True,
        )
    row = store.get_job(conn, job_id)
    if row is None or row["tenant_id"] != tenant.id or row["provider_slug"] != provider_slug:
        raise NotFound("No such job for this tenant and provider.")
    claimed = store.claim(conn, limit=1, job_id=job_id)
    if not claimed:
        raise Conflict(
            "The job is not pending and due.",
            code="job_not_claimable",
            details={"job_id": str(job_id), "status": row["status"]},
        )
    return claimed[0]
