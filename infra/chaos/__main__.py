"""`make chaos`: the reliability figures, measured on the real local stack under faults.

    .venv/bin/python -m infra.chaos [--only queue export credits] [--jobs N] [--tenants T]
        [--seconds S] [--kill-every S] [--leads N] [--finishes N] [--json PATH] [--logs DIR]

Starts the stack's processes on free ports (infra/chaos/stack.py) over a fresh database
(DATABASE_URL's server, else an embedded PostgreSQL in a temporary folder), runs three
scenarios and prints one table: figure, value, goal. Exits 1 when a figure misses its goal
(every such goal is 0, or an exact count), 2 when the stack could not run.

1. queue: integration jobs clicked for tenants x 3 providers under provider faults, lost
   and doubled wake-ups, a worker SIGKILLed every few seconds and a frequent sweep;
2. export: leads exported to the remote under its 5xx, the runner killed every few batches;
3. credits: concurrent /finish calls (service, owner, webhook) on failed credit jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from infra import migrate
from infra.chaos import scenario_credits, scenario_export, scenario_queue, seed
from infra.chaos.figures import Figure, missed, render
from infra.chaos.stack import ChaosStack, Plan
from infra.local import pg
from infra.local.supervise import StackFailed
from shared import db
from shared.settings import reload_settings

SCENARIOS = ("queue", "export", "credits")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m infra.chaos", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    p.add_argument("--json", metavar="PATH", help="also write the figures to this file")
    p.add_argument("--logs", metavar="DIR", help="keep every process's log in DIR")
    _queue_flags(p)
    _export_flags(p)
    _credit_flags(p)
    args = p.parse_args(argv)
    counts = ("jobs", "tenants", "records", "leads", "batch", "credit_jobs", "finishes",
              "finish_threads", "credit_users")  # fmt: skip
    if min(getattr(args, name) for name in counts) < 1:
        p.error(f"each of {', '.join('--' + n.replace('_', '-') for n in counts)} must be >= 1")
    return args


def _queue_flags(p: argparse.ArgumentParser) -> None:
    q = p.add_argument_group("queue")
    q.add_argument("--jobs", type=int, default=2000, help="integration jobs to create")
    q.add_argument("--tenants", type=int, default=20, help="tenants, each on all 3 providers")
    q.add_argument("--seconds", type=float, default=300, help="stop creating jobs after this")
    q.add_argument("--settle", type=float, default=120, help="then wait this long for all to end")
    q.add_argument("--records", type=int, default=40, help="records per tenant and provider")
    q.add_argument(
        "--kill-every", type=float, default=6, help="SIGKILL the worker every ~S s (0: never)"
    )
    q.add_argument("--restart-after", type=float, default=0.3, help="start it again after S s")
    q.add_argument("--sweep-every", type=float, default=3, help="the sweep's interval, s")
    q.add_argument("--stale-after", type=int, default=10, help="STALE_AFTER_S of the run")
    q.add_argument("--double-click", type=float, default=0.1, help="clicks sent twice at once")
    q.add_argument("--drop", type=float, default=0.1, help="wake-ups lost")
    q.add_argument("--duplicate", type=float, default=0.1, help="wake-ups delivered twice")
    q.add_argument("--error-rate", type=float, default=0.2, help="provider 5xx")
    q.add_argument("--rate-429", type=float, default=0.05, help="provider 429")
    q.add_argument(
        "--timeout-rate", type=float, default=0.05, help="provider hangs past the timeout"
    )


def _export_flags(p: argparse.ArgumentParser) -> None:
    e = p.add_argument_group("export")
    e.add_argument("--leads", type=int, default=100_000)
    e.add_argument("--batch", type=int, default=1000, help="GESTAO_SCOUTER_BATCH_SIZE")
    e.add_argument("--kill-batches", type=int, default=8, help="kill the runner every N batches")
    e.add_argument("--remote-error-rate", type=float, default=0.2, help="remote 5xx")
    e.add_argument("--remote-post-commit-rate", type=float, default=0.05,
                   help="remote writes committed but answered 5xx")  # fmt: skip
    e.add_argument("--remote-latency-ms", type=int, default=0,
                   help="added to each remote answer, ms")  # fmt: skip
    e.add_argument(
        "--export-stale-after", type=float, default=5.0, help="GESTAO_SCOUTER_STALE_AFTER_S"
    )
    e.add_argument("--export-seconds", type=float, default=240, help="give up on the export after")


def _credit_flags(p: argparse.ArgumentParser) -> None:
    c = p.add_argument_group("credits")
    c.add_argument("--credit-jobs", type=int, default=100, help="credit jobs to fail")
    c.add_argument("--finishes", type=int, default=1000, help="concurrent /finish calls")
    c.add_argument("--finish-threads", type=int, default=50)
    c.add_argument("--credit-users", type=int, default=10)


def function_settings(args: argparse.Namespace) -> dict[str, str]:
    """The functions' tuning for a run measured in minutes, not hours."""
    return {
        "STALE_AFTER_S": str(args.stale_after),
        "BACKOFF_BASE_S": "0.5", "BACKOFF_CAP_S": "4",
        "WORKER_BUDGET_S": "10",
        "PROVIDER_TIMEOUT_S": "1", "PROVIDER_RETRY_ATTEMPTS": "6",
        "PROVIDER_RETRY_BASE_S": "0.05", "PROVIDER_RETRY_CAP_S": "0.5",
        "ACESSORIAS_EMPTY_RECHECK_S": "0.01",
        "LISTING_HEARTBEAT_S": "0.5",
        "DB_POOL_MAX": "24",
        "GESTAO_SCOUTER_BATCH_SIZE": str(args.batch),
        "GESTAO_SCOUTER_MAX_BATCH_SIZE": str(args.batch),  # fixed: kills land every N batches
        "GESTAO_SCOUTER_TIMEOUT_S": "10",
        "GESTAO_SCOUTER_RETRY_BASE_S": "0.05", "GESTAO_SCOUTER_RETRY_CAP_S": "0.5",
        "GESTAO_SCOUTER_BUDGET_S": "10",
        "GESTAO_SCOUTER_STALE_AFTER_S": str(args.export_stale_after),
        "GESTAO_SCOUTER_FAILURE_BACKOFF_S": "0.5", "GESTAO_SCOUTER_FAILURE_BACKOFF_CAP_S": "4",
        "GESTAO_SCOUTER_RELOAD_WAIT_S": "0.1",
        "RUNNINGHUB_MAX_SLOTS": "100000", "RUNNINGHUB_MAX_ACTIVE_PER_USER": "100000",
        "RUNNINGHUB_WEBHOOK_SECRET": secrets.token_hex(16),
    }  # fmt: skip


def run(args: argparse.Namespace, local: str, remote: str, folder: Path) -> list[Figure]:
    """Seed, start the stack, run the scenarios asked for; their figures."""
    fleet, export = seed.tenants(args.tenants), seed.Tenant(seed.EXPORT_SLUG)
    remote_key = "sb_secret_chaos_" + secrets.token_hex(12)
    settings = {**function_settings(args), **seed.secrets_env(fleet, export, remote_key)}
    plan = Plan(local, remote, secrets.token_urlsafe(48), remote_key,
                seed.provider_tokens(fleet), args.records, settings)  # fmt: skip
    stack = ChaosStack(plan, folder)
    migrate.migrate(local)
    seed.seed_fleet(local, fleet, stack.emulator)
    if "export" in args.only:
        seed.seed_export(local, export, stack.emulator("gestao-scouter"), args.leads)
    harness = ("DATABASE_URL", "JWT_SECRET", "RUNNINGHUB_WEBHOOK_SECRET", "RUNNINGHUB_WEBHOOK_URL")
    os.environ.update({k: stack.function_env()[k] for k in harness})  # tokens, webhook URLs
    reload_settings()
    figures: list[Figure] = []
    try:
        stack.start()
        if "queue" in args.only:
            figures += scenario_queue.run(stack, fleet, scenario_queue.params(args))
        if "export" in args.only:
            figures += scenario_export.run(stack, export, scenario_export.params(args))
        if "credits" in args.only:
            figures += scenario_credits.run(stack, scenario_credits.params(args))
    finally:
        stack.stop()
        db.close_pool()
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    folder = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="syncq-chaos-"))
    folder.mkdir(parents=True, exist_ok=True)
    names = (f"chaos_{os.getpid()}", f"chaos_remote_{os.getpid()}")
    try:
        with pg.server_url("syncq-chaos-pg-") as server:
            local, remote = (pg.create_database(server, n) for n in names)
            try:
                figures = run(args, local, remote, folder)
            finally:
                for name in names:
                    pg.drop_database(server, name)
    except StackFailed as exc:
        print(f"make chaos: the stack could not run: {exc}\nlogs: {folder}", file=sys.stderr)
        return 2
    print(render(figures))
    if args.json:
        Path(args.json).write_text(json.dumps([f.__dict__ for f in figures], indent=2) + "\n")
    failed = missed(figures)
    if failed:
        print(f"\n{len(failed)} figure(s) missed their goal; logs: {folder}", file=sys.stderr)
    elif not args.logs:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
