"""The seeded world the security matrices run in: tenants A (acme) and B (globex) with the
same shape of data, a tenant C whose admin is also A's admin, and canary secrets.

Every row B owns carries values that can be recognised in a response body (`B_MARKERS`),
and every secret the functions hold is a canary that must never reach a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from shared.auth import mint_token
from shared.gestao.mapping import DEFAULT_MAPPING
from shared.secrets import env_var, secret_name

ISSUER = "https://matrix-project.supabase.co/auth/v1"
WORKFLOW = "wf-security-matrix"
IMAGE = "image_jobs"
RH_WEBHOOK_SECRET = "canary-rh-webhook-secret-7f3a9c"
RH_API_KEY = "canary-rh-api-key-51d0e2"
NO_WEBHOOKS = "http://127.0.0.1:9/webhook"


@dataclass(frozen=True)
class Side:
    """One tenant's seeded rows (A and B have the same shape)."""

    slug: str
    name: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    admin: uuid.UUID = field(default_factory=uuid.uuid4)  # also the owner of the credit jobs
    member: uuid.UUID = field(default_factory=uuid.uuid4)
    onecode_job: uuid.UUID = field(default_factory=uuid.uuid4)  # pending, due
    acessorias_job: uuid.UUID = field(default_factory=uuid.uuid4)  # success (history)
    bomcontrole_job: uuid.UUID = field(default_factory=uuid.uuid4)  # error (history)
    export_job: uuid.UUID = field(default_factory=uuid.uuid4)  # pending, due
    ai_pending: uuid.UUID = field(default_factory=uuid.uuid4)
    ai_queued: uuid.UUID = field(default_factory=uuid.uuid4)  # debited
    ai_running: uuid.UUID = field(default_factory=uuid.uuid4)  # debited, holds a slot

    @property
    def task_id(self) -> str:
        return f"task-{self.slug}"

    @property
    def lead_ids(self) -> tuple[int, int]:
        base = 710_000_000 if self.slug == "acme" else 820_000_000
        return base + 1, base + 2

    @property
    def lead_name(self) -> str:
        return f"Lead {self.name}-Sigilo"

    @property
    def lead_email(self) -> str:
        return f"lead.{self.slug}@sigilo.example"

    @property
    def lead_phone(self) -> str:
        return "11987650001" if self.slug == "acme" else "21976540002"

    @property
    def webhook_secret(self) -> str:
        """The tenant's Gestão Scouter webhook secret (the remote's bearer)."""
        return f"canary-whsec-{self.slug}-0f9e8d7c6b5a"

    @property
    def admin_token(self) -> str:
        return mint_token(user_id=self.admin)

    def provider_secrets(self) -> dict[str, str]:
        """The tenant's stored credentials: every one a canary."""
        names = {
            ("acessorias", "token"): f"canary-acessorias-token-{self.slug}-91ab",
            ("onecode", "token"): f"canary-onecode-token-{self.slug}-82cd",
            ("bomcontrole", "api_key"): f"canary-bomcontrole-key-{self.slug}-73ef",
            ("gestao-scouter", "service_key"): f"canary-gestao-service-key-{self.slug}-64ab",
            ("gestao-scouter", "webhook_secret"): self.webhook_secret,
        }
        return {env_var(secret_name(self.slug, p, k)): v for (p, k), v in names.items()}


@dataclass(frozen=True)
class World:
    url: str
    a: Side
    b: Side
    c: Side  # A's admin is admin here too: a filter by "admin somewhere" would pass

    def env(self, *, jwks_url: str, upstream_url: str) -> dict[str, str]:
        """Settings of every matrix test: canary secrets, every upstream on loopback."""
        env = {
            "DATABASE_URL": self.url,
            "JWT_ISSUER": ISSUER,
            "JWKS_URL": jwks_url,
            "ACESSORIAS_BASE_URL": upstream_url,
            "ONECODE_BASE_URL": upstream_url,
            "BOMCONTROLE_BASE_URL": upstream_url,
            "RUNNINGHUB_BASE_URL": upstream_url,
            "RUNNINGHUB_API_KEY": RH_API_KEY,
            "RUNNINGHUB_WEBHOOK_SECRET": RH_WEBHOOK_SECRET,
            "RUNNINGHUB_WEBHOOK_URL": NO_WEBHOOKS,
            "RUNNINGHUB_RETRY_ATTEMPTS": "1",
            "RUNNINGHUB_TIMEOUT_S": "2",
            "PROVIDER_RETRY_ATTEMPTS": "1",
            "ACESSORIAS_EMPTY_RECHECKS": "0",
            "GESTAO_SCOUTER_RETRIES": "0",
            "GESTAO_SCOUTER_TIMEOUT_S": "2",
            "GESTAO_SCOUTER_BUDGET_S": "5",
            "GESTAO_SCOUTER_RELOAD_WAIT_S": "0",
            "SSE_MAX_SECONDS": "1",
        }
        for side in (self.a, self.b):
            env.update(side.provider_secrets())
        return env

    def canaries(self) -> dict[str, str]:
        """Every stored secret and lead's personal data, by a name that says which."""
        found = {"runninghub api key": RH_API_KEY, "runninghub webhook secret": RH_WEBHOOK_SECRET}
        for side in (self.a, self.b):
            found.update(
                {f"{name} ({side.slug})": v for name, v in side.provider_secrets().items()}
            )
            found.update(
                {
                    f"lead name ({side.slug})": side.lead_name,
                    f"lead email ({side.slug})": side.lead_email,
                    f"lead phone ({side.slug})": side.lead_phone,
                }
            )
        return found


def b_markers(world: World) -> dict[str, str]:
    """What of B's must never appear in a response to A: ids, slug, name, lead values."""
    b = world.b
    markers = {
        "B tenant id": str(b.id),
        "B slug": b.slug,
        "B name": b.name,
        "B admin id": str(b.admin),
        "B member id": str(b.member),
        "B lead name": b.lead_name,
        "B lead email": b.lead_email,
        "B lead phone": b.lead_phone,
        "B task id": b.task_id,
    }
    for attr in (
        "onecode_job",
        "acessorias_job",
        "bomcontrole_job",
        "export_job",
        "ai_pending",
        "ai_queued",
        "ai_running",
    ):
        markers[f"B {attr}"] = str(getattr(b, attr))
    markers.update({f"B lead id {n}": str(i) for n, i in enumerate(b.lead_ids)})
    return markers


def rh_signature(job_id: uuid.UUID, table: str = IMAGE, secret: str = RH_WEBHOOK_SECRET) -> str:
    """The webhook URL signature RunningHub is given for one job."""
    return hmac.new(secret.encode(), f"{table}:{job_id}".encode(), hashlib.sha256).hexdigest()


def one_off(secret: str) -> str:
    """The secret with its last character changed: the case a comparison exists for."""
    last = secret[-1]
    return secret[:-1] + ("0" if last != "0" else "1")


def seed_world(url: str, upstream_url: str) -> World:
    """Seed A, B and C (with the same rows for A and B) into a fresh database."""
    world = World(url, Side("acme", "Acme"), Side("globex", "Globex"), Side("initech", "Initech"))
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO credit_prices (job_table, workflow_id, credits) VALUES (%s, %s, 10)",
            [IMAGE, WORKFLOW],
        )
        for side in (world.a, world.b, world.c):
            conn.execute(
                "INSERT INTO tenants (id, slug, name) VALUES (%s, %s, %s)",
                [side.id, side.slug, side.name],
            )
        conn.execute(
            "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%s, %s, 'admin')",
            [world.c.id, world.a.admin],
        )
        for side in (world.a, world.b):
            _seed_side(conn, side, upstream_url)
    return world


Conn = psycopg.Connection[tuple[object, ...]]


def _seed_side(conn: Conn, s: Side, upstream_url: str) -> None:
    _seed_tenancy(conn, s, upstream_url)
    _seed_queue(conn, s)
    _seed_gestao(conn, s, upstream_url)
    _seed_credits(conn, s)


def _seed_tenancy(conn: Conn, s: Side, upstream_url: str) -> None:
    conn.execute(
        "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%s, %s, 'admin'),"
        " (%s, %s, 'member')",
        [s.id, s.admin, s.id, s.member],
    )
    integrations = {"acessorias": {}, "onecode": {}, "bomcontrole": {},
                    "gestao-scouter": {"project_url": upstream_url}}  # fmt: skip
    for provider, config in integrations.items():
        conn.execute(
            "INSERT INTO tenant_integrations (tenant_id, provider_slug, enabled, config)"
            " VALUES (%s, %s, true, %s)",
            [s.id, provider, Jsonb(config)],
        )


def _seed_queue(conn: Conn, s: Side) -> None:
    jobs = ((s.onecode_job, "onecode", "pending"), (s.acessorias_job, "acessorias", "success"),
            (s.bomcontrole_job, "bomcontrole", "error"))  # fmt: skip
    for job_id, provider, status in jobs:
        conn.execute(
            "INSERT INTO integration_jobs (id, tenant_id, provider_slug, status, payload,"
            " created_by) VALUES (%s, %s, %s, %s, %s, %s)",
            [job_id, s.id, provider, status, Jsonb({"note": f"{s.name} payload"}), s.admin],
        )
        conn.execute(
            "INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message)"
            " VALUES (%s, %s, %s, %s, %s)",
            [job_id, s.id, provider, status, f"{s.name} {status}"],
        )
    conn.execute(
        "INSERT INTO acessorias_companies (tenant_id, external_id, razao) VALUES (%s, %s, %s)",
        [s.id, f"{s.slug}-1", f"{s.name} Razao Sigilosa"],
    )


def _seed_gestao(conn: Conn, s: Side, upstream_url: str) -> None:
    now = datetime.now(UTC)
    for n, lead_id in enumerate(s.lead_ids):
        conn.execute(
            "INSERT INTO leads (tenant_id, id, name, email, telefone, criado, updated_at,"
            " sync_source) VALUES (%s, %s, %s, %s, %s, %s, %s, 'tabuladormax')",
            [s.id, lead_id, s.lead_name, s.lead_email, s.lead_phone,
             now - timedelta(days=2 - n), now - timedelta(days=1)],
        )  # fmt: skip
    conn.execute(
        "INSERT INTO gestao_scouter_export_jobs (id, tenant_id, status, total_leads,"
        " field_mappings, batch_size, created_by) VALUES (%s, %s, 'pending', 2, %s, 50, %s)",
        [s.export_job, s.id, Jsonb(DEFAULT_MAPPING), s.admin],
    )
    conn.execute(
        "INSERT INTO gestao_scouter_export_errors (job_id, tenant_id, lead_id, error_message,"
        " response_status, lead_snapshot, fields_sent) VALUES (%s, %s, %s, %s, 400, %s, %s)",
        [s.export_job, s.id, s.lead_ids[0], f"{s.name} refused",
         Jsonb({"name": s.lead_name}), Jsonb(["name"])],
    )  # fmt: skip
    conn.execute(
        "INSERT INTO gestao_scouter_schema_cache (tenant_id, project_url, columns)"
        " VALUES (%s, %s, %s)",
        [s.id, upstream_url, Jsonb({})],
    )


def _seed_credits(conn: Conn, s: Side) -> None:
    """A pending job, a queued one and one holding a slot (both debited)."""
    now = datetime.now(UTC)
    conn.execute("INSERT INTO credit_accounts (user_id, balance) VALUES (%s, 100)", [s.admin])
    for job_id, status in ((s.ai_pending, "pending"), (s.ai_queued, "queued"),
                           (s.ai_running, "running")):  # fmt: skip
        held = status == "running"
        conn.execute(
            "INSERT INTO ai_jobs (job_table, id, user_id, status, workflow_id, session_id,"
            " external_task_id, started_at, queued_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [IMAGE, job_id, s.admin, status, WORKFLOW, f"{s.slug}-session",
             s.task_id if held else None, now if held else None,
             now if status == "queued" else None],
        )  # fmt: skip
        if status != "pending":
            conn.execute(
                "INSERT INTO credit_ledger (user_id, amount, kind, job_table, job_id)"
                " VALUES (%s, 10, 'debit', %s, %s)",
                [s.admin, IMAGE, job_id],
            )
