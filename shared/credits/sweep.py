"""The minute sweep's RunningHub repair: settle slot holders that RunningHub has finished,
fail (refunded) the ones it does not know or that ran too long, fail (refunded) queued jobs
that waited too long, and start queued jobs into free slots.

Each job is handled on its own: one that cannot be checked (RunningHub down, a bad answer,
a database error on that row) is logged and skipped, and the pump always runs.
"""

from __future__ import annotations

from typing import Any

from shared import db, log
from shared.credits import store
from shared.credits.jobs import cancel_remote, finish_job, rh_secrets
from shared.credits.models import CreditJobStatus, JobKey
from shared.credits.runninghub import (
    TASK_NOT_FOUND_CODES,
    RunningHub,
    TaskOutcome,
    configured,
    outcome_of,
)
from shared.credits.service import settle
from shared.credits.slots import pump
from shared.db import Row
from shared.errors import UpstreamError
from shared.scrub import scrub_text
from shared.settings import Settings, get_settings

_logger = log.get_logger("credits.sweep")


def sweep_runninghub() -> dict[str, Any]:
    """One pass; idempotent, and safe to race the webhook (the first final state wins)."""
    report = {"checked": 0, "settled": 0, "unreachable": 0, "errors": 0, "expired": 0}
    _check_slot_holders(report)
    _expire_queued(report)
    return {**report, "started": len(pump())}


def _check_slot_holders(report: dict[str, int]) -> None:
    """Time limits first, then RunningHub's word, for each slot holder due a check."""
    settings = get_settings()
    with db.transaction() as conn:
        due = store.due_for_check(
            conn, settings.credits.check_after_s, settings.credits.sweep_batch
        )
    client = RunningHub(settings) if configured(settings) and due else None
    for row in due:
        key = JobKey.of(row)
        with log.labels(job_id=key.id, table=key.table.value):
            report["checked"] += 1
            try:
                if _past_limits(row, settings):
                    report["settled"] += 1
                elif client is None:
                    report["unreachable"] += 1  # not configured, or down earlier in this pass
                else:
                    report["settled"] += int(_check(row, client))
            except UpstreamError as exc:
                report["unreachable"] += 1
                fields = _fields(row, exc.error_code, exc.message)
                _logger.warning("sweep could not check a job", extra=fields)
                if exc.retryable:
                    client = None  # RunningHub is down: only the time limits apply this pass
            except Exception:
                report["errors"] += 1
                _logger.exception("sweep failed on a job", extra=_fields(row))


def _past_limits(row: Row, settings: Settings) -> bool:
    """Fail a slot holder past its time limit, whatever RunningHub says; True if it did.

    Checked before asking RunningHub, so no answer (an error code, outputs that never
    arrive, RunningHub down) can keep a debited job holding a slot forever.
    """
    key, task_id, age = JobKey.of(row), row["external_task_id"], float(row["age_s"])
    if age > settings.credits.max_runtime_s:
        done = _fail(key, "The RunningHub task ran too long and was stopped.")
        if done:  # finished first, so the cancel's own TASK_END finds the job final
            cancel_remote(task_id)
        return done
    if task_id is None and age >= _launch_window(settings):  # no launch can be under way
        return _fail(key, "The task could not be started on RunningHub.")
    return False


def _check(row: Row, client: RunningHub) -> bool:
    """Ask RunningHub about one task; True when the job was finished here."""
    key, task_id = JobKey.of(row), row["external_task_id"]
    if task_id is None:
        return False  # 'starting': its launch may still be under way
    answer = client.status(task_id)
    if answer.code in TASK_NOT_FOUND_CODES:
        return _fail(key, "RunningHub does not know the task.")
    if not answer.ok:
        why = f"RunningHub answered code {answer.code} {answer.msg[:80]}".strip()
        _logger.warning("RunningHub status failed", extra=_fields(row, answer.code, why))
        return False
    if answer.data in ("SUCCESS", "FAILED"):
        return _settle_ended(key, task_id, answer.data == "FAILED", client)
    return False


def _settle_ended(key: JobKey, task_id: str, failed: bool, client: RunningHub) -> bool:
    """RunningHub says the task ended: fetch its outputs or failure and finish the job."""
    outcome = outcome_of(client.outputs(task_id))
    if outcome is None and failed:
        outcome = TaskOutcome(False, error_message="The RunningHub task failed.")
    return settle(key, outcome, task_id) if outcome is not None else False


def _expire_queued(report: dict[str, int]) -> None:
    """Fail, with their refund, queued jobs that waited longer than the limit.

    Covers RunningHub answering "full" for ever, or refusing every task (a key removed or
    refused, an empty wallet) until then.
    """
    settings = get_settings()
    with db.transaction() as conn:
        keys = store.overdue_queued(
            conn,
            settings.credits.max_queue_wait_s,
            settings.credits.sweep_batch,
        )
    message = "The job waited too long for RunningHub to take it."
    for key in keys:
        try:
            done = finish_job(
                key,
                CreditJobStatus.FAILED,
                error_message=message,
                only_from={CreditJobStatus.QUEUED},
            )
            report["expired"] += int(done.changed)
        except Exception:
            report["errors"] += 1
            _logger.exception("sweep failed on a queued job", extra=_key_fields(key))


def _launch_window(settings: Settings) -> float:
    """Longest a launch can take: every create attempt timing out, plus a margin."""
    return settings.credits.timeout_s * (settings.credits.retry_attempts + 1) + 30


def _fail(key: JobKey, message: str) -> bool:
    done = finish_job(key, CreditJobStatus.FAILED, error_message=message)
    return done.changed


def _fields(row: Row, code: object = None, reason: str | None = None) -> dict[str, Any]:
    return _key_fields(JobKey.of(row), code, reason)


def _key_fields(key: JobKey, code: object = None, reason: str | None = None) -> dict[str, Any]:
    """A line's job, and for a failure its code and why (scrubbed: RunningHub's words)."""
    extra: dict[str, Any] = {} if code is None else {"code": code}
    if reason:
        extra["reason"] = scrub_text(reason, rh_secrets())
    return log.fields(job_id=str(key.id), table=key.table.value, **extra)
