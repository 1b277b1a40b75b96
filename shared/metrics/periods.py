"""The expected time between two runs of a (tenant, provider): what freshness is measured in.

THE ONE PLACE TO POINT AT THE SCHEDULES. `integration_schedules(tenant_id, provider_slug,
cron, timezone, enabled, next_run_at, ...)` arrives on another branch; until then every
provider gets METRICS_DEFAULT_PERIOD_S. Once it lands, read the tenant's enabled schedules
here (one query by tenant_id), turn each cron into its period (the gap between two
consecutive occurrences after now, in its time zone), and keep the default for providers
without a schedule. Nothing else in shared/metrics needs to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from uuid import UUID

from shared.db import Conn
from shared.settings import get_settings


def expected_periods(conn: Conn, tenant_id: UUID, providers: Iterable[str]) -> Mapping[str, float]:
    """Expected seconds between runs, per provider of the tenant (the default for now)."""
    del conn, tenant_id  # read by the schedules version (see the module's docstring)
    default = get_settings().metrics_default_period_s
    return dict.fromkeys(providers, default)
