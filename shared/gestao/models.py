"""Request models and the public shape of an export job."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class ExportStatus(StrEnum):
    """Mirrors the CHECK constraint on gestao_scouter_export_jobs.status."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"


class ExportAction(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    RESET = "reset"
    STATUS = "status"
    RUN = "run"  # the runner's own wake-up (Cloud Task / sweep); service only


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ExportRequest(Strict):
    tenant_id: UUID
    action: ExportAction
    start_date: date | None = None
    end_date: date | None = None
    job_id: UUID | None = None

    @field_validator("start_date", "end_date", mode="before")
    @classmethod
    def _calendar_day(cls, value: Any) -> Any:
        # pydantic alone would also take 0 as 1970-01-01 and "2024-01-01T00:00:00" as that day.
        is_day = isinstance(value, date) and not isinstance(value, datetime)
        if value is None or is_day or (isinstance(value, str) and _ISO_DAY.fullmatch(value)):
            return value
        raise ValueError("expected a date as YYYY-MM-DD (up to 9999-12-31)")

    @field_validator("end_date")
    @classmethod
    def _not_before_start(cls, end: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start_date")
        if start and end and end < start:
            raise ValueError("end_date is before start_date")
        return end

    @model_validator(mode="after")
    def _run_needs_job(self) -> ExportRequest:
        if self.action is ExportAction.RUN and self.job_id is None:
            raise ValueError("run needs job_id")
        return self


class TenantRequest(Strict):
    tenant_id: UUID


class SchemaRequest(Strict):
    """Validate the stored mapping, or a proposed one (and store it when `save`)."""

    tenant_id: UUID
    field_mappings: dict[str, str] | None = Field(default=None, max_length=200)
    save: bool = False

    @model_validator(mode="after")
    def _save_needs_mapping(self) -> SchemaRequest:
        if self.save and self.field_mappings is None:
            raise ValueError("save needs field_mappings")
        return self


class ReverseSyncRequest(Strict):
    """The remote trigger's body: `{"lead": <row>, "source": "gestao_scouter"}`."""

    lead: dict[str, Any] = Field(max_length=500)
    source: Literal["gestao_scouter"]

    @field_validator("lead")
    @classmethod
    def _has_id(cls, lead: dict[str, Any]) -> dict[str, Any]:
        if "id" not in lead:
            raise ValueError("lead.id is required")
        return lead


class ExportJob(BaseModel):
    """An export job as callers see it (no lease, no cursor)."""

    model_config = ConfigDict(extra="ignore")

    id: UUID
    tenant_id: UUID
    status: ExportStatus
    start_date: date | None
    end_date: date | None
    total_leads: int
    exported_leads: int
    error_leads: int
    processing_date: date | None
    last_completed_date: date | None
    field_mappings: dict[str, str]
    batch_size: int
    batches: int
    consecutive_failures: int
    pause_requested: bool
    reset_requested: bool = False
    pause_reason: str | None
    error_message: str | None
    attempts: int
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    run_after: datetime
    progress: int = 0

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ExportJob:
        job = cls.model_validate(row)
        done = job.exported_leads + job.error_leads
        job.progress = (
            100
            if job.status is ExportStatus.COMPLETED
            else (min(99, int(100 * done / job.total_leads)) if job.total_leads else 0)
        )
        return job
