"""Acceptance under contention: refunds exactly once, and the slot limit never exceeded."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest

from infra.emulators._common import start_in_thread
from infra.emulators.runninghub import RunningHubKnobs
from shared.credits.models import CreditJobTable, JobKey
from shared.credits.runninghub import webhook_url
from shared.dispatch import RecordingDispatcher, get_dispatcher
from shared.settings import get_settings
from tests.conftest import Configure
from tests.credits_support import (
    IMAGE,
    VIDEO,
    Drainer,
    Emulator,
    Sampler,
    User,
    balance,
    clock_running,
    configure_runninghub,
    function_app,
    job,
    new_job,
    new_user,
    post,
    running_emulator,
    service,
    wait_for,
)
from tests.support import rows

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture
def rh_hold(configure: Configure) -> Iterator[Emulator]:
    """Tasks that never end by themselves; room for every job."""
    knobs = RunningHubKnobs(run_seconds=None, max_concurrent=100, webhook_max_attempts=1)
    with running_emulator(knobs) as emulator:
        configure_runninghub(configure, emulator.url, RUNNINGHUB_MAX_SLOTS="100")
        yield emulator


def failure_event(task_id: str) -> dict[str, Any]:
    reason = {"node_id": "7", "exception_message": "CUDA out of memory"}
    data = {"code": 805, "msg": "APIKEY_TASK_STATUS_ERROR", "data": {"failedReason": reason}}
    return {"event": "TASK_END", "taskId": task_id, "eventData": json.dumps(data)}


def test_500_concurrent_finishes_refund_each_failed_job_exactly_once(
    database_url: str, rh_hold: Emulator, recorder: RecordingDispatcher
) -> None:
    users = [new_user(database_url, balance=1000) for _ in range(10)]
    failing: list[tuple[User, str, UUID]] = []
    completing: list[tuple[User, str, UUID]] = []
    for n, user in enumerate(users):
        for k in range(6):
            table = IMAGE if (n + k) % 2 else VIDEO
            job_id = new_job(database_url, user, table=table, cost=5 + n + k)
            assert (
                post("/start", {"table": table, "jobId": str(job_id)}, user.token).json()["status"]
                == "running"
            )
            (completing if k == 0 else failing).append((user, table, job_id))
    assert len(failing) == 50
    started = {u.id: balance(database_url, u) for u in users}

    calls: list[Callable[[], Any]] = []
    for user, table, job_id in failing:
        ref = {"table": table, "jobId": str(job_id)}
        task_id = job(database_url, job_id)["external_task_id"]
        url = webhook_url(get_settings(), JobKey(CreditJobTable(table), job_id))
        assert url is not None
        hook = "/webhook?" + url.split("?", 1)[1]
        for i in range(10):
            if i % 3 == 0:
                calls.append(lambda r=ref: post("/finish", {**r, "status": "failed"}, service()))
            elif i % 3 == 1:
                calls.append(
                    lambda r=ref, t=user.token: post(
                        "/finish", {**r, "status": "failed", "errorMessage": "browser"}, t
                    )
                )
            else:
                calls.append(lambda h=hook, t=task_id: post(h, failure_event(t)))
    random.Random(5).shuffle(calls)
    assert len(calls) == 500
    for _user, table, job_id in completing:  # these end well: their credits stay spent
        ref = {"table": table, "jobId": str(job_id), "status": "completed"}
        calls.append(lambda r=ref: post("/finish", {**r, "outputs": [{"fileUrl": "u"}]}, service()))

    def run(call: Callable[[], Any]) -> int:
        status: int = call().status_code
        return status

    with ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(run, calls))
    assert set(statuses) == {200}

    refunds = rows(database_url, "SELECT * FROM credit_ledger WHERE kind = 'refund'")
    assert len(refunds) == 50
    assert {r["job_id"] for r in refunds} == {j for _, _, j in failing}
    assert (
        rows(database_url, "SELECT count(*) AS n FROM credit_ledger WHERE kind='debit'")[0]["n"]
        == 60
    )
    for user in users:
        spent = sum(
            job(database_url, j)["credits_cost"] for u, _, j in completing if u.id == user.id
        )
        assert balance(database_url, user) == 1000 - spent
        assert started[user.id] < balance(database_url, user)
    statuses_by_job = {job(database_url, j)["status"] for _, _, j in failing}
    assert statuses_by_job == {"failed"}


def test_30_jobs_started_at_once_never_exceed_3_slots_and_all_complete(
    database_url: str, configure: Configure
) -> None:
    server = start_in_thread(function_app())
    knobs = RunningHubKnobs(run_seconds=0.25, max_concurrent=3, webhook_retry_delay_s=0.05)
    # RunningHub's clock stands still while the 30 clicks land, so no task can end (and
    # free a slot) before every /start has answered, however slow the machine; then it runs.
    with running_emulator(knobs) as rh:
        configure_runninghub(configure, rh.url, f"{server.url}/webhook")
        recorder = get_dispatcher()
        assert isinstance(recorder, RecordingDispatcher)
        users = [new_user(database_url, balance=100) for _ in range(5)]
        jobs = []
        for i in range(30):
            user, table = users[i % 5], IMAGE if i % 3 else VIDEO
            jobs.append((user, table, new_job(database_url, user, table=table, cost=3)))
        sampler = Sampler(database_url, lambda: rh.state.active_count("rh-test-api-key"))
        gate = threading.Barrier(30)

        def click(item: tuple[User, str, UUID]) -> str:
            user, table, job_id = item
            gate.wait()
            answer = post("/start", {"table": table, "jobId": str(job_id)}, user.token)
            assert answer.status_code == 200, answer.json()
            status: str = answer.json()["status"]
            return status

        with sampler, Drainer(recorder):
            with ThreadPoolExecutor(30) as pool:
                first = list(pool.map(click, jobs))
            with clock_running(rh):
                wait_for(lambda: _all_completed(database_url), 90, "all jobs to complete")
    server.stop()
    # 'starting': another request's pump was launching this job when it answered.
    assert sum(s in ("running", "starting") for s in first) == 3
    assert sum(s == "queued" for s in first) == 27
    assert sampler.samples > 50
    assert sampler.max_db <= 3 and sampler.max_remote <= 3
    done = rows(database_url, "SELECT * FROM ai_jobs ORDER BY started_at")
    assert [r["status"] for r in done] == ["completed"] * 30
    # After the first wave, each user's jobs start in creation order (FIFO within a user;
    # across users the fair order applies, see test_credits_fair_queue).
    for user in users:
        later = [r for r in done[3:] if r["user_id"] == user.id]
        assert [r["id"] for r in later] == [
            r["id"] for r in sorted(later, key=lambda r: (r["created_at"], r["id"]))
        ]
    for user in users:
        assert balance(database_url, user) == 100 - 6 * 3
    assert rows(database_url, "SELECT count(*) AS n FROM credit_ledger")[0]["n"] == 30


def _all_completed(database_url: str) -> bool:
    counts = rows(database_url, "SELECT status, count(*) AS n FROM ai_jobs GROUP BY status")
    return {r["status"]: r["n"] for r in counts} == {"completed": 30}
