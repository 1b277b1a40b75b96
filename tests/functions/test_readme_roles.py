"""The README's table of who may call what, checked against the functions themselves.

Every row that names tenant roles is called with a member's, an admin's and the service's
token: a role without a tick must get 403, a role with one anything but 401 or 403.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from infra.local.gateway import FUNCTIONS_DIR, function_names, load_contract
from shared.contract import Caller
from tests.support import ROOT, TenantFixture, bearer, function_client, seed_tenant, service_token

pytestmark = pytest.mark.db
HEADER = "| function | member | admin | owner | service | public |"
GET = {"list-integration-jobs", "integration-job-events", "list-integrations"}
SSE = {"integration-job-events"}  # a stream: ended early
SCHEDULE = {"provider_slug": "acessorias", "cron": "0 2 * * *"}


def readme_roles() -> dict[tuple[str, str], dict[str, bool]]:
    """(function, method) -> {member, admin, service: ticked?} for the rows about tenant
    roles. A row names its method after the function (`integration-schedules` `PUT`);
    without one it is the function's usual method (GET for readers, else POST)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(HEADER) + 2
    table: dict[tuple[str, str], dict[str, bool]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        ticks = dict(zip(("member", "admin", "owner", "service", "public"), cells[1:], strict=True))
        if ticks["owner"] or ticks["public"]:
            continue  # per-user and secret-checked routes have their own tests
        methods = re.findall(r"`(GET|PUT|DELETE|POST)`", cells[0])
        for name in re.findall(r"`([a-z-]+)`", cells[0]):
            if name in function_names():
                for method in methods or ["GET" if name in GET else "POST"]:
                    table[(name, method)] = {
                        role: ticks[role] == "✓" for role in ("member", "admin", "service")
                    }
    return table


ROLES = readme_roles()


def body_for(name: str, tenant: TenantFixture, job_id: str, method: str = "POST") -> dict[str, Any]:
    tid = str(tenant.id)
    if name == "integration-schedules" and method == "PUT":
        return {"tenant_id": tid, **SCHEDULE}
    if name == "integration-schedules" and method == "DELETE":
        return {"tenant_id": tid, "provider_slug": SCHEDULE["provider_slug"]}
    if method == "GET":
        return {"tenant_id": tid, "max_seconds": "0.1"} if name in SSE else {"tenant_id": tid}
    return {
        "run-integration": {"tenant_id": tid, "provider_slug": "acessorias"},
        "cancel-integration-job": {"job_id": job_id},
        "process-integration-job": {"job_id": str(uuid.uuid4())},
        "export-to-gestao-scouter-batch": {"tenant_id": tid, "action": "status"},
    }.get(name, {"tenant_id": tid})


def test_the_table_covers_the_tenant_functions() -> None:
    assert ROLES[("run-integration", "POST")] == {"member": False, "admin": True, "service": True}
    assert {name for name, _ in ROLES} == set(function_names()) - {
        "runninghub-queue-manager",
        "sync-from-gestao-scouter",
        "my-tenants",  # the caller's own tenants (owner): tests/functions/test_dashboard_api.py
        "integrations-dashboard",  # public static files
    }


@pytest.mark.parametrize(("name", "method"), sorted(ROLES))
def test_each_role_gets_what_the_readme_says(
    database_url: str, recorder: Any, name: str, method: str
) -> None:
    tenant = seed_tenant(database_url, "acme")
    started = function_client("run-integration").post(
        "/", json=body_for("run-integration", tenant, ""), headers=bearer(tenant.admin_token)
    )
    job_id = started.get_json()["job_id"]  # a live job of the tenant, for the cancel row
    tokens = {
        "member": tenant.member_token,
        "admin": tenant.admin_token,
        "service": service_token(),
    }
    client = function_client(name)
    for role, token in tokens.items():
        body = body_for(name, tenant, job_id, method)
        if method == "GET":
            response = client.get("/", query_string=body, headers=bearer(token))
        else:
            response = client.open("/", method=method, json=body, headers=bearer(token))
        allowed = ROLES[(name, method)][role]
        assert response.status_code != 401, (role, response.get_json())
        assert (response.status_code == 403) is not allowed, (role, response.status_code)


def test_every_tenant_route_and_method_is_in_the_table() -> None:
    """Each method of each function called by tenant roles or the service (its contract's
    callers) has its row, with the ticks the contract declares: a new method is checked."""
    roles = {Caller.MEMBER: "member", Caller.ADMIN: "admin", Caller.SERVICE: "service"}
    declared = {}
    for name in function_names():
        for endpoint in load_contract(FUNCTIONS_DIR / name / "main.py").endpoints:
            if endpoint.path == "/" and set(endpoint.callers) <= set(roles):
                ticks = {r: c in endpoint.callers for c, r in roles.items()}
                ticks["admin"] = ticks["admin"] or ticks["member"]  # an admin is a member
                declared[(name, endpoint.method)] = ticks
    assert declared == ROLES
