"""list-integrations: a tenant's integrations as the Integrações page shows them.

Each with its newest job (the card's badge and progress), read as the caller under RLS.
`runnable` says whether run-integration can queue it (a provider of the job queue); the
Gestão Scouter export has its own function.
"""

from __future__ import annotations

from typing import Any

from shared import db
from shared.auth import Principal
from shared.providers import PROVIDERS
from shared.queue.models import Job
from shared.queue.schemas import TenantQuery
from shared.sqlfiles import query
from shared.tenancy import Role, reading_as, require_role

# Integrations that are not providers of the job queue still need a name on their card.
OTHER_NAMES = {"gestao-scouter": "Gestão Scouter"}


def display_name(slug: str) -> str:
    """The provider's name as people know it (the slug when unknown)."""
    provider = PROVIDERS.get(slug)
    return provider.display_name if provider else OTHER_NAMES.get(slug, slug)


def list_integrations(principal: Principal, req: TenantQuery) -> dict[str, Any]:
    """The tenant's integrations (a member), each with its newest job or None."""
    with db.transaction() as conn:
        require_role(conn, principal, req.tenant_id, Role.MEMBER)
    with reading_as(principal) as conn:
        found = conn.execute(query("tenancy", "list_integrations"), {"tenant_id": req.tenant_id})
        rows = found.fetchall()
    return {
        "integrations": [
            {
                "provider_slug": r["provider_slug"],
                "display_name": display_name(r["provider_slug"]),
                "enabled": r["enabled"],
                "runnable": r["provider_slug"] in PROVIDERS,
                "last_run": r["last_run"].isoformat() if r["last_run"] else None,
                "last_status": r["last_status"],
                "last_error": r["last_error"],
                "latest_job": (
                    Job.model_validate(r["latest_job"]).model_dump(mode="json")
                    if r["latest_job"]
                    else None
                ),
            }
            for r in rows
        ]
    }
