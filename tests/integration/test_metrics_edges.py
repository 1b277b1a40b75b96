"""Edges of integration-metrics the main history does not reach: percentiles on a history
long enough for p95 to differ from its neighbours, and the Prometheus filters applied to
every per-provider family."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Configure
from tests.integration.metrics_fixtures import add_job, db_now
from tests.support import bearer, function_client, seed_tenant, service_token

pytestmark = pytest.mark.db


def test_p50_and_p95_are_the_nearest_ranks_of_twenty_runs(
    database_url: str, configure: Configure
) -> None:
    configure(DATABASE_URL=database_url)
    tenant = seed_tenant(database_url, "percentis")
    finished = db_now(database_url) - timedelta(seconds=30)  # today (not near midnight)
    with psycopg.connect(database_url) as conn:
        for i in range(1, 21):  # 100 ms .. 2000 ms, in shuffled order
            add_job(conn, tenant.id, "acessorias", "success", finished, ((i * 7) % 20 + 1) * 100)
        add_job(conn, tenant.id, "acessorias", "canceled", finished, None)  # untimed: not ranked
    query: dict[str, Any] = {"tenant_id": str(tenant.id), "days": 1}
    response = function_client("integration-metrics").get(
        "/", query_string=query, headers=bearer(tenant.member_token)
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    [provider] = body["providers"]
    assert (provider["runs"], provider["successes"], provider["canceled"]) == (21, 20, 1)
    # nearest rank over 20 values: p50 is the 10th, p95 the 19th (p90 would be the 18th)
    assert (provider["p50_ms"], provider["p95_ms"]) == (1000, 1900)
    [today] = body["series"]
    assert (today["runs"], today["p95_ms"]) == (21, 1900)


def test_the_schedule_skew_follows_the_provider_and_tenant_filters(
    database_url: str, configure: Configure
) -> None:
    """Asked for one provider (or one tenant), the skew histogram is that provider's (that
    tenant's) alone, as the outcomes and durations are."""
    configure(DATABASE_URL=database_url)
    acme = seed_tenant(database_url, "skew-acme", providers={"acessorias": {}, "onecode": {}})
    globex = seed_tenant(database_url, "skew-globex")
    finished = db_now(database_url) - timedelta(minutes=1)
    with psycopg.connect(database_url) as conn:
        for tenant, provider, late_s in (
            (acme, "acessorias", 3), (acme, "onecode", 45), (globex, "acessorias", 4000),
        ):  # fmt: skip
            add_job(conn, tenant.id, provider, "success", finished, 1000,
                    scheduled_for=finished - timedelta(seconds=1 + late_s))  # fmt: skip

    def skew_sums(**query: str) -> dict[str, float]:
        response = function_client("integration-metrics").get(
            "/", query_string={"format": "prometheus", "days": "1", **query},
            headers=bearer(service_token()),
        )  # fmt: skip
        assert response.status_code == 200, response.get_data(as_text=True)
        return {
            s.labels["provider"]: s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for s in family.samples
            if s.name == "syncq_schedule_skew_seconds_gsum"
        }

    assert skew_sums() == {"acessorias": 4003, "onecode": 45}
    assert skew_sums(provider_slug="onecode") == {"onecode": 45}
    assert skew_sums(tenant_id=str(acme.id)) == {"acessorias": 3, "onecode": 45}
    assert skew_sums(tenant_id=str(globex.id), provider_slug="onecode") == {}
