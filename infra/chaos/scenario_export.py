"""Scenario 2: a lead export under faults.

The tenant's admin starts an export of every lead; the remote (the PostgREST emulator)
answers a share of its writes with 5xx (some after committing them), the delivery proxy
loses and doubles the runner's wake-ups, and the worker process running the export is
SIGKILLed every few batches. The sweep restarts the silent runner; an export that paused
itself (too many failures in a row) is resumed as an admin would. In the end the remote
table must hold exactly the mapped source rows: same ids, same checksum, no duplicate.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from psycopg import sql as pgsql

from infra.chaos import sql, worklogs
from infra.chaos.agents import Periodic, Sweeper
from infra.chaos.figures import Figure, total, zero
from infra.chaos.seed import Tenant
from infra.chaos.stack import ChaosStack
from shared.auth import mint_token
from shared.gestao.mapping import DEFAULT_MAPPING, SYNC_SOURCE_COLUMN

NAME = "export"
FUNCTION = "export-to-gestao-scouter-batch"
OURS = "tabuladormax"  # the sync_source every exported row carries
FINISHED = ("completed", "failed")


@dataclass(frozen=True)
class ExportParams:
    kill_batches: int
    restart_after_s: float
    sweep_every_s: float
    error_rate: float
    post_commit_rate: float
    latency_ms: int
    drop: float
    duplicate: float
    seconds: float


def params(args: argparse.Namespace) -> ExportParams:
    """The scenario's parameters from the command line."""
    return ExportParams(
        kill_batches=args.kill_batches, restart_after_s=args.restart_after,
        sweep_every_s=args.sweep_every, error_rate=args.remote_error_rate,
        post_commit_rate=args.remote_post_commit_rate, latency_ms=args.remote_latency_ms,
        drop=args.drop,
        duplicate=args.duplicate, seconds=args.export_seconds,
    )  # fmt: skip


@dataclass
class RunnerKiller:
    """Kills the worker each time the export has checkpointed `every` more batches."""

    stack: ChaosStack
    url: str
    job_id: str
    every: int
    restart_after_s: float
    kills: int = 0
    last: int = 0

    def step(self) -> None:
        if self.every <= 0:
            return
        job = sql.one(self.url, "export_job", id=self.job_id)
        if job["status"] == "running" and job["batches"] >= self.last + self.every:
            self.last = job["batches"]
            self.stack.kill_worker(self.restart_after_s)
            self.kills += 1


@dataclass
class Admin:
    """The export tenant's admin, calling export-to-gestao-scouter-batch on the gateway."""

    http: httpx.Client
    gateway: str
    tenant: Tenant

    def action(self, action: str, job_id: str | None = None) -> dict[str, Any]:
        token = mint_token(user_id=self.tenant.admin)
        body: dict[str, Any] = {"tenant_id": str(self.tenant.id), "action": action}
        if job_id is not None:
            body["job_id"] = job_id
        answer = self.http.post(
            f"{self.gateway}/{FUNCTION}", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        if answer.status_code != 200:
            raise RuntimeError(
                f"export {action} answered {answer.status_code}: {answer.text[:300]}"
            )
        job: dict[str, Any] = answer.json()
        return job


def run(stack: ChaosStack, tenant: Tenant, p: ExportParams) -> list[Figure]:
    """Run the scenario; its figures."""
    url = stack.plan.database_url
    before = stack.proxy.counts()
    started = time.monotonic()
    with httpx.Client(trust_env=False, timeout=60) as http:
        admin = Admin(http, stack.gateway, tenant)
        job = admin.action("start")
        stack.knobs("gestao-scouter", error_rate=p.error_rate, latency_ms=p.latency_ms,
                    post_commit_error_rate=p.post_commit_rate)  # fmt: skip
        stack.proxy.set_faults(drop=p.drop, duplicate=p.duplicate)
        killer = RunnerKiller(stack, url, job["id"], p.kill_batches, p.restart_after_s)
        # The killer looks often (one indexed read): a batch may take only milliseconds.
        with Sweeper(stack.worker, p.sweep_every_s), Periodic(0.05, killer.step):
            final, resumes = _follow(admin, stack, job["id"], p.seconds)
    elapsed = time.monotonic() - started
    stats = f"{stack.emulator('gestao-scouter')}/__admin/stats"
    faults = httpx.get(stats, timeout=10, trust_env=False).json()
    stack.knobs("gestao-scouter", error_rate=0, post_commit_error_rate=0, latency_ms=0)
    stack.proxy.set_faults(drop=0, duplicate=0)
    after = stack.proxy.counts()
    wakes = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    rescued = sum(worklogs.rescues(lines)["gestao_export"] for lines, _ in stack.worker_logs())
    compared = compare(url, stack.plan.remote_database_url, tenant)
    return [
        *_checks(final, compared),
        total(NAME, "runner kills (SIGKILL)", killer.kills),
        total(NAME, "rescues (silent runner restarted)", rescued),
        total(NAME, "resumed by the admin after pausing itself", resumes),
        total(NAME, "batches checkpointed", final["batches"]),
        total(NAME, "remote answers 5xx (injected)", sum(_count(faults, "faults").values())),
        total(NAME, "wake-ups lost", wakes.get("dropped", 0)),
        total(NAME, "wake-ups duplicated", wakes.get("duplicated", 0)),
        total(NAME, "seconds", round(elapsed, 1)),
    ]


def _follow(
    admin: Admin, stack: ChaosStack, job_id: str, seconds: float
) -> tuple[dict[str, Any], int]:
    """Wait for the export to end, resuming it when it paused itself; the last row seen."""
    url, resumes = stack.plan.database_url, 0
    deadline = time.monotonic() + seconds
    while True:
        job = sql.one(url, "export_job", id=job_id)
        if job["status"] in FINISHED or time.monotonic() > deadline:
            return job, resumes
        if job["status"] == "paused":
            admin.action("resume", job_id)
            resumes += 1
        stack.check_alive()
        time.sleep(0.3)


@dataclass(frozen=True)
class Compared:
    source: int
    remote_rows: int
    missing: int
    extra: int
    differing: int
    duplicates: int
    checksum_equal: bool


def compare(local: str, remote: str, tenant: Tenant) -> Compared:
    """The remote table against the mapped source rows, row by row and as a whole."""
    ours = _hashes(local, _source_statement(), [tenant.id])
    theirs = _hashes(remote, _remote_statement(), [])
    with psycopg.connect(remote) as conn:
        row = conn.execute("SELECT count(*) FROM public.leads").fetchone()
    rows = int(row[0]) if row else 0
    both = ours.keys() & theirs.keys()
    return Compared(
        source=len(ours),
        remote_rows=rows,
        missing=len(ours.keys() - theirs.keys()),
        extra=len(theirs.keys() - ours.keys()),
        differing=sum(ours[i] != theirs[i] for i in both),
        duplicates=rows - len(theirs),
        checksum_equal=_checksum(ours) == _checksum(theirs),
    )


def _source_statement() -> pgsql.Composed:
    cols = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in DEFAULT_MAPPING)
    return pgsql.SQL("SELECT id, md5(row({}, {})::text) FROM leads WHERE tenant_id = %s").format(
        cols, pgsql.Literal(OURS)
    )


def _remote_statement() -> pgsql.Composed:
    names = [*DEFAULT_MAPPING.values(), SYNC_SOURCE_COLUMN]
    cols = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in names)
    return pgsql.SQL("SELECT id, md5(row({})::text) FROM public.leads").format(cols)


def _hashes(url: str, statement: pgsql.Composed, args: list[Any]) -> dict[int, str]:
    with psycopg.connect(url) as conn:
        return {int(i): str(h) for i, h in conn.execute(statement, args).fetchall()}


def _checksum(hashes: dict[int, str]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for key in sorted(hashes):
        digest.update(f"{key}:{hashes[key]}|".encode())
    return digest.hexdigest()


def _count(stats: dict[str, Any], key: str) -> dict[str, int]:
    found = stats.get(key) or {}
    return {k: int(v) for k, v in found.items() if k.startswith("5") or k == "post_commit"}


def _checks(job: dict[str, Any], c: Compared) -> list[Figure]:
    return [
        total(NAME, "leads in the source", c.source),
        total(NAME, "leads on the remote", c.remote_rows),
        zero(NAME, "export not completed", int(job["status"] != "completed")),
        zero(NAME, "leads missing on the remote", c.missing),
        zero(NAME, "duplicates on the remote", c.duplicates),
        zero(NAME, "remote rows not in the source", c.extra),
        zero(NAME, "remote rows differing from the source", c.differing),
        zero(NAME, "table checksums differ", int(not c.checksum_equal)),
        zero(NAME, "job's exported count off by", abs(job["exported_leads"] - c.source)),
        zero(NAME, "leads recorded as refused (errors table)", job["error_leads"]),
    ]
