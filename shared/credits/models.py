"""Job tables, statuses and the request/response models of runninghub-queue-manager."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.contract import Answer, Header, JsonInt
from shared.db import Row
from shared.errors import UnknownTable, ValidationFailed

FUNCTION = "runninghub-queue-manager"


class CreditJobTable(StrEnum):
    """The allow-list of job tables (partitions of `ai_jobs`, CHECK-mirrored)."""

    IMAGE = "image_jobs"
    VIDEO = "video_jobs"


def job_table(name: str) -> CreditJobTable:
    """The allow-listed table, or 400 unknown_table before anything is queried."""
    try:
        return CreditJobTable(name)
    except ValueError:
        raise UnknownTable(details={"allowed": [t.value for t in CreditJobTable]}) from None


class CreditJobStatus(StrEnum):
    """Mirrors the CHECK constraint on ai_jobs.status."""

    PENDING = "pending"
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """Completed, failed or cancelled: nothing changes any more."""
        return self in FINAL

    @property
    def holds_slot(self) -> bool:
        """Starting or running: counted against the RunningHub slot limit."""
        return self in (CreditJobStatus.STARTING, CreditJobStatus.RUNNING)


FINAL = frozenset({CreditJobStatus.COMPLETED, CreditJobStatus.FAILED, CreditJobStatus.CANCELLED})
REFUNDED_STATUSES = frozenset({CreditJobStatus.FAILED, CreditJobStatus.CANCELLED})
FinishStatus = Literal["completed", "failed", "cancelled"]


@dataclass(frozen=True)
class JobKey:
    """A job's address: its allow-listed table and id."""

    table: CreditJobTable
    id: UUID

    def params(self) -> dict[str, Any]:
        """Bind parameters for the named queries."""
        return {"job_table": self.table.value, "id": self.id}

    @classmethod
    def of(cls, row: Row) -> JobKey:
        """The key of an ai_jobs row."""
        return cls(CreditJobTable(row["job_table"]), row["id"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# The document's view of job_table(): any other table is 400 unknown_table.
_TABLES: dict[str, Any] = {"enum": [t.value for t in CreditJobTable]}


class CreditJobRef(_Body):
    """`{table, jobId}`: the body of /start and /cancel."""

    table: str = Field(min_length=1, max_length=64, json_schema_extra=_TABLES)
    job_id: UUID = Field(alias="jobId")

    @property
    def key(self) -> JobKey:
        """The allow-listed key (400 unknown_table otherwise)."""
        return JobKey(job_table(self.table), self.job_id)


WORKFLOW_ID = r"^[A-Za-z0-9_-]{1,64}$"  # mirrors the CHECK on ai_jobs.workflow_id


class CreateRequest(_Body):
    """`/create`: a new pending job of the caller's (what the browser's insert could send).

    Extra fields are refused (422), so a cost, a status or a task id cannot be sent: the
    server prices the job from `credit_prices`. `userId` is optional and must be the
    caller's own; `id` lets a client that retries know whether its first try landed (409).
    """

    table: str = Field(min_length=1, max_length=64, json_schema_extra=_TABLES)
    workflow_id: str = Field(alias="workflowId", pattern=WORKFLOW_ID)
    inputs: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    session_id: str | None = Field(None, alias="sessionId", min_length=1, max_length=200)
    user_id: UUID | None = Field(None, alias="userId")
    id: UUID | None = None

    @property
    def target(self) -> CreditJobTable:
        """The allow-listed table (400 unknown_table otherwise)."""
        return job_table(self.table)

    def fingerprint(self) -> str:
        """The request an Idempotency-Key was sent with, as a hash: the same job asked for
        (`userId` left out: absent or the caller's own, it names the same owner)."""
        fields = self.model_dump(mode="json", by_alias=True, exclude={"user_id"})
        fields["table"] = self.target.value
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("ascii")).hexdigest()


# 1-255 printable ASCII characters, no space at either end (a server strips those).
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]([ -~]{0,253}[!-~])?$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "Makes a retried create safe: a second `/create` by the same user with the same key "
    "within 24 hours makes no new job and answers 201 with the job the first one made, as "
    "it is now; the same key with another request is 422 `idempotency_key_reused`. Send a "
    "fresh key (a UUID) per job you mean to create; keys are per user. 1-255 printable "
    "ASCII characters (else 422 `validation_error`).",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
)


def idempotency_key(value: str | None) -> str | None:
    """The header's key (None when not sent); 422 validation_error when malformed."""
    if value is None or _IDEMPOTENCY_KEY.fullmatch(value):
        return value
    raise ValidationFailed(
        details=[
            {
                "loc": ["header", IDEMPOTENCY_KEY.name],
                "type": "string_pattern_mismatch",
                "message": "Expected 1-255 printable ASCII characters, no space at either end.",
            }
        ]
    )


class Output(BaseModel):
    """One RunningHub output file."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    file_url: str = Field(alias="fileUrl", min_length=1, max_length=2048)
    file_type: str | None = Field(None, alias="fileType", max_length=32)
    node_id: StrictStr | JsonInt | None = Field(None, alias="nodeId")
    task_cost_time: StrictStr | StrictInt | StrictFloat | None = Field(None, alias="taskCostTime")

    def dump(self) -> dict[str, Any]:
        """As stored in `outputs` (RunningHub's field names)."""
        return self.model_dump(by_alias=True, exclude_none=True)


def clean_outputs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """RunningHub's output items reduced to the fields we keep; malformed ones dropped."""
    kept = []
    for item in items:
        try:
            kept.append(Output.model_validate(item).dump())
        except ValidationError:
            continue
    return kept


_DROP = object()
_MAX_DEPTH = 32  # RunningHub's answers are a few levels deep; deeper is dropped


def clean_text(text: str) -> str:
    """Text PostgreSQL can store: NUL characters removed, lone surrogates replaced."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def clean_json(value: Any) -> Any:
    """Provider JSON made storable: strings and keys cleaned, non-finite numbers dropped.

    jsonb refuses NaN/Infinity and text refuses NUL; one such value from RunningHub must
    not make a job impossible to finish (None when the value itself is dropped).
    """
    cleaned = _clean(value, 0)
    return None if cleaned is _DROP else cleaned


def _clean(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return _DROP
    if isinstance(value, dict | list) and depth >= _MAX_DEPTH:
        return _DROP
    if isinstance(value, dict):
        items = ((clean_text(str(k)), _clean(v, depth + 1)) for k, v in value.items())
        return {k: v for k, v in items if v is not _DROP}
    if isinstance(value, list):
        return [v for v in (_clean(i, depth + 1) for i in value) if v is not _DROP]
    return value


class FinishRequest(CreditJobRef):
    """`/finish`: the first final state wins; later calls answer the same job."""

    status: FinishStatus
    error_message: str | None = Field(None, alias="errorMessage", max_length=2000)
    outputs: list[Output] | None = Field(None, max_length=100)


class CheckRequest(_Body):
    """`/check`, optionally about one job."""

    model_config = ConfigDict(
        json_schema_extra={  # the document's view of _both_or_neither
            "anyOf": [
                {"properties": {"table": {"type": "null"}, "jobId": {"type": "null"}}},
                {
                    "required": ["table", "jobId"],
                    "properties": {"table": {"type": "string"}, "jobId": {"type": "string"}},
                },
            ]
        }
    )

    table: str | None = Field(
        None, min_length=1, max_length=64, json_schema_extra={"enum": [*_TABLES["enum"], None]}
    )
    job_id: UUID | None = Field(None, alias="jobId")

    @model_validator(mode="after")
    def _both_or_neither(self) -> CheckRequest:
        if (self.table is None) != (self.job_id is None):
            raise ValueError("give both table and jobId, or neither")
        return self

    @property
    def key(self) -> JobKey | None:
        """The job asked about, if any."""
        if self.table is None or self.job_id is None:
            return None
        return JobKey(job_table(self.table), self.job_id)


class OwnRequest(_Body):
    """`/ledger` and `/jobs`: the caller's own account or jobs, newest first."""

    limit: JsonInt = Field(20, ge=1, le=100)


class WebhookEvent(BaseModel):
    """RunningHub's TASK_END callback; `eventData` is a JSON string (an object is accepted)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event: str = Field(min_length=1, max_length=64)
    task_id: str = Field(alias="taskId", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    event_data: str | dict[str, Any] | None = Field(None, alias="eventData")

    @field_validator("task_id", mode="before")
    @classmethod
    def _number_as_text(cls, value: Any) -> Any:
        """A taskId sent as a JSON number is the same id (the create answer's is read so)."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class CreditJob(BaseModel):
    """A job as every route answers it."""

    table: CreditJobTable
    id: UUID
    user_id: UUID
    session_id: str | None
    status: CreditJobStatus
    workflow_id: str
    inputs: list[Any]
    credits_cost: int
    external_task_id: str | None
    outputs: list[Any] | None
    error_message: str | None
    created_at: datetime
    queued_at: datetime | None = None
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    debited: bool
    refunded: bool
    position: int | None = None  # 1-based place in the queue while queued

    @classmethod
    def from_row(cls, row: Row, ledger: set[str], position: int | None = None) -> CreditJob:
        """Build from an ai_jobs row and the kinds of its ledger rows."""
        fields = {k: v for k, v in row.items() if k in cls.model_fields and k != "table"}
        return cls(
            table=CreditJobTable(row["job_table"]),
            debited="debit" in ledger,
            refunded="refund" in ledger,
            position=position,
            **fields,
        )


class _Answer(Answer):
    """An answer (exactly its keys), also built from field names where a key is an alias."""

    model_config = ConfigDict(populate_by_name=True)


class QueuePlace(_Answer):
    """One of the caller's queued jobs and its 1-based place in the queue."""

    table: CreditJobTable
    job_id: UUID = Field(alias="jobId")
    position: int


class QueueState(_Answer):
    """Slots in use and the queue; a user also sees their queued jobs (`my_queue`), and the
    job asked about (`job`) when the request named one."""

    limit: int
    running: int
    queued: int
    free_slots: int
    my_queue: list[QueuePlace] | None = None
    job: CreditJob | None = None


class LedgerEntry(_Answer):
    """One move of the caller's balance: a job's debit, or its refund."""

    kind: Literal["debit", "refund"]
    amount: int
    table: CreditJobTable
    job_id: UUID = Field(alias="jobId")
    created_at: datetime


class Ledger(_Answer):
    """The caller's balance (0 without an account) and latest ledger rows, newest first."""

    balance: int
    entries: list[LedgerEntry]


class JobList(_Answer):
    """The caller's latest jobs, newest first; a queued one with its place in the queue."""

    jobs: list[CreditJob]


class WebhookAnswer(_Answer):
    """Received; what became of the job (`status` when it had already finished)."""

    received: bool
    action: Literal["finished", "duplicate", "pending", "ignored"]
    status: CreditJobStatus | None = None


class WebhookQuery(BaseModel):
    """The signed webhook URL's job (the signature, `sig`, is the security scheme)."""

    table: CreditJobTable
    job: UUID
