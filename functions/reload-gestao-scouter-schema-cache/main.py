"""reload-gestao-scouter-schema-cache: ask the remote to reload its schema cache, re-validate."""

from __future__ import annotations

import flask
import functions_framework

from shared.gestao.models import TenantRequest
from shared.gestao.service import reload_schema_cache
from shared.web import handle


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, TenantRequest, reload_schema_cache)
