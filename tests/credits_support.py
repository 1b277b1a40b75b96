"""Helpers for the credits queue manager tests: emulator, users, jobs, clients, drainers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import functions_framework
import httpx
import psycopg
from flask import Flask

from infra.emulators._common import ServerHandle, start_in_thread
from infra.emulators.runninghub import ManualClock, RunningHubKnobs, RunningHubState, create_app
from shared.auth import mint_token
from shared.dispatch import RecordingDispatcher
from tests.conftest import Configure
from tests.credits_client import JobManager
from tests.support import rows, service_token

ROOT = Path(__file__).resolve().parents[1]
FUNCTION = "runninghub-queue-manager"
RH_KEY = "rh-test-api-key"
WEBHOOK_SECRET = "rh-webhook-secret-for-tests"
IMAGE, VIDEO = "image_jobs", "video_jobs"
WORKFLOW = "1904136902449209346"


@cache
def function_app() -> Flask:
    """The function as functions-framework loads it (one instance per test session)."""
    app: Flask = functions_framework.create_app(  # type: ignore[no-untyped-call]
        target="main", source=str(ROOT / "functions" / FUNCTION / "main.py")
    )
    return app


def wsgi_http() -> httpx.Client:
    """An httpx client that calls the function in-process through WSGI."""
    return httpx.Client(transport=httpx.WSGITransport(app=function_app()), timeout=30.0)


def manager(token: str) -> JobManager:
    """A JobManager (the browser's mirror) talking to the function in-process."""
    return JobManager("http://qm", token, http=wsgi_http())


@dataclass
class Emulator:
    """The RunningHub emulator served on loopback."""

    state: RunningHubState
    handle: ServerHandle

    @property
    def url(self) -> str:
        return self.handle.url


@contextmanager
def running_emulator(knobs: RunningHubKnobs, *, manual_clock: bool = True) -> Iterator[Emulator]:
    """Serve a RunningHub emulator with our api key."""
    clock = ManualClock() if manual_clock else None
    state = RunningHubState(knobs=knobs, api_keys=[RH_KEY], clock=clock, tick_interval=0.02)
    handle = start_in_thread(create_app(state))
    try:
        yield Emulator(state, handle)
    finally:
        handle.stop()


# Where webhooks go when a test delivers them by hand: nothing listens on port 9.
NO_WEBHOOKS = "http://127.0.0.1:9/webhook"


def configure_runninghub(
    configure: Configure, emulator_url: str, webhook: str = NO_WEBHOOKS, **extra: str
) -> None:
    """Point the settings at the emulator, and RunningHub's webhooks at `webhook`.

    The per-user cap is lifted (tests drive many jobs of one user); the cap's own tests
    set RUNNINGHUB_MAX_ACTIVE_PER_USER.
    """
    settings = {
        "RUNNINGHUB_BASE_URL": emulator_url,
        "RUNNINGHUB_WEBHOOK_URL": webhook,
        "RUNNINGHUB_API_KEY": RH_KEY,
        "RUNNINGHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "RUNNINGHUB_RETRY_ATTEMPTS": "2",
        "RUNNINGHUB_TIMEOUT_S": "5",
        "RUNNINGHUB_MAX_ACTIVE_PER_USER": "1000",
    }
    configure(**{**settings, **extra})


@contextmanager
def endless_runninghub(configure: Configure, **extra: str) -> Iterator[Emulator]:
    """RunningHub whose tasks run until a test ends them (its own webhooks not retried),
    with the settings pointed at it."""
    knobs = RunningHubKnobs(run_seconds=None, max_concurrent=10, webhook_max_attempts=1)
    with running_emulator(knobs) as emulator:
        configure_runninghub(configure, emulator.url, **extra)
        yield emulator


@dataclass(frozen=True)
class User:
    id: uuid.UUID

    @property
    def token(self) -> str:
        return mint_token(user_id=self.id)


def new_user(database_url: str, balance: int | None = 100) -> User:
    """A user with a credit account (None: no account at all)."""
    user = User(uuid.uuid4())
    if balance is not None:
        with psycopg.connect(database_url) as conn:
            conn.execute(
                "INSERT INTO credit_accounts (user_id, balance) VALUES (%s, %s)", [user.id, balance]
            )
    return user


def set_price(database_url: str, workflow: str, credits: int, table: str = IMAGE) -> None:
    """Price a workflow, as an operator does (the owner role, not a user)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO credit_prices (job_table, workflow_id, credits) VALUES (%s, %s, %s)"
            " ON CONFLICT (job_table, workflow_id) DO UPDATE SET credits = excluded.credits",
            [table, workflow, credits],
        )


def priced_workflow(database_url: str, cost: int, table: str = IMAGE) -> str:
    """A workflow id whose price is `cost` (one per cost, so prices never collide)."""
    workflow = f"{WORKFLOW}-{cost}"
    set_price(database_url, workflow, cost, table)
    return workflow


def new_job(
    database_url: str,
    user: User,
    *,
    table: str = IMAGE,
    cost: int = 10,
    inputs: list[dict[str, Any]] | None = None,
) -> uuid.UUID:
    """A pending job its owner created through /create (the browser's createJob); its
    workflow is priced at `cost` on the server."""
    workflow = priced_workflow(database_url, cost, table)
    with manager(user.token) as jm:
        return jm.create_job(table, user_id=user.id, workflow_id=workflow, inputs=inputs)


def job(database_url: str, job_id: uuid.UUID) -> dict[str, Any]:
    return rows(database_url, "SELECT * FROM ai_jobs WHERE id = %s", job_id)[0]


def balance(database_url: str, user: User) -> int:
    return int(
        rows(database_url, "SELECT balance FROM credit_accounts WHERE user_id = %s", user.id)[0][
            "balance"
        ]
    )


def ledger(database_url: str, job_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
    if job_id is None:
        return rows(database_url, "SELECT * FROM credit_ledger ORDER BY id")
    return rows(database_url, "SELECT * FROM credit_ledger WHERE job_id = %s ORDER BY id", job_id)


def post(path: str, body: Any, token: str | None = None, **headers: str) -> httpx.Response:
    """POST to a route of the function (in-process)."""
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with wsgi_http() as http:
        if isinstance(body, bytes):
            headers.setdefault("Content-Type", "application/json")
            return http.post(f"http://qm{path}", content=body, headers=headers)
        return http.post(f"http://qm{path}", json=body, headers=headers)


def service() -> str:
    return service_token()


class Drainer:
    """Delivers recorded Cloud Tasks to the function continuously, like the task queue."""

    def __init__(self, recorder: RecordingDispatcher) -> None:
        self._recorder = recorder
        self._stop = threading.Event()
        self.delivered = 0
        self.statuses: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Drainer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with wsgi_http() as http:
            while not self._stop.wait(0.01):
                for task in self._recorder.take():
                    response = http.post(
                        f"http://qm{task.path}",
                        json=task.body,
                        headers={"Authorization": f"Bearer {service_token()}"},
                    )
                    self.delivered += 1
                    self.statuses.append(response.status_code)


class Sampler:
    """Samples, until stopped, the most jobs holding a slot here and at RunningHub."""

    def __init__(self, database_url: str, remote: Callable[[], int]) -> None:
        self._url = database_url
        self._remote = remote
        self._stop = threading.Event()
        self.max_db = self.max_remote = self.samples = 0
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._failed is not None:  # else the maxima would pass without being watched
            raise AssertionError("the sampler stopped sampling") from self._failed

    def _run(self) -> None:
        sql = "SELECT count(*) FROM ai_jobs WHERE status IN ('starting', 'running')"
        try:
            with psycopg.connect(self._url, autocommit=True) as conn:
                while not self._stop.is_set():
                    row = conn.execute(sql).fetchone()
                    self.max_db = max(self.max_db, int(row[0]) if row else 0)
                    self.max_remote = max(self.max_remote, self._remote())
                    self.samples += 1
                    time.sleep(0.002)
        except BaseException as exc:
            self._failed = exc


@contextmanager
def clock_running(rh: Emulator, step_s: float = 0.05) -> Iterator[None]:
    """Let the emulator's manual clock run (a step every 20 ms) for the block's length."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.02):
            rh.state.advance(step_s)

    ticker = threading.Thread(target=run, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `predicate` until it holds; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
