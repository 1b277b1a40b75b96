"""integration-schedules: a tenant's scheduled syncs.

GET ?tenant_id (a member) lists them; PUT {tenant_id, provider_slug, cron, timezone?,
enabled?, missed?, spread?} (an admin) creates or changes one and answers it with its next
runs; DELETE {tenant_id, provider_slug} (an admin) removes one.
"""

from __future__ import annotations

import flask

from shared.contract import Caller, Endpoint, Function
from shared.errors import Forbidden, NotFound
from shared.queue.models import Schedule, ScheduleDeleted, ScheduleList
from shared.queue.schedules import delete_schedule, list_schedules, put_schedule
from shared.queue.schemas import ScheduleQuery, ScheduleRef, ScheduleRequest
from shared.web import entry_point, handle

READ = (Caller.MEMBER, Caller.SERVICE)
WRITE = (Caller.ADMIN, Caller.SERVICE)

API = Function(
    "integration-schedules",
    "Scheduled syncs: a cron in an IANA zone per integration, and what to do with missed runs.",
    (
        Endpoint("List the tenant's schedules", ScheduleQuery, list_schedules,
                 {200: ScheduleList}, READ, errors=(Forbidden,), method="GET"),
        Endpoint("Create or change a schedule", ScheduleRequest, put_schedule,
                 {200: Schedule}, WRITE, errors=(Forbidden, NotFound), method="PUT",
                 description="A bad cron or zone is 422 naming the field; the answer lists "
                 "the next five runs."),
        Endpoint("Delete a schedule", ScheduleRef, delete_schedule, {200: ScheduleDeleted},
                 WRITE, errors=(Forbidden, NotFound), method="DELETE"),
    ),
)  # fmt: skip


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
