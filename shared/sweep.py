"""The minute sweep (Cloud Scheduler -> process-integration-job with `{}`).

It rescues stale jobs, runs each subsystem's periodic repair, then drains the queue.
A subsystem joins by adding one entry to HOOKS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared import log
from shared.credits.sweep import sweep_runninghub
from shared.gestao.sweeper import sweep_exports
from shared.queue import worker

_logger = log.get_logger("sweep")

# name -> callable returning a small JSON-able report. Each hook must be idempotent.
HOOKS: list[tuple[str, Callable[[], Any]]] = []
HOOKS.append(("runninghub", sweep_runninghub))
HOOKS.append(("gestao_scouter_exports", sweep_exports))


def sweep() -> dict[str, Any]:
    """One sweep: rescue, hooks, drain. A failing hook is logged and does not stop the rest."""
    rescued = worker.rescue()
    hooks: dict[str, Any] = {}
    for name, hook in HOOKS:
        try:
            hooks[name] = hook()
        except Exception:
            _logger.exception("sweep hook failed", extra=log.fields(hook=name))
            hooks[name] = {"error": "failed"}
    report = worker.process()
    report.rescued += rescued
    return {**report.as_dict(), "hooks": hooks}
