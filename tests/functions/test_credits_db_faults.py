"""The credits queue when PostgreSQL fails under it: no debited job is stranded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from infra.emulators.runninghub import RunningHubKnobs
from shared.credits.slots import pump
from shared.credits.sweep import sweep_runninghub
from tests.conftest import Configure
from tests.credits_support import (
    IMAGE,
    Emulator,
    configure_runninghub,
    job,
    new_job,
    new_user,
    post,
    running_emulator,
)

pytestmark = pytest.mark.db


@pytest.fixture
def rh(configure: Configure) -> Iterator[Emulator]:
    with running_emulator(RunningHubKnobs(run_seconds=None)) as emulator:
        configure_runninghub(
            configure, emulator.url, RUNNINGHUB_MAX_SLOTS="2", DB_STATEMENT_TIMEOUT_MS="1000"
        )
        yield emulator


def test_a_database_error_launching_one_job_puts_the_next_promoted_one_back_in_the_queue(
    database_url: str, rh: Emulator
) -> None:
    """Both promoted to 'starting' in one round; the first one's launch fails on the
    database. The second, never sent, held its slot until the launch window failed it."""
    rh.state.knobs.update({"max_concurrent": 0})  # RunningHub full: both wait, debited
    a, b = new_user(database_url, balance=100), new_user(database_url, balance=100)
    job_a, job_b = new_job(database_url, a, cost=10), new_job(database_url, b, cost=10)
    for user, job_id in ((a, job_a), (b, job_b)):
        started = post("/start", {"table": IMAGE, "jobId": str(job_id)}, user.token)
        assert started.json()["status"] == "queued"
    rh.state.knobs.update({"max_concurrent": 3, "latency_ms": 1500})
    locked = threading.Event()

    def hold_a() -> None:  # A's row is busy when its launch records the task id
        with psycopg.connect(database_url) as conn:
            while job(database_url, job_a)["status"] != "starting":
                time.sleep(0.02)
            conn.execute("SELECT 1 FROM ai_jobs WHERE id = %s FOR UPDATE", [job_a])
            locked.set()
            time.sleep(3)

    holder = threading.Thread(target=hold_a)
    holder.start()
    with pytest.raises(psycopg.errors.QueryCanceled):
        pump()  # A's mark_running meets the statement timeout
    holder.join()
    assert locked.is_set()
    assert job(database_url, job_b)["status"] == "queued"  # back in line, debit kept
    rh.state.knobs.update({"latency_ms": 0})
    sweep_runninghub()  # the next minute's sweep starts it
    assert job(database_url, job_b)["status"] == "running"


@pytest.fixture
def rh3(configure: Configure) -> Iterator[Emulator]:
    with running_emulator(RunningHubKnobs(run_seconds=None)) as emulator:
        configure_runninghub(
            configure, emulator.url, RUNNINGHUB_MAX_SLOTS="3", DB_STATEMENT_TIMEOUT_MS="1000"
        )
        yield emulator


def test_a_database_error_requeueing_after_a_full_answer_puts_the_rest_back(
    database_url: str, rh3: Emulator
) -> None:
    """RunningHub full: the round puts the others back; one of those writes failing left
    the jobs after it in 'starting' (found by the diff review of 1d9e088)."""
    rh3.state.knobs.update({"max_concurrent": 0})
    users = [new_user(database_url, balance=100) for _ in range(3)]
    ids = [new_job(database_url, u, cost=10) for u in users]
    for user, job_id in zip(users, ids, strict=True):
        answer = post("/start", {"table": IMAGE, "jobId": str(job_id)}, user.token)
        assert answer.json()["status"] == "queued"
    rh3.state.knobs.update({"latency_ms": 1500})  # still full; the answer is slow
    job_a, job_b, job_c = ids
    locked = threading.Event()

    def hold_b() -> None:
        with psycopg.connect(database_url) as conn:
            while job(database_url, job_b)["status"] != "starting":
                time.sleep(0.02)
            conn.execute("SELECT 1 FROM ai_jobs WHERE id = %s FOR UPDATE", [job_b])
            locked.set()
            time.sleep(3)

    holder = threading.Thread(target=hold_b)
    holder.start()
    with pytest.raises(psycopg.errors.QueryCanceled):
        pump()
    holder.join()
    assert locked.is_set()
    assert job(database_url, job_a)["status"] == "queued"
    assert job(database_url, job_c)["status"] == "queued"
