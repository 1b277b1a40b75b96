"""process-integration-job: the worker (a Cloud Task wake-up) and the minute sweep."""

from __future__ import annotations

import flask

from shared.contract import Caller, Endpoint, Function
from shared.errors import Forbidden
from shared.kinds import process_jobs
from shared.queue.models import ProcessAnswer
from shared.queue.schemas import ProcessRequest
from shared.web import entry_point, handle

API = Function(
    "process-integration-job",
    "The worker: `{job_id}` is a Cloud Task's wake-up, `{}` the minute sweep.",
    (
        Endpoint(
            summary="Run due jobs",
            request=ProcessRequest,
            action=process_jobs,
            answers={200: ProcessAnswer},
            callers=(Caller.SERVICE,),
            errors=(Forbidden,),
        ),
    ),
)


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
