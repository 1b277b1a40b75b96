"""Request models and the public shape of an export job."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.contract import QUERY_INTEGER, Answer, ErrorCode, Strict, coded
from shared.errors import (
    Forbidden,
    IntegrationDisabled,
    SyncqError,
    Unprocessable,
    UpstreamError,
)
from shared.gestao.mapping import (
    DEFAULT_MAPPING,
    LOCAL_FIELDS,
    REMOTE_NAME,
    REQUIRED_LOCAL,
    RESERVED_REMOTE,
)
from shared.gestao.schema import kind_of

# What reaching a tenant's remote project can answer besides the edge's errors.
REMOTE_ERRORS: tuple[type[SyncqError] | ErrorCode, ...] = (
    Forbidden,  # not an admin of the tenant (or no such tenant)
    IntegrationDisabled,
    coded(Unprocessable, "target_missing"),
    coded(Unprocessable, "target_invalid"),  # a project URL that is not one
    UpstreamError,
    coded(UpstreamError, "credentials_missing"),
    coded(UpstreamError, "credentials_rejected"),
    coded(UpstreamError, "remote_error"),
)

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class ExportStatus(StrEnum):
    """Mirrors the CHECK constraint on gestao_scouter_export_jobs.status."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"


class PauseCode(StrEnum):
    """Why an export paused, for a client to say in its own words (`pause_reason` says it
    in English, for whoever fixes it). Mirrors the CHECK constraint on pause_code."""

    ADMIN = "admin"  # an admin paused it
    SCHEMA = "schema"  # the remote's schema does not fit the field mapping
    KEY = "key"  # the remote refused the key
    REFUSED = "refused"  # the remote refused a batch for a rule of its own
    FAILING = "failing"  # GESTAO_SCOUTER_MAX_FAILING_BATCHES batches in a row failed
    STALLED = "stalled"  # its runner stopped without a word that many times in a row


@dataclass(frozen=True)
class Pause:
    """Why an export pauses: a code for clients, a sentence for people."""

    code: PauseCode
    reason: str


ADMIN_PAUSE = Pause(PauseCode.ADMIN, "paused by an admin")


class ExportAction(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    RESET = "reset"
    STATUS = "status"
    RUN = "run"  # the runner's own wake-up (Cloud Task / sweep); service only


class ExportRequest(Strict):
    model_config = ConfigDict(
        json_schema_extra={  # the document's view of _run_needs_job
            "if": {"properties": {"action": {"const": "run"}}},
            "then": {"required": ["job_id"], "properties": {"job_id": {"type": "string"}}},
            "description": "`end_date` may not be before `start_date`.",
        }
    )

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


EXPORTS_LISTED_MAX = 100  # the most exports one history call lists


class ExportHistoryQuery(Strict):
    tenant_id: UUID
    limit: Annotated[int, Field(ge=1, le=EXPORTS_LISTED_MAX), QUERY_INTEGER] = 20


def _mapping_schema(schema: dict[str, Any]) -> None:
    """The document's view of mapping_problems(): local fields to plain remote names, `id`
    mapped, `sync_source` never a target (no two fields to one name, said in words)."""
    mapping = next(b for b in schema["anyOf"] if b.get("type") == "object")
    mapping["description"] = "Local lead field -> remote column; no two fields to one column."
    mapping["required"] = list(REQUIRED_LOCAL)
    mapping["propertyNames"] = {"enum": sorted(LOCAL_FIELDS)}
    mapping["additionalProperties"] = {
        "type": "string",
        "pattern": REMOTE_NAME.pattern,
        "not": {"enum": sorted(RESERVED_REMOTE)},
    }


class SchemaRequest(Strict):
    """Validate the stored mapping, or a proposed one (and store it when `save`: only a
    mapping that fits the remote schema is saved, else 422 `schema_invalid`)."""

    model_config = ConfigDict(
        json_schema_extra={  # the document's view of _save_needs_mapping
            "if": {"properties": {"save": {"const": True}}, "required": ["save"]},
            "then": {
                "required": ["field_mappings"],
                "properties": {"field_mappings": {"type": "object"}},
            },
        }
    )

    tenant_id: UUID
    field_mappings: dict[str, str] | None = Field(
        default=None, max_length=200, json_schema_extra=_mapping_schema
    )
    save: StrictBool = False  # strict: lax, 1 and "yes" would be read as true

    @model_validator(mode="after")
    def _save_needs_mapping(self) -> SchemaRequest:
        if self.save and self.field_mappings is None:
            raise ValueError("save needs field_mappings")
        return self


_INT_RANGES = {"bigint": 2**63, "integer": 2**31}
_COLUMN_SCHEMAS: dict[str, dict[str, Any]] = {
    "text": {"type": "string"},
    "boolean": {"type": "boolean"},
    "number": {"type": "number"},
    "date": {"type": "string", "format": "date"},
    "timestamp": {
        "type": "string",
        "format": "date-time",
        "description": "`criado` and `updated_at`: from 0001-01-02 to before 9999-12-31 (UTC).",
    },
}


def _column_schema(pg_type: str) -> dict[str, Any]:
    """A remote column's JSON Schema, as the local column it maps to can hold it."""
    if pg_type in _INT_RANGES:
        bound = _INT_RANGES[pg_type]
        return {"type": "integer", "minimum": -bound, "maximum": bound - 1}
    if pg_type.startswith("numeric("):  # what still fits once rounded to `scale` places
        digits, scale = (int(n) for n in pg_type[8:-1].split(","))
        bound = 10 ** (digits - scale) - 10**-scale / 2
        return {"type": "number", "exclusiveMinimum": -bound, "exclusiveMaximum": bound}
    return dict(_COLUMN_SCHEMAS[kind_of(pg_type)])


def lead_schema(schema: dict[str, Any]) -> None:
    """The document's view of a remote lead under the default mapping (a tenant's own
    mapping reads other columns; columns it does not map are ignored)."""
    schema["required"] = [DEFAULT_MAPPING["id"]]
    schema["properties"] = {
        remote: _column_schema(LOCAL_FIELDS[local])
        if local == "id"
        else {"anyOf": [_column_schema(LOCAL_FIELDS[local]), {"type": "null"}]}
        for local, remote in DEFAULT_MAPPING.items()
    }


class ReverseSyncRequest(Strict):
    """The remote trigger's body: `{"lead": <row>, "source": "gestao_scouter"}`."""

    # The key is the column the tenant's mapping names for `id` (reverse.local_row: 422
    # when the lead lacks it), not always `id`.
    lead: dict[str, Any] = Field(max_length=500, json_schema_extra=lead_schema)
    source: Literal["gestao_scouter"]


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
    pause_code: PauseCode | None = Field(
        description="Why it paused, as a stable code (`pause_reason` says it in English)."
    )
    error_message: str | None
    attempts: int
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    run_after: datetime
    paused_s: float = Field(
        default=0.0,
        description="Seconds it sat at rest (paused, or failed until resumed) since it first"
        " started, before its current rest: its rate counts only the time it was going.",
    )
    paused_at: datetime | None = Field(
        default=None, description="When its current rest (paused or failed) began."
    )
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


class ExportError(Answer):
    """A lead the remote refused."""

    lead_id: int
    error_message: str
    response_status: int | None
    created_at: datetime


class ExportJobList(Answer):
    """A tenant's export jobs, newest first."""

    jobs: list[ExportJob]


class ExportAnswer(ExportJob):
    """An export job; every action but `start` and `run` adds its first refused leads."""

    model_config = ConfigDict(extra="forbid")

    recent_errors: list[ExportError] | None = None


class SchemaValidation(Answer):
    """The mapped local fields against the remote leads table, with SQL that would fix it."""

    valid: bool
    table_present: bool
    missing_columns: list[str]
    type_mismatches: list[dict[str, str]]
    unmapped_required: list[str]
    # NOT NULL and unmapped, with a default PostgREST's document cannot show: not blocking.
    unverified_defaults: list[str] = Field(default=[])  # pydantic copies it per instance
    suggested_sql: str


class ValidateSchemaAnswer(SchemaValidation):
    """The report, the mapping it checked, and whether that mapping was saved."""

    field_mappings: dict[str, str]
    saved: bool


class ReloadAnswer(Answer):
    """The remote reloaded its schema cache; the mapping validated again."""

    reloaded: bool
    validation: SchemaValidation


class ConfigCheck(Answer):
    """One named check: url_well_formed, host_reachable, key_accepted, service_role,
    leads_readable or leads_writable."""

    name: str
    ok: bool
    detail: str


class ConfigAnswer(Answer):
    """Every named check, in order; `ok` when all passed."""

    ok: bool
    checks: list[ConfigCheck]


class ReverseSyncAnswer(Answer):
    """What became of the remote lead."""

    action: Literal["upserted", "skipped_loop", "skipped_stale"]


class ReverseSyncQuery(BaseModel):
    """The tenant the remote's webhook URL names."""

    tenant: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="The tenant's slug.")
