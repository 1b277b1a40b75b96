"""The three sync-<provider> functions take one body: `tenant_id` or `tenant_slug`, not both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.emulators._common import ServerHandle
from tests.provider_support import FLEET_SIZES, fleet_secrets_env, fleet_servers
from tests.support import TenantFixture, call, rows, seed_tenant

pytestmark = pytest.mark.db
FUNCTIONS = {
    "sync-acessorias": "acessorias",
    "sync-onecode-contacts": "onecode",
    "sync-bomcontrole": "bomcontrole",
}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, ServerHandle]]:
    with fleet_servers() as handles:
        yield handles


@pytest.fixture
def tenant(database_url: str, servers: dict[str, ServerHandle], configure: Any) -> TenantFixture:
    configure(**fleet_secrets_env())
    providers = {p: {"base_url": handle.url} for p, handle in servers.items()}
    return seed_tenant(database_url, "acme", providers=providers)


def jobs(database_url: str, provider: str) -> list[dict[str, Any]]:
    return rows(
        database_url,
        "SELECT tenant_id, status FROM integration_jobs WHERE provider_slug = %s ORDER BY created_at",
        provider,
    )


@pytest.mark.parametrize("name", FUNCTIONS)
def test_either_tenant_id_or_tenant_slug_runs_the_sync(
    database_url: str, tenant: TenantFixture, name: str
) -> None:
    provider = FUNCTIONS[name]
    by_id = call(name, {"tenant_id": str(tenant.id)}, token=tenant.admin_token)
    assert by_id.status_code == 200, by_id.get_json()
    by_slug = call(name, {"tenant_slug": "acme"}, token=tenant.admin_token)
    assert by_slug.status_code == 200, by_slug.get_json()
    assert by_id.get_json()["job_id"] != by_slug.get_json()["job_id"]
    assert by_id.get_json()["records"] == FLEET_SIZES[provider]
    # The same rows again, except BomControle's: its second run reads only what changed since.
    again = 0 if provider == "bomcontrole" else FLEET_SIZES[provider]
    assert by_slug.get_json()["records"] == again
    assert jobs(database_url, provider) == [
        {"tenant_id": tenant.id, "status": "success"},
        {"tenant_id": tenant.id, "status": "success"},
    ]
    member = call(name, {"tenant_slug": "acme"}, token=tenant.member_token)
    assert member.status_code == 403  # admin (or the service) only, whichever the form


@pytest.mark.parametrize("name", FUNCTIONS)
def test_both_neither_or_a_bad_slug_is_refused(
    database_url: str, tenant: TenantFixture, name: str
) -> None:
    tid = str(tenant.id)
    one_tenant = "Give exactly one of tenant_id and tenant_slug."
    slug_as_id = "tenant_id is the tenant's UUID; to name it by its slug, send tenant_slug."
    a_uuid = "Input should be a UUID, such as 123e4567-e89b-12d3-a456-426614174000."
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        ({"tenant_id": tid, "tenant_slug": "acme"}, 422, one_tenant),
        ({}, 422, one_tenant),
        ({"tenant_id": None, "tenant_slug": None}, 422, one_tenant),
        ({"job_id": "6f1f4a4e-3a8e-4d8b-9a57-2f0b0b7c8e11"}, 422, one_tenant),
        ({"tenant_slug": "Acme Inc"}, 422, None),
        ({"tenant_slug": ""}, 422, None),
        ({"tenant_slug": 7}, 422, None),
        ({"tenant_id": "acme"}, 422, slug_as_id),  # said where a slug goes
        ({"tenant_id": "not a uuid"}, 422, a_uuid),  # not a parser's words
        ({"tenant_id": 7}, 422, a_uuid),
        ({"tenant_slug": "acme", "tenant": "acme"}, 422, None),
        ({"tenant_slug": "unknown-tenant"}, 403, None),
    ]
    for body, status, message in cases:
        response = call(name, body, token=tenant.admin_token)
        assert response.status_code == status, (body, response.get_json())
        error = response.get_json()["error"]
        if status == 422:
            assert error["code"] == "validation_error"
        if message is not None:
            assert [d["message"] for d in error["details"]] == [message], body
    assert rows(database_url, "SELECT count(*) AS n FROM integration_jobs")[0]["n"] == 0


@pytest.mark.parametrize("name", FUNCTIONS)
def test_an_unknown_tenant_answers_as_a_foreign_one_so_tenants_cannot_be_probed(
    database_url: str, name: str
) -> None:
    """tenancy.require_role: "An unknown tenant answers the same 403 as a foreign one, so ids
    cannot be probed". A user of one tenant must not learn whether a slug or an id is
    another company's tenant from the sync functions' answers."""
    mine = seed_tenant(database_url, "acme")
    foreign = seed_tenant(database_url, "globex")
    for foreign_body, unknown_body in (
        ({"tenant_slug": foreign.slug}, {"tenant_slug": "no-such-tenant"}),
        ({"tenant_id": str(foreign.id)}, {"tenant_id": str(uuid.uuid4())}),
    ):
        to_foreign = call(name, foreign_body, token=mine.admin_token)
        to_unknown = call(name, unknown_body, token=mine.admin_token)
        assert to_foreign.status_code == to_unknown.status_code == 403
        assert to_foreign.get_json() == to_unknown.get_json()
    assert rows(database_url, "SELECT id FROM integration_jobs") == []
