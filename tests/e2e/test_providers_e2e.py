"""End to end, seed 002 flow 4 on the real stack: two tenants x three providers clicked at
once over HTTP; only Cloud Tasks (gcloud-tasks-emulator) wakes the worker, which syncs
OneCode, BomControle and Acessórias against their emulators. Every job succeeds and every
table holds exactly each tenant's emulator data."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from infra.emulators._common import ServerHandle
from shared.providers import acessorias, bomcontrole, onecode
from shared.settings import Settings
from tests.e2e.conftest import wait_until
from tests.provider_support import (
    FLEET_SIZES,
    FLEET_TENANTS,
    fleet_credential,
    fleet_secrets_env,
    fleet_servers,
)
from tests.support import rows, seed_tenant

pytestmark = [pytest.mark.db, pytest.mark.e2e, pytest.mark.slow]
TABLES = {
    "acessorias": "acessorias_companies",
    "onecode": "onecode_contacts",
    "bomcontrole": "bomcontrole_financial_entries",
}


def emulator_keys(handle: ServerHandle, provider: str, token: str) -> list[str]:
    """The keys a sync must store for this tenant: the emulator's records, mapped as the
    provider maps them."""
    state: Any = handle.state
    if provider == "acessorias":
        mapped = [acessorias.map_company(r) for r in state.companies(token)]
    elif provider == "onecode":
        mapped = [onecode.map_contact(r) for r in state.contacts(token)]
    else:
        mapped = [bomcontrole.map_entry(r, Settings()) for r in state.items(token)]
    return sorted(row["external_id"] for row in mapped if row is not None)


@pytest.fixture
def emulators() -> Iterator[dict[str, ServerHandle]]:
    with fleet_servers() as handles:
        yield handles


@pytest.fixture
def stack_env() -> dict[str, str]:
    return fleet_secrets_env()


def test_six_clicks_drain_through_cloud_tasks_with_exact_data(
    database_url: str, emulators: dict[str, ServerHandle], stack: str
) -> None:
    config = {p: {"base_url": h.url} for p, h in emulators.items()}
    tenants = [seed_tenant(database_url, slug, providers=config) for slug in FLEET_TENANTS]

    def click(client: httpx.Client, index: int, provider: str) -> httpx.Response:
        tenant = tenants[index]
        return client.post(
            f"{stack}/run-integration",
            headers={"Authorization": f"Bearer {tenant.admin_token}"},
            json={"tenant_id": str(tenant.id), "provider_slug": provider},
        )

    with httpx.Client(timeout=15) as client, ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(lambda a: click(client, *a), [(i, p) for i in range(2) for p in FLEET_SIZES])
        )
    assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]

    def settled() -> bool:
        jobs = rows(database_url, "SELECT status FROM integration_jobs")
        return all(j["status"] in ("success", "error", "canceled") for j in jobs)

    wait_until(settled, 120, "six jobs to finish")
    jobs = rows(database_url, "SELECT tenant_id, provider_slug, status, error_message, result"
                " FROM integration_jobs")  # fmt: skip
    assert len(jobs) == 6
    for job in jobs:
        assert job["status"] == "success", job["error_message"]
        assert job["result"]["records"] == FLEET_SIZES[job["provider_slug"]]
    for provider, table in TABLES.items():
        for tenant in tenants:
            stored = rows(
                database_url,
                f"SELECT external_id FROM {table} WHERE tenant_id = %s",
                tenant.id,
            )
            expected = emulator_keys(
                emulators[provider], provider, fleet_credential(tenant.slug, provider)
            )
            assert sorted(r["external_id"] for r in stored) == expected, provider
    logs = rows(database_url, "SELECT status, count(*) AS n FROM integration_logs GROUP BY 1")
    assert {r["status"]: r["n"] for r in logs} == {"pending": 6, "running": 6, "success": 6}
    last = rows(database_url, "SELECT last_status FROM tenant_integrations")
    assert [r["last_status"] for r in last] == ["success"] * 6
