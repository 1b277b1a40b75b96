"""How Cloud Tasks requests are built: names, delays, credentials (no I/O)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from shared.dispatch import Task, build_task, queue_path, task_id
from shared.settings import Settings, reload_settings


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    reload_settings()


def test_production_tasks_carry_an_oidc_token_and_a_hashed_name() -> None:
    settings = Settings(tasks_service_account="tasks@p.iam.gserviceaccount.com",
                        functions_base_url="https://fn.example")  # fmt: skip
    queue = queue_path(settings)
    task = build_task(
        Task("process-integration-job", {"job_id": "j"}, delay_s=90, key="j:2"), settings, queue
    )
    assert queue == "projects/syncq-local/locations/us-central1/queues/syncq"
    assert task.name == f"{queue}/tasks/{task_id('j:2')}"
    assert task.http_request.url == "https://fn.example/process-integration-job"
    assert task.http_request.body == b'{"job_id": "j"}'
    assert task.http_request.oidc_token.service_account_email == "tasks@p.iam.gserviceaccount.com"
    assert task.http_request.oidc_token.audience == "https://fn.example/process-integration-job"
    assert "Authorization" not in task.http_request.headers
    sub_path = build_task(Task("runninghub-queue-manager", {}, path="/start"), settings, queue)
    assert sub_path.http_request.url == "https://fn.example/runninghub-queue-manager/start"
    assert (
        sub_path.http_request.oidc_token.audience == "https://fn.example/runninghub-queue-manager"
    )
    assert task.schedule_time.timestamp() > 0


def test_local_tasks_carry_a_service_jwt_instead() -> None:
    settings = Settings(tasks_emulator_host="127.0.0.1:1")
    task = build_task(
        Task("runninghub-queue-manager", {}, path="/start"), settings, queue_path(settings)
    )
    assert task.http_request.url.endswith("/runninghub-queue-manager/start")
    assert task.http_request.headers["Authorization"].startswith("Bearer ey")
    assert not task.name  # no key: no de-duplication name


def test_after_a_wake_up_that_hung_none_is_sent_for_a_while() -> None:
    """Cloud Tasks hung: one request waits for the timeout, the next ones (clicks, the
    sweep's wake-ups) are told at once that nothing was sent; later it is tried again. A
    refusal that costs nothing (nothing listening) pauses nothing."""
    from shared.dispatch import CloudTasksDispatcher, DisabledDispatcher

    hung = socket.socket()  # accepts connections and never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    closed_port = refused.getsockname()[1]
    refused.close()
    try:
        for host, pauses in ((f"127.0.0.1:{hung.getsockname()[1]}", True),
                             (f"127.0.0.1:{closed_port}", False)):  # fmt: skip
            settings = Settings(tasks_emulator_host=host, tasks_timeout_s=0.5)
            dispatcher = CloudTasksDispatcher(settings)
            calls: list[str] = []
            real = dispatcher._client.create_task

            def counted(real: Any = real, calls: list[str] = calls, **kwargs: Any) -> Any:
                calls.append(kwargs["task"].http_request.url)
                return real(**kwargs)

            dispatcher._client.create_task = counted  # type: ignore[method-assign]
            assert dispatcher.dispatch(Task("process-integration-job")) is False
            assert dispatcher.dispatch(Task("process-integration-job")) is False
            assert len(calls) == (1 if pauses else 2), host
            dispatcher._paused_until = 0.0  # TASKS_PAUSE_S later
            assert dispatcher.dispatch(Task("process-integration-job")) is False
            assert len(calls) == (2 if pauses else 3), host
    finally:
        hung.close()
    assert DisabledDispatcher().dispatch(Task("x")) is False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        # a deadline of 0 s (or less, or NaN) fails every create_task at once, Cloud Tasks
        # up or not: no wake-up is ever sent, and an export (run only by its wake-up) never
        # runs; each failure also pauses the instance for TASKS_PAUSE_S
        ("TASKS_TIMEOUT_S", "0"),
        ("TASKS_TIMEOUT_S", "-1"),
        ("TASKS_TIMEOUT_S", "nan"),
        ("TASKS_TIMEOUT_S", "inf"),
        ("TASKS_TIMEOUT_S", "1e12"),  # past gRPC's deadline: DeadlineExceeded at once
        # one hung wake-up and the instance never sends another: its sweep counts the
        # export unsent at every pass, for good
        ("TASKS_PAUSE_S", "inf"),
        ("TASKS_PAUSE_S", "1e300"),
    ],
)
def test_tasks_timeout_and_pause_that_lose_every_wake_up_are_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """As STALE_AFTER_S and the backoffs: refused when the process starts, naming the
    variable, not met at run time as wake-ups that silently never go out."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError) as refused:
        Settings()
    assert f"refused settings: {variable}: " in str(refused.value)


@pytest.mark.parametrize(("variable", "value"), [("TASKS_TIMEOUT_S", "0.5"),
                                                 ("TASKS_PAUSE_S", "0")])  # fmt: skip
def test_tasks_timeout_and_pause_near_their_edges_are_accepted(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    Settings()


def test_a_client_that_hangs_being_made_is_asked_for_once_and_pauses_the_next_wake_ups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No credentials, and their lookup hangs (the metadata server pinged, unanswered): the
    first click made the client in the dispatcher's constructor, failed, then made it again
    in `dispatch`, waiting twice, and only the second wait counted for TASKS_PAUSE_S. One
    wake-up asks once; a wait that long pauses the next ones as a hung create_task does."""
    import time

    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import tasks_v2

    from shared.dispatch import CloudTasksDispatcher

    made: list[float] = []

    def hanging_lookup(*args: Any, **kwargs: Any) -> Any:
        made.append(time.monotonic())
        time.sleep(0.4)
        raise DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(tasks_v2, "CloudTasksClient", hanging_lookup)
    settings = Settings(tasks_timeout_s=0.5)  # a wait of 0.25 s or more pauses
    dispatcher = CloudTasksDispatcher(settings)  # what get_dispatcher does for the first click
    assert dispatcher.dispatch(Task("process-integration-job")) is False
    assert len(made) == 1, made  # one lookup for one wake-up
    assert dispatcher.dispatch(Task("process-integration-job")) is False  # paused: at once
    assert len(made) == 1, made
    dispatcher._paused_until = 0.0  # TASKS_PAUSE_S later: tried again
    assert dispatcher.dispatch(Task("process-integration-job")) is False
    assert len(made) == 2, made
