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
    row = _export_metrics(tenant, job_id)
    assert row["run_s"] is not None and row["run_s"] >= 0
    assert row["rows_per_s"] is not None


def test_an_exports_rate_counts_only_the_time_it_was_not_paused(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    """Paused an hour (its timestamps moved back an hour while it rests) and resumed: its
    run time counted the hour, so its rate read a fraction of what it exported per second."""
    job_id = _an_export_of_two_runs(database_url, tenant, remote, configure)
    _deliver()
    assert export(tenant, "pause", job_id=job_id).get_json()["status"] == "paused"
    with psycopg.connect(database_url) as conn:  # the hour it rests, and the run before it
        conn.execute(
            "UPDATE gestao_scouter_export_jobs SET started_at = started_at - interval '1 hour',"
            " paused_at = paused_at - interval '1 hour', heartbeat_at = NULL WHERE id = %s",
            (job_id,),
        )
    assert export(tenant, "resume", job_id=job_id).get_json()["status"] == "pending"
    while job_row(database_url, job_id)["status"] != "completed":
        _deliver()
    job = job_row(database_url, job_id)
    assert job["paused_s"] >= 3600 and job["paused_at"] is None
    went = (job["finished_at"] - job["started_at"]).total_seconds() - job["paused_s"]
    assert 0 < went < 3600
    row = _export_metrics(tenant, job_id)
    assert row["run_s"] == pytest.approx(went, abs=0.002)
    assert row["rows_per_s"] == pytest.approx(1_000 / went, rel=0.01)
    status = export(tenant, "status", job_id=job_id).get_json()
    assert status["paused_s"] == job["paused_s"] and status["paused_at"] is None


def test_a_resumed_export_keeps_its_run_time_until_it_runs_again(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    """Paused by an admin while it ran, its runner's release kept its last checkpoint
    (heartbeat_at), which the resume left: until its next run began, its run time ended at
    that checkpoint less the whole rest it had just added up, so it read 0 and no rate."""
    job_id = _an_export_of_two_runs(database_url, tenant, remote, configure)
    _deliver()
    with psycopg.connect(database_url) as conn:  # an admin's pause, seen as it runs
        conn.execute(
            "UPDATE gestao_scouter_export_jobs SET pause_requested = true WHERE id = %s",
            (job_id,),
        )
    _deliver()
    paused = job_row(database_url, job_id)
    assert paused["status"] == "paused" and paused["heartbeat_at"] is not None
    with psycopg.connect(database_url) as conn:  # the hour it rests, and the run before it
        conn.execute(
            "UPDATE gestao_scouter_export_jobs SET started_at = started_at - interval '1 hour',"
            " heartbeat_at = heartbeat_at - interval '1 hour',"
            " paused_at = paused_at - interval '1 hour' WHERE id = %s",
            (job_id,),
        )
    assert export(tenant, "resume", job_id=job_id).get_json()["status"] == "pending"
    job = job_row(database_url, job_id)
    assert job["paused_s"] >= 3600 and job["exported_leads"] > 0
    went = (paused["paused_at"] - paused["started_at"]).total_seconds()
    row = _export_metrics(tenant, job_id)
    assert row["status"] == "pending" and row["run_s"] == pytest.approx(went, abs=0.002)
    assert row["rows_per_s"] == pytest.approx(job["exported_leads"] / went, rel=0.01)


def _an_export_of_two_runs(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> str:
    """An export of 1,000 leads in batches of 500, one batch per run (deliver it)."""
    configure(**secrets_env(remote.state.service_key), GESTAO_SCOUTER_BATCH_SIZE="500",
              GESTAO_SCOUTER_MAX_BATCH_SIZE="500", GESTAO_SCOUTER_BUDGET_S="0")  # fmt: skip
    seed_leads(database_url, tenant.id, 1_000)
    return str(export(tenant, "start").get_json()["id"])


def _deliver() -> None:
    """The runs handed over so far, each run one batch that hands over the next."""
    for task in recorder().take():
        call(task.function, task.body, token=service_token(), path=task.path or "/")


def _export_metrics(tenant: TenantFixture, job_id: str) -> dict[str, Any]:
    """The export's row in the tenant's metrics (a member's view, a day)."""
    body = function_client("integration-metrics").get(
        "/", query_string={"tenant_id": str(tenant.id), "days": 1},
        headers=bearer(tenant.member_token),
    ).get_json()  # fmt: skip
    [row] = [e for e in body["exports"] if e["id"] == job_id]
    return dict(row)


def _skew() -> dict[str, float]:
    text = (
        function_client("integration-metrics")
        .get("/", query_string={"format": "prometheus", "days": 1}, headers=bearer(service_token()))
        .get_data(as_text=True)
    )
    return {
        s.labels["le"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "syncq_schedule_skew_seconds_bucket"
    }


@pytest.mark.parametrize("then", ["kept", "deleted", "spread off"])
def test_a_schedule_run_on_its_spread_offset_is_on_time_for_good(
    database_url: str, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    """The skew counted from the bare occurrence, so every spread schedule started on time
    looked minutes late; then from the schedule's offset now, so deleting the schedule or
    turning its spread off made its past jobs late."""
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
    schedules = function_client("integration-schedules")
    ref = {"tenant_id": str(acme.id), "provider_slug": "scripted"}
    if then == "deleted":
        changed = schedules.delete("/", json=ref, headers=bearer(acme.admin_token))
        assert changed.status_code < 300, changed.get_json()
    elif then == "spread off":
        body = {**ref, "cron": "0 * * * *", "timezone": "UTC", "spread": False}
        changed = schedules.put("/", json=body, headers=bearer(acme.admin_token))
        assert changed.status_code < 300, changed.get_json()
    skew = _skew()
    assert skew["60.0"] == 1, skew
