"""The metrics of an export between two of its runs (the real runner, the emulated remote)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.gestao_support import (
    Remote,
    export,
    job_row,
    recorder,
    secrets_env,
    seed_leads,
)
from tests.support import TenantFixture, bearer, call, function_client, service_token

pytest_plugins = ["tests.integration.gestao_fixtures"]
pytestmark = pytest.mark.db


def test_an_export_between_runs_keeps_its_run_time(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    """Pending again at its time budget, the engine has cleared its heartbeat: run_s and
    rows_per_s read null although it had run and exported."""
    configure(**secrets_env(remote.state.service_key), GESTAO_SCOUTER_BATCH_SIZE="500",
              GESTAO_SCOUTER_MAX_BATCH_SIZE="500", GESTAO_SCOUTER_BUDGET_S="0")  # fmt: skip
    seed_leads(database_url, tenant.id, 2_000)
    job_id = export(tenant, "start").get_json()["id"]
    for task in recorder().take():  # one run: one batch, then it hands over
        call(task.function, task.body, token=service_token(), path=task.path or "/")
    job = job_row(database_url, job_id)
    assert job["status"] == "pending" and job["exported_leads"] > 0
    body = function_client("integration-metrics").get(
        "/", query_string={"tenant_id": str(tenant.id), "days": 1},
        headers=bearer(tenant.member_token),
    ).get_json()  # fmt: skip
    [row] = [e for e in body["exports"] if e["id"] == job_id]
    assert row["run_s"] is not None and row["run_s"] >= 0
    assert row["rows_per_s"] is not None
