"""list-integration-jobs: a tenant member reads the job history (GET, query parameters)."""

from __future__ import annotations

import flask
import functions_framework

from shared.queue.schemas import ListJobsQuery
from shared.queue.service import list_jobs
from shared.web import handle


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, ListJobsQuery, list_jobs, methods=("GET",))
