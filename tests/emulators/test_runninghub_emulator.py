"""RunningHub emulator over real HTTP: every code path, slots, task life and webhooks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, Response, request

from infra.emulators._common import ServerHandle, start_in_thread
from infra.emulators.runninghub import (
    API_ROUTES,
    ManualClock,
    RhCode,
    RunningHubKnobs,
    RunningHubState,
    TaskStatus,
    create_app,
)
from infra.local.supervise import free_port

KEY = "rh-test-key"
OTHER_KEY = "rh-other-key"
ROOT = Path(__file__).resolve().parents[2]


class Receiver:
    """A tiny webhook receiver: records every POST, answers from a scripted plan."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.plan: list[tuple[int, float]] = []  # (status, delay seconds) per call
        self._lock = threading.Lock()
        self.app = Flask("webhook-receiver")
        self.app.add_url_rule("/<path:path>", view_func=self._receive, methods=["POST"])

    def _receive(self, path: str) -> Response:
        with self._lock:
            self.calls.append(json.loads(request.get_data()))
            status, delay = self.plan.pop(0) if self.plan else (200, 0.0)
        time.sleep(delay)
        return Response("ok", status=status)

    def reset(self) -> None:
        """Forget calls and the plan."""
        with self._lock:
            self.calls.clear()
            self.plan.clear()


class Emulator:
    """State + server + client for one test."""

    def __init__(self, state: RunningHubState, handle: ServerHandle) -> None:
        self.state = state
        self.handle = handle
        self.http = httpx.Client(base_url=handle.url, timeout=5.0)

    def call(self, route: str, **body: Any) -> dict[str, Any]:
        """POST an OpenAPI route with our apiKey (unless given) and return the envelope."""
        body.setdefault("apiKey", KEY)
        response = self.http.post(route, json=body)
        assert response.status_code == 200
        answer: dict[str, Any] = response.json()
        assert set(answer) == {"code", "msg", "data"}
        return answer

    def create(self, **body: Any) -> str:
        """Create a task and return its id (asserts success)."""
        body.setdefault("workflowId", "1904136902449209346")
        answer = self.call("/task/openapi/create", **body)
        assert answer["code"] == 0, answer
        task_id: str = answer["data"]["taskId"]
        return task_id

    def status(self, task_id: str) -> str:
        """The task status string."""
        answer = self.call("/task/openapi/status", taskId=task_id)
        assert answer["code"] == 0
        status: str = answer["data"]
        return status


@pytest.fixture(scope="module")
def _served() -> Iterator[Emulator]:
    knobs = RunningHubKnobs(
        run_seconds=10.0,
        queue_seconds=1.0,
        webhook_retry_delay_s=0.02,
        webhook_timeout_s=2.0,
    )
    state = RunningHubState(knobs=knobs, api_keys=[KEY, OTHER_KEY], clock=ManualClock())
    handle = start_in_thread(create_app(state))
    emu = Emulator(state, handle)
    yield emu
    emu.http.close()
    handle.stop()


@pytest.fixture
def emulator(_served: Emulator) -> Iterator[Emulator]:
    yield _served
    assert _served.state.webhooks.wait_idle(timeout=15)
    _served.state.reset()


@pytest.fixture(scope="module")
def _receiver_server() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    handle = start_in_thread(rec.app)
    yield rec, f"{handle.url}/functions/v1/runninghub-queue-manager/webhook?secret=s3cret"
    handle.stop()


@pytest.fixture
def receiver(_receiver_server: tuple[Receiver, str]) -> tuple[Receiver, str]:
    _receiver_server[0].reset()
    return _receiver_server


def _settle(emu: Emulator) -> None:
    assert emu.state.webhooks.wait_idle(timeout=15), "webhook deliveries did not settle"


# --- task life ------------------------------------------------------------------------


def test_task_goes_queued_running_success_with_outputs(emulator: Emulator) -> None:
    nodes = [{"nodeId": "6", "fieldName": "text", "fieldValue": "a cat"}]
    answer = emulator.call(
        "/task/openapi/create", workflowId="1904136902449209346", nodeInfoList=nodes
    )
    assert answer["code"] == 0 and answer["msg"] == "success"
    task_id = answer["data"]["taskId"]
    assert answer["data"]["taskStatus"] == "QUEUED" and task_id.isdigit()
    assert emulator.status(task_id) == "QUEUED"
    emulator.state.advance(1.0)
    assert emulator.status(task_id) == "RUNNING"
    emulator.state.advance(10.0)
    assert emulator.status(task_id) == "SUCCESS"
    outputs = emulator.call("/task/openapi/outputs", taskId=task_id)
    assert outputs["code"] == 0
    [item] = outputs["data"]
    assert item["fileType"] == "png" and item["nodeId"] == "6" and item["taskCostTime"] == "10"
    assert item["fileUrl"].endswith(".png") and task_id in item["fileUrl"]


def test_outputs_of_unfinished_tasks_answer_813_then_804(emulator: Emulator) -> None:
    task_id = emulator.create()
    assert emulator.call("/task/openapi/outputs", taskId=task_id)["code"] == 813
    emulator.state.advance(1.0)
    answer = emulator.call("/task/openapi/outputs", taskId=task_id)
    assert (
        answer["code"] == RhCode.APIKEY_TASK_IS_RUNNING
        and answer["msg"] == "APIKEY_TASK_IS_RUNNING"
    )
    emulator.state.knobs.outputs_pending_as_codes = False
    assert emulator.call("/task/openapi/outputs", taskId=task_id)["code"] == 0
    assert emulator.call("/task/openapi/outputs", taskId=task_id)["data"] is None


@pytest.mark.parametrize(
    ("knobs", "extra"),
    [
        ({"fail_workflows": ["666"]}, {"workflowId": "666"}),
        (
            {},
            {
                "nodeInfoList": [
                    {"nodeId": "3", "fieldName": "seed", "fieldValue": "__emulator_fail__"}
                ]
            },
        ),
        ({"failure_rate": 1.0}, {}),
    ],
    ids=["fail-workflow", "fail-marker", "failure-rate"],
)
def test_failing_task_reports_805_with_failed_reason(
    emulator: Emulator, knobs: dict[str, Any], extra: dict[str, Any]
) -> None:
    emulator.state.knobs.update(knobs)
    task_id = emulator.create(**extra)
    emulator.state.advance(11.0)
    assert emulator.status(task_id) == "FAILED"
    answer = emulator.call("/task/openapi/outputs", taskId=task_id)
    assert answer["code"] == 805 and answer["msg"] == "APIKEY_TASK_STATUS_ERROR"
    reason = answer["data"]["failedReason"]
    assert reason["exception_message"] and reason["node_id"]


def test_run_seconds_none_never_finishes_until_completed_by_admin(emulator: Emulator) -> None:
    emulator.state.knobs.run_seconds = None
    task_id = emulator.create()
    emulator.state.advance(10_000.0)
    assert emulator.status(task_id) == "RUNNING"
    response = emulator.http.post(
        f"/__admin/tasks/{task_id}/complete",
        json={"status": "FAILED", "failedReason": {"node_id": "9", "exception_message": "OOM"}},
    )
    assert response.status_code == 200 and response.json()["status"] == "FAILED"
    answer = emulator.call("/task/openapi/outputs", taskId=task_id)
    assert answer["data"]["failedReason"]["exception_message"] == "OOM"


def test_cancel_ends_task_frees_slot_and_is_harmless_when_repeated(emulator: Emulator) -> None:
    task_id = emulator.create()
    emulator.state.advance(1.0)
    assert emulator.call("/task/openapi/cancel", taskId=task_id) == {
        "code": 0,
        "msg": "success",
        "data": None,
    }
    assert emulator.status(task_id) == "FAILED"
    assert emulator.state.tasks[task_id].cancelled
    assert emulator.call("/task/openapi/cancel", taskId=task_id)["code"] == 0
    account = emulator.call("/uc/openapi/accountStatus")
    assert account["data"]["currentTaskCounts"] == "0"


# --- error codes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "route",
    [
        "/task/openapi/create",
        "/task/openapi/status",
        "/task/openapi/outputs",
        "/task/openapi/cancel",
        "/uc/openapi/accountStatus",
    ],
)
@pytest.mark.parametrize("key", ["wrong-key", None, 12345])
def test_bad_api_key_answers_802_with_http_200(emulator: Emulator, route: str, key: Any) -> None:
    body: dict[str, Any] = {"workflowId": "1", "taskId": "1"}
    if key is not None:
        body["apiKey"] = key
    answer = emulator.call(route, **body) if key is not None else _raw(emulator, route, body)
    assert answer["code"] == 802 and answer["msg"] == "APIKEY_UNAUTHORIZED"


def _raw(emulator: Emulator, route: str, body: Any) -> dict[str, Any]:
    response = emulator.http.post(route, json=body)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def test_account_status_accepts_lowercase_apikey(emulator: Emulator) -> None:
    answer = _raw(emulator, "/uc/openapi/accountStatus", {"apikey": KEY})
    assert answer["code"] == 0
    assert answer["data"]["remainCoins"] == "1000000"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"workflowId": ""},
        {"workflowId": None},
        {"workflowId": ["1"]},
        {"workflowId": "1", "nodeInfoList": "nope"},
        {"workflowId": "1", "nodeInfoList": [{"nodeId": "1", "fieldName": "text"}]},
        {"workflowId": "1", "nodeInfoList": [{"nodeId": "1", "fieldName": "", "fieldValue": 1}]},
        {"workflowId": "1", "webhookUrl": "not a url"},
        {"workflowId": "1", "webhookUrl": "ftp://127.0.0.1/x"},
    ],
)
def test_invalid_create_params_answer_301_and_create_nothing(
    emulator: Emulator, body: dict[str, Any]
) -> None:
    answer = emulator.call("/task/openapi/create", **body)
    assert answer["code"] == 301 and answer["msg"] == "PARAMS_INVALID"
    assert emulator.state.tasks == {}


@pytest.mark.parametrize(
    "route", ["/task/openapi/status", "/task/openapi/outputs", "/task/openapi/cancel"]
)
@pytest.mark.parametrize("task_id", [None, "", True, {"x": 1}])
def test_missing_or_bad_task_id_answers_301(emulator: Emulator, route: str, task_id: Any) -> None:
    body: dict[str, Any] = {"apiKey": KEY}
    if task_id is not None:
        body["taskId"] = task_id
    assert _raw(emulator, route, body)["code"] == 301


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b""])
def test_non_object_body_answers_301(emulator: Emulator, payload: bytes) -> None:
    response = emulator.http.post(
        "/task/openapi/create", content=payload, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200 and response.json()["code"] == 301


@pytest.mark.parametrize(
    "route", ["/task/openapi/status", "/task/openapi/outputs", "/task/openapi/cancel"]
)
def test_unknown_or_foreign_task_answers_807(emulator: Emulator, route: str) -> None:
    assert emulator.call(route, taskId="1234567890")["code"] == 807
    foreign = emulator.create(apiKey=OTHER_KEY)
    answer = emulator.call(route, taskId=foreign)
    assert answer["code"] == 807 and answer["msg"] == "APIKEY_TASK_NOT_FOUND"
    assert emulator.state.tasks[foreign].status is TaskStatus.QUEUED


def test_unknown_workflow_answers_380_when_workflows_are_listed(emulator: Emulator) -> None:
    emulator.state.knobs.workflows = ["111", "222"]
    answer = emulator.call("/task/openapi/create", workflowId="333")
    assert answer["code"] == 380 and answer["msg"] == "WORKFLOW_NOT_EXISTS"
    emulator.create(workflowId="222")
    emulator.create(workflowId=111)  # numeric ids are accepted as their string


def test_empty_wallet_answers_416(emulator: Emulator) -> None:
    emulator.state.seed_token("poor-key", 0)
    answer = emulator.call("/task/openapi/create", apiKey="poor-key", workflowId="1")
    assert answer["code"] == 416
    assert answer["msg"] == "TASK_CREATE_FAILED_BY_NOT_ENOUGH_WALLET"
    assert emulator.state.tasks == {}


def test_coins_are_spent_per_task(emulator: Emulator) -> None:
    emulator.state.seed_token("two-coins", 2)
    emulator.create(apiKey="two-coins")
    emulator.create(apiKey="two-coins")
    answer = emulator.call("/task/openapi/create", apiKey="two-coins", workflowId="1")
    assert answer["code"] == 416
    account = emulator.call("/uc/openapi/accountStatus", apiKey="two-coins")
    assert account["data"]["remainCoins"] == "0"


# --- slots ----------------------------------------------------------------------------


def test_slot_limit_answers_421_until_a_task_ends(emulator: Emulator) -> None:
    first = [emulator.create() for _ in range(3)]
    answer = emulator.call("/task/openapi/create", workflowId="1")
    assert answer["code"] == 421 and answer["msg"] == "TASK_QUEUE_MAXED"
    assert emulator.call("/uc/openapi/accountStatus")["data"]["currentTaskCounts"] == "3"
    emulator.create(apiKey=OTHER_KEY)  # slots are per account
    emulator.state.advance(11.0)
    assert [emulator.status(t) for t in first] == ["SUCCESS"] * 3
    assert emulator.call("/uc/openapi/accountStatus")["data"]["currentTaskCounts"] == "0"
    emulator.create()


def test_slot_limit_holds_under_concurrent_creates(emulator: Emulator) -> None:
    emulator.state.knobs.max_concurrent = 2
    codes: list[int] = []
    lock = threading.Lock()

    def create() -> None:
        with httpx.Client(base_url=emulator.handle.url, timeout=5.0) as http:
            code = http.post("/task/openapi/create", json={"apiKey": KEY, "workflowId": "1"})
        with lock:
            codes.append(code.json()["code"])

    threads = [threading.Thread(target=create) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [0, 0] + [421] * 10
    assert len(emulator.state.tasks) == 2


# --- webhooks -------------------------------------------------------------------------


def test_webhook_on_success_carries_outputs_as_json_string(
    emulator: Emulator, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    task_id = emulator.create(webhookUrl=url)
    emulator.state.advance(11.0)
    _settle(emulator)
    [call] = rec.calls
    assert call["event"] == "TASK_END" and call["taskId"] == task_id
    assert isinstance(call["eventData"], str)
    assert json.loads(call["eventData"]) == emulator.call("/task/openapi/outputs", taskId=task_id)
    [delivery] = emulator.state.webhooks.deliveries(task_id)
    assert delivery.state == "delivered" and [a.outcome for a in delivery.attempts] == ["ok"]


def test_webhook_on_failure_carries_failed_reason(
    emulator: Emulator, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    emulator.state.knobs.failure_rate = 1.0
    emulator.create(webhookUrl=url)
    emulator.state.advance(11.0)
    _settle(emulator)
    event = json.loads(rec.calls[0]["eventData"])
    assert event["code"] == 805 and event["data"]["failedReason"]["exception_message"]


def test_webhook_is_retried_after_non_2xx_and_slow_answers(
    emulator: Emulator, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    emulator.state.knobs.update({"webhook_timeout_s": 1.0, "webhook_max_attempts": 4})
    rec.plan = [(500, 0.0), (503, 0.0), (200, 2.5), (200, 0.0)]
    task_id = emulator.create(webhookUrl=url)
    emulator.state.advance(11.0)
    _settle(emulator)
    assert len(rec.calls) == 4
    assert all(call == rec.calls[0] for call in rec.calls)
    [delivery] = emulator.state.webhooks.deliveries(task_id)
    outcomes = [a.outcome for a in delivery.attempts]
    assert outcomes == ["http_500", "http_503", "timeout", "ok"]
    assert delivery.state == "delivered"


def test_webhook_gives_up_after_max_attempts(
    emulator: Emulator, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    emulator.state.knobs.webhook_max_attempts = 3
    rec.plan = [(500, 0.0)] * 10
    task_id = emulator.create(webhookUrl=url)
    emulator.state.advance(11.0)
    _settle(emulator)
    assert len(rec.calls) == 3
    [delivery] = emulator.state.webhooks.deliveries(task_id)
    assert delivery.state == "failed"


def test_webhook_to_a_closed_port_records_connect_errors(emulator: Emulator) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    emulator.state.knobs.webhook_max_attempts = 2
    task_id = emulator.create(webhookUrl=url)
    emulator.state.advance(11.0)
    _settle(emulator)
    [delivery] = emulator.state.webhooks.deliveries(task_id)
    assert [a.outcome for a in delivery.attempts] == ["connect_error"] * 2


def test_webhook_replays_deliver_the_same_event_n_times(
    emulator: Emulator, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    emulator.state.knobs.webhook_replays = 5
    rec.plan = [(500, 0.0)]  # one replay needs a retry; all five still arrive
    task_id = emulator.create(webhookUrl=url)
    emulator.state.advance(11.0)
    _settle(emulator)
    assert len(rec.calls) == 6
    assert {json.dumps(c, sort_keys=True) for c in rec.calls} == {
        json.dumps(rec.calls[0], sort_keys=True)
    }
    deliveries = emulator.state.webhooks.deliveries(task_id)
    assert sorted(d.replay for d in deliveries) == [0, 1, 2, 3, 4]
    assert all(d.state == "delivered" for d in deliveries)


def test_cancel_sends_a_webhook_unless_disabled(
    emulator: Emulator, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    sent = emulator.create(webhookUrl=url)
    emulator.call("/task/openapi/cancel", taskId=sent)
    emulator.state.knobs.webhook_on_cancel = False
    silent = emulator.create(webhookUrl=url)
    emulator.call("/task/openapi/cancel", taskId=silent)
    _settle(emulator)
    assert [c["taskId"] for c in rec.calls] == [sent]
    event = json.loads(rec.calls[0]["eventData"])
    assert event["data"]["failedReason"]["exception_type"] == "TaskCancelled"


def test_admin_resend_and_listing_hide_the_webhook_secret(
    emulator: Emulator, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    task_id = emulator.create(webhookUrl=url)
    assert emulator.http.post(f"/__admin/tasks/{task_id}/webhook").json() == {"resent": False}
    emulator.state.advance(11.0)
    assert emulator.http.post(f"/__admin/tasks/{task_id}/webhook").json() == {"resent": True}
    _settle(emulator)
    assert len(rec.calls) == 2
    listing = emulator.http.get("/__admin/webhooks", params={"taskId": task_id}).text
    tasks = emulator.http.get("/__admin/tasks").text
    assert "s3cret" not in listing and "s3cret" not in tasks
    assert len(json.loads(listing)["deliveries"]) == 2


# --- faults ---------------------------------------------------------------------------


def test_unreachable_drops_the_connection_on_the_chosen_routes(emulator: Emulator) -> None:
    emulator.state.knobs.update({"unreachable": True, "unreachable_routes": ["create"]})
    with pytest.raises(httpx.TransportError):
        emulator.http.post("/task/openapi/create", json={"apiKey": KEY, "workflowId": "1"})
    assert emulator.state.tasks == {}
    assert emulator.call("/uc/openapi/accountStatus")["code"] == 0  # other routes answer
    assert emulator.http.get("/__admin/health").status_code == 200
    emulator.state.knobs.update({"unreachable_routes": list(API_ROUTES)})
    with pytest.raises(httpx.TransportError):
        emulator.http.post("/uc/openapi/accountStatus", json={"apiKey": KEY})
    assert emulator.http.get("/__admin/stats").json()["faults"]["unreachable"] == 2


def test_error_rate_answers_5xx_without_creating_a_task(emulator: Emulator) -> None:
    emulator.state.knobs.update({"error_rate": 1.0})
    for _ in range(5):
        response = emulator.http.post(
            "/task/openapi/create", json={"apiKey": KEY, "workflowId": "1"}
        )
        assert response.status_code in (500, 502, 503)
    assert emulator.state.tasks == {}


def test_forced_codes_answer_http_200_on_their_route_only(emulator: Emulator) -> None:
    emulator.state.knobs.update({"forced_codes": {"create": 433}})
    answer = emulator.call("/task/openapi/create", workflowId="1")
    assert answer == {"code": 433, "msg": "VALIDATE_PROMPT_FAILED", "data": None}
    assert emulator.call("/uc/openapi/accountStatus")["code"] == 0
    emulator.state.knobs.update({"forced_codes": '{"create": 415}'})  # as `--knob` passes it
    assert emulator.call("/task/openapi/create", workflowId="1")["msg"] == "TASK_INSTANCE_MAXED"
    emulator.state.knobs.update({"forced_codes": {"status": 500}})
    emulator.create()
    assert emulator.state.tasks != {}


def test_latency_knob_still_answers(emulator: Emulator) -> None:
    emulator.state.knobs.update({"latency_ms": 20})
    assert emulator.call("/uc/openapi/accountStatus")["code"] == 0


# --- admin and CLI --------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"no_such_knob": 1},
        {"max_concurrent": "many"},
        {"failure_rate": 2},
        {"forced_codes": {"nope": 1}},
        {"forced_codes": "not json"},
        {"unreachable_routes": ["create", "nope"]},
        {"workflows": {"a": 1}},
        {"max_concurrent": 1, "workflows": 5},
    ],
)
def test_admin_rejects_bad_knobs_and_changes_nothing(
    emulator: Emulator, changes: dict[str, Any]
) -> None:
    before = emulator.http.get("/__admin/knobs").json()
    assert emulator.http.post("/__admin/knobs", json=changes).status_code == 400
    assert emulator.http.get("/__admin/knobs").json() == before


def test_admin_knobs_apply_and_reset_restores(emulator: Emulator) -> None:
    http = emulator.http
    assert http.get("/__admin/knobs").json()["max_concurrent"] == 3
    changed = http.post("/__admin/knobs", json={"max_concurrent": 1, "workflows": "1,2"})
    assert changed.status_code == 200 and changed.json()["workflows"] == ["1", "2"]
    emulator.create(workflowId="1")
    assert emulator.call("/task/openapi/create", workflowId="2")["code"] == 421
    assert http.post("/__admin/reset").json()["reset"] is True
    assert emulator.state.tasks == {} and emulator.state.knobs.max_concurrent == 3
    assert emulator.call("/uc/openapi/accountStatus")["data"]["remainCoins"] == "1000000"


def test_admin_seed_data_clock_and_task_views(emulator: Emulator) -> None:
    http = emulator.http
    assert http.post("/__admin/seed", json={"token": "new-key", "count": 5}).status_code == 200
    assert http.post("/__admin/seed", json={"token": ""}).status_code == 400
    task_id = emulator.create(apiKey="new-key")
    data = http.get("/__admin/data", params={"token": "new-key"}).json()
    assert data["coins"] == 4 and data["running"] == 1 and data["tasks"][0]["taskId"] == task_id
    assert http.get("/__admin/data", params={"token": "nobody"}).status_code == 404
    assert http.post("/__admin/clock/advance", json={"seconds": -1}).status_code == 400
    assert http.post("/__admin/clock/advance", json={"seconds": 11}).status_code == 200
    assert http.get(f"/__admin/tasks/{task_id}").json()["status"] == "SUCCESS"
    assert http.get("/__admin/tasks/nope").status_code == 404
    assert http.post("/__admin/tasks/nope/complete", json={}).status_code == 404
    bad = http.post(f"/__admin/tasks/{task_id}/complete", json={"status": "RUNNING"})
    assert bad.status_code == 400
    assert http.get("/no/such/route").status_code == 404


def test_system_clock_moves_tasks_by_itself() -> None:
    knobs = RunningHubKnobs(run_seconds=0.05, queue_seconds=0.0)
    state = RunningHubState(knobs=knobs, api_keys=[KEY], tick_interval=0.01)
    handle = start_in_thread(create_app(state))
    emu = Emulator(state, handle)
    try:
        task_id = emu.create()
        deadline = time.monotonic() + 10
        while emu.status(task_id) != "SUCCESS" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert emu.status(task_id) == "SUCCESS"
    finally:
        emu.http.close()
        handle.stop()


def test_cli_serves_on_the_given_port_and_stops_on_sigterm() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RUNNINGHUB_API_KEY"}
    proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "infra.emulators.runninghub", "--port", str(port),
         "--api-key", "cli-key", "--max-concurrent", "1", "--run-seconds", "-1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as http:
            body = {"apiKey": "cli-key", "workflowId": "1"}
            assert http.post("/task/openapi/create", json=body).json()["code"] == 0
            assert http.post("/task/openapi/create", json=body).json()["code"] == 421
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_task_ids_look_real_and_are_not_reused_by_a_restarted_emulator() -> None:
    # Two emulators with the same seed (a `make run` restarted over a kept database).
    ids: list[str] = []
    for _ in range(2):
        state = RunningHubState(knobs=RunningHubKnobs(), api_keys=[KEY], clock=ManualClock())
        ids += [state.create_task(KEY, "1904136902449209346", [], None).task_id for _ in range(3)]
    assert len(set(ids)) == 6
    assert all(len(i) == 19 and i.isdigit() for i in ids)


def test_task_id_prefix_knob_gives_new_tasks_malformed_ids_that_still_answer(
    emulator: Emulator,
) -> None:
    """A test's RunningHub answering task ids our pattern refuses: the task is real, and a
    cancel by that id stops it."""
    emulator.state.knobs.update({"task_id_prefix": "not an id/"})
    task_id = emulator.create()
    assert task_id.startswith("not an id/") and task_id[len("not an id/") :].isdigit()
    assert emulator.call("/task/openapi/cancel", taskId=task_id)["code"] == 0
    assert emulator.state.tasks[task_id].cancelled
    emulator.state.knobs.update({"task_id_prefix": ""})
    assert emulator.create().isdigit()
