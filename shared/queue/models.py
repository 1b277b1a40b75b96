"""Job statuses and the public shape of a job."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class JobStatus(StrEnum):
    """Mirrors the CHECK constraint on integration_jobs.status."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.SUCCESS, JobStatus.ERROR, JobStatus.CANCELED)


ACTIVE = (JobStatus.PENDING, JobStatus.RUNNING)


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
