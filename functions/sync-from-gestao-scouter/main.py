"""sync-from-gestao-scouter: the remote trigger's webhook (`?tenant=<slug>`, shared secret).

Answers `{action: upserted | skipped_loop | skipped_stale}`.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from shared.auth import Principal
from shared.gestao.models import ReverseSyncRequest
from shared.gestao.reverse import receive, tenant_slug, verify_webhook
from shared.web import handle


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    slug = tenant_slug(request)

    def _receive(principal: Principal, req: ReverseSyncRequest) -> dict[str, Any]:
        return receive(principal, req, slug)

    return handle(request, ReverseSyncRequest, _receive, authenticate_with=verify_webhook)
