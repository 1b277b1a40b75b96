"""Pure parts of the credits queue manager: allow-list, models, outcomes, webhook signing."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from shared import http
from shared.auth import secrets_equal
from shared.credits.models import (
    CheckRequest,
    CreditJobStatus,
    CreditJobTable,
    FinishRequest,
    JobKey,
    WebhookEvent,
    clean_json,
    clean_outputs,
    clean_text,
    job_table,
)
from shared.credits.runninghub import (
    RhAnswer,
    RunningHub,
    failure_message,
    outcome_of,
    parse_event_data,
    verify_webhook,
    webhook_url,
)
from shared.errors import Unauthorized, UnknownTable, UpstreamUnavailable
from shared.settings import Settings

SECRET = "unit-webhook-secret"


def settings(**over: Any) -> Settings:
    base: dict[str, Any] = {
        "runninghub_webhook_secret": SecretStr(SECRET),
        "functions_base_url": "https://fn.example/functions/v1",
    }
    return Settings(**{**base, **over})


@pytest.mark.parametrize("name", ["image_jobs", "video_jobs"])
def test_allow_listed_tables(name: str) -> None:
    assert job_table(name) is CreditJobTable(name)


@pytest.mark.parametrize(
    "name",
    ["", "users", "IMAGE_JOBS", "image_jobs ", "image_jobs;--", "ai_jobs", "public.image_jobs"],
)
def test_other_table_names_are_400(name: str) -> None:
    with pytest.raises(UnknownTable) as info:
        job_table(name)
    assert info.value.status == 400 and info.value.error_code == "unknown_table"


def test_statuses() -> None:
    assert {s for s in CreditJobStatus if s.final} == {"completed", "failed", "cancelled"}
    assert {s for s in CreditJobStatus if s.holds_slot} == {"starting", "running"}


def test_finish_request_uses_the_browser_field_names() -> None:
    req = FinishRequest.model_validate(
        {"table": "image_jobs", "jobId": str(UUID(int=7)), "status": "failed", "errorMessage": "x"}
    )
    assert req.key == JobKey(CreditJobTable.IMAGE, UUID(int=7)) and req.error_message == "x"
    with pytest.raises(ValidationError):
        FinishRequest.model_validate({"table": "image_jobs", "jobId": str(uuid4()), "status": "ok"})


def test_check_request_needs_both_or_neither() -> None:
    assert CheckRequest.model_validate({}).key is None
    with pytest.raises(ValidationError):
        CheckRequest.model_validate({"table": "image_jobs"})


def test_clean_outputs_keeps_known_fields_and_drops_junk() -> None:
    items: list[dict[str, Any]] = [
        {"fileUrl": "https://x/a.png", "fileType": "png", "nodeId": "9", "consumeCoins": "17"},
        {"fileType": "png"},
        {"fileUrl": "https://x/b.mp4", "taskCostTime": 83},
    ]
    assert clean_outputs(items) == [
        {"fileUrl": "https://x/a.png", "fileType": "png", "nodeId": "9"},
        {"fileUrl": "https://x/b.mp4", "taskCostTime": 83},
    ]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (RhAnswer(0, "success", [{"fileUrl": "u"}]), (True, [{"fileUrl": "u"}], None)),
        (RhAnswer(0, "success", []), (True, [], None)),
        (RhAnswer(0, "running", None), None),
        (RhAnswer(804, "APIKEY_TASK_IS_RUNNING", None), None),
        (RhAnswer(813, "APIKEY_TASK_IS_QUEUED", None), None),
        (
            RhAnswer(805, "x", {"failedReason": {"node_id": "3", "exception_message": "OOM"}}),
            (False, None, "The RunningHub task failed at node 3: OOM"),
        ),
        (RhAnswer(500, "x", None), None),  # RunningHub's own error: ask again
        (RhAnswer(802, "APIKEY_UNAUTHORIZED", None), None),
    ],
)
def test_outcome_of(answer: RhAnswer, expected: Any) -> None:
    outcome = outcome_of(answer)
    if expected is None:
        assert outcome is None
    else:
        assert outcome is not None
        assert (outcome.completed, outcome.outputs, outcome.error_message) == expected


def test_failure_message_is_short_and_safe() -> None:
    long = "x" * 5000
    message = failure_message({"failedReason": {"node_id": "1" * 100, "exception_message": long}})
    assert len(message) < 600
    assert failure_message(None) == failure_message({"failedReason": "?"})


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (json.dumps({"code": 0, "msg": "success", "data": []}), 0),
        ({"code": 805, "data": {}}, 805),
        ("not json", None),
        ("[1]", None),
        (json.dumps({"msg": "no code"}), None),
        (None, None),
        ('{"code": "805"}', 805),
        ('{"code": Infinity}', None),
        ('{"code": -Infinity}', None),
        ('{"code": NaN}', None),
        ('{"code": 1e400}', None),
        ('{"code": 0.5}', None),
        ('{"code": 0.0}', None),
        ('{"code": true}', None),
        ('{"code": "1e3"}', None),
        ({"code": float("inf")}, None),
        ("[" * 5000 + "]" * 5000, None),
    ],
)
def test_parse_event_data(raw: Any, code: int | None) -> None:
    parsed = parse_event_data(raw)
    assert (parsed.code if parsed else None) == code


def test_parsed_event_data_is_storable() -> None:
    raw = (
        r'{"code": 805, "msg": "e\u0000rr", "data": {"failedReason": {"node_id": "3\u0000",'
        r' "exception_message": "a\u0000b\ud800c", "current_inputs": {"cfg": NaN, "k\u0000": 1,'
        r' "list": [1, Infinity, -1e999, "x"]}}}}'
    )
    parsed = parse_event_data(raw)
    assert parsed is not None and parsed.msg == "err"
    reason = parsed.data["failedReason"]
    assert reason["node_id"] == "3" and reason["exception_message"] == "ab?c"
    assert reason["current_inputs"] == {"k": 1, "list": [1, "x"]}
    assert failure_message(parsed.data) == "The RunningHub task failed at node 3: ab?c"


def test_clean_json_and_text() -> None:
    assert clean_text("a\x00b") == "ab"
    assert clean_json(float("nan")) is None
    assert clean_json([{"a": float("inf"), "b": [float("-inf")], "c": True}]) == [
        {"b": [], "c": True}
    ]
    deep: Any = "leaf"
    for _ in range(100):
        deep = [deep]
    assert json.dumps(clean_json(deep)).count("[") == 32  # deeper levels are dropped


def test_webhook_url_is_signed_per_job_and_verifies() -> None:
    s = settings()
    key = JobKey(CreditJobTable.VIDEO, uuid4())
    url = webhook_url(s, key)
    assert url is not None
    assert url.startswith("https://fn.example/functions/v1/runninghub-queue-manager/webhook?")
    assert SECRET not in url
    args = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
    assert verify_webhook(s, args) == key
    for tampered in (
        {**args, "job": str(uuid4())},
        {**args, "table": "image_jobs"},
        {**args, "sig": args["sig"][:-1] + ("0" if args["sig"][-1] != "0" else "1")},
        {k: v for k, v in args.items() if k != "sig"},
        {**args, "table": "users"},
        {**args, "job": "x"},
    ):
        with pytest.raises(Unauthorized):
            verify_webhook(s, tampered)
    with pytest.raises(Unauthorized):
        verify_webhook(settings(runninghub_webhook_secret=SecretStr("other")), args)


def test_no_secret_means_no_webhook_and_refusal() -> None:
    key = JobKey(CreditJobTable.IMAGE, uuid4())
    for value in (None, SecretStr("")):
        s = settings(runninghub_webhook_secret=value)
        assert webhook_url(s, key) is None
        with pytest.raises(Unauthorized):
            verify_webhook(s, {"table": "image_jobs", "job": str(key.id), "sig": "x"})


def test_without_a_secret_no_signature_verifies_not_even_the_placeholder() -> None:
    """With the secret unset a missing secret is compared as NUL (constant time): a `sig`
    of NUL (`sig=%00` in the URL) or nothing must still be refused, for any job."""
    key = JobKey(CreditJobTable.IMAGE, uuid4())
    for value in (None, SecretStr("")):
        s = settings(runninghub_webhook_secret=value)
        for sig in ("\0", ""):
            with pytest.raises(Unauthorized):
                verify_webhook(s, {"table": "image_jobs", "job": str(key.id), "sig": sig})
    assert not secrets_equal("\0", None) and not secrets_equal(None, None)
    assert not secrets_equal("", "") and secrets_equal("s3cret", "s3cret")


def test_explicit_webhook_url_keeps_its_query() -> None:
    s = settings(runninghub_webhook_url="https://hooks.example/rh?env=prod")
    url = webhook_url(s, JobKey(CreditJobTable.IMAGE, uuid4()))
    assert url is not None and url.startswith("https://hooks.example/rh?env=prod&table=image_jobs")


def test_webhook_event_accepts_runninghub_shapes() -> None:
    event = WebhookEvent.model_validate(
        {"event": "TASK_END", "taskId": "1910246754753896450", "eventData": "{}", "extra": 1}
    )
    assert event.task_id == "1910246754753896450"
    as_number = WebhookEvent.model_validate({"event": "TASK_END", "taskId": 1910246754753896450})
    assert as_number.task_id == "1910246754753896450"  # as the create answer's taskId is read
    for bad in ("../../etc", True, 1.5):
        with pytest.raises(ValidationError):
            WebhookEvent.model_validate({"event": "TASK_END", "taskId": bad})


def _runninghub_answering(
    monkeypatch: pytest.MonkeyPatch, status: int
) -> tuple[list[str], RunningHub]:
    """A RunningHub whose every answer is `status`, and the paths it is asked, in order."""

    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(status, json={"code": 0, "msg": "ok", "data": None})

    client = httpx.Client(base_url="http://rh.test", transport=httpx.MockTransport(answer))
    monkeypatch.setattr(http, "pooled", lambda base_url, policy: client)
    rh = RunningHub(
        settings(
            runninghub_api_key=SecretStr("rh-key"),
            runninghub_base_url="http://rh.test",
            runninghub_retry_attempts=3,
            provider_retry_base_s=0.0,
            provider_retry_cap_s=0.0,
        )
    )
    return asked, rh


def test_a_runninghub_create_that_may_have_arrived_is_sent_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 5xx may come after RunningHub started the task: sending the create again could
    start (and bill) a second render. Reads are repeated as usual."""
    asked, rh = _runninghub_answering(monkeypatch, 503)
    with pytest.raises(UpstreamUnavailable):
        rh.create("wf", [], None)
    assert asked == ["/task/openapi/create"]
    asked.clear()
    with pytest.raises(UpstreamUnavailable):
        rh.status("task-1")
    assert asked == ["/task/openapi/status"] * 3
