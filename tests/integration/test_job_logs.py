"""Logs that say what went wrong: a job's retries are WARNING, its final failure ERROR, each
with the error code and a scrubbed reason, labelled with the job and tenant; the export's
and the credits' lines carry job_id/tenant_id labels too."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shared.errors import UpstreamError
from shared.providers import PROVIDERS
from shared.providers.base import NoOptions, SyncContext, SyncResult
from tests.support import call, drain, seed_tenant

pytestmark = pytest.mark.db


class Leaky:
    """Always fails, with contact data and a token in its message."""

    slug = "leaky"
    display_name = "Leaky"
    options = NoOptions

    def sync(self, ctx: SyncContext) -> SyncResult:
        raise UpstreamError(
            "refused ana.souza@example.com token eyJhbGciOi.eyJzdWIi.sig", code="provider_refused"
        )


def lines(logs: Callable[[], str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in logs().splitlines() if line.startswith("{")]


def test_a_failing_job_logs_warnings_then_one_error_with_code_and_reason(
    database_url: str, logs: Callable[[], str], recorder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(PROVIDERS, "leaky", Leaky())
    tenant = seed_tenant(database_url, "acme", providers={"leaky": {}})
    started = call("run-integration", {"tenant_id": str(tenant.id), "provider_slug": "leaky"},
                   token=tenant.admin_token)  # fmt: skip
    assert started.status_code == 202
    job_id = started.get_json()["job_id"]
    drain(recorder)
    ours = [
        e for e in lines(logs) if e.get("logging.googleapis.com/labels", {}).get("job_id") == job_id
    ]
    retries = [e for e in ours if e["message"] == "attempt failed, retry scheduled"]
    finals = [e for e in ours if e["message"] == "job failed"]
    assert [e["severity"] for e in retries] == ["WARNING", "WARNING"]
    [final] = finals
    assert final["severity"] == "ERROR" and final["code"] == "provider_refused"
    assert final["reason"].startswith("refused")
    assert final["logging.googleapis.com/labels"]["tenant_id"] == str(tenant.id)
    assert "ana.souza@example.com" not in logs() and "eyJhbGciOi" not in logs()
    assert all(e["severity"] != "ERROR" for e in ours if e is not final)


def test_credit_job_lines_carry_the_job_as_a_label(
    database_url: str, logs: Callable[[], str]
) -> None:
    from tests.credits_support import IMAGE, new_job, new_user, post

    user = new_user(database_url, balance=100)
    job_id = new_job(database_url, user, cost=10)
    body = {"table": IMAGE, "jobId": str(job_id), "status": "failed", "errorMessage": "x"}
    assert post("/finish", body, user.token).status_code == 200
    [line] = [e for e in lines(logs) if e["message"] == "credit job finished"]
    assert line["logging.googleapis.com/labels"]["job_id"] == str(job_id)
    assert line["logging.googleapis.com/labels"]["table"] == IMAGE
