"""Fire-and-forget re-dispatch of functions through Google Cloud Tasks.

Cloud Tasks is only a wake-up (invariant 1): a lost or duplicated task costs at most one
sweep interval or one empty claim, so dispatch failures are logged, never raised. A
dispatch says whether the task was accepted. With `disabled` the sweep runs every due job
itself, exports included; with Cloud Tasks down, an export waits for a wake-up that gets
through (each sweep tries again): its function alone may read the export's secrets. After
a failure that made its caller wait (Cloud Tasks hung), this process sends no wake-up for
TASKS_PAUSE_S: a click does not wait for the timeout again and again, nor the sweep once
per job.

Production: HTTP target, an OIDC token for the tasks service account, schedule_time for
delays, task names hashed from a key (ALREADY_EXISTS means someone already asked: done).
Locally the same client talks to gcloud-tasks-emulator, which sends no OIDC token, so the
task carries a short-lived service-role JWT in its Authorization header instead.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared import log
from shared.auth import mint_token
from shared.settings import Settings, get_settings

_logger = log.get_logger("dispatch")


@dataclass(frozen=True)
class Task:
    """A request to call one of our functions later."""

    function: str
    body: dict[str, Any] = field(default_factory=dict)
    delay_s: float = 0.0
    key: str | None = None  # de-duplication key; hashed into the task name
    path: str = ""  # sub-route, e.g. "/start"


class Dispatcher(Protocol):
    def dispatch(self, task: Task) -> bool:
        """Send the task; whether it was accepted (or already was)."""
        ...


def task_id(key: str) -> str:
    """A Cloud Tasks task id from a key: stable, opaque, within the allowed alphabet."""
    return "t-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def queue_path(settings: Settings) -> str:
    """The full name of the configured queue."""
    return (
        f"projects/{settings.tasks.gcp_project}/locations/{settings.tasks.gcp_location}"
        f"/queues/{settings.tasks.tasks_queue}"
    )


def build_task(task: Task, settings: Settings, queue: str) -> Any:
    """The Cloud Tasks request for a Task: HTTP target, credentials, name, schedule."""
    from google.cloud import tasks_v2  # noqa: PLC0415

    function_url = f"{settings.tasks.functions_base_url.rstrip('/')}/{task.function}"
    url = f"{function_url}{task.path}"
    headers = {"Content-Type": "application/json"}
    http_request = tasks_v2.HttpRequest(
        http_method=tasks_v2.HttpMethod.POST, url=url, body=json.dumps(task.body).encode()
    )
    if settings.tasks.tasks_emulator_host or not settings.tasks.tasks_service_account:
        # The emulator sends no OIDC token: carry a service credential that outlives the
        # delay (and never log it).
        ttl = int(task.delay_s) + 3600
        headers["Authorization"] = f"Bearer {mint_token(service=True, ttl_s=ttl)}"
    else:
        # The audience is the target function's URL (not a sub-path of it): what Cloud Run
        # accepts for a private function, and what that function expects (OIDC_AUDIENCE).
        http_request.oidc_token = tasks_v2.OidcToken(
            service_account_email=settings.tasks.tasks_service_account, audience=function_url
        )
    http_request.headers = headers
    built = tasks_v2.Task(http_request=http_request)
    if task.key:
        built.name = f"{queue}/tasks/{task_id(task.key)}"
    if task.delay_s > 0:
        built.schedule_time = datetime.now(UTC) + timedelta(seconds=task.delay_s)
    return built


class CloudTasksDispatcher:
    """The real Cloud Tasks client (or the emulator, when TASKS_EMULATOR_HOST is set)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._queue = queue_path(settings)
        self._paused_until = 0.0  # time.monotonic(): no wake-up is sent before then
        # A client that cannot be made (no credentials found, say) is a failed dispatch like
        # any other: logged, left to the sweep, tried again by the next wake-up. Raised from
        # here, it answered 500 to the click whose job was already stored. A lookup that
        # made this caller wait pauses the wake-ups as a hung create_task does: the click
        # that made this dispatcher does not wait for it a second time in `dispatch`.
        self._client: Any = None
        started = time.monotonic()
        try:
            self._client = self._make_client()
        except Exception as exc:
            pause_s = self._pause_after(started)
            _logger.warning(
                "Cloud Tasks client could not be created; the sweep will pick the work up",
                extra=log.fields(error=type(exc).__name__, pause_s=pause_s),
            )

    def _pause_after(self, started: float) -> float:
        """After a failure: only one that made its caller wait (Cloud Tasks, or the
        credentials lookup, hung or very slow) pauses the next wake-ups; one that failed at
        once costs the next caller nothing. The pause, in seconds."""
        waited = time.monotonic() - started >= self._settings.tasks.tasks_timeout_s / 2
        pause_s = self._settings.tasks.tasks_pause_s if waited else 0.0
        self._paused_until = time.monotonic() + pause_s
        return pause_s

    def _make_client(self) -> Any:
        from google.cloud import tasks_v2  # noqa: PLC0415 - heavy import, only when used

        if self._settings.tasks.tasks_emulator_host:
            import grpc  # noqa: PLC0415
            from google.cloud.tasks_v2.services.cloud_tasks.transports import (  # noqa: PLC0415
                CloudTasksGrpcTransport,
            )

            channel = grpc.insecure_channel(self._settings.tasks.tasks_emulator_host)
            return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
        return tasks_v2.CloudTasksClient()

    def dispatch(self, task: Task) -> bool:
        from google.api_core import exceptions as gexc  # noqa: PLC0415

        if time.monotonic() < self._paused_until:
            return False
        started = time.monotonic()
        try:
            if self._client is None:
                self._client = self._make_client()
            self._client.create_task(
                parent=self._queue,
                task=build_task(task, self._settings, self._queue),
                timeout=self._settings.tasks.tasks_timeout_s,
            )
        except gexc.AlreadyExists:
            _logger.info("task already exists", extra=log.fields(function=task.function))
        except Exception as exc:  # a lost wake-up is repaired by the sweep
            pause_s = self._pause_after(started)
            _logger.warning(
                "dispatch failed; the sweep will pick the work up",
                extra=log.fields(function=task.function, error=type(exc).__name__, pause_s=pause_s),
            )
            return False
        return True


class RecordingDispatcher:
    """Keeps tasks in memory so tests can run them deterministically."""

    def __init__(self) -> None:
        self.tasks: list[Task] = []
        self._lock = threading.Lock()

    def dispatch(self, task: Task) -> bool:
        with self._lock:
            self.tasks.append(task)
        return True

    def take(self) -> list[Task]:
        """Remove and return everything recorded so far."""
        with self._lock:
            taken, self.tasks = self.tasks, []
        return taken


class DisabledDispatcher:
    """Drops tasks (a deployment that relies on the sweep alone)."""

    def dispatch(self, task: Task) -> bool:
        _logger.info("dispatch disabled", extra=log.fields(function=task.function))
        return False


_dispatcher: Dispatcher | None = None
_lock = threading.Lock()


def get_dispatcher() -> Dispatcher:
    """The process-wide dispatcher chosen by settings (created once)."""
    global _dispatcher  # noqa: PLW0603 - one long-lived client per process, by design
    with _lock:
        if _dispatcher is None:
            settings = get_settings()
            if settings.tasks.dispatcher == "cloudtasks":
                _dispatcher = CloudTasksDispatcher(settings)
            elif settings.tasks.dispatcher == "recording":
                _dispatcher = RecordingDispatcher()
            else:
                _dispatcher = DisabledDispatcher()
        return _dispatcher


def reset_dispatcher() -> None:
    """Forget the dispatcher (tests, after changing settings)."""
    global _dispatcher  # noqa: PLW0603
    with _lock:
        _dispatcher = None


def sends_tasks() -> bool:
    """Whether wake-ups go anywhere (False: `DISPATCHER=disabled`, the sweep runs all)."""
    return not isinstance(get_dispatcher(), DisabledDispatcher)


def dispatch(task: Task) -> bool:
    """Send a task with the configured dispatcher; whether it was accepted."""
    return get_dispatcher().dispatch(task)
