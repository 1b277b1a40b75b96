"""integration-metrics: does its cost stay flat as the job history grows?

    .venv/bin/python -m bench.bench_metrics [--jobs 10000 1000000] [--calls 20] [--rounds 3]
        [--days 30] [--json PATH]

For each size N: a fresh database (DATABASE_URL's server, else an embedded PostgreSQL),
migrated, and N jobs of history generated with generate_series in SQL. One target tenant
("acme") has the same recent activity in every size — 3 providers, one run an hour for 30
days (2,160 final jobs), a pending job, 5,000 leads and 3 exports — and the rest of the N
jobs is spread half over acme's older days (31 days to 2 years ago) and half over 50 of
100 other tenants across 2 years. So between sizes acme's own history grows ~100x and its
window does not. The NOTIFY trigger is off while seeding (no listener; 1M notifications
would dominate), then VACUUM ANALYZE (what autovacuum does to such a table). Seeding 1M
jobs takes 25-45 s on 2 shared cores.

Every size is seeded first, then measured in turns, round by round (a noisy neighbour
slows all sizes alike), through the function as functions-framework loads it (Flask test
client, no network), after 3 warm-up calls per round; the median of all timed calls of
  * JSON for acme, as a member (RLS) — the contract: within 2x between sizes;
  * Prometheus text for acme, as the service;
  * Prometheus text for all tenants, as the service — for information: it reads every
    tenant's jobs in the window, and here the other tenants' window grows with N.
Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from flask.testing import FlaskClient

from bench import _pg
from infra import migrate
from infra.local.gateway import load_function

ROOT = Path(__file__).resolve().parents[1]
RECENT = 3 * 30 * 24  # acme's final jobs of the last 30 days, in every size
OTHER_TENANTS = 100

SEED_TENANTS = (
    """
INSERT INTO tenants (id, slug, name)
SELECT CASE WHEN g = 0 THEN %(acme)s::uuid ELSE gen_random_uuid() END,
       CASE WHEN g = 0 THEN 'acme' ELSE 'tenant-' || g END, 'Tenant ' || g
FROM generate_series(0, %(others)s) AS g""",
    "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%(acme)s, %(member)s, 'member')",
    """
INSERT INTO tenant_integrations (tenant_id, provider_slug, enabled)
SELECT %(acme)s, p, true FROM unnest(ARRAY['acessorias', 'onecode', 'bomcontrole']) AS p""",
)
# acme's recent activity: one run an hour per provider for 30 days; 10% errors, 4% canceled.
SEED_RECENT = """
INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts, created_at,
                              started_at, finished_at, execution_time_ms, run_after)
SELECT %(acme)s, p.slug,
       CASE WHEN h %% 10 = 0 THEN 'error' WHEN h %% 25 = 0 THEN 'canceled' ELSE 'success' END,
       1, x.f - make_interval(secs => x.ms / 1000.0 + 1),
       x.f - make_interval(secs => x.ms / 1000.0), x.f, x.ms, x.f
FROM unnest(ARRAY['acessorias', 'onecode', 'bomcontrole']) AS p(slug),
     generate_series(0, 719) AS h,
     LATERAL (SELECT now() - make_interval(hours => h, mins => 7) AS f,
                     1000 + (h * 7919) %% 120000 AS ms) AS x
"""
# The rest: even rows are acme's older history (31 days to ~2 years ago), odd rows the
# other tenants' (now to 2 years ago); 10% errors, 5% canceled.
SEED_HISTORY = """
INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts, created_at,
                              started_at, finished_at, execution_time_ms, run_after)
SELECT x.tenant_id, (ARRAY['acessorias', 'onecode', 'bomcontrole'])[1 + g %% 3],
       CASE WHEN g %% 20 < 2 THEN 'error' WHEN g %% 20 = 2 THEN 'canceled' ELSE 'success' END,
       1, x.f - make_interval(secs => x.ms / 1000.0 + 1),
       x.f - make_interval(secs => x.ms / 1000.0), x.f, x.ms, x.f
FROM generate_series(1, %(count)s) AS g,
     LATERAL (SELECT
       CASE WHEN g %% 2 = 0 THEN %(acme)s::uuid ELSE (%(others)s::uuid[])[1 + g %% %(n_others)s] END
         AS tenant_id,
       CASE WHEN g %% 2 = 0
            THEN now() - interval '31 days'
                 - make_interval(mins => ((g::bigint * 7) %% (700 * 1440))::int)
            ELSE now() - make_interval(mins => ((g::bigint * 7) %% (730 * 1440))::int) END AS f,
       500 + (g::bigint * 104729) %% 300000 AS ms) AS x
"""
SEED_LIVE = (
    """
INSERT INTO integration_jobs (tenant_id, provider_slug, status, run_after)
VALUES (%(acme)s, 'acessorias', 'pending', now() - interval '5 minutes')""",
    """
INSERT INTO leads (tenant_id, id, criado, updated_at)
SELECT %(acme)s, g, now() - make_interval(mins => g), now() - make_interval(mins => g)
FROM generate_series(1, 5000) AS g""",
    """
INSERT INTO gestao_scouter_export_jobs (tenant_id, status, total_leads, exported_leads,
  field_mappings, batch_size, created_at, started_at, finished_at, heartbeat_at,
  cursor_criado, cursor_id)
SELECT %(acme)s, 'completed', 5000, 5000 - d, '{}', 500, now() - make_interval(days => d),
       now() - make_interval(days => d), now() - make_interval(days => d) + interval '30 s',
       now() - make_interval(days => d) + interval '30 s', now() - make_interval(days => d), 1
FROM generate_series(1, 3) AS d""",
)


def configure(db_url: str) -> None:
    """Point shared/ at the database (settings are read once per process)."""
    import os

    from shared import db
    from shared.settings import reload_settings

    os.environ.update({
        "DATABASE_URL": db_url, "DISPATCHER": "disabled", "JWT_SECRET": "bench-" + "s" * 40,
    })  # fmt: skip
    reload_settings()
    db.close_pool()


def seed(db_url: str, jobs: int, days: int, acme: uuid.UUID, member: uuid.UUID) -> dict[str, Any]:
    """The history of one size; seconds it took and what it holds."""
    started = time.perf_counter()
    with psycopg.connect(db_url) as conn:
        for statement in SEED_TENANTS:
            conn.execute(statement, {"acme": acme, "member": member, "others": OTHER_TENANTS})
        others = [r[0] for r in conn.execute("SELECT id FROM tenants WHERE id <> %s", [acme])]
        conn.execute("ALTER TABLE integration_jobs DISABLE TRIGGER integration_jobs_notify")
        conn.execute(SEED_RECENT, {"acme": acme})
        conn.execute(SEED_HISTORY, {
            "acme": acme, "others": others, "n_others": len(others),
            "count": max(jobs - RECENT, 0),
        })  # fmt: skip
        for statement in SEED_LIVE:
            conn.execute(statement, {"acme": acme})
        conn.execute("ALTER TABLE integration_jobs ENABLE TRIGGER integration_jobs_notify")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        since = conn.execute(
            "SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
            " - make_interval(days => %s - 1)",
            [days],
        ).fetchone()[0]  # type: ignore[index]
        counts = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE tenant_id = %(acme)s),"
            " count(*) FILTER (WHERE tenant_id = %(acme)s AND finished_at >= %(since)s),"
            " count(*) FILTER (WHERE finished_at >= %(since)s) FROM integration_jobs",
            {"acme": acme, "since": since},
        ).fetchone()
    assert counts is not None
    return {
        "seed_s": round(time.perf_counter() - started, 1),
        "jobs": counts[0],
        "acme_jobs": counts[1],
        "acme_window_jobs": counts[2],
        "all_window_jobs": counts[3],
    }


FORMS = ("json_acme_ms", "prometheus_acme_ms", "prometheus_all_ms")


@dataclass
class Size:
    """One seeded history and the times measured on it."""

    jobs: int
    url: str
    acme: uuid.UUID
    member: uuid.UUID
    seeded: dict[str, Any]
    times: dict[str, list[float]] = field(default_factory=lambda: {f: [] for f in FORMS})


def timed(call: Callable[[], Any], calls: int, into: list[float]) -> None:
    """3 warm-up calls (a fresh pool, first plans), then `calls` timed ones, in ms."""
    for _ in range(3):
        call()
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        into.append((time.perf_counter() - t0) * 1000)


def measure_round(client: FlaskClient, size: Size, days: int, calls: int) -> None:
    """One round on one size: each form `calls` times, through the loaded function."""
    from shared.auth import mint_token

    configure(size.url)
    user = {"Authorization": f"Bearer {mint_token(user_id=size.member)}"}
    service = {"Authorization": f"Bearer {mint_token(service=True)}", "Accept": "text/plain"}

    def get(headers: dict[str, str], **query: Any) -> Callable[[], Any]:
        def call() -> Any:
            response = client.get("/", query_string={"days": days, **query}, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.get_data(as_text=True)}")
            return response

        return call

    timed(get(user, tenant_id=str(size.acme)), calls, size.times["json_acme_ms"])
    timed(get(service, tenant_id=str(size.acme)), calls, size.times["prometheus_acme_ms"])
    timed(get(service), calls, size.times["prometheus_all_ms"])


def run(server_url: str, args: argparse.Namespace) -> list[Size]:
    """Seed every size, then measure them in turns (round by round), so a noisy neighbour
    on a shared machine slows every size alike."""
    from shared import db

    with ExitStack() as stack:
        sizes = []
        for jobs in args.jobs:
            url = stack.enter_context(_pg.fresh_database(server_url, "metrics"))
            migrate.migrate(url)
            acme, member = uuid.uuid4(), uuid.uuid4()
            sizes.append(Size(jobs, url, acme, member, seed(url, jobs, args.days, acme, member)))
        client = load_function(ROOT / "functions/integration-metrics/main.py").test_client()
        try:
            for _ in range(args.rounds):
                for size in sizes:
                    measure_round(client, size, args.days, args.calls)
        finally:
            db.close_pool()
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bench_metrics", description=__doc__)
    p.add_argument(
        "--jobs", type=int, nargs="+", default=[10_000, 1_000_000],
        help="history sizes (jobs), smallest first; the ratio is last / first",
    )  # fmt: skip
    p.add_argument("--calls", type=int, default=20, help="timed calls per form and round")
    p.add_argument("--rounds", type=int, default=3, help="rounds; sizes are measured in turns")
    p.add_argument("--days", type=int, default=30, help="the report's window")
    p.add_argument("--json", metavar="PATH", help="also write the results to this file")
    args = p.parse_args(argv)
    if min(args.jobs) < RECENT or min(args.calls, args.rounds) < 1:
        p.error(f"every size must be at least {RECENT} jobs; --calls and --rounds at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with _pg.server() as server_url:
        version = _pg.server_version(server_url)
        sizes = run(server_url, args)
    medians = [{f: round(statistics.median(s.times[f]), 2) for f in FORMS} for s in sizes]
    headers = ["history", "seed s", "acme jobs", "acme in window", "all in window",
               "JSON acme ms", "Prom acme ms", "Prom all ms"]  # fmt: skip
    rows = [
        [f"{s.seeded['jobs']:,}", f"{s.seeded['seed_s']}", f"{s.seeded['acme_jobs']:,}",
         f"{s.seeded['acme_window_jobs']:,}", f"{s.seeded['all_window_jobs']:,}",
         *(f"{m[f]}" for f in FORMS)]
        for s, m in zip(sizes, medians, strict=True)
    ]  # fmt: skip
    first, last = medians[0], medians[-1]
    ratios = {f: round(last[f] / first[f], 2) if first[f] else None for f in FORMS}
    rows.append(["ratio last/first", "", "", "", "", *(f"{ratios[f]}x" for f in FORMS)])
    print(f"{version}; median of {args.rounds} rounds x {args.calls} calls per form and size"
          f" (sizes in turns, 3 warm-up calls each round); window {args.days} days\n")  # fmt: skip
    print(_pg.render_table(headers, rows))
    print("\ntarget: JSON acme within 2x (Prom all follows every tenant's jobs in the window)")
    if args.json:
        results = [{"size": s.jobs, **s.seeded, **m} for s, m in zip(sizes, medians, strict=True)]
        _pg.write_json(args.json, {"server": version, "results": results, "ratios": ratios})
    return 0


if __name__ == "__main__":
    sys.exit(main())
