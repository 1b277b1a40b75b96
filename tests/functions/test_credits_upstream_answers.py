"""RunningHub answers that say nothing of one job: no render is failed or refunded for them,
and no job is lost to them (real PostgreSQL and the RunningHub emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from infra.emulators.runninghub import TaskStatus
from infra.local.gateway import FUNCTIONS_DIR, load_contract
from shared.contract import ErrorCode
from shared.credits.models import FUNCTION, CreditJobTable, JobKey
from shared.credits.runninghub import webhook_url
from shared.credits.sweep import sweep_runninghub
from shared.settings import get_settings
from tests.conftest import Configure
from tests.credits_support import (
    IMAGE,
    Emulator,
    User,
    balance,
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
    with endless_runninghub(configure, RUNNINGHUB_CHECK_AFTER_S="0") as emulator:
        yield emulator


def _running(database_url: str, rh: Emulator) -> tuple[User, UUID, str]:
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=30)
    started = post("/start", {"table": IMAGE, "jobId": str(job_id)}, user.token)
    assert started.json()["status"] == "running"
    task_id = job(database_url, job_id)["external_task_id"]
    rh.state.complete_task(task_id, TaskStatus.SUCCESS)  # the render is done at RunningHub
    return user, job_id, task_id


def test_one_error_code_from_the_outputs_does_not_fail_a_finished_render(
    database_url: str, rh: Emulator
) -> None:
    user, job_id, _ = _running(database_url, rh)
    rh.state.knobs.update({"forced_codes": {"outputs": 500}})  # one bad answer of its own
    sweep_runninghub()
    assert job(database_url, job_id)["status"] == "running"
    rh.state.knobs.update({"forced_codes": {}})
    sweep_runninghub()  # the next pass reads the outputs
    row = job(database_url, job_id)
    assert row["status"] == "completed", (row["status"], row["error_message"])
    assert row["outputs"] and balance(database_url, user) == 70
    assert [r["kind"] for r in ledger(database_url, job_id)] == ["debit"]


def test_a_webhook_whose_outputs_answer_an_error_code_leaves_the_job_to_the_sweep(
    database_url: str, rh: Emulator
) -> None:
    user, job_id, task_id = _running(database_url, rh)
    url = webhook_url(get_settings(), JobKey(CreditJobTable.IMAGE, job_id))
    assert url is not None
    hook = "/webhook?" + url.split("?", 1)[1]
    rh.state.knobs.update({"forced_codes": {"outputs": 802}})
    first = post(hook, {"event": "TASK_END", "taskId": task_id})  # no eventData: asks outputs
    assert first.json() == {"received": True, "action": "pending"}
    assert job(database_url, job_id)["status"] == "running"
    rh.state.knobs.update({"forced_codes": {}})
    sweep_runninghub()
    assert job(database_url, job_id)["status"] == "completed"
    assert balance(database_url, user) == 70


def test_runninghub_rate_limiting_the_create_keeps_the_job_queued_and_debited(
    database_url: str, rh: Emulator
) -> None:
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=30)
    rh.state.knobs.update({"rate_429": 1.0})  # refused, never acted on: no task exists
    answer = post("/start", {"table": IMAGE, "jobId": str(job_id)}, user.token)
    assert answer.status_code == 200 and not rh.state.tasks
    row = job(database_url, job_id)
    assert row["status"] == "queued", (answer.json()["status"], row["error_message"])
    assert balance(database_url, user) == 70
    rh.state.knobs.update({"rate_429": 0.0})
    sweep_runninghub()  # the limit lifted: the sweep starts it
    assert job(database_url, job_id)["status"] == "running"


def test_a_webhook_that_cannot_ask_runninghub_answers_a_code_its_contract_lists(
    database_url: str, rh: Emulator, configure: Configure
) -> None:
    """RunningHub's key removed while a job runs: the TASK_END without its outcome cannot be
    checked, and the 502 says why with a code the OpenAPI document lists for the route."""
    _, job_id, task_id = _running(database_url, rh)
    url = webhook_url(get_settings(), JobKey(CreditJobTable.IMAGE, job_id))
    assert url is not None
    configure(RUNNINGHUB_API_KEY="")
    answer = post("/webhook?" + url.split("?", 1)[1], {"event": "TASK_END", "taskId": task_id})
    assert answer.status_code == 502, answer.json()
    declared = load_contract(FUNCTIONS_DIR / FUNCTION / "main.py").endpoint("/webhook")
    assert declared is not None
    assert ErrorCode(502, answer.json()["error"]["code"]) in declared.all_errors()
    assert job(database_url, job_id)["status"] == "running"
