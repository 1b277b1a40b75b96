"""Job commands: `jobs list`, `jobs cleanup-stuck`, and `sweep`.

`jobs cleanup-stuck --older-than 30m` is seed 002's operational clean-up for a database
that ran without the sweep: live jobs with no sign of life for longer than the threshold
become `error` with a cleanup message, `tenant_integrations.last_*` follow, and a log row
records each. The minute sweep does the same continuously (with retries) in normal use.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from infra.ops._args import friendly, positive_duration_s, tenant_named, whole_number
from shared import db
from shared.kinds import sweep as run_sweep
from shared.queue.models import JobStatus
from shared.queue.store import final, release
from shared.sqlfiles import query


def register(sub: Any) -> None:
    """Add `jobs list`, `jobs cleanup-stuck` and `sweep`."""
    jobs = sub.add_parser(
        "jobs", help="List integration jobs, or close the ones stuck without progress."
    )
    cmds = jobs.add_subparsers(dest="jobs_command", required=True)

    p = cmds.add_parser("list", help="recent jobs as a table, newest first")
    p.add_argument("--tenant", help="tenant slug or id")
    p.add_argument("--provider", help="provider slug")
    p.add_argument("--status", choices=[str(s) for s in JobStatus])
    p.add_argument("--limit", type=whole_number(1, 1000, "jobs"), default=20)
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p.set_defaults(handler=friendly(list_jobs))

    p = cmds.add_parser("cleanup-stuck", help="close live jobs with no progress for a while")
    p.add_argument("--older-than", type=positive_duration_s, required=True, metavar="DURATION",
                   help="e.g. 30m, 2h, 1d (above zero)")  # fmt: skip
    p.add_argument("--provider", help="only this provider")
    p.add_argument("--dry-run", action="store_true", help="show what would change")
    p.set_defaults(handler=cleanup_stuck)

    p = sub.add_parser(
        "sweep",
        help="Run the minute sweep once now: rescue stalled jobs and run those that are due.",
    )
    p.set_defaults(handler=sweep)


def _age(moment: Any, now: datetime) -> str:
    if not isinstance(moment, datetime):
        return "-"
    seconds = int((now - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(headers: Sequence[str], body: Sequence[Sequence[Any]]) -> str:
    """A plain fixed-width text table."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in body]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def list_jobs(args: argparse.Namespace) -> int:
    """Print recent jobs."""
    params = {
        "tenant_id": tenant_named(args.tenant) if args.tenant else None,
        "provider_slug": args.provider,
        "status": args.status,
        "limit": args.limit,
    }
    with db.transaction() as conn:
        found = conn.execute(query("ops", "list_jobs"), params).fetchall()
    if args.json:
        for row in found:
            print(json.dumps(row, default=str))
        return 0
    now = datetime.now(UTC)
    body = [
        [str(r["id"])[:8], r["tenant"], r["provider_slug"], r["status"], f"{r['progress']}%",
         f"{r['attempts']}/{r['max_attempts']}", _age(r["created_at"], now),
         _age(r["heartbeat_at"], now), (r["error_message"] or "")[:60]]
        for r in found
    ]  # fmt: skip
    headers = ["job", "tenant", "provider", "status", "progress", "tries", "age", "beat", "error"]
    print(table(headers, body) if body else "no jobs")
    return 0


def cleanup_stuck(args: argparse.Namespace) -> int:
    """Close stuck jobs (or list them with --dry-run)."""
    params = {"older_than_s": args.older_than, "provider_slug": args.provider}
    with db.transaction() as conn:
        found = conn.execute(query("ops", "stuck_jobs"), params).fetchall()
        if args.dry_run:
            fixed = conn.execute(query("ops", "ghost_integrations"), params).fetchall()
        else:
            _close(conn, found)
            fixed = conn.execute(query("ops", "fix_ghost_integrations"), params).fetchall()
    verb = "would close" if args.dry_run else "closed"
    print(f"{verb} {len(found)} stuck job(s)")
    for row in found:
        print(f"  {row['id']}  {row['provider_slug']}  was {row['was']}")
    if fixed:
        verb = "would make" if args.dry_run else "made"
        print(f"{verb} {len(fixed)} integration status(es) coherent with their last job")
    return 0


def _close(conn: db.Conn, stuck: list[db.Row]) -> None:
    """End the stuck jobs `error` through the queue's release, as any failed job ends."""
    closed = [
        final(row["id"], row["lease_token"], JobStatus.ERROR, error=_stuck_message(row))
        for row in stuck
    ]
    release(conn, closed, message="cleanup: stuck job closed")


def _stuck_message(row: db.Row) -> str:
    since = row["since"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"cleanup: stuck {row['was']} since {since} UTC"


def sweep(args: argparse.Namespace) -> int:
    """One sweep now: rescue stale jobs, run the hooks, drain due jobs; exit 1 when a step
    failed (the sweep goes on past one, logging it)."""
    with db.transaction() as conn:  # a database that does not answer: one line, exit 1
        conn.execute("SELECT 1")
    report = run_sweep()
    print(json.dumps(report, default=str, indent=2))
    steps = {**report["kinds"], **report["hooks"]}
    failed = [name for name, step in steps.items() if isinstance(step, dict) and "error" in step]
    if failed:
        print(f"sweep: {', '.join(failed)} failed (see the log lines above)", file=sys.stderr)
        return 1
    return 0
