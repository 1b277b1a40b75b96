"""RunningHub's own `/__admin` endpoints: tasks, webhook deliveries, the manual clock.

The common ones (`knobs`, `reset`, `stats`, `seed` = apiKey + coins, `data`) come from
`infra.emulators._common.make_app`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

from infra.emulators.runninghub.model import ManualClock, TaskStatus
from infra.emulators.runninghub.state import RunningHubState


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _bad(message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), 400


def register_admin(app: Flask, state: RunningHubState) -> None:
    """Add the admin routes to `app`."""

    @app.get("/__admin/health")
    def health() -> Response:
        return jsonify({"ok": True, "tasks": len(state.tasks)})

    @app.get("/__admin/tasks")
    def list_tasks() -> Response:
        state.tick()
        with state.lock:
            return jsonify({"tasks": [t.as_dict() for t in state.tasks.values()]})

    @app.get("/__admin/tasks/<task_id>")
    def get_task(task_id: str) -> Response | tuple[Response, int]:
        state.tick()
        with state.lock:
            task = state.tasks.get(task_id)
            return jsonify(task.as_dict()) if task else (jsonify({"error": "not found"}), 404)

    @app.post("/__admin/tasks/<task_id>/complete")
    def complete(task_id: str) -> Response | tuple[Response, int]:
        body = _json_body()
        try:
            status = TaskStatus(body.get("status", "SUCCESS"))
        except ValueError:
            return _bad("status must be SUCCESS or FAILED")
        reason = body.get("failedReason")
        if not status.final or not isinstance(reason, dict | None):
            return _bad("status must be SUCCESS or FAILED; failedReason an object")
        if task_id not in state.tasks:
            return jsonify({"error": "not found"}), 404
        return jsonify(state.complete_task(task_id, status, reason).as_dict())

    @app.post("/__admin/tasks/<task_id>/webhook")
    def resend(task_id: str) -> Response | tuple[Response, int]:
        if task_id not in state.tasks:
            return jsonify({"error": "not found"}), 404
        return jsonify({"resent": state.resend_webhook(task_id)})

    @app.get("/__admin/webhooks")
    def webhooks() -> Response:
        task_id = request.args.get("taskId")
        return jsonify({"deliveries": [d.as_dict() for d in state.webhooks.deliveries(task_id)]})

    @app.post("/__admin/clock/advance")
    def advance() -> Response | tuple[Response, int]:
        seconds = _json_body().get("seconds")
        if not isinstance(state.clock, ManualClock):
            return _bad("the emulator runs on the system clock")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            return _bad("seconds must be a non-negative number")
        state.advance(float(seconds))
        return jsonify({"now": state.clock.now()})
