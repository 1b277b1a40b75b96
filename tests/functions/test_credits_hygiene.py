"""What RunningHub's own words may carry (the account's key, a user's data) stays out of the
job's error, its answers and the logs; a job the system fails says so at ERROR."""

from __future__ import annotations

import json
from collections.abc import Callable

import flask
import pytest

from infra.emulators._common import start_in_thread
from infra.emulators.runninghub import RunningHubKnobs, TaskStatus
from shared.credits.models import CreditJobTable, JobKey
from shared.credits.runninghub import webhook_url
from shared.credits.sweep import sweep_runninghub
from shared.settings import get_settings
from tests.conftest import Configure
from tests.credits_support import (
    IMAGE,
    RH_KEY,
    configure_runninghub,
    endless_runninghub,
    job,
    new_job,
    new_user,
    post,
    running_emulator,
)

pytestmark = pytest.mark.db

EMAIL = "maria.sigilosa@example.com"


def echoing_runninghub() -> flask.Flask:
    """A RunningHub that refuses the key, quoting what it was sent."""
    app = flask.Flask("rh-echo")

    @app.post("/task/openapi/create")
    def create() -> flask.Response:
        key = flask.request.get_json()["apiKey"]
        return flask.jsonify({"code": 802, "msg": f"APIKEY_UNAUTHORIZED: {key}", "data": None})

    return app


def test_a_refusal_quoting_the_key_is_neither_logged_nor_answered(
    database_url: str, configure: Configure, logs: Callable[[], str]
) -> None:
    server = start_in_thread(echoing_runninghub())
    try:
        configure_runninghub(configure, server.url)
        user = new_user(database_url, balance=100)
        job_id = new_job(database_url, user, cost=10)
        answer = post("/start", {"table": IMAGE, "jobId": str(job_id)}, user.token)
    finally:
        server.stop()
    assert answer.json()["status"] == "queued"  # the key is not this job's fault: it waits
    said = logs()
    assert "code 802" in said
    for text in (answer.text, said):
        assert RH_KEY not in text


def test_a_failed_reason_quoting_the_key_and_an_email_is_stored_scrubbed(
    database_url: str, configure: Configure
) -> None:
    with endless_runninghub(configure, RUNNINGHUB_CHECK_AFTER_S="0") as rh:
        user = new_user(database_url, balance=100)
        job_id = new_job(database_url, user, cost=10)
        started = post("/start", {"table": IMAGE, "jobId": str(job_id)}, user.token).json()
        failure = f"LoadImage failed for {EMAIL} with apiKey={RH_KEY}"
        rh.state.complete_task(
            started["external_task_id"],
            TaskStatus.FAILED,
            {"node_id": "3", "exception_message": failure},
        )
        sweep_runninghub()
        shown = post("/check", {"table": IMAGE, "jobId": str(job_id)}, user.token).text
    stored = job(database_url, job_id)["error_message"]
    assert stored.startswith("The RunningHub task failed at node 3: LoadImage failed")
    for text in (stored, shown):
        assert EMAIL not in text and RH_KEY not in text


def test_a_job_runninghub_failed_logs_an_error_with_its_reason(
    database_url: str, configure: Configure, logs: Callable[[], str]
) -> None:
    configure_runninghub(configure, "http://127.0.0.1:9")  # RunningHub unreachable
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    body = post("/start", {"table": IMAGE, "jobId": str(job_id)}, user.token).json()
    assert body["status"] == "failed" and body["refunded"]
    lines = [json.loads(line) for line in logs().splitlines()]
    [failed] = [line for line in lines if line["severity"] == "ERROR"]
    assert failed["message"] == "credit job failed" and failed["job_id"] == str(job_id)
    assert failed["code"] == "credit_job_failed"
    assert failed["reason"].startswith("RunningHub could not start the task")


def test_an_owner_failing_or_cancelling_a_job_is_not_an_error(
    database_url: str, configure: Configure, logs: Callable[[], str]
) -> None:
    configure_runninghub(configure, "http://127.0.0.1:9")
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    done = post("/finish", {"table": IMAGE, "jobId": str(job_id), "status": "failed"}, user.token)
    assert done.status_code == 200, done.text
    assert all(json.loads(line)["severity"] != "ERROR" for line in logs().splitlines())


def test_outputs_quoting_the_key_are_stored_and_answered_without_it(
    database_url: str, configure: Configure
) -> None:
    """RunningHub's outputs are JSON from RunningHub like its failure text: an output whose
    file URL quotes the account's key (a signed download link, an echo) must not hand the
    key to the job's owner through /check, /jobs or the stored row."""
    with endless_runninghub(configure, RUNNINGHUB_CHECK_AFTER_S="0") as rh:
        user = new_user(database_url, balance=100)
        by_hook, by_sweep = (
            new_job(database_url, user, cost=10),
            new_job(database_url, user, cost=10),
        )
        hook_task = post("/start", {"table": IMAGE, "jobId": str(by_hook)}, user.token).json()[
            "external_task_id"
        ]
        leaky = [{"fileUrl": f"https://cdn.example/o.png?apiKey={RH_KEY}", "fileType": "png"}]
        event_data = json.dumps({"code": 0, "msg": "success", "data": leaky})
        url = webhook_url(get_settings(), JobKey(CreditJobTable.IMAGE, by_hook))
        assert url is not None
        event = {"event": "TASK_END", "taskId": hook_task, "eventData": event_data}
        assert post("/webhook?" + url.split("?", 1)[1], event).json()["action"] == "finished"
        # the sweep's path: RunningHub's outputs answer quotes the key
        sweep_task = post("/start", {"table": IMAGE, "jobId": str(by_sweep)}, user.token).json()[
            "external_task_id"
        ]
        task = rh.state.complete_task(sweep_task, TaskStatus.SUCCESS)
        task.outputs = leaky
        sweep_runninghub()
        shown = [
            post("/check", {"table": IMAGE, "jobId": str(j)}, user.token).text
            for j in (by_hook, by_sweep)
        ]
        listed = post("/jobs", {}, user.token).text
    for job_id in (by_hook, by_sweep):
        stored = job(database_url, job_id)
        assert stored["status"] == "completed"
        assert stored["outputs"][0]["fileUrl"].startswith("https://cdn.example/o.png?apiKey=")
        assert RH_KEY not in json.dumps(stored["outputs"])
    for text in (*shown, listed):
        assert RH_KEY not in text


def test_a_job_another_users_start_launches_logs_under_its_own_id(
    database_url: str, configure: Configure, logs: Callable[[], str]
) -> None:
    """A /start launches whatever the fair queue holds first, another user's job too: its
    failure was logged under the label of the job the /start was for (job_id one job's
    label and another's field), so that job's log showed a failure that was not its own."""
    with running_emulator(RunningHubKnobs(run_seconds=None, max_concurrent=0)) as rh:
        configure_runninghub(configure, rh.url)
        waiting, caller = new_user(database_url, balance=100), new_user(database_url, balance=100)
        older = new_job(database_url, waiting, cost=10)
        assert (
            post("/start", {"table": IMAGE, "jobId": str(older)}, waiting.token).status_code == 200
        )
        rh.state.knobs.update({"max_concurrent": 3, "forced_codes": {"create": 433}})
        mine = new_job(database_url, caller, cost=10)
        assert post("/start", {"table": IMAGE, "jobId": str(mine)}, caller.token).status_code == 200
    assert (job(database_url, older)["status"], job(database_url, mine)["status"]) == (
        "failed", "failed",
    )  # fmt: skip
    lines = [json.loads(line) for line in logs().splitlines()]
    failed = [line for line in lines if line["message"] == "credit job failed"]
    assert {line["job_id"] for line in failed} == {str(older), str(mine)}
    for line in failed:
        assert line["logging.googleapis.com/labels"]["job_id"] == line["job_id"]
