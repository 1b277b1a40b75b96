"""The sweep's rescue of stale jobs: legacy rows, ancient rows, and rows it cannot rescue.

Whatever one stale row does, the rescue of the others and the drain of every tenant's
pending jobs go on: a poisoned row must never stop the whole queue.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from shared.dispatch import RecordingDispatcher
from shared.providers import PROVIDERS
from shared.settings import get_settings
from tests.providers_for_tests import ScriptedProvider
from tests.support import TenantFixture, call, drain, rows, seed_tenant, service_token

pytestmark = pytest.mark.db
INT_MAX = 2_147_483_647

# A row whose every update fails, now (statement) or at commit (deferred constraint trigger).
POISON = """
CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'this row cannot change'; END $$;
"""
POISON_NOW = """
CREATE TRIGGER poison BEFORE UPDATE ON integration_jobs FOR EACH ROW
WHEN (OLD.payload ? 'poison') EXECUTE FUNCTION poison()
"""
POISON_AT_COMMIT = """
CREATE CONSTRAINT TRIGGER poison AFTER UPDATE ON integration_jobs
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
WHEN (OLD.payload ? 'poison') EXECUTE FUNCTION poison()
"""


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedProvider]:
    provider = ScriptedProvider()
    monkeypatch.setitem(PROVIDERS, provider.slug, provider)
    yield provider


def tenants(database_url: str, *slugs: str) -> list[TenantFixture]:
    return [seed_tenant(database_url, s, providers={"scripted": {}}) for s in slugs]


def insert_running(
    database_url: str, tenant: TenantFixture, columns: str = "", values: str = ""
) -> uuid.UUID:
    """A 'running' row as the old system or a dead worker left it (test-authored SQL)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, status" + columns + ")"
            " VALUES (%s, 'scripted', 'running'" + values + ") RETURNING id",
            [tenant.id],
        ).fetchone()
    assert row is not None
    return row[0]


def submit(tenant: TenantFixture) -> str:
    response = call(
        "run-integration",
        {"tenant_id": str(tenant.id), "provider_slug": "scripted"},
        token=tenant.admin_token,
    )
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["job_id"]
    return job_id


def job(database_url: str, job_id: uuid.UUID | str) -> dict[str, Any]:
    return rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]


def processed(response: Any) -> dict[str, str]:
    """job id -> status of the jobs a worker call ran."""
    return {p["job_id"]: p["status"] for p in response.get_json()["processed"]}


def test_legacy_running_row_with_zero_attempts_is_rescued_and_the_queue_keeps_going(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    a, b, c = tenants(database_url, "acme", "globex", "initech")
    # Rows as the old system left them: 'running', attempts 0 (the default), no timestamps.
    legacy_a = insert_running(database_url, a)
    job_b = submit(b)
    recorder.take()
    sweep = call("process-integration-job", {}, token=service_token())
    assert sweep.status_code == 200, sweep.get_json()
    assert sweep.get_json()["rescued"] == 1 and processed(sweep)[job_b] == "success"
    assert job(database_url, legacy_a)["status"] in ("pending", "success")

    legacy_c = insert_running(database_url, c)
    job_b2 = submit(b)
    wake = call("process-integration-job", {"job_id": job_b2}, token=service_token())
    assert wake.status_code == 200, wake.get_json()
    assert wake.get_json()["rescued"] == 1 and processed(wake)[job_b2] == "success"

    drain(recorder)
    for legacy in (legacy_a, legacy_c):
        row = job(database_url, legacy)
        assert row["status"] == "success" and row["attempts"] == 1
    retried = rows(
        database_url,
        "SELECT details->>'attempt' AS attempt FROM integration_logs"
        " WHERE job_id = %s AND message = 'rescued: heartbeat stale, retry scheduled'",
        legacy_a,
    )
    assert retried == [{"attempt": "0"}]


def test_a_stale_row_that_cannot_be_rescued_does_not_stop_the_others(
    database_url: str,
    scripted: ScriptedProvider,
    recorder: RecordingDispatcher,
    logs: Callable[[], str],
) -> None:
    a, b, c = tenants(database_url, "acme", "globex", "initech")
    with psycopg.connect(database_url) as conn:
        conn.execute(POISON)
        conn.execute(POISON_NOW)
    poisoned = insert_running(database_url, a, ", attempts, payload", ", 1, '{\"poison\": 1}'")
    stale = insert_running(database_url, b, ", attempts", ", 1")
    pending = submit(c)
    recorder.take()
    for _ in range(2):  # the poisoned row stays stale: every sweep meets it again
        sweep = call("process-integration-job", {}, token=service_token())
        assert sweep.status_code == 200, sweep.get_json()
    wake = call("process-integration-job", {"job_id": str(uuid.uuid4())}, token=service_token())
    assert wake.status_code == 200, wake.get_json()
    drain(recorder)
    assert job(database_url, stale)["status"] == "success"
    assert job(database_url, pending)["status"] == "success"
    left = job(database_url, poisoned)
    assert (left["status"], left["attempts"]) == ("running", 1)
    assert f'"job_id": "{poisoned}"' in logs() and "stale job could not be rescued" in logs()


def test_a_rescue_that_fails_at_commit_still_lets_the_drain_run(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    a, b = tenants(database_url, "acme", "globex")
    with psycopg.connect(database_url) as conn:
        conn.execute(POISON)
        conn.execute(POISON_AT_COMMIT)
    poisoned = insert_running(database_url, a, ", attempts, payload", ", 1, '{\"poison\": 1}'")
    pending = submit(b)
    recorder.take()
    sweep = call("process-integration-job", {}, token=service_token())
    assert sweep.status_code == 200, sweep.get_json()
    assert sweep.get_json()["rescued"] == 0 and processed(sweep) == {pending: "success"}
    assert recorder.take() == []  # the rolled-back rescue scheduled no wake-up
    assert job(database_url, poisoned)["status"] == "running"


def test_rows_started_weeks_ago_are_rescued_with_a_capped_execution_time(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    a, b, c = tenants(database_url, "acme", "globex", "initech")
    # a: last attempt, started 30 days ago; b: cancel requested, started 40 days ago;
    # c: last attempt with no timestamps at all.
    last = insert_running(
        database_url, a, ", attempts, started_at, heartbeat_at, lease_token",
        ", 3, now() - interval '30 days', now() - interval '30 days', gen_random_uuid()",
    )  # fmt: skip
    canceled = insert_running(
        database_url, b, ", attempts, started_at, cancel_requested",
        ", 1, now() - interval '40 days', true",
    )  # fmt: skip
    bare = insert_running(database_url, c, ", attempts", ", 3")
    sweep = call("process-integration-job", {}, token=service_token())
    assert sweep.status_code == 200, sweep.get_json()
    assert sweep.get_json()["rescued"] == 3
    got = {i: job(database_url, i) for i in (last, canceled, bare)}
    assert (got[last]["status"], got[last]["error_message"]) == ("error", "timed out")
    assert got[last]["execution_time_ms"] == INT_MAX
    assert got[canceled]["status"] == "canceled" and got[canceled]["execution_time_ms"] == INT_MAX
    assert got[bare]["status"] == "error" and got[bare]["execution_time_ms"] is None
    logged = rows(
        database_url,
        "SELECT (details->>'execution_time_ms')::bigint AS ms FROM integration_logs"
        " WHERE job_id = %s",
        last,
    )
    assert logged == [{"ms": INT_MAX}]
    integ = rows(database_url, "SELECT tenant_id, last_status FROM tenant_integrations")
    assert {r["tenant_id"]: r["last_status"] for r in integ} == {
        a.id: "error", b.id: "canceled", c.id: "error",
    }  # fmt: skip


def test_each_rescued_job_is_logged_with_its_labels_at_the_right_severity(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher,
    logs: Callable[[], str],
) -> None:  # fmt: skip
    """A job whose last attempt timed out ends in an ERROR line of its own; one retried
    gets a WARNING (there was only a count, labelled with no job at all)."""
    (acme, globex) = tenants(database_url, "acme", "globex")
    ended = insert_running(database_url, acme, ", attempts, max_attempts", ", 3, 3")
    retried = insert_running(database_url, globex, ", attempts, max_attempts", ", 1, 3")
    assert call("process-integration-job", {}, token=service_token()).get_json()["rescued"] == 2
    assert job(database_url, ended)["status"] == "error"
    lines = [json.loads(line) for line in logs().splitlines()]
    by_job = {
        line["logging.googleapis.com/labels"].get("job_id"): line
        for line in lines
        if line["message"].startswith("stale job rescued")
    }
    last = by_job[str(ended)]
    assert last["severity"] == "ERROR" and last["code"] == "stale_job" and last["reason"]
    assert last["logging.googleapis.com/labels"]["tenant_id"] == str(acme.id)
    again = by_job[str(retried)]
    assert again["severity"] == "WARNING"
    # A retry says why too (issue 14: "retries at WARNING, each with the error code and a
    # scrubbed reason"): the retried line had neither.
    assert (again["code"], again["reason"]) == ("stale_job", "timed out")
    assert again["logging.googleapis.com/labels"]["tenant_id"] == str(globex.id)


def test_a_job_rescued_while_it_waited_in_its_batch_is_not_run_again(
    database_url: str, configure: Any, recorder: RecordingDispatcher,
    scripted: ScriptedProvider, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """CLAIM_BATCH > 1: the second job of a batch sends no heartbeat while the first runs.
    Rescued meanwhile (handed back, perhaps run by another worker), it must not also be run
    by the worker that claimed it first."""
    from shared.jobs import sweep
    from shared.queue.kind import KIND, process

    # The handed-back job is due again only after its backoff: long enough that this worker's
    # next claim, legitimately under a new lease, cannot come within the test.
    configure(CLAIM_BATCH="2", BACKOFF_BASE_S="60", BACKOFF_CAP_S="120")
    a, b = tenants(database_url, "acme", "globex")
    first, second = submit(a), submit(b)
    recorder.take()
    real = scripted.sync
    ran: list[str] = []

    def sync(ctx: Any) -> Any:
        ran.append(str(ctx.job_id))
        if len(ran) == 1:  # the first of the batch runs long: the other one looks dead
            with psycopg.connect(database_url) as conn:
                conn.execute(
                    "UPDATE integration_jobs SET heartbeat_at = now() - interval '1 day'"
                    " WHERE status = 'running' AND id <> %s", [ctx.job_id])  # fmt: skip
            assert sweep.rescue(KIND) == 1
        return real(ctx)

    monkeypatch.setattr(scripted, "sync", sync)
    process(budget_s=30)
    assert len(ran) == 1 and ran[0] in (first, second)
    other = second if ran[0] == first else first
    handed_back = job(database_url, other)
    assert (handed_back["status"], handed_back["lease_token"]) == ("pending", None)
    assert job(database_url, ran[0])["status"] == "success"


def test_a_job_silent_just_past_the_stale_limit_is_rescued_and_one_within_it_is_not(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    a, b = tenants(database_url, "acme", "globex")
    limit_s = float(get_settings().queue.stale_after_s)
    beat = ", 1, now() - make_interval(secs => {}), gen_random_uuid()"
    past = insert_running(
        database_url, a, ", attempts, heartbeat_at, lease_token", beat.format(limit_s * 1.25)
    )
    within = insert_running(
        database_url, b, ", attempts, heartbeat_at, lease_token", beat.format(limit_s * 0.75)
    )
    sweep = call("process-integration-job", {}, token=service_token())
    assert sweep.status_code == 200, sweep.get_json()
    assert sweep.get_json()["rescued"] == 1
    assert job(database_url, past)["status"] != "running"
    assert job(database_url, within)["status"] == "running"
