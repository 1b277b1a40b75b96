"""End to end: the gateway and the real Cloud Tasks client against gcloud-tasks-emulator.

run-integration (HTTP) -> Cloud Task -> process-integration-job (HTTP, via the emulator)
-> Acessórias sync against its emulator -> success, with every side row written.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.emulators._common import ServerHandle, start_in_thread
from infra.emulators.acessorias import AcessoriasState, create_app
from infra.local.stack import TASKS_BIN
from shared.secrets import env_var, secret_name
from tests.conftest import BASE_ENV
from tests.support import rows, seed_tenant

pytestmark = [pytest.mark.db, pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
QUEUE = "projects/syncq-local/locations/us-central1/queues/syncq"
TOKEN = "e2e-acessorias-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def acessorias() -> Iterator[ServerHandle]:
    state = AcessoriasState(seed=3)
    state.seed_token(TOKEN, 45)
    handle = start_in_thread(create_app(state))
    yield handle
    handle.stop()


@pytest.fixture
def stack(database_url: str, tmp_path: Path) -> Iterator[str]:
    """Cloud Tasks emulator + gateway subprocesses; yields the gateway's functions base URL."""
    tasks_port, gateway_port = free_port(), free_port()
    base = f"http://127.0.0.1:{gateway_port}/functions/v1"
    env = {
        **os.environ, **BASE_ENV,
        "DATABASE_URL": database_url,
        "DISPATCHER": "cloudtasks",
        "TASKS_EMULATOR_HOST": f"127.0.0.1:{tasks_port}",
        "FUNCTIONS_BASE_URL": base,
        "PYTHONPATH": str(ROOT),
        env_var(secret_name("acme", "acessorias", "token")): TOKEN,
    }  # fmt: skip
    logs = (tmp_path / "tasks.log").open("wb"), (tmp_path / "gateway.log").open("wb")
    procs = [
        subprocess.Popen(  # noqa: S603
            [str(TASKS_BIN), "start", "-p", str(tasks_port), "-q", "-d", QUEUE, "-r", "5"],
            stdout=logs[0], stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c",
             f"from infra.local.gateway import serve; serve('127.0.0.1', {gateway_port})"],
            env=env, cwd=ROOT, stdout=logs[1], stderr=subprocess.STDOUT,
        ),
    ]  # fmt: skip
    try:
        wait_until(lambda: listening(tasks_port) and listening(gateway_port), 30, "the stack")
        yield base
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        for f in logs:
            f.close()


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
