"""sync-acessorias: run the Acessórias sync now, for a tenant admin or the service.

Takes the (tenant, provider) slot through the same unique index as queued jobs (409 when
busy) and appears in the job history.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from shared.auth import Principal
from shared.contract import Caller, Endpoint, Function
from shared.providers import acessorias
from shared.queue.models import SYNC_ERRORS, SyncAnswer
from shared.queue.schemas import SyncBySlugRequest
from shared.queue.service import run_direct
from shared.web import handle


def _sync(principal: Principal, req: SyncBySlugRequest) -> dict[str, Any]:
    return run_direct(principal, acessorias.SLUG, tenant_slug=req.tenant_slug, job_id=req.job_id)


API = Function(
    "sync-acessorias",
    "Run a tenant's Acessórias sync in this request (same slot and history as queued jobs).",
    (
        Endpoint(
            summary="Sync Acessórias now",
            request=SyncBySlugRequest,
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
