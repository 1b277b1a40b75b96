"""RunningHub's task API: create, status, outputs, cancel (every call POST JSON, apiKey in body).

Failures usually come as HTTP 200 with a non-zero `code`; they are returned as an
`RhAnswer` for the caller to decide. Transport failures, 429 and 5xx are retried by the
shared HTTP client (`shared.http`) and then raised as a retryable `UpstreamError`.
`create` is not idempotent, so it is only retried when the request cannot have reached
RunningHub (no connection was made) or was refused with 429; a 5xx or a dropped
connection after sending fails the job instead of risking a second task. Nothing here
logs bodies: they carry the apiKey.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import httpx

from shared.auth import secrets_equal
from shared.credits.models import FUNCTION, CreditJobTable, JobKey, clean_json
from shared.errors import Unauthorized, UpstreamError
from shared.http import HttpClient, RetryPolicy
from shared.settings import Settings

OK = 0
QUEUE_FULL_CODES = frozenset({415, 421})  # TASK_INSTANCE_MAXED, TASK_QUEUE_MAXED
# Refusals that are not about the job: the wallet is empty (416), the key is refused (802),
# RunningHub's own error (500). No task was created; every other job would meet them too.
NOT_THIS_JOB_CODES = frozenset({416, 500, 802})
TASK_NOT_FOUND_CODES = frozenset({423, 807})
NOT_FINISHED_CODES = frozenset({804, 813})  # APIKEY_TASK_IS_RUNNING / _IS_QUEUED
TASK_FAILED_CODE = 805  # APIKEY_TASK_STATUS_ERROR, data.failedReason
_CODE = re.compile(r"-?[0-9]{1,9}")
# What we accept as a task id (the webhook's taskId is held to the same pattern).
TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class RhAnswer:
    """RunningHub's `{code, msg, data}` envelope."""

    code: int
    msg: str
    data: Any

    @property
    def ok(self) -> bool:
        return self.code == OK


def configured(settings: Settings) -> bool:
    """Whether an API key is set (without one no task can be started or asked about)."""
    key = settings.credits.api_key
    return key is not None and bool(key.get_secret_value())


class RunningHub:
    """A thin client over the process-wide pooled httpx client for the base URL."""

    def __init__(self, settings: Settings) -> None:
        if settings.credits.api_key is None or not configured(settings):
            raise UpstreamError(
                "RunningHub is not configured.", code="credentials_missing", retryable=False
            )
        self._key = settings.credits.api_key.get_secret_value()
        policy = RetryPolicy(
            attempts=settings.credits.retry_attempts,
            base_s=settings.providers.provider_retry_base_s,
            cap_s=settings.providers.provider_retry_cap_s,
            timeout_s=settings.credits.timeout_s,
        )
        self._http = HttpClient(
            settings.credits.base_url,
            policy,
            name="RunningHub",
            details={"provider": "runninghub"},
            secrets=(self._key,),
        )

    def create(
        self, workflow_id: str, node_info_list: list[Any], webhook_url: str | None
    ) -> RhAnswer:
        """Start a task; `data.taskId` on success."""
        body: dict[str, Any] = {"workflowId": workflow_id, "nodeInfoList": node_info_list}
        if webhook_url:
            body["webhookUrl"] = webhook_url
        return self._post("/task/openapi/create", body, idempotent=False)

    def status(self, task_id: str) -> RhAnswer:
        """`data`: QUEUED | RUNNING | SUCCESS | FAILED."""
        return self._post("/task/openapi/status", {"taskId": task_id}, idempotent=True)

    def outputs(self, task_id: str) -> RhAnswer:
        """`data`: the outputs list; 805 with data.failedReason when the task failed."""
        return self._post("/task/openapi/outputs", {"taskId": task_id}, idempotent=True)

    def cancel(self, task_id: str) -> RhAnswer:
        """Ask RunningHub to stop a task."""
        return self._post("/task/openapi/cancel", {"taskId": task_id}, idempotent=True)

    def _post(self, path: str, body: dict[str, Any], *, idempotent: bool) -> RhAnswer:
        payload = {"apiKey": self._key, **body}
        return _answer(self._http.request("POST", path, json=payload, idempotent=idempotent))


def _answer(response: httpx.Response) -> RhAnswer:
    """The envelope of a response, or a non-retryable UpstreamError."""
    if response.status_code >= 400:
        raise UpstreamError(
            f"RunningHub answered HTTP {response.status_code}.",
            details={"provider": "runninghub", "status": response.status_code},
            retryable=False,
        )
    try:
        return _envelope(response.json())
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise UpstreamError(
            "RunningHub answered something that is not its envelope.",
            details={"provider": "runninghub", "status": response.status_code},
            retryable=False,
        ) from exc


def _envelope(decoded: Any) -> RhAnswer:
    """`{code, msg, data}` from decoded JSON, cleaned (no NUL, no NaN/Infinity) so any of
    it can be stored; ValueError/KeyError/TypeError when it is not that envelope."""
    body = clean_json(decoded)
    if not isinstance(body, dict):
        raise TypeError("not an object")
    return RhAnswer(_code(body["code"]), str(body.get("msg") or ""), body.get("data"))


def _code(value: Any) -> int:
    """An envelope code: an integer (or its digits); anything else is malformed."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _CODE.fullmatch(value.strip()):
        return int(value)
    raise ValueError("the code is not an integer")


# --- outcomes --------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskOutcome:
    """How a RunningHub task ended."""

    completed: bool
    outputs: list[dict[str, Any]] | None = None
    error_message: str | None = None


def outcome_of(envelope: RhAnswer) -> TaskOutcome | None:
    """The outcome an outputs-shaped envelope reports; None while the task is unfinished or
    the answer says nothing of how it ended."""
    if envelope.ok:
        if isinstance(envelope.data, list):
            return TaskOutcome(True, outputs=[o for o in envelope.data if isinstance(o, dict)])
        return None  # RunningHub's newer "still running" answer: code 0, data null
    if envelope.code in NOT_FINISHED_CODES:
        return None
    if envelope.code == TASK_FAILED_CODE:
        return TaskOutcome(False, error_message=failure_message(envelope.data))
    # 500, 802, 416...: nothing about how the task ended (a render it finished must not be
    # failed and refunded for one bad answer); the sweep asks again, within its time limit.
    return None


def failure_message(data: Any) -> str:
    """A short failure message from `data.failedReason` (node and exception only)."""
    reason = data.get("failedReason") if isinstance(data, dict) else None
    if not isinstance(reason, dict):
        return "The RunningHub task failed."
    node = str(reason.get("node_id") or reason.get("nodeId") or "").strip()[:32]
    message = str(reason.get("exception_message") or reason.get("exceptionMessage") or "")
    text = "The RunningHub task failed"
    text += f" at node {node}" if node else ""
    text += f": {message.strip()[:500]}" if message.strip() else "."
    return text


def parse_event_data(raw: str | dict[str, Any] | None) -> RhAnswer | None:
    """The outputs-shaped envelope inside a TASK_END webhook, or None when unreadable."""
    try:
        return _envelope(json.loads(raw) if isinstance(raw, str) else raw)
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


# --- webhook URLs ----------------------------------------------------------------------


def _secret(settings: Settings) -> str | None:
    """The webhook secret; unset or empty means webhooks are off (and refused)."""
    secret = settings.credits.webhook_secret
    return secret.get_secret_value() or None if secret is not None else None


def _signature(secret: str, key: JobKey) -> str:
    message = f"{key.table.value}:{key.id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_url(settings: Settings, key: JobKey) -> str | None:
    """Our TASK_END URL for a job, signed for that job only; None without a secret."""
    secret = _secret(settings)
    if secret is None:
        return None
    base = settings.credits.webhook_url or (
        f"{settings.tasks.functions_base_url.rstrip('/')}/{FUNCTION}/webhook"
    )
    sig = _signature(secret, key)
    query = urlencode({"table": key.table.value, "job": str(key.id), "sig": sig})
    return f"{base}{'&' if '?' in base else '?'}{query}"


def verify_webhook(settings: Settings, args: Mapping[str, str]) -> JobKey:
    """The job a webhook call is for, if its URL signature is valid (constant time)."""
    secret = _secret(settings)
    try:
        key = JobKey(CreditJobTable(args.get("table", "")), UUID(args.get("job", "")))
    except ValueError:
        raise Unauthorized("Invalid webhook signature.") from None
    expected = _signature(secret, key) if secret else None
    if not secrets_equal(args.get("sig"), expected):
        raise Unauthorized("Invalid webhook signature.")
    return key
