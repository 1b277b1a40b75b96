"""list-integration-jobs: a tenant member reads the job history (GET, query parameters)."""

from __future__ import annotations

import flask

from shared.contract import Caller, Endpoint, Function, Link
from shared.errors import Forbidden
from shared.queue.models import JobPage
from shared.queue.schemas import ListJobsQuery
from shared.queue.service import list_jobs
from shared.web import entry_point, handle

API = Function(
    "list-integration-jobs",
    "A tenant's integration job history, newest first, page by page.",
    (
        Endpoint(
            summary="List jobs",
            method="GET",
            request=ListJobsQuery,
            action=list_jobs,
            answers={200: JobPage},
            callers=(Caller.MEMBER, Caller.SERVICE),
            errors=(Forbidden,),
            links=(
                Link(
                    "cancel_newest",
                    "cancel-integration-job",
                    "Cancel the newest job of the page.",
                    body={"job_id": "$response.body#/jobs/0/id"},
                ),
            ),
        ),
    ),
)


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
