"""Job statuses and the public shape of a job."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from shared.contract import Answer, ErrorCode, coded
from shared.cron import Missed
from shared.errors import (
    Conflict,
    Forbidden,
    IntegrationDisabled,
    JobAlreadyActive,
    NotFound,
    SyncqError,
    UpstreamError,
)


class JobStatus(StrEnum):
    """Mirrors the CHECK constraint on integration_jobs.status."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    CANCELED = "canceled"


class Trigger(StrEnum):
    """What created a job; mirrors the CHECK constraint on integration_jobs.trigger."""

    MANUAL = "manual"  # a person clicked (run-integration, a sync function)
    SCHEDULE = "schedule"  # its schedule's occurrence (scheduled_for)
    RETRY = "retry"  # a person ran a failed job again (run-integration with retry_of)


class Job(BaseModel):
    """A job as callers see it (no lease token)."""

    model_config = ConfigDict(extra="ignore")

    id: UUID
    tenant_id: UUID
    provider_slug: str
    status: JobStatus
    progress: int
    attempts: int
    max_attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    execution_time_ms: int | None
    error_message: str | None
    payload: dict[str, Any]
    result: dict[str, Any] | None
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    heartbeat_at: datetime | None
    run_after: datetime
    cancel_requested: bool
    trigger: Trigger = Trigger.MANUAL
    scheduled_for: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        return cls.model_validate(row)


class JobAccepted(Answer):
    """The job was created, pending; the worker has been woken."""

    job_id: UUID
    status: JobStatus


class JobPage(Answer):
    """A page of the job history, newest first; pass `next_before` as `before` for the next."""

    jobs: list[Job]
    next_before: UUID | None


class SyncAnswer(BaseModel):
    """The sync finished: what the provider did (`records`, `pages`, and its own counters,
    e.g. `changed`, `passes`, `window`, `clients`) and the job it ran as."""

    model_config = ConfigDict(extra="allow")

    job_id: UUID
    records: int
    pages: int


class ProcessAnswer(Answer):
    """What the worker did: each job it ran, what is left and what it rescued; the minute
    sweep also says what each kind and hook did."""

    processed: list[dict[str, Any]]
    remaining: int
    rescued: int
    kinds: dict[str, dict[str, Any]] | None = None
    hooks: dict[str, Any] | None = None


class Integration(Answer):
    """One of the tenant's integrations, with its newest job (a dashboard card); `runnable`:
    run-integration can queue it."""

    provider_slug: str
    display_name: str
    enabled: bool
    runnable: bool
    last_run: datetime | None
    last_status: JobStatus | None
    last_error: str | None
    latest_job: Job | None


class IntegrationList(Answer):
    """The tenant's integrations, by provider."""

    integrations: list[Integration]


class Schedule(Answer):
    """A schedule and its next runs (none while disabled); `last_status` is the last
    occurrence's job status, or `skipped` / `missed` when it ran no job."""

    provider_slug: str
    cron: str
    timezone: str
    enabled: bool
    missed: Missed
    spread: bool
    offset_s: int
    next_run_at: datetime | None
    next_runs: list[datetime]
    last_run_at: datetime | None
    last_status: JobStatus | Literal["skipped", "missed"] | None
    last_job_id: UUID | None
    paused_reason: str | None


class ScheduleList(Answer):
    """The tenant's schedules, by provider."""

    schedules: list[Schedule]


class ScheduleDeleted(Answer):
    """The schedule is gone (its jobs stay in the history)."""

    deleted: Literal[True]
    provider_slug: str


# What a direct sync (sync-<provider>) can answer besides the edge's errors.
SYNC_ERRORS: tuple[type[SyncqError] | ErrorCode, ...] = (
    Forbidden,  # not an admin of the tenant (or no such tenant)
    IntegrationDisabled,
    NotFound,  # job_id is not this tenant's pending job of this provider
    JobAlreadyActive,
    coded(Conflict, "job_not_claimable"),
    coded(Conflict, "job_canceled"),
    UpstreamError,  # the provider failed; details say whether and when it is retried
)
