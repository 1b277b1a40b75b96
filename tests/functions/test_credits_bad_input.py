"""Bad input on every route of runninghub-queue-manager: a 4xx envelope, nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest

from infra.emulators.runninghub import RunningHubKnobs
from shared.credits.models import CreditJobTable, JobKey
from shared.credits.runninghub import webhook_url
from shared.settings import get_settings
from tests.conftest import Configure
from tests.credits_support import (
    IMAGE,
    Emulator,
    configure_runninghub,
    new_job,
    new_user,
    post,
    running_emulator,
    service,
)
from tests.support import rows

pytestmark = pytest.mark.db


@pytest.fixture
def rh(configure: Configure) -> Iterator[Emulator]:
    with running_emulator(RunningHubKnobs(run_seconds=None)) as emulator:
        configure_runninghub(configure, emulator.url)
        yield emulator


def snapshot(database_url: str) -> list[Any]:
    """Everything a route could change."""
    return [
        rows(database_url, "SELECT * FROM ai_jobs ORDER BY id"),
        rows(database_url, "SELECT * FROM credit_ledger ORDER BY id"),
        rows(database_url, "SELECT * FROM credit_accounts ORDER BY user_id"),
    ]


def cases(pending: UUID, running: UUID) -> list[tuple[str, Any, int, str]]:
    ref = {"table": IMAGE, "jobId": str(pending)}
    big = "x" * 300_000
    return [
        ("/start", {}, 422, "validation_error"),
        ("/start", {"table": IMAGE}, 422, "validation_error"),
        ("/start", {"table": IMAGE, "jobId": "not-a-uuid"}, 422, "validation_error"),
        ("/start", {"table": 5, "jobId": str(pending)}, 422, "validation_error"),
        ("/start", {**ref, "status": "running"}, 422, "validation_error"),
        ("/start", {"table": IMAGE, "job_id": str(pending), "x": 1}, 422, "validation_error"),
        ("/start", {"table": "", "jobId": str(pending)}, 422, "validation_error"),
        ("/start", {"table": "image_jobs ", "jobId": str(pending)}, 400, "unknown_table"),
        ("/start", {"table": IMAGE, "jobId": str(uuid4())}, 404, "not_found"),
        ("/start", b"{not json", 400, "invalid_json"),
        ("/start", b"[1, 2]", 400, "invalid_json"),
        ("/start", {**ref, "pad": big}, 413, "payload_too_large"),
        ("/finish", ref, 422, "validation_error"),
        ("/finish", {**ref, "status": "done"}, 422, "validation_error"),
        ("/finish", {**ref, "status": "failed", "errorMessage": "e" * 2001}, 422, "validation_error"),
        ("/finish", {**ref, "status": "completed", "outputs": "x"}, 422, "validation_error"),
        ("/finish", {**ref, "status": "completed", "outputs": [{"fileType": "png"}]}, 422,
         "validation_error"),
        ("/finish", {**ref, "status": "completed", "outputs": [{"fileUrl": ""}]}, 422,
         "validation_error"),
        ("/finish", {**ref, "status": "failed", "errorMessage": 12}, 422, "validation_error"),
        ("/finish", {"table": "nope", "jobId": str(pending), "status": "failed"}, 400,
         "unknown_table"),
        ("/cancel", {"jobId": str(pending)}, 422, "validation_error"),
        ("/cancel", {"table": "video", "jobId": str(pending)}, 400, "unknown_table"),
        ("/cancel", b"\xff\xfe", 400, "invalid_json"),
        ("/check", {"table": IMAGE}, 422, "validation_error"),
        ("/check", {"jobId": str(pending)}, 422, "validation_error"),
        ("/check", {"limit": 5}, 422, "validation_error"),
        ("/ledger", {"limit": True}, 422, "validation_error"),  # not read as 1
        ("/jobs", {"limit": "5"}, 422, "validation_error"),
        ("/finish", {**ref, "status": "completed", "outputs": [{"fileUrl": "u", "nodeId": True}]},
         422, "validation_error"),
        ("/nope", ref, 404, "not_found"),
        ("/", ref, 404, "not_found"),
    ]  # fmt: skip


def test_bad_bodies_on_every_route(database_url: str, rh: Emulator) -> None:
    user = new_user(database_url)
    pending = new_job(database_url, user)
    running = new_job(database_url, user)
    assert post("/start", {"table": IMAGE, "jobId": str(running)}, user.token).status_code == 200
    before = snapshot(database_url)
    for token in (user.token, service()):
        for path, body, status, code in cases(pending, running):
            response = post(path, body, token)
            assert response.status_code == status, (path, body, response.json())
            error = response.json()["error"]
            assert error["code"] == code and error["message"], (path, body)
    assert snapshot(database_url) == before


def test_wrong_methods_and_content_types(database_url: str, rh: Emulator) -> None:
    from tests.credits_support import wsgi_http

    user = new_user(database_url)
    job_id = new_job(database_url, user)
    before = snapshot(database_url)
    headers = {"Authorization": f"Bearer {user.token}"}
    with wsgi_http() as http:
        assert http.get("http://qm/start", headers=headers).status_code == 405
        assert http.delete("http://qm/finish", headers=headers).status_code == 405
        form = http.post(
            "http://qm/start",
            content=f"table={IMAGE}&jobId={job_id}",
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 415
    assert snapshot(database_url) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"event": "TASK_END"},
        {"event": "TASK_END", "taskId": "1; drop"},
        {"event": "TASK_END", "taskId": "1" * 65},
        {"event": "", "taskId": "1"},
        {"event": "TASK_END", "taskId": "1", "eventData": 5},
    ],
)
def test_bad_webhook_bodies(database_url: str, rh: Emulator, body: dict[str, Any]) -> None:
    user = new_user(database_url)
    job_id = new_job(database_url, user)
    post("/start", {"table": IMAGE, "jobId": str(job_id)}, user.token)
    before = snapshot(database_url)
    url = webhook_url(get_settings(), JobKey(CreditJobTable.IMAGE, job_id))
    assert url is not None
    response = post("/webhook?" + url.split("?", 1)[1], body)
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
    assert snapshot(database_url) == before


def test_webhook_for_an_unknown_job_or_event_is_ignored(database_url: str, rh: Emulator) -> None:
    user = new_user(database_url)
    job_id = new_job(database_url, user)
    post("/start", {"table": IMAGE, "jobId": str(job_id)}, user.token)
    before = snapshot(database_url)
    for key, event in [
        (JobKey(CreditJobTable.IMAGE, uuid4()), "TASK_END"),  # signed, but no such job
        (JobKey(CreditJobTable.IMAGE, job_id), "TASK_START"),
        (JobKey(CreditJobTable.IMAGE, job_id), "TASK_END"),  # another task id
    ]:
        url = webhook_url(get_settings(), key)
        assert url is not None
        body = {"event": event, "taskId": "123", "eventData": '{"code": 0, "data": []}'}
        response = post("/webhook?" + url.split("?", 1)[1], body)
        assert response.status_code == 200 and response.json()["action"] == "ignored"
    assert snapshot(database_url) == before


def test_webhook_without_a_configured_secret_is_refused(
    database_url: str, configure: Configure, rh: Emulator
) -> None:
    user = new_user(database_url)
    job_id = new_job(database_url, user)
    url = webhook_url(get_settings(), JobKey(CreditJobTable.IMAGE, job_id))
    assert url is not None
    configure(RUNNINGHUB_WEBHOOK_SECRET="")
    response = post("/webhook?" + url.split("?", 1)[1], {"event": "TASK_END", "taskId": "1"})
    assert response.status_code == 401


@pytest.mark.parametrize("route", ["/start", "/finish", "/cancel", "/check"])
def test_bad_tokens_get_401_and_change_nothing(database_url: str, rh: Emulator, route: str) -> None:
    from tests.functions.test_auth import bad_tokens

    user = new_user(database_url)
    job_id = new_job(database_url, user)
    before = snapshot(database_url)
    body: dict[str, Any] = {"table": IMAGE, "jobId": str(job_id)}
    if route == "/finish":
        body["status"] = "failed"
    for label, token in bad_tokens(user.id).items():
        response = post(route, body, token)
        assert response.status_code == 401, (label, response.json())
        assert response.json()["error"]["code"] == "unauthorized"
    assert snapshot(database_url) == before
