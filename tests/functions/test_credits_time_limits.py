"""The sweep's time limits on their edges: a job is failed (and refunded) past its limit and
left alone within it, each limit counted from its own moment (started, queued)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from shared.credits import store as sweep_store
from shared.credits.models import CreditJobTable, JobKey
from shared.credits.slots import pump
from shared.credits.sweep import sweep_runninghub
from tests.conftest import Configure
from tests.credits_support import (
    IMAGE,
    Emulator,
    balance,
    configure_runninghub,
    endless_runninghub,
    job,
    ledger,
    new_job,
    new_user,
    post,
)

pytestmark = pytest.mark.db


@pytest.fixture
def rh(configure: Configure) -> Iterator[Emulator]:
    with endless_runninghub(configure) as emulator:
        yield emulator


def start(token: str, job_id: uuid.UUID) -> str:
    answer = post("/start", {"table": IMAGE, "jobId": str(job_id)}, token)
    assert answer.status_code == 200, answer.json()
    status: str = answer.json()["status"]
    return status


def kinds(database_url: str, job_id: uuid.UUID) -> list[str]:
    return [r["kind"] for r in ledger(database_url, job_id)]


def age(database_url: str, job_id: uuid.UUID, column: str, seconds: int) -> None:
    """Move one of the job's moments `seconds` into the past (as the owner: the past)."""
    assert column in ("started_at", "queued_at", "created_at")
    with psycopg.connect(database_url) as conn:
        conn.execute(
            f"UPDATE ai_jobs SET {column} = now() - make_interval(secs => %s) WHERE id = %s",
            [seconds, job_id],
        )


def test_the_runtime_limit_fails_a_job_past_it_and_spares_one_within_it(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    configure_runninghub(
        configure, rh.url, RUNNINGHUB_CHECK_AFTER_S="0", RUNNINGHUB_MAX_RUNTIME_S="600"
    )
    user = new_user(database_url, balance=100)
    over, within = new_job(database_url, user, cost=20), new_job(database_url, user, cost=30)
    assert start(user.token, over) == start(user.token, within) == "running"
    age(database_url, over, "started_at", 660)  # 11 minutes: past the 10-minute limit
    age(database_url, within, "started_at", 540)  # 9 minutes: RunningHub still renders it
    report = sweep_runninghub()
    assert (report["checked"], report["settled"]) == (2, 1)
    failed = job(database_url, over)
    assert failed["status"] == "failed" and "too long" in failed["error_message"]
    assert kinds(database_url, over) == ["debit", "refund"]
    assert rh.state.tasks[failed["external_task_id"]].cancelled  # stopped there too
    still = job(database_url, within)
    assert still["status"] == "running" and kinds(database_url, within) == ["debit"]
    assert not rh.state.tasks[still["external_task_id"]].cancelled
    assert balance(database_url, user) == 100 - 30


def test_the_queue_wait_counts_from_queueing_not_from_creation(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    """A job created an hour ago and started now has waited in the queue for no time: the
    sweep leaves it queued (debited) until it has waited the whole limit."""
    configure_runninghub(configure, rh.url, RUNNINGHUB_MAX_QUEUE_WAIT_S="600")
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    age(database_url, job_id, "created_at", 3600)  # left pending for an hour
    rh.state.knobs.update({"forced_codes": {"create": 421}})  # RunningHub full
    assert start(user.token, job_id) == "queued"
    assert sweep_runninghub()["expired"] == 0
    assert job(database_url, job_id)["status"] == "queued"
    assert kinds(database_url, job_id) == ["debit"] and balance(database_url, user) == 90
    age(database_url, job_id, "queued_at", 660)  # now it has waited past the limit
    assert sweep_runninghub()["expired"] == 1
    assert job(database_url, job_id)["status"] == "failed"
    assert kinds(database_url, job_id) == ["debit", "refund"] and balance(database_url, user) == 100


def test_a_launch_still_within_its_retries_is_not_failed(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    """A job starting without a task yet may still be in its create call's retries: its
    window is every attempt timing out plus a margin (5 s x 3 + 30 s = 45 s here)."""
    configure_runninghub(configure, rh.url, RUNNINGHUB_CHECK_AFTER_S="0")
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    rh.state.knobs.update({"forced_codes": {"create": 421}})
    assert start(user.token, job_id) == "queued"
    with psycopg.connect(database_url) as conn:  # a worker is launching it right now
        conn.execute(
            "UPDATE ai_jobs SET status = 'starting', started_at = now() - interval '38 seconds'"
            " WHERE id = %s",
            [job_id],
        )
    report = sweep_runninghub()
    assert (report["checked"], report["settled"]) == (1, 0)
    assert job(database_url, job_id)["status"] == "starting"
    assert kinds(database_url, job_id) == ["debit"]
    age(database_url, job_id, "started_at", 50)  # past the window: no launch is under way
    assert sweep_runninghub()["settled"] == 1
    failed = job(database_url, job_id)
    assert failed["status"] == "failed" and "could not be started" in failed["error_message"]
    assert kinds(database_url, job_id) == ["debit", "refund"] and balance(database_url, user) == 100


def test_a_queued_job_started_while_the_sweep_expires_the_queue_keeps_running(
    database_url: str, configure: Configure, rh: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep reads the overdue jobs, then a slot frees and /start launches one of them
    before the sweep gets to it: the expiry is for queued jobs only, so the running render
    is neither failed nor refunded (it would run on RunningHub, paid back, slot freed)."""
    configure_runninghub(configure, rh.url, RUNNINGHUB_MAX_QUEUE_WAIT_S="600")
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    rh.state.knobs.update({"forced_codes": {"create": 421}})  # RunningHub full
    assert start(user.token, job_id) == "queued"
    age(database_url, job_id, "queued_at", 660)
    read_overdue = sweep_store.overdue_queued

    def then_a_slot_frees(*args: Any, **kwargs: Any) -> list[JobKey]:
        keys = read_overdue(*args, **kwargs)
        rh.state.knobs.update({"forced_codes": {}})  # RunningHub takes tasks again
        assert pump() == [JobKey(CreditJobTable.IMAGE, job_id)]  # another request's pump
        return keys

    monkeypatch.setattr(sweep_store, "overdue_queued", then_a_slot_frees)
    assert sweep_runninghub()["expired"] == 0
    assert job(database_url, job_id)["status"] == "running"
    assert kinds(database_url, job_id) == ["debit"] and balance(database_url, user) == 90
