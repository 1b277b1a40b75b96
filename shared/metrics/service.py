"""integration-metrics: a tenant's report as JSON (members, under RLS), or the Prometheus
exposition (the service only) when the request asks for it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from uuid import UUID

import flask

from shared import db
from shared.auth import Principal
from shared.errors import Forbidden, ValidationFailed
from shared.jobs.table import JobTable
from shared.metrics.models import MetricsQuery, MetricsReport, OutputFormat
from shared.metrics.prometheus import read_snapshot, render
from shared.metrics.report import tenant_report
from shared.tenancy import Role, require_role

_PROMETHEUS_TYPES = ("text/plain", "text/*", "application/openmetrics-text")
_JSON_TYPES = ("application/json", "application/*", "*/*")


def integration_metrics(
    principal: Principal, req: MetricsQuery, accept: str, tables: Mapping[str, JobTable]
) -> MetricsReport | flask.Response:
    """The report, in the form the request asks for; `tables` are the registered job kinds'
    (kind name -> table), whose queues the Prometheus form reports."""
    if wants_prometheus(req.format, accept):
        if not principal.is_service:
            raise Forbidden("Only the service may read the Prometheus metrics.")
        with snapshot_transaction(None) as conn:
            snapshot = read_snapshot(conn, tables, req.tenant_id, req.days, req.provider_slug)
        body, content_type = render(snapshot, openmetrics=wants_openmetrics(accept))
        response = flask.Response(body, status=200, content_type=content_type)
        response.headers["Cache-Control"] = "no-store"
        return response
    if req.tenant_id is None:
        raise ValidationFailed(
            details=[{"loc": ["tenant_id"], "type": "missing", "message": "Field required"}]
        )
    with db.transaction() as conn:
        require_role(conn, principal, req.tenant_id, Role.MEMBER)
    with snapshot_transaction(principal.user_id) as conn:
        return tenant_report(conn, req.tenant_id, req.days, req.provider_slug)


def wants_prometheus(fmt: OutputFormat | None, accept: str) -> bool:
    """`format` decides when given; else the Accept header, when it ranks Prometheus text
    (text/plain, OpenMetrics) above JSON. Ties, `*/*` and no header mean JSON."""
    if fmt is not None:
        return fmt is OutputFormat.PROMETHEUS
    ranks = qualities(accept)
    prometheus = max((ranks.get(t, 0.0) for t in _PROMETHEUS_TYPES), default=0.0)
    return prometheus > max((ranks.get(t, 0.0) for t in _JSON_TYPES), default=0.0)


def wants_openmetrics(accept: str) -> bool:
    """OpenMetrics only when the Accept header ranks it above the 0.0.4 text format."""
    ranks = qualities(accept)
    plain = max(ranks.get("text/plain", 0.0), ranks.get("text/*", 0.0), ranks.get("*/*", 0.0))
    return ranks.get("application/openmetrics-text", 0.0) > plain


def qualities(accept: str) -> dict[str, float]:
    """Each media type of an Accept header (lower-cased) with its q (RFC 9110; q=0: not
    acceptable), the highest when one is listed twice."""
    ranks: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = max(0.0, min(1.0, float(value)))
                except ValueError:
                    quality = 0.0
        if media:
            ranks[media] = max(ranks.get(media, 0.0), quality)
    return ranks


@contextmanager
def snapshot_transaction(user_id: UUID | None) -> Iterator[db.Conn]:
    """One read-only transaction on one snapshot, so the report's numbers agree with each
    other (the providers' totals are the series' sums); as the user under RLS when given."""
    with db.snapshot(user_id) as conn:
        # A plan for these values, every time: a generic plan (psycopg prepares a statement
        # after its 5th run) cannot see the tenant or the window's start, and may read a
        # tenant's whole history (at 1M jobs: the daily series in 24 ms instead of 2).
        # Planning costs about a millisecond; these run a few times a minute.
        conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        # No JIT (on by default): the recursive scans' estimates pass jit_above_cost, and
        # compiling cost ~150 ms (bench_metrics, all tenants) for statements that run in a few.
        conn.execute("SET LOCAL jit = off")
        yield conn
