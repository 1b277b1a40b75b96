"""The operators' form: Prometheus text exposition of the queue and the jobs in the window.

One request = one snapshot read in one transaction, turned into metric families by a
custom collector registered in a fresh CollectorRegistry (no state shared between warm
invocations; prometheus_client's global registry is never used). Outcomes and durations
describe the rows in the window, so they can go down: they are gauges and gauge
histograms (read them as they are; `rate()` means nothing on them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)

from shared.db import Conn, Row
from shared.jobs.table import JobTable
from shared.metrics import derive, hooks, store

FINAL_STATUSES = ("success", "error", "canceled")


@dataclass(frozen=True)
class Snapshot:
    """Everything one exposition shows, as read from the database."""

    days: int
    queues: list[Row]  # kind, depth, oldest_due_age_s
    finished: list[Row]  # provider_slug, status, bucket, n, sum_s
    skew: list[Row] | None  # provider_slug, bucket, n, sum_s; None = no scheduled_for yet
    alert_failures: hooks.AlertFailures | None


def read_snapshot(
    conn: Conn,
    tables: Mapping[str, JobTable],
    tenant_id: UUID | None,
    days: int,
    provider_slug: str | None = None,
) -> Snapshot:
    """The snapshot for every tenant (tenant_id None) or one; the per-provider metrics of
    one provider when provider_slug is given (the queue's are per kind: all of them)."""
    since, _ = derive.window(store.now(conn), days)
    finished = store.finished_by_provider(conn, tenant_id, since, derive.DURATION_BUCKETS_S)
    skew = hooks.schedule_skew(conn, tenant_id, since, derive.SKEW_BUCKETS_S)
    return Snapshot(
        days=days,
        queues=store.queue_by_kind(conn, tables, tenant_id),
        finished=_of_provider(finished, provider_slug),
        skew=None if skew is None else _of_provider(skew, provider_slug),
        alert_failures=hooks.alert_delivery_failures(conn, tenant_id, since, provider_slug),
    )


def _of_provider(rows: list[Row], provider_slug: str | None) -> list[Row]:
    if provider_slug is None:
        return rows
    return [r for r in rows if r["provider_slug"] == provider_slug]


class SnapshotCollector:
    """A prometheus_client collector over one snapshot."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot
        yield from _queue_metrics(snap.queues)
        yield GaugeMetricFamily(
            "syncq_metrics_window_days",
            "UTC calendar days (today included) the window-based metrics cover.",
            value=snap.days,
        )
        yield from _finished_metrics(snap.finished)
        if snap.skew is not None:
            yield _histogram(
                "syncq_schedule_skew_seconds",
                "Actual start minus scheduled time of first attempts finished in the window.",
                ("provider",),
                _bucketed(snap.skew, ("provider_slug",)),
                derive.SKEW_BUCKETS_S,
            )
        if snap.alert_failures is not None:
            failures = GaugeMetricFamily(
                "syncq_alert_delivery_failures",
                "Alert deliveries that failed in the window.",
                labels=snap.alert_failures.labels,
            )
            for values, count in snap.alert_failures.counts:
                failures.add_metric(values, count)
            yield failures


def render(snapshot: Snapshot, *, openmetrics: bool) -> tuple[bytes, str]:
    """(body, content type): OpenMetrics 1.0, or the Prometheus text format 0.0.4."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    encoder, content_type = choose_encoder(
        "application/openmetrics-text; version=1.0.0" if openmetrics else ""
    )
    return encoder(registry), content_type


def _queue_metrics(queues: Iterable[Row]) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "syncq_queue_depth", "Live jobs (pending + running) per job kind.", labels=["kind"]
    )
    oldest = GaugeMetricFamily(
        "syncq_queue_oldest_due_age_seconds",
        "How long the oldest pending job that is due has waited (0: none due), per job kind.",
        labels=["kind"],
    )
    for row in queues:
        depth.add_metric([row["kind"]], row["depth"])
        oldest.add_metric([row["kind"]], row["oldest_due_age_s"] or 0.0)
    yield depth
    yield oldest


def _finished_metrics(rows: Sequence[Row]) -> Iterator[Metric]:
    outcomes = GaugeMetricFamily(
        "syncq_integration_jobs_finished",
        "Integration jobs that reached a final state in the window, per provider and outcome.",
        labels=["provider", "status"],
    )
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for provider in sorted({r["provider_slug"] for r in rows}):
        for status in FINAL_STATUSES:
            totals[(provider, status)] = 0
    for row in rows:
        totals[(row["provider_slug"], row["status"])] += row["n"]
    for (provider, status), count in sorted(totals.items()):
        outcomes.add_metric([provider, status], count)
    yield outcomes
    yield _histogram(
        "syncq_integration_job_duration_seconds",
        "Execution time of the integration jobs finished in the window.",
        ("provider", "status"),
        _bucketed(rows, ("provider_slug", "status")),
        derive.DURATION_BUCKETS_S,
    )


Bucketed = dict[tuple[str, ...], tuple[dict[int, int], float]]


def _bucketed(rows: Iterable[Row], keys: Sequence[str]) -> Bucketed:
    """Per label values: (count per bucket index, sum of seconds); untimed rows left out."""
    out: Bucketed = {}
    for row in rows:
        if row["bucket"] is None:
            continue
        key = tuple(str(row[k]) for k in keys)
        counts, total = out.get(key, ({}, 0.0))
        counts[row["bucket"]] = counts.get(row["bucket"], 0) + row["n"]
        out[key] = (counts, total + row["sum_s"])
    return out


def _histogram(
    name: str,
    documentation: str,
    labels: Sequence[str],
    data: Bucketed,
    bounds: Sequence[float],
) -> GaugeHistogramMetricFamily:
    family = GaugeHistogramMetricFamily(name, documentation, labels=labels)
    for values, (counts, total) in sorted(data.items()):
        cumulative, buckets = 0, []
        for index, le in enumerate([*(str(float(b)) for b in bounds), "+Inf"]):
            cumulative += counts.get(index, 0)
            buckets.append((le, float(cumulative)))
        family.add_metric(list(values), buckets, total)
    return family
