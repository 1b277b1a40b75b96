"""The queue's state machine against real PostgreSQL, through the real functions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from shared import db
from shared.dispatch import RecordingDispatcher, get_dispatcher
from shared.errors import LeaseLost, UpstreamError
from shared.jobs.lease import Lease
from shared.providers import PROVIDERS
from shared.providers.base import SyncContext, SyncResult
from shared.queue import store
from shared.queue.models import JobStatus
from tests.conftest import Configure
from tests.providers_for_tests import ScriptedProvider
from tests.support import (
    TenantFixture,
    bearer,
    call,
    drain,
    function_client,
    rows,
    seed_tenant,
    service_token,
)

pytestmark = pytest.mark.db


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedProvider]:
    provider = ScriptedProvider()
    monkeypatch.setitem(PROVIDERS, provider.slug, provider)
    yield provider


def submit(tenant, provider: str = "scripted"):  # type: ignore[no-untyped-def]
    return call(
        "run-integration",
        {"tenant_id": str(tenant.id), "provider_slug": provider},
        token=tenant.admin_token,
    )


def test_fifty_concurrent_clicks_make_one_job(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    barrier = threading.Barrier(50)

    def click(_: int):  # type: ignore[no-untyped-def]
        barrier.wait()
        return submit(tenant)

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(click, range(50)))
    created = [r for r in responses if r.status_code == 202]
    conflicts = [r for r in responses if r.status_code == 409]
    assert len(created) == 1 and len(conflicts) == 49
    job_id = created[0].get_json()["job_id"]
    assert created[0].get_json()["status"] == "pending"
    for r in conflicts:
        err = r.get_json()["error"]
        assert err["code"] == "job_already_active" and err["details"]["job_id"] == job_id
    assert rows(database_url, "SELECT count(*) AS n FROM integration_jobs")[0]["n"] == 1
    assert [t.body for t in recorder.tasks] == [{"job_id": job_id}]
    assert [t.key for t in recorder.tasks] == [f"integration:{job_id}:first"]  # once per job


def test_submit_then_wake_up_runs_to_success(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    job_id = submit(tenant).get_json()["job_id"]
    drain(recorder)
    job = rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]
    assert job["status"] == "success" and job["progress"] == 100 and job["attempts"] == 1
    assert job["result"] == {"records": 30, "pages": 3}
    assert job["execution_time_ms"] is not None and job["lease_token"] is None
    integ = rows(database_url, "SELECT * FROM tenant_integrations")[0]
    assert integ["last_status"] == "success" and integ["last_run"] is not None
    logs = rows(
        database_url, "SELECT status FROM integration_logs WHERE job_id=%s ORDER BY id", job_id
    )
    assert [r["status"] for r in logs] == ["pending", "running", "success"]


class Reporting(ScriptedProvider):
    """Reports the progress values it is given, in one attempt, and records what the job
    row showed after each."""

    def __init__(self, *reported: int) -> None:
        super().__init__()
        self.reported = reported
        self.seen: list[int] = []

    def sync(self, ctx: SyncContext) -> SyncResult:
        for percent in self.reported:
            ctx.progress(percent)
            with ctx.transaction() as conn:
                row = conn.execute(
                    "SELECT progress FROM integration_jobs WHERE id = %s", [ctx.job_id]
                ).fetchone()
            assert row is not None
            self.seen.append(row["progress"])
        return SyncResult(records=1, pages=1)


@pytest.mark.parametrize(
    ("reported", "seen"),
    [
        # Walks its listing twice (it shifted under the first walk): the bar holds at 95.
        ((0, 50, 95, 0, 40, 95), [0, 50, 95, 95, 95, 95]),
        # Counts more records than the listing said (it grew): held to 0..100, which the
        # job row's CHECK would otherwise refuse.
        ((-3, 60, 120), [0, 60, 100]),
    ],
)
def test_progress_never_goes_back_and_stays_within_0_to_100(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    recorder: RecordingDispatcher,
    reported: tuple[int, ...],
    seen: list[int],
) -> None:
    provider = Reporting(*reported)
    monkeypatch.setitem(PROVIDERS, provider.slug, provider)
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    job_id = submit(tenant).get_json()["job_id"]
    drain(recorder)
    assert provider.seen == seen
    [job] = rows(
        database_url, "SELECT status, progress FROM integration_jobs WHERE id = %s", job_id
    )
    assert (job["status"], job["progress"]) == ("success", 100)


def test_fails_twice_then_succeeds_with_growing_delays(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    scripted.failures = 2
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    job_id = submit(tenant).get_json()["job_id"]
    drain(recorder)
    job = rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]
    assert job["status"] == "success" and job["attempts"] == 3
    logs = rows(
        database_url,
        "SELECT status, message, details FROM integration_logs WHERE job_id=%s ORDER BY id",
        job_id,
    )
    assert [r["status"] for r in logs] == [
        "pending", "running", "pending", "running", "pending", "running", "success",
    ]  # fmt: skip
    delays = [float(r["details"]["delay_s"]) for r in logs if r["message"].startswith("attempt")]
    assert len(delays) == 2 and delays[0] < delays[1]


def test_always_failing_ends_in_error_after_max_attempts(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    scripted.failures = 99
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    job_id = submit(tenant).get_json()["job_id"]
    drain(recorder)
    job = rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]
    assert job["status"] == "error" and job["attempts"] == 3
    assert job["error_message"] == "scripted failure"
    assert scripted.runs == 3
    integ = rows(database_url, "SELECT * FROM tenant_integrations")[0]
    assert integ["last_status"] == "error" and integ["last_error"] == "scripted failure"
    active = rows(
        database_url,
        "SELECT count(*) AS n FROM integration_jobs WHERE status IN ('pending','running')",
    )
    assert active[0]["n"] == 0


class _RefusesWithNul:
    """An upstream refusal whose text holds what PostgreSQL text cannot: U+0000."""

    slug, display_name, options = "nul", "Nul", ScriptedProvider.options

    def __init__(self, retryable: bool) -> None:
        self.retryable = retryable

    def sync(self, ctx: SyncContext) -> SyncResult:
        raise UpstreamError("Requisicao invalida\x00 de fato", retryable=self.retryable)


@pytest.mark.parametrize("retryable", [False, True])
def test_a_failure_whose_text_holds_a_nul_still_ends_the_attempt(
    database_url: str,
    recorder: RecordingDispatcher,
    monkeypatch: pytest.MonkeyPatch,
    retryable: bool,
) -> None:
    """The release stores the text without it, instead of failing and leaving the job
    running (a 500, its slot held) until the rescue."""
    monkeypatch.setitem(PROVIDERS, "nul", _RefusesWithNul(retryable))
    tenant = seed_tenant(database_url, "acme", providers={"nul": {}})
    job_id = submit(tenant, "nul").get_json()["job_id"]
    drain(recorder)
    job = rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]
    assert (job["status"], job["attempts"]) == ("error", 1 if not retryable else 3)
    assert job["error_message"] == "Requisicao invalida de fato"
    logs = rows(database_url, "SELECT status FROM integration_logs WHERE job_id = %s", job_id)
    assert logs[-1]["status"] == "error"


class _CrashesOnce:
    """A provider whose first run crashes with an error of no known kind (a bug)."""

    slug, display_name, options = "crash", "Crash", ScriptedProvider.options
    runs = 0

    def sync(self, ctx: SyncContext) -> SyncResult:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("boom")
        return SyncResult(records=1, pages=1)


def test_a_sync_that_crashes_is_retried(
    database_url: str, recorder: RecordingDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash may be a passing fault: the job retries it, told in our words."""
    monkeypatch.setitem(PROVIDERS, "crash", _CrashesOnce())
    tenant = seed_tenant(database_url, "acme", providers={"crash": {}})
    job_id = submit(tenant, "crash").get_json()["job_id"]
    drain(recorder)
    job = rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]
    assert (job["status"], job["attempts"]) == ("success", 2), job["error_message"]
    logs = rows(
        database_url,
        "SELECT status, details FROM integration_logs WHERE job_id = %s ORDER BY id",
        job_id,
    )
    retried = [r["details"].get("error") for r in logs if r["status"] == "pending"]
    assert retried == [None, "Internal error while running the sync."]


def test_stale_jobs_are_rescued_and_zombies_change_nothing(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher, configure
) -> None:
    a = seed_tenant(database_url, "acme", providers={"scripted": {}})
    b = seed_tenant(database_url, "globex", providers={"scripted": {}})
    c = seed_tenant(database_url, "initech", providers={"scripted": {}})
    with psycopg.connect(database_url) as conn:
        # a: heartbeat 20 minutes old; b: 'running' with no timestamps at all (seed 002);
        # c: last attempt, stale -> error "timed out".
        old = conn.execute(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts, started_at,"
            " heartbeat_at, lease_token) VALUES (%s, 'scripted', 'running', 1,"
            " now() - interval '30 min', now() - interval '20 min', gen_random_uuid())"
            " RETURNING id, lease_token",
            [a.id],
        ).fetchone()
        conn.execute(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts)"
            " VALUES (%s, 'scripted', 'running', 1)",
            [b.id],
        )
        conn.execute(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts,"
            " heartbeat_at, lease_token) VALUES (%s, 'scripted', 'running', 3,"
            " now() - interval '1 hour', gen_random_uuid())",
            [c.id],
        )
    assert old is not None
    response = call("process-integration-job", {}, token=service_token())
    assert response.status_code == 200 and response.get_json()["rescued"] == 3
    drain(recorder)
    jobs = {r["tenant_id"]: r for r in rows(database_url, "SELECT * FROM integration_jobs")}
    assert jobs[a.id]["status"] == "success" and jobs[a.id]["attempts"] == 2
    assert jobs[b.id]["status"] == "success"
    assert jobs[c.id]["status"] == "error" and jobs[c.id]["error_message"] == "timed out"
    # The zombie worker of job a comes back with its old lease: nothing changes.
    with db.transaction() as conn:
        zombie = store.final(old[0], old[1], JobStatus.ERROR, error="zombie")
        done = store.release(conn, [zombie], message="zombie")
        with pytest.raises(LeaseLost):
            Lease(store.TABLE, {"id": old[0], "lease_token": old[1]}).heartbeat(conn, progress=50)
    assert done == []
    after = rows(
        database_url, "SELECT status, error_message FROM integration_jobs WHERE id=%s", old[0]
    )
    assert after == [{"status": "success", "error_message": None}]


def test_lost_wake_up_runs_at_next_sweep_and_duplicates_run_once(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    job_id = submit(tenant).get_json()["job_id"]
    recorder.take()  # the Cloud Task is lost
    assert rows(database_url, "SELECT status FROM integration_jobs")[0]["status"] == "pending"
    sweep = call("process-integration-job", {}, token=service_token()).get_json()
    assert [p["job_id"] for p in sweep["processed"]] == [job_id]
    # The same wake-up delivered twice more: nothing left to claim, nothing runs again.
    for _ in range(2):
        again = call("process-integration-job", {"job_id": job_id}, token=service_token())
        assert again.status_code == 200 and again.get_json()["processed"] == []
    assert scripted.runs == 1
    assert rows(database_url, "SELECT attempts FROM integration_jobs")[0]["attempts"] == 1


def test_cancel_pending_and_running(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    job_id = submit(tenant).get_json()["job_id"]
    canceled = call("cancel-integration-job", {"job_id": job_id}, token=tenant.admin_token)
    assert canceled.status_code == 200 and canceled.get_json()["status"] == "canceled"
    again = call("cancel-integration-job", {"job_id": job_id}, token=tenant.admin_token)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "job_finished"
    drain(recorder)
    assert scripted.runs == 0

    # A running job stops at its next heartbeat.
    scripted.hold = threading.Event()
    scripted.pages = 50
    job2 = submit(tenant).get_json()["job_id"]
    recorder.take()
    cancel_while_running(scripted, tenant, job2)
    job = rows(database_url, "SELECT * FROM integration_jobs WHERE id=%s", job2)[0]
    assert job["status"] == "canceled" and job["progress"] < 100
    assert (
        rows(database_url, "SELECT last_status FROM tenant_integrations")[0]["last_status"]
        == "canceled"
    )


def cancel_while_running(scripted: ScriptedProvider, tenant: TenantFixture, job_id: str) -> None:
    """Run the job in a worker; once the provider started, cancel it, then let it go on."""
    worker = threading.Thread(
        target=call,
        args=("process-integration-job", {"job_id": job_id}),
        kwargs={"token": service_token()},
    )
    worker.start()
    assert scripted.started.wait(10)
    response = call("cancel-integration-job", {"job_id": job_id}, token=tenant.admin_token)
    assert response.status_code == 200 and response.get_json()["cancel_requested"] is True
    scripted.hold.set()
    worker.join(20)


def test_cancel_requested_during_an_attempt_that_then_fails_retryably_wins(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    scripted.failures = 1
    scripted.hold = threading.Event()  # the attempt fails only after the cancel is in
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    job_id = submit(tenant).get_json()["job_id"]
    recorder.take()
    cancel_while_running(scripted, tenant, job_id)
    job = rows(database_url, "SELECT * FROM integration_jobs WHERE id=%s", job_id)[0]
    assert job["status"] == "canceled" and job["attempts"] == 1
    assert job["lease_token"] is None and job["finished_at"] is not None
    assert job["execution_time_ms"] is not None and job["error_message"] is None
    assert rows(database_url, "SELECT last_status FROM tenant_integrations") == [
        {"last_status": "canceled"}
    ]
    logs = rows(
        database_url, "SELECT status, message FROM integration_logs WHERE job_id=%s ORDER BY id",
        job_id,
    )  # fmt: skip
    assert [(r["status"], r["message"]) for r in logs] == [
        ("pending", "job created"), ("running", "job claimed"), ("running", "cancel requested"),
        ("canceled", "job canceled"),
    ]  # fmt: skip
    assert recorder.take() == []  # no retry was scheduled
    # The slot is free at once, and the canceled job never runs again.
    again = submit(tenant)
    assert again.status_code == 202, again.get_json()
    drain(recorder)
    assert scripted.runs == 2
    statuses = rows(database_url, "SELECT id, status FROM integration_jobs")
    assert {str(r["id"]): r["status"] for r in statuses} == {
        job_id: "canceled", again.get_json()["job_id"]: "success",
    }  # fmt: skip


def test_a_job_canceled_while_waiting_for_its_retry_does_not_count_the_wait_as_run_time(
    database_url: str, scripted: ScriptedProvider, configure: Configure
) -> None:
    """execution_time_ms is the time an attempt ran: a cancel of a pending job (its last
    attempt failed an hour ago) stamped the hour, which the metrics' p50/p95 then counted."""
    # A long backoff: with the tiny default, a slow machine's drain claims the retry again
    # before it returns, and the job is no longer pending.
    configure(BACKOFF_BASE_S="3600", BACKOFF_CAP_S="3600")
    recorder = get_dispatcher()
    assert isinstance(recorder, RecordingDispatcher)
    scripted.failures = 1
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    job_id = submit(tenant).get_json()["job_id"]
    [wake] = recorder.take()
    assert call("process-integration-job", wake.body, token=service_token()).status_code == 200
    with psycopg.connect(database_url) as conn:  # the attempt failed; its retry waits an hour
        conn.execute(
            "UPDATE integration_jobs SET started_at = started_at - interval '1 hour',"
            " run_after = now() + interval '1 hour' WHERE id = %s",
            [job_id],
        )
    [pending] = rows(database_url, "SELECT status FROM integration_jobs WHERE id=%s", job_id)
    assert pending["status"] == "pending"
    canceled = call("cancel-integration-job", {"job_id": job_id}, token=tenant.admin_token)
    assert canceled.status_code == 200 and canceled.get_json()["status"] == "canceled"
    [job] = rows(database_url, "SELECT execution_time_ms FROM integration_jobs WHERE id=%s", job_id)
    assert job["execution_time_ms"] is None or job["execution_time_ms"] < 60_000


def test_retry_waits_for_its_backoff(
    database_url: str, scripted: ScriptedProvider, configure
) -> None:
    configure(BACKOFF_BASE_S="60", BACKOFF_CAP_S="60")
    recorder = get_dispatcher()
    assert isinstance(recorder, RecordingDispatcher)
    scripted.failures = 1
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    job_id = submit(tenant).get_json()["job_id"]
    first = call("process-integration-job", {"job_id": job_id}, token=service_token()).get_json()
    assert first["processed"][0]["status"] == "pending"
    retry_task = [t for t in recorder.take() if t.delay_s > 0]
    assert len(retry_task) == 1 and 30 <= retry_task[0].delay_s <= 60
    # A sweep before run_after does not run it early.
    sweep = call("process-integration-job", {}, token=service_token()).get_json()
    assert sweep["processed"] == [] and scripted.runs == 1
    job = rows(database_url, "SELECT status, run_after > now() AS later FROM integration_jobs")[0]
    assert job == {"status": "pending", "later": True}


def test_worker_stops_at_its_budget_and_redispatches_itself(
    database_url: str, scripted: ScriptedProvider, configure: Configure
) -> None:
    # The sweep spends part of its budget (rescues, hooks) before it drains: a budget big
    # enough for that on a slow machine, and jobs longer than the whole budget.
    configure(WORKER_BUDGET_S="1")
    recorder = get_dispatcher()
    assert isinstance(recorder, RecordingDispatcher)
    scripted.page_delay_s = 0.4  # each job takes ~1.2 s, longer than the whole budget
    for slug in ("acme", "globex", "initech"):
        submit(seed_tenant(database_url, slug, providers={"scripted": {}}))
    recorder.take()  # lose the wake-ups: only the sweep and continuations remain
    first = call("process-integration-job", {}, token=service_token()).get_json()
    assert len(first["processed"]) == 1 and first["remaining"] == 2
    assert [t.body for t in recorder.tasks] == [{}]  # the continuation
    drain(recorder)
    statuses = rows(database_url, "SELECT status FROM integration_jobs")
    assert [r["status"] for r in statuses] == ["success"] * 3


def test_a_failed_job_runs_again_as_a_retry_and_nothing_else_does(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    scripted.failures = 99
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}, "onecode": {}})
    other = seed_tenant(database_url, "globex", providers={"scripted": {}})
    body = {"tenant_id": str(tenant.id), "provider_slug": "scripted", "payload": {"full": True}}
    failed = call("run-integration", body, token=tenant.admin_token).get_json()["job_id"]
    foreign = submit(other).get_json()["job_id"]  # another tenant's (it fails too)

    def retry(job_id: str, token: str = tenant.admin_token, **extra: object):  # type: ignore[no-untyped-def]
        req = {"tenant_id": str(tenant.id), "provider_slug": "scripted", "retry_of": job_id}
        return call("run-integration", {**req, **extra}, token=token)

    drain(recorder)  # both fail all their attempts
    scripted.failures = 0
    assert rows(database_url, "SELECT status FROM integration_jobs WHERE id = %s", failed) == [
        {"status": "error"}
    ]
    count = rows(database_url, "SELECT count(*) AS n FROM integration_jobs")[0]["n"]
    answers = {
        "member": retry(failed, token=tenant.member_token),
        "stranger's job": retry(foreign),
        "unknown job": retry("00000000-0000-4000-8000-000000000000"),
        "other provider": retry(failed, provider_slug="onecode"),
    }
    assert {k: r.status_code for k, r in answers.items()} == {
        "member": 403, "stranger's job": 404, "unknown job": 404, "other provider": 404,
    }  # fmt: skip
    assert rows(database_url, "SELECT count(*) AS n FROM integration_jobs")[0]["n"] == count

    again = retry(failed)
    assert again.status_code == 202, again.get_json()
    job_id = again.get_json()["job_id"]
    job = rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]
    assert (job["trigger"], job["payload"], job["status"]) == ("retry", {"full": True}, "pending")
    assert retry(failed).get_json()["error"]["code"] == "job_already_active"  # one live job
    drain(recorder)
    assert rows(database_url, "SELECT status FROM integration_jobs WHERE id = %s", job_id) == [
        {"status": "success"}
    ]
    done = retry(job_id)  # a success is not retried: run it as a new job instead
    assert done.status_code == 409
    assert done.get_json()["error"]["code"] == "job_not_retryable"
    assert done.get_json()["error"]["details"] == {"job_id": job_id, "status": "success"}
    listed = function_client("list-integration-jobs").get(
        "/", query_string={"tenant_id": str(tenant.id), "trigger": "retry"},
        headers=bearer(tenant.member_token)).get_json()  # fmt: skip
    assert [j["id"] for j in listed["jobs"]] == [job_id]


def test_a_wake_up_for_a_job_no_longer_due_drains_the_others(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """A wake-up delivered late (its job already ran) still claims the due jobs left."""
    done = submit(seed_tenant(database_url, "acme", providers={"scripted": {}}))
    drain(recorder)
    waiting = submit(seed_tenant(database_url, "globex", providers={"scripted": {}}))
    recorder.take()  # its wake-up is lost
    late = call("process-integration-job", {"job_id": done.get_json()["job_id"]},
                token=service_token()).get_json()  # fmt: skip
    assert [p["job_id"] for p in late["processed"]] == [waiting.get_json()["job_id"]]
    assert [p["status"] for p in late["processed"]] == ["success"]


def test_each_rescue_of_a_job_wakes_its_retry_under_a_key_of_its_own(
    database_url: str, scripted: ScriptedProvider, configure: Configure
) -> None:
    """The wake-up after a rescue is de-duplicated per attempt: the rescue of attempt 2 is
    not taken for a duplicate of the rescue of attempt 1 (and lost)."""
    # The retry waits (the base's test value is capped at 0.5 s: the cap goes too), so the
    # sweep that rescues the job does not run it too on a slow machine.
    configure(BACKOFF_BASE_S="600", BACKOFF_CAP_S="3600")
    recorder = get_dispatcher()
    assert isinstance(recorder, RecordingDispatcher)
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    job_id = submit(tenant).get_json()["job_id"]
    recorder.take()
    keys: list[str | None] = []
    for _ in range(2):
        with psycopg.connect(database_url) as conn:  # claimed by a worker that then died
            conn.execute(
                "UPDATE integration_jobs SET status = 'running', attempts = attempts + 1,"
                " lease_token = gen_random_uuid(), started_at = now() - interval '1 hour',"
                " heartbeat_at = now() - interval '1 hour' WHERE id = %s",
                [job_id],
            )
        sweep = call("process-integration-job", {}, token=service_token()).get_json()
        assert sweep["rescued"] == 1
        keys += [t.key for t in recorder.take()]
    assert keys == [f"integration:{job_id}:retry:1", f"integration:{job_id}:retry:2"]
    assert rows(database_url, "SELECT status, attempts FROM integration_jobs") == [
        {"status": "pending", "attempts": 2}
    ]


def test_a_retry_runs_the_payload_it_is_given(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    body = {"tenant_id": str(tenant.id), "provider_slug": "scripted", "payload": {"full": True}}
    old = call("run-integration", body, token=tenant.admin_token).get_json()["job_id"]
    canceled = call("cancel-integration-job", {"job_id": old}, token=tenant.admin_token)
    assert canceled.get_json()["status"] == "canceled"
    again = call("run-integration", {**body, "payload": {"full": False}, "retry_of": old},
                 token=tenant.admin_token)  # fmt: skip
    assert again.status_code == 202, again.get_json()
    job = rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s",
               again.get_json()["job_id"])[0]  # fmt: skip
    assert (job["trigger"], job["payload"]) == ("retry", {"full": False})


def test_a_database_with_other_date_and_time_defaults_answers_the_same(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    """A database's default DateStyle and TimeZone are its own (a server set up in Brazil,
    `ALTER DATABASE ... SET`): syncq's sessions must not depend on them. psycopg reads a
    timestamptz only in the ISO style (any other: every read of a job failed, a 500), and
    times read in the server's zone came out with its offset, beside times in UTC."""
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} SET DateStyle = 'SQL, DMY'")
        conn.execute(f"ALTER DATABASE {name} SET TimeZone = 'America/Sao_Paulo'")
    db.close_pool()
    started = submit(tenant)
    assert started.status_code == 202, started.get_json()
    drain(recorder)
    listed = function_client("list-integration-jobs").get(
        "/", query_string={"tenant_id": str(tenant.id)}, headers=bearer(tenant.member_token)
    )
    assert listed.status_code == 200, listed.get_json()
    [job] = listed.get_json()["jobs"]
    assert job["status"] == "success"
    assert all(job[k].endswith(("Z", "+00:00")) for k in ("created_at", "finished_at")), job


def test_a_member_of_two_tenants_lists_only_the_tenant_asked_for(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher
) -> None:
    acme = seed_tenant(database_url, "acme", providers={"scripted": {}})
    globex = seed_tenant(database_url, "globex", providers={"scripted": {}})
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%s, %s, 'member')",
            [globex.id, acme.member],
        )
    ours, theirs = (submit(t).get_json()["job_id"] for t in (acme, globex))
    assert ours != theirs
    for caller in (acme.member_token, service_token()):
        listed = function_client("list-integration-jobs").get(
            "/", query_string={"tenant_id": str(acme.id)}, headers=bearer(caller)
        )
        assert listed.status_code == 200, listed.get_json()
        assert [j["id"] for j in listed.get_json()["jobs"]] == [ours]
        # The other tenant's (newer) job as the cursor is no cursor of this listing: it
        # answers as an unknown one, though the caller may read that job.
        paged = function_client("list-integration-jobs").get(
            "/", query_string={"tenant_id": str(acme.id), "before": theirs},
            headers=bearer(caller),
        )  # fmt: skip
        assert paged.get_json() == {"jobs": [], "next_before": None}
