"""Request models of integration-alerts."""

from __future__ import annotations

import re
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

_EMAIL = re.compile(
    r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


class AlertEvent(StrEnum):
    """Mirrors the CHECK constraint on alert_outbox.event."""

    FAILING = "failing"
    REMINDER = "reminder"
    DIGEST = "digest"
    RECOVERED = "recovered"
    SCHEDULE_PAUSED = "schedule_paused"
    EXPORT_PAUSED = "export_paused"
    EXPORT_FAILED = "export_failed"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AlertsQuery(Strict):
    tenant_id: UUID
    limit: int = Field(default=20, ge=1, le=100)


class AlertSettingsRequest(Strict):
    """Who hears of failures, and when: reminders on the failures named in remind_at, then
    a daily digest at most; the schedule pauses after pause_schedule_after in a row."""

    tenant_id: UUID
    emails: list[str] = Field(default_factory=list, max_length=20)
    webhook_url: str | None = Field(default=None, max_length=2000)
    events: list[AlertEvent] = Field(default_factory=lambda: list(AlertEvent), max_length=7)
    remind_at: list[int] = Field(default_factory=lambda: [3, 10], max_length=10)
    pause_schedule_after: int = Field(default=5, ge=1, le=1000)

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for email in value:
            if len(email) > 254 or not _EMAIL.match(email):
                raise ValueError("expected e-mail addresses (name@example.com)")
        return sorted(set(value))

    @field_validator("remind_at")
    @classmethod
    def _reminders(cls, value: list[int]) -> list[int]:
        if any(n < 2 or n > 1000 for n in value):
            raise ValueError("reminders are failure counts from 2 to 1000")
        return sorted(set(value))

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[AlertEvent]) -> list[AlertEvent]:
        return sorted(set(value))
