"""Gestão Scouter commands: `export ...`, `schema validate|reload`, `config check`.

They call the same services as the functions, as the service principal, for a tenant
named by slug. `export start` follows the job with a progress bar: the runner runs through
Cloud Tasks (the local stack) or, with `--inline`, in this process.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from tqdm import tqdm

from infra.local import demo
from infra.ops._args import MAX_DAYS, friendly, positive_duration_s, tenant_named, whole_number
from infra.ops.jobs import table
from shared import db
from shared.auth import SERVICE
from shared.errors import ValidationFailed
from shared.gestao.config_check import validate_config
from shared.gestao.models import (
    EXPORTS_LISTED_MAX,
    ExportAction,
    ExportHistoryQuery,
    ExportRequest,
    SchemaRequest,
    TenantRequest,
)
from shared.gestao.runner import run_job
from shared.gestao.service import (
    export_action,
    export_history,
    reload_schema_cache,
    validate_schema,
)
from shared.sqlfiles import query
from shared.web import parse_model

SETTLED = ("completed", "failed", "paused")


# Days of error rows to keep (0 would prune everything); exports to list (as the GET takes).
day_count = whole_number(1, MAX_DAYS, "days")
export_count = whole_number(1, EXPORTS_LISTED_MAX)
lead_count = whole_number(1, 1_000_000, "leads")
# The UTC days a lead's criado may fall on (the leads table's CHECK).
LEAD_DAYS = (date(1, 1, 2), date(9999, 12, 30))


def register(sub: Any) -> None:
    """Add `export`, `schema` and `config`."""
    export = sub.add_parser(
        "export",
        help="Export leads to Gestão Scouter: start, follow, pause, resume or reset an export.",
    )
    cmds = export.add_subparsers(dest="export_command", required=True)
    p = cmds.add_parser("start", help="start an export and follow it")
    _tenant(p)
    p.add_argument("--from", dest="start_date", type=date.fromisoformat, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="end_date", type=date.fromisoformat, metavar="YYYY-MM-DD")
    p.add_argument("--inline", action="store_true", help="run the batches in this process")
    p.add_argument("--no-follow", action="store_true", help="print the job and return")
    p.set_defaults(handler=start)
    for action in ("status", "pause", "resume", "reset"):
        p = cmds.add_parser(action, help=f"{action} the tenant's export (latest, or --job)")
        _tenant(p)
        p.add_argument("--job", type=UUID, help="a job id (default: the latest)")
        p.set_defaults(handler=act, action=action)
    p = cmds.add_parser("list", help="the tenant's latest exports, newest first")
    _tenant(p)
    p.add_argument("--limit", type=export_count, default=20,
                   help=f"1 to {EXPORTS_LISTED_MAX} (default 20)")  # fmt: skip
    p.set_defaults(handler=list_exports)
    p = cmds.add_parser("prune-errors", help="delete error rows older than N days")
    p.add_argument("--days", type=day_count, default=90, help=f"1 to {MAX_DAYS} (default 90)")
    p.set_defaults(handler=prune_errors)
    p = cmds.add_parser("stuck", help="running exports with no heartbeat for a while")
    p.add_argument("--older-than", type=positive_duration_s, default=3600.0, metavar="DURATION",
                   help="e.g. 30m, 2h, 1d (default 1h)")  # fmt: skip
    p.set_defaults(handler=stuck)
    p = cmds.add_parser("seed-leads", help="insert demo leads for a tenant")
    _tenant(p)
    p.add_argument("--count", type=lead_count, default=1000, help="1 to 1,000,000 (default 1000)")
    p.add_argument("--first-day", type=date.fromisoformat, default=date(2024, 1, 1),
                   metavar="YYYY-MM-DD", help="first lead's day (default 2024-01-01)")  # fmt: skip
    p.add_argument("--days", type=day_count, default=90,
                   help=f"criado spread over 1 to {MAX_DAYS} days (default 90)")  # fmt: skip
    p.set_defaults(handler=seed_leads)

    schema = sub.add_parser(
        "schema",
        help="Check the remote Gestão Scouter schema against the mapping, or reload it.",
    )
    cmds = schema.add_subparsers(dest="schema_command", required=True)
    for name, handler in (("validate", schema_validate), ("reload", schema_reload)):
        _tenant(cmds.add_parser(name, help=f"{name} the remote schema")).set_defaults(
            handler=handler
        )
    config = sub.add_parser(
        "config", help="Check a tenant's Gestão Scouter connection, step by step."
    )
    cmds = config.add_subparsers(dest="config_command", required=True)
    _tenant(cmds.add_parser("check", help="named connection checks")).set_defaults(
        handler=config_check
    )


def _tenant(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--tenant", required=True, help="tenant slug")
    return parser


def _print(body: Any) -> None:
    print(json.dumps(body, indent=2, ensure_ascii=False, default=str))


@friendly
def start(args: argparse.Namespace) -> int:
    """Create the job, then follow it to the end (or print it with --no-follow)."""
    tid = tenant_named(args.tenant)
    period = {"start_date": args.start_date, "end_date": args.end_date}
    req = parse_model(ExportRequest, {"tenant_id": tid, "action": ExportAction.START, **period})
    job = export_action(SERVICE, req)
    if args.no_follow:
        _print(job)
        return 0
    final = follow(tid, UUID(job["id"]), inline=args.inline)
    shown = ("id", "status", "total_leads", "exported_leads", "error_leads", "pause_reason",
             "pause_code", "error_message")  # fmt: skip
    _print({k: final[k] for k in shown})
    return 0 if final["status"] == "completed" else 1


def follow(tid: UUID, job_id: UUID, *, inline: bool, poll_s: float = 1.0) -> dict[str, Any]:
    """A progress bar until the job settles; `inline` runs the runner here meanwhile."""
    job = _status(tid, job_id)
    with tqdm(total=job["total_leads"], unit="lead", desc="export") as bar:
        while True:
            if inline and job["status"] in ("pending", "running"):
                job = run_job(job_id, tid)
            else:
                time.sleep(poll_s)
                job = _status(tid, job_id)
            bar.total = max(bar.total or 0, job["total_leads"])
            bar.update(job["exported_leads"] + job["error_leads"] - bar.n)
            bar.set_postfix(status=job["status"], errors=job["error_leads"])
            if job["status"] in SETTLED:
                return job


def _status(tid: UUID, job_id: UUID | None) -> dict[str, Any]:
    return export_action(SERVICE, ExportRequest(tenant_id=tid, action=ExportAction.STATUS,
                                                job_id=job_id))  # fmt: skip


@friendly
def act(args: argparse.Namespace) -> int:
    """status | pause | resume | reset."""
    req = ExportRequest(tenant_id=tenant_named(args.tenant), action=ExportAction(args.action),
                        job_id=args.job)  # fmt: skip
    _print(export_action(SERVICE, req))
    return 0


@friendly
def list_exports(args: argparse.Namespace) -> int:
    """The tenant's latest exports as a table (what the function's GET answers)."""
    req = ExportHistoryQuery(tenant_id=tenant_named(args.tenant), limit=args.limit)
    jobs = export_history(SERVICE, req)["jobs"]
    if not jobs:
        print("no exports yet")
        return 0
    body = [
        (j["created_at"][:19], j["id"], j["status"], _period(j),
         f"{j['exported_leads']}/{j['total_leads']}", j["error_leads"])
        for j in jobs
    ]  # fmt: skip
    print(table(("created", "job", "status", "period", "exported", "errors"), body))
    return 0


def _period(job: dict[str, Any]) -> str:
    return f"{job['start_date'] or 'start'}..{job['end_date'] or 'now'}"


@friendly
def prune_errors(args: argparse.Namespace) -> int:
    """Delete export error rows older than --days."""
    with db.transaction() as conn:
        deleted = conn.execute(query("gestao", "prune_errors"), {"days": args.days}).rowcount
    print(f"deleted {deleted} error rows older than {args.days} days")
    return 0


@friendly
def stuck(args: argparse.Namespace) -> int:
    """List running exports whose runner has been silent for --older-than."""
    with db.transaction() as conn:
        found = conn.execute(
            query("gestao", "stuck_jobs"), {"older_than_s": args.older_than}
        ).fetchall()
    if not found:
        print("no stuck exports")
        return 0
    body = [(r["tenant_slug"], r["id"], r["exported_leads"], r["total_leads"], r["heartbeat_at"])
            for r in found]  # fmt: skip
    print(table(("tenant", "job", "exported", "total", "last heartbeat"), body))
    print("the minute sweep restarts them once their lease is stale")
    return 1


@friendly
def seed_leads(args: argparse.Namespace) -> int:
    """Insert demo leads (ids after the tenant's highest)."""
    if not LEAD_DAYS[0] <= args.first_day <= LEAD_DAYS[1] - timedelta(days=args.days):
        raise ValidationFailed(
            f"The leads' days (--first-day, then --days more) must lie between {LEAD_DAYS[0]}"
            f" and {LEAD_DAYS[1]}."
        )
    tid = tenant_named(args.tenant)
    with db.transaction() as conn:
        inserted = demo.seed_leads(conn, tid, args.count, args.first_day, args.days)
    print(f"inserted {inserted} leads for {args.tenant}")
    return 0


@friendly
def schema_validate(args: argparse.Namespace) -> int:
    """Print the schema report; exit 1 when it does not fit."""
    report = validate_schema(SERVICE, SchemaRequest(tenant_id=tenant_named(args.tenant)))
    _print(report)
    return 0 if report["valid"] else 1


@friendly
def schema_reload(args: argparse.Namespace) -> int:
    """Reload the remote schema cache and print the new validation."""
    result = reload_schema_cache(SERVICE, TenantRequest(tenant_id=tenant_named(args.tenant)))
    _print(result)
    return 0 if result["validation"]["valid"] else 1


@friendly
def config_check(args: argparse.Namespace) -> int:
    """Print each named check; exit 1 when one fails."""
    result = validate_config(SERVICE, TenantRequest(tenant_id=tenant_named(args.tenant)))
    for check in result["checks"]:
        print(f"{'ok ' if check['ok'] else 'FAIL'}  {check['name']:<16} {check['detail']}")
    return 0 if result["ok"] else 1
