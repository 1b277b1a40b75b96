"""The five Gestão Scouter functions at the edge: auth, bad input, missing configuration."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.gestao_support import Remote, drive, seed_leads
from tests.support import TenantFixture, bearer, function_client, rows, seed_tenant, service_token

pytest_plugins = ["tests.integration.gestao_fixtures"]
pytestmark = pytest.mark.db

ADMIN_FUNCTIONS = (
    "export-to-gestao-scouter-batch",
    "validate-gestao-scouter-schema",
    "reload-gestao-scouter-schema-cache",
    "validate-gestao-scouter-config",
)


def post(name: str, body: Any, token: str | None, query: str = "") -> Any:
    client = function_client(name)
    headers = bearer(token) if token else {}
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
        return client.post(f"/{query}", data=body, headers=headers)
    return client.post(f"/{query}", json=body, headers=headers)


def test_auth_and_roles(database_url: str) -> None:
    tenant = seed_tenant(database_url, "acme", providers={"gestao-scouter": {}})
    for n, name in enumerate(ADMIN_FUNCTIONS):
        body = {"tenant_id": str(tenant.id)}
        if name.startswith("export"):
            body["action"] = "status"
        assert post(name, body, None).status_code == 401, name
        member = post(name, body, tenant.member_token)
        assert member.status_code == 403 and member.get_json()["error"]["code"] == "forbidden"
        other = seed_tenant(database_url, f"other-{n}")
        assert (
            post(name, {**body, "tenant_id": str(other.id)}, tenant.admin_token).status_code == 403
        )
    hook = post("sync-from-gestao-scouter", {"lead": {"id": 1}, "source": "gestao_scouter"},
                service_token(), "?tenant=acme")  # fmt: skip
    assert hook.status_code == 401  # our own service token is not the remote's secret


def test_bad_bodies_are_4xx_and_write_nothing(database_url: str) -> None:
    tenant = seed_tenant(database_url, "acme", providers={"gestao-scouter": {}})
    tid = str(tenant.id)
    cases: list[tuple[str, Any, int]] = [
        ("export-to-gestao-scouter-batch", {"tenant_id": tid}, 422),
        ("export-to-gestao-scouter-batch", {"tenant_id": tid, "action": "explode"}, 422),
        ("export-to-gestao-scouter-batch", {"tenant_id": "x", "action": "start"}, 422),
        ("export-to-gestao-scouter-batch", {"tenant_id": tid, "action": "start", "x": 1}, 422),
        (
            "export-to-gestao-scouter-batch",
            {"tenant_id": tid, "action": "start", "start_date": "2024-13-01"},
            422,
        ),
        (
            "export-to-gestao-scouter-batch",
            {
                "tenant_id": tid,
                "action": "start",
                "start_date": "2024-02-01",
                "end_date": "2024-01-01",
            },
            422,
        ),
        (
            "export-to-gestao-scouter-batch",
            {"tenant_id": tid, "action": "start", "end_date": 0},  # not 1970-01-01
            422,
        ),
        ("export-to-gestao-scouter-batch", {"tenant_id": tid, "action": "run"}, 422),
        (
            "export-to-gestao-scouter-batch",
            {"tenant_id": tid, "action": "status", "job_id": "1"},
            422,
        ),
        ("export-to-gestao-scouter-batch", b"{nope", 400),
        ("export-to-gestao-scouter-batch", b"[]", 400),
        ("validate-gestao-scouter-schema", {"tenant_id": tid, "field_mappings": ["id"]}, 422),
        ("validate-gestao-scouter-schema", {"tenant_id": tid, "field_mappings": {"id": 5}}, 422),
        ("validate-gestao-scouter-schema", {"tenant_id": tid, "save": True}, 422),
        # save is a JSON boolean: 1 and "yes" are not read as true (nothing saved).
        (
            "validate-gestao-scouter-schema",
            {"tenant_id": tid, "field_mappings": {"id": "id"}, "save": 1},
            422,
        ),
        (
            "validate-gestao-scouter-schema",
            {"tenant_id": tid, "field_mappings": {"id": "id"}, "save": "yes"},
            422,
        ),
        ("reload-gestao-scouter-schema-cache", {}, 422),
        ("validate-gestao-scouter-config", {"tenant_id": tid, "url": "http://x"}, 422),
    ]
    for name, body, status in cases:
        response = post(name, body, tenant.admin_token)
        assert response.status_code == status, (name, body, response.get_json())
        assert response.get_json()["error"]["code"] in ("validation_error", "invalid_json")
    wrong_method = function_client("validate-gestao-scouter-config").get(
        "/", headers=bearer(tenant.admin_token)
    )
    assert wrong_method.status_code == 405
    assert rows(database_url, "SELECT count(*) AS n FROM gestao_scouter_export_jobs")[0]["n"] == 0


def test_missing_configuration_is_explained(database_url: str, configure: Any) -> None:
    disabled = seed_tenant(database_url, "acme", providers={"gestao-scouter": {}}, enabled=False)
    response = post("export-to-gestao-scouter-batch",
                    {"tenant_id": str(disabled.id), "action": "start"}, disabled.admin_token)  # fmt: skip
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "integration_disabled"

    no_url = seed_tenant(database_url, "beta", providers={"gestao-scouter": {}})
    response = post("validate-gestao-scouter-schema", {"tenant_id": str(no_url.id)},
                    no_url.admin_token)  # fmt: skip
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "target_missing"

    no_key = seed_tenant(database_url, "gamma",
                         providers={"gestao-scouter": {"project_url": "http://127.0.0.1:9"}})  # fmt: skip
    response = post("reload-gestao-scouter-schema-cache", {"tenant_id": str(no_key.id)},
                    no_key.admin_token)  # fmt: skip
    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == "credentials_missing"
    checks = post("validate-gestao-scouter-config", {"tenant_id": str(no_key.id)},
                  no_key.admin_token).get_json()  # fmt: skip
    assert checks["ok"] is False and checks["checks"][0]["name"] == "url_well_formed"
    assert "service_key" in checks["checks"][0]["detail"]


@pytest.mark.parametrize("url", ["http://[::1", "https://[zz]/", "ftp://abc.supabase.co"])
def test_a_malformed_project_url_is_explained_by_every_function(
    database_url: str, configure: Any, url: str
) -> None:
    """An operator's typo in the project URL: a 422 naming it (a 500 for `http://[::1`),
    and the config check reports it instead of failing."""
    tenant = seed_tenant(database_url, "acme", providers={"gestao-scouter": {"project_url": url}})
    body = {"tenant_id": str(tenant.id)}
    for name, extra in (("validate-gestao-scouter-schema", {}),
                        ("reload-gestao-scouter-schema-cache", {}),
                        ("export-to-gestao-scouter-batch", {"action": "start"})):  # fmt: skip
        response = post(name, {**body, **extra}, tenant.admin_token)
        assert response.status_code == 422, (name, response.get_json())
        assert response.get_json()["error"]["code"] == "target_invalid"
    report = post("validate-gestao-scouter-config", body, tenant.admin_token)
    assert report.status_code == 200, report.get_json()
    [url_check] = [c for c in report.get_json()["checks"] if c["name"] == "url_well_formed"]
    assert url_check["ok"] is False
    assert rows(database_url, "SELECT count(*) AS n FROM gestao_scouter_export_jobs")[0]["n"] == 0


def test_start_with_the_last_representable_end_date_is_an_open_end(
    database_url: str, tenant: TenantFixture, remote: Remote
) -> None:
    seed_leads(database_url, tenant.id, 30, first_day="2024-01-01", spread_days=10)
    body = {"tenant_id": str(tenant.id), "action": "start",
            "start_date": "2024-01-01", "end_date": "9999-12-31"}  # fmt: skip
    response = post("export-to-gestao-scouter-batch", body, tenant.admin_token)
    assert response.status_code == 200, response.get_json()
    job = response.get_json()
    assert job["end_date"] == "9999-12-31" and job["total_leads"] == 30
    done = drive(database_url, job["id"])  # the runner reads the same bounds
    assert (done["status"], done["exported_leads"]) == ("completed", 30)
