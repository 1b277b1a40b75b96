"""The procrastinate contender: batch_defer N no-op jobs, one worker of concurrency K.

Its schema through its SchemaManager, PsycopgConnector (async psycopg pool sized for the
worker), `run_worker_async(concurrency=K, wait=False)`: the worker stops once caught up.
procrastinate fetches one job per call of its `procrastinate_fetch_job` function.
"""

from __future__ import annotations

import asyncio
import logging
import time

import procrastinate

from bench._pg import Result

DEFER_CHUNK = 1000
CHECK = """
SELECT count(*) FILTER (WHERE status = 'succeeded') AS succeeded, count(*) AS total
FROM procrastinate_jobs
"""


def _app(url: str, workers: int) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(conninfo=url, min_size=1, max_size=workers + 4)
    return procrastinate.App(connector=connector)


async def _run(url: str, jobs: int, workers: int) -> tuple[float, float]:
    app = _app(url, workers)

    @app.task(name="noop", queue="bench")
    async def noop() -> None:
        """The no-op task."""

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        started = time.perf_counter()
        for i in range(0, jobs, DEFER_CHUNK):
            await noop.batch_defer_async(*({} for _ in range(min(DEFER_CHUNK, jobs - i))))
        enqueue_s = time.perf_counter() - started
        await app.connector.execute_query_async("ANALYZE procrastinate_jobs")
        started = time.perf_counter()
        await app.run_worker_async(
            queues=["bench"], concurrency=workers, wait=False, install_signal_handlers=False
        )
        seconds = time.perf_counter() - started
        row = await app.connector.execute_query_one_async(CHECK)
    if (row["succeeded"], row["total"]) != (jobs, jobs):
        raise RuntimeError(f"procrastinate bench left jobs unfinished: {row}")
    return enqueue_s, seconds


def run(url: str, *, jobs: int, workers: int) -> Result:
    """Apply procrastinate's schema, defer `jobs` no-op jobs, run one worker of concurrency K."""
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    enqueue_s, seconds = asyncio.run(_run(url, jobs, workers))
    return Result(
        "procrastinate",
        jobs,
        workers,
        1,
        seconds,
        enqueue_seconds=enqueue_s,
        notes="one worker, concurrency=K, wait=False (fetches 1 job per query)",
    )
