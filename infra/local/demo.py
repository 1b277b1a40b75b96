"""Demo data for the local stack: two tenants, an admin and a member each, integrations on,
and leads to export (the same ids in both tenants: each exports to its own remote project).

Fixed ids so the printed tokens and curl lines stay valid across restarts. Each provider
that needs credentials gets a per-tenant token that its emulator is seeded with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.secrets import env_var, secret_name
from shared.sqlfiles import query


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    id: uuid.UUID
    admin: uuid.UUID
    member: uuid.UUID


TENANTS = (
    DemoTenant(
        "acme", "Acme Contabilidade",
        uuid.UUID("11111111-1111-4111-8111-111111111111"),
        uuid.UUID("a0000000-0000-4000-8000-00000000000a"),
        uuid.UUID("b0000000-0000-4000-8000-00000000000b"),
    ),
    DemoTenant(
        "globex", "Globex Serviços",
        uuid.UUID("22222222-2222-4222-8222-222222222222"),
        uuid.UUID("a0000000-0000-4000-8000-0000000000aa"),
        uuid.UUID("b0000000-0000-4000-8000-0000000000bb"),
    ),
)  # fmt: skip


def demo_users() -> dict[str, uuid.UUID]:
    """The demo users by name: `acme-admin`, `acme-member`, `globex-admin`, ..."""
    return {
        f"{t.slug}-{role}": user
        for t in TENANTS
        for role, user in (("admin", t.admin), ("member", t.member))
    }


@dataclass(frozen=True)
class DemoProvider:
    """How the demo wires a provider: its emulator's port and the secrets it needs."""

    slug: str
    port: int
    secret_keys: tuple[str, ...] = ("token",)
    records: int = 120
    config: dict[str, Any] = field(default_factory=dict)


# One entry per provider. `config` may use {base_url}, filled with the emulator's URL.
PROVIDERS: list[DemoProvider] = [
    DemoProvider("acessorias", 8101, config={"base_url": "{base_url}"}),
    DemoProvider("onecode", 8102, records=500, config={"base_url": "{base_url}"}),
    DemoProvider("bomcontrole", 8103, ("api_key",), 2000, config={"base_url": "{base_url}"}),
    DemoProvider(
        "gestao-scouter", 8105, ("service_key", "webhook_secret"), 0, {"project_url": "{base_url}"}
    ),
]


DEMO_CREDITS = 100
# Each tenant's leads, created over the last DEMO_LEAD_DAYS days (seeded once: a tenant that
# has leads keeps them; `ops export seed-leads` adds more).
DEMO_LEADS = 5_000
DEMO_LEAD_DAYS = 90
# Prices of the demo workflow (the RunningHub emulator runs any id): the server sets a
# job's cost from these, and refuses a workflow without one.
DEMO_WORKFLOW = "1904136902449209346"
DEMO_PRICES = {"image_jobs": 10, "video_jobs": 25}


def demo_secret(tenant: DemoTenant, provider: str, key: str) -> str:
    """The demo credential (also what the emulator is seeded with)."""
    return f"demo-{tenant.slug}-{provider}-{key}"


def secret_env(host: str = "127.0.0.1") -> dict[str, str]:
    """Environment variables that hold the demo credentials for the env secret store."""
    return {
        env_var(secret_name(t.slug, p.slug, key)): demo_secret(t, p.slug, key)
        for t in TENANTS
        for p in PROVIDERS
        for key in p.secret_keys
    }


def remote_project_ref(tenant: DemoTenant) -> str:
    """The tenant's own Gestão Scouter project (one emulator and database each locally)."""
    return f"gestaoscouter{tenant.slug}"


def _port_key(provider: str, index: int) -> str:
    """Which emulator serves a tenant: one per provider, but a remote project per tenant
    (`gestao-scouter` for the first, `gestao-scouter-2` for the second)."""
    return f"{provider}-{index + 1}" if provider == "gestao-scouter" and index else provider


def seed(database_url: str, ports: dict[str, int], host: str = "127.0.0.1") -> None:
    """Insert the demo tenants, members and integrations (idempotent)."""
    with psycopg.connect(database_url) as conn:
        for table, credits in DEMO_PRICES.items():
            conn.execute(
                "INSERT INTO credit_prices (job_table, workflow_id, credits) VALUES (%s, %s, %s)"
                " ON CONFLICT (job_table, workflow_id) DO NOTHING",
                [table, DEMO_WORKFLOW, credits],
            )
        for index, t in enumerate(TENANTS):
            conn.execute(
                "INSERT INTO tenants (id, slug, name) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO NOTHING",
                [t.id, t.slug, t.name],
            )
            for user, role in ((t.admin, "admin"), (t.member, "member")):
                conn.execute(
                    "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    [t.id, user, role],
                )
            for user in (t.admin, t.member):  # credits to try the AI-render queue
                conn.execute(
                    "INSERT INTO credit_accounts (user_id, balance) VALUES (%s, %s)"
                    " ON CONFLICT (user_id) DO NOTHING",
                    [user, DEMO_CREDITS],
                )
            conn.execute(  # failure alerts by e-mail (the local SMTP sink keeps them)
                "INSERT INTO alert_settings (tenant_id, emails) VALUES (%s, %s)"
                " ON CONFLICT (tenant_id) DO NOTHING",
                [t.id, [f"ops@{t.slug}.example"]],
            )
            _seed_leads(conn, t)
            for p in PROVIDERS:
                key = _port_key(p.slug, index)
                base_url = f"http://{host}:{ports.get(key, p.port + (2 if key != p.slug else 0))}"
                config = {k: v.format(base_url=base_url) for k, v in p.config.items()}
                conn.execute(
                    "INSERT INTO tenant_integrations (tenant_id, provider_slug, enabled, config)"
                    " VALUES (%s, %s, true, %s) ON CONFLICT (tenant_id, provider_slug)"
                    " DO UPDATE SET config = EXCLUDED.config",
                    [t.id, p.slug, Jsonb(config)],
                )


def _seed_leads(conn: psycopg.Connection[Any], tenant: DemoTenant) -> None:
    """DEMO_LEADS leads for the tenant, unless it has some already."""
    if conn.execute("SELECT 1 FROM leads WHERE tenant_id = %s LIMIT 1", [tenant.id]).fetchone():
        return
    first_day = datetime.now(UTC).date() - timedelta(days=DEMO_LEAD_DAYS)
    seed_leads(conn, tenant.id, DEMO_LEADS, first_day, DEMO_LEAD_DAYS)


def seed_leads(
    conn: psycopg.Connection[Any], tenant_id: uuid.UUID, count: int, first_day: date, days: int
) -> int:
    """`count` demo leads for the tenant, ids after its highest, created over `days` UTC days
    from `first_day` (UTC, as syncq's days are, whatever the session's zone); how many."""
    first = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    params = {"tenant_id": tenant_id, "count": count, "first_day": first,
              "spread_s": days * 86400}  # fmt: skip
    return conn.execute(query("gestao", "seed_leads"), params).rowcount
