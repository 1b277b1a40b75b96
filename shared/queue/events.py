"""Server-sent events of a tenant's job rows as they change (LISTEN/NOTIFY).

The trigger on integration_jobs announces every change with the job's id and tenant. The
process listens once (`shared.queue.listener`) and fans each notification out to the open
streams; a stream keeps only its tenant's and re-reads each row as the caller (under RLS
for users), so a notification can never leak another tenant's row. A stream subscribes,
then sends a snapshot of the live jobs, pings to keep proxies from closing it, and ends
after `max_seconds` (clients reconnect, as EventSource does). Event ids are
`<job id>:<updated_at>`; on reconnect EventSource sends the last one back (Last-Event-ID)
and the snapshot then also carries every job that changed since, so nothing that happened
in between is missed. When its inbox says notifications may have been lost (the listener
reconnected, or the stream fell behind), the stream re-reads everything changed since its
last read. Streams are capped per user and per tenant (`shared.queue.caps`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import flask

from shared import db, log
from shared.auth import Principal
from shared.queue import store
from shared.queue.caps import Slot, StreamCaps
from shared.queue.listener import Listener, Subscription, get_listener
from shared.queue.models import Job
from shared.queue.schemas import EventsQuery
from shared.settings import get_settings
from shared.sqlfiles import query
from shared.tenancy import Role, reading_as, require_role

CHANNEL = "integration_jobs"
SNAPSHOT_LIMIT = 500
# updated_at is mostly its transaction's start (an insert's and a cancel's own statement's
# time), and transactions commit out of that order: a change committed during the gap may
# carry a time a little before the last event seen. Resending
# a few rows the client already has is harmless; missing one is not.
RESUME_MARGIN = timedelta(seconds=60)
EARLIEST = datetime.min.replace(tzinfo=UTC)
STREAM_CAPS = StreamCaps()  # this process's open streams, by user and by tenant
_logger = log.get_logger("queue.events")


def job_events(principal: Principal, req: EventsQuery) -> flask.Response:
    """Check membership and the caps, subscribe, then stream."""
    with db.transaction() as conn:
        require_role(conn, principal, req.tenant_id, Role.MEMBER)
    settings = get_settings()
    limit = min(req.max_seconds or settings.edge.sse_max_seconds, settings.edge.sse_max_seconds)
    since = last_event_time(flask.request.headers.get("Last-Event-ID"))
    stream = JobStream.open(principal, req.tenant_id)
    response = flask.Response(
        stream.events(limit, settings.edge.sse_ping_s, since),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    # The generator's own `finally` does not run if it never started: close here as well.
    response.call_on_close(stream.close)
    return response


def format_event(row: dict[str, Any]) -> str:
    """One SSE message carrying a job row."""
    job = Job.from_row(row).model_dump(mode="json")
    return f"id: {job['id']}:{job['updated_at']}\nevent: job\ndata: {json.dumps(job)}\n\n"


def last_event_time(header: str | None) -> datetime | None:
    """Replay changes after this: the last event's `updated_at` less a margin, or None.

    A header without a zoned time replays nothing; a time so early that the margin reaches
    past year 1 replays everything; one past the last representable instant, nothing.
    """
    _, sep, stamp = (header or "").partition(":")
    if not sep:
        return None
    try:
        seen = datetime.fromisoformat(stamp.strip())
    except ValueError:
        return None
    if seen.tzinfo is None:
        return None
    try:
        return seen.astimezone(UTC) - RESUME_MARGIN
    except OverflowError:  # within the margin (or the offset) of year 1 or of year 9999
        return EARLIEST if seen.year == 1 else None


def _own_ids(payloads: Iterable[str], tenant_id: UUID) -> list[UUID]:
    """Ids of this tenant's jobs in the notifications, each once, in order of arrival."""
    ids: list[UUID] = []
    for payload in payloads:
        data = json.loads(payload)
        if data.get("tenant_id") == str(tenant_id) and UUID(data["id"]) not in ids:
            ids.append(UUID(data["id"]))
    return ids


class JobStream:
    """One client's stream: its slot under the caps, its inbox, and what it has sent."""

    def __init__(
        self,
        principal: Principal,
        tenant_id: UUID,
        slot: Slot,
        listener: Listener,
        subscription: Subscription,
    ) -> None:
        self.principal, self.tenant_id = principal, tenant_id
        self._slot, self._listener, self._subscription = slot, listener, subscription
        self._sent: dict[UUID, bytes] = {}  # a digest of the last event sent for each job
        self._read_since: datetime | None = None  # a resync re-reads from here

    @classmethod
    def open(cls, principal: Principal, tenant_id: UUID) -> JobStream:
        """Take a slot (429 beyond a cap), then subscribe (503 if the database is away)."""
        settings = get_settings()
        caller = "service" if principal.user_id is None else str(principal.user_id)
        slot = STREAM_CAPS.acquire(
            caller,
            tenant_id,
            per_user=settings.edge.sse_max_streams_per_user,
            per_tenant=settings.edge.sse_max_streams_per_tenant,
        )
        try:
            listener = get_listener(CHANNEL)
            subscription = listener.subscribe(timeout_s=settings.db.db_connect_timeout_s)
        except BaseException:
            slot.release()
            raise
        return cls(principal, tenant_id, slot, listener, subscription)

    def close(self) -> None:
        """Leave the listener and give the slot back (idempotent)."""
        self._listener.unsubscribe(self._subscription)
        self._slot.release()

    def events(self, limit_s: float, ping_s: float, since: datetime | None) -> Iterator[str]:
        """The stream's text: a retry hint, the snapshot, then changes and pings."""
        try:
            yield "retry: 3000\n\n"
            yield from self._follow(limit_s, ping_s, since)
        except Exception:  # the answer has begun: end it cleanly, the client reconnects
            _logger.exception("event stream failed", extra=log.fields(tenant_id=self.tenant_id))
        finally:
            self.close()

    def _follow(self, limit_s: float, ping_s: float, since: datetime | None) -> Iterator[str]:
        yield from self._snapshot(since)
        deadline = time.monotonic() + limit_s
        ping_at = time.monotonic() + ping_s
        while (now := time.monotonic()) < deadline:
            batch = self._subscription.take(min(ping_at, deadline) - now)
            if batch.resync:
                sent = self._snapshot(self._read_since)
            else:
                sent = self._changes(batch.payloads)
            yield from sent
            if sent:
                ping_at = time.monotonic() + ping_s
            elif time.monotonic() >= ping_at:
                yield ": ping\n\n"
                ping_at = time.monotonic() + ping_s

    def _snapshot(self, since: datetime | None) -> list[str]:
        """Live jobs plus those changed after `since`, read as the caller."""
        params = {"tenant_id": self.tenant_id, "since": since, "limit": SNAPSHOT_LIMIT}
        with reading_as(self.principal) as conn:
            [clock] = conn.execute(query("events", "clock")).fetchall()
            rows = conn.execute(query("events", "snapshot"), params).fetchall()
        self._read_since = clock["now"] - RESUME_MARGIN
        return self._unsent(rows)

    def _changes(self, payloads: list[str]) -> list[str]:
        """The rows the notifications announce for this tenant, read as the caller."""
        ids = _own_ids(payloads, self.tenant_id)
        if not ids:
            return []
        with reading_as(self.principal) as conn:
            rows = [store.get_job(conn, job_id) for job_id in ids]
        return self._unsent([r for r in rows if r is not None and r["tenant_id"] == self.tenant_id])

    def _unsent(self, rows: Iterable[dict[str, Any]]) -> list[str]:
        """Events for the rows, less those the client already has exactly as they are."""
        events = []
        for row in rows:
            event = format_event(row)
            digest = hashlib.blake2b(event.encode(), digest_size=16).digest()
            if self._sent.get(row["id"]) != digest:
                self._sent[row["id"]] = digest
                events.append(event)
        return events
