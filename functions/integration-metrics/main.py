"""integration-metrics: a tenant member reads sync metrics (GET ?tenant_id&days&provider_slug);
the service reads the Prometheus exposition (`Accept: text/plain` or `?format=prometheus`)."""

from __future__ import annotations

import flask

from shared.auth import Principal
from shared.contract import Caller, Endpoint, Function, Negotiated, Result, Stream
from shared.errors import Forbidden
from shared.kinds import KINDS
from shared.metrics.models import MetricsQuery, MetricsReport
from shared.metrics.service import integration_metrics
from shared.web import entry_point, handle

TABLES = {kind.name: kind.table for kind in KINDS}


def _metrics(principal: Principal, query: MetricsQuery) -> Result:
    accept = flask.request.headers.get("Accept", "")
    return integration_metrics(principal, query, accept, TABLES)


REPORT = Negotiated(
    MetricsReport,
    (
        Stream("text/plain", "the Prometheus text format 0.0.4 (the service only)."),
        Stream(
            "application/openmetrics-text",
            "OpenMetrics 1.0, when the Accept header ranks it first (the service only).",
        ),
    ),
)

API = Function(
    "integration-metrics",
    "Sync metrics per provider and export, with a daily series; the Prometheus text format "
    "for operators (the service, with `Accept: text/plain` or `?format=prometheus`).",
    (
        Endpoint("Sync metrics", MetricsQuery, _metrics, {200: REPORT},
                 (Caller.MEMBER, Caller.SERVICE), errors=(Forbidden,), method="GET",
                 description="The JSON report needs `tenant_id` (422 without it); the "
                 "Prometheus form (`format=prometheus`, or `Accept: text/plain` without "
                 "`format`) is the service's alone (403 for a user) and covers every tenant "
                 "unless `tenant_id` names one."),
    ),
)  # fmt: skip


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
