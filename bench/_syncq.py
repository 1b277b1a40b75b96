"""The syncq contender: store.claim / store.release in batches from K worker threads.

Each thread owns one psycopg connection (the same options as shared.db's pool) and loops:
claim up to B due jobs in one transaction, run a no-op provider on each, finish the batch
(success, result {}) in a second transaction. Every job still gets its claim and finish
integration_logs rows and its tenant_integrations.last_* update, exactly as in production.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from bench._pg import Result
from infra import migrate
from shared.db import Conn, connect_kwargs
from shared.jobs.store import Release
from shared.queue import store
from shared.queue.models import JobStatus

PROVIDERS_PER_TENANT = 100
ENQUEUE_CHUNK = 1000

# Setup: tenants x provider slugs, each pair an enabled integration (one live job per pair).
SEED_TENANTS = """
INSERT INTO tenants (slug, name)
SELECT 'bench-' || g, 'Bench ' || g FROM generate_series(1, %(tenants)s) AS g
"""
SEED_INTEGRATIONS = """
INSERT INTO tenant_integrations (tenant_id, provider_slug, enabled, config)
SELECT t.id, 'noop-' || p, true, '{}'::jsonb
FROM tenants t CROSS JOIN generate_series(1, %(providers)s) AS p
"""
PAIRS = """
SELECT tenant_id, provider_slug FROM tenant_integrations
ORDER BY tenant_id, provider_slug LIMIT %(limit)s
"""
# Bulk enqueue: the rows store.submit writes (job + its 'job created' log), many at once.
ENQUEUE = """
WITH job AS (
  INSERT INTO integration_jobs (tenant_id, provider_slug, payload)
  SELECT t, p, '{}'::jsonb FROM unnest(%(tenants)s::uuid[], %(providers)s::text[]) AS i(t, p)
  RETURNING id, tenant_id, provider_slug
)
INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
SELECT id, tenant_id, provider_slug, 'pending', 'job created', '{}'::jsonb FROM job
"""
CHECK = """
SELECT
  (SELECT count(*) FROM integration_jobs WHERE status = 'success') AS success,
  (SELECT count(*) FROM integration_jobs WHERE status <> 'success') AS other,
  (SELECT count(*) FROM integration_logs) AS logs,
  (SELECT count(*) FROM tenant_integrations WHERE last_status = 'success') AS integrations
"""

Worker = Callable[[Conn, int], int]


def connect(url: str) -> Conn:
    """A connection with the options shared.db gives its pool's connections."""
    conn: Conn = psycopg.connect(url, **connect_kwargs())
    return conn


def seed(url: str, jobs: int) -> None:
    """Migrate and create enough (tenant, provider) integrations for `jobs` live jobs."""
    migrate.migrate(url)
    tenants = -(-jobs // PROVIDERS_PER_TENANT)
    with connect(url) as conn:
        conn.execute(SEED_TENANTS, {"tenants": tenants})
        conn.execute(SEED_INTEGRATIONS, {"providers": PROVIDERS_PER_TENANT})
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def enqueue(url: str, jobs: int) -> float:
    """Insert `jobs` pending jobs in chunks; returns the seconds it took."""
    with connect(url) as conn:
        pairs = conn.execute(PAIRS, {"limit": jobs}).fetchall()
        conn.commit()
        started = time.perf_counter()
        for i in range(0, len(pairs), ENQUEUE_CHUNK):
            chunk = pairs[i : i + ENQUEUE_CHUNK]
            with conn.transaction():
                conn.execute(
                    ENQUEUE,
                    {
                        "tenants": [r["tenant_id"] for r in chunk],
                        "providers": [r["provider_slug"] for r in chunk],
                    },
                )
        elapsed = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE integration_jobs")
    return elapsed


def noop_provider(row: dict[str, Any]) -> dict[str, Any]:
    """The provider's sync: nothing to do, an empty result."""
    return {}


def store_worker(conn: Conn, batch: int) -> int:
    """Claim a batch, run it, finish it; until nothing is due. Returns jobs finished."""
    done = 0
    while True:
        with conn.transaction():
            rows = store.claim(conn, limit=batch)
        if not rows:
            return done
        outcomes = [
            store.final(r["id"], r["lease_token"], JobStatus.SUCCESS, result=noop_provider(r))
            for r in rows
        ]
        with conn.transaction():
            done += len(store.release(conn, outcomes, message="job succeeded"))


def merged_worker(conn: Conn, batch: int) -> int:
    """PROPOSAL variant: finish batch n and claim batch n+1 in one transaction.

    Same store.claim / store.release statements, half the transactions (and commits).
    """
    done = 0
    outcomes: list[Release] = []
    while True:
        with conn.transaction():
            if outcomes:
                done += len(store.release(conn, outcomes, message="job succeeded"))
            rows = store.claim(conn, limit=batch)
        if not rows:
            return done
        outcomes = [
            store.final(r["id"], r["lease_token"], JobStatus.SUCCESS, result=noop_provider(r))
            for r in rows
        ]


def run_workers(url: str, workers: int, batch: int, worker: Worker) -> tuple[float, int]:
    """Start `workers` threads (one connection each) at once; wall seconds and jobs done."""
    conns = [connect(url) for _ in range(workers)]
    for c in conns:
        c.autocommit = True  # each conn.transaction() is then exactly BEGIN ... COMMIT
    counts = [0] * workers
    gate = threading.Barrier(workers + 1)

    def loop(i: int) -> None:
        gate.wait()
        counts[i] = worker(conns[i], batch)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    gate.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    return elapsed, sum(counts)


def check(url: str, jobs: int) -> dict[str, int]:
    """Every job succeeded with its logs (created, claimed, finished) and last_* rows."""
    with connect(url) as conn:
        row = conn.execute(CHECK).fetchone()
    assert row is not None
    counts = {k: int(v) for k, v in row.items()}
    expected = {"success": jobs, "other": 0, "logs": 3 * jobs, "integrations": jobs}
    if counts != expected:
        raise RuntimeError(f"syncq bench left the queue wrong: {counts} != {expected}")
    return counts


def run(
    url: str, *, jobs: int, workers: int, batch: int, label: str = "syncq", merged: bool = False
) -> Result:
    """Seed, enqueue, then drain with `workers` threads; verify the rows afterwards."""
    seed(url, jobs)
    enqueue_s = enqueue(url, jobs)
    worker = merged_worker if merged else store_worker
    seconds, done = run_workers(url, workers, batch, worker)
    check(url, jobs)
    notes = "store.claim + store.release, 1 psycopg conn per thread"
    if merged:
        notes = "PROPOSAL: finish(n) + claim(n+1) in one transaction"
    return Result(label, done, workers, batch, seconds, enqueue_seconds=enqueue_s, notes=notes)
