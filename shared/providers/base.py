"""The provider interface: one module per provider, each exposing a `Provider`.

A provider pages through its API and upserts in batches. It reports progress through the
context (which is the job's heartbeat and where a cancel is noticed) and raises
`UpstreamError` for provider failures; `retryable=False` skips the remaining attempts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import httpx
from pydantic import BaseModel, ConfigDict

from shared.db import Conn
from shared.errors import UpstreamError
from shared.http import HttpClient, RetryPolicy
from shared.settings import Settings
from shared.tenancy import Tenant


@dataclass
class SyncResult:
    """What a sync did; stored as the job's result (never credentials)."""

    records: int = 0
    pages: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "pages": self.pages, **self.extra}


class SyncContext(Protocol):
    """What a provider gets from whoever runs it (the worker or a direct call)."""

    @property
    def tenant(self) -> Tenant: ...

    @property
    def job_id(self) -> UUID: ...

    @property
    def config(self) -> Mapping[str, Any]: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def payload(self) -> Mapping[str, Any]: ...

    def progress(self, percent: int) -> None:
        """Heartbeat with progress 0-100; raises JobCanceled when a cancel was requested."""

    def transaction(self) -> AbstractContextManager[Conn]:
        """A database transaction for the provider's upserts."""

    def last_success_at(self) -> Any:
        """When this tenant's last successful sync of this provider started (or None)."""


class NoOptions(BaseModel):
    """A provider that takes no options: its job payload must be `{}`."""

    model_config = ConfigDict(extra="forbid")


class Provider(Protocol):
    slug: str
    display_name: str

    @property
    def options(self) -> type[BaseModel]:
        """What a job's payload may hold (run-integration refuses anything else)."""

    def sync(self, ctx: SyncContext) -> SyncResult: ...


def http_client(
    base_url: str, settings: Settings, name: str, *, secret: str | None = None
) -> HttpClient:
    """A provider's client for its base URL, retried and timed out by the PROVIDER_* settings;
    the tenant's `secret` never appears in an error it raises."""
    policy = RetryPolicy(
        attempts=settings.providers.provider_retry_attempts,
        base_s=settings.providers.provider_retry_base_s,
        cap_s=settings.providers.provider_retry_cap_s,
        timeout_s=settings.providers.provider_timeout_s,
    )
    secrets = (secret,) if secret else ()
    return HttpClient(base_url, policy, name=name, details={"provider": name}, secrets=secrets)


def raise_for_auth(response: httpx.Response, provider: str) -> None:
    """401/403 mean our credentials are wrong: retrying will not help."""
    if response.status_code in (401, 403):
        raise UpstreamError(
            f"{provider} rejected the credentials (HTTP {response.status_code}).",
            code="credentials_rejected",
            details={"provider": provider, "status": response.status_code},
            retryable=False,
        )


def progress_without_total(pages: int, *, ceiling: int = 95) -> int:
    """A progress estimate for APIs that give no total: rises fast, never reaches 100."""
    return min(ceiling, int(ceiling * (1 - 0.9**pages)))


def chunked(items: list[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
