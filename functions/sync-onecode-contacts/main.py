"""sync-onecode-contacts: run the OneCode contacts sync now, for a tenant admin or the service.

Body: `{tenant_id | tenant_slug, job_id?}`. Takes the (tenant, provider) slot through the
same unique index as queued jobs (409 when busy) and appears in the job history.
"""

from __future__ import annotations

import flask
import functions_framework

from shared.contract import Caller, Endpoint, Function
from shared.providers import onecode
from shared.queue.models import SYNC_ERRORS, SyncAnswer
from shared.queue.schemas import SyncRequest
from shared.queue.service import sync_action
from shared.web import handle

API = Function(
    "sync-onecode-contacts",
    "Run a tenant's OneCode sync in this request (same slot and history as queued jobs).",
    (
        Endpoint(
            summary="Sync OneCode now",
            request=SyncRequest,
            action=sync_action(onecode.SLUG),
            answers={200: SyncAnswer},
            callers=(Caller.ADMIN, Caller.SERVICE),
            errors=SYNC_ERRORS,
        ),
    ),
)


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
