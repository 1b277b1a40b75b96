"""process-integration-job: the worker (a Cloud Task wake-up) and the minute sweep."""

from __future__ import annotations

import flask
import functions_framework

from shared.kinds import process_jobs
from shared.queue.schemas import ProcessRequest
from shared.web import handle


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, ProcessRequest, process_jobs)
