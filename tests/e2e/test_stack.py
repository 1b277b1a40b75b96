"""End to end: the gateway and the real Cloud Tasks client against gcloud-tasks-emulator.

run-integration (HTTP) -> Cloud Task -> process-integration-job (HTTP, via the emulator)
-> Acessórias sync against its emulator -> success, with every side row written.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from infra.emulators._common import ServerHandle, start_in_thread
from infra.emulators.acessorias import AcessoriasState, create_app
from shared.secrets import env_var, secret_name
from tests.e2e.conftest import wait_until
from tests.support import rows, seed_tenant

pytestmark = [pytest.mark.db, pytest.mark.e2e, pytest.mark.slow]
TOKEN = "e2e-acessorias-token"


@pytest.fixture
def acessorias() -> Iterator[ServerHandle]:
    state = AcessoriasState(seed=3)
    state.seed_token(TOKEN, 45)
    handle = start_in_thread(create_app(state))
    yield handle
    handle.stop()


@pytest.fixture
def stack_env() -> dict[str, str]:
    return {env_var(secret_name("acme", "acessorias", "token")): TOKEN}


def test_click_to_success_through_cloud_tasks(
    database_url: str, acessorias: ServerHandle, stack: str
) -> None:
    tenant = seed_tenant(
        database_url, "acme", providers={"acessorias": {"base_url": acessorias.url}}
    )
    headers = {"Authorization": f"Bearer {tenant.admin_token}"}
    with httpx.Client(timeout=10) as client:
        response = client.post(
            f"{stack}/run-integration", headers=headers,
            json={"tenant_id": str(tenant.id), "provider_slug": "acessorias"},
        )  # fmt: skip
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        # Nobody calls the worker here: only the Cloud Task can wake it.
        wait_until(
            lambda: rows(database_url, "SELECT status FROM integration_jobs WHERE id=%s", job_id)[0][
                "status"] in ("success", "error"),
            60, "the job to finish",
        )  # fmt: skip
        listed = client.get(f"{stack}/list-integration-jobs", headers=headers,
                            params={"tenant_id": str(tenant.id)}).json()  # fmt: skip
    job = rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]
    assert job["status"] == "success", job["error_message"]
    assert job["progress"] == 100 and job["execution_time_ms"] is not None
    assert job["result"] == {"records": 45, "pages": 3}
    integ = rows(database_url, "SELECT * FROM tenant_integrations")[0]
    assert integ["last_status"] == "success" and integ["last_run"] is not None
    assert integ["last_error"] is None
    logs = rows(
        database_url, "SELECT status FROM integration_logs WHERE job_id = %s ORDER BY id", job_id
    )
    assert [r["status"] for r in logs] == ["pending", "running", "success"]
    assert listed["jobs"][0]["id"] == job_id and listed["jobs"][0]["status"] == "success"
    assert rows(database_url, "SELECT count(*) AS n FROM acessorias_companies")[0]["n"] == 45
