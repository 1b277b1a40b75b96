"""Server-sent events of a tenant's job rows as they change (LISTEN/NOTIFY).

The trigger on integration_jobs announces every change with the job's id and tenant; the
stream keeps only its tenant's and re-reads each row as the caller (under RLS for users),
so a notification can never leak another tenant's row. The stream opens with a snapshot
of the live jobs, pings to keep proxies from closing it, and ends after `max_seconds`
(clients reconnect, as EventSource does). Event ids are `<job id>:<updated_at>`; on
reconnect EventSource sends the last one back (Last-Event-ID) and the snapshot then also
carries every job that changed since, so nothing that happened in between is missed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import flask
from psycopg import Notify

from shared import db, log
from shared.auth import Principal
from shared.queue import store
from shared.queue.models import Job
from shared.queue.schemas import EventsQuery
from shared.settings import get_settings
from shared.sqlfiles import query
from shared.tenancy import Role, require_role

CHANNEL = "integration_jobs"
SNAPSHOT_LIMIT = 500
# updated_at is its transaction's start, and transactions commit out of that order: a change
# committed during the gap may carry a time a little before the last event seen. Resending
# a few rows the client already has is harmless; missing one is not.
RESUME_MARGIN = timedelta(seconds=60)
_logger = log.get_logger("queue.events")


def job_events(principal: Principal, req: EventsQuery) -> flask.Response:
    """Check membership, then stream."""
    with db.transaction() as conn:
        require_role(conn, principal, req.tenant_id, Role.MEMBER)
    settings = get_settings()
    limit = min(req.max_seconds or settings.edge.sse_max_seconds, settings.edge.sse_max_seconds)
    since = last_event_time(flask.request.headers.get("Last-Event-ID"))
    return flask.Response(
        _stream(principal, req.tenant_id, limit, settings.edge.sse_ping_s, since),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def format_event(row: dict[str, Any]) -> str:
    """One SSE message carrying a job row."""
    job = Job.from_row(row).model_dump(mode="json")
    return f"id: {job['id']}:{job['updated_at']}\nevent: job\ndata: {json.dumps(job)}\n\n"


def last_event_time(header: str | None) -> datetime | None:
    """Replay changes after this: the last event's `updated_at` (less a margin), or None."""
    _, sep, stamp = (header or "").partition(":")
    if not sep:
        return None
    try:
        seen = datetime.fromisoformat(stamp.strip())
    except ValueError:
        return None
    return seen - RESUME_MARGIN if seen.tzinfo is not None else None


def _read(
    conn: db.Conn,
    principal: Principal,
    tenant_id: UUID,
    ids: list[UUID] | None,
    since: datetime | None = None,
) -> list[Any]:
    """The rows of `ids` (None: the snapshot), read as the caller."""
    with conn.transaction():
        if principal.user_id is not None:
            db.act_as_user(conn, principal.user_id)
        if ids is None:
            params = {"tenant_id": tenant_id, "since": since, "limit": SNAPSHOT_LIMIT}
            return conn.execute(query("events", "snapshot"), params).fetchall()
        rows = [store.get_job(conn, job_id) for job_id in ids]
        return [r for r in rows if r is not None and r["tenant_id"] == tenant_id]


def _own_ids(notes: Iterable[Notify], tenant_id: UUID) -> list[UUID]:
    """Ids of this tenant's jobs in the notifications, each once, in order of arrival."""
    ids: list[UUID] = []
    for note in notes:
        data = json.loads(note.payload)
        if data.get("tenant_id") == str(tenant_id) and UUID(data["id"]) not in ids:
            ids.append(UUID(data["id"]))
    return ids


def _stream(
    principal: Principal, tenant_id: UUID, limit_s: float, ping_s: float, since: datetime | None
) -> Iterator[str]:
    conn = db.dedicated_connection(autocommit=True)
    try:
        conn.execute("LISTEN integration_jobs")  # before the snapshot: no change falls between
        yield "retry: 3000\n\n"
        for row in _read(conn, principal, tenant_id, None, since):
            yield format_event(row)
        deadline = time.monotonic() + limit_s
        ping_at = time.monotonic() + ping_s
        while (now := time.monotonic()) < deadline:
            # stop_after=1: wake on the first notification (and whatever came in the same
            # packet), so each change goes out as it happens rather than at the next ping.
            notes = list(conn.notifies(timeout=min(ping_at, deadline) - now, stop_after=1))
            ids = _own_ids(notes, tenant_id)
            for row in _read(conn, principal, tenant_id, ids) if ids else []:
                yield format_event(row)
                ping_at = time.monotonic() + ping_s
            if time.monotonic() >= ping_at:
                yield ": ping\n\n"
                ping_at = time.monotonic() + ping_s
    finally:
        conn.close()
