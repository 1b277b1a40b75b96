"""In-memory state of the RunningHub emulator: accounts, tasks, their clock and webhooks."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterable
from typing import Any

from infra.emulators._common import EmulatorState, Knobs
from infra.emulators.runninghub.model import (
    Account,
    Clock,
    ManualClock,
    RhCode,
    RunningHubKnobs,
    SystemClock,
    Task,
    TaskStatus,
)
from infra.emulators.runninghub.webhooks import WebhookDispatcher

_SNOWFLAKE_EPOCH_MS = 1_288_834_974_657  # ids of 19 digits, growing with time


class RhError(Exception):
    """A business failure, answered as HTTP 200 with a non-zero envelope code."""

    def __init__(self, code: RhCode, data: Any = None) -> None:
        super().__init__(code.msg)
        self.code = code
        self.data = data


class RunningHubState(EmulatorState):
    """Accounts (apiKey -> coins), tasks, their clock and the webhook sender.

    Tests drive it directly: `advance()` a ManualClock, change `knobs`, `complete_task()`.
    `seed_token(KEY, COINS)` (CLI `--seed-token`, `POST /__admin/seed`) registers an apiKey.
    """

    knobs_cls = RunningHubKnobs
    knobs: RunningHubKnobs

    def __init__(
        self,
        *,
        seed: int = 0,
        knobs: Knobs | None = None,
        api_keys: Iterable[str] = (),
        clock: Clock | None = None,
        tick_interval: float = 0.05,
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.clock: Clock = clock or SystemClock()
        self.rng = random.Random(seed)
        self._id_seq = random.SystemRandom().randrange(0x3FFFFF)  # not the seed: no repeats
        self.accounts: dict[str, Account] = {}
        self._seeded: dict[str, int] = {}
        for key in api_keys:
            self.seed_token(key, self.knobs.default_coins)
        self.tasks: dict[str, Task] = {}
        self._live: dict[str, Task] = {}
        self.webhooks = WebhookDispatcher(lambda: self.knobs)
        self._tick_interval = tick_interval
        self._ticker_stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the webhook workers and the ticker that moves tasks on (idempotent)."""
        self.webhooks.start()
        with self.lock:
            if self._ticker is None:
                self._ticker_stop.clear()
                self._ticker = threading.Thread(target=self._tick_loop, daemon=True)
                self._ticker.start()

    def stop(self) -> None:
        """Wake sleeping requests and stop the background threads (server shutdown)."""
        super().stop()
        self._ticker_stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=10)
            self._ticker = None
        self.webhooks.close()

    def _reset_extra(self) -> None:
        """Forget tasks and deliveries; coins back to their seeded values."""
        self.tasks.clear()
        self._live.clear()
        self.rng = random.Random(self.seed)
        self.accounts = {k: Account(k, coins) for k, coins in self._seeded.items()}
        self.webhooks.reset()

    def seed_token(self, token: str, count: int) -> None:
        """Register (or reset) the apiKey `token` with `count` RH coins."""
        with self.lock:
            self._seeded[token] = count
            self.accounts[token] = Account(token, count)

    def dump(self, token: str) -> Any:
        """An account's coins and tasks, or None for an unknown apiKey."""
        self.tick()
        with self.lock:
            account = self.accounts.get(token)
            if account is None:
                return None
            tasks = [t.as_dict() for t in self.tasks.values() if t.api_key == token]
            return {"coins": account.coins, "running": self.active_count(token), "tasks": tasks}

    # API operations ------------------------------------------------------------------
    def account(self, api_key: str | None) -> Account:
        """The account of `api_key`, or 802."""
        account = self.accounts.get(api_key or "")
        if account is None:
            raise RhError(RhCode.APIKEY_UNAUTHORIZED)
        return account

    def active_count(self, api_key: str) -> int:
        """Tasks of the account that hold a slot (QUEUED or RUNNING)."""
        with self.lock:  # tests sample it from their own thread while tasks move on
            return sum(1 for t in self._live.values() if t.api_key == api_key)

    def create_task(
        self,
        api_key: str,
        workflow_id: str,
        node_info_list: list[dict[str, Any]],
        webhook_url: str | None,
    ) -> Task:
        """Create a task, or raise 380/416/421."""
        self.tick()
        with self.lock:
            account = self.account(api_key)
            knobs = self.knobs
            if not knobs.workflow_exists(workflow_id):
                raise RhError(RhCode.WORKFLOW_NOT_EXISTS)
            if account.coins < knobs.task_cost_coins:
                raise RhError(RhCode.TASK_CREATE_FAILED_BY_NOT_ENOUGH_WALLET)
            if self.active_count(api_key) >= knobs.max_concurrent:
                raise RhError(RhCode.TASK_QUEUE_MAXED)
            account.coins -= knobs.task_cost_coins
            task = Task(
                task_id=self._new_task_id(),
                api_key=api_key,
                workflow_id=workflow_id,
                node_info_list=node_info_list,
                webhook_url=webhook_url,
                created_at=self.clock.now(),
                will_fail=self._will_fail(workflow_id, node_info_list),
            )
            self.tasks[task.task_id] = task
            self._live[task.task_id] = task
            return task

    def get_task(self, api_key: str, task_id: str) -> Task:
        """The caller's task, or 807."""
        self.tick()
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None or task.api_key != api_key:
                raise RhError(RhCode.APIKEY_TASK_NOT_FOUND)
            return task

    def cancel_task(self, api_key: str, task_id: str) -> None:
        """Cancel an unfinished task (it ends FAILED); a finished one is left alone."""
        task = self.get_task(api_key, task_id)
        with self.lock:
            if task.status.final:
                return
            task.cancelled = True
            reason = self._failed_reason(task, "Task cancelled by user", "TaskCancelled")
            self._finish(task, TaskStatus.FAILED, self.clock.now(), reason)

    # test and admin helpers ----------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move a ManualClock forward and let tasks progress."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs a ManualClock")
        self.clock.advance(seconds)
        self.tick()

    def complete_task(
        self, task_id: str, status: TaskStatus, failed_reason: dict[str, Any] | None = None
    ) -> Task:
        """Finish an unfinished task right now (admin); KeyError when unknown."""
        with self.lock:
            task = self.tasks[task_id]
            if not task.status.final:
                if task.started_at is None:
                    task.started_at = self.clock.now()
                reason = failed_reason or self._failed_reason(task, "forced failure")
                self._finish(task, status, self.clock.now(), reason)
            return task

    def resend_webhook(self, task_id: str) -> bool:
        """Deliver a finished task's webhook again; False when there is nothing to send."""
        with self.lock:
            task = self.tasks[task_id]
            if not task.status.final or not task.webhook_url:
                return False
            self.webhooks.enqueue(task.task_id, task.webhook_url, _webhook_body(task))
            return True

    def tick(self) -> None:
        """Move every unfinished task on to where the clock says it should be."""
        with self.lock:
            now = self.clock.now()
            knobs = self.knobs
            for task in list(self._live.values()):
                start = task.created_at + knobs.queue_seconds
                if task.status is TaskStatus.QUEUED and now >= start:
                    task.status, task.started_at = TaskStatus.RUNNING, start
                if task.status is not TaskStatus.RUNNING or knobs.run_seconds is None:
                    continue
                end = (task.started_at or start) + knobs.run_seconds
                if now >= end:
                    if task.will_fail:
                        reason = self._failed_reason(task, "emulated workflow failure")
                        self._finish(task, TaskStatus.FAILED, end, reason)
                    else:
                        self._finish(task, TaskStatus.SUCCESS, end, None)

    # internals -----------------------------------------------------------------------
    def _tick_loop(self) -> None:
        while not self._ticker_stop.wait(self._tick_interval):
            self.tick()

    def _new_task_id(self) -> str:
        """A snowflake-style id (milliseconds since an epoch, then a sequence), like
        RunningHub's 19-digit task ids: unique across restarts of the emulator too, so a
        database kept between two `make run`s never sees an id twice."""
        while True:
            self._id_seq = (self._id_seq + 1) & 0x3FFFFF
            now_ms = time.time_ns() // 1_000_000 - _SNOWFLAKE_EPOCH_MS
            task_id = f"{self.knobs.task_id_prefix}{(now_ms << 22) | self._id_seq}"
            if task_id not in self.tasks:
                return task_id

    def _will_fail(self, workflow_id: str, node_info_list: list[dict[str, Any]]) -> bool:
        knobs = self.knobs
        if workflow_id in knobs.fail_workflows:
            return True
        if any(item.get("fieldValue") == knobs.fail_marker for item in node_info_list):
            return True
        return knobs.failure_rate > 0 and self.rng.random() < knobs.failure_rate

    def _finish(
        self, task: Task, status: TaskStatus, at: float, reason: dict[str, Any] | None
    ) -> None:
        task.status, task.finished_at = status, at
        self._live.pop(task.task_id, None)
        if status is TaskStatus.SUCCESS:
            task.outputs = self._outputs(task)
        else:
            task.failed_reason = reason
        if task.webhook_url and (self.knobs.webhook_on_cancel or not task.cancelled):
            self.webhooks.enqueue(task.task_id, task.webhook_url, _webhook_body(task))

    def _outputs(self, task: Task) -> list[dict[str, Any]]:
        knobs = self.knobs
        cost = (task.finished_at or 0.0) - (task.started_at or task.created_at)
        node_id = str(task.node_info_list[-1].get("nodeId", "9")) if task.node_info_list else "9"
        ext = knobs.output_file_type
        base = knobs.public_url.rstrip("/")
        return [
            {
                "fileUrl": f"{base}/files/{task.task_id}/ComfyUI_{n:05d}_.{ext}",
                "fileType": ext,
                "taskCostTime": str(round(cost)),
                "nodeId": node_id,
                "thirdPartyConsumeMoney": None,
                "consumeMoney": None,
                "consumeCoins": str(knobs.task_cost_coins),
            }
            for n in range(1, knobs.outputs_per_task + 1)
        ]

    @staticmethod
    def _failed_reason(
        task: Task, message: str, exception_type: str = "RuntimeError"
    ) -> dict[str, Any]:
        node_id = str(task.node_info_list[0].get("nodeId", "3")) if task.node_info_list else "3"
        return {
            "node_id": node_id,
            "node_name": "KSampler",
            "node_type": "KSampler",
            "exception_message": message,
            "exception_type": exception_type,
            "traceback": [f"{exception_type}: {message}"],
            "current_inputs": {},
            "current_outputs": {},
        }


def _webhook_body(task: Task) -> dict[str, Any]:
    """The TASK_END callback; `eventData` is a JSON string shaped like the outputs answer."""
    return {
        "event": "TASK_END",
        "taskId": task.task_id,
        "eventData": json.dumps(task.outputs_envelope(), ensure_ascii=False),
    }
