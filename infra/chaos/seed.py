"""The chaos run's data: tenants on the three providers, an export tenant with its leads,
users with credits. Credentials are derived from the slugs, so the emulators can be seeded
with them before the database is (the stack's ports come first, the rows after)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import psycopg
from psycopg.types.json import Jsonb

from infra.chaos.sql import query
from infra.local import demo
from shared.secrets import env_var, secret_name

PROVIDERS = ("acessorias", "onecode", "bomcontrole")
SECRET_KEY = {"acessorias": "token", "onecode": "token", "bomcontrole": "api_key"}
EXPORT_SLUG = "chaos-export"
WORKFLOW = "chaos-workflow"
PRICES = {"image_jobs": 7, "video_jobs": 11}


@dataclass(frozen=True)
class Tenant:
    slug: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    admin: uuid.UUID = field(default_factory=uuid.uuid4)

    def credential(self, provider: str) -> str:
        return f"{self.slug}-{provider}-credential"


def tenants(count: int) -> list[Tenant]:
    return [Tenant(f"chaos-{n:02d}") for n in range(1, count + 1)]


def provider_tokens(fleet: list[Tenant]) -> dict[str, list[str]]:
    """Each provider's credentials, one per tenant (what its emulator is seeded with)."""
    return {p: [t.credential(p) for t in fleet] for p in PROVIDERS}


def secrets_env(fleet: list[Tenant], export: Tenant, remote_key: str) -> dict[str, str]:
    """The tenants' secrets as the env secret store reads them."""
    env = {
        env_var(secret_name(t.slug, p, SECRET_KEY[p])): t.credential(p)
        for t in fleet
        for p in PROVIDERS
    }
    env[env_var(secret_name(export.slug, "gestao-scouter", "service_key"))] = remote_key
    return env


def seed_fleet(url: str, fleet: list[Tenant], base_url: Callable[[str], str]) -> None:
    """The tenants, their admins and an enabled integration per provider."""
    with psycopg.connect(url) as conn:
        for t in fleet:
            conn.execute(query("insert_tenant"), {"id": t.id, "slug": t.slug})
            conn.execute(query("insert_member"), {"tenant_id": t.id, "user_id": t.admin})
            for p in PROVIDERS:
                conn.execute(
                    query("insert_integration"),
                    {
                        "tenant_id": t.id,
                        "provider_slug": p,
                        "config": Jsonb({"base_url": base_url(p)}),
                    },
                )


def seed_export(url: str, tenant: Tenant, project_url: str, leads: int) -> None:
    """The export tenant, its Gestão Scouter integration and its leads (the demo seeder)."""
    with psycopg.connect(url) as conn:
        conn.execute(query("insert_tenant"), {"id": tenant.id, "slug": tenant.slug})
        conn.execute(query("insert_member"), {"tenant_id": tenant.id, "user_id": tenant.admin})
        conn.execute(
            query("insert_integration"),
            {"tenant_id": tenant.id, "provider_slug": "gestao-scouter",
             "config": Jsonb({"project_url": project_url})},
        )  # fmt: skip
        demo.seed_leads(conn, tenant.id, leads, date(2024, 1, 1), 90)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE leads")


def seed_credit_users(url: str, count: int, balance: int) -> list[uuid.UUID]:
    """Users with `balance` credits, and the price of the run's workflow in both tables."""
    users = [uuid.uuid4() for _ in range(count)]
    with psycopg.connect(url) as conn:
        for table, credits in PRICES.items():
            conn.execute(
                query("insert_price"),
                {"job_table": table, "workflow_id": WORKFLOW, "credits": credits},
            )
        for user in users:
            conn.execute(query("insert_account"), {"user_id": user, "balance": balance})
    return users
