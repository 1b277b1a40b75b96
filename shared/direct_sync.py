"""The sync-<provider> functions: one request body for all, one action per provider.

A tenant is named by `tenant_id` or by `tenant_slug` (exactly one); `job_id` runs a pending
job of that tenant and provider instead of taking the slot with a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from shared.auth import Principal
from shared.queue.service import run_direct

TENANT_SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"


class SyncRequest(BaseModel):
    """`{tenant_id | tenant_slug, job_id?}`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    tenant_id: UUID | None = None
    tenant_slug: str | None = Field(default=None, pattern=TENANT_SLUG)
    job_id: UUID | None = None

    @model_validator(mode="after")
    def _one_tenant(self) -> SyncRequest:
        if (self.tenant_id is None) == (self.tenant_slug is None):
            raise PydanticCustomError(
                "one_tenant", "Give exactly one of tenant_id and tenant_slug."
            )
        return self


SyncAction = Callable[[Principal, SyncRequest], dict[str, Any]]


def sync_action(provider_slug: str) -> SyncAction:
    """The action of `sync-<provider>`: run that provider's sync now, in this request."""

    def sync(principal: Principal, req: SyncRequest) -> dict[str, Any]:
        return run_direct(
            principal,
            provider_slug,
            tenant_id=req.tenant_id,
            tenant_slug=req.tenant_slug,
            job_id=req.job_id,
        )

    return sync
