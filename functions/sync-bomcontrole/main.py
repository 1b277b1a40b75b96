"""sync-bomcontrole: run the BomControle sync (financial entries, clients) now.

For a tenant admin or the service. Body: `{tenant_id | tenant_slug, job_id?}`. Takes the
(tenant, provider) slot through the same unique index as queued jobs (409 when busy) and
appears in the job history.
"""

from __future__ import annotations

import flask
import functions_framework

from shared.contract import Caller, Endpoint, Function
from shared.providers import bomcontrole
from shared.queue.models import SYNC_ERRORS, SyncAnswer
from shared.queue.schemas import SyncRequest
from shared.queue.service import sync_action
from shared.web import handle

API = Function(
    "sync-bomcontrole",
    "Run a tenant's BomControle sync in this request (same slot and history as queued jobs).",
    (
        Endpoint(
            summary="Sync BomControle now",
            request=SyncRequest,
            action=sync_action(bomcontrole.SLUG),
            answers={200: SyncAnswer},
            callers=(Caller.ADMIN, Caller.SERVICE),
            errors=SYNC_ERRORS,
        ),
    ),
)


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
