"""The engine under real concurrency: threads on their own connections hitting one job at once.

Each race is run many times per test (a fresh job each round) and every round must end in one
of the outcomes the lease allows, never in both or neither: a finish racing the rescue of its
job, a heartbeat racing it, a cancel racing a claim, several workers draining one backlog.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg
import pytest
from pydantic import BaseModel

from shared import db
from shared.errors import LeaseLost, UpstreamError
from shared.jobs import sweep
from shared.jobs.lease import Lease
from shared.providers import PROVIDERS
from shared.providers.base import SyncContext, SyncResult
from shared.queue import store
from shared.queue.kind import KIND, process, run_claimed
from shared.queue.models import JobStatus
from tests.providers_for_tests import AnyOptions
from tests.support import TenantFixture, call, rows, seed_tenant

pytestmark = pytest.mark.db
ROUNDS = 12


@dataclass
class RacingProvider:
    """Waits at `gate` (with the thread it races), then succeeds or fails retryably; with
    `beats`, reports progress first (the heartbeat, where a cancel is seen)."""

    slug: str = "racing"
    display_name: str = "Racing"
    options: ClassVar[type[BaseModel]] = AnyOptions
    fail: bool = False
    beats: int = 0
    gate: threading.Barrier | None = None
    runs: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sync(self, ctx: SyncContext) -> SyncResult:
        with self.lock:
            self.runs[str(ctx.job_id)] += 1
        for beat in range(self.beats):
            ctx.progress(10 * (beat + 1))
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail:
            raise UpstreamError("racing failure", retryable=True)
        return SyncResult(records=1, pages=1)


@pytest.fixture
def racing(monkeypatch: pytest.MonkeyPatch) -> Iterator[RacingProvider]:
    provider = RacingProvider()
    monkeypatch.setitem(PROVIDERS, provider.slug, provider)
    yield provider


class Errors(logging.Handler):
    """ERROR lines of the engine's sweep (a rescue that failed: a deadlock, say)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() != "stale job rescued and ended":
            self.seen.append(record.getMessage())


@pytest.fixture
def sweep_errors() -> Iterator[Errors]:
    handler = Errors()
    logger = logging.getLogger("syncq.jobs.sweep")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def submit(tenant: TenantFixture, provider: str = "racing") -> uuid.UUID:
    with db.transaction() as conn:
        row = store.submit(
            conn, tenant_id=tenant.id, provider_slug=provider, payload={},
            created_by=tenant.admin, max_attempts=1,
        )  # fmt: skip
    job_id: uuid.UUID = row["id"]
    return job_id


def claim_stale(database_url: str, job_id: uuid.UUID) -> dict[str, Any]:
    """Claim the job as a worker does, then make its heartbeat look an hour old."""
    with db.transaction() as conn:
        [row] = store.claim(conn, job_id=job_id)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE integration_jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = %s",
            [job_id],
        )
    return dict(row)


def job(database_url: str, job_id: uuid.UUID) -> dict[str, Any]:
    return rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]


def ends_logged(database_url: str, job_id: uuid.UUID) -> list[tuple[str, str]]:
    """The log rows after the claim: how the attempt ended, as many times as it was written."""
    found = rows(
        database_url,
        "SELECT status, message FROM integration_logs WHERE job_id = %s AND status <> 'running'"
        " AND message <> 'job created' ORDER BY id",
        job_id,
    )
    return [(r["status"], r["message"]) for r in found]


@pytest.mark.parametrize("fail", [False, True], ids=["success", "last-attempt-failure"])
def test_a_finish_racing_the_rescue_of_its_job_ends_it_once(
    database_url: str, racing: RacingProvider, sweep_errors: Errors, recorder: Any, fail: bool
) -> None:
    """The worker's end (a success, or a last failure that locks the integration's schedule)
    and the sweep's rescue of the same silent job, at the same moment: one of them ends it,
    the other changes nothing, and neither fails (no deadlock, no error)."""
    tenant = seed_tenant(database_url, "acme", providers={"racing": {}})
    with psycopg.connect(database_url) as conn:  # a schedule: a failure locks it first
        conn.execute(
            "INSERT INTO integration_schedules (tenant_id, provider_slug, cron, timezone,"
            " missed, spread, next_run_at, due_at) VALUES (%s, 'racing', '0 0 1 1 *', 'UTC',"
            " 'once', false, now() + interval '1 day', now() + interval '1 day')",
            [tenant.id],
        )
    racing.fail = fail
    wins = Counter[str]()
    for _ in range(ROUNDS):
        job_id = submit(tenant)
        row = claim_stale(database_url, job_id)
        racing.gate = threading.Barrier(2)

        def rescue(gate: threading.Barrier = racing.gate) -> int:
            gate.wait(10)
            return sweep.rescue(KIND)

        with ThreadPoolExecutor(2) as pool:
            worker = pool.submit(run_claimed, row)
            rescuer = pool.submit(rescue)
            report, rescued = worker.result(30), rescuer.result(30)

        after = job(database_url, job_id)
        assert after["lease_token"] is None and after["finished_at"] is not None
        if report.status == "lease_lost":  # the rescue won: its end, and only it
            wins["rescue"] += 1
            assert rescued == 1
            assert (after["status"], after["error_message"]) == ("error", "timed out")
            assert ends_logged(database_url, job_id) == [("error", "rescued: heartbeat stale")]
        else:  # the worker won: the rescue found nothing to hand back
            wins["worker"] += 1
            assert rescued == 0
            assert report.status == after["status"] == ("error" if fail else "success")
            assert [s for s, _ in ends_logged(database_url, job_id)] == [after["status"]]
        assert after["attempts"] == 1
        assert racing.runs[str(job_id)] == 1
    assert sweep_errors.seen == []
    assert sum(wins.values()) == ROUNDS
    [integration] = rows(database_url, "SELECT consecutive_failures FROM tenant_integrations")
    if fail:  # each round ended once, as a failure: counted once
        assert integration["consecutive_failures"] == ROUNDS


def test_a_heartbeat_racing_the_rescue_either_keeps_the_lease_or_loses_it_for_good(
    database_url: str, racing: RacingProvider, sweep_errors: Errors, recorder: Any
) -> None:
    """A heartbeat that lands keeps the job from the rescue running beside it; one that
    comes after the rescue changes nothing and says so (LeaseLost)."""
    tenant = seed_tenant(database_url, "acme", providers={"racing": {}})
    outcomes = Counter[str]()
    for _ in range(ROUNDS * 2):
        job_id = submit(tenant)
        row = claim_stale(database_url, job_id)
        lease = Lease(store.TABLE, row)
        gate = threading.Barrier(2)

        def beat(lease: Lease = lease, gate: threading.Barrier = gate) -> bool:
            gate.wait(10)
            try:
                with db.transaction() as conn:
                    lease.heartbeat(conn, progress=50)
            except LeaseLost:
                return False
            return True

        def rescue(gate: threading.Barrier = gate) -> int:
            gate.wait(10)
            return sweep.rescue(KIND)

        with ThreadPoolExecutor(2) as pool:
            beating, rescuing = pool.submit(beat), pool.submit(rescue)
            kept, rescued = beating.result(30), rescuing.result(30)
        after = job(database_url, job_id)
        if kept:
            outcomes["kept"] += 1
            assert rescued == 0
            assert (after["status"], after["lease_token"]) == ("running", row["lease_token"])
            assert after["progress"] == 50
            with db.transaction() as conn:  # the worker carries on and ends it
                done = store.final(job_id, row["lease_token"], JobStatus.SUCCESS)
                assert len(store.release(conn, [done], message="job succeeded")) == 1
        else:
            outcomes["lost"] += 1
            assert rescued == 1
            assert (after["status"], after["error_message"]) == ("error", "timed out")
            assert after["progress"] == 0  # the heartbeat wrote nothing
        assert job(database_url, job_id)["status"] in ("success", "error")
    assert sweep_errors.seen == []
    assert sum(outcomes.values()) == ROUNDS * 2


def test_a_cancel_racing_a_claim_always_ends_the_job_canceled(
    database_url: str, racing: RacingProvider, recorder: Any
) -> None:
    """The admin's cancel and a worker's claim of the same pending job at once: either the
    cancel ends it before any attempt (the claim finds nothing), or the claim wins and the
    cancel becomes a request the attempt sees at its first heartbeat. Never a job that runs
    to success after a cancel was answered, nor one canceled while a worker holds it."""
    tenant = seed_tenant(database_url, "acme", providers={"racing": {}})
    racing.beats = 1
    outcomes = Counter[str]()
    for _ in range(ROUNDS * 2):
        job_id = submit(tenant)
        gate = threading.Barrier(2)

        def cancel(job_id: uuid.UUID = job_id, gate: threading.Barrier = gate) -> Any:
            gate.wait(10)
            return call("cancel-integration-job", {"job_id": str(job_id)},
                        token=tenant.admin_token)  # fmt: skip

        def claim(job_id: uuid.UUID = job_id, gate: threading.Barrier = gate) -> list[Any]:
            gate.wait(10)
            with db.transaction() as conn:
                return [dict(r) for r in store.claim(conn, job_id=job_id)]

        with ThreadPoolExecutor(2) as pool:
            canceling, claiming = pool.submit(cancel), pool.submit(claim)
            answer, claimed = canceling.result(30), claiming.result(30)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        if claimed:
            outcomes["claimed first"] += 1
            assert body["status"] == "running" and body["cancel_requested"] is True
            report = run_claimed(claimed[0])
            assert report.status == "canceled"
            assert racing.runs[str(job_id)] == 1
        else:
            outcomes["canceled first"] += 1
            assert body["status"] == "canceled"
            assert racing.runs[str(job_id)] == 0
        after = job(database_url, job_id)
        assert (after["status"], after["lease_token"]) == ("canceled", None)
        assert after["attempts"] == (1 if claimed else 0)
    assert sum(outcomes.values()) == ROUNDS * 2


def test_workers_draining_one_backlog_at_once_run_every_job_exactly_once(
    database_url: str, racing: RacingProvider, configure: Any, recorder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Four workers (claiming in batches of three) drain forty jobs of twenty tenants at once:
    each job runs once, under one attempt, and ends success with one end logged."""
    configure(CLAIM_BATCH="3")
    tenants = [seed_tenant(database_url, f"t{i:02}", providers={"racing": {}, "other": {}})
               for i in range(20)]  # fmt: skip
    other = RacingProvider(slug="other")
    monkeypatch.setitem(PROVIDERS, other.slug, other)
    jobs = {submit(t, p) for t in tenants for p in ("racing", "other")}
    gate = threading.Barrier(4)

    def worker(_: int) -> int:
        gate.wait(10)
        return len(process(budget_s=60).processed)

    with ThreadPoolExecutor(4) as pool:
        processed = list(pool.map(worker, range(4)))
    assert sum(processed) == len(jobs)
    runs = racing.runs + other.runs
    assert {uuid.UUID(j) for j in runs} == jobs and set(runs.values()) == {1}
    got = rows(database_url, "SELECT status, attempts, lease_token FROM integration_jobs")
    assert {(r["status"], r["attempts"], r["lease_token"]) for r in got} == {("success", 1, None)}
    ends = rows(
        database_url,
        "SELECT job_id, count(*) AS n FROM integration_logs WHERE status = 'success'"
        " GROUP BY job_id",
    )
    assert {r["job_id"] for r in ends} == jobs and {r["n"] for r in ends} == {1}


def test_sweeps_and_wake_ups_rescuing_at_once_hand_each_stale_job_back_once(
    database_url: str, racing: RacingProvider, sweep_errors: Errors, recorder: Any
) -> None:
    """Every wake-up rescues the queue's stale jobs before it drains, and so does the
    minute sweep: four of them at once over twelve stale jobs hand each back once, with one
    log row, one retry and one keyed wake-up each."""
    stale = []
    for i in range(12):
        tenant = seed_tenant(database_url, f"t{i:02}", providers={"racing": {}})
        with db.transaction() as conn:
            row = store.submit(conn, tenant_id=tenant.id, provider_slug="racing", payload={},
                               created_by=tenant.admin, max_attempts=3)  # fmt: skip
        stale.append(row["id"])
        claim_stale(database_url, row["id"])
    recorder.take()
    gate = threading.Barrier(4)

    def rescue(_: int) -> int:
        gate.wait(10)
        return sweep.rescue(KIND)

    with ThreadPoolExecutor(4) as pool:
        rescued = list(pool.map(rescue, range(4)))
    assert sum(rescued) == len(stale)
    assert sweep_errors.seen == []
    got = rows(database_url, "SELECT status, attempts, lease_token FROM integration_jobs")
    assert {(r["status"], r["attempts"], r["lease_token"]) for r in got} == {("pending", 1, None)}
    logged = rows(
        database_url,
        "SELECT job_id, count(*) AS n FROM integration_logs"
        " WHERE message LIKE 'rescued:%%' GROUP BY job_id",
    )
    assert {r["job_id"] for r in logged} == set(stale) and {r["n"] for r in logged} == {1}
    wakes = recorder.take()
    assert sorted(t.body["job_id"] for t in wakes) == sorted(str(j) for j in stale)
    assert len({t.key for t in wakes}) == len(stale)
