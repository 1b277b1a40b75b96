"""The metrics' pure parts: window, freshness, rates, export lag, format negotiation, the
collector's rendering, and where shared/metrics sits among the layers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.metrics import derive
from shared.metrics.models import Freshness, OutputFormat
from shared.metrics.periods import scheduled
from shared.metrics.prometheus import Snapshot, render
from shared.metrics.service import wants_openmetrics, wants_prometheus
from tests.unit.test_layers import _graph

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


def test_window_is_whole_utc_days_with_today() -> None:
    since, days = derive.window(NOW, 3)
    assert since == datetime(2026, 3, 8, tzinfo=UTC)
    assert days == [date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)]
    # A clock in another zone is the same instant: 01:00 at UTC-3 is 04:00 UTC.
    local = datetime(2026, 3, 10, 1, 0, tzinfo=timezone(timedelta(hours=-3)))
    assert derive.window(local, 1)[0] == datetime(2026, 3, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age_s", "expected"),
    [
        (0, Freshness.ON_TIME),
        (100, Freshness.ON_TIME),  # exactly one period: still on time
        (100.001, Freshness.DELAYED),
        (200, Freshness.DELAYED),  # exactly two periods: delayed
        (200.001, Freshness.FAILING),
    ],
)
def test_freshness_tiers(age_s: float, expected: Freshness) -> None:
    assert derive.freshness(NOW - timedelta(seconds=age_s), derive.every(100, NOW)) is expected


def test_freshness_without_a_success_is_never() -> None:
    assert derive.freshness(None, derive.every(100, NOW)) is Freshness.NEVER


SUNDAY = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
FRIDAY_0900 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last_success", "expected"),
    [
        (FRIDAY_0900 + timedelta(minutes=2), Freshness.ON_TIME),  # the latest run succeeded
        (FRIDAY_0900 - timedelta(hours=22), Freshness.DELAYED),  # Thursday's: one run short
        (FRIDAY_0900 - timedelta(days=2), Freshness.FAILING),  # Wednesday's: two short
    ],
)
def test_a_weekday_schedule_is_measured_against_its_runs(
    last_success: datetime, expected: Freshness
) -> None:
    """On Sunday a weekday schedule last ran on Friday: the weekend's gap is no failure,
    whatever the gap between the next two runs (Monday, Tuesday) is."""
    runs = scheduled("0 9 * * 1-5", "UTC", 0, SUNDAY, grace_s=900)
    assert runs is not None and runs.period_s == 86_400
    assert derive.freshness(last_success, runs) is expected


def test_a_scheduled_run_has_a_grace_to_finish() -> None:
    today = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
    for now, offset_s, expected in [
        (today + timedelta(minutes=10), 0, Freshness.ON_TIME),  # today's run may go on
        (today + timedelta(minutes=20), 0, Freshness.DELAYED),  # it should be over
        (today + timedelta(minutes=20), 360, Freshness.ON_TIME),  # due at 02:06, 14 min ago
    ]:
        # yesterday's run, 3 minutes after it started (at its occurrence + the offset)
        yesterdays_success = today - timedelta(days=1, seconds=-offset_s - 180)
        runs = scheduled("0 2 * * *", "UTC", offset_s, now, grace_s=900)
        assert runs is not None
        assert derive.freshness(yesterdays_success, runs) is expected, (now, offset_s)
    # A success between an occurrence and its run (02:00 and 02:06) is before the run.
    runs = scheduled("0 2 * * *", "UTC", 360, today + timedelta(hours=1), grace_s=900)
    assert runs is not None and runs.on_time_since == today + timedelta(seconds=360)
    assert derive.freshness(today + timedelta(minutes=3), runs) is Freshness.DELAYED
    # At most half the gap to the run before: a run every 5 minutes has 150 s.
    frequent = scheduled("*/5 * * * *", "UTC", 0, today + timedelta(minutes=3), grace_s=900)
    assert frequent is not None and frequent.on_time_since == today


def test_rates() -> None:
    assert derive.success_rate(0, 0) is None  # only canceled runs, or none
    assert derive.success_rate(3, 1) == 0.75
    assert derive.success_rate(1, 2) == 0.3333
    assert derive.rows_per_s(10, None) is None
    assert derive.rows_per_s(10, 0) is None
    assert derive.rows_per_s(1, 40) == 0.025


def test_export_lag() -> None:
    t = NOW
    assert derive.export_lag_s(None, None, None) is None  # no lead in range
    assert derive.export_lag_s((t, 5), None, t - timedelta(hours=2)) == 7200  # nothing sent
    assert derive.export_lag_s((t, 5), (t - timedelta(days=1), 9), None) == 86400
    assert derive.export_lag_s((t, 5), (t, 5), None) == 0  # caught up
    assert derive.export_lag_s((t, 5), (t, 4), None) == 0  # same instant, a later id: 0 s
    assert derive.export_lag_s((t, 5), (t, 9), None) == 0


@pytest.mark.parametrize(
    ("fmt", "accept", "expected"),
    [
        (None, "", False),
        (None, "*/*", False),
        (None, "application/json", False),
        (None, "text/plain", True),
        (None, "text/plain;version=0.0.4", True),
        (None, "application/json, text/plain;q=0.9", False),
        (None, "text/plain;q=0.9, application/json;q=0.5", True),
        (None, "text/html,application/xhtml+xml,*/*;q=0.8", False),  # a browser
        (None, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5,*/*;q=0.1", True),
        (None, "text/plain;q=banana", False),
        (OutputFormat.JSON, "text/plain", False),
        (OutputFormat.PROMETHEUS, "application/json", True),
    ],
)
def test_format_negotiation(fmt: OutputFormat | None, accept: str, expected: bool) -> None:
    assert wants_prometheus(fmt, accept) is expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5", True),
        ("Application/OpenMetrics-Text;version=1.0.0", True),  # media types ignore case
        ("text/plain;q=0.9, application/openmetrics-text;q=0.5", False),
        ("text/plain, application/openmetrics-text;q=0.1", False),
        ("application/openmetrics-text;q=0, text/plain", False),  # q=0: not acceptable
        ("text/plain", False),
        ("", False),
    ],
)
def test_openmetrics_only_when_ranked_above_the_text_format(accept: str, expected: bool) -> None:
    assert wants_openmetrics(accept) is expected


def snapshot() -> Snapshot:
    return Snapshot(
        days=7,
        queues=[{"kind": "integration", "depth": 2, "oldest_due_age_s": None}],
        finished=[
            {"provider_slug": "onecode", "status": "success", "bucket": 0, "n": 2, "sum_s": 1.5},
            {"provider_slug": "onecode", "status": "success", "bucket": 9, "n": 1, "sum_s": 4000},
            {"provider_slug": "onecode", "status": "canceled", "bucket": None, "n": 4, "sum_s": 0},
        ],
        skew=None,
        alert_failures=None,
    )


def test_render_is_fresh_per_call_and_parses() -> None:
    first, content_type = render(snapshot(), openmetrics=False)
    second, _ = render(snapshot(), openmetrics=False)
    assert first == second  # nothing accumulates between calls (no global registry)
    assert content_type.startswith("text/plain; version=0.0.4")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(first.decode())
        for s in family.samples
    }
    assert samples[("syncq_queue_depth", (("kind", "integration"),))] == 2
    assert samples[("syncq_queue_oldest_due_age_seconds", (("kind", "integration"),))] == 0
    finished = "syncq_integration_jobs_finished"
    assert samples[(finished, (("provider", "onecode"), ("status", "canceled")))] == 4
    assert samples[(finished, (("provider", "onecode"), ("status", "error")))] == 0
    bucket = "syncq_integration_job_duration_seconds_bucket"
    labels = lambda le: (("le", le), ("provider", "onecode"), ("status", "success"))  # noqa: E731
    assert samples[(bucket, labels("1.0"))] == 2
    assert samples[(bucket, labels("1800.0"))] == 2
    assert samples[(bucket, labels("+Inf"))] == 3
    assert not any(k[0] == bucket and ("status", "canceled") in k[1] for k in samples)


def test_metrics_read_other_capabilities_through_sql_only() -> None:
    graph, _ = _graph()
    deps = {dep for module, found in graph.items() if module.startswith("shared.metrics")
            for dep in found}  # fmt: skip
    forbidden = ("shared.queue", "shared.gestao", "shared.credits", "shared.kinds")
    assert not [d for d in deps if d.startswith(forbidden)], deps
    # Nothing imports metrics but its own function.
    users = {m for m, found in graph.items() if any(d.startswith("shared.metrics") for d in found)}
    assert all(m.startswith("shared.metrics") for m in users), users


def test_the_queue_metrics_cover_every_registered_kind() -> None:
    """The function hands the metrics every registered kind's table (through the engine's
    one depth statement), so a new kind is reported without a change here."""
    import importlib.util

    from shared.kinds import KINDS

    path = Path(__file__).resolve().parents[2] / "functions" / "integration-metrics" / "main.py"
    spec = importlib.util.spec_from_file_location("metrics_main", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert {kind.name: kind.table for kind in KINDS} == module.TABLES


@pytest.mark.parametrize(
    ("accept", "prometheus", "openmetrics"),
    [
        ("text/*", True, False),  # any text: the text format
        ("text/*;q=0.9, application/json;q=0.5", True, False),
        ("application/openmetrics-text;q=0.5, text/*", True, False),
        ("text/plain;q=2, application/json", False, False),  # q above 1 is 1: a tie, JSON
        ("text/plain;q=1000, application/json;q=0.999", True, False),
        ("application/openmetrics-text;q=3, text/plain", True, False),  # a tie: 0.0.4 text
    ],
)
def test_a_text_wildcard_asks_for_text_and_q_above_one_counts_as_one(
    accept: str, prometheus: bool, openmetrics: bool
) -> None:
    """RFC 9110 caps q at 1: a client writing q=2 does not outrank a type it listed at 1."""
    assert wants_prometheus(None, accept) is prometheus
    assert wants_openmetrics(accept) is openmetrics
