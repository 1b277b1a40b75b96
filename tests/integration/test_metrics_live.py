"""Metrics of rows the real engine wrote: an export between two runs, a schedule run on its
spread offset."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.providers import PROVIDERS
from tests.integration.gestao_support import (
    Remote,
    export,
    job_row,
    recorder,
    secrets_env,
    seed_leads,
)
from tests.providers_for_tests import ScriptedProvider
from tests.support import (
    TenantFixture,
    bearer,
    call,
    function_client,
    seed_tenant,
    service_token,
)

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


def test_a_schedule_run_on_its_spread_offset_is_on_time(
    database_url: str, configure: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The skew counted from the bare occurrence, so every spread schedule started on time
    looked minutes late (in the 120-300 s buckets)."""
    monkeypatch.setitem(PROVIDERS, "scripted", ScriptedProvider())
    acme = seed_tenant(database_url, "acme", providers={"scripted": {}})
    with psycopg.connect(database_url) as conn:  # occurrence 240 s ago + offset 240 s: due now
        conn.execute(
            "INSERT INTO integration_schedules (tenant_id, provider_slug, cron, timezone,"
            " spread, offset_s, next_run_at, due_at) VALUES (%s, 'scripted', '0 * * * *',"
            " 'UTC', true, 240, now() - interval '240 s', now())",
            [acme.id],
        )
    swept = call("process-integration-job", {}, token=service_token())
    assert swept.get_json()["hooks"]["schedules"]["enqueued"] == 1
    text = (
        function_client("integration-metrics")
        .get("/", query_string={"format": "prometheus", "days": 1}, headers=bearer(service_token()))
        .get_data(as_text=True)
    )
    skew = {
        s.labels["le"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "syncq_schedule_skew_seconds_bucket"
    }
    assert skew["60.0"] == 1, skew
