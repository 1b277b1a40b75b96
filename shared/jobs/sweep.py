"""The minute sweep (Cloud Scheduler): one pass over every registered kind and hook.

For each kind, rescue the jobs whose lease expired; then run each hook (periodic repairs
that are not leased jobs, e.g. the credits queue); then see to due work: drain the kinds
that run in the sweep, wake the others' due jobs (or, with `DISPATCHER=disabled`, run
them here). The sweep's time budget is one for all of it, not one per kind, and each kind
first gets its share of it, so one kind's backlog cannot starve the others. Every
step is idempotent, and one that fails is logged and does not stop the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from shared import db, dispatch, log
from shared.jobs import store
from shared.jobs.drain import DrainReport, drain, run_named
from shared.jobs.kind import Kind
from shared.jobs.wake import wake
from shared.scrub import scrub_text

RESCUE_LIMIT = 500
WAKE_LIMIT = 100
_logger = log.get_logger("jobs.sweep")

Hook = Callable[[], Any]


def rescue(kind: Kind) -> int:
    """Hand back `kind`'s stale jobs; wake the retried ones once that has committed.

    Never raises: a rescue that fails as a whole is logged and rolled back (nothing
    rescued, nothing woken) and left to the next sweep. Each row is handed back under its
    own savepoint, so a row that cannot be rescued (still locked by us, still running)
    waits for the next sweep alone while the others are rescued.
    """
    released: list[db.Row] = []
    try:
        with db.transaction() as conn:
            stale = store.lock_stale(
                conn, kind.table, stale_after_s=kind.stale_after_s(), limit=RESCUE_LIMIT
            )
            kind.before_rescue(conn, stale)
            for row in stale:
                try:
                    with conn.transaction():
                        released.extend(kind.rescue(conn, row))
                except Exception:
                    _logger.exception(
                        "stale job could not be rescued",
                        extra=log.fields(kind=kind.name, job_id=row["id"]),
                    )
    except Exception:
        _logger.exception("rescue of stale jobs failed", extra=log.fields(kind=kind.name))
        return 0
    for row in released:
        _log_rescued(kind, row)
    for row in released:  # one row's wake-up cannot cost the others theirs, nor the sweep
        if row["status"] == "pending":
            event = ("retry", row["attempts"])
            delay = float(row.get("delay_s") or 0.0)
            _guarded(
                kind.name,
                partial(
                    wake, kind, row["id"], tenant_id=row["tenant_id"], event=event, delay_s=delay
                ),
            )
    if released:
        _logger.warning("rescued stale jobs", extra=log.fields(kind=kind.name, count=len(released)))
    return len(released)


def _log_rescued(kind: Kind, row: db.Row) -> None:
    """One line per rescued job, with its labels: WARNING when it is retried, ERROR when
    the rescue ended it (its last attempt timed out, or an export paused)."""
    reason = row.get("error_message") or row.get("pause_reason")
    fields: dict[str, Any] = {
        "kind": kind.name,
        "status": row["status"],
        "code": "stale_job",
        "reason": scrub_text(str(reason)) if reason else None,
    }
    with log.labels(job_id=row["id"], tenant_id=row.get("tenant_id")):
        if row["status"] == "pending":  # a retry says why too, as the worker's own do
            _logger.warning("stale job rescued, retry scheduled", extra=log.fields(**fields))
            return
        _logger.error("stale job rescued and ended", extra=log.fields(**fields))


def wake_due(kind: Kind, deadline: float) -> dict[str, Any]:
    """A wake-up for each due job of a kind whose jobs run in their own requests; `unsent`
    counts those whose wake-up did not get through (the next sweep tries again). With
    `DISPATCHER=disabled` (a deployment on the sweep alone) they run here instead, while the
    sweep's budget lasts."""
    with db.transaction() as conn:
        due = store.due(conn, kind.table, limit=WAKE_LIMIT)
    if not dispatch.sends_tasks():
        ran = [run_named(kind, row["id"], deadline) for row in due if time.monotonic() < deadline]
        return {"woken": 0, "unsent": 0, "processed": [r for r in ran if r is not None]}
    woken = sum(wake(kind, row["id"], tenant_id=row["tenant_id"]) for row in due)
    return {"woken": woken, "unsent": len(due) - woken, "processed": []}


@dataclass(frozen=True)
class Sweep:
    """The registered kinds and hooks (composed in `shared.kinds`)."""

    kinds: Sequence[Kind]
    hooks: Sequence[tuple[str, Hook]]

    def run(self, *, budget_s: float, batch: int = 1) -> dict[str, Any]:
        """One sweep. `processed`, `remaining` and `rescued` add up every kind; `kinds`
        and `hooks` say what each step did.

        Due work gets the budget in two turns: first each kind its share of the time left
        (what one leaves unused goes to those after it), so a backlog of one kind cannot
        keep the others from running at all; then the kinds with due work left, in order,
        what is still left."""
        deadline = time.monotonic() + budget_s
        kinds: dict[str, dict[str, Any]] = {}
        for kind in self.kinds:
            kinds[kind.name] = {"rescued": rescue(kind)}
        hooks = {name: _guarded(name, hook) for name, hook in self.hooks}
        processed: list[dict[str, Any]] = []
        for turn, kind in enumerate(self.kinds):
            share = max(0.0, deadline - time.monotonic()) / (len(self.kinds) - turn)
            until = time.monotonic() + share
            processed.extend(_due_work(kind, kinds[kind.name], until, batch, last=False))
        for kind in self.kinds:
            report = kinds[kind.name]
            if report.get("remaining") or (not kind.drains_in_sweep and not dispatch.sends_tasks()):
                processed.extend(_due_work(kind, report, deadline, batch, last=True))
        return {
            "processed": processed,
            "remaining": sum(k.get("remaining", 0) for k in kinds.values()),
            "rescued": sum(k["rescued"] for k in kinds.values()),
            "kinds": kinds,
            "hooks": hooks,
        }


def _due_work(
    kind: Kind, report: dict[str, Any], until: float, batch: int, *, last: bool
) -> list[dict[str, Any]]:
    """Drain (or wake) `kind`'s due work until `until`, adding to its `report`; only the
    `last` turn wakes a worker for the due work it leaves. What it ran."""
    if not kind.drains_in_sweep:
        woke = _guarded(kind.name, partial(wake_due, kind, until))
        ran: list[dict[str, Any]] = woke.pop("processed", [])
        for key, value in woke.items():
            report[key] = report.get(key, 0) + value if isinstance(value, int) else value
        return ran
    left = max(0.0, until - time.monotonic())
    drained = _guarded(kind.name, partial(drain, kind, budget_s=left, batch=batch, wake_rest=last))
    if not isinstance(drained, DrainReport):
        report.update(drained)
        return []
    report.update(
        processed=report.get("processed", 0) + len(drained.processed),
        remaining=drained.remaining,
    )
    return drained.processed


def _guarded(name: str, step: Callable[[], Any]) -> Any:
    try:
        return step()
    except Exception:
        _logger.exception("sweep step failed", extra=log.fields(step=name))
        return {"error": "failed"}
