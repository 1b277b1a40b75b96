"""run-integration: a tenant admin clicks "Executar"; answers 202 with the pending job."""

from __future__ import annotations

import flask
import functions_framework

from shared.queue.schemas import RunIntegrationRequest
from shared.queue.service import run_integration
from shared.web import handle


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, RunIntegrationRequest, run_integration, status=202)
