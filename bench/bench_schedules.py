"""The schedules tick: due schedules turned into jobs, batched vs one schedule at a time.

    .venv/bin/python -m bench.bench_schedules [--schedules N] [--due D] [--loop-due L]

N schedules (tenants × integrations, hourly crons in a few zones), D of them due now. The
tick (`shared.queue.schedules.tick`, what the minute sweep runs) must enqueue every due
occurrence exactly once in one bounded pass; the per-schedule loop does the same work the
obvious way — for each due schedule its own transaction: lock it, plan it, insert the job
with its log row, move it on, commit. The loop runs on L of the due schedules (it is slow)
and its rate is compared. One PostgreSQL server (DATABASE_URL, else an embedded one), a
fresh database per contender. Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench import _pg
from infra import migrate
from shared import cron, db
from shared.cron import Missed
from shared.queue.schedules import tick
from shared.settings import get_settings, reload_settings

INTEGRATIONS_PER_TENANT = 50

SEED_TENANTS = """
INSERT INTO tenants (slug, name)
SELECT 'bench-' || g, 'Bench ' || g FROM generate_series(1, %(tenants)s) AS g
"""
SEED_INTEGRATIONS = """
INSERT INTO tenant_integrations (tenant_id, provider_slug, enabled)
SELECT t.id, 'noop-' || p, true FROM tenants t CROSS JOIN generate_series(1, %(per)s) AS p
"""
# Hourly crons at every minute of the hour in four zones; the first D are due (their latest
# occurrence passed 1-4 minutes ago), the rest due in about an hour.
SEED_SCHEDULES = """
INSERT INTO integration_schedules (tenant_id, provider_slug, cron, timezone, missed, spread,
                                   next_run_at, due_at)
SELECT tenant_id, provider_slug, extract(minute FROM occurrence)::int || ' * * * *',
       (ARRAY['America/Sao_Paulo', 'UTC', 'Europe/Berlin', 'America/New_York'])[1 + n %% 4],
       'once', false, occurrence, occurrence
FROM (SELECT tenant_id, provider_slug, row_number() OVER (ORDER BY tenant_id, provider_slug) AS n
      FROM tenant_integrations) AS i,
     LATERAL (SELECT date_trunc('minute', now())
                     - make_interval(mins => (n %% 4)::int + 1)
                     + CASE WHEN n <= %(due)s THEN interval '0' ELSE interval '1 hour' END
                     AS occurrence) AS o
WHERE n <= %(schedules)s
"""

LOOP_TAKE = """
SELECT s.*, now() AS db_now FROM integration_schedules s
WHERE s.enabled AND s.due_at <= now() ORDER BY s.due_at LIMIT 1 FOR UPDATE SKIP LOCKED
"""
LOOP_INSERT = """
WITH job AS (
  INSERT INTO integration_jobs (tenant_id, provider_slug, trigger, scheduled_for)
  VALUES (%(t)s, %(p)s, 'schedule', %(at)s) ON CONFLICT DO NOTHING RETURNING *
)
INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
SELECT id, tenant_id, provider_slug, 'pending', 'job created by its schedule', '{}' FROM job
"""
LOOP_ADVANCE = """
UPDATE integration_schedules SET next_run_at = %(next)s, due_at = %(next)s, last_run_at = %(at)s,
       last_outcome = 'enqueued', updated_at = now()
WHERE tenant_id = %(t)s AND provider_slug = %(p)s
"""


def seed(url: str, schedules: int, due: int) -> None:
    migrate.migrate(url)
    tenants = -(-schedules // INTEGRATIONS_PER_TENANT)
    with psycopg.connect(url) as conn:
        conn.execute(SEED_TENANTS, {"tenants": tenants})
        conn.execute(SEED_INTEGRATIONS, {"per": INTEGRATIONS_PER_TENANT})
        conn.execute(SEED_SCHEDULES, {"due": due, "schedules": schedules})
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def jobs_and_duplicates(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) - count(DISTINCT (tenant_id, provider_slug, scheduled_for))"
            " FROM integration_jobs"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def run_tick(url: str) -> tuple[float, int]:
    """The tick as the sweep runs it, against `url`; (seconds, jobs)."""
    os.environ.update({"DATABASE_URL": url, "DISPATCHER": "disabled",
                       "SCHEDULE_TICK_BUDGET_S": "600"})  # fmt: skip
    reload_settings()
    db.close_pool()
    start = time.perf_counter()
    report = tick()
    seconds = time.perf_counter() - start
    db.close_pool()
    return seconds, report["enqueued"]


def run_loop(url: str, limit: int) -> tuple[float, int]:
    """One transaction per schedule: lock, plan, insert, advance, commit; (seconds, jobs)."""
    schedule = get_settings().schedules
    done = 0
    with psycopg.connect(url, row_factory=dict_row) as conn:
        start = time.perf_counter()
        while done < limit:
            with conn.transaction():
                row: dict[str, Any] | None = conn.execute(LOOP_TAKE).fetchone()
                if row is None:
                    break
                plan = cron.plan(
                    cron=row["cron"], zone=row["timezone"], next_run_at=row["next_run_at"],
                    offset_s=row["offset_s"], now=row["db_now"], policy=Missed(row["missed"]),
                    grace_s=schedule.grace_s, max_catch_up=schedule.max_catch_up,
                )  # fmt: skip
                params = {"t": row["tenant_id"], "p": row["provider_slug"], "at": plan.run}
                conn.execute(LOOP_INSERT, params)
                conn.execute(LOOP_ADVANCE, {**params, "next": plan.next_run_at})
            done += 1
        return time.perf_counter() - start, done


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bench_schedules", description=__doc__)
    p.add_argument("--schedules", type=int, default=100_000, help="schedules in all (N)")
    p.add_argument("--due", type=int, default=10_000, help="of them due now (D)")
    p.add_argument("--loop-due", type=int, default=2_000, help="due ones the loop runs (L)")
    args = p.parse_args(argv)
    if not 1 <= args.due <= args.schedules or args.loop_due < 1:
        p.error("need 1 <= --due <= --schedules and --loop-due >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with _pg.server() as server_url:
        version = _pg.server_version(server_url)
        with _pg.fresh_database(server_url, "sched_tick") as url:
            seed(url, args.schedules, args.due)
            seconds, enqueued = run_tick(url)
            jobs, duplicates = jobs_and_duplicates(url)
            again = run_tick(url)[1]
        with _pg.fresh_database(server_url, "sched_loop") as url:
            seed(url, args.schedules, args.due)
            loop_seconds, looped = run_loop(url, min(args.loop_due, args.due))
    tick_rate, loop_rate = enqueued / seconds, looped / loop_seconds
    print(f"{version}; {args.schedules:,} schedules, {args.due:,} due", file=sys.stderr)
    print("| contender | schedules run | seconds | jobs/s | × loop |")
    print("|---|---|---|---|---|")
    print(f"| tick (batched, one pass) | {enqueued:,} | {seconds:.2f} | {tick_rate:,.0f} | "
          f"**{tick_rate / loop_rate:.1f}** (target ≥ 20) |")  # fmt: skip
    print(f"| per-schedule loop | {looped:,} | {loop_seconds:.2f} | {loop_rate:,.0f} | 1.0 |")
    print(f"\nexactly once: {jobs:,} jobs for {args.due:,} due schedules, {duplicates} duplicates; "
          f"a second tick enqueued {again}")  # fmt: skip
    return 0 if jobs == args.due and duplicates == 0 and again == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
