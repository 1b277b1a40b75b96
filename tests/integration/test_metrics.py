"""integration-metrics on real PostgreSQL: the numbers equal what the rows say for a known
history (tests/integration/metrics_fixtures.py counts them by hand), tenants stay apart,
the Prometheus text parses and holds the expected samples, and bad input is a 422."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.auth import mint_token
from tests.conftest import Configure
from tests.integration.metrics_fixtures import DAY, History, add_job, seed_history
from tests.support import bearer, function_client, service_token

pytestmark = pytest.mark.db

FN = "integration-metrics"


def get(token: str | None, headers: dict[str, str] | None = None, **query: Any) -> Any:
    all_headers = {**(bearer(token) if token else {}), **(headers or {})}
    return function_client(FN).get("/", query_string=query, headers=all_headers)


def report(token: str, tenant: uuid.UUID, **query: Any) -> dict[str, Any]:
    response = get(token, tenant_id=str(tenant), **query)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@pytest.fixture
def history(database_url: str, configure: Configure) -> History:
    configure(DATABASE_URL=database_url, METRICS_DEFAULT_PERIOD_S=str(3 * 86400))
    return seed_history(database_url)


def test_providers_equal_the_hand_counts(history: History) -> None:
    body = report(history.acme.member_token, history.acme.id, days=7)
    assert at(body["window_start"]) == history.d0 - 6 * DAY
    by = {p["provider_slug"]: p for p in body["providers"]}
    assert list(by) == ["acessorias", "bomcontrole", "onecode", "retired"]  # no gestao-scouter
    acessorias = by["acessorias"]
    assert {k: acessorias[k] for k in ("runs", "successes", "errors", "canceled")} == {
        "runs": 8, "successes": 5, "errors": 2, "canceled": 1,
    }  # fmt: skip
    assert acessorias["success_rate"] == round(5 / 7, 4)
    assert (acessorias["p50_ms"], acessorias["p95_ms"]) == (300, 1000)
    assert at(acessorias["last_success_at"]) == history.today
    assert (acessorias["freshness"], acessorias["period_s"]) == ("on_time", 3 * 86400)
    assert acessorias["queue"]["depth"] == 1
    assert 120 <= acessorias["queue"]["oldest_due_age_s"] < 120 + 60
    onecode = by["onecode"]
    assert (onecode["runs"], onecode["successes"], onecode["errors"]) == (3, 1, 2)
    assert onecode["success_rate"] == round(1 / 3, 4)
    assert (onecode["p50_ms"], onecode["p95_ms"]) == (70, 2000)
    assert at(onecode["last_success_at"]) == history.day(4)
    assert onecode["freshness"] == "delayed"  # 3.5 to 4.5 days: beyond one period (3 d)
    assert onecode["queue"] == {"depth": 1, "oldest_due_age_s": None}  # running, none due
    bomcontrole = by["bomcontrole"]
    assert (bomcontrole["runs"], bomcontrole["errors"], bomcontrole["success_rate"]) == (1, 1, 0.0)
    assert (bomcontrole["freshness"], bomcontrole["last_success_at"]) == ("never", None)
    assert bomcontrole["queue"] == {"depth": 1, "oldest_due_age_s": None}  # pending, not due
    retired = by["retired"]
    assert (retired["runs"], retired["success_rate"], retired["p50_ms"]) == (0, None, None)
    assert retired["freshness"] == "failing"  # 7.5 to 8.5 days: beyond two periods
    assert retired["queue"] == {"depth": 0, "oldest_due_age_s": None}


def test_the_daily_series_is_zero_filled_and_adds_up(history: History) -> None:
    body = report(history.acme.member_token, history.acme.id, days=7)
    series = [(d["day"], d["runs"], d["successes"], d["errors"], d["canceled"], d["p95_ms"])
              for d in body["series"]]  # fmt: skip
    day = lambda k: (history.d0 - k * DAY).date().isoformat()  # noqa: E731
    assert series == [
        (day(6), 3, 2, 1, 0, 300),
        (day(5), 0, 0, 0, 0, None),
        (day(4), 1, 1, 0, 0, 2000),
        (day(3), 3, 2, 0, 1, 400),
        (day(2), 2, 0, 2, 0, 70),
        (day(1), 2, 0, 2, 0, 1000),
        (day(0), 1, 1, 0, 0, 500),
    ]
    assert sum(s[1] for s in series) == sum(p["runs"] for p in body["providers"])


def test_a_provider_filter_narrows_providers_and_series(history: History) -> None:
    body = report(history.acme.member_token, history.acme.id, days=7, provider_slug="onecode")
    assert [p["provider_slug"] for p in body["providers"]] == ["onecode"]
    assert [d["runs"] for d in body["series"]] == [0, 0, 1, 0, 2, 0, 0]
    assert len(body["exports"]) == 4  # exports are the tenant's, whatever the provider


def test_the_window_follows_days(history: History, configure: Configure) -> None:
    body = report(history.acme.member_token, history.acme.id, days=1)
    by = {p["provider_slug"]: p for p in body["providers"]}
    assert (by["acessorias"]["runs"], by["acessorias"]["p50_ms"]) == (1, 500)
    assert [d["runs"] for d in body["series"]] == [1]
    # The default period applies when no schedule says otherwise (one day here).
    configure(METRICS_DEFAULT_PERIOD_S="86400")
    again = report(history.acme.member_token, history.acme.id, days=30)
    by = {p["provider_slug"]: p for p in again["providers"]}
    assert (by["onecode"]["freshness"], by["onecode"]["period_s"]) == ("failing", 86400)
    assert by["acessorias"]["runs"] == 10  # days -10 and just before day -6 are in now
    assert len(again["series"]) == 30


def test_exports_equal_the_hand_counts(history: History) -> None:
    body = report(history.acme.member_token, history.acme.id, days=7)
    exports = {e["id"]: e for e in body["exports"]}
    ids = history.exports
    assert list(exports) == [
        str(ids[k]) for k in ("running", "unstarted", "caught_up", "completed")
    ]  # newest first; the one created 20 days ago and globex's are not there
    lead = history.leads
    completed = exports[str(ids["completed"])]
    assert (completed["exported_leads"], completed["error_leads"]) == (3, 1)
    assert (completed["pending_leads"], completed["run_s"], completed["rows_per_s"]) == (
        0,
        100,
        0.03,
    )
    assert at(completed["newest_lead_at"]) == lead[5]
    assert at(completed["cursor_at"]) == lead[4]
    assert completed["lag_s"] == (lead[5] - lead[4]).total_seconds() == 86400
    running = exports[str(ids["running"])]
    assert (running["pending_leads"], running["run_s"], running["rows_per_s"]) == (2, 40, 0.025)
    assert running["lag_s"] == (lead[5] - lead[3]).total_seconds() == 2 * 86400
    unstarted = exports[str(ids["unstarted"])]
    assert (unstarted["run_s"], unstarted["rows_per_s"], unstarted["cursor_at"]) == (
        None,
        None,
        None,
    )
    assert at(unstarted["newest_lead_at"]) == lead[2]
    assert unstarted["lag_s"] == (lead[2] - lead[1]).total_seconds() == 11 * 3600
    caught_up = exports[str(ids["caught_up"])]
    assert (caught_up["rows_per_s"], caught_up["lag_s"]) == (0.3, 0)
    assert at(caught_up["newest_lead_at"]) == lead[3]


def test_tenants_stay_apart(history: History, database_url: str) -> None:
    # A member of globex only: acme is 403 with no data, like an unknown tenant.
    foreign = get(history.globex.member_token, tenant_id=str(history.acme.id))
    unknown = get(history.globex.member_token, tenant_id=str(uuid.uuid4()))
    assert foreign.status_code == unknown.status_code == 403
    assert foreign.get_json() == unknown.get_json()
    assert foreign.get_json()["error"]["code"] == "forbidden"
    # A member of both sees each tenant's own numbers, never the other's.
    token = mint_token(user_id=history.both)
    globex = report(token, history.globex.id, days=7)
    assert [(p["provider_slug"], p["runs"], p["freshness"]) for p in globex["providers"]] == [
        ("acessorias", 1, "on_time"), ("onecode", 0, "never"),  # enabled, never run
    ]  # fmt: skip
    assert len(globex["exports"]) == 1
    assert globex["exports"][0]["id"] not in {str(i) for i in history.exports.values()}
    assert sum(d["runs"] for d in globex["series"]) == 1
    acme = report(token, history.acme.id, days=7)
    assert sum(d["runs"] for d in acme["series"]) == 12
    # The service reads any tenant (JSON without RLS): the same numbers.
    as_service = report(service_token(), history.acme.id, days=7)
    without_clock = lambda b: [{**p, "queue": p["queue"]["depth"]} for p in b["providers"]]  # noqa: E731
    assert without_clock(as_service) == without_clock(acme)
    assert as_service["series"] == acme["series"] and as_service["exports"] == acme["exports"]


def test_bad_params_are_422_envelopes(history: History) -> None:
    tid = str(history.acme.id)
    token = history.acme.member_token
    for query in (
        {"tenant_id": tid, "days": "0"},
        {"tenant_id": tid, "days": "91"},
        {"tenant_id": tid, "days": "abc"},
        {"tenant_id": "not-a-uuid"},
        {"tenant_id": tid, "provider_slug": "nope"},
        {"tenant_id": tid, "format": "xml"},
        {"tenant_id": tid, "limit": "5"},  # unknown parameter
        {},  # JSON needs a tenant
    ):
        response = get(token, **query)
        assert response.status_code == 422, query
        error = response.get_json()["error"]
        assert error["code"] == "validation_error" and error["message"] and error["details"]
    assert get(None, tenant_id=tid).status_code == 401
    assert function_client(FN).post("/", json={}, headers=bearer(token)).status_code == 405


def prometheus(token: str, **query: Any) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The exposition, parsed: sample name -> {sorted labels: value}."""
    response = get(token, headers={"Accept": "text/plain"}, **query)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def test_prometheus_text_holds_the_expected_samples(history: History) -> None:
    m = prometheus(service_token(), days="7")
    assert m["syncq_queue_depth"] == {
        (("kind", "alert"),): 0,
        (("kind", "gestao_export"),): 1,
        (("kind", "integration"),): 3,
    }
    oldest = m["syncq_queue_oldest_due_age_seconds"]
    assert 120 <= oldest[(("kind", "integration"),)] < 180
    assert oldest[(("kind", "gestao_export"),)] == 0
    assert m["syncq_metrics_window_days"] == {(): 7}
    outcomes = {tuple(v for _, v in k): n for k, n in m["syncq_integration_jobs_finished"].items()}
    # acme + globex; "retired" has nothing in the window.
    assert outcomes == {
        ("acessorias", "canceled"): 1, ("acessorias", "error"): 2, ("acessorias", "success"): 6,
        ("bomcontrole", "canceled"): 0, ("bomcontrole", "error"): 1, ("bomcontrole", "success"): 0,
        ("onecode", "canceled"): 0, ("onecode", "error"): 2, ("onecode", "success"): 1,
    }  # fmt: skip
    buckets = m["syncq_integration_job_duration_seconds_bucket"]

    def bucket(provider: str, status: str, le: str) -> float:
        return buckets[(("le", le), ("provider", provider), ("status", status))]

    assert bucket("acessorias", "success", "1.0") == bucket("acessorias", "success", "+Inf") == 6
    assert bucket("acessorias", "error", "1.0") == 2  # 1000 ms is le 1.0
    assert bucket("onecode", "success", "1.0") == 0 and bucket("onecode", "success", "5.0") == 1
    assert not any(("status", "canceled") in k for k in buckets)  # canceled untimed: no series
    gsum = m["syncq_integration_job_duration_seconds_gsum"]
    assert gsum[(("provider", "acessorias"), ("status", "success"))] == pytest.approx(1.95)
    assert (
        m["syncq_integration_job_duration_seconds_gcount"][
            (("provider", "onecode"), ("status", "error"))
        ]
        == 2
    )
    assert not m.get("syncq_schedule_skew_seconds_bucket")  # no scheduled job in the history
    assert not m.get("syncq_alert_delivery_failures")  # no alert failed
    # One tenant only, on request.
    g = prometheus(service_token(), days="7", tenant_id=str(history.globex.id))
    outcomes = {tuple(v for _, v in k): n for k, n in g["syncq_integration_jobs_finished"].items()}
    assert outcomes == {("acessorias", "success"): 1, ("acessorias", "error"): 0,
                        ("acessorias", "canceled"): 0}  # fmt: skip
    one = prometheus(service_token(), days="7", provider_slug="onecode")
    assert {dict(k)["provider"] for k in one["syncq_integration_jobs_finished"]} == {"onecode"}
    assert one["syncq_queue_depth"] == m["syncq_queue_depth"]  # per kind, not per provider
    assert g["syncq_queue_depth"] == {
        (("kind", "alert"),): 0,
        (("kind", "gestao_export"),): 0,
        (("kind", "integration"),): 0,
    }


def test_prometheus_is_for_the_service_and_negotiated(history: History) -> None:
    member = history.acme.member_token
    denied = get(member, headers={"Accept": "text/plain"}, tenant_id=str(history.acme.id))
    assert denied.status_code == 403 and denied.get_json()["error"]["code"] == "forbidden"
    assert get(member, tenant_id=str(history.acme.id), format="prometheus").status_code == 403
    by_param = get(service_token(), format="prometheus")
    assert by_param.status_code == 200 and "syncq_queue_depth" in by_param.get_data(as_text=True)
    # Prometheus's own Accept header asks for OpenMetrics first: it gets OpenMetrics.
    scrape = get(service_token(), headers={"Accept": (
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )})  # fmt: skip
    assert scrape.headers["Content-Type"].startswith("application/openmetrics-text")
    assert "Accept" in scrape.headers["Vary"] and scrape.headers["Cache-Control"] == "no-store"
    ranked_lower = get(
        service_token(), headers={"Accept": "text/plain, application/openmetrics-text;q=0.1"}
    )
    assert ranked_lower.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = scrape.get_data(as_text=True)
    assert "# TYPE syncq_integration_job_duration_seconds gaugehistogram" in text
    assert text.endswith("# EOF\n")
    # A browser or curl default gets JSON; the service too, for a tenant.
    as_json = get(service_token(), headers={"Accept": "*/*"}, tenant_id=str(history.acme.id))
    assert as_json.get_json()["providers"] and "Accept" in as_json.headers["Vary"]
    assert get(service_token(), headers={"Accept": "*/*"}).status_code == 422  # JSON: tenant


def test_schedule_skew_of_scheduled_jobs(history: History, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for seconds, attempts in ((3, 1), (45, 1), (4000, 1), (10, 2)):
            finished = history.day(2, 15)
            add_job(
                conn,
                history.acme.id,
                "onecode",
                "success",
                finished,
                1000,
                attempts=attempts,
                scheduled_for=finished - timedelta(seconds=1 + seconds),
            )
    m = prometheus(service_token(), days="7")
    skew = {dict(k)["le"]: v for k, v in m["syncq_schedule_skew_seconds_bucket"].items()}
    assert (skew["1.0"], skew["5.0"], skew["60.0"], skew["3600.0"], skew["+Inf"]) == (0, 1, 2, 2, 3)
    assert m["syncq_schedule_skew_seconds_gsum"] == {(("provider", "onecode"),): 4048}


def test_failed_alerts_are_counted_by_event(history: History, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for event, status in (("failing", "failed"), ("failing", "failed"),
                              ("recovered", "failed"), ("failing", "sent")):  # fmt: skip
            conn.execute(
                "INSERT INTO alert_outbox (tenant_id, provider_slug, event, status, finished_at)"
                " VALUES (%s, 'onecode', %s, %s, now())",
                [history.acme.id, event, status],
            )
        conn.execute(
            "INSERT INTO alert_outbox (tenant_id, provider_slug, event, status, finished_at)"
            " VALUES (%s, 'gestao_scouter', 'export_failed', 'failed', now())",
            [history.acme.id],
        )
    m = prometheus(service_token(), days="7")
    failures = {dict(k)["event"]: v for k, v in m["syncq_alert_delivery_failures"].items()}
    assert failures == {"failing": 2, "recovered": 1, "export_failed": 1}
    for slug, expected in (("onecode", {"failing": 2, "recovered": 1}), ("acessorias", {})):
        m = prometheus(service_token(), days="7", provider_slug=slug)
        failures = {
            dict(k)["event"]: v for k, v in m.get("syncq_alert_delivery_failures", {}).items()
        }
        assert failures == expected, slug


def test_failed_alerts_of_one_tenant_are_that_tenants_alone(
    history: History, database_url: str
) -> None:
    """Asked for one tenant, the exposition counts that tenant's failed alerts, not others'."""
    with psycopg.connect(database_url) as conn:
        for tenant, event in ((history.acme, "failing"), (history.globex, "recovered")):
            conn.execute(
                "INSERT INTO alert_outbox (tenant_id, provider_slug, event, status, finished_at)"
                " VALUES (%s, 'onecode', %s, 'failed', now())",
                [tenant.id, event],
            )
    for tenant, expected in ((history.acme, {"failing": 1}), (history.globex, {"recovered": 1})):
        m = prometheus(service_token(), days="7", tenant_id=str(tenant.id))
        failures = {
            dict(k)["event"]: v for k, v in m.get("syncq_alert_delivery_failures", {}).items()
        }
        assert failures == expected, tenant.id


def test_failed_alerts_before_the_window_are_not_counted(
    history: History, database_url: str
) -> None:
    """The window counts alerts that failed within it: one that failed a month ago is
    not among the last 7 days' failures (it stayed in the count for good)."""
    with psycopg.connect(database_url) as conn:
        for event, age in (("failing", "30 days"), ("recovered", "1 hour")):
            conn.execute(
                "INSERT INTO alert_outbox (tenant_id, provider_slug, event, status, finished_at)"
                " VALUES (%s, 'onecode', %s, 'failed', now() - %s::interval)",
                [history.acme.id, event, age],
            )
    m = prometheus(service_token(), days="7")
    failures = {dict(k)["event"]: v for k, v in m["syncq_alert_delivery_failures"].items()}
    assert failures == {"recovered": 1}


def test_a_schedule_sets_the_period_freshness_is_measured_in(
    history: History, database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO integration_schedules (tenant_id, provider_slug, cron, timezone,"
            " next_run_at, due_at) VALUES (%s, 'onecode', '0 */6 * * *', 'UTC', now(), now())",
            [history.acme.id],
        )
    body = get(history.acme.member_token, tenant_id=str(history.acme.id)).get_json()
    by = {p["provider_slug"]: p for p in body["providers"]}
    assert by["onecode"]["period_s"] == 6 * 3600 and by["acessorias"]["period_s"] == 3 * 86_400
    # Its last success, 3.5 to 4.5 days old, is a run short of the default period (3 days)
    # but many runs short of a schedule every 6 hours.
    assert by["onecode"]["freshness"] == "failing"


def test_freshness_counts_a_schedules_runs_not_the_gap_ahead(
    history: History, database_url: str
) -> None:
    """globex's acessorias last succeeded yesterday at 12:00, the latest run of a schedule
    at 11:00 and 12:00 yesterday and tomorrow: on time, though the next two runs (tomorrow)
    are an hour apart."""
    dow = [(history.d0 + DAY * k).isoweekday() % 7 for k in (-1, 1)]  # cron: Sunday is 0
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO integration_schedules (tenant_id, provider_slug, cron, timezone,"
            " spread, next_run_at, due_at) VALUES (%s, 'acessorias', %s, 'UTC', false,"
            " now() + interval '1 day', now() + interval '1 day')",
            [history.globex.id, f"0 11,12 * * {dow[0]},{dow[1]}"],
        )
    body = get(history.globex.member_token, tenant_id=str(history.globex.id)).get_json()
    [acessorias] = [p for p in body["providers"] if p["provider_slug"] == "acessorias"]
    assert at(acessorias["last_success_at"]) == history.day(1)
    assert (acessorias["freshness"], acessorias["period_s"]) == ("on_time", 3600)
