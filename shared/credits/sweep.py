"""The minute sweep's RunningHub repair: settle slot holders that RunningHub has finished,
fail the ones it does not know (refunded), and start queued jobs into free slots.
"""

from __future__ import annotations

from typing import Any

from shared import db, log
from shared.credits import store
from shared.credits.jobs import cancel_remote, finish_job
from shared.credits.models import JobKey, JobStatus
from shared.credits.runninghub import TASK_NOT_FOUND_CODES, RunningHub, TaskOutcome, outcome_of
from shared.credits.service import settle
from shared.credits.slots import pump
from shared.db import Row
from shared.errors import UpstreamError
from shared.settings import get_settings

_logger = log.get_logger("credits.sweep")


def sweep_runninghub() -> dict[str, Any]:
    """One pass; idempotent, and safe to race the webhook (the first final state wins)."""
    settings = get_settings()
    with db.transaction() as conn:
        due = store.due_for_check(
            conn, settings.runninghub_check_after_s, settings.runninghub_sweep_batch
        )
    report = {"checked": 0, "settled": 0, "unreachable": 0, "started": 0}
    client: RunningHub | None = None
    for row in due:
        report["checked"] += 1
        try:
            client = client or RunningHub(settings)
            report["settled"] += int(_check(row, client))
        except UpstreamError as exc:
            report["unreachable"] += 1
            _logger.warning("sweep could not check a job", extra=log.fields(error=exc.error_code))
            if exc.retryable:
                break  # RunningHub is down: try again next minute
    report["started"] = len(pump())
    return report


def _check(row: Row, client: RunningHub) -> bool:
    """Ask RunningHub about one slot holder; True when the job was finished here."""
    key = JobKey.of(row)
    task_id = row["external_task_id"]
    if task_id is None:  # 'starting' with no task: fail it once no launch can be under way
        late = float(row["age_s"]) >= _launch_window()
        return late and _fail(key, "The task could not be started on RunningHub.")
    answer = client.status(task_id)
    if answer.code in TASK_NOT_FOUND_CODES:
        return _fail(key, "RunningHub does not know the task.")
    if not answer.ok:
        _logger.warning("RunningHub status failed", extra=log.fields(code=answer.code))
        return False
    if answer.data in ("SUCCESS", "FAILED"):
        return _settle_ended(key, task_id, answer.data == "FAILED", client)
    if float(row["age_s"]) > get_settings().runninghub_max_runtime_s:
        cancel_remote(task_id)
        return _fail(key, "The RunningHub task ran too long and was stopped.")
    return False


def _settle_ended(key: JobKey, task_id: str, failed: bool, client: RunningHub) -> bool:
    """RunningHub says the task ended: fetch its outputs or failure and finish the job."""
    outcome = outcome_of(client.outputs(task_id))
    if outcome is None and failed:
        outcome = TaskOutcome(False, error_message="The RunningHub task failed.")
    return settle(key, outcome, task_id) if outcome is not None else False


def _launch_window() -> float:
    """Longest a launch can take: every create attempt timing out, plus a margin."""
    settings = get_settings()
    return settings.runninghub_timeout_s * (settings.runninghub_retry_attempts + 1) + 30


def _fail(key: JobKey, message: str) -> bool:
    done = finish_job(key, JobStatus.FAILED, error_message=message)
    return done.changed
