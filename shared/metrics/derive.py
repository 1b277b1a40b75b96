"""Pure definitions of the derived numbers: the window, freshness, rates, the export's lag.

No I/O here: each is unit-tested on its edges (tests/unit/test_metrics_units.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from shared.metrics.models import Freshness

# Duration buckets (seconds) of the Prometheus histograms: provider syncs take seconds to
# minutes, a timeout ends one at the worker's limit (540 s in production).
DURATION_BUCKETS_S = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# Schedule skew buckets (seconds): within a sweep (60 s) is normal, beyond a few is not.
SKEW_BUCKETS_S = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


def window(now: datetime, days: int) -> tuple[datetime, list[date]]:
    """The last `days` UTC calendar days, today included: (start at 00:00 UTC, the days).

    Aligned on days so that the providers' totals equal the sum of the daily series.
    """
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    return datetime.combine(first, time(), UTC), [first + timedelta(days=i) for i in range(days)]


@dataclass(frozen=True)
class Expectation:
    """What freshness measures a last success against: on time when it is at or after
    `on_time_since`, delayed (one run short) at or after `delayed_since`, failing before;
    `period_s` is the gap between two expected runs, as reported."""

    period_s: float
    on_time_since: datetime
    delayed_since: datetime


def every(period_s: float, now: datetime) -> Expectation:
    """A success expected every `period_s` (no schedule): on time when at most one period
    old, delayed up to two."""
    period = timedelta(seconds=period_s)
    return Expectation(period_s, now - period, now - 2 * period)


def freshness(last_success_at: datetime | None, expected: Expectation) -> Freshness:
    """`on_time`, `delayed` or `failing` against the expectation; `never` without a success."""
    if last_success_at is None:
        return Freshness.NEVER
    if last_success_at >= expected.on_time_since:
        return Freshness.ON_TIME
    if last_success_at >= expected.delayed_since:
        return Freshness.DELAYED
    return Freshness.FAILING


def success_rate(successes: int, errors: int) -> float | None:
    """Successes over decided runs (successes + errors); a canceled run decided nothing.
    None when nothing was decided."""
    decided = successes + errors
    return round(successes / decided, 4) if decided else None


def rows_per_s(exported: int, run_s: float | None) -> float | None:
    """Leads exported per second of the export's run; None before it ran."""
    if run_s is None or run_s <= 0:
        return None
    return round(exported / run_s, 3)


def export_lag_s(
    newest: tuple[datetime, int] | None,
    cursor: tuple[datetime, int] | None,
    oldest_criado: datetime | None,
) -> float | None:
    """How far, in lead creation time, the export trails the newest lead of its range.

    The export walks its range's leads in (criado, id) order and checkpoints the last
    (criado, id) sent (`cursor`). The lag is the newest lead's `criado` minus the cursor's:
    0 when no lead of the range lies after the cursor (caught up); before the first
    checkpoint, the newest minus the oldest lead of the range (all of it waits). None when
    the range holds no lead. A lead edited after it was sent (`updated_at`) is not sent
    again by the same export, so it does not count: the lag is about creation order.
    """
    if newest is None:
        return None
    if cursor is None:
        return max((newest[0] - (oldest_criado or newest[0])).total_seconds(), 0.0)
    if newest <= cursor:
        return 0.0
    return max((newest[0] - cursor[0]).total_seconds(), 0.0)
