"""The drain: claim and run due jobs until none is due or the time budget is spent.

After a job ends the worker keeps claiming (invariant 7); when the budget runs out with
work still due it wakes another worker rather than leaving it to the next sweep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from shared import db
from shared.jobs import store
from shared.jobs.kind import Kind
from shared.jobs.wake import wake


@dataclass
class DrainReport:
    processed: list[dict[str, Any]] = field(default_factory=list)
    remaining: int = 0


def drain(
    kind: Kind,
    *,
    budget_s: float,
    batch: int = 1,
    job_id: UUID | None = None,
    wake_rest: bool = True,
) -> DrainReport:
    """Run due jobs of `kind` (the named one first, if due) within `budget_s`; with
    `wake_rest` False, due work left is only counted (the caller drains it again)."""
    deadline = time.monotonic() + budget_s
    report = DrainReport()
    wanted = job_id
    while time.monotonic() < deadline:
        with db.transaction() as conn:
            rows = store.claim(conn, kind.table, limit=batch, job_id=wanted)
        if not rows and wanted is not None:
            wanted = None  # the named job is not due (or taken): drain the rest
            continue
        if not rows:
            break
        wanted = None
        for turn, row in enumerate(rows):
            if turn and not _still_ours(kind, row):  # rescued while it waited its turn
                continue
            report.processed.append(kind.run(row, deadline))
    with db.transaction() as conn:
        report.remaining = store.due_count(conn, kind.table)
    if report.remaining and wake_rest:
        wake(kind)
    return report


def _still_ours(kind: Kind, row: dict[str, Any]) -> bool:
    """A job that waited in its batch sent no heartbeat: the sweep may have handed it to
    another worker meanwhile, which may be running it now."""
    with db.transaction() as conn:
        return store.renew(conn, kind.table, row["id"], row["lease_token"])


def run_named(kind: Kind, job_id: UUID, deadline: float) -> dict[str, Any] | None:
    """Claim and run the named job, if it is due and free (None: it is not)."""
    with db.transaction() as conn:
        rows = store.claim(conn, kind.table, limit=1, job_id=job_id)
    return kind.run(rows[0], deadline) if rows else None
