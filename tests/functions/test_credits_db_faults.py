"""The credits queue when PostgreSQL fails under it: no debited job is stranded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from uuid import UUID

import psycopg
import pytest

from infra.emulators.runninghub import RunningHubKnobs
from shared.credits.runninghub import RunningHub
from shared.credits.slots import Launch, launch, promote, pump
from shared.credits.sweep import sweep_runninghub
from shared.settings import get_settings
from tests.conftest import Configure
from tests.credits_support import (
    IMAGE,
    Emulator,
    balance,
    configure_runninghub,
    job,
    new_job,
    new_user,
    post,
    running_emulator,
)
from tests.support import lose_the_first_commit_answer, terminate_lock_waiters

pytestmark = pytest.mark.db


@pytest.fixture(params=[2])
def rh(configure: Configure, request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """The emulator; RunningHub's slots in `request.param`, statements cut after a second."""
    with running_emulator(RunningHubKnobs(run_seconds=None)) as emulator:
        configure_runninghub(
            configure,
            emulator.url,
            RUNNINGHUB_MAX_SLOTS=str(request.param),
            DB_STATEMENT_TIMEOUT_MS="1000",
        )
        yield emulator


def _queued(database_url: str, rh: Emulator, users: int) -> list[UUID]:
    """Jobs of as many users, debited and queued while RunningHub is full."""
    rh.state.knobs.update({"max_concurrent": 0})
    ids = []
    for _ in range(users):
        user = new_user(database_url, balance=100)
        job_id = new_job(database_url, user, cost=10)
        answer = post("/start", {"table": IMAGE, "jobId": str(job_id)}, user.token)
        assert answer.json()["status"] == "queued"
        ids.append(job_id)
    return ids


def _pump_while_held(database_url: str, held: UUID, hold_s: float = 3) -> None:
    """Run a pump round while another connection holds `held`'s row once it is 'starting'
    for `hold_s`: the round's write to it meets the statement timeout."""
    locked = threading.Event()

    def hold() -> None:
        with psycopg.connect(database_url) as conn:
            while job(database_url, held)["status"] != "starting":
                time.sleep(0.02)
            conn.execute("SELECT 1 FROM ai_jobs WHERE id = %s FOR UPDATE", [held])
            locked.set()
            time.sleep(hold_s)

    holder = threading.Thread(target=hold)
    holder.start()
    with pytest.raises(psycopg.errors.QueryCanceled):
        pump()
    holder.join()
    assert locked.is_set()


def test_a_database_error_launching_one_job_puts_the_next_promoted_one_back_in_the_queue(
    database_url: str, rh: Emulator
) -> None:
    """Both promoted to 'starting' in one round; the first one's launch fails on the
    database. The second, never sent, held its slot until the launch window failed it."""
    job_a, job_b = _queued(database_url, rh, 2)
    rh.state.knobs.update({"max_concurrent": 3, "latency_ms": 1500})
    # A's mark_running meets the statement timeout, each of its tries
    _pump_while_held(database_url, job_a, hold_s=8)
    assert job(database_url, job_b)["status"] == "queued"  # back in line, debit kept
    rh.state.knobs.update({"latency_ms": 0})
    sweep_runninghub()  # the next minute's sweep starts it
    assert job(database_url, job_b)["status"] == "running"


@pytest.mark.parametrize("rh", [3], indirect=True)
def test_a_database_error_requeueing_after_a_full_answer_puts_the_rest_back(
    database_url: str, rh: Emulator
) -> None:
    """RunningHub full: the round puts the others back; one of those writes failing left
    the jobs after it in 'starting' (found by the diff review of 1d9e088)."""
    job_a, job_b, job_c = _queued(database_url, rh, 3)
    rh.state.knobs.update({"latency_ms": 1500})  # still full; the answer is slow
    # B's requeue meets the statement timeout, each of its tries
    _pump_while_held(database_url, job_b, hold_s=8)
    assert job(database_url, job_a)["status"] == "queued"
    assert job(database_url, job_c)["status"] == "queued"


def _terminate_the_write_waiting_for(database_url: str, job_id: UUID) -> None:
    """Once a pump has `job_id` in 'starting', hold its row until the pump's next write to
    it waits for the lock, and terminate that backend (a dropped connection)."""
    with psycopg.connect(database_url) as locker:
        while job(database_url, job_id)["status"] != "starting":
            time.sleep(0.02)
        locker.execute("SELECT 1 FROM ai_jobs WHERE id = %s FOR UPDATE", [job_id])
        terminate_lock_waiters(database_url)
        locker.rollback()


def test_a_task_whose_running_record_loses_its_connection_is_still_recorded(
    database_url: str, rh: Emulator
) -> None:
    """RunningHub created the task; the backend writing its id is terminated. The job sat in
    'starting' without the id: the sweep failed it after the launch window ("could not be
    started", refunded) while the render ran on, its result then thrown away."""
    [job_a] = _queued(database_url, rh, 1)
    rh.state.knobs.update({"max_concurrent": 3, "latency_ms": 500})
    pumped = threading.Thread(target=pump)
    pumped.start()
    _terminate_the_write_waiting_for(database_url, job_a)
    pumped.join(30)
    [task] = rh.state.tasks.values()
    row = job(database_url, job_a)
    assert (row["status"], row["external_task_id"]) == ("running", task.task_id)
    assert not task.cancelled


def test_a_running_record_whose_commit_answer_was_lost_keeps_its_task(
    database_url: str, rh: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id was written, the connection dropped before the commit's answer: the next try
    must know its own write, not take the job for one cancelled meanwhile (and cancel it)."""
    [job_a] = _queued(database_url, rh, 1)
    rh.state.knobs.update({"max_concurrent": 3})
    promoted = promote()
    lose_the_first_commit_answer(monkeypatch)
    [started] = [launch(row, RunningHub(get_settings())) for row in promoted]
    [task] = rh.state.tasks.values()
    row = job(database_url, job_a)
    assert (started, row["status"], row["external_task_id"]) == (
        Launch.RUNNING, "running", task.task_id,
    )  # fmt: skip
    assert not task.cancelled


def test_a_requeue_after_a_full_answer_that_loses_its_connection_still_requeues(
    database_url: str, rh: Emulator
) -> None:
    """RunningHub answered "full"; the backend putting the job back in the queue is
    terminated. The job sat in 'starting' without a task, holding a slot, until the launch
    window failed it ("could not be started", refunded): a render lost to a full answer."""
    [job_a] = _queued(database_url, rh, 1)
    rh.state.knobs.update({"latency_ms": 500})  # still full; the answer is slow
    pumped = threading.Thread(target=pump)
    pumped.start()
    _terminate_the_write_waiting_for(database_url, job_a)
    pumped.join(30)
    assert not rh.state.tasks
    assert job(database_url, job_a)["status"] == "queued"  # back in line, debit kept
    rh.state.knobs.update({"max_concurrent": 3, "latency_ms": 0})
    sweep_runninghub()  # the next minute's sweep starts it
    assert job(database_url, job_a)["status"] == "running"


def test_a_refused_task_whose_failure_loses_its_connection_is_still_failed_and_refunded(
    database_url: str, rh: Emulator
) -> None:
    """RunningHub refused the task (a code about this job); the backend failing the job is
    terminated. The job sat in 'starting', holding a slot, until the launch window failed
    it ("could not be started"): as a put-back lost to one dropped connection did."""
    user = new_user(database_url, balance=100)
    job_a = new_job(database_url, user, cost=10)
    rh.state.knobs.update({"max_concurrent": 0})  # full: /start debits and queues it
    assert post("/start", {"table": IMAGE, "jobId": str(job_a)}, user.token).status_code == 200
    rh.state.knobs.update({"max_concurrent": 3, "latency_ms": 500, "forced_codes": {"create": 433}})
    pumped = threading.Thread(target=pump)
    pumped.start()
    _terminate_the_write_waiting_for(database_url, job_a)
    pumped.join(30)
    row = job(database_url, job_a)
    assert (row["status"], row["error_message"]) == (
        "failed", "RunningHub refused the task (code 433 VALIDATE_PROMPT_FAILED).",
    )  # fmt: skip
    assert balance(database_url, user) == 100  # refunded
