"""A Python mirror of the browser's JobManager, speaking the queue manager's HTTP contract.

    create_job      POST /create  {table, workflowId, inputs?, sessionId?} -> 201, the
                    pending job priced by the server (it was an INSERT through Supabase's
                    REST API; the same rules apply: own jobs only, no cost sent)
    start_job       POST /start   {table, jobId}
    mark_job_failed POST /finish  {table, jobId, status: "failed", errorMessage}
    cancel_job      POST /cancel  {table, jobId}
    check           POST /check   {} or {table, jobId}

There is no direct-UPDATE fallback any more: the user role cannot update job rows, so a
failed job always goes through /finish, which refunds once.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any
from uuid import UUID

import httpx

from shared.credits.models import FUNCTION


class QueueManagerError(Exception):
    """The queue manager answered with an error envelope."""

    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.code = str(error.get("code", "unknown"))
        self.details = error.get("details")
        super().__init__(f"HTTP {status} {self.code}")


class JobManager:
    """One user's (or the service's) client. `http` may carry any transport (tests: WSGI)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        http: httpx.Client | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._own_http = http is None
        self._http = http or httpx.Client(timeout=timeout_s)
        self._base = f"{base_url.rstrip('/')}"
        self._headers = {"Authorization": f"Bearer {token}"}

    def __enter__(self) -> JobManager:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_http:
            self._http.close()

    def create_job(
        self,
        table: str,
        *,
        workflow_id: str,
        inputs: list[dict[str, Any]] | None = None,
        session_id: str | None = None,
        user_id: UUID | None = None,
    ) -> UUID:
        """Create a new pending job of this user's; its id.

        The price is not ours to choose: the server sets credits_cost from credit_prices
        and refuses a workflow without a price (422 unknown_workflow).
        """
        body: dict[str, Any] = {"table": table, "workflowId": workflow_id, "inputs": inputs or []}
        if session_id is not None:
            body["sessionId"] = session_id
        if user_id is not None:
            body["userId"] = str(user_id)
        return UUID(self._post("/create", body)["id"])

    def start_job(self, table: str, job_id: UUID) -> dict[str, Any]:
        """Ask the queue manager to debit and start (or queue) the job."""
        return self._post("/start", {"table": table, "jobId": str(job_id)})

    def mark_job_failed(self, table: str, job_id: UUID, error_message: str) -> dict[str, Any]:
        """The browser's markJobFailed: through /finish, so the credits come back."""
        body = {"table": table, "jobId": str(job_id), "status": "failed"}
        return self._post("/finish", {**body, "errorMessage": error_message})

    def cancel_job(self, table: str, job_id: UUID) -> dict[str, Any]:
        """Cancel a job (refunded)."""
        return self._post("/cancel", {"table": table, "jobId": str(job_id)})

    def check(self, table: str | None = None, job_id: UUID | None = None) -> dict[str, Any]:
        """Slots, queue length and this user's queue positions."""
        body = {} if table is None else {"table": table, "jobId": str(job_id)}
        return self._post("/check", body)

    def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._http.post(f"{self._base}{route}", json=body, headers=self._headers)
        data = response.json()
        if response.status_code >= 400:
            raise QueueManagerError(response.status_code, data)
        result: dict[str, Any] = data
        return result


def function_url(functions_base_url: str) -> str:
    """The queue manager's base URL under a functions base URL."""
    return f"{functions_base_url.rstrip('/')}/{FUNCTION}"
