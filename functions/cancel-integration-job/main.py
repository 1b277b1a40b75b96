"""cancel-integration-job: a tenant admin cancels a pending or running job."""

from __future__ import annotations

import flask

from shared.contract import Caller, Endpoint, Function
from shared.errors import Forbidden, JobFinished, NotFound
from shared.queue.models import Job
from shared.queue.schemas import JobRef
from shared.queue.service import cancel_job
from shared.web import entry_point, handle

API = Function(
    "cancel-integration-job",
    "Cancel an integration job: a pending one at once, a running one at its next heartbeat.",
    (
        Endpoint(
            summary="Cancel a job",
            request=JobRef,
            action=cancel_job,
            answers={200: Job},
            callers=(Caller.ADMIN, Caller.SERVICE),
            errors=(Forbidden, NotFound, JobFinished),
            description="Another tenant's job answers the same 404 as an unknown id.",
        ),
    ),
)


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
