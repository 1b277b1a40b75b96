"""The export runner: keyset batches -> one upsert each -> checkpoint, under a lease.

A run claims the job (pending, or running with a dead runner), checks the lease (and a
pause request), then loops: read the next page after the cursor, POST it, and record the
batch — counters, cursor and bad rows in one transaction, only while the lease is ours;
that checkpoint is also the heartbeat and where a pause or reset asked meanwhile is seen.
Three things overlap: one reader builds the next page while up to
`gestao_scouter_in_flight` POSTs are out and this thread checkpoints the oldest. Batches
are checkpointed strictly in order, so the cursor never skips one; a batch posted but not
checkpointed is simply sent again by the next run (upserts are idempotent). A batch
refused for its data is split in halves until the bad rows stand alone; the rest is
exported. When the time budget is spent the runner re-dispatches itself; transient
failures back off and retry, and several in a row pause the job.
"""

from __future__ import annotations

import json
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from shared import db, log
from shared.db import Conn, Row
from shared.errors import LeaseLost, RemoteUnavailable, StopRequested, SyncqError
from shared.gestao import NAME, exports
from shared.gestao.batches import (
    START,
    Batch,
    BatchSizer,
    batch_statement,
    date_bounds,
    next_batch,
    remote_columns,
    synced_lately,
    synced_since,
    synced_statement,
)
from shared.gestao.models import ADMIN_PAUSE, ExportJob, ExportStatus, Pause, PauseCode
from shared.gestao.remote import RemoteAnswer, RemoteClient, Reply, target_for
from shared.gestao.schema import drop_cache
from shared.jobs import store as engine
from shared.jobs.lease import Lease
from shared.jobs.table import JobTable
from shared.jobs.wake import wake
from shared.scrub import scrub_text
from shared.settings import Settings, get_settings
from shared.tenancy import get_tenant

FUNCTION = "export-to-gestao-scouter-batch"
# How long before a page was read a remote edit's write here may have begun and still not
# be in the page (its transaction committed after the read's snapshot was taken).
_SYNC_SLACK = timedelta(minutes=1)
_logger = log.get_logger("gestao.runner")


@dataclass
class BatchResult:
    """What one batch did: rows exported and the rows refused (as error records)."""

    exported: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Ending:
    """How a run ends: the state to hand the job back in."""

    status: ExportStatus
    pause: Pause | None = None  # why it pauses (status paused)
    failure: str | None = None  # a transient batch failure (back off, maybe pause)
    timed_out: bool = False  # the failure was a timeout: the next run sends smaller batches
    schema_stale: bool = False  # the remote said our cached view of its schema is wrong
    rows: int | None = None  # the size of the batch that failed (a timeout halves from it)
    code: str | None = None  # what failed, for the log (None: nothing did)
    said: str | None = None  # what the remote answered, for the log (no data it quoted)
    retry_after_s: float | None = None  # the wait the remote asked for (Retry-After)


class ExportStop(StopRequested):
    """The export must stop and wait for a person: `pause` says why."""

    def __init__(self, pause: Pause, *, schema_stale: bool = False) -> None:
        super().__init__(pause.reason, schema_stale=schema_stale)
        self.pause = pause


class RemoteRefused(ExportStop):
    """The remote refused the statement itself (the key, its schema, a rule): the export
    pauses until a person acts. `code` and `said` are for the log: the remote's status and
    error code, not its message, which may quote a lead's values."""

    def __init__(self, pause: Pause, answer: RemoteAnswer) -> None:
        super().__init__(pause, schema_stale=answer.reply is Reply.SCHEMA)
        self.code = _REFUSAL_CODES.get(answer.reply, "remote_refused")
        self.said = f"HTTP {answer.status}" + (f", {answer.code}" if answer.code else "")


class BatchRunner:
    """Runs one claimed job until done, paused, out of budget or out of luck."""

    def __init__(self, row: dict[str, Any], client: RemoteClient, settings: Settings) -> None:
        self.row = row
        self.job_id: UUID = row["id"]
        self.lease = Lease(exports.TABLE, row)
        self.client = client
        self.settings = settings
        mapping: dict[str, str] = row["field_mappings"]
        self.columns = remote_columns(mapping)
        self.on_conflict = mapping["id"]
        self.statement = batch_statement(mapping)
        self.synced = synced_statement(mapping)
        low, high = date_bounds(row["start_date"], row["end_date"])
        self.params = {
            "tenant_id": row["tenant_id"],
            "from_ts": low,
            "to_ts": high,
            "limit": row["batch_size"],
        }
        self.sizer = BatchSizer(
            size=row["batch_size"],
            max_rows=max(row["batch_size"], settings.gestao.max_batch_size),
            max_bytes=settings.gestao.max_batch_bytes,
            fast_s=settings.gestao.fast_answer_s,
        )
        self.cursor = (row["cursor_criado"], row["cursor_id"]) if row["cursor_criado"] else START
        self.batches = row["batches"]
        self.failures = row["consecutive_failures"]  # in a row before this one; a checkpoint clears
        self.last_beat = time.monotonic()

    # -- the loop ----------------------------------------------------------------------
    def run(self, deadline: float) -> dict[str, Any] | None:
        """Batches until the end, a stop, or the deadline; the job row it left (None: lost)."""
        try:
            try:
                with db.transaction() as conn:
                    self._beat_in(conn)
            except ExportStop as stop:
                return self._end(Ending(ExportStatus.PAUSED, pause=stop.pause))
            posts = max(1, self.settings.gestao.in_flight)
            with log.LabelledPool(posts) as pool, log.LabelledPool(1) as reader:
                ending = self._pipeline(pool, reader, deadline)
            # Every POST has returned (the pools waited): now the job may change hands.
            return self._end(ending)
        except LeaseLost:
            _logger.warning("export lease lost; leaving it to whoever holds it now")
            return None

    def _pipeline(
        self, pool: ThreadPoolExecutor, reader: ThreadPoolExecutor, deadline: float
    ) -> Ending:
        in_flight: deque[tuple[Batch, Future[tuple[RemoteAnswer, float]]]] = deque()
        reading: Future[Batch] | None = reader.submit(self._read, self.cursor)
        ending: Ending | None = None
        limit = max(1, self.settings.gestao.in_flight)
        while True:
            while ending is None and reading is not None and len(in_flight) < limit:
                batch, reading = reading.result(), None
                if not batch.size:
                    ending = Ending(ExportStatus.COMPLETED)
                    break
                assert batch.last is not None
                in_flight.append((batch, pool.submit(self._post, batch.body)))
                # Every run sends at least one batch, so however short the budget (or
                # slow the start), continuations always move the cursor forward.
                if time.monotonic() >= deadline:
                    ending = Ending(ExportStatus.PENDING)
                    break
                reading = reader.submit(self._read, batch.last)  # while the POSTs are out
            if not in_flight:
                assert ending is not None
                return ending
            batch, future = in_flight.popleft()
            try:
                outcome = self._edited_there(batch, self._outcome(batch, *future.result()))
            except RemoteUnavailable as exc:
                timed_out = exc.upstream_status is None  # no answer at all: maybe too big
                return Ending(
                    ExportStatus.PENDING,
                    failure=exc.message,
                    timed_out=timed_out,
                    rows=batch.size,
                    code=exc.error_code,
                    retry_after_s=exc.retry_after_s,
                )
            except ExportStop as stop:
                ending = Ending(ExportStatus.PAUSED, stop.pause, schema_stale=stop.schema_stale)
                if isinstance(stop, RemoteRefused):
                    ending.code, ending.said = stop.code, stop.said
                return ending
            asked = self._checkpoint(batch, outcome)
            if asked is not None and ending is None:
                ending = Ending(ExportStatus.PAUSED, pause=asked)  # the rest drains

    def _read(self, cursor: tuple[Any, int]) -> Batch:
        """The page after `cursor` (read-only: the checkpoints keep the lease)."""
        self.params["limit"] = self.sizer.size
        with db.transaction() as conn:
            return next_batch(conn, self.statement, self.params, cursor)

    def _beat_in(self, conn: db.Conn) -> None:
        asked = _asked(self.lease.heartbeat(conn))
        if asked is not None:
            raise ExportStop(asked)
        self.last_beat = time.monotonic()

    def _beat_if_due(self) -> None:
        """During a long split, keep the lease alive and notice a pause."""
        if time.monotonic() - self.last_beat > self.settings.gestao.stale_after_s / 4:
            with db.transaction() as conn:
                self._beat_in(conn)

    # -- sending -------------------------------------------------------------------------
    def _post(self, body: bytes) -> tuple[RemoteAnswer, float]:
        """The remote's answer to one upsert, and how long it took."""
        start = time.monotonic()
        answer = self.client.upsert(body, self.columns, self.on_conflict)
        return answer, time.monotonic() - start

    def _outcome(self, batch: Batch, answer: RemoteAnswer, seconds: float) -> BatchResult:
        """A whole batch's answer; a data refusal (or a batch too big) is split in halves."""
        if answer.reply is Reply.OK:
            self.sizer.answered(batch.size, len(batch.body), seconds)
            if answer.wrote_all(batch.size):
                return BatchResult(exported=batch.size)
            return self._discarded(answer, json.loads(batch.body))
        if answer.too_big:
            self.sizer.too_big(batch.size, len(batch.body))
        return self._refused(answer, json.loads(batch.body))

    def _edited_there(self, batch: Batch, outcome: BatchResult) -> BatchResult:
        """A remote edit of a lead whose batch was out reached here by the reverse sync,
        and the upsert then wrote the copy read before over it there (sent as ours, so no
        webhook tells either side): the current copies of such leads are sent again."""
        if batch.read_at is None:
            return outcome
        tenant_id, since = self.params["tenant_id"], batch.read_at - _SYNC_SLACK
        with db.transaction() as conn:
            if not synced_lately(conn, tenant_id, since):  # nearly always: nothing more
                return outcome
            refused = {e["lead_id"] for e in outcome.errors}
            sent = (int(r[self.on_conflict]) for r in json.loads(batch.body))
            ours = [i for i in sent if i not in refused]
            again = synced_since(conn, self.synced, tenant_id, ours, since) if ours else []
        if not again:
            return outcome
        result, _ = self._try(again)
        return BatchResult(
            exported=outcome.exported - len(result.errors), errors=outcome.errors + result.errors
        )

    def _try(self, rows: list[dict[str, Any]]) -> tuple[BatchResult, int | None]:
        """A half's result, and its body's bytes when the remote refused it for its size."""
        self._beat_if_due()
        body = _dumps(rows)
        answer, _ = self._post(body)
        if answer.reply is Reply.OK:
            if answer.wrote_all(len(rows)):
                return BatchResult(exported=len(rows)), None
            return self._discarded(answer, rows), None
        return self._refused(answer, rows), len(body) if answer.too_big else None

    def _discarded(self, answer: RemoteAnswer, rows: list[dict[str, Any]]) -> BatchResult:
        """The remote counted fewer rows than were sent: a trigger or rule discarded some
        without a word (a BEFORE trigger returning NULL: a new lead dropped, or an update
        vetoed by a guard that refuses to overwrite), or left them as they were (an update
        of an unchanged row that `suppress_redundant_updates_trigger` skips, as on every
        export again). The count cannot tell which, so the remote is asked for its copies
        of the leads sent (only now: a full count asks nothing more): a lead it holds as
        sent is exported, one it lacks is an error. One it holds in another copy was vetoed,
        or written and changed there (a trigger stamping its own updated_at): those alone
        are sent again, asking which rows it wrote; the rest were vetoed."""
        ids = [int(r[self.on_conflict]) for r in rows]
        held = self.client.held(self.on_conflict, ids, self.columns)
        gone = f"{NAME} did not write the lead: a trigger or rule there discarded it."
        errors = [
            self._error(lead_id, row, answer, message=gone)
            for row, lead_id in zip(rows, ids, strict=True)
            if lead_id not in held
        ]
        others = [
            row
            for row, lead_id in zip(rows, ids, strict=True)
            if lead_id in held and not _same_copy(row, held[lead_id])
        ]
        if others:
            errors += self._vetoed(others).errors
        return BatchResult(exported=len(rows) - len(errors), errors=errors)

    def _vetoed(self, rows: list[dict[str, Any]]) -> BatchResult:
        """Leads the remote holds in another copy than sent, sent again: those it does not
        write now (a guard refusing to overwrite them) are errors."""
        self._beat_if_due()
        answer = self.client.upsert(_dumps(rows), self.columns, self.on_conflict, written=True)
        if answer.reply is not Reply.OK:
            return self._refused(answer, rows)
        body = answer.body if isinstance(answer.body, list) else []
        written = {int(r[self.on_conflict]) for r in body if isinstance(r, dict)}
        message = (
            f"{NAME} refused the update and kept its own copy of the lead: a trigger or "
            "rule there vetoed it."
        )
        errors = [
            self._error(lead_id, row, answer, message=message)
            for row in rows
            if (lead_id := int(row[self.on_conflict])) not in written
        ]
        return BatchResult(exported=len(rows) - len(errors), errors=errors)

    def _refused(self, answer: RemoteAnswer, rows: list[dict[str, Any]]) -> BatchResult:
        """Refused rows: one is a bad row; several are split in halves and tried again."""
        if answer.reply is not Reply.DATA:
            raise RemoteRefused(self._stop_pause(answer), answer)
        if len(rows) == 1 and answer.timed_out:  # not this lead: the remote is slow for all
            said = answer.safe_message(self.client.secrets)
            raise RemoteUnavailable(
                f"{NAME} timed out even on a single lead ({said}).", upstream_status=answer.status
            )
        if len(rows) == 1:
            return BatchResult(
                errors=[self._error(int(rows[0][self.on_conflict]), rows[0], answer)]
            )
        return self._halves(rows)

    def _halves(self, rows: list[dict[str, Any]]) -> BatchResult:
        mid = len(rows) // 2
        first, first_big = self._try(rows[:mid])
        second, second_big = self._try(rows[mid:])
        # Both halves refused for their size (not one big lead in one of them): the next
        # batches halve from theirs, unless a deeper split already shrank them below it.
        if first_big is not None and second_big is not None and self.sizer.size >= mid:
            self.sizer.too_big(mid, min(first_big, second_big))
        return BatchResult(first.exported + second.exported, first.errors + second.errors)

    def _error(
        self, lead_id: int, doc: Any, answer: RemoteAnswer, *, message: str | None = None
    ) -> dict[str, Any]:
        """A lead set aside: what was sent, and the remote's answer (`message` when the
        answer itself says nothing of the lead, as a 2xx that wrote fewer rows)."""
        secrets = self.client.secrets
        return {
            "lead_id": lead_id,
            "error_message": message or answer.safe_message(secrets),
            "response_status": answer.status,
            "response_body": answer.safe_body(secrets),
            "fields_sent": doc,
        }

    def _stop_pause(self, answer: RemoteAnswer) -> Pause:
        message = answer.safe_message(self.client.secrets)
        if answer.reply is Reply.SCHEMA:
            return Pause(
                PauseCode.SCHEMA,
                f"{NAME} schema does not fit ({message}). Validate the schema, apply the "
                "suggested SQL, reload the schema cache, then resume.",
            )
        if answer.reply is Reply.AUTH:
            said = f"HTTP {answer.status}: {message}"
            return Pause(PauseCode.KEY, f"{NAME} refused the key ({said}). Fix it, then resume.")
        return Pause(
            PauseCode.REFUSED, f"{NAME} refused the batch (HTTP {answer.status}: {message})."
        )

    # -- state changes ---------------------------------------------------------------------
    def _checkpoint(self, batch: Batch, outcome: BatchResult) -> Pause | None:
        """Account for the batch; why to stop, when an admin asked for it meanwhile."""
        assert batch.last is not None
        with db.transaction() as conn:
            row = exports.checkpoint(
                conn,
                self.lease,
                exported=outcome.exported,
                cursor=batch.last,
                errors=outcome.errors,
            )
        self.cursor = batch.last
        self.batches += 1
        self.failures = 0
        self.last_beat = time.monotonic()
        return _asked(row)

    def _end(self, ending: Ending) -> dict[str, Any] | None:
        if ending.failure is not None:
            if ending.timed_out:
                self.sizer.too_big(ending.rows or self.sizer.size)
            code = ending.code or "upstream_error"
            return self._failed_batch(ending.failure, code, retry_after_s=ending.retry_after_s)
        if ending.schema_stale:  # validation must not trust its cached copy any more
            with db.transaction() as conn:
                drop_cache(conn, self.row["tenant_id"])
        row = self._release(ending.status, pause=ending.pause)
        if ending.code is not None:  # it stopped itself: a person must act, as on a failure
            reason = f"{NAME} refused the export ({ending.said})"
            fields = log.fields(status=str(ending.status), code=ending.code, reason=reason)
            _logger.error("export stopped: the remote refused it", extra=fields)
        if row["status"] == ExportStatus.PENDING:  # out of budget, or reset: a new run goes on
            event = ("continue", self.row["attempts"], self.batches)
            wake(KIND, self.job_id, tenant_id=self.row["tenant_id"], event=event)
        return row

    def _release(self, status: ExportStatus, **kwargs: Any) -> dict[str, Any]:
        with db.transaction() as conn:
            row = exports.release(conn, self.lease, status, batch_size=self.sizer.size, **kwargs)
        _logger.info("export released", extra=log.fields(status=str(status)))
        return row

    def failed_batch(self, message: str, code: str) -> dict[str, Any] | None:
        """A batch (or the run) failed: back off and retry, or pause after several."""
        try:
            return self._failed_batch(message, code)
        except LeaseLost:
            return None

    def _failed_batch(
        self, message: str, code: str, *, retry_after_s: float | None = None
    ) -> dict[str, Any]:
        failures = self.failures + 1
        give_up = Pause(PauseCode.FAILING, f"{failures} batches in a row failed; last: {message}")
        with db.transaction() as conn:
            row = exports.after_failure(
                conn, self.lease, failures, message, give_up,
                batch_size=self.sizer.size, retry_after_s=retry_after_s,
            )  # fmt: skip
        if row["status"] == ExportStatus.PENDING:  # not paused or reset by an admin meanwhile
            delay = float(row["delay_s"] or 0.0)
            event = ("retry", self.row["attempts"])
            wake(KIND, self.job_id, tenant_id=self.row["tenant_id"], event=event, delay_s=delay)
            fields = log.fields(
                code=code, reason=scrub_text(message), failures=failures, delay_s=delay
            )
            _logger.warning("export batch failed, retry scheduled", extra=fields)
        else:
            reason = scrub_text(row["pause_reason"] or "")
            fields = log.fields(status=row["status"], code=code, reason=reason)
            _logger.error("export stopped after failing batches", extra=fields)
        return row


# The code a refusal that pauses the export is logged with, by how the remote answered.
_REFUSAL_CODES = {
    Reply.SCHEMA: "remote_schema_mismatch",
    Reply.AUTH: "remote_key_refused",
    Reply.OTHER: "remote_refused",
}


def _asked(row: Row) -> Pause | None:
    """Why an admin wants the run to stop (a reset is carried out when the job is
    released, whatever the pause says), or None."""
    if row["reset_requested"]:
        return Pause(PauseCode.ADMIN, "reset by an admin")
    if row["pause_requested"]:
        return ADMIN_PAUSE
    return None


def _same_copy(sent: dict[str, Any], held: dict[str, Any]) -> bool:
    """Whether the remote holds a lead as it was sent: every column sent has the same value
    there (numbers by value, 12.5 = 12.50; timestamps by instant, whatever the offset)."""
    return all(_same_value(value, held.get(column)) for column, value in sent.items())


def _same_value(sent: Any, held: Any) -> bool:
    if sent == held:
        return True
    if not isinstance(sent, str) or not isinstance(held, str):
        return False
    try:
        ours, theirs = datetime.fromisoformat(sent), datetime.fromisoformat(held)
    except ValueError:
        return False
    return ours.replace(tzinfo=ours.tzinfo or UTC) == theirs.replace(tzinfo=theirs.tzinfo or UTC)


def _dumps(rows: list[Any]) -> bytes:
    return json.dumps(rows, ensure_ascii=False).encode()


def _fail(row: Row, message: str, code: str) -> None:
    try:
        with db.transaction() as conn:
            exports.release(conn, Lease(exports.TABLE, row), ExportStatus.FAILED, error=message)
    except LeaseLost:
        return
    _logger.error("export failed", extra=log.fields(code=code, reason=scrub_text(message)))


def run_claimed(row: Row, deadline: float) -> dict[str, Any] | None:
    """Export one claimed job until done, paused, out of budget or out of luck."""
    settings = get_settings()
    with log.labels(job_id=row["id"], tenant_id=row["tenant_id"]):
        try:
            with db.transaction() as conn:
                target = target_for(conn, get_tenant(conn, tenant_id=row["tenant_id"]))
            runner = BatchRunner(row, RemoteClient(target, settings), settings)
        except SyncqError as exc:
            _fail(row, scrub_text(exc.message), exc.error_code)
            return None
        try:
            return runner.run(deadline)
        except Exception:
            _logger.exception("export runner crashed")
            return runner.failed_batch("Internal error while exporting.", "internal_error")


def run_job(job_id: UUID, tenant_id: UUID, *, budget_s: float | None = None) -> dict[str, Any]:
    """The `run` action: claim the tenant's job and export until done, paused or out of
    budget. Another tenant's job is a 404; one not due (or taken) is left as it is."""
    settings = get_settings()
    budget = settings.gestao.budget_s if budget_s is None else budget_s
    deadline = time.monotonic() + budget
    with db.transaction() as conn:
        exports.get(conn, tenant_id, job_id)
        claimed = engine.claim(conn, exports.TABLE, job_id=job_id)
    if claimed:
        run_claimed(claimed[0], deadline)
    return _current(tenant_id, job_id)


def _current(tenant_id: UUID, job_id: UUID) -> dict[str, Any]:
    with db.transaction() as conn:
        return ExportJob.from_row(exports.get(conn, tenant_id, job_id)).model_dump(mode="json")


@dataclass(frozen=True)
class GestaoExport:
    """Export jobs (`gestao_scouter_export_jobs`) as a kind of the engine: each runs in its
    own request (a budgeted run that wakes its continuation); the keyset cursor is its
    checkpoint, and pause/reset are requests like a cancel."""

    name: str = "gestao_export"
    table: JobTable = exports.TABLE
    function: str = FUNCTION
    drains_in_sweep: bool = False

    def stale_after_s(self) -> float:
        return get_settings().gestao.stale_after_s

    def wake_body(self, job_id: UUID | None, tenant_id: UUID | None) -> dict[str, Any]:
        if job_id is None or tenant_id is None:
            raise ValueError("an export wake-up names its job and tenant")
        return {"tenant_id": str(tenant_id), "action": "run", "job_id": str(job_id)}

    def run(self, row: Row, deadline: float) -> dict[str, Any]:
        run_claimed(row, deadline)
        return {"job_id": str(row["id"])}

    def before_rescue(self, conn: Conn, rows: list[Row]) -> None:
        """Nothing besides the rows themselves: their rescue changes no other row first."""

    def rescue(self, conn: Conn, row: Row) -> list[Row]:
        """A silent runner counts as a failed batch (its batch is redone: upserts are
        idempotent), so a batch that kills its runner every time ends paused."""
        failures = row["consecutive_failures"] + 1
        give_up = Pause(
            PauseCode.STALLED,
            f"The runner stopped without a word {failures} times in a row (crash, timeout "
            "or out of memory). Resume to try again.",
        )
        error = "The runner stopped responding; retrying."
        return [exports.after_failure(conn, Lease(exports.TABLE, row), failures, error, give_up)]


KIND = GestaoExport()
