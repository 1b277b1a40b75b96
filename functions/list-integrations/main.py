"""list-integrations: a tenant member reads the tenant's integrations, each with its newest
job (GET ?tenant_id)."""

from __future__ import annotations

import flask

from shared.contract import Caller, Endpoint, Function
from shared.errors import Forbidden
from shared.queue.integrations import list_integrations
from shared.queue.models import IntegrationList
from shared.queue.schemas import TenantQuery
from shared.web import entry_point, handle

API = Function(
    "list-integrations",
    "A tenant's integrations, each with its newest job (the dashboard's cards).",
    (
        Endpoint("List integrations", TenantQuery, list_integrations, {200: IntegrationList},
                 (Caller.MEMBER, Caller.SERVICE), errors=(Forbidden,), method="GET"),
    ),
)  # fmt: skip


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
