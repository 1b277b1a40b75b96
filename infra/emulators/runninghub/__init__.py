"""RunningHub emulator: ComfyUI cloud tasks with slots, failures and TASK_END webhooks.

Run it with `python -m infra.emulators.runninghub --port 8104 --api-key KEY`; tests build a
`RunningHubState` (often with a `ManualClock`), serve `create_app(state)` with
`infra.emulators._common.start_in_thread` and drive the state object directly.

API (every call POST JSON with `apiKey` in the body; failures are HTTP 200 + code):
`/task/openapi/create|status|outputs|cancel`, `/uc/openapi/accountStatus`.
Admin: the common `/__admin/knobs|reset|stats|seed|data` plus `/__admin/tasks[/<id>]`,
`/__admin/tasks/<id>/complete`, `/__admin/tasks/<id>/webhook` (resend),
`/__admin/webhooks[?taskId=]`, `/__admin/clock/advance` (ManualClock only).
"""

from __future__ import annotations

from infra.emulators.runninghub.app import create_app
from infra.emulators.runninghub.model import (
    ANY_WORKFLOW,
    API_ROUTES,
    ManualClock,
    RhCode,
    RunningHubKnobs,
    SystemClock,
    Task,
    TaskStatus,
)
from infra.emulators.runninghub.state import RhError, RunningHubState
from infra.emulators.runninghub.webhooks import Attempt, Delivery

__all__ = [
    "ANY_WORKFLOW",
    "API_ROUTES",
    "Attempt",
    "Delivery",
    "ManualClock",
    "RhCode",
    "RhError",
    "RunningHubKnobs",
    "RunningHubState",
    "SystemClock",
    "Task",
    "TaskStatus",
    "create_app",
]
