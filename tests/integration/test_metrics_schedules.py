"""integration-metrics where schedules meet it: a zone the host no longer knows, the run
that freshness counts from (occurrence + spread offset), a skew below zero."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from shared.dispatch import get_dispatcher
from shared.providers import PROVIDERS
from tests.conftest import Configure
from tests.integration.metrics_fixtures import History, add_job, seed_history
from tests.providers_for_tests import ScriptedProvider
from tests.support import (
    bearer,
    call,
    drain,
    function_client,
    rows,
    seed_tenant,
    service_token,
)

pytestmark = pytest.mark.db
FN = "integration-metrics"
SCHEDULE = (
    "INSERT INTO integration_schedules (tenant_id, provider_slug, cron, timezone, spread,"
    " offset_s, next_run_at, due_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


@pytest.fixture
def history(database_url: str, configure: Configure) -> History:
    configure(DATABASE_URL=database_url, METRICS_DEFAULT_PERIOD_S=str(3 * 86400))
    return seed_history(database_url)


def test_a_schedule_whose_zone_the_host_no_longer_knows_does_not_fail_the_report(
    history: History, database_url: str
) -> None:
    """A zone gone from the host's tzdata (the tick puts such a schedule off): that provider
    is measured against the default period, the rest of the report stands."""
    with psycopg.connect(database_url) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        conn.execute(SCHEDULE, [history.acme.id, "onecode", "0 */6 * * *", "America/Gone_Zone",
                                False, 0, now, now])  # fmt: skip
    response = function_client(FN).get(
        "/", query_string={"tenant_id": str(history.acme.id)},
        headers=bearer(history.acme.member_token),
    )  # fmt: skip
    assert response.status_code == 200, response.get_json()
    providers = {p["provider_slug"]: p for p in response.get_json()["providers"]}
    assert providers["onecode"]["period_s"] == 3 * 86400


def test_freshness_counts_from_the_run_not_from_the_bare_occurrence(
    database_url: str, configure: Configure
) -> None:
    """An hourly schedule spread by 240 s runs at occurrence + 4 min. A manual success at
    + 2 min, then the scheduled run failed at + 5 min: no success since the latest run."""
    configure(DATABASE_URL=database_url)
    acme = seed_tenant(database_url, "acme", providers={"acessorias": {}})
    with psycopg.connect(database_url) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        occurrence = (now - timedelta(minutes=30)).replace(second=0, microsecond=0)
        conn.execute(SCHEDULE, [acme.id, "acessorias", f"{occurrence.minute} * * * *", "UTC",
                                True, 240, occurrence + timedelta(hours=1),
                                occurrence + timedelta(hours=1, seconds=240)])  # fmt: skip
        add_job(conn, acme.id, "acessorias", "success", occurrence + timedelta(minutes=2), 1000,
                trigger="manual")  # fmt: skip
        add_job(conn, acme.id, "acessorias", "error", occurrence + timedelta(minutes=5), 1000,
                trigger="schedule", scheduled_for=occurrence,
                scheduled_due_at=occurrence + timedelta(seconds=240))  # fmt: skip
    body = function_client(FN).get(
        "/", query_string={"tenant_id": str(acme.id), "days": 1},
        headers=bearer(acme.member_token),
    ).get_json()  # fmt: skip
    [acessorias] = body["providers"]
    assert acessorias["freshness"] == "delayed", acessorias


def test_a_skew_below_zero_still_makes_valid_openmetrics(
    history: History, database_url: str
) -> None:
    """A job enqueued before its due moment was kept (scheduled_due_at NULL) is measured
    against the schedule's offset now, which may exceed the one it ran with: a skew below
    zero, in the first bucket, and its sum must not go below zero either."""
    with psycopg.connect(database_url) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        conn.execute(SCHEDULE, [history.acme.id, "onecode", "0 * * * *", "UTC", True, 240,
                                now + timedelta(hours=1), now + timedelta(hours=1)])  # fmt: skip
        finished = history.day(2, 15)
        add_job(conn, history.acme.id, "onecode", "success", finished, 1000,
                scheduled_for=finished - timedelta(seconds=61))  # fmt: skip
    response = function_client(FN).get(
        "/", query_string={"days": 7},
        headers={**bearer(service_token()), "Accept": "application/openmetrics-text"},
    )  # fmt: skip
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    skew = families["syncq_schedule_skew_seconds"]
    assert any(s.name.endswith("_gsum") and s.value == 0 for s in skew.samples), skew.samples


def test_a_schedule_paused_by_its_failures_keeps_freshness_failing(
    database_url: str,
    configure: Configure,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An hourly schedule whose last success is five hours old is `failing`; the fifth
    failure in a row pauses it. Measured then against the default period (a day), as if
    it had no schedule, the same integration read `on_time`: the pause made it look healthy."""
    configure(DATABASE_URL=database_url, BACKOFF_BASE_S="0", BACKOFF_CAP_S="0")
    provider = ScriptedProvider(failures=10_000)
    monkeypatch.setitem(PROVIDERS, provider.slug, provider)
    acme = seed_tenant(database_url, "acme", providers={"scripted": {}})
    with psycopg.connect(database_url) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        add_job(conn, acme.id, "scripted", "success", now - timedelta(hours=5), 1000)
        conn.execute("UPDATE tenant_integrations SET consecutive_failures = 4")
        nxt = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        conn.execute(SCHEDULE, [acme.id, "scripted", "0 * * * *", "UTC", False, 0, nxt, nxt])

    def freshness() -> str:
        body = function_client(FN).get(
            "/", query_string={"tenant_id": str(acme.id), "days": 1},
            headers=bearer(acme.member_token),
        ).get_json()  # fmt: skip
        [scripted] = [p for p in body["providers"] if p["provider_slug"] == "scripted"]
        state: str = scripted["freshness"]
        return state

    assert freshness() == "failing"
    run = call("run-integration", {"tenant_id": str(acme.id), "provider_slug": "scripted"},
               token=acme.admin_token)  # fmt: skip
    assert run.status_code == 202, run.get_json()
    drain(get_dispatcher())
    [paused] = rows(database_url, "SELECT enabled, paused_reason FROM integration_schedules")
    assert paused["enabled"] is False and paused["paused_reason"]
    assert freshness() == "failing"
