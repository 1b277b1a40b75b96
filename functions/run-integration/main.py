"""run-integration: a tenant admin clicks "Executar"; answers 202 with the pending job."""

from __future__ import annotations

import flask

from shared.contract import Caller, Endpoint, Function, Link
from shared.errors import (
    Forbidden,
    IntegrationDisabled,
    JobAlreadyActive,
    NotFound,
    NotRetryable,
)
from shared.queue.models import JobAccepted
from shared.queue.schemas import RunIntegrationRequest
from shared.queue.service import run_integration
from shared.web import entry_point, handle

API = Function(
    "run-integration",
    "Queue an integration sync for a tenant and provider (one live job per pair).",
    (
        Endpoint(
            summary="Queue a sync",
            request=RunIntegrationRequest,
            action=run_integration,
            answers={202: JobAccepted},
            callers=(Caller.ADMIN, Caller.SERVICE),
            errors=(Forbidden, IntegrationDisabled, JobAlreadyActive, NotFound, NotRetryable),
            description="A second click while a job is pending or running: 409 with its id. "
            "`retry_of` runs a failed or canceled job again (404 when it is not this "
            "integration's, 409 `job_not_retryable` when it did not fail).",
            links=(
                Link(
                    "history",
                    "list-integration-jobs",
                    "The tenant's job history, this job first.",
                    parameters={"tenant_id": "$request.body#/tenant_id"},
                ),
                Link(
                    "cancel",
                    "cancel-integration-job",
                    "Cancel the job.",
                    body={"job_id": "$response.body#/job_id"},
                ),
            ),
        ),
    ),
)


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
