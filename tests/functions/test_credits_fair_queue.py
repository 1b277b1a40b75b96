"""Fair credit queueing under contention: a user may queue a batch (up to the per-user
limit, 429 beyond), free slots go to the user holding the fewest, and the slot limit holds
while /start, /finish, webhooks and sweeps race.

Real PostgreSQL, the function over real HTTP (RunningHub posts its webhooks to it) and the
RunningHub emulator on a manual clock: tasks end only when the test moves the clock, one
wave at a time, so what is asserted does not depend on the machine's speed.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from infra.emulators._common import start_in_thread
from infra.emulators.runninghub import RunningHubKnobs
from shared.credits.sweep import sweep_runninghub
from shared.dispatch import RecordingDispatcher, get_dispatcher
from tests.conftest import Configure
from tests.credits_support import (
    IMAGE,
    RH_KEY,
    Drainer,
    Emulator,
    Sampler,
    User,
    balance,
    configure_runninghub,
    function_app,
    ledger,
    new_job,
    new_user,
    post,
    running_emulator,
    wait_for,
)
from tests.support import rows

pytestmark = [pytest.mark.db, pytest.mark.slow]

SLOTS = 3
RUN_S = 10.0  # emulator seconds a task runs


def start(user: User, job_id: uuid.UUID) -> Any:
    return post("/start", {"table": IMAGE, "jobId": str(job_id)}, user.token)


def give_up(user: User, job_id: uuid.UUID) -> Any:
    """The browser's markJobFailed."""
    body = {"table": IMAGE, "jobId": str(job_id), "status": "failed", "errorMessage": "enough"}
    return post("/finish", body, user.token)


class Sweeper:
    """Runs the minute sweep over and over in a thread (it also pumps the queue)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.passes = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sweeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            sweep_runninghub()
            self.passes += 1


@pytest.fixture
def rh_live(database_url: str, configure: Configure) -> Iterator[Emulator]:
    """The function on a real port, RunningHub allowing more than our limit (so a breach
    of our limit would show there), its webhooks sent to the function."""
    server = start_in_thread(function_app())
    knobs = RunningHubKnobs(run_seconds=RUN_S, max_concurrent=SLOTS + 2, webhook_retry_delay_s=0.05)
    with running_emulator(knobs) as rh:
        configure_runninghub(
            configure,
            rh.url,
            f"{server.url}/webhook",
            RUNNINGHUB_MAX_SLOTS=str(SLOTS),
            RUNNINGHUB_MAX_ACTIVE_PER_USER="20",
        )
        yield rh
    server.stop()


def statuses(database_url: str) -> dict[str, int]:
    found = rows(database_url, "SELECT status, count(*) AS n FROM ai_jobs GROUP BY status")
    return {r["status"]: int(r["n"]) for r in found}


def settled(database_url: str, rh: Emulator) -> bool:
    """Every ended task was settled here and the free slots refilled: the slot holders
    are exactly RunningHub's live tasks, and they fill the slots while jobs wait."""
    holders = rows(
        database_url,
        "SELECT status, external_task_id FROM ai_jobs WHERE status IN ('starting', 'running')",
    )
    with rh.state.lock:
        live = {t.task_id for t in rh.state.tasks.values() if not t.status.final}
    queued = statuses(database_url).get("queued", 0)
    return (
        all(h["status"] == "running" for h in holders)
        and {h["external_task_id"] for h in holders} == live
        and len(holders) == min(SLOTS, len(holders) + queued)
        and rh.state.webhooks.wait_idle(timeout=0)
    )


def test_a_burst_of_15_does_not_starve_two_users_who_come_later(
    database_url: str, rh_live: Emulator
) -> None:
    rh = rh_live
    recorder = get_dispatcher()
    assert isinstance(recorder, RecordingDispatcher)
    burst, b, c = (new_user(database_url, balance=1000) for _ in range(3))
    burst_jobs = [new_job(database_url, burst, cost=10) for _ in range(15)]
    later = [(u, new_job(database_url, u, cost=10)) for u in (b, b, c, c)]
    sampler = Sampler(database_url, lambda: rh.state.active_count(RH_KEY))
    with sampler, Drainer(recorder), Sweeper() as sweeper:
        # 1. the burst: 15 clicks at once; RunningHub's clock stands still, so no slot frees
        gate = threading.Barrier(15)

        def click(job_id: uuid.UUID) -> int:
            gate.wait()
            status: int = start(burst, job_id).status_code
            return status

        with ThreadPoolExecutor(15) as pool:
            assert list(pool.map(click, burst_jobs)) == [200] * 15
        assert statuses(database_url) == {"running": 3, "queued": 12, "pending": 4}
        # 2. slightly later, at once: the two others' 4 clicks, and the burst's owner
        # giving up on its two newest queued jobs (the browser's markJobFailed)
        given_up = [
            r["id"]
            for r in rows(
                database_url,
                "SELECT id FROM ai_jobs WHERE user_id = %s AND status = 'queued'"
                " ORDER BY created_at DESC LIMIT 2",
                burst.id,
            )
        ]
        calls = [(start, u, j) for u, j in later] + [(give_up, burst, j) for j in given_up]
        gate2 = threading.Barrier(len(calls))

        def call(item: tuple[Any, User, uuid.UUID]) -> int:
            route, user, job_id = item
            gate2.wait()
            status: int = route(user, job_id).status_code
            return status

        with ThreadPoolExecutor(len(calls)) as pool:
            assert list(pool.map(call, calls)) == [200] * len(calls)
        assert statuses(database_url) == {"running": 3, "queued": 14, "failed": 2}
        # 3. waves: every running task ends at once; webhooks, the Cloud Tasks they set
        # off (/start), and the sweeps race to refill the slots
        for _ in range(20):
            if set(statuses(database_url)) <= {"completed", "failed"}:
                break
            rh.state.advance(RUN_S)
            wait_for(lambda: settled(database_url, rh), 30, "the slots to be refilled")
    assert statuses(database_url) == {"completed": 17, "failed": 2}
    assert sampler.samples > 50 and sweeper.passes > 5
    assert sampler.max_db <= SLOTS and sampler.max_remote <= SLOTS, vars(sampler)
    assert_fair_order(database_url, burst, b, c)
    for job_id in given_up:  # refunded once; never started
        assert [r["kind"] for r in ledger(database_url, job_id)] == ["debit", "refund"]
    assert balance(database_url, burst) == 1000 - 13 * 10
    assert balance(database_url, b) == balance(database_url, c) == 1000 - 2 * 10


def assert_fair_order(database_url: str, burst: User, b: User, c: User) -> None:
    started = rows(
        database_url,
        "SELECT user_id, created_at, id FROM ai_jobs WHERE started_at IS NOT NULL"
        " ORDER BY started_at",
    )
    assert len(started) == 17
    order = [r["user_id"] for r in started]
    assert order[:3] == [burst.id] * 3  # the burst had every slot to itself at first
    burst_starts = [i for i, u in enumerate(order) if u == burst.id]
    others = [i for i, u in enumerate(order) if u != burst.id]
    # The first freed slots go to the two users who hold none, before the burst's 4th
    # job; all four of their jobs start before the burst's 6th (FIFO would make them
    # wait for all 13).
    assert order.index(b.id) < burst_starts[3] and order.index(c.id) < burst_starts[3]
    assert max(others) < burst_starts[5], order
    for user in (burst, b, c):  # FIFO within a user (after the burst's first wave)
        mine = [r for r in started[3:] if r["user_id"] == user.id]
        assert mine == sorted(mine, key=lambda r: (r["created_at"], r["id"]))


def test_a_user_may_queue_a_batch_of_20_and_the_21st_is_429(
    database_url: str, configure: Configure, rh_live: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNNINGHUB_MAX_ACTIVE_PER_USER")
    configure()  # the default limit
    user, other = new_user(database_url, balance=1000), new_user(database_url, balance=1000)
    jobs = [new_job(database_url, user, cost=10) for _ in range(21)]
    answers = [start(user, j) for j in jobs]
    assert [a.status_code for a in answers] == [200] * 20 + [429]
    assert [a.json()["status"] for a in answers[:20]] == ["running"] * SLOTS + ["queued"] * 17
    assert [a.json()["position"] for a in answers[SLOTS:20]] == list(range(1, 18))
    error = answers[20].json()["error"]
    assert error["code"] == "too_many_active_jobs"
    assert error["details"] == {"limit": 20, "active": 20}
    assert rows(database_url, "SELECT status FROM ai_jobs WHERE id = %s", jobs[20]) == [
        {"status": "pending"}
    ]
    assert ledger(database_url, jobs[20]) == [] and balance(database_url, user) == 1000 - 200
    # someone else's first job goes ahead of the 17 waiting: they hold no slot
    late = start(other, new_job(database_url, other, cost=10)).json()
    assert late["status"] == "queued" and late["position"] == 1
    check = post("/check", {}, user.token).json()
    assert [q["position"] for q in check["my_queue"]] == list(range(2, 19))
