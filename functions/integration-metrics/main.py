"""integration-metrics: a tenant member reads sync metrics (GET ?tenant_id&days&provider_slug);
the service reads the Prometheus exposition (`Accept: text/plain` or `?format=prometheus`)."""

from __future__ import annotations

import flask
import functions_framework

from shared.auth import Principal
from shared.contract import Caller, Endpoint, Function, Result
from shared.errors import Forbidden
from shared.kinds import KINDS
from shared.metrics.models import MetricsQuery, MetricsReport
from shared.metrics.service import integration_metrics
from shared.web import handle

TABLES = {kind.name: kind.table for kind in KINDS}


def _metrics(principal: Principal, query: MetricsQuery) -> Result:
    accept = flask.request.headers.get("Accept", "")
    return integration_metrics(principal, query, accept, TABLES)


API = Function(
    "integration-metrics",
    "Sync metrics per provider and export, with a daily series; the Prometheus text format "
    "for operators (the service, with `Accept: text/plain` or `?format=prometheus`).",
    (
        Endpoint("Sync metrics", MetricsQuery, _metrics, {200: MetricsReport},
                 (Caller.MEMBER, Caller.SERVICE), errors=(Forbidden,), method="GET"),
    ),
)  # fmt: skip


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
