"""Request models of the queue's functions."""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.contract import QUERY_INTEGER, QUERY_NUMBER, Strict
from shared.cron import Missed, parse_cron, place_zone
from shared.providers import PROVIDERS
from shared.queue.models import JobStatus, Trigger

_SECRETISH = re.compile(r"token|secret|password|passwd|api[_-]?key|authorization|credential", re.I)
# Values that are credentials whatever their key: JWTs, bearer headers, Supabase keys.
_SECRET_VALUE = re.compile(r"eyJ[\w-]+\.[\w-]+\.|(?i:\bbearer\s+\S{8,})|\bsb_secret_")
_SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
_PROVIDER_ENUM: dict[str, Any] = {"enum": sorted(PROVIDERS)}  # the document's _check_provider


def _check_provider(slug: str) -> str:
    if slug not in PROVIDERS:
        raise ValueError(f"unknown provider; expected one of {sorted(PROVIDERS)}")
    return slug


def _no_secrets(value: Any, depth: int = 0) -> None:
    if depth > 8:
        raise ValueError("payload is nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            if _SECRETISH.search(str(key)):
                raise ValueError(
                    "payload must not carry credentials; they live in the secret store"
                )
            _no_secrets(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _no_secrets(item, depth + 1)
    elif isinstance(value, str) and _SECRET_VALUE.search(value):
        raise ValueError("payload must not carry credentials; they live in the secret store")


def _options(options: type[BaseModel], value: dict[str, Any]) -> None:
    """The payload as the provider's options declare them; else what is wrong, by key."""
    try:
        options.model_validate(value)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False, include_context=False)
        said = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in problems)
        raise ValueError(f"not an option of this provider ({said})") from None


class RunIntegrationRequest(Strict):
    tenant_id: UUID
    provider_slug: str = Field(json_schema_extra=_PROVIDER_ENUM)
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description='The provider\'s options: BomControle takes `{"full": true}` (read every '
        "installment again); the others take none (`{}`). Never credentials: no key like "
        "token, secret, password, api_key, authorization or credential, no JWT or bearer "
        "value (they live in the secret store).",
    )

    retry_of: UUID | None = Field(
        default=None,
        description="Run a failed or canceled job of this integration again: the new job's "
        "trigger is `retry` and, when `payload` is empty, it gets that job's payload.",
    )

    _provider = field_validator("provider_slug")(_check_provider)

    @field_validator("payload")
    @classmethod
    def _payload_clean(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        _no_secrets(value)
        provider = PROVIDERS.get(info.data.get("provider_slug", ""))
        if provider is not None:
            _options(provider.options, value)
        return value


class ProcessRequest(Strict):
    job_id: UUID | None = None


class JobRef(Strict):
    job_id: UUID


class TenantQuery(Strict):
    tenant_id: UUID


class ListJobsQuery(Strict):
    tenant_id: UUID
    provider_slug: str | None = Field(
        default=None, json_schema_extra={"enum": [*_PROVIDER_ENUM["enum"], None]}
    )
    status: JobStatus | None = None
    trigger: Trigger | None = None
    limit: Annotated[int, Field(ge=1, le=200), QUERY_INTEGER] = 50
    before: UUID | None = None

    @field_validator("provider_slug")
    @classmethod
    def _provider(cls, value: str | None) -> str | None:
        return None if value is None else _check_provider(value)


class EventsQuery(Strict):
    tenant_id: UUID
    max_seconds: Annotated[float, Field(gt=0, le=3600), QUERY_NUMBER] | None = None


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


class SyncRequest(Strict):
    """The sync-<provider> functions' body: `{tenant_id | tenant_slug, job_id?}` (exactly
    one tenant field); `job_id` runs a pending job of that tenant and provider."""

    # The document says "exactly one": both, or neither, match one branch each.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["tenant_id"], "properties": {"tenant_id": {"type": "string"}}},
                {"required": ["tenant_slug"], "properties": {"tenant_slug": {"type": "string"}}},
            ]
        },
    )

    tenant_id: UUID | None = None
    tenant_slug: str | None = Field(default=None, pattern=_SLUG)
    job_id: UUID | None = None

    @field_validator("tenant_id", mode="before")
    @classmethod
    def _slug_in_tenant_id(cls, value: Any) -> Any:
        """A slug sent as tenant_id (`{"tenant_id": "acme"}`) is told where it goes."""
        if isinstance(value, str) and re.fullmatch(_SLUG, value) and not _is_uuid(value):
            raise PydanticCustomError(
                "slug_as_tenant_id",
                "tenant_id is the tenant's UUID; to name it by its slug, send tenant_slug.",
            )
        return value

    @model_validator(mode="after")
    def _one_tenant(self) -> SyncRequest:
        if (self.tenant_id is None) == (self.tenant_slug is None):
            raise PydanticCustomError(
                "one_tenant", "Give exactly one of tenant_id and tenant_slug."
            )
        return self


class ScheduleQuery(Strict):
    tenant_id: UUID


class ScheduleRef(Strict):
    tenant_id: UUID
    provider_slug: str = Field(json_schema_extra=_PROVIDER_ENUM)

    _provider = field_validator("provider_slug")(_check_provider)


class ScheduleRequest(ScheduleRef):
    """A schedule: five-field cron in an IANA zone; what to do with runs missed meanwhile."""

    cron: str = Field(max_length=200)
    timezone: str = Field(default="America/Sao_Paulo", max_length=64)
    enabled: StrictBool = True  # strict: lax, 1 and "yes" would be read as true
    missed: Missed = Missed.ONCE
    spread: StrictBool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return parse_cron(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        place_zone(value)
        return value
