"""The minute sweep's hook: restart exports whose runner died, wake due ones."""

from __future__ import annotations

from typing import Any

from shared import db, log
from shared.gestao import jobs as store
from shared.gestao.runner import run_task
from shared.settings import get_settings

_logger = log.get_logger("gestao.sweep")


def sweep_exports() -> dict[str, Any]:
    """Hand back jobs whose runner died (see jobs.rescue_stale), then dispatch due jobs."""
    settings = get_settings()
    with db.transaction() as conn:
        rescued = store.rescue_stale(conn, settings)
        due = store.due(conn)
    for row in due:
        run_task(row["id"], row["tenant_id"], key=None)
    if rescued:
        _logger.warning("rescued stale export runners", extra=log.fields(count=len(rescued)))
    return {"rescued": len(rescued), "dispatched": len(due)}
