"""integration-job-events: a tenant member's server-sent event stream of job changes."""

from __future__ import annotations

import flask
import functions_framework

from shared.queue.events import job_events
from shared.queue.schemas import EventsQuery
from shared.web import handle


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, EventsQuery, job_events, methods=("GET",))
