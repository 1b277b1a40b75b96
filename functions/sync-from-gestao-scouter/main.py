"""sync-from-gestao-scouter: the remote trigger's webhook (`?tenant=<slug>`, shared secret).

Answers `{action: upserted | skipped_loop | skipped_stale}`.
"""

from __future__ import annotations

from typing import Any

import flask

from shared.auth import Principal
from shared.contract import Caller, Endpoint, Function, Scheme
from shared.errors import Forbidden, IntegrationDisabled
from shared.gestao.models import ReverseSyncAnswer, ReverseSyncQuery, ReverseSyncRequest
from shared.gestao.reverse import receive, tenant_slug, verify_webhook
from shared.web import entry_point, handle


def _receive(principal: Principal, req: ReverseSyncRequest) -> dict[str, Any]:
    return receive(principal, req, tenant_slug(flask.request))


API = Function(
    "sync-from-gestao-scouter",
    "Gestão Scouter's trigger sends back a lead changed on its side.",
    (
        Endpoint(
            summary="Receive a remote lead",
            request=ReverseSyncRequest,
            query=ReverseSyncQuery,
            action=_receive,
            answers={200: ReverseSyncAnswer},
            callers=(Caller.WEBHOOK,),
            authenticate=verify_webhook,
            scheme=Scheme.WEBHOOK_SECRET,
            errors=(Forbidden, IntegrationDisabled),
            description=(
                "A lead whose `sync_source` is ours is skipped (the loop breaker); one older "
                "than the local row is skipped too; otherwise it is upserted. A tenant whose "
                "Gestão Scouter integration is disabled takes no edits (422)."
            ),
        ),
    ),
)


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
