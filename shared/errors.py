"""The one error hierarchy.

Errors a caller may see, rendered by `shared.web` as `{"error": {"code", "message",
"details"}}` with the status beside each:

SyncqError (500 internal_error)
 ├── BadRequest (400 bad_request)
 │    ├── InvalidJson (400 invalid_json)
 │    ├── MalformedBody (400 malformed_body)
 │    └── UnknownTable (400 unknown_table)
 ├── Unauthorized (401 unauthorized)
 ├── PaymentRequired (402 insufficient_credits)
 ├── Forbidden (403 forbidden)
 ├── NotFound (404 not_found)
 ├── MethodNotAllowed (405 method_not_allowed)
 ├── Conflict (409 conflict)
 │    ├── JobAlreadyActive (409 job_already_active)
 │    ├── JobExists (409 job_exists)
 │    ├── JobFinished (409 job_finished)
 │    ├── JobNotStarted (409 job_not_started)
 │    └── NotRetryable (409 job_not_retryable)
 ├── PayloadTooLarge (413 payload_too_large)
 ├── UnsupportedMediaType (415 unsupported_media_type)
 ├── Unprocessable (422 unprocessable)
 │    ├── ValidationFailed (422 validation_error)
 │    ├── UnknownWorkflow (422 unknown_workflow)
 │    ├── IdempotencyKeyReused (422 idempotency_key_reused)
 │    └── IntegrationDisabled (422 integration_disabled)
 ├── TooManyRequests (429 too_many_requests)
 │    └── TooManyActiveJobs (429 too_many_active_jobs)
 ├── UpstreamError (502 upstream_error)
 │    └── UpstreamUnavailable (502 upstream_error)   transient: retried, then raised
 │         └── RemoteUnavailable (502 upstream_error)   the Gestão Scouter remote
 └── ServiceUnavailable (503 unavailable)
      ├── DatabaseUnavailable (503 database_unavailable)
      └── RunningHubNotConfigured (503 runninghub_not_configured)

Interruptions of a job's runner: control flow between the engine and a kind, never shown
to a caller (the runner turns each into the job's next state):

JobInterrupted
 ├── LeaseLost       the job is someone else's now (rescued, reset, finished): stop, write nothing
 ├── JobCanceled     an admin canceled the running job: end it as canceled
 └── StopRequested   an admin paused or reset it, or it cannot go on without one (`reason`)

Outside both trees, on purpose: `shared.settings.SettingsRefused` (a ValueError) stops a
process before it serves anything, naming each refused variable; the listener's private
`_Stalled` restarts its own connection.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SyncqError(Exception):
    """Base of every error a caller may see. Messages are safe to show: no secrets, no PII."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "Internal error."
    # Seconds a caller should wait before trying again, sent as `Retry-After` (RFC 9110): set
    # where the condition frees itself (a quota, a dependency away for a moment).
    retry_hint_s: ClassVar[int | None] = None

    def __init__(
        self, message: str | None = None, *, details: Any = None, code: str | None = None
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.error_code = code or self.code
        super().__init__(self.message)

    def envelope(self) -> dict[str, Any]:
        """The JSON body the caller receives."""
        body: dict[str, Any] = {"code": self.error_code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class BadRequest(SyncqError):
    status, code, default_message = 400, "bad_request", "Bad request."


class InvalidJson(BadRequest):
    code, default_message = "invalid_json", "The body must be a JSON object."


class MalformedBody(BadRequest):
    """A body whose framing broke (a bad chunk size, cut short): any request's, GETs too,
    since every body is read to its end before the answer."""

    code, default_message = "malformed_body", "The request body is malformed or incomplete."


class UnknownTable(BadRequest):
    code, default_message = "unknown_table", "Unknown table."


class Unauthorized(SyncqError):
    status, code, default_message = 401, "unauthorized", "Missing or invalid credentials."


class PaymentRequired(SyncqError):
    status, code, default_message = 402, "insufficient_credits", "Not enough credits."


class Forbidden(SyncqError):
    status, code, default_message = 403, "forbidden", "You may not do this."


class NotFound(SyncqError):
    status, code, default_message = 404, "not_found", "Not found."


class MethodNotAllowed(SyncqError):
    status, code, default_message = 405, "method_not_allowed", "Method not allowed."


class Conflict(SyncqError):
    status, code, default_message = 409, "conflict", "Conflict."


class JobAlreadyActive(Conflict):
    code, default_message = "job_already_active", "A job is already pending or running."


class JobExists(Conflict):
    """A credits /create with an `id` a job already has (a retried create whose first try
    landed)."""

    code, default_message = "job_exists", "A job with this id already exists."


class JobFinished(Conflict):
    code, default_message = "job_finished", "The job has already finished."


class JobNotStarted(Conflict):
    """A credits `/finish completed` for a job RunningHub never ran (pending or queued)."""

    code, default_message = "job_not_started", "Only a started job can complete."


class NotRetryable(Conflict):
    """run-integration's `retry_of` names a job that did not fail (or is still live)."""

    code, default_message = "job_not_retryable", "Only a failed or canceled job can be retried."


class PayloadTooLarge(SyncqError):
    status, code, default_message = 413, "payload_too_large", "The body is too large."


class UnsupportedMediaType(SyncqError):
    status, code = 415, "unsupported_media_type"
    default_message = "Send the body as application/json."


class Unprocessable(SyncqError):
    status, code, default_message = 422, "unprocessable", "The request cannot be processed."


class ValidationFailed(Unprocessable):
    code, default_message = "validation_error", "The request is not valid."


class UnknownWorkflow(Unprocessable):
    code, default_message = "unknown_workflow", "This workflow has no price; it cannot be run."


class IdempotencyKeyReused(Unprocessable):
    """A credits /create whose `Idempotency-Key` came with another request in the last 24
    hours: the key names that request's job, not this one's."""

    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was sent with another request."


class IntegrationDisabled(Unprocessable):
    code, default_message = "integration_disabled", "The integration is not enabled."


class TooManyRequests(SyncqError):
    """The caller is over a quota that frees itself; retry later."""

    status, code, default_message = 429, "too_many_requests", "Too many requests; retry later."
    # An event stream's place frees when another stream closes.
    retry_hint_s: ClassVar[int | None] = 5


class TooManyActiveJobs(TooManyRequests):
    """The owner already has the most jobs queued or running (429 rather than 409: nothing
    is wrong with this job, and clients already back off and retry on 429)."""

    code = "too_many_active_jobs"
    default_message = "You already have the most jobs queued or running; wait for one to end."
    retry_hint_s: ClassVar[int | None] = 30  # a render takes minutes


class UpstreamError(SyncqError):
    """A provider or remote service failed; `retryable` says whether trying again may help."""

    status, code, default_message = 502, "upstream_error", "The upstream service failed."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Any = None,
        code: str | None = None,
        retryable: bool = True,
    ) -> None:
        super().__init__(message, details=details, code=code)
        self.retryable = retryable


class UpstreamUnavailable(UpstreamError):
    """A transient upstream failure: HTTP 429 or 5xx, a timeout, or no connection at all.

    The one error the HTTP client's retry loop (`shared.http`) retries; when attempts run
    out the caller gets it, still `retryable`. `upstream_status` is the upstream's HTTP
    status (None when no answer came), `retry_after_s` the wait it asked for (Retry-After),
    and `repeatable` whether sending the same request again cannot make the upstream act
    twice: the connection was never made, or the upstream refused with 429. A request that
    is not idempotent is retried only when it is repeatable.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        upstream_status: int | None = None,
        retry_after_s: float | None = None,
        repeatable: bool = False,
        details: Any = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, details=details, code=code, retryable=True)
        self.upstream_status = upstream_status
        self.retry_after_s = retry_after_s
        self.repeatable = repeatable


class RemoteUnavailable(UpstreamUnavailable):
    """The Gestão Scouter remote kept failing (5xx, 429, timeouts) after every retry."""


class ServiceUnavailable(SyncqError):
    status, code, default_message = 503, "unavailable", "Temporarily unavailable."
    retry_hint_s: ClassVar[int | None] = 5


class DatabaseUnavailable(ServiceUnavailable):
    """PostgreSQL did not answer in time: down, restarting, the pool busy, a statement or
    lock timeout, a deadlock or serialization failure. Nothing was done; retry shortly."""

    code, default_message = "database_unavailable", "The database is unavailable; retry shortly."


class RunningHubNotConfigured(ServiceUnavailable):
    code = "runninghub_not_configured"
    default_message = "AI renders are unavailable: RunningHub is not configured."
    retry_hint_s: ClassVar[int | None] = None  # until an operator configures it: no time to give


class JobInterrupted(Exception):
    """Base of the interruptions a job's runner handles itself (see the tree above)."""


class LeaseLost(JobInterrupted):
    """The job is no longer ours: it was rescued, reset, canceled or finished by another."""


class JobCanceled(JobInterrupted):
    """A cancel was requested; the runner stops at its next heartbeat (between pages)."""


class StopRequested(JobInterrupted):
    """The job must stop and wait for a person: paused or reset by an admin, or a fault
    only a person can fix. `reason` is shown on the job."""

    def __init__(self, reason: str, *, schema_stale: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.schema_stale = schema_stale
