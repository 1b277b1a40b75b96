"""Admin endpoints beyond the common ones (no auth, no faults; loopback tooling only).

* `GET/POST /__admin/webhook` -> `{"url", "secret_set", "timeout_s", "loop_guard"}`; POST
  takes `{"url", "secret", "timeout_s", "loop_guard"}` (partial; null clears).
* `GET /__admin/counts` -> request stats, emulator counters and the remote row count.
* `GET /__admin/keys` -> the project's legacy anon and service_role keys.
* `POST /__admin/reload-schema` -> reload the schema cache now (bypasses NOTIFY).
* `POST /__admin/deliver-webhooks` -> send what the trigger queued, now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request

from infra.emulators._common import ADMIN_PREFIX

if TYPE_CHECKING:
    from infra.emulators.postgrest.state import PostgrestState


def _webhook_view(state: PostgrestState) -> dict[str, Any]:
    hook = state.webhook
    return {
        "url": hook.url,
        "secret_set": bool(hook.secret),
        "timeout_s": hook.timeout_s,
        "loop_guard": state.loop_guard(),
    }


def _apply_webhook(state: PostgrestState, body: dict[str, Any]) -> str | None:
    """Validate then apply a partial webhook update; an error message or None."""
    unknown = set(body) - {"url", "secret", "timeout_s", "loop_guard"}
    if unknown:
        return f"unknown field(s): {', '.join(sorted(unknown))}"
    for name in ("url", "secret"):
        if name in body and body[name] is not None and not isinstance(body[name], str):
            return f"{name} must be a string or null"
    if "loop_guard" in body and not isinstance(body["loop_guard"], bool):
        return "loop_guard must be true or false"
    timeout = body.get("timeout_s", state.webhook.timeout_s)
    if not isinstance(timeout, int | float) or timeout <= 0:
        return "timeout_s must be a positive number"
    with state.lock:
        if "url" in body:
            state.webhook.url = body["url"] or None
        if "secret" in body:
            state.webhook.secret = body["secret"] or None
        state.webhook.timeout_s = float(timeout)
    if "loop_guard" in body:
        state.set_loop_guard(body["loop_guard"])
    return None


def admin_blueprint(state: PostgrestState) -> Blueprint:
    """The PostgREST emulator's own admin routes."""
    bp = Blueprint("postgrest_admin", __name__, url_prefix=ADMIN_PREFIX)

    @bp.get("/webhook")
    def get_webhook() -> Response:
        return jsonify(_webhook_view(state))

    @bp.post("/webhook")
    def set_webhook() -> tuple[Response, int] | Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify({"error": "expected a JSON object"}), 400
        error = _apply_webhook(state, body)
        if error:
            return jsonify({"error": error}), 400
        return jsonify(_webhook_view(state))

    @bp.get("/counts")
    def counts() -> Response:
        return jsonify(state.counters())

    @bp.get("/keys")
    def keys() -> Response:
        return jsonify(
            {
                "project_ref": state.project_ref,
                "anon_key": state.anon_key,
                "service_key": state.service_key,
            }
        )

    @bp.post("/reload-schema")
    def reload_schema() -> Response:
        cache = state.reload_schema()
        return jsonify({"reloaded": True, "tables": sorted(cache.tables)})

    @bp.post("/deliver-webhooks")
    def deliver() -> Response:
        return jsonify({"delivered": state.deliver_webhooks()})

    return bp
