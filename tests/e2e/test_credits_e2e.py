"""End to end: the credits queue manager through the gateway, Cloud Tasks and RunningHub.

The gateway and gcloud-tasks-emulator run as processes; the RunningHub emulator runs
in-process on the system clock and posts its TASK_END webhooks to the gateway's
/runninghub-queue-manager/webhook URL (signed per job). The test only creates jobs and
calls /start once per job: every later start comes from a freed slot's Cloud Task.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from infra.emulators.runninghub import RunningHubKnobs
from tests.credits_client import JobManager, function_url
from tests.credits_support import (
    IMAGE,
    RH_KEY,
    WEBHOOK_SECRET,
    Emulator,
    Sampler,
    User,
    balance,
    ledger,
    new_user,
    priced_workflow,
    running_emulator,
)
from tests.e2e.conftest import wait_until
from tests.support import rows

pytestmark = [pytest.mark.db, pytest.mark.e2e, pytest.mark.slow]
MAX_SLOTS = 2
WAIT_S = 60
FAIL_INPUTS = [{"nodeId": "6", "fieldName": "text", "fieldValue": "__emulator_fail__"}]


@pytest.fixture
def rh() -> Iterator[Emulator]:
    """RunningHub on the system clock: tasks run ~1 s; it would allow more than our limit."""
    knobs = RunningHubKnobs(
        run_seconds=1.0,
        max_concurrent=MAX_SLOTS + 2,
        webhook_retry_delay_s=0.2,
        webhook_max_attempts=5,
    )
    with running_emulator(knobs, manual_clock=False) as emulator:
        yield emulator


@pytest.fixture
def stack_env(rh: Emulator) -> dict[str, str]:
    """The functions talk to the emulator; the webhook URL defaults to the gateway's."""
    return {
        "RUNNINGHUB_BASE_URL": rh.url,
        "RUNNINGHUB_API_KEY": RH_KEY,
        "RUNNINGHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "RUNNINGHUB_MAX_SLOTS": str(MAX_SLOTS),
        "RUNNINGHUB_MAX_ACTIVE_PER_USER": "10",  # one user drives every job here
    }


def rh_active(rh: Emulator) -> int:
    with rh.state.lock:
        return int(rh.state.active_count(RH_KEY))


def statuses(database_url: str, job_ids: list[uuid.UUID]) -> list[str]:
    found = rows(database_url, "SELECT id, status FROM ai_jobs WHERE id = ANY(%s)", job_ids)
    by_id = {r["id"]: r["status"] for r in found}
    return [by_id[j] for j in job_ids]


def start_all(jm: JobManager, job_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """One /start per job, all at once (as several browser tabs would)."""
    with ThreadPoolExecutor(max_workers=len(job_ids)) as pool:
        return list(pool.map(lambda j: jm.start_job(IMAGE, j), job_ids))


def create(
    database_url: str,
    jm: JobManager,
    user: User,
    cost: int,
    inputs: list[dict[str, Any]] | None = None,
) -> uuid.UUID:
    """A pending job the user created through /create (the browser's createJob), whose
    workflow the server prices at `cost`."""
    workflow = priced_workflow(database_url, cost)
    return jm.create_job(IMAGE, user_id=user.id, workflow_id=workflow, inputs=inputs)


def test_four_jobs_share_two_slots_and_all_complete(
    database_url: str, rh: Emulator, stack: str
) -> None:
    user = new_user(database_url, balance=100)
    costs = [5, 10, 15, 20]
    with JobManager(function_url(stack), user.token) as jm:
        job_ids = [create(database_url, jm, user, cost) for cost in costs]
        assert statuses(database_url, job_ids) == ["pending"] * 4
        with Sampler(database_url, lambda: rh_active(rh)) as sampler:
            answers = start_all(jm, job_ids)
            assert all(a["debited"] and a["status"] != "failed" for a in answers), answers
            # Nobody calls /start again nor the sweep: webhooks and Cloud Tasks do the rest.
            wait_until(
                lambda: set(statuses(database_url, job_ids)) <= {"completed", "failed"},
                WAIT_S, "every job to finish",
            )  # fmt: skip
        check = jm.check()
    assert sampler.samples > 0 and sampler.max_db <= MAX_SLOTS, vars(sampler)
    assert sampler.max_remote <= MAX_SLOTS, vars(sampler)
    assert statuses(database_url, job_ids) == ["completed"] * 4
    assert check["running"] == 0 and check["queued"] == 0 and check["free_slots"] == MAX_SLOTS
    assert_completed_once_each(database_url, rh, job_ids, stack)
    assert_started_after_a_freed_slot(database_url, job_ids, at_least=len(job_ids) - MAX_SLOTS)
    kinds = [r["kind"] for r in ledger(database_url)]
    assert kinds.count("debit") == 4 and kinds.count("refund") == 0
    assert balance(database_url, user) == 100 - sum(costs)


def assert_completed_once_each(
    database_url: str, rh: Emulator, job_ids: list[uuid.UUID], stack: str
) -> None:
    """One RunningHub task per job, its outputs stored, its webhook sent to the gateway."""
    assert len(rh.state.tasks) == len(job_ids)  # no job was launched twice
    webhook_base = f"{stack}/runninghub-queue-manager/webhook?"
    for job_id in job_ids:
        row = rows(database_url, "SELECT * FROM ai_jobs WHERE id = %s", job_id)[0]
        task = rh.state.tasks[row["external_task_id"]]
        assert task.status == "SUCCESS" and task.webhook_url is not None
        assert task.webhook_url.startswith(webhook_base)
        assert row["outputs"] and row["outputs"][0]["fileUrl"] == task.outputs[0]["fileUrl"]
        assert row["error_message"] is None and row["completed_at"] is not None
        deliveries = rh.state.webhooks.deliveries(task.task_id)
        assert [d.state for d in deliveries] == ["delivered"]


def assert_started_after_a_freed_slot(
    database_url: str, job_ids: list[uuid.UUID], at_least: int
) -> None:
    """Jobs the test never started again began after a job ended: a Cloud Task started them."""
    found = rows(
        database_url, "SELECT started_at, completed_at FROM ai_jobs WHERE id = ANY(%s)", job_ids
    )
    first_end = min(r["completed_at"] for r in found)
    assert sum(r["started_at"] > first_end for r in found) >= at_least, found


def test_failed_workflow_is_refunded_once_through_the_webhook(
    database_url: str, rh: Emulator, stack: str
) -> None:
    rh.state.knobs.update({"webhook_replays": 2})  # RunningHub sends TASK_END twice
    user = new_user(database_url, balance=50)
    with JobManager(function_url(stack), user.token) as jm:
        job_id = create(database_url, jm, user, 30, FAIL_INPUTS)
        answer = jm.start_job(IMAGE, job_id)
        assert answer["debited"] and answer["status"] != "failed", answer
        wait_until(
            lambda: statuses(database_url, [job_id]) == ["failed"], WAIT_S, "the job to fail"
        )
        assert rh.state.webhooks.wait_idle(timeout=WAIT_S)
        final = jm.check(IMAGE, job_id)["job"]
    assert final["status"] == "failed" and final["debited"] and final["refunded"]
    assert "emulated workflow failure" in final["error_message"]
    assert final["outputs"] is None
    task = rh.state.tasks[final["external_task_id"]]
    assert task.status == "FAILED"
    deliveries = rh.state.webhooks.deliveries(task.task_id)
    assert [d.state for d in deliveries] == ["delivered", "delivered"]
    assert [r["kind"] for r in ledger(database_url, job_id)] == ["debit", "refund"]
    assert balance(database_url, user) == 50
