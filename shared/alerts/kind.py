"""Alert delivery as a job kind of the engine: each outbox row is sent once per channel.

A claimed alert is checked against its tenant's settings (an event the tenant did not ask
for, or no channel at all, ends `suppressed`; `sent` when a channel it has since dropped
already delivered it, or some recipients of its e-mail took it), then sent on each channel
not yet delivered; each success is recorded under the lease before the next channel, so a crash
or a retry never sends twice where it already worked. A channel that fails does not keep
the alert from the others; the failed ones are retried with the engine's backoff while any
failure may pass, and the alert ends `failed` after ALERT_MAX_ATTEMPTS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from shared import db, log
from shared.alerts import channels
from shared.alerts.message import compose
from shared.db import Conn, Row
from shared.errors import LeaseLost, UpstreamError
from shared.jobs.lease import Lease
from shared.jobs.policy import Verdict, decide
from shared.jobs.table import JobTable
from shared.scrub import scrub_text
from shared.settings import get_settings
from shared.sqlfiles import query

TABLE = JobTable("alert_outbox", "alerts")
WORKER = "process-integration-job"  # the worker's drain (and the sweep) deliver alerts
_logger = log.get_logger("alerts")


def _q(name: str) -> Any:
    return query("alerts", name)


def deliver(row: Row) -> dict[str, Any]:
    """Send one claimed alert on its channels; its next state under the lease."""
    lease = Lease(TABLE, row)
    with log.labels(alert_id=row["id"], tenant_id=row["tenant_id"], event=row["event"]):
        try:
            return _deliver(row, lease)
        except LeaseLost:
            _logger.warning("alert lease lost; leaving it to whoever holds it now")
            return {"alert_id": str(row["id"]), "status": "lease_lost"}


def _deliver(row: Row, lease: Lease) -> dict[str, Any]:
    settings = get_settings()
    with db.transaction() as conn:
        prefs, sends = _settings_and_channels(conn, row)
        name_row = conn.execute(_q("tenant_name"), {"tenant_id": row["tenant_id"]}).fetchone()
    if not sends:  # one already delivered went out: sent, as the rescue says of it
        return _end(row, lease, "sent" if _reached(row) else "suppressed")
    alert = compose(row, name_row["name"] if name_row else str(row["tenant_id"]))
    alert_id, tenant_id = str(row["id"]), str(row["tenant_id"])
    failures: list[UpstreamError] = []
    for channel in sends:
        if channel in row["delivered"]:
            continue
        assert prefs is not None
        try:
            if channel == "email":
                to = [e for e in prefs["emails"] if e not in row["mailed"]]
                refused = channels.send_email(settings, alert_id, to, alert) if to else {}
                if refused:  # the others took it: mailed again to the refused ones alone
                    _record_delivery(lease, None, mailed=[e for e in to if e not in refused])
                    raise channels.refused_error(refused, len(to))
            else:
                channels.send_webhook(settings, tenant_id, prefs["webhook_url"], alert_id, alert)
        except UpstreamError as exc:
            failures.append(exc)  # the other channels still get the alert
            continue
        _record_delivery(lease, channel)
    if failures:
        return _failed(row, lease, failures)
    return _end(row, lease, "sent")


def _record_delivery(lease: Lease, channel: str | None, mailed: list[str] | None = None) -> None:
    """A channel that delivered (or the recipients an e-mail reached), recorded under the
    lease and not lost to a dropped connection (the rescue would send on it again);
    recording it twice changes nothing."""
    db.retried(lambda conn: lease.heartbeat(conn, channel=channel, mailed=mailed or []))


def _settings_and_channels(conn: Conn, row: Row) -> tuple[Row | None, list[str]]:
    """The tenant's alert settings now, and the channels this alert goes to under them."""
    prefs = conn.execute(_q("settings"), {"tenant_id": row["tenant_id"]}).fetchone()
    email_on = get_settings().alerts.alert_email_transport != "disabled"
    return prefs, _channels(prefs, row, email_on)


def _channels(prefs: Row | None, row: Row, email_on: bool) -> list[str]:
    """The channels this alert goes to under the tenant's settings (none: suppressed). An
    alert that paused the schedule (a first failure, when the limit is 1) reaches whoever
    asked for `schedule_paused` too."""
    if prefs is None:
        return []
    paused = row["schedule_paused"] and "schedule_paused" in prefs["events"]
    if row["event"] not in prefs["events"] and not paused:
        return []
    found = ["email"] if prefs["emails"] and email_on else []
    return found + (["webhook"] if prefs["webhook_url"] else [])


def _reached(row: Row) -> bool:
    """Whether the alert went out somewhere: a channel delivered, or an e-mail some of its
    recipients took (the others put it off)."""
    return bool(row["delivered"] or row["mailed"])


def _end(row: Row, lease: Lease, status: str) -> dict[str, Any]:
    with db.transaction() as conn:
        lease.release(conn, status, final=True)
    _logger.info("alert ended", extra=log.fields(status=status))
    return {"alert_id": str(row["id"]), "status": status}


def _failed(row: Row, lease: Lease, failures: list[UpstreamError]) -> dict[str, Any]:
    """Some channels failed: retried (only those) while any failure may pass, else failed."""
    message = " ".join(exc.message for exc in failures)
    retryable = any(exc.retryable for exc in failures)
    with db.transaction() as conn:
        released = _after_failure(conn, row, lease, message, retryable=retryable)
    fields = log.fields(
        code=failures[0].error_code, reason=scrub_text(message), status=released["status"]
    )
    if released["status"] == "failed":
        _logger.error("alert delivery failed", extra=fields)
    else:
        _logger.warning("alert delivery failed, retry scheduled", extra=fields)
    return {"alert_id": str(row["id"]), "status": released["status"]}


def _after_failure(conn: Conn, row: Row, lease: Lease, error: str, *, retryable: bool) -> Row:
    settings = get_settings()
    decision = decide(
        attempts=row["attempts"],
        max_attempts=settings.alerts.alert_max_attempts,
        retryable=retryable,
        base_s=settings.alerts.alert_backoff_base_s,
        cap_s=settings.alerts.alert_backoff_cap_s,
    )
    if decision.verdict is Verdict.RETRY:
        return lease.release(conn, "pending", error=error, delay_s=decision.delay_s)
    return lease.release(conn, "failed", error=error, final=True)


@dataclass(frozen=True)
class AlertDelivery:
    """The alert outbox (`alert_outbox`) as a kind of the engine, drained by the worker."""

    name: str = "alert"
    table: JobTable = TABLE
    function: str = WORKER
    drains_in_sweep: bool = True

    def stale_after_s(self) -> float:
        return get_settings().alerts.alert_stale_after_s

    def wake_body(self, job_id: UUID | None, tenant_id: UUID | None) -> dict[str, Any]:
        return {}  # a sweep: it drains every kind

    def run(self, row: Row, deadline: float) -> dict[str, Any]:
        return deliver(row)

    def before_rescue(self, conn: Conn, rows: list[Row]) -> None:
        """Nothing besides the rows themselves: their rescue changes no other row first."""

    def rescue(self, conn: Conn, row: Row) -> list[Row]:
        """A sender that died mid-delivery: try again (channels already done are skipped).
        One that died after every channel was delivered (recorded under its lease) only
        failed to write the end: the alert was sent, whatever attempt it was. The channels
        are today's settings: one the tenant (or the transport) dropped since it was
        delivered leaves nothing to send, and the alert that went out is still sent."""
        lease = Lease(TABLE, row)
        _, sends = _settings_and_channels(conn, row)
        left = [c for c in sends if c not in row["delivered"]]
        if _reached(row) and not left:
            return [lease.release(conn, "sent", final=True)]
        return [_after_failure(conn, row, lease, "The sender stopped responding.", retryable=True)]


KIND = AlertDelivery()
