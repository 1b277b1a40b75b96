"""integration-job-events: a tenant member's server-sent event stream of job changes."""

from __future__ import annotations

import flask

from shared.contract import Caller, Endpoint, Function, Stream
from shared.errors import Forbidden, TooManyRequests
from shared.queue.events import job_events
from shared.queue.schemas import EventsQuery
from shared.web import entry_point, handle

EVENTS = Stream(
    "text/event-stream",
    "Server-sent events: a snapshot of the live jobs, then each change of the tenant's jobs "
    "as `event: job` with the job as JSON (`id: <job id>:<updated_at>`), `: ping` comments "
    "when idle; the stream ends after `max_seconds` (at most SSE_MAX_SECONDS). Send the last "
    "`id` back as `Last-Event-ID` to also get the jobs that changed in between.",
)

API = Function(
    "integration-job-events",
    "A live stream of a tenant's integration job changes.",
    (
        Endpoint(
            summary="Stream job changes",
            method="GET",
            request=EventsQuery,
            action=job_events,
            answers={200: EVENTS},
            callers=(Caller.MEMBER, Caller.SERVICE),
            errors=(Forbidden, TooManyRequests),  # the open-stream caps
        ),
    ),
)


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
