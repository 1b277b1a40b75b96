"""my-tenants: a signed-in user's tenants and their role in each (GET, no parameters)."""

from __future__ import annotations

import flask

from shared.contract import Caller, Endpoint, Function, Link
from shared.errors import Forbidden
from shared.tenancy import MyTenants, MyTenantsQuery, my_tenants
from shared.web import entry_point, handle

FIRST = "$response.body#/tenants/0/id"

API = Function(
    "my-tenants",
    "The signed-in user's tenants and role in each (the service belongs to none: 403).",
    (
        Endpoint("My tenants", MyTenantsQuery, my_tenants, {200: MyTenants},
                 (Caller.OWNER,), errors=(Forbidden,), method="GET", links=(
                     Link("integrations", "list-integrations", "The first tenant's integrations.",
                          parameters={"tenant_id": FIRST}),
                     Link("run", "run-integration", "Queue a sync in the first tenant.",
                          body={"tenant_id": FIRST}),
                     Link("export", "export-to-gestao-scouter-batch:post",
                          "Export the first tenant's leads.",
                          body={"tenant_id": FIRST, "action": "start"}),
                 )),
    ),
)  # fmt: skip


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
