"""integration-metrics: a tenant member reads sync metrics (GET ?tenant_id&days&provider_slug);
the service reads the Prometheus exposition (`Accept: text/plain` or `?format=prometheus`)."""

from __future__ import annotations

import flask
import functions_framework

from shared.auth import Principal
from shared.kinds import KINDS
from shared.metrics.models import MetricsQuery
from shared.metrics.service import integration_metrics
from shared.web import Result, handle

TABLES = {kind.name: kind.table for kind in KINDS}


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    accept = request.headers.get("Accept", "")

    def action(principal: Principal, query: MetricsQuery) -> Result:
        return integration_metrics(principal, query, accept, TABLES)

    return handle(request, MetricsQuery, action, methods=("GET",))
