"""Data model of the RunningHub emulator: result codes, task states, settings, tasks."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Protocol

from infra.emulators._common import Knobs


class RhCode(IntEnum):
    """Envelope `code` values (PROVIDERS.md, RunningHub error tables)."""

    SUCCESS = 0
    PARAMS_INVALID = 301
    WORKFLOW_NOT_EXISTS = 380
    TASK_INSTANCE_MAXED = 415
    TASK_CREATE_FAILED_BY_NOT_ENOUGH_WALLET = 416
    TASK_QUEUE_MAXED = 421
    VALIDATE_PROMPT_FAILED = 433
    UNKNOWN_ERROR = 500
    APIKEY_UNAUTHORIZED = 802
    APIKEY_TASK_IS_RUNNING = 804
    APIKEY_TASK_STATUS_ERROR = 805
    APIKEY_TASK_NOT_FOUND = 807
    APIKEY_TASK_IS_QUEUED = 813

    @property
    def msg(self) -> str:
        """The `msg` RunningHub sends with this code."""
        return "success" if self is RhCode.SUCCESS else self.name


class TaskStatus(StrEnum):
    """Task states as `/task/openapi/status` reports them."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"

    @property
    def final(self) -> bool:
        """True for SUCCESS and FAILED."""
        return self in (TaskStatus.SUCCESS, TaskStatus.FAILED)


class Clock(Protocol):
    """Source of time for task progress (seconds, monotonic)."""

    def now(self) -> float:
        """Current time in seconds."""


class SystemClock:
    """Real monotonic time: tasks progress by themselves."""

    def now(self) -> float:
        """Current monotonic time."""
        return time.monotonic()


class ManualClock:
    """A clock that only moves when a test advances it."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        """Current manual time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`."""
        if seconds < 0:
            raise ValueError("a clock cannot go back")
        self._now += seconds


ANY_WORKFLOW = "any"
API_ROUTES = ("create", "status", "outputs", "cancel", "accountStatus")


@dataclass
class RunningHubKnobs(Knobs):
    """The common fault knobs plus RunningHub's account, task and webhook rules.

    Task durations are seconds of the emulator clock; webhook and fault timings are always
    wall-clock (a test drives tasks with a ManualClock while the sender retries for real).
    All knobs can be changed live with `POST /__admin/knobs`.
    """

    # account and workflow rules
    max_concurrent: int = 3  # tasks QUEUED or RUNNING per apiKey before 421
    workflows: list[str] | str = ANY_WORKFLOW  # valid workflow ids, or "any"
    task_cost_coins: int = 1
    default_coins: int = 1_000_000
    # task life
    queue_seconds: float = 0.0
    run_seconds: float | None = 2.0  # None: tasks never finish by themselves
    fail_workflows: list[str] = field(default_factory=list)
    fail_marker: str = "__emulator_fail__"  # a nodeInfoList fieldValue that makes a task fail
    failure_rate: float = 0.0
    outputs_per_task: int = 1
    output_file_type: str = "png"
    outputs_pending_as_codes: bool = True  # 804/813 for unfinished tasks, else code 0 + null
    public_url: str = "http://127.0.0.1:8104"  # base of the fake fileUrl values
    # webhooks (wall-clock seconds)
    webhook_timeout_s: float = 5.0
    webhook_max_attempts: int = 3
    webhook_retry_delay_s: float = 1.0
    webhook_replays: int = 1  # each TASK_END is delivered this many times
    webhook_replay_gap_s: float = 0.0
    webhook_on_cancel: bool = True
    # faults beyond the common ones
    unreachable: bool = False  # drop the connection without an answer ...
    unreachable_routes: list[str] = field(default_factory=lambda: list(API_ROUTES))  # ... here
    forced_codes: dict[str, int] = field(default_factory=dict)  # route -> envelope code
    task_id_prefix: str = ""  # before every new task id (a test's malformed ids)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Validate and apply a partial update; raises ValueError and changes nothing."""
        structured = {k: _parse_structured(k, v) for k, v in changes.items() if k in _STRUCTURED}
        super().update({k: v for k, v in changes.items() if k not in _STRUCTURED})
        for name, value in structured.items():
            setattr(self, name, value)

    def workflow_exists(self, workflow_id: str) -> bool:
        """Whether `workflow_id` is accepted."""
        if self.workflows == ANY_WORKFLOW:
            return True
        return workflow_id in self.workflows


_STRUCTURED = ("workflows", "fail_workflows", "unreachable_routes", "forced_codes")


def _parse_structured(name: str, raw: Any) -> Any:
    """List and dict knobs; strings (from `--knob`) are comma lists or JSON objects."""
    if name == "workflows" and raw == ANY_WORKFLOW:
        return ANY_WORKFLOW
    if name == "forced_codes":
        value = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(value, dict) or not all(
            k in API_ROUTES and isinstance(v, int) and not isinstance(v, bool)
            for k, v in value.items()
        ):
            raise ValueError(f"bad value for knob {name}: {raw!r}")
        return dict(value)
    items = [p for p in raw.split(",") if p] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(i, str | int) for i in items):
        raise ValueError(f"bad value for knob {name}: {raw!r}")
    values = [str(i) for i in items]
    if name == "unreachable_routes" and not set(values) <= set(API_ROUTES):
        raise ValueError(f"knob {name} takes routes among {', '.join(API_ROUTES)}")
    return values


@dataclass
class Account:
    """One apiKey with its RH coins."""

    api_key: str
    coins: int


@dataclass
class Task:
    """A task as the emulator tracks it."""

    task_id: str
    api_key: str
    workflow_id: str
    node_info_list: list[dict[str, Any]]
    webhook_url: str | None
    created_at: float
    will_fail: bool
    status: TaskStatus = TaskStatus.QUEUED
    started_at: float | None = None
    finished_at: float | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    failed_reason: dict[str, Any] | None = None
    cancelled: bool = False

    def outputs_envelope(self) -> dict[str, Any]:
        """The `/task/openapi/outputs` envelope of a finished task (webhook eventData too)."""
        if self.status is TaskStatus.SUCCESS:
            return envelope(RhCode.SUCCESS, self.outputs)
        return envelope(RhCode.APIKEY_TASK_STATUS_ERROR, {"failedReason": self.failed_reason})

    def as_dict(self) -> dict[str, Any]:
        """Admin view (the webhook URL's query, which may hold a secret, is hidden)."""
        return {
            "taskId": self.task_id,
            "workflowId": self.workflow_id,
            "status": self.status.value,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "webhookUrl": redact_url(self.webhook_url),
            "nodeInfoList": self.node_info_list,
            "outputs": self.outputs,
            "failedReason": self.failed_reason,
            "cancelled": self.cancelled,
        }


def envelope(code: RhCode, data: Any = None, msg: str | None = None) -> dict[str, Any]:
    """RunningHub's `{code, msg, data}` envelope."""
    return {"code": int(code), "msg": code.msg if msg is None else msg, "data": data}


def redact_url(url: str | None) -> str | None:
    """Drop the query string (webhook secrets travel there) for display."""
    if url is None or "?" not in url:
        return url
    return url.split("?", 1)[0] + "?<redacted>"
