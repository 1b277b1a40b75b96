"""The expected time between two runs of a (tenant, provider): what freshness is measured in.

A provider with an enabled schedule expects the gap between two of its occurrences (after
now, in its zone); one without expects METRICS_DEFAULT_PERIOD_S.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from uuid import UUID

from shared import cron
from shared.db import Conn
from shared.metrics import store
from shared.settings import get_settings


def expected_periods(conn: Conn, tenant_id: UUID, providers: Iterable[str]) -> Mapping[str, float]:
    """Expected seconds between runs, per provider of the tenant."""
    periods = dict.fromkeys(providers, get_settings().metrics.default_period_s)
    now = datetime.now(UTC)
    for row in store.schedule_periods(conn, tenant_id):
        if row["provider_slug"] in periods:
            first, second = cron.next_runs(row["cron"], row["timezone"], now, 2)
            periods[row["provider_slug"]] = (second - first).total_seconds()
    return periods
