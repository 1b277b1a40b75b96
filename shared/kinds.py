"""Composition: every job kind and sweep hook, registered in one place.

The engine (`shared.jobs`) imports no kind and no capability imports this module: the
worker function, the metrics function and the ops CLI do. A new kind is one module plus one
line in KINDS; a periodic repair that is not a leased job is one line in HOOKS
(docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from typing import Any

from shared.alerts import kind as alerts
from shared.auth import Principal
from shared.credits.sweep import sweep_runninghub
from shared.gestao import runner as gestao_export
from shared.jobs.kind import Kind
from shared.jobs.sweep import Hook, Sweep, rescue
from shared.queue import kind as integration
from shared.queue.schedules import tick
from shared.queue.schemas import ProcessRequest
from shared.settings import get_settings

KINDS: tuple[Kind, ...] = (
    integration.KIND,
    gestao_export.KIND,
    alerts.KIND,
)
HOOKS: tuple[tuple[str, Hook], ...] = (
    ("schedules", tick),  # before the drain below: the occurrences it enqueues run at once
    ("runninghub", sweep_runninghub),
)
SWEEP = Sweep(KINDS, HOOKS)


def sweep() -> dict[str, Any]:
    """One minute sweep over every kind and hook."""
    settings = get_settings()
    return SWEEP.run(budget_s=settings.queue.worker_budget_s, batch=settings.queue.claim_batch)


def process_jobs(principal: Principal, req: ProcessRequest) -> dict[str, Any]:
    """process-integration-job: `{job_id}` is a wake-up (rescue the queue's stale jobs, then
    drain from that job on), `{}` is the minute sweep."""
    principal.require_service()
    if req.job_id is None:
        return sweep()
    rescued = rescue(integration.KIND)
    report = integration.process(req.job_id)
    return {"processed": report.processed, "remaining": report.remaining, "rescued": rescued}
