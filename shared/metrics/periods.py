"""What a (tenant, provider)'s last success is measured against: freshness.

A provider with an enabled schedule (or one paused by failures that go on: the pause does
not make it fresh) expects a success after each of its runs: the runs
are its occurrences (in its zone) plus its spread offset, each given a grace to finish
(METRICS_RUN_GRACE_S, at most half the gap to the run before). On time with a success
since the latest run that should be over, delayed with one since the run before it,
failing otherwise; so a weekday schedule is on time all weekend after Friday's success.
A provider without one expects a success every METRICS_DEFAULT_PERIOD_S.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from uuid import UUID

from shared import cron
from shared.db import Conn
from shared.metrics import store
from shared.metrics.derive import Expectation, every
from shared.settings import get_settings


def expectations(
    conn: Conn, tenant_id: UUID, providers: Iterable[str], now: datetime
) -> Mapping[str, Expectation]:
    """Per provider of the tenant, what its last success is measured against at `now`."""
    settings = get_settings().metrics
    found = dict.fromkeys(providers, every(settings.default_period_s, now))
    for row in store.schedule_periods(conn, tenant_id):
        slug = row["provider_slug"]
        try:
            runs = scheduled(
                row["cron"], row["timezone"], row["offset_s"], now, settings.run_grace_s
            )
        except ValueError:  # a zone the host no longer knows: the tick puts it off too
            continue
        if slug in found and runs is not None:
            found[slug] = runs
    return found


def scheduled(
    cron_expr: str, zone: str, offset_s: int, now: datetime, grace_s: float
) -> Expectation | None:
    """The schedule's two latest runs that should be over at `now` (see the module); None
    for a cron without three occurrences in the past."""
    due = now - timedelta(seconds=offset_s)
    runs = cron.previous_runs(cron_expr, zone, due, 3)
    if len(runs) < 3:
        return None
    latest, before, earlier = runs
    if due - latest < timedelta(seconds=min(grace_s, (latest - before).total_seconds() / 2)):
        latest, before = before, earlier  # the latest run may still be going on
    offset = timedelta(seconds=offset_s)  # a run is its occurrence + the spread offset
    return Expectation((latest - before).total_seconds(), latest + offset, before + offset)
