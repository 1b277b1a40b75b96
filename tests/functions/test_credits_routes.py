"""runninghub-queue-manager routes against real PostgreSQL and the RunningHub emulator."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from infra.emulators._common import start_in_thread
from infra.emulators.runninghub import RunningHubKnobs
from shared.credits.models import CreditJobTable, JobKey
from shared.credits.runninghub import RunningHub, webhook_url
from shared.credits.slots import Launch, launch, promote
from shared.credits.sweep import sweep_runninghub
from shared.dispatch import RecordingDispatcher
from shared.settings import get_settings
from tests.conftest import Configure
from tests.credits_support import (
    IMAGE,
    VIDEO,
    Emulator,
    balance,
    configure_runninghub,
    function_app,
    job,
    ledger,
    manager,
    new_job,
    new_user,
    post,
    running_emulator,
    service,
)
from tests.support import drain

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def function_server() -> Iterator[str]:
    """The function over real HTTP, so RunningHub's webhooks can reach it."""
    server = start_in_thread(function_app())
    yield f"{server.url}/webhook"
    server.stop()


@pytest.fixture
def rh(configure: Configure, function_server: str) -> Iterator[Emulator]:
    """The emulator (manual clock: tasks run only when the test advances it)."""
    knobs = RunningHubKnobs(run_seconds=10.0, max_concurrent=3, webhook_retry_delay_s=0.02)
    with running_emulator(knobs) as emulator:
        configure_runninghub(configure, emulator.url, function_server)
        yield emulator
        assert emulator.state.webhooks.wait_idle(timeout=20)


def by_hand(configure: Configure, rh: Emulator, **extra: str) -> None:
    """Webhooks are posted by the test itself (RunningHub's own go nowhere)."""
    configure_runninghub(configure, rh.url, **extra)
    rh.state.knobs.update({"webhook_max_attempts": 1})


def start(token: str, job_id: UUID, table: str = IMAGE) -> Any:
    return post("/start", {"table": table, "jobId": str(job_id)}, token)


def finish(token: str, job_id: UUID, status: str, table: str = IMAGE, **more: Any) -> Any:
    return post("/finish", {"table": table, "jobId": str(job_id), "status": status, **more}, token)


def deliver_webhooks(rh: Emulator, seconds: float = 11.0) -> None:
    """Let RunningHub finish its tasks and wait for the webhooks to be answered."""
    rh.state.advance(seconds)
    assert rh.state.webhooks.wait_idle(timeout=20)


# --- start --------------------------------------------------------------------------------


def test_start_debits_once_and_runs_with_a_free_slot(database_url: str, rh: Emulator) -> None:
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=30)
    answer = start(user.token, job_id)
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["status"] == "running" and body["debited"] and not body["refunded"]
    task_id = body["external_task_id"]
    assert rh.state.tasks[task_id].webhook_url is not None
    assert balance(database_url, user) == 70
    again = start(user.token, job_id)  # a second click debits nothing
    assert again.status_code == 200 and again.json()["status"] == "running"
    assert balance(database_url, user) == 70
    assert [r["kind"] for r in ledger(database_url, job_id)] == ["debit"]


def test_start_with_short_balance_is_402_and_changes_nothing(
    database_url: str, rh: Emulator
) -> None:
    user = new_user(database_url, balance=5)
    job_id = new_job(database_url, user, cost=30)
    answer = start(user.token, job_id)
    assert answer.status_code == 402
    error = answer.json()["error"]
    assert error["code"] == "insufficient_credits"
    assert error["details"] == {"required": 30, "balance": 5}
    assert job(database_url, job_id)["status"] == "pending"
    assert balance(database_url, user) == 5 and ledger(database_url) == []
    assert rh.state.tasks == {}
    nobody = new_user(database_url, balance=None)  # no account at all
    other = new_job(database_url, nobody, cost=1)
    assert start(nobody.token, other).status_code == 402


def test_video_jobs_start_like_image_jobs(database_url: str, rh: Emulator) -> None:
    user = new_user(database_url, balance=10)
    job_id = new_job(database_url, user, cost=10, table=VIDEO)
    body = start(user.token, job_id, VIDEO).json()
    assert body["status"] == "running" and body["table"] == VIDEO and body["debited"]
    assert balance(database_url, user) == 0


def test_unreachable_runninghub_fails_the_job_and_refunds(database_url: str, rh: Emulator) -> None:
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=40)
    rh.state.knobs.update({"unreachable": True, "unreachable_routes": ["create"]})
    body = start(user.token, job_id).json()
    assert body["status"] == "failed" and body["refunded"]
    assert "could not start" in body["error_message"]
    assert balance(database_url, user) == 100
    assert [r["kind"] for r in ledger(database_url, job_id)] == ["debit", "refund"]


def test_unreachable_runninghub_fails_one_job_and_the_rest_wait_queued(
    database_url: str, rh: Emulator
) -> None:
    """A create RunningHub never answered fails that job (it may have created the task),
    but every other job would meet the same outage: the pump stops and they stay queued,
    debited, instead of each being sent into it and failed."""
    user = new_user(database_url, balance=100)
    jobs = [new_job(database_url, user, cost=10) for _ in range(3)]
    rh.state.knobs.update({"forced_codes": {"create": 421}})  # RunningHub full: all queue
    assert [start(user.token, j).json()["status"] for j in jobs] == ["queued"] * 3
    rh.state.knobs.update(
        {"forced_codes": {}, "unreachable": True, "unreachable_routes": ["create"]}
    )
    assert sweep_runninghub()["started"] == 0  # three free slots, RunningHub down
    assert [job(database_url, j)["status"] for j in jobs] == ["failed", "queued", "queued"]
    assert [r["kind"] for r in ledger(database_url, jobs[0])] == ["debit", "refund"]
    assert balance(database_url, user) == 100 - 10 * 2


def test_closed_port_fails_the_job_and_refunds(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    configure(RUNNINGHUB_BASE_URL="http://127.0.0.1:9")  # nothing listens there
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=40)
    body = start(user.token, job_id).json()
    assert body["status"] == "failed" and body["refunded"]
    assert balance(database_url, user) == 100


@pytest.mark.parametrize("code", [301, 380, 433])
def test_hard_runninghub_errors_fail_and_refund(database_url: str, rh: Emulator, code: int) -> None:
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=25)
    rh.state.knobs.update({"forced_codes": {"create": code}})
    body = start(user.token, job_id).json()
    assert body["status"] == "failed" and body["refunded"] and str(code) in body["error_message"]
    assert balance(database_url, user) == 100


@pytest.mark.parametrize("fault", ["code-416", "code-500", "code-802", "http-404"])
def test_runninghub_taking_no_task_keeps_the_queue_until_it_does(
    database_url: str, configure: Configure, rh: Emulator, fault: str
) -> None:
    """An empty wallet, a refused key, RunningHub's own error or a page in front of it are
    not the job's fault, and every queued job would meet them: they failed the whole queue
    in one pass. The job goes back to the queue (debited, its place kept), the rest wait."""
    by_hand(configure, rh, RUNNINGHUB_MAX_SLOTS="1")
    user = new_user(database_url, balance=100)
    first = new_job(database_url, user, cost=5)
    assert start(user.token, first).json()["status"] == "running"
    queued = [new_job(database_url, user, cost=5) for _ in range(3)]
    assert [start(user.token, j).json()["status"] for j in queued] == ["queued"] * 3
    if fault.startswith("code-"):
        rh.state.knobs.update({"forced_codes": {"create": int(fault[5:])}})
    else:  # a proxy or maintenance page in front of RunningHub
        by_hand(configure, rh, RUNNINGHUB_MAX_SLOTS="1", RUNNINGHUB_BASE_URL=rh.url + "/down")
    assert post("/cancel", {"table": IMAGE, "jobId": str(first)}, user.token).status_code == 200
    sweep_runninghub()  # the minute sweep tries the freed slot
    assert [job(database_url, j)["status"] for j in queued] == ["queued"] * 3
    assert balance(database_url, user) == 100 - 5 * 3  # the first was refunded
    rh.state.knobs.update({"forced_codes": {}})
    by_hand(configure, rh, RUNNINGHUB_MAX_SLOTS="1")
    assert sweep_runninghub()["started"] == 1  # RunningHub takes tasks again: the oldest
    assert [job(database_url, j)["status"] for j in queued] == ["running", "queued", "queued"]


def test_queue_full_at_runninghub_waits_queued_then_runs(
    database_url: str, rh: Emulator, recorder: RecordingDispatcher
) -> None:
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    rh.state.knobs.update({"forced_codes": {"create": 421}})
    body = start(user.token, job_id).json()
    assert body["status"] == "queued" and body["position"] == 1 and body["debited"]
    assert balance(database_url, user) == 90
    rh.state.knobs.update({"forced_codes": {}})
    report = sweep_runninghub()  # the minute sweep starts it once RunningHub has room
    assert report["started"] == 1
    assert job(database_url, job_id)["status"] == "running"
    deliver_webhooks(rh)
    final = job(database_url, job_id)
    assert final["status"] == "completed" and final["outputs"][0]["fileUrl"].endswith(".png")
    assert balance(database_url, user) == 90


def test_slots_full_queues_in_creation_order_and_promotes_on_finish(
    database_url: str, rh: Emulator, recorder: RecordingDispatcher
) -> None:
    user = new_user(database_url, balance=1000)
    jobs = [new_job(database_url, user, cost=1) for _ in range(5)]
    statuses = [start(user.token, j).json()["status"] for j in jobs]
    assert statuses == ["running"] * 3 + ["queued"] * 2
    check = post("/check", {}, user.token).json()
    assert check["running"] == 3 and check["queued"] == 2 and check["free_slots"] == 0
    assert [q["position"] for q in check["my_queue"]] == [1, 2]
    assert [q["jobId"] for q in check["my_queue"]] == [str(j) for j in jobs[3:]]
    finish(user.token, jobs[0], "failed", errorMessage="changed my mind")  # stops its task
    drain(recorder)  # the freed slot wakes /start for the oldest queued job
    assert [job(database_url, j)["status"] for j in jobs] == [
        "failed", "running", "running", "running", "queued",
    ]  # fmt: skip
    deliver_webhooks(rh)  # RunningHub ends the three running tasks; webhooks finish them
    drain(recorder)
    assert [job(database_url, j)["status"] for j in jobs] == ["failed"] + ["completed"] * 3 + [
        "running"
    ]
    assert balance(database_url, user) == 1000 - 4


def test_a_freed_slot_wakes_one_start_per_free_slot(
    database_url: str, rh: Emulator, recorder: RecordingDispatcher
) -> None:
    """Three running, three queued: one job finishing frees one slot, so exactly one /start
    is woken, for the oldest queued job (not one per queued job, nor one more)."""
    user = new_user(database_url, balance=1000)
    jobs = [new_job(database_url, user, cost=1) for _ in range(6)]
    statuses = [start(user.token, j).json()["status"] for j in jobs]
    assert statuses == ["running"] * 3 + ["queued"] * 3
    assert recorder.take() == []
    assert finish(user.token, jobs[0], "failed").status_code == 200
    woken = recorder.take()
    assert [(t.path, t.body["jobId"]) for t in woken] == [("/start", str(jobs[3]))]


def test_cancelling_a_queued_job_wakes_no_start(
    database_url: str, rh: Emulator, recorder: RecordingDispatcher
) -> None:
    """A queued job held no slot: cancelling it (refunded) frees none, so nothing is woken,
    even with slots free while RunningHub is full."""
    user = new_user(database_url, balance=100)
    first, second = new_job(database_url, user, cost=10), new_job(database_url, user, cost=10)
    rh.state.knobs.update({"forced_codes": {"create": 421}})  # RunningHub full
    assert [start(user.token, j).json()["status"] for j in (first, second)] == ["queued"] * 2
    assert recorder.take() == []
    answer = post("/cancel", {"table": IMAGE, "jobId": str(second)}, user.token)
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert [r["kind"] for r in ledger(database_url, second)] == ["debit", "refund"]
    assert recorder.take() == []
    assert job(database_url, first)["status"] == "queued"


# --- finish -------------------------------------------------------------------------------


def test_owner_marks_failed_through_finish_and_is_refunded_once(
    database_url: str, rh: Emulator, recorder: RecordingDispatcher
) -> None:
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=30)
    start(user.token, job_id)
    task_id = job(database_url, job_id)["external_task_id"]
    with manager(user.token) as jm:
        first = jm.mark_job_failed(IMAGE, job_id, "the browser lost the connection")
        second = jm.mark_job_failed(IMAGE, job_id, "again")
    assert first["status"] == "failed" and first["refunded"]
    assert second == first  # later calls answer the same result
    assert first["error_message"] == "the browser lost the connection"
    assert balance(database_url, user) == 100
    assert rh.state.tasks[task_id].cancelled  # the task was stopped on RunningHub too
    completed = finish(service(), job_id, "completed").json()
    assert completed["status"] == "failed"  # the first final state won


def test_the_service_may_not_complete_a_job_that_never_started(
    database_url: str, rh: Emulator
) -> None:
    user = new_user(database_url, balance=100)
    pending = new_job(database_url, user, cost=30)  # created, never debited
    refused = finish(service(), pending, "completed")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "job_not_started"
    assert job(database_url, pending)["status"] == "pending"
    assert balance(database_url, user) == 100 and ledger(database_url, pending) == []
    start(user.token, pending)  # debited, running now
    assert finish(service(), pending, "completed").json()["status"] == "completed"
    assert balance(database_url, user) == 70


def test_the_service_completing_a_job_leaves_its_task_alone(
    database_url: str, rh: Emulator
) -> None:
    """A completion is not a stop: the task whose outputs the service reports is not
    cancelled on RunningHub (a failure or a cancel through /finish is)."""
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=30)
    task_id = start(user.token, job_id).json()["external_task_id"]
    outputs = [{"fileUrl": "https://files.example/out.png", "fileType": "png"}]
    done = finish(service(), job_id, "completed", outputs=outputs).json()
    assert (done["status"], done["refunded"]) == ("completed", False)
    assert not rh.state.tasks[task_id].cancelled
    assert balance(database_url, user) == 70


def test_owner_may_not_complete_and_anon_may_not_call(database_url: str, rh: Emulator) -> None:
    user = new_user(database_url)
    job_id = new_job(database_url, user)
    assert finish(user.token, job_id, "completed").status_code == 403
    anon = _anon_key()
    for route in ("/finish", "/start", "/cancel", "/check"):
        body = {"table": IMAGE, "jobId": str(job_id), "status": "failed"}
        if route != "/finish":
            body.pop("status")
        response = post(route, body, anon)
        assert response.status_code == 401, route
    assert finish("", job_id, "failed").status_code == 401
    assert job(database_url, job_id)["status"] == "pending"


def _anon_key() -> str:
    """A Supabase-style anon key signed with the project secret (it is public)."""
    import time

    import jwt

    secret = get_settings().auth.jwt_secret
    assert secret is not None
    claims = {"iss": "supabase", "role": "anon", "iat": int(time.time()), "exp": 2**31}
    return jwt.encode(claims, secret.get_secret_value(), algorithm="HS256")


def test_other_users_job_is_not_found_on_every_route(database_url: str, rh: Emulator) -> None:
    owner, stranger = new_user(database_url), new_user(database_url)
    job_id = new_job(database_url, owner)
    ref = {"table": IMAGE, "jobId": str(job_id)}
    assert post("/start", ref, stranger.token).status_code == 404
    assert post("/cancel", ref, stranger.token).status_code == 404
    assert post("/check", ref, stranger.token).status_code == 404
    assert finish(stranger.token, job_id, "failed").status_code == 404
    assert job(database_url, job_id)["status"] == "pending" and ledger(database_url) == []
    assert balance(database_url, owner) == balance(database_url, stranger) == 100


def test_unknown_table_is_400_without_touching_the_database(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    user = new_user(database_url)
    configure(DATABASE_URL="postgresql://nobody@127.0.0.1:9/none", DB_CONNECT_TIMEOUT_S="1")
    for route in ("/start", "/cancel", "/finish", "/check"):
        body: dict[str, Any] = {"table": "users; DROP TABLE x", "jobId": str(UUID(int=1))}
        if route == "/finish":
            body["status"] = "failed"
        response = post(route, body, user.token)
        assert response.status_code == 400, (route, response.json())
        assert response.json()["error"]["code"] == "unknown_table"
        assert response.json()["error"]["details"]["allowed"] == [IMAGE, VIDEO]


# --- cancel -------------------------------------------------------------------------------


def test_cancel_queued_and_running_refunds_and_frees_the_slot(
    database_url: str, rh: Emulator, recorder: RecordingDispatcher
) -> None:
    user = new_user(database_url, balance=100)
    jobs = [new_job(database_url, user, cost=10) for _ in range(4)]
    for j in jobs:
        start(user.token, j)
    assert job(database_url, jobs[3])["status"] == "queued"
    with manager(user.token) as jm:
        queued = jm.cancel_job(IMAGE, jobs[3])
        running = jm.cancel_job(IMAGE, jobs[0])
    assert queued["status"] == running["status"] == "cancelled"
    assert queued["refunded"] and running["refunded"]
    task_id = running["external_task_id"]
    assert rh.state.tasks[task_id].cancelled
    assert balance(database_url, user) == 100 - 20
    again = post("/cancel", {"table": IMAGE, "jobId": str(jobs[0])}, user.token)
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"
    pending = new_job(database_url, user)
    assert (
        post("/cancel", {"table": IMAGE, "jobId": str(pending)}, user.token).json()["refunded"]
        is False
    )


def test_a_job_cancelled_while_its_task_is_created_stops_that_task(
    database_url: str, rh: Emulator
) -> None:
    """The owner cancels a job a pump has promoted and is launching: the cancel finds no
    task yet to stop, so the launch must stop the one RunningHub then creates (left, it
    rendered for nobody, holding one of RunningHub's slots until it ended)."""
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    rh.state.knobs.update({"forced_codes": {"create": 421}})
    assert start(user.token, job_id).json()["status"] == "queued"
    rh.state.knobs.update({"forced_codes": {}})
    [row] = promote()  # a pump's round took it; its create is under way
    with manager(user.token) as jm:
        assert jm.cancel_job(IMAGE, job_id)["refunded"]
    assert launch(row, RunningHub(get_settings())) is Launch.GONE
    [task] = rh.state.tasks.values()
    assert task.cancelled
    final = job(database_url, job_id)
    assert (final["status"], final["external_task_id"]) == ("cancelled", None)
    assert balance(database_url, user) == 100


# --- webhook ------------------------------------------------------------------------------


def test_webhook_completes_the_job_with_outputs(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    by_hand(configure, rh)
    user = new_user(database_url, balance=50)
    job_id = new_job(database_url, user, cost=20)
    start(user.token, job_id)
    task_id = job(database_url, job_id)["external_task_id"]
    body = rh.state.tasks[task_id]
    event = webhook_event(rh, task_id)
    response = post_webhook(rh, job_id, event)
    assert response.status_code == 200 and response.json()["action"] == "finished"
    done = job(database_url, job_id)
    assert done["status"] == "completed" and done["completed_at"] is not None
    assert done["outputs"] == [
        {k: v for k, v in o.items() if k in ("fileUrl", "fileType", "nodeId", "taskCostTime")}
        for o in body.outputs
    ]
    replay = post_webhook(rh, job_id, event)
    assert replay.status_code == 200 and replay.json()["action"] == "duplicate"
    assert balance(database_url, user) == 30


def test_webhook_with_a_numeric_task_id_completes_the_job(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    """RunningHub's ids are numbers written as text; one sent as a JSON number is the same
    task (the create answer's taskId is read either way), not a 422 left to the sweep."""
    by_hand(configure, rh)
    user = new_user(database_url, balance=50)
    job_id = new_job(database_url, user, cost=20)
    start(user.token, job_id)
    task_id = job(database_url, job_id)["external_task_id"]
    event = {**webhook_event(rh, task_id), "taskId": int(task_id)}
    response = post_webhook(rh, job_id, event)
    assert response.status_code == 200 and response.json()["action"] == "finished"
    assert job(database_url, job_id)["status"] == "completed"
    assert balance(database_url, user) == 30


def test_webhook_failure_refunds_with_the_failed_reason(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    by_hand(configure, rh)
    user = new_user(database_url, balance=50)
    job_id = new_job(
        database_url,
        user,
        cost=20,
        inputs=[{"nodeId": "3", "fieldName": "seed", "fieldValue": "__emulator_fail__"}],
    )
    start(user.token, job_id)
    task_id = job(database_url, job_id)["external_task_id"]
    rh.state.advance(11.0)
    response = post_webhook(rh, job_id, webhook_event(rh, task_id))
    assert response.json()["action"] == "finished"
    done = job(database_url, job_id)
    assert done["status"] == "failed" and "node 3" in done["error_message"]
    assert balance(database_url, user) == 50


def test_webhook_without_event_data_asks_runninghub(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    by_hand(configure, rh)
    user = new_user(database_url)
    job_id = new_job(database_url, user)
    start(user.token, job_id)
    task_id = job(database_url, job_id)["external_task_id"]
    event = {"event": "TASK_END", "taskId": task_id, "eventData": "not json"}
    assert post_webhook(rh, job_id, event).json()["action"] == "pending"  # still running
    rh.state.advance(11.0)
    assert post_webhook(rh, job_id, event).json()["action"] == "finished"
    assert job(database_url, job_id)["status"] == "completed"


@pytest.mark.parametrize(
    "tamper", ["no-sig", "bad-sig", "other-job", "other-table", "bad-table", "bad-uuid"]
)
def test_webhook_signature_is_required(
    database_url: str, configure: Configure, rh: Emulator, tamper: str
) -> None:
    by_hand(configure, rh)
    user = new_user(database_url)
    job_id, other = new_job(database_url, user), new_job(database_url, user)
    start(user.token, job_id)
    url = webhook_url(get_settings(), JobKey(CreditJobTable.IMAGE, job_id))
    assert url is not None
    query = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
    if tamper == "no-sig":
        query.pop("sig")
    elif tamper == "bad-sig":
        query["sig"] = "0" * 64
    elif tamper == "other-job":
        query["job"] = str(other)
    elif tamper == "other-table":
        query["table"] = VIDEO
    elif tamper == "bad-table":
        query["table"] = "pg_user"
    else:
        query["job"] = "nope"
    path = "/webhook?" + "&".join(f"{k}={v}" for k, v in query.items())
    task_id = job(database_url, job_id)["external_task_id"]
    event = {"event": "TASK_END", "taskId": task_id, "eventData": "{}"}
    response = post(path, event)
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert job(database_url, job_id)["status"] == "running"


def webhook_event(rh: Emulator, task_id: str) -> dict[str, Any]:
    """The TASK_END body RunningHub sends for a finished task."""
    rh.state.advance(11.0)
    task = rh.state.tasks[task_id]
    return {
        "event": "TASK_END",
        "taskId": task_id,
        "eventData": json.dumps(task.outputs_envelope()),
    }


def post_webhook(rh: Emulator, job_id: UUID, event: dict[str, Any], table: str = IMAGE) -> Any:
    url = webhook_url(get_settings(), JobKey(CreditJobTable(table), job_id))
    assert url is not None
    return post("/webhook?" + url.split("?", 1)[1], event)


def test_webhooks_replayed_five_times_and_racing_the_sweep_finish_once(
    database_url: str,
    configure: Configure,
    rh: Emulator,
    function_server: str,
    recorder: RecordingDispatcher,
) -> None:
    configure_runninghub(configure, rh.url, function_server, RUNNINGHUB_CHECK_AFTER_S="0")
    rh.state.knobs.update({"webhook_replays": 5})
    user = new_user(database_url, balance=100)
    ok, bad = new_job(database_url, user, cost=10), new_job(database_url, user, cost=15)
    start(user.token, ok)
    rh.state.knobs.update({"failure_rate": 1.0})
    start(user.token, bad)
    rh.state.advance(11.0)  # both end now; 10 webhooks fly while sweeps run
    sweeps = [threading.Thread(target=sweep_runninghub) for _ in range(3)]
    for thread in sweeps:
        thread.start()
    for thread in sweeps:
        thread.join()
    assert rh.state.webhooks.wait_idle(timeout=30)
    deliveries = rh.state.webhooks.deliveries()
    assert len(deliveries) == 10 and all(d.state == "delivered" for d in deliveries)
    assert job(database_url, ok)["status"] == "completed"
    assert job(database_url, bad)["status"] == "failed"
    assert [r["kind"] for r in ledger(database_url, ok)] == ["debit"]
    assert [r["kind"] for r in ledger(database_url, bad)] == ["debit", "refund"]
    assert balance(database_url, user) == 90


# --- sweep --------------------------------------------------------------------------------


def test_sweep_settles_jobs_runninghub_finished_or_forgot(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    by_hand(configure, rh, RUNNINGHUB_CHECK_AFTER_S="0")
    user = new_user(database_url, balance=100)
    done, lost, busy = (new_job(database_url, user, cost=10) for _ in range(3))
    for j in (done, lost, busy):
        start(user.token, j)
    rh.state.complete_task(job(database_url, done)["external_task_id"], _success())
    rh.state.tasks.pop(job(database_url, lost)["external_task_id"])  # RunningHub forgot it
    report = sweep_runninghub()
    assert report["checked"] == 3 and report["settled"] == 2
    assert job(database_url, done)["status"] == "completed"
    assert job(database_url, lost)["status"] == "failed"
    assert job(database_url, busy)["status"] == "running"
    assert balance(database_url, user) == 100 - 20
    configure(RUNNINGHUB_MAX_RUNTIME_S="0")
    sweep_runninghub()
    timed_out = job(database_url, busy)
    assert timed_out["status"] == "failed" and "too long" in timed_out["error_message"]
    assert balance(database_url, user) == 100 - 10


@pytest.mark.parametrize("code", [423, 807])
def test_sweep_fails_a_job_whose_task_runninghub_says_it_does_not_know(
    database_url: str, configure: Configure, rh: Emulator, code: int
) -> None:
    """Either task-not-found code fails the job with its refund (left running, it held its
    slot until the runtime limit)."""
    by_hand(configure, rh, RUNNINGHUB_CHECK_AFTER_S="0")
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    start(user.token, job_id)
    rh.state.knobs.update({"forced_codes": {"status": code}})
    assert sweep_runninghub()["settled"] == 1
    row = job(database_url, job_id)
    assert (row["status"], row["error_message"]) == (
        "failed", "RunningHub does not know the task.",
    )  # fmt: skip
    assert balance(database_url, user) == 100


def _success() -> Any:
    from infra.emulators.runninghub import TaskStatus

    return TaskStatus.SUCCESS


def test_sweep_is_wired_into_the_minute_sweep(database_url: str, rh: Emulator) -> None:
    response = post("/__nothing__", {}, service())
    assert response.status_code == 404
    from tests.support import call

    answer = call("process-integration-job", {}, token=service())
    assert answer.status_code == 200
    assert answer.get_json()["hooks"]["runninghub"] == {
        "checked": 0, "settled": 0, "unreachable": 0, "errors": 0, "expired": 0, "started": 0,
    }  # fmt: skip


def test_sweep_fails_a_job_stuck_starting_and_refunds(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    by_hand(configure, rh, RUNNINGHUB_CHECK_AFTER_S="0")
    user = new_user(database_url, balance=100)
    stuck, fresh = new_job(database_url, user, cost=30), new_job(database_url, user, cost=30)
    rh.state.knobs.update({"forced_codes": {"create": 421}})
    start(user.token, stuck)
    start(user.token, fresh)  # both debited and queued
    import psycopg  # a worker died right after promoting them

    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE ai_jobs SET status = 'starting', started_at = now() - %s::interval"
            " WHERE id = %s",
            ["1 hour", stuck],
        )
        conn.execute(
            "UPDATE ai_jobs SET status = 'starting', started_at = now() WHERE id = %s", [fresh]
        )
    report = sweep_runninghub()
    assert report["settled"] == 1
    failed = job(database_url, stuck)
    assert failed["status"] == "failed" and "could not be started" in failed["error_message"]
    assert job(database_url, fresh)["status"] == "starting"  # its launch may still be running
    assert balance(database_url, user) == 100 - 30


def test_webhook_for_a_job_never_launched_is_ignored(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    by_hand(configure, rh)
    user = new_user(database_url)
    pending = new_job(database_url, user)
    event = {"event": "TASK_END", "taskId": "1", "eventData": '{"code": 0, "data": []}'}
    assert post_webhook(rh, pending, event).json()["action"] == "ignored"
    assert job(database_url, pending)["status"] == "pending"


def test_a_webhook_of_another_event_than_task_end_is_ignored(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    """Only TASK_END settles a job: another event, even carrying an outputs envelope, leaves
    the running job (and its debit) as it was."""
    by_hand(configure, rh)
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    task_id = start(user.token, job_id).json()["external_task_id"]
    event = {**webhook_event(rh, task_id), "event": "TASK_START"}
    assert post_webhook(rh, job_id, event).json() == {"received": True, "action": "ignored"}
    assert job(database_url, job_id)["status"] == "running"
    assert balance(database_url, user) == 90


def test_webhook_with_another_jobs_task_id_is_ignored(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    """A job still starting (no task recorded yet) whose webhook names a task another job
    runs: not this job's task, so it is left alone (was a 500 on the unique task id)."""
    by_hand(configure, rh)
    user = new_user(database_url, balance=100)
    running, starting = new_job(database_url, user, cost=20), new_job(database_url, user, cost=20)
    start(user.token, running)
    task_id = job(database_url, running)["external_task_id"]
    import psycopg  # a launch that has not recorded its task yet

    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE ai_jobs SET status = 'starting', started_at = now() WHERE id = %s",
            [starting],
        )
    response = post_webhook(rh, starting, webhook_event(rh, task_id))
    assert response.status_code == 200 and response.json()["action"] == "ignored"
    left = job(database_url, starting)
    assert left["status"] == "starting" and left["external_task_id"] is None
    assert job(database_url, running)["status"] == "running"


@pytest.mark.parametrize("tamper", ["last-char", "appended", "cut-short"])
def test_a_webhook_signature_must_match_exactly(
    database_url: str, configure: Configure, rh: Emulator, tamper: str
) -> None:
    """The signature is compared whole: one character changed, added or left off is a
    forged TASK_END (it would finish, and refund or complete, another's running job)."""
    by_hand(configure, rh)
    user = new_user(database_url)
    job_id = new_job(database_url, user)
    start(user.token, job_id)
    url = webhook_url(get_settings(), JobKey(CreditJobTable.IMAGE, job_id))
    assert url is not None
    query = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
    sig = query["sig"]
    query["sig"] = {
        "last-char": sig[:-1] + ("1" if sig[-1] == "0" else "0"),
        "appended": sig + "0",
        "cut-short": sig[:-1],
    }[tamper]
    path = "/webhook?" + "&".join(f"{k}={v}" for k, v in query.items())
    task_id = job(database_url, job_id)["external_task_id"]
    response = post(path, {"event": "TASK_END", "taskId": task_id, "eventData": "{}"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert job(database_url, job_id)["status"] == "running"
    query["sig"] = sig  # the same call, signed right, is taken
    path = "/webhook?" + "&".join(f"{k}={v}" for k, v in query.items())
    assert (
        post(path, {"event": "TASK_END", "taskId": task_id, "eventData": "{}"}).status_code == 200
    )


def test_cancel_of_a_running_job_while_runninghub_is_unreachable_still_cancels(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    """Stopping the task is best effort: RunningHub being down must not turn the user's
    cancel into an error (the job is cancelled and refunded; a late TASK_END finds it
    final)."""
    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=40)
    assert start(user.token, job_id).json()["status"] == "running"
    configure_runninghub(configure, "http://127.0.0.1:9", RUNNINGHUB_TIMEOUT_S="1")  # down
    answer = post("/cancel", {"table": IMAGE, "jobId": str(job_id)}, user.token)
    assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == "cancelled" and answer.json()["refunded"]
    assert balance(database_url, user) == 100


def test_check_never_shows_fewer_than_zero_free_slots(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    """The slot limit lowered while more jobs run than it now allows: none is free (not
    a negative count), and a new job waits in the queue."""
    user = new_user(database_url, balance=100)
    for _ in range(2):
        assert start(user.token, new_job(database_url, user)).json()["status"] == "running"
    by_hand(configure, rh, RUNNINGHUB_MAX_SLOTS="1")
    answer = post("/check", {}, service()).json()
    assert (answer["limit"], answer["running"], answer["free_slots"]) == (1, 2, 0)
    assert start(user.token, new_job(database_url, user)).json()["status"] == "queued"
