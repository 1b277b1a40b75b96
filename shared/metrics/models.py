"""The request and the report of integration-metrics."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.contract import QUERY_INTEGER
from shared.providers import PROVIDERS

MAX_DAYS = 90


class Freshness(StrEnum):
    """How recent a provider's last success is, against its expected period (Airbyte's
    terms): within one period, within two, beyond two, or no success at all."""

    ON_TIME = "on_time"
    DELAYED = "delayed"
    FAILING = "failing"
    NEVER = "never"


class OutputFormat(StrEnum):
    JSON = "json"
    PROMETHEUS = "prometheus"


class MetricsQuery(BaseModel):
    """`?tenant_id&days&provider_slug&format`. tenant_id is required for the JSON report;
    the Prometheus form (service only) covers every tenant without it."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: UUID | None = None
    days: Annotated[int, Field(ge=1, le=MAX_DAYS), QUERY_INTEGER] = 30
    provider_slug: str | None = Field(
        default=None, json_schema_extra={"enum": [*sorted(PROVIDERS), None]}
    )
    format: OutputFormat | None = None

    @field_validator("provider_slug")
    @classmethod
    def _registered(cls, value: str | None) -> str | None:
        # The registry's names only: metrics never runs a provider.
        if value is not None and value not in PROVIDERS:
            raise ValueError(f"unknown provider; expected one of {sorted(PROVIDERS)}")
        return value


class QueueMetrics(BaseModel):
    depth: int
    oldest_due_age_s: float | None


class ProviderMetrics(BaseModel):
    provider_slug: str
    runs: int
    successes: int
    errors: int
    canceled: int
    success_rate: float | None
    p50_ms: int | None
    p95_ms: int | None
    last_success_at: datetime | None
    period_s: float
    freshness: Freshness
    queue: QueueMetrics


class ExportMetrics(BaseModel):
    id: UUID
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    total_leads: int
    exported_leads: int
    error_leads: int
    pending_leads: int
    run_s: float | None
    rows_per_s: float | None
    newest_lead_at: datetime | None
    cursor_at: datetime | None
    lag_s: float | None


class DayMetrics(BaseModel):
    day: date
    runs: int
    successes: int
    errors: int
    canceled: int
    p95_ms: int | None


class MetricsReport(BaseModel):
    tenant_id: UUID
    days: int
    window_start: datetime
    generated_at: datetime
    providers: list[ProviderMetrics]
    exports: list[ExportMetrics]
    series: list[DayMetrics]
