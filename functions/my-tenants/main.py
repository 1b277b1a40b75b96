"""my-tenants: a signed-in user's tenants and their role in each (GET, no parameters)."""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from shared.contract import Caller, Endpoint, Function
from shared.errors import Forbidden
from shared.tenancy import MyTenantsQuery, my_tenants
from shared.web import handle

API = Function(
    "my-tenants",
    "The signed-in user's tenants and role in each (the service belongs to none: 403).",
    (
        Endpoint("My tenants", MyTenantsQuery, my_tenants, {200: dict[str, Any]},
                 (Caller.OWNER,), errors=(Forbidden,), method="GET"),
    ),
)  # fmt: skip


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
