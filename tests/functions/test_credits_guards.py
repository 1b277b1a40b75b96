"""runninghub-queue-manager guards: the server's price, the per-user cap, a missing
RunningHub key, hostile provider data, time limits and a sweep that survives a bad row.

Real PostgreSQL and the RunningHub emulator (tasks never end by themselves; RunningHub's
own webhooks go nowhere, the tests post them by hand).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from flask import Flask, Response
from flask import request as flask_request
from psycopg import sql

from infra.emulators._common import start_in_thread
from infra.emulators.runninghub import TaskStatus
from shared.credits.models import CreditJobTable, JobKey
from shared.credits.runninghub import webhook_url
from shared.credits.sweep import sweep_runninghub
from shared.settings import get_settings
from tests.conftest import Configure
from tests.credits_support import (
    IMAGE,
    RH_KEY,
    Emulator,
    balance,
    configure_runninghub,
    endless_runninghub,
    job,
    ledger,
    new_job,
    new_user,
    post,
    set_price,
)
from tests.support import rows

pytestmark = pytest.mark.db

NUL_REASON = {"node_id": "3", "exception_message": "bad\u0000byte"}


@pytest.fixture
def rh(configure: Configure) -> Iterator[Emulator]:
    with endless_runninghub(configure) as emulator:
        yield emulator


def start(token: str, job_id: uuid.UUID) -> Any:
    return post("/start", {"table": IMAGE, "jobId": str(job_id)}, token)


def kinds(database_url: str, job_id: uuid.UUID) -> list[str]:
    return [r["kind"] for r in ledger(database_url, job_id)]


def owner_sql(database_url: str, statement: str | sql.Composed, *params: Any) -> None:
    """A change made as the database owner (an operator, or the past)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(statement, params)


def post_webhook(job_id: uuid.UUID, task_id: str, event_data: str) -> Any:
    url = webhook_url(get_settings(), JobKey(CreditJobTable.IMAGE, job_id))
    assert url is not None
    event = {"event": "TASK_END", "taskId": task_id, "eventData": event_data}
    return post("/webhook?" + url.split("?", 1)[1], event)


# --- 1. the price is the server's ---------------------------------------------------------


def test_start_debits_the_current_price_not_the_rows_cost(database_url: str, rh: Emulator) -> None:
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=30)
    workflow = job(database_url, job_id)["workflow_id"]
    # A row from before prices (its cost chosen by the browser), and a price raised since.
    owner_sql(database_url, "UPDATE ai_jobs SET credits_cost = 0 WHERE id = %s", job_id)
    set_price(database_url, workflow, 45)
    body = start(user.token, job_id).json()
    assert body["status"] == "running" and body["credits_cost"] == 45 and body["debited"]
    assert balance(database_url, user) == 55
    assert [(r["kind"], r["amount"]) for r in ledger(database_url, job_id)] == [("debit", 45)]
    broke = new_user(database_url, balance=0)  # no free render for anyone
    other = new_job(database_url, broke, cost=30)
    owner_sql(database_url, "UPDATE ai_jobs SET credits_cost = 0 WHERE id = %s", other)
    answer = start(broke.token, other)
    assert answer.status_code == 402
    assert answer.json()["error"]["details"] == {"required": 30, "balance": 0}
    assert job(database_url, other)["status"] == "pending" and ledger(database_url, other) == []


def test_start_refuses_a_workflow_without_a_price(database_url: str, rh: Emulator) -> None:
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    workflow = job(database_url, job_id)["workflow_id"]
    owner_sql(database_url, "DELETE FROM credit_prices WHERE workflow_id = %s", workflow)
    answer = start(user.token, job_id)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "unknown_workflow"
    assert error["details"] == {"table": IMAGE, "workflowId": workflow}
    assert job(database_url, job_id)["status"] == "pending" and ledger(database_url) == []
    assert balance(database_url, user) == 100 and rh.state.tasks == {}


# --- 1. one user cannot take every slot ---------------------------------------------------


def test_per_user_cap_is_429_and_debits_nothing(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    configure_runninghub(
        configure, rh.url, RUNNINGHUB_MAX_ACTIVE_PER_USER="2", RUNNINGHUB_MAX_SLOTS="1"
    )
    user, other = new_user(database_url, balance=100), new_user(database_url, balance=100)
    first, second, third = (new_job(database_url, user, cost=10) for _ in range(3))
    assert start(user.token, first).json()["status"] == "running"
    assert start(user.token, second).json()["status"] == "queued"  # queued jobs count too
    answer = start(user.token, third)
    assert answer.status_code == 429
    error = answer.json()["error"]
    assert error["code"] == "too_many_active_jobs"
    assert error["details"] == {"limit": 2, "active": 2}
    assert answer.headers["Retry-After"] == "30"
    assert job(database_url, third)["status"] == "pending" and ledger(database_url, third) == []
    assert balance(database_url, user) == 80
    others = new_job(database_url, other, cost=10)
    assert start(other.token, others).json()["status"] == "queued"  # the cap is per user
    post("/cancel", {"table": IMAGE, "jobId": str(second)}, user.token)
    assert start(user.token, third).json()["status"] == "queued"  # room again
    assert kinds(database_url, third) == ["debit"] and balance(database_url, user) == 80


def test_concurrent_starts_of_one_user_respect_the_cap(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    configure_runninghub(configure, rh.url, RUNNINGHUB_MAX_ACTIVE_PER_USER="2")
    user = new_user(database_url, balance=100)
    jobs = [new_job(database_url, user, cost=10) for _ in range(8)]
    gate = threading.Barrier(len(jobs))

    def click(job_id: uuid.UUID) -> int:
        gate.wait()
        status: int = start(user.token, job_id).status_code
        return status

    with ThreadPoolExecutor(len(jobs)) as pool:
        statuses = list(pool.map(click, jobs))
    assert sorted(statuses) == [200] * 2 + [429] * 6
    assert len(ledger(database_url)) == 2 and balance(database_url, user) == 80
    running = rows(database_url, "SELECT id FROM ai_jobs WHERE status = 'running'")
    assert len(running) == 2 and len(rh.state.tasks) == 2


# --- 5. no RunningHub key: refuse before taking money; queued jobs have a deadline -------


def test_start_without_a_runninghub_key_is_503_and_debits_nothing(
    database_url: str, configure: Configure
) -> None:
    configure(RUNNINGHUB_API_KEY="")
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    answer = start(user.token, job_id)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "runninghub_not_configured"
    assert "Retry-After" not in answer.headers  # until configured: no time to give
    assert job(database_url, job_id)["status"] == "pending" and ledger(database_url) == []
    assert balance(database_url, user) == 100


def test_a_5xx_refusal_is_logged_under_one_message_with_its_code_beside_it(
    database_url: str, configure: Configure, logs: Callable[[], str]
) -> None:
    """Log lines are grouped and alerted on by their message: the refusal's code goes in a
    field of its own ("request failed: runninghub_not_configured" was a message per code)."""
    configure(RUNNINGHUB_API_KEY="")
    user = new_user(database_url, balance=100)
    assert start(user.token, new_job(database_url, user, cost=10)).status_code == 503
    lines = [json.loads(line) for line in logs().splitlines()]
    [failed] = [line for line in lines if line["message"].startswith("request failed")]
    assert (failed["message"], failed["severity"]) == ("request failed", "WARNING")
    assert (failed["code"], failed["status"]) == ("runninghub_not_configured", 503)
    # and says why, as the answer does (a 5xx's line held only its code and status)
    assert failed["reason"] == "AI renders are unavailable: RunningHub is not configured."


def test_sweep_fails_jobs_queued_too_long_with_their_refund(
    database_url: str, configure: Configure, rh: Emulator, logs: Callable[[], str]
) -> None:
    configure_runninghub(configure, rh.url, RUNNINGHUB_MAX_QUEUE_WAIT_S="600")
    user = new_user(database_url, balance=100)
    old, fresh = new_job(database_url, user, cost=10), new_job(database_url, user, cost=20)
    rh.state.knobs.update({"forced_codes": {"create": 421}})  # RunningHub full for ever
    assert start(user.token, old).json()["status"] == "queued"
    assert start(user.token, fresh).json()["status"] == "queued"
    owner_sql(
        database_url, "UPDATE ai_jobs SET queued_at = now() - interval '11 minutes' WHERE id = %s",
        old,
    )  # fmt: skip
    queued_at = job(database_url, fresh)["queued_at"]
    report = sweep_runninghub()
    assert report["expired"] == 1
    expired = job(database_url, old)
    assert expired["status"] == "failed" and "waited too long" in expired["error_message"]
    assert kinds(database_url, old) == ["debit", "refund"]
    # Its ERROR line carries the job as a label, as every credits line does (issue 14):
    # the sweep's expiry ran outside any job's labels, so the line had it as a field only.
    [failed] = [json.loads(x) for x in logs().splitlines() if "credit job failed" in x]
    assert failed["logging.googleapis.com/labels"]["job_id"] == str(old) == failed["job_id"]
    assert failed["logging.googleapis.com/labels"]["table"] == IMAGE
    still = job(database_url, fresh)  # tried again and sent back: its wait is not reset
    assert still["status"] == "queued" and still["queued_at"] == queued_at
    assert balance(database_url, user) == 80
    configure(RUNNINGHUB_API_KEY="")  # the key is removed while a job waits
    owner_sql(
        database_url, "UPDATE ai_jobs SET queued_at = now() - interval '1 hour' WHERE id = %s",
        fresh,
    )  # fmt: skip
    assert sweep_runninghub()["expired"] == 1
    assert job(database_url, fresh)["status"] == "failed"
    assert kinds(database_url, fresh) == ["debit", "refund"] and balance(database_url, user) == 100


# --- 2. hostile provider data; a sweep that survives one bad row --------------------------


def test_webhook_with_nul_and_non_finite_values_finishes_the_job(
    database_url: str, rh: Emulator
) -> None:
    user = new_user(database_url, balance=100)
    failing, done = new_job(database_url, user, cost=10), new_job(database_url, user, cost=20)
    fail_task = start(user.token, failing).json()["external_task_id"]
    done_task = start(user.token, done).json()["external_task_id"]
    task = rh.state.complete_task(fail_task, TaskStatus.FAILED, NUL_REASON)
    answer = post_webhook(failing, fail_task, json.dumps(task.outputs_envelope()))
    assert answer.status_code == 200 and answer.json()["action"] == "finished"
    failed = job(database_url, failing)
    assert failed["status"] == "failed"
    assert failed["error_message"] == "The RunningHub task failed at node 3: badbyte"
    assert kinds(database_url, failing) == ["debit", "refund"]
    event_data = (
        '{"code": 0, "msg": "success\\u0000", "data": ['
        '{"fileUrl": "http://x/a\\u0000.png", "fileType": "png", "taskCostTime": NaN},'
        '{"fileUrl": "http://x/b.png", "taskCostTime": Infinity, "nodeId": 1e400}]}'
    )
    answer = post_webhook(done, done_task, event_data)
    assert answer.status_code == 200 and answer.json()["action"] == "finished"
    completed = job(database_url, done)
    assert completed["status"] == "completed"
    assert completed["outputs"] == [
        {"fileUrl": "http://x/a.png", "fileType": "png"},
        {"fileUrl": "http://x/b.png"},
    ]
    assert kinds(database_url, done) == ["debit"] and balance(database_url, user) == 80


def test_sweep_handles_each_job_alone_and_always_pumps(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    configure_runninghub(configure, rh.url, RUNNINGHUB_CHECK_AFTER_S="0", RUNNINGHUB_MAX_SLOTS="2")
    user = new_user(database_url, balance=100)
    broken, nul, waiting = (new_job(database_url, user, cost=10) for _ in range(3))
    assert [start(user.token, j).json()["status"] for j in (broken, nul, waiting)] == [
        "running", "running", "queued",
    ]  # fmt: skip
    for job_id in (broken, nul):  # both ended with a NUL in the reason; no webhook arrived
        rh.state.complete_task(job(database_url, job_id)["external_task_id"], TaskStatus.FAILED,
                               NUL_REASON)  # fmt: skip
    refuse_updates_of(database_url, broken)  # the oldest row now fails in the database
    report = sweep_runninghub()
    assert (report["checked"], report["errors"], report["settled"]) == (2, 1, 1)
    assert report["started"] == 1
    assert job(database_url, broken)["status"] == "running"  # left for the next pass
    assert kinds(database_url, broken) == ["debit"]
    settled = job(database_url, nul)
    assert settled["status"] == "failed" and settled["error_message"].endswith(": badbyte")
    assert kinds(database_url, nul) == ["debit", "refund"]
    assert job(database_url, waiting)["status"] == "running"  # the freed slot was used
    assert balance(database_url, user) == 80


def refuse_updates_of(database_url: str, job_id: uuid.UUID) -> None:
    """A fault on one row: the database refuses any change to it."""
    body = sql.SQL(
        "CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF OLD.id = {} THEN RAISE EXCEPTION 'injected fault'; END IF;"
        " RETURN NEW; END $$"
    ).format(sql.Literal(str(job_id)))
    owner_sql(database_url, body)
    owner_sql(
        database_url,
        "CREATE TRIGGER refuse_row BEFORE UPDATE ON ai_jobs"
        " FOR EACH ROW EXECUTE FUNCTION refuse_row()",
    )


# --- 3. the time limit applies whatever RunningHub answers --------------------------------


@pytest.mark.parametrize(
    "fault", ["status-error-code", "status-unreachable", "outputs-never-arrive", "no-api-key"]
)
def test_max_runtime_fails_the_job_whatever_runninghub_answers(
    database_url: str, configure: Configure, rh: Emulator, fault: str
) -> None:
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=25)
    task_id = start(user.token, job_id).json()["external_task_id"]
    extra = {"RUNNINGHUB_CHECK_AFTER_S": "0", "RUNNINGHUB_MAX_RUNTIME_S": "0"}
    if fault == "status-error-code":
        rh.state.knobs.update({"forced_codes": {"status": 500}})
    elif fault == "status-unreachable":
        rh.state.knobs.update({"unreachable": True, "unreachable_routes": ["status"]})
    elif fault == "outputs-never-arrive":
        rh.state.complete_task(task_id, TaskStatus.SUCCESS)
        rh.state.knobs.update({"forced_codes": {"outputs": 804}})
    else:
        extra["RUNNINGHUB_API_KEY"] = ""
    configure_runninghub(configure, rh.url, **extra)
    report = sweep_runninghub()
    assert report["settled"] == 1
    failed = job(database_url, job_id)
    assert failed["status"] == "failed" and "too long" in failed["error_message"]
    assert kinds(database_url, job_id) == ["debit", "refund"]
    assert balance(database_url, user) == 100
    if fault in ("status-error-code", "status-unreachable"):
        assert rh.state.tasks[task_id].cancelled  # stopped on RunningHub too


# --- 4. a code that is not an integer is a malformed answer --------------------------------


@pytest.mark.parametrize(
    "event_data",
    ['{"code": Infinity}', '{"code": -Infinity}', '{"code": NaN}', '{"code": 1e400}',
     '{"code": 0.5}', '{"code": true}', '{"code": "x"}', '{"code": null}'],
)  # fmt: skip
def test_webhook_with_a_code_that_is_not_an_integer_asks_runninghub(
    database_url: str, rh: Emulator, event_data: str
) -> None:
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    task_id = start(user.token, job_id).json()["external_task_id"]
    answer = post_webhook(job_id, task_id, event_data)
    assert answer.status_code == 200
    assert answer.json()["action"] == "pending"  # RunningHub says the task still runs
    assert job(database_url, job_id)["status"] == "running"
    assert kinds(database_url, job_id) == ["debit"]


def answering_always(body: str) -> Iterator[str]:
    """A stand-in RunningHub answering every call with `body`; yields its URL."""
    app = Flask("fixed-runninghub")

    @app.post("/<path:_route>")
    def answer(_route: str) -> Response:
        return Response(body, content_type="application/json")

    server = start_in_thread(app)
    yield server.url
    server.stop()


@pytest.fixture
def infinite_runninghub() -> Iterator[str]:
    """Every RunningHub call answered with `{"code": Infinity}`."""
    yield from answering_always('{"code": Infinity, "msg": "x", "data": {"taskId": "1"}}')


def assert_failed_and_refunded(answer: Any, database_url: str, job_id: Any, reason: str) -> None:
    """/start answered the job failed (for `reason`), its debit refunded once."""
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "failed" and body["refunded"]
    assert reason in body["error_message"]
    assert kinds(database_url, job_id) == ["debit", "refund"]


def test_runninghub_answering_a_non_integer_code_fails_the_start_with_its_refund(
    database_url: str, configure: Configure, infinite_runninghub: str
) -> None:
    configure_runninghub(configure, infinite_runninghub)
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    assert_failed_and_refunded(start(user.token, job_id), database_url, job_id, "not its envelope")
    assert balance(database_url, user) == 100


@pytest.fixture
def one_task_id_runninghub() -> Iterator[str]:
    """Every task created with the same id (as an emulator restarted with the same seed did,
    over a database that kept its jobs)."""
    data = {"taskId": "1955519701537392589", "taskStatus": "RUNNING", "clientId": "c",
            "netWssUrl": None, "promptTips": "{}"}  # fmt: skip
    yield from answering_always(json.dumps({"code": 0, "msg": "success", "data": data}))


def test_a_task_id_already_taken_fails_the_start_with_its_refund(
    database_url: str, configure: Configure, one_task_id_runninghub: str
) -> None:
    configure_runninghub(configure, one_task_id_runninghub)
    user = new_user(database_url, balance=100)
    first, second = new_job(database_url, user, cost=10), new_job(database_url, user, cost=10)
    assert start(user.token, first).json()["status"] == "running"
    answer = start(user.token, second)
    assert_failed_and_refunded(answer, database_url, second, "another job already has")
    assert balance(database_url, user) == 90  # only the first job's debit stands


@pytest.fixture(
    params=[
        {"code": 433, "msg": "VALIDATE_PROMPT_FAILED", "data": {"taskId": "1955519701537392589"}},
        {"code": 0, "msg": "success", "data": {"taskId": True}},
    ],
    ids=["refusal-with-a-task-id", "task-id-true"],
)
def create_answer_without_a_task(request: pytest.FixtureRequest) -> Iterator[str]:
    """RunningHub answering a create with no task to record: a refusal that still carries
    a taskId, or a success whose taskId is JSON `true` (not the text "True")."""
    yield from answering_always(json.dumps(request.param))


def test_a_create_answer_without_a_usable_task_fails_the_start_with_its_refund(
    database_url: str, configure: Configure, create_answer_without_a_task: str
) -> None:
    configure_runninghub(configure, create_answer_without_a_task)
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    answer = start(user.token, job_id)
    assert_failed_and_refunded(answer, database_url, job_id, "RunningHub refused the task")
    assert job(database_url, job_id)["external_task_id"] is None
    assert balance(database_url, user) == 100


def test_a_task_id_no_webhook_could_match_fails_the_start_and_stops_the_task(
    database_url: str, rh: Emulator
) -> None:
    """RunningHub created the task but answered an id outside our pattern: the job fails
    (refunded), and the task, which no webhook nor sweep could ever settle, is cancelled
    rather than left rendering (and costing RunningHub coins) for nobody."""
    rh.state.knobs.update({"task_id_prefix": "not an id/"})
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    answer = start(user.token, job_id)
    assert_failed_and_refunded(answer, database_url, job_id, "bad task id")
    [task] = rh.state.tasks.values()
    assert task.task_id.startswith("not an id/") and task.cancelled
    assert balance(database_url, user) == 100


@pytest.fixture
def front_refusing_big_bodies() -> Iterator[str]:
    """RunningHub behind a front whose body limit refuses a create with large inputs (413,
    an HTML page); smaller ones reach the API and start."""
    app = Flask("runninghub-front")
    tasks = iter(range(10**6))

    @app.post("/task/openapi/create")
    def create() -> Response:
        if (flask_request.content_length or 0) > 20_000:
            return Response("<html><body>413 Request Entity Too Large</body></html>", 413)
        data = {"taskId": f"{next(tasks) + 1000}", "taskStatus": "QUEUED"}
        return Response(json.dumps({"code": 0, "msg": "success", "data": data}),
                        content_type="application/json")  # fmt: skip

    server = start_in_thread(app)
    yield server.url
    server.stop()


def test_a_refusal_of_one_jobs_request_fails_that_job_and_the_others_start(
    database_url: str, configure: Configure, front_refusing_big_bodies: str
) -> None:
    """A 413 is about that request: held in the queue, the job came back first in the fair
    order every round and stopped it, so nobody's render started for an hour."""
    configure_runninghub(configure, front_refusing_big_bodies)
    alice, bob = new_user(database_url, balance=100), new_user(database_url, balance=100)
    big = [{"nodeId": "6", "fieldName": "text", "fieldValue": "x" * 30_000}]
    heavy = new_job(database_url, alice, cost=10, inputs=big)
    assert_failed_and_refunded(start(alice.token, heavy), database_url, heavy, "HTTP 413")
    small = new_job(database_url, bob, cost=10)
    assert start(bob.token, small).json()["status"] == "running"
    assert balance(database_url, alice) == 100


@pytest.mark.parametrize("fault", ["status-error-code", "status-unreachable"])
def test_a_job_the_sweep_cannot_check_is_logged_with_its_reason(
    database_url: str, configure: Configure, rh: Emulator, fault: str, logs: Callable[[], str]
) -> None:
    """The sweep leaves such a job for its next pass (a retry): its WARNING says why, as
    every retry's does (issue 14), not only a code ("upstream_unavailable", "500")."""
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    start(user.token, job_id)
    if fault == "status-error-code":
        rh.state.knobs.update({"forced_codes": {"status": 500}})
    else:
        rh.state.knobs.update({"unreachable": True, "unreachable_routes": ["status"]})
    configure_runninghub(configure, rh.url, RUNNINGHUB_CHECK_AFTER_S="0")
    assert sweep_runninghub()["settled"] == 0
    assert job(database_url, job_id)["status"] == "running"
    lines = [json.loads(line) for line in logs().splitlines()]
    said = ("RunningHub status failed", "sweep could not check a job")
    [line] = [x for x in lines if x["message"] in said]
    assert line["logging.googleapis.com/labels"]["job_id"] == str(job_id)
    assert line["code"] and line["reason"], line
    assert RH_KEY not in json.dumps(line)
