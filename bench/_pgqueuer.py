"""The pgqueuer contender: Queries.enqueue in batches, K QueueManagers draining in batches.

Its own intended way: one psycopg AsyncConnection (autocommit) per QueueManager, all on
one event loop, `run(batch_size=B, mode=drain)`. Its dequeue is one batched
UPDATE ... FOR UPDATE SKIP LOCKED; acks go through its JobStatusLogBuffer (a batched
DELETE from the queue + INSERT into pgqueuer_log).

Timing: from the managers' start to the commit of the last ack (the newest `successful`
row of pgqueuer_log, whose `created` is the ack transaction's now(); same host clock).
`run()` itself returns seconds later (drain-mode shutdown: a final queue check, listener
and buffer teardown), a fixed cost that would unfairly dominate small runs; it is kept in
Result.extra["run_s"].
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import psycopg
from pgqueuer import PsycopgDriver, QueueManager
from pgqueuer.domain.types import QueueExecutionMode
from pgqueuer.models import Job
from pgqueuer.queries import Queries

from bench._pg import Result

ENTRYPOINT = "noop"
ENQUEUE_CHUNK = 1000
CHECK = """
SELECT
  (SELECT count(*) FROM pgqueuer) AS left_in_queue,
  (SELECT count(*) FROM pgqueuer_log WHERE status = 'successful') AS successful,
  (SELECT extract(epoch FROM max(created)) FROM pgqueuer_log WHERE status = 'successful')
    AS last_ack
"""


async def _connect(url: str) -> psycopg.AsyncConnection[tuple[Any, ...]]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def _install_and_enqueue(url: str, jobs: int) -> float:
    conn = await _connect(url)
    try:
        queries = Queries(PsycopgDriver(conn))
        await queries.install()
        started = time.perf_counter()
        for i in range(0, jobs, ENQUEUE_CHUNK):
            n = min(ENQUEUE_CHUNK, jobs - i)
            await queries.enqueue([ENTRYPOINT] * n, [None] * n, [0] * n)
        elapsed = time.perf_counter() - started
        await conn.execute("ANALYZE pgqueuer")
        return elapsed
    finally:
        await conn.close()


async def _drain(url: str, workers: int, batch: int) -> tuple[float, float]:
    """Run the managers to the end; their wall-clock start time and run() seconds."""
    conns = [await _connect(url) for _ in range(workers)]
    managers = []
    for conn in conns:
        qm = QueueManager(Queries(PsycopgDriver(conn)))

        @qm.entrypoint(ENTRYPOINT)
        async def noop(job: Job) -> None:
            """The no-op task."""

        managers.append(qm)
    started_wall, started = time.time(), time.perf_counter()
    try:
        await asyncio.gather(
            *(
                qm.run(
                    batch_size=batch,
                    mode=QueueExecutionMode.drain,
                    dequeue_timeout=timedelta(seconds=1),
                )
                for qm in managers
            )
        )
        return started_wall, time.perf_counter() - started
    finally:
        for conn in conns:
            await conn.close()


async def _last_ack(url: str, jobs: int) -> float:
    """Every job acked and gone from the queue; the epoch of the last ack."""
    conn = await _connect(url)
    try:
        cur = await conn.execute(CHECK)
        row = await cur.fetchone()
    finally:
        await conn.close()
    if row is None or row[:2] != (0, jobs):
        raise RuntimeError(f"pgqueuer bench left the queue wrong: {row} != (0, {jobs}, ...)")
    return float(row[2])


async def _run(url: str, jobs: int, workers: int, batch: int) -> tuple[float, float, float]:
    enqueue_s = await _install_and_enqueue(url, jobs)
    started_wall, run_s = await _drain(url, workers, batch)
    last_ack = await _last_ack(url, jobs)
    return enqueue_s, last_ack - started_wall, run_s


def run(url: str, *, jobs: int, workers: int, batch: int) -> Result:
    """Install pgqueuer's schema, enqueue, drain with `workers` QueueManagers."""
    logging.getLogger("pgqueuer").setLevel(logging.WARNING)
    enqueue_s, seconds, run_s = asyncio.run(_run(url, jobs, workers, batch))
    return Result(
        "pgqueuer",
        jobs,
        workers,
        batch,
        seconds,
        enqueue_seconds=enqueue_s,
        notes="K QueueManagers (1 async psycopg conn each), run(batch_size=B, mode=drain);"
        f" start -> last ack (run() returned after {run_s:.1f} s)",
        extra={"run_s": round(run_s, 3)},
    )
