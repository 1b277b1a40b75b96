"""Credits queue manager: refund integrity and throughput under contention.

    .venv/bin/python -m bench.bench_credits [--starts 200] [--jobs 500] [--calls-per-job 4]
        [--clients 16] [--json PATH]

Setup: PostgreSQL from DATABASE_URL, else an embedded server; a fresh database (dropped
afterwards). runninghub-queue-manager is served over real HTTP by a threaded werkzeug
server in this process (as the local gateway does), and the RunningHub emulator runs as
its own process with tasks that never end by themselves and room for every task.

1. `/start` -> running, free slots: S jobs started one after another (each answer is the
   job already running on RunningHub, so the call's latency is the start latency), then
   S more by C concurrent clients (starts/s).
2. `/finish` under contention: N running jobs, N x K calls (service /finish failed, owner
   /finish failed, signed TASK_END webhooks with a failure) shuffled across C clients.
   Calls/s is wall time from the first call to the last answer. Afterwards the ledger is
   checked: exactly N refunds, one per job, and every balance back where it started.
Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import _pg
from infra import migrate
from infra.emulators._common import start_in_thread
from infra.local.gateway import load_function

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-runninghub-key"
SECRET = "bench-webhook-secret"
Call = Callable[[httpx.Client], int]


@contextmanager
def emulator() -> Iterator[str]:
    """The RunningHub emulator in its own process; tasks run until cancelled."""
    cmd = [sys.executable, "-m", "infra.emulators.runninghub", "--port", "0",
           "--api-key", API_KEY, "--run-seconds", "-1", "--max-concurrent", "1000000"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip().rsplit(" ", 1)[-1]
    finally:
        proc.terminate()
        proc.wait(10)


def configure(db_url: str, rh_url: str, clients: int) -> None:
    """Point shared/ at the database and the emulator."""
    from shared import db, dispatch
    from shared.settings import reload_settings

    os.environ.update({
        "DATABASE_URL": db_url, "DISPATCHER": "disabled", "JWT_SECRET": "bench-" + "s" * 40,
        "DB_POOL_MAX": str(max(8, clients + 4)), "RUNNINGHUB_BASE_URL": rh_url,
        "RUNNINGHUB_API_KEY": API_KEY, "RUNNINGHUB_WEBHOOK_SECRET": SECRET,
        "RUNNINGHUB_WEBHOOK_URL": "http://127.0.0.1:9/webhook", "RUNNINGHUB_MAX_SLOTS": "1000000",
        "RUNNINGHUB_MAX_ACTIVE_PER_USER": "1000000",
    })  # fmt: skip
    reload_settings()
    db.close_pool()
    dispatch.reset_dispatcher()


def seed(db_url: str, users: int, jobs: int, balance: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Users with credits and `jobs` pending jobs spread over them: [(user, job)].

    Seven workflows priced 1..7 credits (the server sets each job's cost from its price).
    """
    people = [uuid.uuid4() for _ in range(users)]
    made = []
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO credit_accounts (user_id, balance) VALUES (%s, %s)",
                [(u, balance) for u in people],
            )
            cur.executemany(
                "INSERT INTO credit_prices (job_table, workflow_id, credits)"
                " VALUES ('image_jobs', %s, %s) ON CONFLICT DO NOTHING",
                [(f"bench-{c}", c) for c in range(1, 8)],
            )
        for i in range(jobs):
            user = people[i % users]
            row = conn.execute(
                "INSERT INTO image_jobs (user_id, workflow_id, inputs)"
                " VALUES (%s, %s, '[]') RETURNING id",
                [user, f"bench-{1 + i % 7}"],
            ).fetchone()
            assert row is not None
            made.append((user, row[0]))
    return made


def token(user: uuid.UUID | None) -> str:
    from shared.auth import mint_token

    return mint_token(service=True) if user is None else mint_token(user_id=user)


def run_calls(base: str, calls: Sequence[Call], clients: int) -> tuple[float, list[int]]:
    """Run calls on C threads (one keep-alive client each); wall seconds and statuses."""
    local = threading.local()
    made: list[httpx.Client] = []

    def run(call: Call) -> int:
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=base, timeout=60)
            made.append(local.http)
        return call(local.http)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(run, calls))
    elapsed = time.perf_counter() - started
    for client in made:
        client.close()
    return elapsed, statuses


def post_call(path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Call:
    """A call that POSTs `body` to `path` and answers the status code."""
    return lambda http: http.post(path, json=body, headers=headers).status_code


def start_call(user: uuid.UUID, job_id: uuid.UUID, tok: str) -> Call:
    return post_call("/start", {"table": "image_jobs", "jobId": str(job_id)}, _auth(tok))


def _auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def bench_start(
    base: str, pairs: list[tuple[uuid.UUID, uuid.UUID]], clients: int
) -> dict[str, Any]:
    """Sequential latency on the first half, concurrent throughput on the second."""
    half = len(pairs) // 2
    tokens = {u: token(u) for u, _ in pairs}
    latencies = []
    with httpx.Client(base_url=base, timeout=60) as http:
        for user, job_id in pairs[:half]:
            t0 = time.perf_counter()
            answer = http.post(
                "/start", json={"table": "image_jobs", "jobId": str(job_id)},
                headers=_auth(tokens[user]),
            )  # fmt: skip
            latencies.append((time.perf_counter() - t0) * 1000)
            if answer.json().get("status") != "running":
                raise RuntimeError(f"/start did not run the job: {answer.text[:200]}")
    calls = [start_call(u, j, tokens[u]) for u, j in pairs[half:]]
    seconds, statuses = run_calls(base, calls, clients)
    if set(statuses) != {200}:
        raise RuntimeError(f"concurrent /start answered {sorted(set(statuses))}")
    qs = statistics.quantiles(latencies, n=100, method="inclusive")  # within the samples
    return {
        "sequential_starts": half,
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(qs[94], 1),
        "max_ms": round(max(latencies), 1),
        "concurrent_starts": len(calls),
        "concurrent_starts_per_s": round(len(calls) / seconds, 1),
    }


def finish_calls(db_url: str, pairs: list[tuple[uuid.UUID, uuid.UUID]], per_job: int) -> list[Call]:
    """K mixed finish calls per job, shuffled."""
    from shared.credits.models import CreditJobTable, JobKey
    from shared.credits.runninghub import webhook_url
    from shared.settings import get_settings

    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT id, external_task_id FROM ai_jobs").fetchall()
    tasks: dict[uuid.UUID, str] = dict(rows)
    service = token(None)
    reason = {"node_id": "7", "exception_message": "CUDA out of memory"}
    event_data = json.dumps({"code": 805, "msg": "APIKEY_TASK_STATUS_ERROR",
                             "data": {"failedReason": reason}})  # fmt: skip
    calls: list[Call] = []
    for user, job_id in pairs:
        ref = {"table": "image_jobs", "jobId": str(job_id)}
        owner = token(user)
        url = webhook_url(get_settings(), JobKey(CreditJobTable.IMAGE, job_id)) or ""
        hook = "/webhook?" + url.split("?", 1)[1]
        event = {"event": "TASK_END", "taskId": tasks[job_id], "eventData": event_data}
        kinds = [
            post_call("/finish", {**ref, "status": "failed"}, _auth(service)),
            post_call(
                "/finish", {**ref, "status": "failed", "errorMessage": "browser"}, _auth(owner)
            ),
            post_call(hook, event),
        ]
        calls += [kinds[i % len(kinds)] for i in range(per_job)]
    random.Random(7).shuffle(calls)
    return calls


def check_ledger(db_url: str, jobs: int, balance: int) -> dict[str, int]:
    """Exactly one debit and one refund per job; every balance back to its start."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE kind = 'debit') AS debits,"
            " count(*) FILTER (WHERE kind = 'refund') AS refunds,"
            " count(DISTINCT job_id) FILTER (WHERE kind = 'refund') AS refunded_jobs"
            " FROM credit_ledger"
        ).fetchone()
        wrong = conn.execute(
            "SELECT count(*) FROM credit_accounts WHERE balance <> %s", [balance]
        ).fetchone()
        failed = conn.execute("SELECT count(*) FROM ai_jobs WHERE status = 'failed'").fetchone()
    assert row is not None and wrong is not None and failed is not None
    counts = {"debits": row[0], "refunds": row[1], "refunded_jobs": row[2],
              "balances_off": wrong[0], "failed_jobs": failed[0]}  # fmt: skip
    expected = {"debits": jobs, "refunds": jobs, "refunded_jobs": jobs,
                "balances_off": 0, "failed_jobs": jobs}  # fmt: skip
    if counts != expected:
        raise RuntimeError(f"ledger integrity broken: {counts} != {expected}")
    return counts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bench_credits", description=__doc__)
    p.add_argument("--starts", type=int, default=200, help="jobs for the /start measure (S)")
    p.add_argument("--jobs", type=int, default=500, help="running jobs to fail (N)")
    p.add_argument("--calls-per-job", type=int, default=4, help="finish calls per job (K)")
    p.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients (C)")
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--json", metavar="PATH", help="also write the results to this file")
    args = p.parse_args(argv)
    if min(args.jobs, args.calls_per_job, args.clients, args.users) < 2:
        p.error("every count must be at least 2")
    if args.starts < 4:  # half of them sequential: a percentile wants two at least
        p.error("--starts must be at least 4")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    balance = 1_000_000
    with _pg.server() as server_url, _pg.fresh_database(server_url, "credits") as db_url:
        migrate.migrate(db_url)
        with emulator() as rh_url:
            configure(db_url, rh_url, args.clients)
            app = load_function(ROOT / "functions/runninghub-queue-manager/main.py")
            handle = start_in_thread(app)
            try:
                starts = bench_start(
                    handle.url, seed(db_url, args.users, args.starts, balance), args.clients
                )
                with psycopg.connect(db_url) as conn:  # a clean slate for the finish run
                    conn.execute("TRUNCATE credit_ledger, ai_jobs, credit_accounts")
                pairs = seed(db_url, args.users, args.jobs, balance)
                _, begun = run_calls(
                    handle.url, [start_call(u, j, token(u)) for u, j in pairs], args.clients
                )
                if set(begun) != {200}:
                    raise RuntimeError(f"/start answered {sorted(set(begun))}")
                calls = finish_calls(db_url, pairs, args.calls_per_job)
                seconds, statuses = run_calls(handle.url, calls, args.clients)
                if set(statuses) != {200}:  # a fast refusal must not pass for a fast finish
                    raise RuntimeError(f"/finish answered {sorted(set(statuses))}")
            finally:
                handle.stop()
        integrity = check_ledger(db_url, args.jobs, balance)
        version = _pg.server_version(server_url)
    finishes = {
        "calls": len(calls),
        "jobs": args.jobs,
        "calls_per_s": round(len(calls) / seconds, 1),
        **integrity,
    }
    print(f"{version}, {args.clients} clients, emulator in its own process\n")
    print(_pg.render_table(
        ["/start -> running (free slots)", "value"],
        [[k, str(v)] for k, v in starts.items()],
    ))  # fmt: skip
    print()
    print(_pg.render_table(
        ["/finish under contention", "value"], [[k, str(v)] for k, v in finishes.items()]
    ))  # fmt: skip
    if args.json:
        _pg.write_json(args.json, {"server": version, "start": starts, "finish": finishes})
    return 0


if __name__ == "__main__":
    sys.exit(main())
