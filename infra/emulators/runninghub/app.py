"""HTTP surface of the RunningHub emulator (Flask): the OpenAPI routes and `/__admin`."""

from __future__ import annotations

import contextlib
import socket
from typing import Annotated, Any

import pydantic
from flask import Flask, Response, jsonify, request

from infra.emulators._common import make_app
from infra.emulators.runninghub.admin import register_admin
from infra.emulators.runninghub.model import RhCode, envelope
from infra.emulators.runninghub.state import RhError, RunningHubState

_ROUTE_BY_PATH = {
    "/task/openapi/create": "create",
    "/task/openapi/status": "status",
    "/task/openapi/outputs": "outputs",
    "/task/openapi/cancel": "cancel",
    "/uc/openapi/accountStatus": "accountStatus",
}
_NonEmpty = Annotated[str, pydantic.StringConstraints(min_length=1)]


class _NodeInfo(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")

    nodeId: str | int
    fieldName: _NonEmpty
    fieldValue: Any


class _CreateBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")

    workflowId: _NonEmpty | int
    nodeInfoList: list[_NodeInfo] = []
    webhookUrl: pydantic.AnyHttpUrl | None = None


def create_app(state: RunningHubState) -> Flask:
    """Build the WSGI app over `state` (and start its background threads)."""
    state.start()
    app = make_app("runninghub-emulator", state, _error_response)

    @app.before_request
    def _faults() -> Response | None:
        return _inject_fault(state)

    @app.post("/task/openapi/create")
    def create() -> Response:
        return _answer(lambda body: _create(state, body))

    @app.post("/task/openapi/status")
    def status() -> Response:
        return _answer(lambda body: state.get_task(_key(state, body), _task_id(body)).status.value)

    @app.post("/task/openapi/outputs")
    def outputs() -> Response:
        return _answer(lambda body: _outputs(state, body))

    @app.post("/task/openapi/cancel")
    def cancel() -> Response:
        return _answer(lambda body: state.cancel_task(_key(state, body), _task_id(body)))

    @app.post("/uc/openapi/accountStatus")
    def account_status() -> Response:
        return _answer(lambda body: _account_status(state, body))

    @app.get("/files/<task_id>/<name>")
    def file(task_id: str, name: str) -> Response:
        return Response(f"emulated output {name} of {task_id}\n", mimetype="text/plain")

    @app.errorhandler(404)
    def not_found(_: Exception) -> tuple[Response, int]:
        return jsonify(envelope(RhCode.UNKNOWN_ERROR, msg="Not Found")), 404

    register_admin(app, state)
    return app


def _answer(handler: Any) -> Response:
    """Run `handler(body)`; map RhError to an HTTP 200 failure envelope."""
    body = request.get_json(silent=True)
    try:
        if not isinstance(body, dict):
            raise RhError(RhCode.PARAMS_INVALID)
        data = handler(body)
    except RhError as exc:
        return jsonify(envelope(exc.code, exc.data))
    return jsonify(envelope(RhCode.SUCCESS, data))


def _key(state: RunningHubState, body: dict[str, Any]) -> str:
    """The body's apiKey (`apikey` also accepted, as accountStatus documents it), or 802."""
    key = body.get("apiKey", body.get("apikey"))
    return state.account(key if isinstance(key, str) else None).api_key


def _task_id(body: dict[str, Any]) -> str:
    task_id = body.get("taskId")
    if isinstance(task_id, bool) or not isinstance(task_id, str | int) or task_id == "":
        raise RhError(RhCode.PARAMS_INVALID)
    return str(task_id)


def _create(state: RunningHubState, body: dict[str, Any]) -> dict[str, Any]:
    key = _key(state, body)
    try:
        parsed = _CreateBody.model_validate(body)
    except pydantic.ValidationError as exc:
        raise RhError(RhCode.PARAMS_INVALID) from exc
    nodes = [n.model_dump() for n in parsed.nodeInfoList]
    url = str(body["webhookUrl"]) if parsed.webhookUrl is not None else None
    task = state.create_task(key, str(parsed.workflowId), nodes, url)
    return {
        "taskId": task.task_id,
        "taskStatus": task.status.value,
        "clientId": task.task_id[-8:],
        "netWssUrl": None,
        "promptTips": '{"result": true, "error": null, "node_errors": {}}',
    }


def _outputs(state: RunningHubState, body: dict[str, Any]) -> Any:
    task = state.get_task(_key(state, body), _task_id(body))
    if task.status.final:
        answer = task.outputs_envelope()
        if answer["code"] != RhCode.SUCCESS:
            raise RhError(RhCode(answer["code"]), answer["data"])
        return answer["data"]
    if not state.knobs.outputs_pending_as_codes:
        return None
    running = task.status.value == "RUNNING"
    raise RhError(RhCode.APIKEY_TASK_IS_RUNNING if running else RhCode.APIKEY_TASK_IS_QUEUED)


def _account_status(state: RunningHubState, body: dict[str, Any]) -> dict[str, Any]:
    key = _key(state, body)
    state.tick()
    with state.lock:
        return {
            "remainCoins": str(state.accounts[key].coins),
            "currentTaskCounts": str(state.active_count(key)),
            "remainMoney": None,
            "currency": None,
            "apiType": "NORMAL",
        }


def _error_response(status: int, message: str) -> Response:
    """The answer of an injected 500 (the common injector's other faults are proxy pages)."""
    response = jsonify({"code": status, "msg": message, "data": None})
    response.status_code = status
    return response


def _inject_fault(state: RunningHubState) -> Response | None:
    """RunningHub's own faults: dropped connections and forced envelope codes."""
    route = _ROUTE_BY_PATH.get(request.path)
    knobs = state.knobs
    if route is None:
        return None
    if knobs.unreachable and route in knobs.unreachable_routes:
        state.record_fault("unreachable")
        _drop_connection()
        return Response("", status=502)
    code = knobs.forced_codes.get(route)
    if code is not None:
        state.record_fault(f"code_{code}")
        return jsonify({"code": code, "msg": _code_msg(code), "data": None})
    return None


def _drop_connection() -> None:
    """Close the socket under the request so the client sees no answer at all."""
    sock = request.environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _code_msg(code: int) -> str:
    try:
        return RhCode(code).msg
    except ValueError:
        return "UNKNOWN_ERROR"
