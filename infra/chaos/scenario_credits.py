"""Scenario 3: exactly-once money under concurrent /finish calls.

Users create and start credit jobs through the queue manager (`/create`, `/start`: the
debit), RunningHub (its emulator) runs them forever; then many concurrent calls fail each
job: the service's `/finish`, the owner's `/finish` (the browser's markJobFailed) and
RunningHub's signed TASK_END webhook, shuffled. Every job must be refunded exactly once
and every balance be back where it started.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from infra.chaos import sql
from infra.chaos.figures import Figure, total, zero
from infra.chaos.seed import PRICES, WORKFLOW, seed_credit_users
from infra.chaos.stack import ChaosStack
from shared.auth import mint_token
from shared.credits.models import CreditJobTable, JobKey
from shared.credits.runninghub import webhook_url
from shared.settings import get_settings

NAME = "credits"
BALANCE = 1_000_000
Call = Callable[[httpx.Client], int]


@dataclass(frozen=True)
class CreditParams:
    jobs: int
    finishes: int
    threads: int
    users: int


def params(args: argparse.Namespace) -> CreditParams:
    """The scenario's parameters from the command line."""
    return CreditParams(args.credit_jobs, args.finishes, args.finish_threads, args.credit_users)


@dataclass(frozen=True)
class CreditJob:
    user: uuid.UUID
    table: str
    id: str


def run(stack: ChaosStack, p: CreditParams) -> list[Figure]:
    """Run the scenario; its figures."""
    url = stack.plan.database_url
    users = seed_credit_users(url, p.users, BALANCE)
    tokens = {u: mint_token(user_id=u, ttl_s=24 * 3600) for u in users}
    base = f"{stack.gateway}/runninghub-queue-manager"
    with httpx.Client(base_url=base, trust_env=False, timeout=60) as http:
        jobs, refused = _create_and_start(http, users, tokens, p.jobs)
    tasks = _task_ids(url, [j.id for j in jobs])
    calls = _finish_calls(jobs, tokens, tasks, p.finishes)
    started = time.monotonic()
    answers = _run_calls(base, calls, p.threads)
    seconds = time.monotonic() - started
    ids, user_ids = [j.id for j in jobs], [str(u) for u in users]
    ledger = sql.one(url, "ledger_counts", users=user_ids)
    statuses = sql.by_key(url, "credit_job_statuses", "status", ids=ids)
    return [
        total(NAME, "credit jobs created and started (debited)", len(jobs)),
        zero(NAME, "/create or /start answers other than 2xx", refused),
        total(NAME, "concurrent /finish calls (service, owner, webhook)", len(calls)),
        zero(
            NAME, "/finish answers other than 200", sum(n for s, n in answers.items() if s != 200)
        ),
        Figure(NAME, "debits in the ledger", int(ledger["debits"]), len(jobs)),
        Figure(NAME, "refunds in the ledger", int(ledger["refunds"]), len(jobs)),
        zero(
            NAME, "jobs refunded more than once", int(ledger["refunds"] - ledger["refunded_jobs"])
        ),
        zero(NAME, "credits refunded minus debited", int(ledger["refunded"] - ledger["debited"])),
        zero(
            NAME,
            "balances not back to their start",
            sql.count(url, "balances_off", users=user_ids, balance=BALANCE),
        ),
        zero(NAME, "jobs not failed", len(jobs) - statuses.get("failed", 0)),
        total(NAME, "/finish calls per second", round(len(calls) / seconds, 1)),
    ]


def _create_and_start(
    http: httpx.Client, users: list[uuid.UUID], tokens: dict[uuid.UUID, str], count: int
) -> tuple[list[CreditJob], int]:
    """`count` jobs, round-robin over users and tables, each created then started."""
    tables = list(PRICES)
    jobs: list[CreditJob] = []
    refused = 0
    for n in range(count):
        user, table = users[n % len(users)], tables[n % len(tables)]
        auth = {"Authorization": f"Bearer {tokens[user]}"}
        made = http.post("/create", json={"table": table, "workflowId": WORKFLOW}, headers=auth)
        if made.status_code != 201:
            refused += 1
            continue
        job = CreditJob(user, table, made.json()["id"])
        begun = http.post("/start", json={"table": table, "jobId": job.id}, headers=auth)
        if begun.status_code != 200 or begun.json()["status"] not in ("starting", "running"):
            refused += 1
            continue
        jobs.append(job)
    return jobs, refused


def _task_ids(url: str, ids: list[str], wait_s: float = 30.0) -> dict[str, str]:
    """RunningHub's task id of every job (a job answered `starting` gets it a moment later)."""
    deadline = time.monotonic() + wait_s
    while True:
        found = {
            str(r["id"]): r["external_task_id"] for r in sql.rows(url, "external_tasks", ids=ids)
        }
        if all(found.get(i) for i in ids) or time.monotonic() > deadline:
            return {k: str(v) for k, v in found.items() if v}
        time.sleep(0.2)


def _failure_event(task_id: str) -> dict[str, Any]:
    reason = {"node_id": "7", "exception_message": "CUDA out of memory"}
    data = {"code": 805, "msg": "APIKEY_TASK_STATUS_ERROR", "data": {"failedReason": reason}}
    return {"event": "TASK_END", "taskId": task_id, "eventData": json.dumps(data)}


def _post(path: str, body: dict[str, Any], token: str | None = None) -> Call:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return lambda http: http.post(path, json=body, headers=headers).status_code


def _finish_calls(
    jobs: list[CreditJob], tokens: dict[uuid.UUID, str], tasks: dict[str, str], count: int
) -> list[Call]:
    """`count` calls spread evenly over the jobs, each a service or owner /finish or a
    signed webhook, shuffled."""
    service = mint_token(service=True, ttl_s=24 * 3600)
    settings = get_settings()
    calls: list[Call] = []
    for n in range(count):
        job = jobs[n % len(jobs)]
        ref = {"table": job.table, "jobId": job.id}
        kind = (n // len(jobs)) % 3
        if kind == 0:
            calls.append(_post("/finish", {**ref, "status": "failed"}, service))
        elif kind == 1:
            failed = {**ref, "status": "failed", "errorMessage": "browser gave up"}
            calls.append(_post("/finish", failed, tokens[job.user]))
        else:
            signed = (
                webhook_url(settings, JobKey(CreditJobTable(job.table), uuid.UUID(job.id))) or ""
            )
            calls.append(
                _post("/webhook?" + signed.split("?", 1)[1], _failure_event(tasks.get(job.id, "")))
            )
    random.Random(5).shuffle(calls)
    return calls


def _run_calls(base: str, calls: list[Call], threads: int) -> Counter[int]:
    """Every call, `threads` at once (one keep-alive client per thread); answers by status."""
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def one(call: Call) -> int:
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=base, trust_env=False, timeout=120)
            with lock:
                clients.append(local.http)
        try:
            return call(local.http)
        except httpx.HTTPError:
            return 0

    with ThreadPoolExecutor(threads) as pool:
        answers = Counter(pool.map(one, calls))
    for client in clients:
        client.close()
    return answers
