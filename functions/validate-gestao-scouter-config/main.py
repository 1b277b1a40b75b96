"""validate-gestao-scouter-config: named checks of a tenant's Gestão Scouter connection."""

from __future__ import annotations

import flask

from shared.contract import Caller, Endpoint, Function
from shared.errors import Forbidden
from shared.gestao.config_check import validate_config
from shared.gestao.models import ConfigAnswer, TenantRequest
from shared.web import entry_point, handle

API = Function(
    "validate-gestao-scouter-config",
    "Named checks of a tenant's Gestão Scouter connection, each with a plain-language detail.",
    (
        Endpoint(
            summary="Check the connection",
            request=TenantRequest,
            action=validate_config,
            answers={200: ConfigAnswer},
            callers=(Caller.ADMIN, Caller.SERVICE),
            errors=(Forbidden,),
            description="A failed check is an answer (`ok: false`), not an error.",
        ),
    ),
)


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
