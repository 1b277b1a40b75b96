"""Scenario 1: the integration queue under faults.

Admins click "run" (`run-integration` on the gateway) for every (tenant, provider) pair,
again each time the pair's job has ended (a tenth of the clicks twice at once), until
`jobs` were created or `seconds` passed. Meanwhile the provider emulators fail requests
(5xx, 429, hangs past the client timeout), the delivery proxy loses and doubles wake-ups,
the worker is SIGKILLed every few seconds and the sweep runs every few seconds with a
short stale limit. Then it waits for every job to end (the chaos still on) and reads the
figures back from the rows and the worker logs.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from infra.chaos import sql, worklogs
from infra.chaos.agents import Killer, Periodic, Sweeper
from infra.chaos.figures import Figure, total, zero
from infra.chaos.seed import PROVIDERS, Tenant
from infra.chaos.stack import ChaosStack
from shared.auth import mint_token

NAME = "queue"
RETRIED = "attempt failed, retry scheduled"
KILLED = frozenset({"killed"})
Pair = tuple[str, str]  # (tenant id, provider)


@dataclass(frozen=True)
class QueueParams:
    jobs: int
    seconds: float
    settle_s: float
    kill_every_s: float
    restart_after_s: float
    sweep_every_s: float
    stale_after_s: int
    drop: float
    duplicate: float
    error_rate: float
    rate_429: float
    timeout_rate: float
    double_click: float
    clickers: int = 8

    @property
    def stuck_after_s(self) -> float:
        """A running job silent this long should have been rescued: the stale limit, a
        sweep interval, and room for a sweep killed midway (the next one comes)."""
        return self.stale_after_s + 2 * self.sweep_every_s + self.restart_after_s + 5


@dataclass
class Clicks:
    """What the clicking admins saw."""

    created: dict[str, Pair] = field(default_factory=dict)  # job id -> pair
    answers: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Observed:
    """What the monitor saw (jobs stuck past the limit, the longest silence and wait), and
    what the killer and the sweep did."""

    stuck: set[str] = field(default_factory=set)
    longest_silence_s: float = 0.0
    longest_due_wait_s: float = 0.0
    kills: int = 0
    sweeps: Counter[str] = field(default_factory=Counter)
    clicking_s: float = 0.0
    elapsed_s: float = 0.0


def params(args: argparse.Namespace) -> QueueParams:
    """The scenario's parameters from the command line."""
    return QueueParams(
        jobs=args.jobs, seconds=args.seconds, settle_s=args.settle,
        kill_every_s=args.kill_every, restart_after_s=args.restart_after,
        sweep_every_s=args.sweep_every, stale_after_s=args.stale_after,
        drop=args.drop, duplicate=args.duplicate, error_rate=args.error_rate,
        rate_429=args.rate_429, timeout_rate=args.timeout_rate,
        double_click=args.double_click,
    )  # fmt: skip


def run(stack: ChaosStack, fleet: list[Tenant], p: QueueParams) -> list[Figure]:
    """Run the scenario; its figures."""
    url = stack.plan.database_url
    for provider in PROVIDERS:
        stack.knobs(provider, error_rate=p.error_rate, rate_429=p.rate_429,
                    timeout_rate=p.timeout_rate, hang_s=2.0)  # fmt: skip
    stack.proxy.set_faults(drop=p.drop, duplicate=p.duplicate)
    clicks, seen = Clicks(), Observed()
    started = time.monotonic()
    with (
        Sweeper(stack.worker, p.sweep_every_s) as sweeper,
        Killer(lambda: stack.kill_worker(p.restart_after_s), p.kill_every_s) as killer,
        Periodic(0.5, lambda: _sample(url, p, seen)),
    ):
        _click(stack.gateway, url, fleet, p, clicks)
        seen.clicking_s = time.monotonic() - started
        _settle(url, list(clicks.created), p.settle_s, stack)
    seen.elapsed_s = time.monotonic() - started
    seen.kills, seen.sweeps = killer.kills, Counter(sweeper.counts)
    for provider in PROVIDERS:
        stack.knobs(provider, error_rate=0, rate_429=0, timeout_rate=0)
    stack.proxy.set_faults(drop=0, duplicate=0)
    return _goals(stack, p, clicks, seen) + _totals(stack, clicks, seen)


def _quotas(fleet: list[Tenant], jobs: int) -> dict[Pair, int]:
    pairs = [(str(t.id), prov) for t in fleet for prov in PROVIDERS]
    return {pair: jobs // len(pairs) + (n < jobs % len(pairs)) for n, pair in enumerate(pairs)}


def _click(gateway: str, url: str, fleet: list[Tenant], p: QueueParams, clicks: Clicks) -> None:
    """Click for every pair without a live job until every pair's quota is created."""
    quotas = _quotas(fleet, p.jobs)
    tokens = {str(t.id): mint_token(user_id=t.admin, ttl_s=24 * 3600) for t in fleet}
    waiting: set[Pair] = set()  # clicks sent, not answered yet
    deadline = time.monotonic() + p.seconds
    rng = random.Random(3)

    def click(http: httpx.Client, pair: Pair) -> None:
        try:
            answer = http.post(
                f"{gateway}/run-integration",
                json={"tenant_id": pair[0], "provider_slug": pair[1]},
                headers={"Authorization": f"Bearer {tokens[pair[0]]}"},
            )
        except httpx.HTTPError:
            answer = None
        with clicks.lock:
            waiting.discard(pair)
            clicks.answers[answer.status_code if answer is not None else 0] += 1
            if answer is not None and answer.status_code == 202:
                clicks.created[answer.json()["job_id"]] = pair
                quotas[pair] -= 1

    with httpx.Client(trust_env=False, timeout=30) as http, ThreadPoolExecutor(p.clickers) as pool:
        while time.monotonic() < deadline:
            live = {(str(r["tenant_id"]), r["provider_slug"]) for r in sql.rows(url, "live_pairs")}
            with clicks.lock:
                due = [pr for pr, left in quotas.items() if left > 0 and pr not in live | waiting]
                if not due and not waiting and not any(quotas.values()):
                    return
                waiting.update(due)
            for pair in due:
                pool.submit(click, http, pair)
                if rng.random() < p.double_click:  # an impatient admin: two at once
                    pool.submit(click, http, pair)
            time.sleep(0.1)


def _settle(url: str, ids: list[str], settle_s: float, stack: ChaosStack) -> None:
    """Wait (chaos still on) until every created job has ended, or `settle_s` passed."""
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline and sql.count(url, "jobs_unfinished", ids=ids):
        stack.check_alive()
        time.sleep(0.5)


def _sample(url: str, p: QueueParams, health: Observed) -> None:
    try:
        row = sql.one(url, "queue_health", stuck_after_s=p.stuck_after_s)
    except Exception:
        return
    health.stuck.update(str(i) for i in row["stuck"])
    health.longest_silence_s = max(health.longest_silence_s, row["longest_silence_s"])
    health.longest_due_wait_s = max(health.longest_due_wait_s, row["longest_due_wait_s"])


def _worker_attempts(stack: ChaosStack) -> list[worklogs.Attempt]:
    return [a for lines, killed in stack.worker_logs() for a in worklogs.attempts(lines, killed)]


def _db_attempts(url: str) -> list[worklogs.Attempt]:
    now = time.time()
    return [
        worklogs.Attempt(str(r["job_id"]), (str(r["tenant_id"]), r["provider_slug"]),
                         r["started"], r["ended"] if r["ended"] is not None else now)
        for r in sql.rows(url, "attempt_intervals")
    ]  # fmt: skip


def refused_sweeps(counts: Mapping[str, int]) -> int:
    """Sweeps the worker answered, but not with 200 (`Sweeper` counts them by status,
    `sweeps_500`; `sweeps_ok` were answered, `sweeps_failed` cut or never answered)."""
    return sum(n for k, n in counts.items() if k.removeprefix("sweeps_").isdigit())


def _goals(stack: ChaosStack, p: QueueParams, clicks: Clicks, seen: Observed) -> list[Figure]:
    url = stack.plan.database_url
    ids = list(clicks.created)
    unknown = len(ids) - sql.count(url, "jobs_known", ids=ids)
    in_logs = worklogs.overlaps(_worker_attempts(stack))
    in_db = worklogs.overlaps(_db_attempts(url))
    answers = stack.proxy.counts()
    worker_5xx = sum(n for k, n in answers.items() if k.startswith("answer_5"))
    worker_4xx = sum(
        n for k, n in answers.items() if k.startswith("answer_4") and k != "answer_429"
    )
    click_5xx = sum(n for s, n in clicks.answers.items() if s >= 500 or s == 0)
    sweeps_refused = refused_sweeps(seen.sweeps)
    side = sql.one(url, "side_rows_off")
    return [
        total(NAME, "jobs created (run-integration 202)", len(ids)),
        zero(NAME, "jobs lost (created, never final)",
             sql.count(url, "jobs_unfinished", ids=ids) + unknown),
        zero(NAME, f"jobs stuck running (silent > {p.stuck_after_s:.0f} s)", len(seen.stuck)),
        zero(NAME, "overlapping runs per (tenant, provider), worker logs", in_logs.other_job),
        zero(NAME, "overlapping runs per (tenant, provider), job rows", in_db.other_job),
        zero(NAME, "one job running twice at once, worker logs", in_logs.same_job),
        zero(NAME, "attempts over max_attempts", sql.count(url, "over_max_attempts")),
        zero(NAME, "claims without their log row", side["claims"]),
        zero(NAME, "final jobs without their final log row", side["finals"]),
        zero(NAME, "integrations whose last_status is not their last job's", side["last_status"]),
        zero(NAME, "clicks answered 5xx or not at all", click_5xx),
        zero(NAME, "wake-ups the live worker answered 5xx", worker_5xx),
        zero(NAME, "wake-ups the worker refused (4xx)", worker_4xx),
        zero(NAME, "sweeps the live worker answered other than 200", sweeps_refused),
    ]  # fmt: skip


def _totals(stack: ChaosStack, clicks: Clicks, seen: Observed) -> list[Figure]:
    url = stack.plan.database_url
    statuses = sql.by_key(url, "job_statuses", "status")
    errors = sql.by_key(url, "error_reasons", "reason")
    logged = sql.by_key(url, "log_messages", "message")
    worker = _worker_attempts(stack)
    cut, zombies = (sum(a.how in hows for a in worker) for hows in (KILLED, worklogs.LEASE_LOST))
    rescued = sum(n for m, n in logged.items() if m.startswith("rescued"))
    proxy = stack.proxy.counts()
    return [
        *(total(NAME, s, statuses.get(s, 0)) for s in ("success", "error", "canceled")),
        *(total(NAME, f"  error: {reason}", n) for reason, n in errors.items()),
        total(NAME, "attempts", sql.count(url, "attempts_total")),
        total(NAME, "retries after a failed attempt", logged.get(RETRIED, 0)),
        total(NAME, "rescued (heartbeat stale)", rescued),
        total(NAME, "attempts cut by a kill (worker logs)", cut),
        total(NAME, "live attempts that lost their lease", zombies),
        total(NAME, "worker kills (SIGKILL)", seen.kills),
        total(NAME, "wake-ups sent", proxy.get("accepted", 0)),
        total(NAME, "wake-ups lost (dropped)", proxy.get("dropped", 0)),
        total(NAME, "wake-ups duplicated", proxy.get("duplicated", 0)),
        total(NAME, "wake-ups redelivered (worker down or killed)", proxy.get("redelivered", 0)),
        total(NAME, "wake-ups given up after every redelivery", proxy.get("gave_up", 0)),
        total(NAME, "wake-ups that found nothing to run (absorbed)", proxy.get("empty", 0)),
        total(NAME, "sweeps answered", seen.sweeps["sweeps_ok"]),
        total(NAME, "sweeps cut or refused (worker down or killed)", seen.sweeps["sweeps_failed"]),
        total(NAME, "clicks answered 409 (double click, job live)", clicks.answers.get(409, 0)),
        total(NAME, "longest heartbeat silence of a running job, s", round(seen.longest_silence_s)),
        total(NAME, "longest wait of a due pending job, s", round(seen.longest_due_wait_s, 1)),
        total(NAME, "seconds clicking", round(seen.clicking_s, 1)),
        total(NAME, "seconds in all (clicking, then every job ended)", round(seen.elapsed_s, 1)),
    ]  # fmt: skip
