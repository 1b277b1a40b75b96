"""cancel-integration-job: a tenant admin cancels a pending or running job."""

from __future__ import annotations

import flask
import functions_framework

from shared.queue.schemas import JobRef
from shared.queue.service import cancel_job
from shared.web import handle


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, JobRef, cancel_job)
