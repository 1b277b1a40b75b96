"""list-integrations: a tenant member reads the tenant's integrations, each with its newest
job (GET ?tenant_id)."""

from __future__ import annotations

import flask
import functions_framework

from shared.queue.integrations import list_integrations
from shared.queue.schemas import TenantQuery
from shared.web import handle


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, TenantQuery, list_integrations, methods=("GET",))
