"""The queue's claim and lease invariants, pinned on real PostgreSQL (DESIGN 3.3, 3.4).

Each test fails when one guard is removed: the claim's FOR UPDATE or SKIP LOCKED, the lease
condition of heartbeat/retry/finish/renew, the rescue's stale threshold. The store is reached only
through the helpers below, so a new job engine rewires them and nothing else; the tests
assert on the rows.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from shared import db
from shared.errors import LeaseLost
from shared.jobs import store as engine
from shared.jobs.lease import Lease
from shared.queue import store
from shared.queue.kind import KIND
from shared.queue.models import JobStatus
from tests.support import TenantFixture, rows, seed_tenant

pytestmark = pytest.mark.db


# --- the engine, as these tests use it --------------------------------------------------


def submit(conn: db.Conn, tenant: TenantFixture, provider: str) -> uuid.UUID:
    """A pending job of the tenant for this provider; its id."""
    row = store.submit(
        conn, tenant_id=tenant.id, provider_slug=provider, payload={}, created_by=tenant.admin
    )
    job_id: uuid.UUID = row["id"]
    return job_id


def claim(conn: db.Conn, limit: int = 1) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Claim up to `limit` due jobs: (job id, lease) of each."""
    return [(r["id"], r["lease_token"]) for r in store.claim(conn, limit=limit)]


def heartbeat(conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID, progress: int) -> None:
    """Record progress under the lease (LeaseLost when it is not held)."""
    Lease(store.TABLE, {"id": job_id, "lease_token": lease}).heartbeat(conn, progress=progress)


def retry(conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID) -> int:
    """Back to pending at once under the lease; how many jobs moved."""
    return len(store.release(conn, [store.retry(job_id, lease, "boom", 0.0)], message="retry"))


def finish(conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID, status: JobStatus) -> int:
    """A final state under the lease; how many jobs moved."""
    done = store.final(job_id, lease, status, error="zombie" if status == "error" else None)
    return len(store.release(conn, [done], message="finished"))


def rescue(conn: db.Conn, stale_after_s: float) -> None:
    """The sweep's rescue of running jobs silent for longer than `stale_after_s` (the
    queue kind's own rule), then the retry made due at once: backoff is not pinned here."""
    rescued = [
        row["id"]
        for stale in engine.lock_stale(conn, store.TABLE, stale_after_s=stale_after_s, limit=500)
        for row in KIND.rescue(conn, stale)
    ]
    conn.execute("UPDATE integration_jobs SET run_after = now() WHERE id = ANY(%s)", [rescued])


# --- rows ---------------------------------------------------------------------------------


def job(database_url: str, job_id: uuid.UUID) -> dict[str, Any]:
    return rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]


def log_statuses(database_url: str, job_id: uuid.UUID) -> list[str]:
    found = rows(
        database_url, "SELECT status FROM integration_logs WHERE job_id = %s ORDER BY id", job_id
    )
    return [r["status"] for r in found]


def go_silent(database_url: str, job_id: uuid.UUID) -> None:
    """The job's worker stopped heartbeating an hour ago."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE integration_jobs SET heartbeat_at = now() - interval '1 hour',"
            " started_at = now() - interval '1 hour' WHERE id = %s",
            [job_id],
        )


# --- claim ----------------------------------------------------------------------------------

WORKERS = 8
ROUNDS = 5


def test_concurrent_claims_take_every_job_exactly_once(database_url: str) -> None:
    tenant = seed_tenant(database_url, "acme")
    with db.transaction() as conn:
        jobs = {submit(conn, tenant, f"p{i:02}") for i in range(WORKERS * ROUNDS)}
    barrier = threading.Barrier(WORKERS)

    def worker(_: int) -> list[uuid.UUID]:
        """ROUNDS claims on a connection of its own, each at the same moment as the others'."""
        taken: list[uuid.UUID] = []
        with db.dedicated_connection() as conn:
            for _round in range(ROUNDS):
                barrier.wait(timeout=30)
                with conn.transaction():
                    taken += [job_id for job_id, _ in claim(conn)]
        return taken

    with ThreadPoolExecutor(WORKERS) as pool:
        per_worker = list(pool.map(worker, range(WORKERS)))
    claimed = [job_id for taken in per_worker for job_id in taken]
    assert sorted(claimed) == sorted(jobs)  # every job once, no job twice
    assert all(len(taken) == ROUNDS for taken in per_worker)  # nobody left empty-handed
    got = rows(database_url, "SELECT status, attempts, lease_token FROM integration_jobs")
    assert {(r["status"], r["attempts"]) for r in got} == {("running", 1)}
    assert len({r["lease_token"] for r in got}) == len(jobs)
    claims = rows(
        database_url,
        "SELECT job_id, count(*) AS n FROM integration_logs WHERE message = 'job claimed'"
        " GROUP BY job_id",
    )
    assert {r["job_id"] for r in claims} == jobs and {r["n"] for r in claims} == {1}


def test_a_claim_skips_a_locked_job_instead_of_waiting_for_it(database_url: str) -> None:
    tenant = seed_tenant(database_url, "acme")
    with db.transaction() as conn:
        first = submit(conn, tenant, "first")
    with db.transaction() as conn:  # created later: the claim's second choice
        second = submit(conn, tenant, "second")
    with psycopg.connect(database_url) as holder:  # another transaction holds the oldest job
        holder.execute("SELECT 1 FROM integration_jobs WHERE id = %s FOR UPDATE", [first])
        with db.transaction() as conn:
            conn.execute("SET LOCAL lock_timeout = '3s'")  # a claim that waits fails the test
            got = claim(conn)
        assert [job_id for job_id, _ in got] == [second]
        assert job(database_url, first)["status"] == "pending"
    with db.transaction() as conn:  # released: now it is claimed
        assert [job_id for job_id, _ in claim(conn)] == [first]
    assert (job(database_url, first)["attempts"], job(database_url, second)["attempts"]) == (1, 1)


def test_a_named_claim_takes_that_job_or_nothing(database_url: str) -> None:
    """A wake-up or a direct sync names its job: the claim takes that one, never the oldest
    due job instead, and nothing at all once the named one is no longer due."""
    tenant = seed_tenant(database_url, "acme")
    with db.transaction() as conn:
        older = submit(conn, tenant, "older")
    with db.transaction() as conn:
        named = submit(conn, tenant, "named")
    with db.transaction() as conn:
        got = store.claim(conn, limit=1, job_id=named)
    assert [r["id"] for r in got] == [named]
    with db.transaction() as conn:  # running now: not due, so nothing (the older job waits)
        assert store.claim(conn, limit=1, job_id=named) == []
    assert (job(database_url, older)["status"], job(database_url, older)["attempts"]) == (
        "pending", 0,
    )  # fmt: skip


def test_a_release_without_a_lease_leaves_a_finished_job_alone(database_url: str) -> None:
    """A pending job's cancel is a release with no lease, and a finished job holds none
    either: only a live job (pending or running) may change."""
    tenant = seed_tenant(database_url, "acme")
    with db.transaction() as conn:
        job_id = submit(conn, tenant, "scripted")
    with db.transaction() as conn:
        [(_, lease)] = claim(conn)
        assert finish(conn, job_id, lease, JobStatus.SUCCESS) == 1
    before, logged = job(database_url, job_id), log_statuses(database_url, job_id)
    with db.transaction() as conn:
        late = store.final(job_id, None, JobStatus.CANCELED)
        assert store.release(conn, [late], message="job canceled") == []
    assert job(database_url, job_id) == before
    assert log_statuses(database_url, job_id) == logged


def test_a_job_sent_back_to_pending_shows_no_heartbeat(database_url: str) -> None:
    """A job waiting for its retry has nobody working on it: no lease, no heartbeat."""
    tenant = seed_tenant(database_url, "acme")
    with db.transaction() as conn:
        job_id = submit(conn, tenant, "scripted")
    with db.transaction() as conn:
        [(_, lease)] = claim(conn)
        heartbeat(conn, job_id, lease, 40)
        assert retry(conn, job_id, lease) == 1
    after = job(database_url, job_id)
    assert (after["status"], after["lease_token"], after["heartbeat_at"]) == ("pending", None, None)


# --- leases ---------------------------------------------------------------------------------


def claimed_rescued_and_claimed_again(
    database_url: str,
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A job claimed (lease L1), gone stale, rescued and claimed again (lease L2) by a new
    worker that reported progress 30: (job id, L1, L2)."""
    tenant = seed_tenant(database_url, "acme")
    with db.transaction() as conn:
        job_id = submit(conn, tenant, "scripted")
    with db.transaction() as conn:
        [(_, old_lease)] = claim(conn)
    go_silent(database_url, job_id)
    with db.transaction() as conn:
        rescue(conn, stale_after_s=60)
    assert (job(database_url, job_id)["status"], job(database_url, job_id)["lease_token"]) == (
        "pending", None,
    )  # fmt: skip
    with db.transaction() as conn:
        [(again, new_lease)] = claim(conn)
        heartbeat(conn, job_id, new_lease, 30)
    assert again == job_id and new_lease != old_lease
    return job_id, old_lease, new_lease


def stale_heartbeat(conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID) -> None:
    with pytest.raises(LeaseLost):
        heartbeat(conn, job_id, lease, 90)


def stale_retry(conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID) -> None:
    assert retry(conn, job_id, lease) == 0


def stale_finish_error(conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID) -> None:
    assert finish(conn, job_id, lease, JobStatus.ERROR) == 0


def stale_finish_success(conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID) -> None:
    assert finish(conn, job_id, lease, JobStatus.SUCCESS) == 0


def stale_renew(conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID) -> None:
    """The drain's check before the turn of a job claimed in a batch: not ours any more."""
    assert not engine.renew(conn, store.TABLE, job_id, lease)


@pytest.mark.parametrize(
    "zombie",
    [stale_heartbeat, stale_retry, stale_finish_error, stale_finish_success, stale_renew],
    ids=["heartbeat", "retry", "finish-error", "finish-success", "renew"],
)
def test_the_old_lease_changes_nothing_after_a_rescue_and_reclaim(
    database_url: str, zombie: Callable[[db.Conn, uuid.UUID, uuid.UUID], None]
) -> None:
    job_id, old_lease, new_lease = claimed_rescued_and_claimed_again(database_url)
    before, logged = job(database_url, job_id), log_statuses(database_url, job_id)
    integration = rows(database_url, "SELECT last_status, last_run FROM tenant_integrations")

    with db.transaction() as conn:  # the first worker comes back with its old lease
        zombie(conn, job_id, old_lease)

    after = job(database_url, job_id)
    assert (after["status"], after["lease_token"]) == ("running", new_lease)
    assert (after["progress"], after["attempts"]) == (30, 2)
    assert (after["finished_at"], after["result"]) == (None, None)
    assert after == before
    assert log_statuses(database_url, job_id) == logged
    assert rows(database_url, "SELECT last_status, last_run FROM tenant_integrations") == (
        integration
    )
    # The new lease still holds the job.
    with db.transaction() as conn:
        assert finish(conn, job_id, new_lease, JobStatus.SUCCESS) == 1
    assert job(database_url, job_id)["status"] == "success"


# --- rescue ---------------------------------------------------------------------------------


def test_a_rescue_leaves_a_fresh_running_job_alone(database_url: str) -> None:
    tenant = seed_tenant(database_url, "acme")
    with db.transaction() as conn:
        stale_id, fresh_id = submit(conn, tenant, "stale"), submit(conn, tenant, "fresh")
    with db.transaction() as conn:
        leases = dict(claim(conn, limit=2))
    go_silent(database_url, stale_id)
    with db.transaction() as conn:
        heartbeat(conn, fresh_id, leases[fresh_id], 40)
        rescue(conn, stale_after_s=60)

    fresh = job(database_url, fresh_id)
    assert (fresh["status"], fresh["lease_token"]) == ("running", leases[fresh_id])
    assert (fresh["progress"], fresh["attempts"], fresh["error_message"]) == (40, 1, None)
    assert log_statuses(database_url, fresh_id) == ["pending", "running"]
    stale = job(database_url, stale_id)
    assert (stale["status"], stale["lease_token"], stale["error_message"]) == (
        "pending", None, "timed out",
    )  # fmt: skip
    with db.transaction() as conn:  # the fresh job's worker carries on undisturbed
        heartbeat(conn, fresh_id, leases[fresh_id], 80)
        assert finish(conn, fresh_id, leases[fresh_id], JobStatus.SUCCESS) == 1
    assert job(database_url, fresh_id)["status"] == "success"
