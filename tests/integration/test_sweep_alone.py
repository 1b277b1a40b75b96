"""The sweep when wake-ups cannot be sent (`DISPATCHER=disabled`, Cloud Tasks down), and its
one time budget across its kinds."""

from __future__ import annotations

import socket
import threading
from typing import Any

import psycopg
import pytest

from shared.dispatch import RecordingDispatcher
from shared.providers import PROVIDERS
from tests.integration.gestao_support import (
    Remote,
    export,
    job_row,
    secrets_env,
    seed_leads,
    sweep,
)
from tests.providers_for_tests import ScriptedProvider
from tests.support import TenantFixture, call, rows, seed_tenant, service_token

pytest_plugins = ["tests.integration.gestao_fixtures"]
pytestmark = pytest.mark.db


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


def test_with_dispatch_disabled_the_sweep_runs_an_export(
    database_url: str, remote: Remote, tenant: TenantFixture, configure: Any
) -> None:
    """An export runs only in its own requests, which only a wake-up starts: with
    `DISPATCHER=disabled` ("sweep only") it stayed pending for good, each sweep reporting
    it woken."""
    configure(DISPATCHER="disabled", **secrets_env(remote.state.service_key))
    seed_leads(database_url, tenant.id, 30)
    started = export(tenant, "start", start_date="2024-01-01", end_date="2024-12-31")
    assert started.status_code == 200, started.get_json()
    answer = sweep()
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["kinds"]["gestao_export"]["woken"] == 0
    job = job_row(database_url, started.get_json()["id"])
    assert (job["status"], job["exported_leads"]) == ("completed", 30)


def test_with_cloud_tasks_down_an_export_waits_for_its_wake_up(
    database_url: str, remote: Remote, tenant: TenantFixture, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The sweep runs in the worker, whose identity may not read the export's secrets: the
    export is not run there (it would fail for good), it stays pending, counted unsent."""
    port = _closed_port()
    configure(DISPATCHER="cloudtasks", TASKS_EMULATOR_HOST=f"127.0.0.1:{port}",
              TASKS_TIMEOUT_S="0.5", **secrets_env(remote.state.service_key))  # fmt: skip
    seed_leads(database_url, tenant.id, 30)
    started = export(tenant, "start", start_date="2024-01-01", end_date="2024-12-31")
    assert started.status_code == 200, started.get_json()
    for name in secrets_env(remote.state.service_key):  # the worker's environment
        monkeypatch.delenv(name)
    answer = sweep()
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["kinds"]["gestao_export"] == {"rescued": 0, "woken": 0, "unsent": 1}
    job = job_row(database_url, started.get_json()["id"])
    assert (job["status"], job["attempts"], job["error_message"]) == ("pending", 0, None)


def test_one_sweep_keeps_to_one_time_budget(
    database_url: str, recorder: RecordingDispatcher, configure: Any, monkeypatch: Any
) -> None:
    """Each kind that drains in the sweep got the whole budget anew: the sweep ran for a
    multiple of it, past the scheduler's deadline. The kinds share the one budget: the
    integration backlog is left for later (counted), the alerts all went out."""
    configure(WORKER_BUDGET_S="1.5")
    monkeypatch.setitem(PROVIDERS, "scripted", ScriptedProvider(pages=1, page_delay_s=0.5))
    tenants = [seed_tenant(database_url, f"t{i}", providers={"scripted": {}}) for i in range(6)]
    with psycopg.connect(database_url) as conn:
        for t in tenants:  # 6 jobs of 0.5 s: more than the budget
            conn.execute(
                "INSERT INTO integration_jobs (tenant_id, provider_slug) VALUES (%s, 'scripted')",
                [t.id],
            )
            conn.execute(
                "INSERT INTO alert_settings (tenant_id, emails) VALUES (%s, '{ops@example.com}')",
                [t.id],
            )
            conn.execute(
                "INSERT INTO alert_outbox (tenant_id, provider_slug, event, failures)"
                " VALUES (%s, 'scripted', 'failing', 1)",
                [t.id],
            )
    answer = call("process-integration-job", {}, token=service_token())
    assert answer.status_code == 200, answer.get_json()
    kinds = answer.get_json()["kinds"]
    assert 1 <= kinds["integration"]["processed"] < 6 and kinds["integration"]["remaining"] > 0
    assert (kinds["alert"]["processed"], kinds["alert"]["remaining"]) == (6, 0), kinds


def test_an_integration_backlog_that_never_empties_does_not_starve_the_alerts(
    database_url: str, recorder: RecordingDispatcher, configure: Any, monkeypatch: Any
) -> None:
    """The sweep drained its kinds in turn, each until none was due or the budget was
    spent: under steady clicks the integration queue was never empty, every sweep spent its
    whole budget on it, and an alert (a failure the tenant must hear of) stayed pending
    sweep after sweep. Its own wake-up is a sweep too, which drains the integrations first."""
    configure(WORKER_BUDGET_S="1")
    monkeypatch.setitem(PROVIDERS, "scripted", ScriptedProvider(pages=1, page_delay_s=0.1))
    tenants = [seed_tenant(database_url, f"t{i}", providers={"scripted": {}}) for i in range(8)]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO alert_outbox (tenant_id, provider_slug, event, failures)"
            " VALUES (%s, 'scripted', 'failing', 1)",
            [tenants[0].id],
        )
    stop = threading.Event()

    def click() -> None:  # every tenant's "Executar", taken unless its last job is live
        with psycopg.connect(database_url, autocommit=True) as conn:
            for t in tenants:
                conn.execute(
                    "INSERT INTO integration_jobs (tenant_id, provider_slug)"
                    " VALUES (%s, 'scripted') ON CONFLICT DO NOTHING",
                    [t.id],
                )

    def click_when_idle() -> None:
        while not stop.wait(0.02):
            click()

    click()

    clicker = threading.Thread(target=click_when_idle)
    clicker.start()
    try:
        answers = [call("process-integration-job", {}, token=service_token()) for _ in range(3)]
    finally:
        stop.set()
        clicker.join()
    kinds = [answer.get_json()["kinds"] for answer in answers]
    assert all(k["integration"]["processed"] >= 2 for k in kinds), kinds  # it did have load
    [alert] = rows(database_url, "SELECT status FROM alert_outbox")
    assert alert["status"] != "pending", kinds


def test_a_cloud_tasks_client_that_cannot_be_made_still_answers_the_click_202(
    database_url: str, configure: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The job is stored before its wake-up is sent, and a wake-up that cannot be sent is
    the sweep's to repair: a Cloud Tasks client that could not even be created (no
    credentials found) raised out of `dispatch`, so the click that stored the job got a 500
    (and clicking again a 409: the job it was told failed is live)."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    configure(DISPATCHER="cloudtasks")  # production's client: no TASKS_EMULATOR_HOST
    tenant = seed_tenant(database_url, "acme")
    body = {"tenant_id": str(tenant.id), "provider_slug": "acessorias"}
    answer = call("run-integration", body, token=tenant.admin_token)
    assert answer.status_code == 202, answer.get_json()
    job = rows(database_url, "SELECT id, status FROM integration_jobs")
    assert [(str(j["id"]), j["status"]) for j in job] == [(answer.get_json()["job_id"], "pending")]
