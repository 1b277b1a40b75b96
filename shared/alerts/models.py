"""Request and answer models of integration-alerts."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, field_validator

from shared.contract import JSON_INTEGER, QUERY_INTEGER, Answer, JsonInt, Strict

# Before the @, a dot-atom of at most 64 characters (RFC 5322/6531): no quoting, no comma,
# angle bracket, parenthesis or semicolon, which a mail header would read as a second
# recipient or a comment. The same pattern is valid ECMAScript for the document.
_ATOM = (  # dot-atom text, and letters beyond ASCII (RFC 6531: joão@...), no space of any kind
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u00a1-\u167f\u1681-\u1fff\u200c-\u2027\u2030-\u205e"
    r"\u2060-\u2fff\u3001-\ufefe\uff00-\uffff-]+"
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$")


class AlertEvent(StrEnum):
    """Mirrors the CHECK constraint on alert_outbox.event."""

    FAILING = "failing"
    REMINDER = "reminder"
    DIGEST = "digest"
    RECOVERED = "recovered"
    SCHEDULE_PAUSED = "schedule_paused"
    EXPORT_PAUSED = "export_paused"
    EXPORT_FAILED = "export_failed"


class AlertStatus(StrEnum):
    """Mirrors the CHECK constraint on alert_outbox.status."""

    PENDING = "pending"
    RUNNING = "running"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


# An address as _emails checks it (the document's view; the validator's message is kinder
# than a pattern's).
Email = Annotated[str, Field(json_schema_extra={"maxLength": 254, "pattern": _EMAIL.pattern})]
Reminder = Annotated[
    int, Field(ge=2, le=1000, description="A count of failures in a row."), JSON_INTEGER
]


class AlertsQuery(Strict):
    tenant_id: UUID
    limit: Annotated[int, Field(ge=1, le=100), QUERY_INTEGER] = 20


class AlertSettingsRequest(Strict):
    """Who hears of failures, and when: reminders on the failures named in remind_at, then
    a daily digest at most; the schedule pauses after pause_schedule_after in a row."""

    tenant_id: UUID
    emails: list[Email] = Field(default_factory=list, max_length=20)
    webhook_url: str | None = Field(default=None, max_length=2000)
    events: list[AlertEvent] = Field(default_factory=lambda: list(AlertEvent), max_length=7)
    remind_at: list[Reminder] = Field(default_factory=lambda: [3, 10], max_length=10)
    pause_schedule_after: JsonInt = Field(default=5, ge=1, le=1000)

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for email in value:
            if len(email) > 254 or not _EMAIL.fullmatch(email):
                raise ValueError("expected e-mail addresses (name@example.com)")
        return sorted(set(value))

    @field_validator("remind_at")
    @classmethod
    def _reminders(cls, value: list[int]) -> list[int]:
        return sorted(set(value))

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[AlertEvent]) -> list[AlertEvent]:
        return sorted(set(value))


class AlertSettings(Answer):
    """The tenant's alert settings (the defaults until an admin saves some)."""

    emails: list[str]
    webhook_url: str | None = Field(
        description="The whole URL for an admin or the service; a member sees only its origin"
        " (`https://hooks.example/…`): the path of a chat webhook is its credential."
    )
    events: list[AlertEvent]
    remind_at: list[int]
    pause_schedule_after: int


class Alert(Answer):
    """One alert of the outbox: what it reports and how its delivery went."""

    id: UUID
    provider_slug: str
    event: AlertEvent
    job_id: UUID | None
    failures: int
    detail: str | None
    pause_code: str | None = Field(
        description="For `export_paused`: why, as the export's `pause_code` (admin, schema,"
        " key, refused, failing, stalled); null for every other event."
    )
    schedule_paused: bool
    status: AlertStatus
    attempts: int
    delivered: list[Literal["email", "webhook"]]
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class AlertsView(Answer):
    """The settings and the recent alerts, newest first; an admin (or the service) also
    gets the key that signs the webhook's calls (null when the secret store fails)."""

    settings: AlertSettings
    recent: list[Alert]
    webhook_signing_key: str | None = None


class AlertsSaved(Answer):
    """The settings as saved, and the key that signs the webhook's calls (null when the
    secret store fails)."""

    settings: AlertSettings
    webhook_signing_key: str | None
