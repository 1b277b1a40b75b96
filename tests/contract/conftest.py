"""Fixtures of the contract tests: a world to fuzz the gateway in: tenant `acme` with every
integration, each against its emulator (Acessórias, OneCode, BomControle, the Gestão
Scouter project) with its credentials, and tokens for a member, an admin and the service."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import pytest

from infra.emulators._common import ServerHandle
from shared.credits.models import CreditJobTable
from tests.integration.gestao_support import Remote, secrets_env
from tests.provider_support import fleet_secrets_env, fleet_servers
from tests.support import TenantFixture, seed_tenant, service_token

# The workflow the fuzzer's jobs run, priced in both job tables (prices live in the database,
# so the document cannot list them: the test aims well-formed /create calls at this one).
PRICED_WORKFLOW = "fuzz-render"

# A loopback port nothing listens on: RunningHub calls (and any default URL) fail at once.
CLOSED = "http://127.0.0.1:9"

# Settings that keep each fuzzed call short: event streams end after a second, the worker
# and the export runner stop early, and no outside API is ever the default target.
FUZZ_ENV = {
    "SSE_MAX_SECONDS": "1",
    "SSE_PING_S": "0.5",
    "WORKER_BUDGET_S": "2",
    "GESTAO_SCOUTER_BUDGET_S": "2",
    "GESTAO_SCOUTER_RETRIES": "0",
    "GESTAO_SCOUTER_RELOAD_WAIT_S": "0.2",
    "ACESSORIAS_BASE_URL": CLOSED,
    "ONECODE_BASE_URL": CLOSED,
    "BOMCONTROLE_BASE_URL": CLOSED,
    "RUNNINGHUB_BASE_URL": CLOSED,
}


@dataclass(frozen=True)
class World:
    """What the fuzzer calls with: the tenant and a token per role."""

    tenant: TenantFixture
    tokens: dict[str, str]
    users: dict[str, UUID | None]  # the user each role's token is for (None: the service)
    database_url: str


@pytest.fixture(scope="module")
def providers() -> Iterator[dict[str, ServerHandle]]:
    with fleet_servers() as handles:
        yield handles


@pytest.fixture
def world(
    database_url: str,
    remote_server: Remote,
    providers: dict[str, ServerHandle],
    configure: Any,
) -> World:
    """A fresh database with tenant `acme` wired to every provider and to the remote
    (`remote_server`: tests.integration.gestao_fixtures, a plugin of the fuzz module)."""
    remote_server.reset()
    # The Acessórias emulator's per-token rate limit (the real API's) is not under test here:
    # hundreds of fuzzed syncs a minute would only meet its 429s.
    providers["acessorias"].state.knobs.update({"rate_limit_per_min": 1_000_000})
    configure(**secrets_env(remote_server.state.service_key), **fleet_secrets_env(), **FUZZ_ENV)
    config = {p: {"base_url": handle.url} for p, handle in providers.items()}
    tenant = seed_tenant(
        database_url,
        "acme",
        providers={**config, "gestao-scouter": {"project_url": remote_server.url}},
    )
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO credit_prices (job_table, workflow_id, credits)"
            " SELECT t, %s, 10 FROM unnest(%s::text[]) AS t",
            [PRICED_WORKFLOW, [t.value for t in CreditJobTable]],
        )
    tokens = {
        "member": tenant.member_token,
        "admin": tenant.admin_token,
        "service": service_token(),
    }
    users = {"member": tenant.member, "admin": tenant.admin, "service": None}
    return World(tenant, tokens, users, database_url)
