"""validate-gestao-scouter-config: named checks of a tenant's Gestão Scouter connection."""

from __future__ import annotations

import flask
import functions_framework

from shared.gestao.config_check import validate_config
from shared.gestao.models import TenantRequest
from shared.web import handle


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, TenantRequest, validate_config)
