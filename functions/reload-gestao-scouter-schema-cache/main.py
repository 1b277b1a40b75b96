"""reload-gestao-scouter-schema-cache: ask the remote to reload its schema cache, re-validate."""

from __future__ import annotations

import flask

from shared.contract import Caller, Endpoint, Function
from shared.gestao.models import REMOTE_ERRORS, ReloadAnswer, TenantRequest
from shared.gestao.service import reload_schema_cache
from shared.web import entry_point, handle

API = Function(
    "reload-gestao-scouter-schema-cache",
    "Make the remote reload its schema cache (after applying the suggested SQL), re-validate.",
    (
        Endpoint(
            summary="Reload the remote schema cache",
            request=TenantRequest,
            action=reload_schema_cache,
            answers={200: ReloadAnswer},
            callers=(Caller.ADMIN, Caller.SERVICE),
            errors=REMOTE_ERRORS,
        ),
    ),
)


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
