"""The export runner: keyset batches -> one upsert each -> checkpoint, under a lease.

A run claims the job (pending, or running with a dead runner), then loops: check the
lease (and a pause request) and read the next page after the cursor, POST it, and record
the batch — counters, cursor and bad rows in one transaction, only while the lease is
ours. Up to `gestao_scouter_in_flight` POSTs overlap (reading and checkpointing go on
meanwhile) but batches are checkpointed strictly in order, so the cursor never skips one;
a batch posted but not checkpointed is simply sent again by the next run (upserts are
idempotent). A batch refused for its data is split in halves until the bad rows stand
alone; the rest is exported. When the time budget is spent the runner re-dispatches
itself; transient failures back off and retry, and several in a row pause the job.
"""

from __future__ import annotations

import json
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from shared import db, log
from shared.dispatch import Task, dispatch
from shared.errors import SyncqError
from shared.gestao import NAME
from shared.gestao import jobs as store
from shared.gestao.batches import (
    START,
    Batch,
    batch_statement,
    date_bounds,
    next_batch,
    remote_columns,
)
from shared.gestao.models import ExportJob, ExportStatus
from shared.gestao.remote import Answer, RemoteClient, RemoteUnavailable, Reply, target_for
from shared.gestao.schema import drop_cache
from shared.scrub import scrub_text
from shared.settings import Settings, get_settings
from shared.tenancy import get_tenant

FUNCTION = "export-to-gestao-scouter-batch"
_logger = log.get_logger("gestao.runner")


class LeaseLost(Exception):
    """Someone else holds the job now (reset, rescued, or paused)."""


class Stop(Exception):
    """The job must stop and wait for a person (pause with this reason)."""

    def __init__(self, reason: str, *, schema_stale: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.schema_stale = schema_stale


def run_task(job_id: UUID, tenant_id: UUID, *, key: str | None, delay_s: float = 0.0) -> None:
    """Wake a runner for the job (a Cloud Task; duplicates find nothing to claim)."""
    body = {"tenant_id": str(tenant_id), "action": "run", "job_id": str(job_id)}
    dispatch(Task(FUNCTION, body, delay_s=delay_s, key=key))


@dataclass
class Outcome:
    """What one batch did: rows exported and the rows refused (as error records)."""

    exported: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Ending:
    """How a run ends: the state to hand the job back in."""

    status: ExportStatus
    reason: str | None = None
    failure: str | None = None  # a transient batch failure (back off, maybe pause)
    schema_stale: bool = False  # the remote said our cached view of its schema is wrong


class BatchRunner:
    """Runs one claimed job until done, paused, out of budget or out of luck."""

    def __init__(self, row: dict[str, Any], client: RemoteClient, settings: Settings) -> None:
        self.row = row
        self.job_id: UUID = row["id"]
        self.lease: UUID = row["lease_token"]
        self.client = client
        self.settings = settings
        mapping: dict[str, str] = row["field_mappings"]
        self.columns = remote_columns(mapping)
        self.on_conflict = mapping["id"]
        self.statement = batch_statement(mapping)
        low, high = date_bounds(row["start_date"], row["end_date"])
        self.params = {
            "tenant_id": row["tenant_id"],
            "from_ts": low,
            "to_ts": high,
            "limit": row["batch_size"],
        }
        self.cursor = (row["cursor_criado"], row["cursor_id"]) if row["cursor_criado"] else START
        self.batches = row["batches"]
        self.last_beat = time.monotonic()

    # -- the loop ----------------------------------------------------------------------
    def run(self, deadline: float) -> dict[str, Any] | None:
        """Batches until the end, a stop, or the deadline; the job row it left (None: lost)."""
        try:
            with ThreadPoolExecutor(max(1, self.settings.gestao_scouter_in_flight)) as pool:
                ending = self._pipeline(pool, deadline)
            # Every POST has returned (the pool waited): now the job may change hands.
            return self._end(ending)
        except LeaseLost:
            _logger.info("export lease lost; stopping")
            return None

    def _pipeline(self, pool: ThreadPoolExecutor, deadline: float) -> Ending:
        in_flight: deque[tuple[Batch, Future[Answer]]] = deque()
        read_cursor = self.cursor
        ending: Ending | None = None
        limit = max(1, self.settings.gestao_scouter_in_flight)
        sent = 0
        while True:
            while ending is None and len(in_flight) < limit:
                # Every run sends at least one batch, so however short the budget (or
                # slow the start), continuations always move the cursor forward.
                if sent and time.monotonic() >= deadline:
                    ending = Ending(ExportStatus.PENDING)
                    break
                try:
                    batch = self._next(read_cursor)
                except Stop as stop:
                    ending = Ending(ExportStatus.PAUSED, reason=stop.reason)
                    break
                if not batch.size:
                    ending = Ending(ExportStatus.COMPLETED)
                    break
                assert batch.last is not None
                in_flight.append((batch, pool.submit(self._post, batch.body)))
                read_cursor = batch.last
                sent += 1
            if not in_flight:
                assert ending is not None
                return ending
            batch, future = in_flight.popleft()
            try:
                outcome = self._outcome(batch, future.result())
            except RemoteUnavailable as exc:
                return Ending(ExportStatus.PENDING, failure=exc.message)
            except Stop as stop:
                return Ending(ExportStatus.PAUSED, stop.reason, schema_stale=stop.schema_stale)
            self._checkpoint(batch, outcome)

    def _next(self, cursor: tuple[Any, int]) -> Batch:
        """Check the lease (and a pause) and read the page after `cursor`, in one transaction."""
        with db.transaction() as conn:
            self._beat_in(conn)
            return next_batch(conn, self.statement, self.params, cursor)

    def _beat_in(self, conn: db.Conn) -> None:
        beat = store.heartbeat(conn, self.job_id, self.lease)
        if beat is None:
            raise LeaseLost()
        if beat["reset_requested"]:
            raise Stop("reset by an admin")  # carried out when the job is released
        if beat["pause_requested"]:
            raise Stop(store.PAUSED_BY_ADMIN)
        self.last_beat = time.monotonic()

    def _beat_if_due(self) -> None:
        """During a long split, keep the lease alive and notice a pause."""
        if time.monotonic() - self.last_beat > self.settings.gestao_scouter_stale_after_s / 4:
            with db.transaction() as conn:
                self._beat_in(conn)

    # -- sending -------------------------------------------------------------------------
    def _post(self, body: bytes) -> Answer:
        return self.client.upsert(body, self.columns, self.on_conflict)

    def _outcome(self, batch: Batch, answer: Answer) -> Outcome:
        """A whole batch's answer; a data refusal is split to find the bad rows."""
        if answer.reply is Reply.OK:
            return Outcome(exported=batch.size)
        return self._refused(answer, json.loads(batch.body))

    def _try(self, rows: list[dict[str, Any]]) -> Outcome:
        self._beat_if_due()
        answer = self._post(_dumps(rows))
        if answer.reply is Reply.OK:
            return Outcome(exported=len(rows))
        return self._refused(answer, rows)

    def _refused(self, answer: Answer, rows: list[dict[str, Any]]) -> Outcome:
        """Refused rows: one is a bad row; several are split in halves and tried again."""
        if answer.reply is not Reply.DATA:
            raise Stop(self._stop_reason(answer), schema_stale=answer.reply is Reply.SCHEMA)
        if len(rows) == 1:
            return Outcome(errors=[self._error(int(rows[0][self.on_conflict]), rows[0], answer)])
        mid = len(rows) // 2
        first = self._try(rows[:mid])
        second = self._try(rows[mid:])
        return Outcome(first.exported + second.exported, first.errors + second.errors)

    def _error(self, lead_id: int, doc: Any, answer: Answer) -> dict[str, Any]:
        secrets = self.client.secrets
        return {
            "lead_id": lead_id,
            "error_message": answer.safe_message(secrets),
            "response_status": answer.status,
            "response_body": answer.safe_body(secrets),
            "fields_sent": doc,
        }

    def _stop_reason(self, answer: Answer) -> str:
        message = answer.safe_message(self.client.secrets)
        if answer.reply is Reply.SCHEMA:
            return (
                f"{NAME} schema does not fit ({message}). Validate the schema, apply the "
                "suggested SQL, reload the schema cache, then resume."
            )
        if answer.reply is Reply.AUTH:
            return f"{NAME} refused the key (HTTP {answer.status}: {message}). Fix it, then resume."
        return f"{NAME} refused the batch (HTTP {answer.status}: {message})."

    # -- state changes ---------------------------------------------------------------------
    def _checkpoint(self, batch: Batch, outcome: Outcome) -> None:
        assert batch.last is not None
        with db.transaction() as conn:
            row = store.checkpoint(
                conn,
                job_id=self.job_id,
                lease=self.lease,
                exported=outcome.exported,
                cursor=batch.last,
                errors=outcome.errors,
            )
        if row is None:
            raise LeaseLost()
        self.cursor = batch.last
        self.batches += 1
        self.last_beat = time.monotonic()

    def _end(self, ending: Ending) -> dict[str, Any] | None:
        if ending.failure is not None:
            return self._failed_batch(ending.failure)
        if ending.schema_stale:  # validation must not trust its cached copy any more
            with db.transaction() as conn:
                drop_cache(conn, self.row["tenant_id"])
        row = self._release(ending.status, reason=ending.reason)
        if row["status"] == ExportStatus.PENDING:  # out of budget, or reset: a new run goes on
            key = f"gs-export:{self.job_id}:{self.row['attempts']}:{self.batches}"
            run_task(self.job_id, self.row["tenant_id"], key=key)
        return row

    def _release(self, status: ExportStatus, **kwargs: Any) -> dict[str, Any]:
        with db.transaction() as conn:
            row = store.release(conn, self.job_id, self.lease, str(status), **kwargs)
        if row is None:
            raise LeaseLost()
        _logger.info("export released", extra=log.fields(status=str(status)))
        return row

    def failed_batch(self, message: str) -> dict[str, Any] | None:
        """A batch (or the run) failed: back off and retry, or pause after several."""
        try:
            return self._failed_batch(message)
        except LeaseLost:
            return None

    def _failed_batch(self, message: str) -> dict[str, Any]:
        failures = self.row["consecutive_failures"] + 1
        settings = self.settings
        if failures >= settings.gestao_scouter_max_failing_batches:
            reason = f"{failures} batches in a row failed; last: {message}"
            return self._release(ExportStatus.PAUSED, failures=failures, reason=reason)
        delay = store.failure_delay(settings, failures)
        row = self._release(ExportStatus.PENDING, delay_s=delay, failures=failures, error=message)
        if row["status"] == ExportStatus.PENDING:  # not paused or reset by an admin meanwhile
            key = f"gs-export:{self.job_id}:{self.row['attempts']}:retry"
            run_task(self.job_id, self.row["tenant_id"], key=key, delay_s=delay)
        return row


def _dumps(rows: list[Any]) -> bytes:
    return json.dumps(rows, ensure_ascii=False).encode()


def _fail(row: dict[str, Any], message: str) -> None:
    with db.transaction() as conn:
        store.release(conn, row["id"], row["lease_token"], str(ExportStatus.FAILED), error=message)


def run_job(job_id: UUID, tenant_id: UUID, *, budget_s: float | None = None) -> dict[str, Any]:
    """The `run` action: claim the job and export until done, paused or out of budget."""
    settings = get_settings()
    budget = settings.gestao_scouter_budget_s if budget_s is None else budget_s
    deadline = time.monotonic() + budget
    with db.transaction() as conn:
        row = store.claim(conn, tenant_id, job_id)
    if row is None:  # not due, paused, done, or another runner has it: nothing to do
        return _current(tenant_id, job_id)
    with log.labels(job_id=job_id, tenant_id=row["tenant_id"]):
        try:
            with db.transaction() as conn:
                target = target_for(conn, get_tenant(conn, tenant_id=row["tenant_id"]))
            runner = BatchRunner(row, RemoteClient(target, settings), settings)
        except SyncqError as exc:
            _fail(row, scrub_text(exc.message))
            return _current(tenant_id, job_id)
        try:
            runner.run(deadline)
        except Exception:
            _logger.exception("export runner crashed")
            runner.failed_batch("Internal error while exporting.")
    return _current(tenant_id, job_id)


def _current(tenant_id: UUID, job_id: UUID) -> dict[str, Any]:
    with db.transaction() as conn:
        return ExportJob.from_row(store.get(conn, tenant_id, job_id)).model_dump(mode="json")
