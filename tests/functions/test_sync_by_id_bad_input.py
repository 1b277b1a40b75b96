"""Bad input on sync-onecode-contacts and sync-bomcontrole: a 4xx envelope, nothing written."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.support import bearer, function_client, rows, seed_tenant, service_token

pytestmark = pytest.mark.db
FUNCTIONS = ("sync-onecode-contacts", "sync-bomcontrole")
TABLES = ("integration_jobs", "integration_logs", "onecode_contacts",
          "bomcontrole_financial_entries", "bomcontrole_clients")  # fmt: skip


def written(database_url: str) -> int:
    counts = " + ".join(f"(SELECT count(*) FROM {t})" for t in TABLES)
    return int(rows(database_url, f"SELECT {counts} AS n")[0]["n"])


def post(name: str, body: Any, token: str | None, content_type: str = "application/json") -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**(bearer(token) if token else {}), "Content-Type": content_type}
    return function_client(name).post("/", data=data, headers=headers)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_bad_bodies_are_4xx_envelopes_and_write_nothing(database_url: str, name: str) -> None:
    providers: dict[str, dict[str, Any]] = {"onecode": {}, "bomcontrole": {}}
    tenant = seed_tenant(database_url, "acme", providers=providers)
    tid = str(tenant.id)
    cases: list[tuple[Any, int, str]] = [
        ({"tenant_id": 123}, 422, "validation_error"),
        ({"tenant_id": "not-a-uuid"}, 422, "validation_error"),
        ({}, 422, "validation_error"),
        ({"tenant_id": tid, "job_id": "nope"}, 422, "validation_error"),
        ({"tenant_id": tid, "tenant_slug": "acme"}, 422, "validation_error"),
        ({"tenant_id": [tid]}, 422, "validation_error"),
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (b"\xff\xfe", 400, "invalid_json"),
        ({"tenant_id": tid, "pad": "a" * 300_000}, 413, "payload_too_large"),
        ({"tenant_id": str(uuid.uuid4())}, 403, "forbidden"),
        ({"tenant_id": tid, "job_id": str(uuid.uuid4())}, 404, "not_found"),
    ]
    for body, status, code in cases:
        response = post(name, body, tenant.admin_token)
        assert response.status_code == status, (body if len(str(body)) < 200 else "big", status)
        assert response.get_json()["error"]["code"] == code
    assert post(name, {"tenant_id": tid}, None).status_code == 401
    assert post(name, {"tenant_id": tid}, "garbage").status_code == 401
    assert post(name, {"tenant_id": tid}, tenant.member_token).status_code == 403
    assert post(name, {"tenant_id": tid}, tenant.admin_token, "text/plain").status_code == 415
    wrong_method = function_client(name).get("/", headers=bearer(service_token()))
    assert wrong_method.status_code == 405
    assert written(database_url) == 0


@pytest.mark.parametrize(
    ("name", "provider"), [(FUNCTIONS[0], "onecode"), (FUNCTIONS[1], "bomcontrole")]
)
def test_disabled_integration_is_422(database_url: str, name: str, provider: str) -> None:
    tenant = seed_tenant(database_url, "acme", providers={provider: {}}, enabled=False)
    response = post(name, {"tenant_id": str(tenant.id)}, service_token())
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "integration_disabled"
    assert written(database_url) == 0
