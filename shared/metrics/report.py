"""A tenant's sync metrics as JSON: providers, exports and the daily series."""

from __future__ import annotations

from uuid import UUID

from shared.db import Conn, Row
from shared.metrics import derive, store
from shared.metrics.derive import Expectation
from shared.metrics.models import (
    DayMetrics,
    ExportMetrics,
    MetricsReport,
    ProviderMetrics,
    QueueMetrics,
)
from shared.metrics.periods import expectations
from shared.providers import PROVIDERS


def tenant_report(
    conn: Conn, tenant_id: UUID, days: int, provider_slug: str | None = None
) -> MetricsReport:
    """Every number of one tenant's report, read in one transaction (one clock)."""
    now = store.now(conn)
    since, day_list = derive.window(now, days)
    providers = store.tenant_providers(conn, tenant_id, sorted(PROVIDERS))
    if provider_slug is not None:
        providers = [p for p in providers if p == provider_slug]
    expected = expectations(conn, tenant_id, providers, now)
    stats = store.provider_stats(conn, tenant_id, providers, since)
    series = store.daily_series(conn, tenant_id, providers, since, day_list)
    return MetricsReport(
        tenant_id=tenant_id,
        days=days,
        window_start=since,
        generated_at=now,
        providers=[_provider(row, expected[row["provider_slug"]]) for row in stats],
        exports=[_export(row) for row in store.exports(conn, tenant_id, since)],
        series=[DayMetrics.model_validate(row) for row in series],
    )


def _provider(row: Row, expected: Expectation) -> ProviderMetrics:
    return ProviderMetrics(
        provider_slug=row["provider_slug"],
        runs=row["runs"],
        successes=row["successes"],
        errors=row["errors"],
        canceled=row["canceled"],
        success_rate=derive.success_rate(row["successes"], row["errors"]),
        p50_ms=row["p50_ms"],
        p95_ms=row["p95_ms"],
        last_success_at=row["last_success_at"],
        period_s=expected.period_s,
        freshness=derive.freshness(row["last_success_at"], expected),
        queue=QueueMetrics(depth=row["depth"], oldest_due_age_s=_round(row["oldest_due_age_s"])),
    )


def _export(row: Row) -> ExportMetrics:
    newest = (row["newest_criado"], row["newest_id"]) if row["newest_criado"] else None
    cursor = (row["cursor_criado"], row["cursor_id"]) if row["cursor_criado"] else None
    run_s = row["run_s"] if row["started_at"] is not None else None
    return ExportMetrics(
        id=row["id"],
        status=row["status"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        total_leads=row["total_leads"],
        exported_leads=row["exported_leads"],
        error_leads=row["error_leads"],
        pending_leads=max(row["total_leads"] - row["exported_leads"] - row["error_leads"], 0),
        run_s=_round(run_s),
        rows_per_s=derive.rows_per_s(row["exported_leads"], run_s),
        newest_lead_at=row["newest_criado"],
        cursor_at=row["cursor_criado"],
        lag_s=_round(derive.export_lag_s(newest, cursor, row["oldest_criado"])),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
