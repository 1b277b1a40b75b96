"""sync-bomcontrole: run the BomControle sync (financial entries, clients) now.

For a tenant admin or the service.

Takes the (tenant, provider) slot through the same unique index as queued jobs (409 when
busy) and appears in the job history. Body: `{tenant_id, job_id?}`.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from shared.auth import Principal
from shared.contract import Caller, Endpoint, Function
from shared.providers import bomcontrole
from shared.queue.models import SYNC_ERRORS, SyncAnswer
from shared.queue.schemas import SyncByIdRequest
from shared.queue.service import run_direct
from shared.web import handle


def _sync(principal: Principal, req: SyncByIdRequest) -> dict[str, Any]:
    return run_direct(principal, bomcontrole.SLUG, tenant_id=req.tenant_id, job_id=req.job_id)


API = Function(
    "sync-bomcontrole",
    "Run a tenant's BomControle sync in this request (same slot and history as queued jobs).",
    (
        Endpoint(
            summary="Sync BomControle now",
            request=SyncByIdRequest,
            action=_sync,
            answers={200: SyncAnswer},
            callers=(Caller.ADMIN, Caller.SERVICE),
            errors=SYNC_ERRORS,
        ),
    ),
)


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
