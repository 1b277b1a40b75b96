"""Operator metrics from the schedules and the alerts: how late scheduled jobs started
(`integration_jobs.scheduled_for`) and alert deliveries that failed for good
(`alert_outbox`), each read by one named query in metrics.sql."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from shared.db import Conn, Row
from shared.metrics import store


@dataclass(frozen=True)
class AlertFailures:
    """Failed alert deliveries in the window, by label values (e.g. channel)."""

    labels: tuple[str, ...]
    counts: Sequence[tuple[tuple[str, ...], int]]


def schedule_skew(
    conn: Conn, tenant_id: UUID | None, since: datetime, bounds_s: Sequence[float]
) -> list[Row] | None:
    """Start - scheduled time of scheduled jobs per provider, bucketed."""
    return store.schedule_skew(conn, tenant_id, since, bounds_s)


def alert_delivery_failures(
    conn: Conn, tenant_id: UUID | None, since: datetime, provider_slug: str | None = None
) -> AlertFailures | None:
    """Alerts that failed for good in the window, by event (of one provider when given)."""
    rows = store.alert_failures(conn, tenant_id, since, provider_slug)
    return AlertFailures(("event",), [((r["event"],), int(r["n"])) for r in rows])
