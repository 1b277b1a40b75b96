"""my-tenants: a signed-in user's tenants and their role in each (GET, no parameters)."""

from __future__ import annotations

import flask
import functions_framework

from shared.tenancy import MyTenantsQuery, my_tenants
from shared.web import handle


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, MyTenantsQuery, my_tenants, methods=("GET",))
