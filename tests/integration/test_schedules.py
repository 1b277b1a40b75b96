"""Scheduled syncs on real PostgreSQL: one job per occurrence under concurrent and killed
sweeps, skips beside a live job, the missed-run policies, DST, and the function."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from shared import cron
from shared.dispatch import RecordingDispatcher
from shared.providers import PROVIDERS
from shared.queue import schedules
from tests.conftest import Configure
from tests.providers_for_tests import ScriptedProvider
from tests.support import (
    TenantFixture,
    call,
    function_client,
    rows,
    seed_tenant,
    service_token,
)

pytestmark = pytest.mark.db

ZONE = ZoneInfo("Europe/Berlin")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def schedule(
    database_url: str,
    tenant: TenantFixture,
    *,
    cron: str,
    next_run_at: datetime | str,
    missed: str = "once",
    zone: str = "UTC",
    provider: str = "acessorias",
) -> None:
    """A schedule due from `next_run_at` (an SQL expression when a str), without spread."""
    at = next_run_at if isinstance(next_run_at, str) else "%(at)s::timestamptz"
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO integration_schedules (tenant_id, provider_slug, cron, timezone, missed,"
            " spread, next_run_at, due_at)"
            f" VALUES (%(t)s, %(p)s, %(cron)s, %(zone)s, %(missed)s, false, {at}, {at})",
            {"t": tenant.id, "p": provider, "cron": cron, "zone": zone, "missed": missed,
             "at": next_run_at},
        )  # fmt: skip


def jobs(database_url: str, tenant: TenantFixture) -> list[dict[str, Any]]:
    return rows(
        database_url,
        "SELECT id, status, trigger, scheduled_for FROM integration_jobs WHERE tenant_id = %s"
        " ORDER BY scheduled_for NULLS FIRST",
        tenant.id,
    )


def finish_all(database_url: str) -> None:
    """The scheduled jobs ran (this file tests the schedule, not the sync)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE integration_jobs SET status = 'success', finished_at = now()"
            " WHERE status IN ('pending', 'running')"
        )


def db_now(database_url: str) -> datetime:
    moment: datetime = rows(database_url, "SELECT now() AS now")[0]["now"]
    return moment


# -- exactly once ---------------------------------------------------------------------------


def test_twenty_concurrent_sweeps_create_one_job_per_occurrence(
    database_url: str, configure: Configure
) -> None:
    configure(SCHEDULE_TICK_BATCH="7")  # several batches, so sweeps interleave
    tenants = [seed_tenant(database_url, f"t{i}") for i in range(40)]
    for tenant in tenants:
        schedule(database_url, tenant, cron="*/5 * * * *",
                 next_run_at="date_trunc('hour', now()) - interval '5 minutes'")  # fmt: skip
    barrier = threading.Barrier(20)
    reports: list[dict[str, int]] = []

    def sweep() -> None:
        barrier.wait()
        reports.append(schedules.tick())

    threads = [threading.Thread(target=sweep) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    per_occurrence = rows(
        database_url,
        "SELECT tenant_id, scheduled_for, count(*) AS n FROM integration_jobs"
        " GROUP BY tenant_id, scheduled_for",
    )
    assert len(per_occurrence) == 40 and {r["n"] for r in per_occurrence} == {1}
    assert sum(r["enqueued"] for r in reports) == 40
    assert all(
        r["trigger"] == "schedule"
        for r in rows(database_url, "SELECT trigger FROM integration_jobs")
    )
    # Every schedule moved on past now; another sweep finds nothing due.
    assert schedules.tick()["schedules"] == 0


def test_a_sweep_killed_before_commit_leaves_the_schedule_due_and_the_next_runs_it_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = seed_tenant(database_url, "acme")
    schedule(database_url, acme, cron="* * * * *", next_run_at="date_trunc('minute', now())")
    real_enqueue = schedules._enqueue

    def enqueue_then_die(conn: psycopg.Connection[Any], steps: list[Any]) -> None:
        real_enqueue(conn, steps)  # the job row is written in the transaction...
        raise SystemExit("killed")  # ...and the process dies before the commit

    monkeypatch.setattr(schedules, "_enqueue", enqueue_then_die)
    with pytest.raises(SystemExit):
        schedules.tick()
    assert jobs(database_url, acme) == []
    [before] = rows(
        database_url, "SELECT next_run_at, due_at <= now() AS due FROM integration_schedules"
    )
    assert before["due"]
    monkeypatch.setattr(schedules, "_enqueue", real_enqueue)
    assert schedules.tick()["enqueued"] == 1
    assert schedules.tick()["enqueued"] == 0
    [job] = jobs(database_url, acme)
    assert job["scheduled_for"] == before["next_run_at"]


def test_an_occurrence_already_enqueued_is_never_enqueued_again(database_url: str) -> None:
    """A clock step back (or a schedule put back on an old occurrence) meets the job's key."""
    acme = seed_tenant(database_url, "acme")
    schedule(database_url, acme, cron="* * * * *", next_run_at="date_trunc('minute', now())")
    assert schedules.tick()["enqueued"] == 1
    finish_all(database_url)
    with psycopg.connect(database_url) as conn:  # the schedule is back on that occurrence
        conn.execute(
            "UPDATE integration_schedules SET next_run_at = date_trunc('minute', now()),"
            " due_at = date_trunc('minute', now())"
        )
    report = schedules.tick()
    assert report["enqueued"] == 0 and report["skipped"] == 1
    assert len(jobs(database_url, acme)) == 1


# -- live jobs and missed runs ------------------------------------------------------------------


def test_an_occurrence_beside_a_live_job_is_recorded_as_skipped(database_url: str) -> None:
    acme = seed_tenant(database_url, "acme")
    live = function_client("run-integration").post(
        "/", json={"tenant_id": str(acme.id), "provider_slug": "acessorias"},
        headers={"Authorization": f"Bearer {acme.admin_token}"},
    )  # fmt: skip
    assert live.status_code == 202
    schedule(database_url, acme, cron="* * * * *", next_run_at="date_trunc('minute', now())")
    report = schedules.tick()
    assert report == {"schedules": 1, "enqueued": 0, "skipped": 1, "missed": 0}
    [s] = rows(database_url, "SELECT * FROM integration_schedules")
    assert s["last_outcome"] == "skipped" and s["next_run_at"] > db_now(database_url)
    [log] = rows(database_url, "SELECT * FROM integration_logs WHERE status = 'skipped'")
    assert log["job_id"] is None and "already live" in log["message"]
    assert [j["trigger"] for j in jobs(database_url, acme)] == ["manual"]


def test_a_disabled_or_paused_schedule_is_not_run_by_the_sweep(database_url: str) -> None:
    """A schedule switched off (or paused after failures in a row) stays off, due or not."""
    acme = seed_tenant(database_url, "acme")
    schedule(database_url, acme, cron="* * * * *", next_run_at="date_trunc('minute', now())")
    with psycopg.connect(database_url) as conn:  # as the failure that pauses it leaves it
        conn.execute("UPDATE integration_schedules SET enabled = false, paused_reason = 'paused'")
    report = schedules.tick()
    assert report == {"schedules": 0, "enqueued": 0, "skipped": 0, "missed": 0}
    assert jobs(database_url, acme) == []
    [s] = rows(database_url, "SELECT enabled, last_outcome FROM integration_schedules")
    assert s["enabled"] is False and s["last_outcome"] is None


def test_an_occurrence_of_a_disabled_integration_is_skipped(database_url: str) -> None:
    """A tenant that switched the integration off gets no scheduled sync of it: the
    occurrence is recorded as skipped, with why, and the schedule moves on."""
    acme = seed_tenant(database_url, "acme")
    schedule(database_url, acme, cron="* * * * *", next_run_at="date_trunc('minute', now())")
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE tenant_integrations SET enabled = false")
    report = schedules.tick()
    assert report == {"schedules": 1, "enqueued": 0, "skipped": 1, "missed": 0}
    assert jobs(database_url, acme) == []
    [s] = rows(database_url, "SELECT * FROM integration_schedules")
    assert s["last_outcome"] == "skipped" and s["next_run_at"] > db_now(database_url)
    [log] = rows(database_url, "SELECT * FROM integration_logs WHERE status = 'skipped'")
    assert "integration is disabled" in log["message"]


def test_a_spread_schedule_keeps_its_offset_after_each_run(database_url: str) -> None:
    """The spread offset applies to every occurrence, not the first alone: moved on, the
    schedule is due its offset after its next occurrence."""
    acme = seed_tenant(database_url, "acme")
    schedule(database_url, acme, cron="0 * * * *", next_run_at="date_trunc('hour', now())")
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE integration_schedules SET spread = true, offset_s = 120")
    assert schedules.tick()["enqueued"] == 1
    [s] = rows(database_url, "SELECT next_run_at, due_at FROM integration_schedules")
    assert s["next_run_at"] > db_now(database_url)
    assert s["due_at"] == s["next_run_at"] + timedelta(seconds=120)


def three_hours_of_outage(database_url: str) -> tuple[str, list[datetime]]:
    """An hourly cron whose last three occurrences passed 2.5, 1.5 and 0.5 hours ago."""
    now = db_now(database_url)
    latest = (now - timedelta(minutes=30)).replace(second=0, microsecond=0)
    return f"{latest.minute} * * * *", [latest - timedelta(hours=h) for h in (2, 1, 0)]


@pytest.mark.parametrize(("policy", "expected"), [("skip", 0), ("once", 1), ("all", 3)])
def test_missed_runs_after_a_three_hour_outage(
    database_url: str, policy: str, expected: int
) -> None:
    acme = seed_tenant(database_url, "acme")
    cron, missed = three_hours_of_outage(database_url)
    schedule(database_url, acme, cron=cron, next_run_at=missed[0], missed=policy)
    for _ in range(5):  # sweeps, the jobs they make running to the end in between
        schedules.tick()
        finish_all(database_url)
    scheduled = [j["scheduled_for"] for j in jobs(database_url, acme)]
    assert len(scheduled) == expected
    if policy == "once":
        assert scheduled == [missed[-1]]
    if policy == "all":
        assert scheduled == missed
    [s] = rows(database_url, "SELECT next_run_at FROM integration_schedules")
    assert s["next_run_at"] == missed[-1] + timedelta(hours=1)


def test_a_month_long_outage_runs_once_and_says_at_least_how_many_were_missed(
    database_url: str,
) -> None:
    """A minutely schedule after 30 days down: one run, and its history line says the runs
    missed are at least the count it stopped at (1,023 read as the whole of ~43,200)."""
    acme = seed_tenant(database_url, "acme")
    schedule(database_url, acme, cron="* * * * *", missed="once",
             next_run_at="date_trunc('minute', now()) - interval '30 days'")  # fmt: skip
    report = schedules.tick()
    assert (report["enqueued"], report["missed"]) == (1, cron.MAX_COUNTED + 23)
    [line] = rows(database_url, "SELECT message, details FROM integration_logs"
                  " WHERE job_id IS NULL")  # fmt: skip
    assert (
        line["message"] == f"at least {cron.MAX_COUNTED + 23} scheduled run(s) missed (policy once)"
    )
    assert line["details"]["missed"] == cron.MAX_COUNTED + 23


def test_all_waits_for_its_previous_job_before_the_next_occurrence(database_url: str) -> None:
    acme = seed_tenant(database_url, "acme")
    cron, missed = three_hours_of_outage(database_url)
    schedule(database_url, acme, cron=cron, next_run_at=missed[0], missed="all")
    assert schedules.tick()["enqueued"] == 1
    assert schedules.tick()["enqueued"] == 0  # the first is still pending
    finish_all(database_url)
    assert schedules.tick()["enqueued"] == 1


def test_a_sweep_that_started_before_another_committed_does_not_skip_an_all_occurrence(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sweep B's take_due reads before sweep A commits (A enqueued occurrence 1 and moved the
    schedule to occurrence 2), then locks the row: it saw no live job and skipped
    occurrence 2 beside A's. `all` runs each occurrence in turn."""
    acme = seed_tenant(database_url, "acme")
    cron_, missed = three_hours_of_outage(database_url)
    schedule(database_url, acme, cron=cron_, next_run_at=missed[0], missed="all")
    real_q, slow = schedules._q, threading.local()

    def q(name: str) -> Any:  # B's take_due is slow between its snapshot and its locks
        sql = real_q(name)
        if name == "take_due" and getattr(slow, "on", False):
            sql = sql.replace(
                "WHERE s.enabled", "WHERE (SELECT pg_sleep(1)) IS NOT NULL AND s.enabled"
            )
        return sql

    monkeypatch.setattr(schedules, "_q", q)
    out: dict[str, Any] = {}

    def sweep_b() -> None:
        slow.on = True
        out["b"] = schedules.tick()

    b = threading.Thread(target=sweep_b)
    b.start()
    time.sleep(0.3)
    out["a"] = schedules.tick()
    b.join(30)
    assert out["a"]["enqueued"] + out["b"]["enqueued"] == 1
    assert [j["scheduled_for"] for j in jobs(database_url, acme)] == missed[:1]
    [s] = rows(database_url, "SELECT next_run_at, last_outcome FROM integration_schedules")
    assert (s["next_run_at"], s["last_outcome"]) == (missed[1], "enqueued")


@pytest.mark.parametrize("batch", [1, 2])
def test_a_waiting_all_schedule_does_not_stop_the_tick_or_hold_its_head(
    database_url: str, configure: Configure, batch: int
) -> None:
    """An `all` schedule waiting for its live job was taken and left out of the batch, and
    the tick read the short batch as "nothing more due" (ticks of one batch, or none). It is
    not taken at all: due longest ago, a batch of one would take it again and again and the
    schedules behind it never, the tick spinning to the end of its budget."""
    configure(SCHEDULE_TICK_BATCH=str(batch))
    acme = seed_tenant(database_url, "acme")
    cron, missed = three_hours_of_outage(database_url)
    schedule(database_url, acme, cron=cron, next_run_at=missed[0], missed="all")
    assert schedules.tick()["enqueued"] == 1  # its first catch-up job, still pending
    others = [seed_tenant(database_url, f"o{i}") for i in range(3)]
    for tenant in others:
        schedule(database_url, tenant, cron="* * * * *", next_run_at="date_trunc('minute', now())")
    report = schedules.tick(budget_s=10)
    assert (report["schedules"], report["enqueued"]) == (3, 3)
    assert all(len(jobs(database_url, tenant)) == 1 for tenant in others)
    assert len(jobs(database_url, acme)) == 1


def test_a_schedule_that_cannot_be_planned_does_not_stop_the_others(
    database_url: str, configure: Configure
) -> None:
    configure(SCHEDULE_TICK_BATCH="1")
    broken = seed_tenant(database_url, "broken")
    schedule(database_url, broken, cron="* * * * *", zone="Mars/Olympus",
             next_run_at="date_trunc('minute', now()) - interval '1 hour'")  # fmt: skip
    acme = seed_tenant(database_url, "acme")
    schedule(database_url, acme, cron="* * * * *", next_run_at="date_trunc('minute', now())")
    assert schedules.tick()["enqueued"] == 1
    assert len(jobs(database_url, acme)) == 1 and jobs(database_url, broken) == []
    [put_off] = rows(
        database_url,
        "SELECT next_run_at, due_at > now() AS later FROM integration_schedules"
        " WHERE tenant_id = %s",
        broken.id,
    )
    assert put_off["later"]  # tried again later; the occurrence it waits for is kept
    assert put_off["next_run_at"] < db_now(database_url) - timedelta(minutes=59)


def test_a_schedule_whose_zone_the_host_no_longer_knows_still_lists(
    database_url: str, configure: Configure
) -> None:
    """A zone gone from the host's tzdata: the tenant's list (the dashboard's Agendamento)
    stands, that schedule without upcoming runs; it was a 500 for the whole list."""
    configure(DATABASE_URL=database_url)
    acme = seed_tenant(database_url, "acme")
    schedule(database_url, acme, cron="0 2 * * *", zone="Mars/Olympus",
             next_run_at=db_now(database_url) + timedelta(hours=1))  # fmt: skip
    listed = function_client("integration-schedules").get(
        "/", query_string={"tenant_id": str(acme.id)},
        headers={"Authorization": f"Bearer {acme.member_token}"},
    )  # fmt: skip
    assert listed.status_code == 200, listed.get_json()
    [shown] = listed.get_json()["schedules"]
    assert (shown["timezone"], shown["next_runs"][1:]) == ("Mars/Olympus", [])


# -- DST -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [datetime(2026, 3, 26, 12, tzinfo=UTC),
                                   datetime(2026, 10, 22, 12, tzinfo=UTC)])  # fmt: skip
def test_a_daily_0230_runs_once_a_day_across_a_dst_change(
    database_url: str, configure: Configure, start: datetime
) -> None:
    """Europe/Berlin: 02:30 does not exist on the last Sunday of March and happens twice on
    the last Sunday of October. Caught up day by day (`all`), each day runs exactly once."""
    configure(SCHEDULE_MAX_CATCH_UP="1000")
    acme = seed_tenant(database_url, "acme")
    first = datetime(start.year, start.month, start.day + 1, 2, 30, tzinfo=ZONE).astimezone(UTC)
    schedule(database_url, acme, cron="30 2 * * *", zone="Europe/Berlin", next_run_at=first,
             missed="all")  # fmt: skip
    for _ in range(5):
        assert schedules.tick()["enqueued"] == 1
        finish_all(database_url)
    berlin = [j["scheduled_for"].astimezone(ZONE) for j in jobs(database_url, acme)]
    assert [moment.day for moment in berlin] == [start.day + n for n in range(1, 6)]
    times = {(moment.hour, moment.minute) for moment in berlin}
    # March: the day 02:30 does not exist runs at 03:00; October: the repeated 02:30 once.
    assert times == ({(2, 30), (3, 0)} if start.month == 3 else {(2, 30)})


# -- the function ---------------------------------------------------------------------------------


def put(tenant: TenantFixture, token: str, **body: Any) -> Any:
    return function_client("integration-schedules").put(
        "/", json={"tenant_id": str(tenant.id), "provider_slug": "acessorias", **body},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip


def test_the_function_lists_sets_and_deletes_schedules(database_url: str) -> None:
    acme = seed_tenant(database_url, "acme")
    client = function_client("integration-schedules")
    answer = put(acme, acme.admin_token, cron="0 2 * * *", missed="skip")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["timezone"] == "America/Sao_Paulo" and body["missed"] == "skip"
    assert len(body["next_runs"]) == 5 and body["next_runs"][0] == body["next_run_at"]
    assert all(datetime.fromisoformat(r).astimezone(SAO_PAULO).hour == 2 for r in body["next_runs"])
    listed = client.get(
        "/",
        query_string={"tenant_id": str(acme.id)},
        headers={"Authorization": f"Bearer {acme.member_token}"},
    )
    assert listed.status_code == 200
    [entry] = listed.get_json()["schedules"]
    assert entry["cron"] == "0 2 * * *" and entry["last_status"] is None
    # A member may read but not write; another tenant's admin may do neither.
    assert put(acme, acme.member_token, cron="0 3 * * *").status_code == 403
    other = seed_tenant(database_url, "globex")
    assert put(acme, other.admin_token, cron="0 3 * * *").status_code == 403
    gone = client.delete(
        "/", json={"tenant_id": str(acme.id), "provider_slug": "acessorias"},
        headers={"Authorization": f"Bearer {acme.admin_token}"},
    )  # fmt: skip
    assert (
        gone.status_code == 200 and rows(database_url, "SELECT * FROM integration_schedules") == []
    )


def test_saving_a_schedule_again_keeps_the_occurrence_it_waits_for(
    database_url: str, configure: Configure
) -> None:
    """Saved again with the same timing, a schedule keeps the occurrence that has passed
    and waits for its spread offset, or for a late sweep; the sweep then runs it. A new
    timing, or enabling it again, starts from the next occurrence."""
    configure(DATABASE_URL=database_url)
    acme = seed_tenant(database_url, "acme")
    first = put(acme, acme.admin_token, cron="0 2 * * *")
    assert first.status_code == 200 and 0 <= first.get_json()["offset_s"] < 300
    # The offset comes from a hash of the tenant's random id: 0 once in 300 tests. The cases
    # need an occurrence that has passed within it, so the test gives it one.
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE integration_schedules SET offset_s = 120")
    cases = {  # passed within its offset (not due yet); then due 30 s ago, not yet taken
        "waiting": "now() - make_interval(secs => offset_s / 2)",
        "due": "now() - make_interval(secs => offset_s + 30)",
    }
    for case, at in cases.items():
        with psycopg.connect(database_url) as conn:
            kept = conn.execute(
                f"UPDATE integration_schedules SET next_run_at = {at},"
                f" due_at = {at} + make_interval(secs => offset_s) RETURNING next_run_at, due_at"
            ).fetchone()
        assert kept is not None
        occurrence, due_at = kept
        again = put(acme, acme.admin_token, cron="0 2 * * *", missed="skip")
        assert again.status_code == 200, case
        assert datetime.fromisoformat(again.get_json()["next_run_at"]) == occurrence, case
        assert rows(database_url, "SELECT due_at FROM integration_schedules")[0]["due_at"] == due_at
    assert schedules.tick()["enqueued"] == 1
    [job] = jobs(database_url, acme)
    assert job["trigger"] == "schedule" and job["scheduled_for"] == occurrence
    # A new timing starts from its next occurrence; so does enabling it again.
    for body in ({"cron": "0 3 * * *"}, {"cron": "0 3 * * *", "enabled": False},
                 {"cron": "0 3 * * *"}):  # fmt: skip
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE integration_schedules SET next_run_at = now() - interval '1 day'")
        answer = put(acme, acme.admin_token, **body).get_json()
        if body.get("enabled", True):
            assert datetime.fromisoformat(answer["next_run_at"]) > db_now(database_url)


def test_enabling_a_paused_schedule_again_clears_why_it_was_paused(database_url: str) -> None:
    """The reason shown for a schedule paused after failures in a row goes when an admin
    enables it again (and stays while it is saved still disabled)."""
    acme = seed_tenant(database_url, "acme")
    assert put(acme, acme.admin_token, cron="0 2 * * *").status_code == 200
    with psycopg.connect(database_url) as conn:  # as the failure that pauses it leaves it
        conn.execute("UPDATE integration_schedules SET enabled = false, paused_reason = 'paused'")
    still = put(acme, acme.admin_token, cron="0 2 * * *", enabled=False).get_json()
    assert still["enabled"] is False and still["paused_reason"] == "paused"
    again = put(acme, acme.admin_token, cron="0 2 * * *").get_json()
    assert again["enabled"] is True and again["paused_reason"] is None
    [s] = rows(database_url, "SELECT paused_reason FROM integration_schedules")
    assert s["paused_reason"] is None


def test_saving_the_same_schedule_at_another_minute_keeps_the_occurrence_it_waits_for(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`*/7` has uneven gaps (7 minutes, then 4 at the hour), so its spread offset computed at
    another minute differs: saved again, it was a new timing and the occurrence it waited
    for (10:49, due after 10:50) was dropped for 10:56."""
    every_7 = "*/7 * * * *"
    saved_at = datetime(2026, 12, 7, 10, 48, 30, tzinfo=UTC)
    again_at = datetime(2026, 12, 7, 10, 50, tzinfo=UTC)
    tenant_id = next(  # a tenant whose offset is over a minute then, under it at 10:50
        t for t in iter(uuid.uuid4, None)
        if cron.spread_offset(f"{t}:acessorias", every_7, "UTC", saved_at) > 60
        and cron.spread_offset(f"{t}:acessorias", every_7, "UTC", again_at) <= 60
    )  # fmt: skip
    acme = seed_tenant(database_url, "acme", tenant_id=tenant_id)
    clock = [saved_at]
    monkeypatch.setattr(schedules, "_now", lambda conn: clock[0])
    occurrence = datetime(2026, 12, 7, 10, 49, tzinfo=UTC)
    first = put(acme, acme.admin_token, cron=every_7, timezone="UTC")
    assert datetime.fromisoformat(first.get_json()["next_run_at"]) == occurrence
    clock[0] = again_at
    again = put(acme, acme.admin_token, cron=every_7, timezone="UTC")
    assert datetime.fromisoformat(again.get_json()["next_run_at"]) == occurrence
    assert again.get_json()["offset_s"] == first.get_json()["offset_s"]


def test_a_schedule_saved_before_its_zone_was_refused_still_runs_and_lists(
    database_url: str, configure: Configure
) -> None:
    """Zones like `Factory` are refused for new schedules; one saved before stays usable,
    and no schedule's trouble stops another's run (the tick raised, rolling back every
    tenant's occurrences; its tenant's list and metrics were 500)."""
    configure(DATABASE_URL=database_url)
    bad, good = seed_tenant(database_url, "bad"), seed_tenant(database_url, "good")
    minute_ago = db_now(database_url) - timedelta(minutes=1)
    schedule(database_url, bad, cron="* * * * *", next_run_at=minute_ago, zone="Factory")
    schedule(database_url, good, cron="* * * * *", next_run_at=minute_ago)
    assert schedules.tick()["enqueued"] == 2
    assert len(jobs(database_url, good)) == 1 and len(jobs(database_url, bad)) == 1
    for function in ("integration-schedules", "integration-metrics"):
        listed = function_client(function).get(
            "/", query_string={"tenant_id": str(bad.id)},
            headers={"Authorization": f"Bearer {bad.member_token}"},
        )  # fmt: skip
        assert listed.status_code == 200, (function, listed.get_json())
    refused = put(bad, bad.admin_token, cron="* * * * *", timezone="Factory")
    assert refused.status_code == 422


@pytest.mark.parametrize(
    ("field", "body"),
    [("cron", {"cron": "61 * * * *"}), ("cron", {"cron": "* * * *"}),
     ("cron", {"cron": "@hourly; DROP TABLE tenants"}),
     ("cron", {"cron": "0 0 LW * */7"}),  # parses, never runs (a 500)
     ("cron", {"cron": "0 0 LW * */7", "spread": False}),
     ("timezone", {"cron": "0 2 * * *", "timezone": "Mars/Olympus"}),
     ("timezone", {"cron": "0 2 * * *", "timezone": "../../etc/passwd"}),
     ("missed", {"cron": "0 2 * * *", "missed": "sometimes"}),
     ("enabled", {"cron": "0 2 * * *", "enabled": 1}),
     ("spread", {"cron": "0 2 * * *", "spread": "yes"})],
)  # fmt: skip
def test_a_bad_cron_or_zone_is_422_naming_the_field(
    database_url: str, field: str, body: dict[str, Any]
) -> None:
    acme = seed_tenant(database_url, "acme")
    answer = put(acme, acme.admin_token, **body)
    assert answer.status_code == 422
    assert [d["loc"][-1] for d in answer.get_json()["error"]["details"]] == [field]
    assert rows(database_url, "SELECT * FROM integration_schedules") == []


def test_a_schedule_for_an_integration_the_tenant_lacks_is_404(database_url: str) -> None:
    acme = seed_tenant(database_url, "acme")
    answer = put(acme, acme.admin_token, cron="0 2 * * *", provider_slug="onecode")
    assert answer.status_code == 404


def test_the_sweep_runs_a_due_schedule_end_to_end(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through process-integration-job's sweep: the tick enqueues, the drain runs it."""
    monkeypatch.setitem(PROVIDERS, "scripted", ScriptedProvider())
    acme = seed_tenant(database_url, "acme", providers={"scripted": {}})
    schedule(database_url, acme, cron="* * * * *", next_run_at="date_trunc('minute', now())",
             provider="scripted")  # fmt: skip
    swept = function_client("process-integration-job").post(
        "/", json={}, headers={"Authorization": f"Bearer {service_token()}"}
    )
    assert swept.status_code == 200, swept.get_json()
    assert swept.get_json()["hooks"]["schedules"]["enqueued"] == 1
    [job] = jobs(database_url, acme)
    assert job["status"] == "success" and job["trigger"] == "schedule"


def test_the_ops_cli_sets_lists_and_deletes(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.ops.__main__ import main

    seed_tenant(database_url, "acme")
    argv = [
        "schedules",
        "set",
        "--tenant",
        "acme",
        "--provider",
        "acessorias",
        "--cron",
        "0 2 * * *",
    ]
    assert main(argv) == 0
    assert '"cron": "0 2 * * *"' in capsys.readouterr().out
    assert main(["schedules", "list", "--tenant", "acme"]) == 0
    assert '"next_runs"' in capsys.readouterr().out
    assert main([*argv[:-1], "99 2 * * *"]) == 2
    assert '"validation_error"' in capsys.readouterr().err
    assert main(["schedules", "delete", "--tenant", "acme", "--provider", "acessorias"]) == 0
    assert rows(database_url, "SELECT * FROM integration_schedules") == []


# -- locks -------------------------------------------------------------------------------


def test_a_failure_that_pauses_the_schedule_does_not_deadlock_with_the_tick(
    database_url: str, monkeypatch: pytest.MonkeyPatch, recorder: RecordingDispatcher
) -> None:
    """The tick holds a schedule row and inserts its job; a worker ending that integration's
    live job with the failure that pauses the schedule updated the job, then waited for the
    schedule row: a deadlock, a 500, and the job left running until the rescue."""
    from shared import cron, db
    from shared.queue import store

    provider = ScriptedProvider(failures=99)
    monkeypatch.setitem(PROVIDERS, provider.slug, provider)
    acme = seed_tenant(database_url, "acme", providers={"scripted": {}})
    with psycopg.connect(database_url) as conn:  # the fifth failure in a row pauses (default 5)
        conn.execute("UPDATE tenant_integrations SET consecutive_failures = 4")
    schedule(database_url, acme, cron="* * * * *", provider="scripted",
             next_run_at="date_trunc('minute', now())")  # fmt: skip
    with db.transaction() as conn:
        job = store.submit(conn, tenant_id=acme.id, provider_slug="scripted", payload={},
                           created_by=acme.admin, max_attempts=1)  # fmt: skip
    planning, go_on = threading.Event(), threading.Event()
    real_plan = cron.plan

    def slow_plan(**args: Any) -> cron.Plan:  # the tick holds the schedule row meanwhile
        planning.set()
        go_on.wait(10)
        return real_plan(**args)

    monkeypatch.setattr(cron, "plan", slow_plan)
    answers: dict[str, Any] = {}

    def worker() -> None:
        planning.wait(10)
        answer = call("process-integration-job", {"job_id": str(job["id"])}, token=service_token())
        answers["worker"] = answer.status_code

    ticking = threading.Thread(target=lambda: answers.setdefault("tick", schedules.tick()))
    working = threading.Thread(target=worker)
    ticking.start()
    working.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not rows(  # the worker waits for a lock
        database_url,
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database()",
    ):
        time.sleep(0.05)
    go_on.set()
    ticking.join(30)
    working.join(30)
    assert answers["worker"] == 200
    [done] = rows(database_url, "SELECT status FROM integration_jobs WHERE id = %s", job["id"])
    assert done["status"] == "error"
    [paused] = rows(database_url, "SELECT enabled, paused_reason FROM integration_schedules")
    assert paused["enabled"] is False and "5 falhas seguidas" in paused["paused_reason"]
    assert answers["tick"]["skipped"] == 1  # its occurrence met the live job


def test_a_rescue_batch_ending_a_job_does_not_deadlock_with_the_tick(
    database_url: str, monkeypatch: pytest.MonkeyPatch, recorder: RecordingDispatcher
) -> None:
    """The rescue hands back a batch in one transaction: it retried one integration's job
    (an update the tick's insert then waits on) and ended another's, locking that schedule,
    which the tick held: a deadlock. Its schedule rows are now locked before any hand-back."""
    from shared.jobs.sweep import rescue
    from shared.queue import kind as qkind

    acme = seed_tenant(database_url, "acme", providers={"acessorias": {}, "bomcontrole": {}})
    for provider in ("acessorias", "bomcontrole"):
        schedule(database_url, acme, cron="* * * * *", provider=provider,
                 next_run_at="date_trunc('minute', now())")  # fmt: skip
    ids = {}
    with psycopg.connect(database_url) as conn:
        for provider, attempts in (("acessorias", 1), ("bomcontrole", 3)):
            row = conn.execute(
                "INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts,"
                " max_attempts, started_at, heartbeat_at, lease_token) VALUES (%s, %s,"
                " 'running', %s, 3, now() - interval '2 hours', now() - interval '2 hours',"
                " gen_random_uuid()) RETURNING id",
                [acme.id, provider, attempts],
            ).fetchone()
            assert row is not None
            ids[provider] = row[0]
    holding, retried = threading.Event(), threading.Event()
    real_enqueue, real_rescue = schedules._enqueue, qkind.IntegrationSync.rescue

    def enqueue(conn: Any, steps: Any) -> None:  # both schedule rows are held by now
        holding.set()
        deadline = time.monotonic() + 10
        while (
            not retried.is_set()
            and time.monotonic() < deadline
            and not rows(
                database_url,  # or the rescue waits for them (it locks them first now)
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()",
            )
        ):
            time.sleep(0.05)
        real_enqueue(conn, steps)

    def slow_rescue(self: Any, conn: Any, row: Any) -> Any:
        done = real_rescue(self, conn, row)
        if row["id"] == ids["acessorias"]:
            retried.set()
            time.sleep(0.5)  # the tick's insert now waits for this transaction
        return done

    monkeypatch.setattr(schedules, "_enqueue", enqueue)
    monkeypatch.setattr(qkind.IntegrationSync, "rescue", slow_rescue)
    out: dict[str, Any] = {}
    ticking = threading.Thread(target=lambda: out.setdefault("tick", schedules.tick()))
    ticking.start()
    assert holding.wait(10)
    out["rescued"] = rescue(qkind.KIND)
    ticking.join(30)
    assert out["rescued"] == 2 and out["tick"]["schedules"] == 2
    [ended] = rows(database_url, "SELECT status FROM integration_jobs WHERE id = %s",
                   ids["bomcontrole"])  # fmt: skip
    assert ended["status"] == "error"


def test_a_skipped_or_missed_occurrence_keeps_the_last_job_it_ran(database_url: str) -> None:
    """The schedule's last job stays the last one it created: an occurrence skipped beside
    a live job or missed under `skip` creates none, and must not blank it (the list showed
    no last job, and a waiting `all` schedule lost the job it waits for)."""
    acme = seed_tenant(database_url, "acme")
    schedule(database_url, acme, cron="* * * * *", next_run_at="date_trunc('minute', now())",
             missed="skip")  # fmt: skip
    assert schedules.tick()["enqueued"] == 1
    [ran] = jobs(database_url, acme)

    def last() -> dict[str, Any]:
        [s] = rows(database_url, "SELECT last_job_id, last_outcome FROM integration_schedules")
        return s

    assert last() == {"last_job_id": ran["id"], "last_outcome": "enqueued"}
    with psycopg.connect(database_url) as conn:  # due again while its job is still live
        conn.execute("UPDATE integration_schedules SET next_run_at = date_trunc('minute', now()),"
                     " due_at = date_trunc('minute', now())")  # fmt: skip
    assert schedules.tick()["skipped"] == 1
    assert last() == {"last_job_id": ran["id"], "last_outcome": "skipped"}
    soon = db_now(database_url) + timedelta(minutes=30)
    daily = f"{soon.minute} {soon.hour} * * *"  # its last occurrence ~23.5 hours ago: missed
    yesterday = soon.replace(second=0, microsecond=0) - timedelta(days=1)
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE integration_schedules SET cron = %s, next_run_at = %s, due_at = %s",
                     (daily, yesterday, yesterday))  # fmt: skip
    assert schedules.tick()["missed"] == 1
    assert last() == {"last_job_id": ran["id"], "last_outcome": "missed"}


def test_a_backlog_longer_than_a_tick_is_taken_oldest_due_first(
    database_url: str, configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tick whose budget ends after one batch takes the schedules due longest ago: the
    newest due must not keep the oldest waiting tick after tick."""
    configure(SCHEDULE_TICK_BATCH="2")
    tenants = [seed_tenant(database_url, f"t{i}") for i in range(5)]
    for minutes, tenant in enumerate(tenants, start=1):  # t0 due most recently, t4 longest ago
        due = f"date_trunc('minute', now()) - interval '{minutes} minutes'"
        schedule(database_url, tenant, cron="* * * * *", next_run_at=due)
    clock = iter([0.0, 0.0, 10.0])  # the deadline, one batch, then the budget is spent
    monkeypatch.setattr(schedules.time, "monotonic", lambda: next(clock, 10.0))
    assert schedules.tick(budget_s=1)["schedules"] == 2
    assert [len(jobs(database_url, t)) for t in tenants] == [0, 0, 0, 1, 1]


def test_the_list_shows_an_occurrence_due_but_not_yet_taken_as_the_next_run(
    database_url: str,
) -> None:
    """Between its due time and the next sweep, a schedule's next run is the occurrence
    the sweep is about to take, not the one after it (which the list showed)."""
    acme = seed_tenant(database_url, "acme")
    schedule(database_url, acme, cron="0 * * * *", next_run_at="date_trunc('hour', now())")
    listed = function_client("integration-schedules").get(
        "/", query_string={"tenant_id": str(acme.id)},
        headers={"Authorization": f"Bearer {acme.member_token}"},
    )  # fmt: skip
    [entry] = listed.get_json()["schedules"]
    due = datetime.fromisoformat(entry["next_run_at"])
    assert due <= db_now(database_url) and len(entry["next_runs"]) == 5
    runs = [datetime.fromisoformat(r) for r in entry["next_runs"]]
    assert runs == [due + timedelta(hours=h) for h in range(5)]


def test_a_schedule_past_its_occurrence_but_within_its_offset_is_not_taken(
    database_url: str, configure: Configure
) -> None:
    """Due at its occurrence plus its spread offset: before that, no sweep takes it (a
    batch of one taking it, planning nothing and leaving it in place, took it again and
    again to the end of its budget)."""
    configure(SCHEDULE_TICK_BATCH="1")
    acme = seed_tenant(database_url, "acme")
    now = db_now(database_url)
    occurrence = (now - timedelta(minutes=1)).replace(second=0, microsecond=0)
    schedule(database_url, acme, cron=f"{occurrence.minute} * * * *", next_run_at=occurrence)
    with psycopg.connect(database_url) as conn:  # due 5 minutes after its occurrence
        conn.execute(
            "UPDATE integration_schedules SET spread = true, offset_s = 299,"
            " due_at = next_run_at + interval '299 seconds'"
        )
    report = schedules.tick(budget_s=10)
    assert report == {"schedules": 0, "enqueued": 0, "skipped": 0, "missed": 0}
    assert jobs(database_url, acme) == []
    [s] = rows(database_url, "SELECT next_run_at, last_outcome FROM integration_schedules")
    assert (s["next_run_at"], s["last_outcome"]) == (occurrence, None)


def test_turning_the_spread_off_or_on_moves_the_due_time_with_the_offset(
    database_url: str,
) -> None:
    """Saved with the same cron and zone but the spread switched, a schedule's offset
    changes: its due time is its occurrence plus the new offset (it kept the old one, and
    ran minutes late with the spread off, or was taken early with it on)."""
    tenant_id = next(  # a tenant whose daily offset is over a minute (0 once in 300)
        t for t in iter(uuid.uuid4, None)
        if cron.spread_offset(f"{t}:acessorias", "0 2 * * *", "UTC", datetime.now(UTC)) > 60
    )  # fmt: skip
    acme = seed_tenant(database_url, "acme", tenant_id=tenant_id)

    def saved(spread: bool) -> tuple[int, timedelta]:
        answer = put(acme, acme.admin_token, cron="0 2 * * *", timezone="UTC", spread=spread)
        assert answer.status_code == 200, answer.get_json()
        [s] = rows(database_url, "SELECT offset_s, next_run_at, due_at FROM integration_schedules")
        assert s["offset_s"] == answer.get_json()["offset_s"]
        return s["offset_s"], s["due_at"] - s["next_run_at"]

    offset, delay = saved(True)
    assert offset > 60 and delay == timedelta(seconds=offset)
    assert saved(False) == (0, timedelta(0))
    assert saved(True) == (offset, timedelta(seconds=offset))


def test_all_waits_for_its_previous_job_while_it_runs_too(database_url: str) -> None:
    """`all` waits for its previous occurrence's job while it is running as well as while
    it is pending: taken beside it, the next occurrence would be skipped, a run lost."""
    acme = seed_tenant(database_url, "acme")
    cron_, missed = three_hours_of_outage(database_url)
    schedule(database_url, acme, cron=cron_, next_run_at=missed[0], missed="all")
    assert schedules.tick()["enqueued"] == 1
    with psycopg.connect(database_url) as conn:  # a worker claimed it
        conn.execute("UPDATE integration_jobs SET status = 'running', started_at = now()")
    assert schedules.tick() == {"schedules": 0, "enqueued": 0, "skipped": 0, "missed": 0}
    assert rows(database_url, "SELECT count(*) AS n FROM integration_logs"
                " WHERE status = 'skipped'")[0]["n"] == 0  # fmt: skip
    finish_all(database_url)
    for _ in range(2):
        assert schedules.tick()["enqueued"] == 1
        finish_all(database_url)
    assert [j["scheduled_for"] for j in jobs(database_url, acme)] == missed


def test_a_tick_that_enqueues_wakes_the_workers_at_most_ten(
    database_url: str, recorder: RecordingDispatcher
) -> None:
    """The jobs a tick creates start now, not at the next sweep: it sends a drain wake-up
    per job, up to the worker's ten instances; a tick that enqueues nothing sends none."""
    tenants = [seed_tenant(database_url, f"t{i}") for i in range(14)]
    for tenant in tenants[:3]:
        schedule(database_url, tenant, cron="* * * * *", next_run_at="date_trunc('minute', now())")
    recorder.take()
    assert schedules.tick()["enqueued"] == 3
    woken = recorder.take()
    assert [t.function for t in woken] == [schedules.KIND.function] * 3
    for tenant in tenants[3:]:
        schedule(database_url, tenant, cron="* * * * *", next_run_at="date_trunc('minute', now())")
    assert schedules.tick()["enqueued"] == 11
    assert len(recorder.take()) == schedules.WAKE_WORKERS == 10
    assert schedules.tick()["enqueued"] == 0 and recorder.take() == []
