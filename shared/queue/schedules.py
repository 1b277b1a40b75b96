"""Scheduled syncs: a tenant's schedules (integration-schedules), and the minute tick that
turns due occurrences into jobs.

The tick takes due schedules with SKIP LOCKED and, in the same transaction, creates each
occurrence's job and moves the schedule on. The occurrence is the job's key (a unique
index on scheduled_for), so duplicate or concurrent sweeps, a sweep killed midway and a
clock step back create no second job; an integration that already has a live job records
the occurrence as skipped and moves on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from shared import cron, db, log
from shared.auth import Principal
from shared.cron import Missed
from shared.db import Conn, Row
from shared.errors import NotFound
from shared.jobs.wake import wake
from shared.queue.kind import KIND
from shared.queue.schemas import ScheduleQuery, ScheduleRef, ScheduleRequest
from shared.settings import get_settings
from shared.sqlfiles import query
from shared.tenancy import Role, reading_as, require_role

NEXT_RUNS_SHOWN = 5
WAKE_WORKERS = 10  # at most this many drains woken per tick (the worker's max instances)
UNPLANNABLE_RETRY_S = 3600  # a schedule today's rules cannot plan (a zone gone from tzdata)
_logger = log.get_logger("queue.schedules")


def _q(name: str) -> Any:
    return query("schedules", name)


# -- the function: GET (member), PUT and DELETE (admin) ----------------------------------------


def _public(row: Row, now: datetime) -> dict[str, Any]:
    """A schedule as callers see it, with its next runs."""
    status = row["last_job_status"] if row["last_outcome"] == "enqueued" else row["last_outcome"]
    try:
        upcoming = cron.next_runs(row["cron"], row["timezone"], now, NEXT_RUNS_SHOWN)
    except ValueError:  # a zone the host no longer knows: none to show (the tick puts it off)
        upcoming = []
    if row["enabled"] and row["next_run_at"] < now:
        upcoming = [row["next_run_at"], *upcoming[:-1]]  # due, the next sweep takes it
    return {
        "provider_slug": row["provider_slug"],
        "cron": row["cron"],
        "timezone": row["timezone"],
        "enabled": row["enabled"],
        "missed": row["missed"],
        "spread": row["spread"],
        "offset_s": row["offset_s"],
        "next_run_at": row["next_run_at"].isoformat() if row["enabled"] else None,
        "next_runs": [moment.isoformat() for moment in upcoming] if row["enabled"] else [],
        "last_run_at": row["last_run_at"].isoformat() if row["last_run_at"] else None,
        "last_status": status,
        "last_job_id": str(row["last_job_id"]) if row["last_job_id"] else None,
        "paused_reason": row["paused_reason"],
    }


def list_schedules(principal: Principal, req: ScheduleQuery) -> dict[str, Any]:
    """A tenant's schedules (members read under RLS)."""
    with db.transaction() as conn:
        require_role(conn, principal, req.tenant_id, Role.MEMBER)
    with reading_as(principal) as conn:
        found = conn.execute(_q("list"), {"tenant_id": req.tenant_id}).fetchall()
        now = _now(conn)
    return {"schedules": [_public(row, now) for row in found]}


def put_schedule(principal: Principal, req: ScheduleRequest) -> dict[str, Any]:
    """Create or change a schedule: it starts from its first occurrence not yet due; saved
    with the same timing (cron, zone, offset, still enabled) it keeps the occurrence it
    was waiting for, even one due and not yet taken by a sweep."""
    params = {"tenant_id": req.tenant_id, "provider_slug": req.provider_slug}
    with db.transaction() as conn:
        require_role(conn, principal, req.tenant_id, Role.ADMIN)
        if conn.execute(_q("integration"), params).fetchone() is None:
            raise NotFound("The tenant has no such integration.")
        now = _now(conn)
        saved = conn.execute(_q("get"), params).fetchone()
        if saved is not None and (saved["cron"], saved["timezone"], saved["spread"]) == (
            req.cron,
            req.timezone,
            req.spread,
        ):  # the same timing keeps its offset: computed now, it may differ (uneven gaps)
            offset = int(saved["offset_s"])
        elif req.spread:
            identity = f"{req.tenant_id}:{req.provider_slug}"
            offset = cron.spread_offset(identity, req.cron, req.timezone, now)
        else:
            offset = 0
        first = cron.first_run(req.cron, req.timezone, now, offset)
        conn.execute(
            _q("upsert"),
            {
                **params,
                "cron": req.cron,
                "timezone": req.timezone,
                "enabled": req.enabled,
                "missed": str(req.missed),
                "spread": req.spread,
                "offset_s": offset,
                "next_run_at": first,
                "created_by": principal.user_id,
            },
        )
        row = conn.execute(_q("get"), params).fetchone()
    assert row is not None
    return _public(row, now)


def delete_schedule(principal: Principal, req: ScheduleRef) -> dict[str, Any]:
    """Remove a schedule (its jobs stay in the history)."""
    params = {"tenant_id": req.tenant_id, "provider_slug": req.provider_slug}
    with db.transaction() as conn:
        require_role(conn, principal, req.tenant_id, Role.ADMIN)
        if conn.execute(_q("delete"), params).fetchone() is None:
            raise NotFound("No schedule for this integration.")
    return {"deleted": True, "provider_slug": req.provider_slug}


def _now(conn: Conn) -> datetime:
    row = conn.execute(_q("now")).fetchone()
    assert row is not None
    moment: datetime = row["now"]
    return moment


# -- the tick (a sweep hook) --------------------------------------------------------------


@dataclass
class _Step:
    """One taken schedule: its plan, and what became of its occurrence."""

    row: Row
    plan: cron.Plan
    outcome: str | None = None
    job_id: UUID | None = None
    reason: str | None = None


def tick(*, budget_s: float | None = None) -> dict[str, int]:
    """Enqueue every due occurrence, in batches, within the budget; wake the workers."""
    settings = get_settings()
    deadline = time.monotonic() + (
        settings.schedules.tick_budget_s if budget_s is None else budget_s
    )
    report = {"schedules": 0, "enqueued": 0, "skipped": 0, "missed": 0}
    while time.monotonic() < deadline:
        with db.transaction() as conn:
            steps, taken = _tick_batch(conn, settings.schedules.tick_batch)
        for step in steps:
            report["missed"] += step.plan.missed
            if step.outcome in ("enqueued", "skipped"):
                report[step.outcome] += 1
        report["schedules"] += len(steps)
        if taken < settings.schedules.tick_batch:
            break
    for _ in range(min(report["enqueued"], WAKE_WORKERS)):
        wake(KIND)  # drains: each claims due jobs until none is left
    if report["enqueued"] or report["missed"]:
        _logger.info("schedules ticked", extra=log.fields(**report))
    return report


def _not_waiting(conn: Conn, taken: list[Row]) -> list[Row]:
    """The taken schedules but an `all` one whose previous occurrence's job is live after
    all: another sweep enqueued it just before these rows were locked, after take_due's
    snapshot (its next occurrence would be skipped beside it). Left for when it ends."""
    ids = [r["last_job_id"] for r in taken if r["missed"] == "all" and r["last_job_id"]]
    if not ids:
        return taken
    live = {r["id"] for r in conn.execute(_q("live_jobs"), {"ids": ids}).fetchall()}
    return [r for r in taken if not (r["missed"] == "all" and r["last_job_id"] in live)]


def _tick_batch(conn: Conn, limit: int) -> tuple[list[_Step], int]:
    """One batch in one transaction: take, plan, enqueue, advance; the steps, and how many
    schedules were taken (one that cannot be planned is put off, not stepped)."""
    settings = get_settings()
    steps: list[_Step] = []
    put_off: list[Row] = []
    taken = conn.execute(_q("take_due"), {"limit": limit}).fetchall()
    for row in _not_waiting(conn, taken):
        try:
            plan = cron.plan(
                cron=row["cron"],
                zone=row["timezone"],
                next_run_at=row["next_run_at"],
                offset_s=row["offset_s"],
                now=row["db_now"],
                policy=Missed(row["missed"]),
                grace_s=settings.schedules.grace_s,
                max_catch_up=settings.schedules.max_catch_up,
            )
        except Exception:  # one schedule the rules of today refuse cannot stop the others
            fields = log.fields(tenant_id=row["tenant_id"], provider_slug=row["provider_slug"])
            _logger.exception("schedule could not be planned; put off", extra=fields)
            put_off.append(row)
            continue
        steps.append(_Step(row, plan))
    if put_off:  # out of the head of the queue, so the schedules behind them are taken
        conn.execute(
            _q("put_off"),
            {
                "tenants": [row["tenant_id"] for row in put_off],
                "providers": [row["provider_slug"] for row in put_off],
                "delay_s": UNPLANNABLE_RETRY_S,
            },
        )
    _enqueue(conn, [s for s in steps if s.plan.run is not None and s.row["integration_enabled"]])
    for step in steps:
        _explain(step)
    conn.execute(
        _q("advance"),
        {
            "tenants": [s.row["tenant_id"] for s in steps],
            "providers": [s.row["provider_slug"] for s in steps],
            "next_runs": [s.plan.next_run_at for s in steps],
            "ran": [s.plan.run for s in steps],
            "outcomes": [s.outcome for s in steps],
            "jobs": [s.job_id for s in steps],
            "missed": [s.plan.missed for s in steps],
            "reasons": [s.reason for s in steps],
        },
    )
    return steps, len(taken)


def _enqueue(conn: Conn, steps: list[_Step]) -> None:
    """One job per occurrence; a step whose insert found a live job is left without one."""
    if not steps:
        return
    created = conn.execute(
        _q("enqueue"),
        {
            "tenants": [s.row["tenant_id"] for s in steps],
            "providers": [s.row["provider_slug"] for s in steps],
            "occurrences": [s.plan.run for s in steps],
            "offsets": [s.row["offset_s"] for s in steps],
        },
    ).fetchall()
    jobs = {(r["tenant_id"], r["provider_slug"]): r["id"] for r in created}
    for step in steps:
        step.job_id = jobs.get((step.row["tenant_id"], step.row["provider_slug"]))


def _explain(step: _Step) -> None:
    """The occurrence's outcome and, for a skip or a miss, the history line."""
    notes: list[str] = []
    if step.plan.run is not None:
        step.outcome = "enqueued" if step.job_id is not None else "skipped"
        if not step.row["integration_enabled"]:
            notes.append("scheduled run skipped: the integration is disabled")
        elif step.job_id is None:
            notes.append("scheduled run skipped: a job is already live")
    if step.plan.missed:
        step.outcome = step.outcome or "missed"
        count = f"at least {step.plan.missed}" if step.plan.at_least else str(step.plan.missed)
        notes.append(f"{count} scheduled run(s) missed (policy {step.row['missed']})")
    step.reason = "; ".join(notes) or None
