"""Operator metrics whose data arrives with other branches: each is one hook that answers
None (no metric) until its table or column exists.

* `schedule_skew` reads `integration_jobs.scheduled_for` (the schedules branch adds it) as
  soon as the column exists; no change needed when it lands (optionally read the column
  directly instead of through to_jsonb in metrics.sql once it is in every database).
* `alert_delivery_failures` is where the alerts branch plugs in `alert_outbox`: this tree
  cannot know its columns, so it answers None; implement it with a named query in
  metrics.sql returning failed deliveries in the window (e.g. by channel).
"""

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
    """HOOK (schedules branch): start - scheduled time per provider, bucketed; None while
    integration_jobs has no `scheduled_for` column."""
    if not store.has_column(conn, "integration_jobs", "scheduled_for"):
        return None
    return store.schedule_skew(conn, tenant_id, since, bounds_s)


def alert_delivery_failures(
    conn: Conn, tenant_id: UUID | None, since: datetime
) -> AlertFailures | None:
    """HOOK (alerts branch): failed deliveries from `alert_outbox`; None until it exists."""
    del conn, tenant_id, since  # read by the alerts version (see the module's docstring)
    return None
