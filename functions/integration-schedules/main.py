"""integration-schedules: a tenant's scheduled syncs.

GET ?tenant_id (a member) lists them; PUT {tenant_id, provider_slug, cron, timezone?,
enabled?, missed?, spread?} (an admin) creates or changes one and answers it with its next
runs; DELETE {tenant_id, provider_slug} (an admin) removes one.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from shared.queue.schedules import delete_schedule, list_schedules, put_schedule
from shared.queue.schemas import ScheduleQuery, ScheduleRef, ScheduleRequest
from shared.web import handle_by_method

METHODS: dict[str, tuple[type[Any], Any]] = {
    "GET": (ScheduleQuery, list_schedules),
    "PUT": (ScheduleRequest, put_schedule),
    "DELETE": (ScheduleRef, delete_schedule),
}


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle_by_method(request, METHODS)
