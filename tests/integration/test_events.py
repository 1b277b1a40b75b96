"""integration-job-events: a tenant-scoped server-sent event stream from LISTEN/NOTIFY."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from werkzeug.test import EnvironBuilder

from shared.auth import Principal
from shared.dispatch import RecordingDispatcher
from shared.queue import events
from shared.queue.events import STREAM_CAPS
from shared.queue.listener import APPLICATION_NAME, Taken
from tests.conftest import Configure
from tests.e2e.conftest import wait_until
from tests.support import bearer, call, drain, function_client, rows, seed_tenant

pytestmark = pytest.mark.db


def parse(chunks: list[bytes]) -> list[dict[str, Any]]:
    events = []
    for block in b"".join(chunks).decode().split("\n\n"):
        data = [line[6:] for line in block.splitlines() if line.startswith("data: ")]
        if data:
            events.append(json.loads("\n".join(data)))
    return events


def test_stream_shows_own_tenant_changes_only(
    database_url: str, recorder: RecordingDispatcher
) -> None:
    a = seed_tenant(database_url, "acme")
    b = seed_tenant(database_url, "globex")
    pending = call("run-integration", {"tenant_id": str(a.id), "provider_slug": "acessorias"},
                   token=a.admin_token).get_json()["job_id"]  # fmt: skip
    response = function_client("integration-job-events").get(
        "/", query_string={"tenant_id": str(a.id), "max_seconds": "3"},
        headers=bearer(a.member_token), buffered=False,
    )  # fmt: skip
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    stream = iter(response.response)
    chunks = [next(stream), next(stream)]  # retry hint, then the snapshot of live jobs
    assert parse(chunks)[0]["id"] == pending
    call(
        "run-integration",
        {"tenant_id": str(b.id), "provider_slug": "acessorias"},
        token=b.admin_token,
    )
    call("cancel-integration-job", {"job_id": pending}, token=a.admin_token)
    drain(recorder)
    chunks += list(stream)  # until max_seconds
    response.close()
    events = parse(chunks)
    assert {e["tenant_id"] for e in events} == {str(a.id)}
    assert [e["status"] for e in events if e["id"] == pending][-1] == "canceled"
    assert all("lease_token" not in e for e in events)


def test_a_stream_asked_to_last_longer_than_the_servers_limit_ends_at_the_limit(
    database_url: str, configure: Configure
) -> None:
    """max_seconds may only shorten a stream: SSE_MAX_SECONDS bounds what one stream holds
    (a connection, a slot under the caps) whatever the client asks for."""
    configure(SSE_MAX_SECONDS="1", SSE_PING_S="60")
    a = seed_tenant(database_url, "acme")
    started = time.monotonic()
    response = function_client("integration-job-events").get(
        "/", query_string={"tenant_id": str(a.id), "max_seconds": "20"},
        headers=bearer(a.member_token), buffered=False,
    )  # fmt: skip
    assert response.status_code == 200
    chunks = list(response.response)  # until the stream ends
    response.close()
    assert chunks[0] == b"retry: 3000\n\n"
    assert time.monotonic() - started < 10


def _pump(stream: Iterable[bytes], chunks: queue.Queue[bytes | None]) -> None:
    for chunk in stream:
        chunks.put(chunk)
    chunks.put(None)  # the stream ended


def _next_event(chunks: queue.Queue[bytes | None], timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            chunk = chunks.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"no event within {timeout_s} s of the change")
        assert chunk is not None, "the stream ended before the event"
        assert not chunk.startswith(b":"), "a ping came before the event"
        if events := parse([chunk]):
            return events[0]


_RUN = (
    "UPDATE integration_jobs SET status = 'running', started_at = now(), attempts = 1 WHERE id = %s"
)
_SUCCEED = (
    "UPDATE integration_jobs SET status = 'success', progress = 100, finished_at = now()"
    " WHERE id = %s"
)


def test_each_change_arrives_before_the_ping(database_url: str, configure: Configure) -> None:
    """Every state goes out as it happens, not batched until the ping interval."""
    configure(SSE_PING_S="60")  # the old code only sent what it gathered every ping interval
    a = seed_tenant(database_url, "acme")
    response = function_client("integration-job-events").get(
        "/", query_string={"tenant_id": str(a.id), "max_seconds": "6"},
        headers=bearer(a.member_token), buffered=False,
    )  # fmt: skip
    chunks: queue.Queue[bytes | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(response.response, chunks), daemon=True)
    reader.start()
    try:
        assert chunks.get(timeout=5) == b"retry: 3000\n\n"  # no live jobs: no snapshot
        job_id = call("run-integration", {"tenant_id": str(a.id), "provider_slug": "acessorias"},
                      token=a.admin_token).get_json()["job_id"]  # fmt: skip
        assert _next_event(chunks, 3)["status"] == "pending"
        with psycopg.connect(database_url, autocommit=True) as conn:
            for sql, expected in [
                (_RUN, ("running", 0)),
                ("UPDATE integration_jobs SET progress = 50 WHERE id = %s", ("running", 50)),
                (_SUCCEED, ("success", 100)),
            ]:
                conn.execute(sql, [job_id])
                event = _next_event(chunks, 3)  # each well before the 60 s ping
                assert (event["id"], event["status"], event["progress"]) == (job_id, *expected)
        assert chunks.get(timeout=10) is None  # still ends at max_seconds, without a ping
    finally:
        reader.join(15)
        response.close()


def ids_and_events(chunks: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in b"".join(chunks).decode().split("\n\n"):
        lines = block.splitlines()
        ids = [line[4:] for line in lines if line.startswith("id: ")]
        data = [line[6:] for line in lines if line.startswith("data: ")]
        if ids and data:
            out.append((ids[0], json.loads("\n".join(data))))
    return out


def test_a_reconnect_gets_what_changed_while_it_was_away(
    database_url: str, recorder: RecordingDispatcher
) -> None:
    a = seed_tenant(database_url, "acme")
    job = call("run-integration", {"tenant_id": str(a.id), "provider_slug": "acessorias"},
               token=a.admin_token).get_json()["job_id"]  # fmt: skip
    client = function_client("integration-job-events")
    query = {"tenant_id": str(a.id), "max_seconds": "0.3"}

    def stream(last_event_id: str | None) -> list[tuple[str, dict[str, Any]]]:
        headers = bearer(a.member_token)
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        response = client.get("/", query_string=query, headers=headers)
        assert response.status_code == 200
        return ids_and_events([response.data])

    first = stream(None)
    assert [e["status"] for _, e in first] == ["pending"]
    last_id = first[-1][0]
    # While the client is away (between two connections) the job is canceled: it is no
    # longer live, so only the Last-Event-ID replay can tell the client.
    call("cancel-integration-job", {"job_id": job}, token=a.admin_token)
    drain(recorder)
    assert stream(None) == []
    resumed = stream(last_id)
    assert [(e["id"], e["status"]) for _, e in resumed] == [(job, "canceled")]
    assert stream("garbage-without-a-time") == []
    assert stream(f"{job}:not-a-time") == []


def test_a_replay_after_a_long_absence_brings_the_newest_changes_and_the_live_job(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Away while more jobs finished than a replay holds: the replay is the newest of them,
    and the live job (once the oldest were kept, so the live job, changed last, was left
    out)."""
    monkeypatch.setattr(events, "SNAPSHOT_LIMIT", 20)
    a = seed_tenant(database_url, "acme")
    client = function_client("integration-job-events")
    query = {"tenant_id": str(a.id), "max_seconds": "0.3"}
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts,"
            " finished_at, updated_at) SELECT %s, 'acessorias', 'success', 1,"
            " now() + g * interval '1 second', now() + g * interval '1 second'"
            " FROM generate_series(1, 50) AS g",
            [a.id],
        )
        [live] = conn.execute(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts,"
            " started_at, updated_at) VALUES (%s, 'onecode', 'running', 1, now(),"
            " now() + interval '100 seconds') RETURNING id",
            [a.id],
        ).fetchone() or [None]
        newest = conn.execute(
            "SELECT id FROM integration_jobs WHERE tenant_id = %s AND finished_at IS NOT NULL"
            " ORDER BY finished_at DESC LIMIT 20", [a.id]).fetchall()  # fmt: skip
    headers = bearer(a.member_token)
    seen = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    headers["Last-Event-ID"] = f"{uuid.uuid4()}:{seen}"  # the last event, a minute ago
    replay = ids_and_events([client.get("/", query_string=query, headers=headers).data])
    sent = [e["id"] for _, e in replay]
    assert set(sent) == {str(live)} | {str(r[0]) for r in newest}
    assert sent[-1] == str(live)  # oldest change first


def _job_rows_read(plan: dict[str, Any]) -> int:
    """Rows the plan's scans of integration_jobs produced or filtered away."""
    read = 0
    if plan.get("Relation Name") == "integration_jobs":
        loops = plan.get("Actual Loops", 1)
        read += int((plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops)
    return read + sum(_job_rows_read(p) for p in plan.get("Plans", []))


def test_a_replay_reads_what_changed_not_the_tenants_whole_history(database_url: str) -> None:
    """Every reconnect with Last-Event-ID replays the last minutes; it read every job the
    tenant ever ran to find them (0.35 s at 50k jobs, growing with the history)."""
    from shared.sqlfiles import query

    a = seed_tenant(database_url, "acme")
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts,"
            " started_at, finished_at, created_at, updated_at)"
            " SELECT %s, 'acessorias', 'success', 1, t, t, t, t"
            " FROM generate_series(1, 20000) AS g,"
            " LATERAL (SELECT now() - make_interval(mins => g) AS t) AS x",
            [a.id],
        )
        conn.execute("ANALYZE integration_jobs")
        since = datetime.now(UTC) - timedelta(minutes=5)
        [plan] = conn.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + query("events", "snapshot"),
            {"tenant_id": a.id, "since": since, "limit": 500},
        ).fetchone() or [None]
    assert _job_rows_read(plan[0]["Plan"]) < 100  # 4 finished since, read through the index


def test_a_stream_closed_before_its_first_byte_gives_back_its_slot(
    database_url: str, configure: Configure
) -> None:
    """A WSGI server may close the answer without reading it (PEP 3333 only promises the
    close): the stream's generator never runs, yet its slot comes back."""
    configure(SSE_MAX_STREAMS_PER_USER="1")
    a = seed_tenant(database_url, "acme")
    client = function_client("integration-job-events")
    query = {"tenant_id": str(a.id), "max_seconds": "5"}
    environ = EnvironBuilder(path="/", query_string=query, headers=bearer(a.member_token))
    statuses: list[str] = []
    answer = client.application(environ.get_environ(), lambda s, h, e=None: statuses.append(s))
    assert statuses == ["200 OK"] and STREAM_CAPS.open_streams() == 1
    refused = client.get("/", query_string=query, headers=bearer(a.member_token))
    assert refused.status_code == 429
    assert refused.get_json()["error"]["details"] == {"scope": "user", "limit": 1}
    assert refused.headers["Retry-After"] == "5"  # the dashboard comes back no sooner
    answer.close()  # type: ignore[attr-defined]
    assert STREAM_CAPS.open_streams() == 0
    again = client.get("/", query_string=query, headers=bearer(a.member_token), buffered=False)
    assert again.status_code == 200
    again.close()


def _listeners(database_url: str) -> int:
    return int(
        rows(
            database_url,
            "SELECT count(*) AS n FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            APPLICATION_NAME,
        )[0]["n"]
    )


def test_a_stream_sees_what_changed_while_the_listener_reconnected(
    database_url: str, configure: Configure
) -> None:
    """The notification of a change made while the shared connection was down is gone;
    the stream re-reads what changed once the listener is back."""
    configure(SSE_LISTENER_RETRY_BASE_S="4", SSE_LISTENER_RETRY_CAP_S="4")  # back in 2-4 s
    a = seed_tenant(database_url, "acme")
    job_id = call("run-integration", {"tenant_id": str(a.id), "provider_slug": "acessorias"},
                  token=a.admin_token).get_json()["job_id"]  # fmt: skip
    response = function_client("integration-job-events").get(
        "/", query_string={"tenant_id": str(a.id), "max_seconds": "8"},
        headers=bearer(a.member_token), buffered=False,
    )  # fmt: skip
    chunks: queue.Queue[bytes | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(response.response, chunks), daemon=True)
    reader.start()
    try:
        assert chunks.get(timeout=5) == b"retry: 3000\n\n"
        assert _next_event(chunks, 3)["status"] == "pending"
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s AND datname = current_database()",
                [APPLICATION_NAME],
            )
            wait_until(lambda: _listeners(database_url) == 0, 5, "the listener to drop")
            with conn.transaction():
                conn.execute(_SUCCEED, [job_id])
                assert _listeners(database_url) == 0  # nobody hears this notification
        event = _next_event(chunks, 10)
        assert (event["id"], event["status"]) == (job_id, "success")
        assert _listeners(database_url) == 1
    finally:
        reader.join(15)  # until max_seconds (the reader iterates: it must end before close)
        response.close()


class _ScriptedInbox:
    """A stream's inbox whose takes run the test's steps (each returns what is taken), then
    hand over nothing: the listener's timing out of the test."""

    def __init__(self, *steps: Callable[[], Taken]) -> None:
        self._steps = deque(steps)

    def take(self, timeout_s: float) -> Taken:
        if self._steps:
            return self._steps.popleft()()
        time.sleep(min(max(timeout_s, 0.0), 0.05))
        return Taken()


class _NoListener:
    def unsubscribe(self, subscription: object) -> None:
        pass


def _scripted_stream(tenant: Any, *steps: Callable[[], Taken]) -> list[dict[str, Any]]:
    """The events a member's stream sends (no Last-Event-ID) when its inbox takes `steps`."""
    slot = STREAM_CAPS.acquire("scripted", tenant.id, per_user=5, per_tenant=5)
    stream = events.JobStream(
        Principal("user", tenant.member), tenant.id, slot,
        _NoListener(), _ScriptedInbox(*steps),  # type: ignore[arg-type]
    )  # fmt: skip
    return [e for _, e in ids_and_events([c.encode() for c in stream.events(1.0, 60.0, None)])]


def _running_jobs(database_url: str, tenant_id: uuid.UUID, *providers: str) -> list[str]:
    """A running job of the tenant's per provider: their ids."""
    with psycopg.connect(database_url) as conn:
        return [
            str(row[0])
            for provider in providers
            for row in conn.execute(
                "INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts,"
                " started_at) VALUES (%s, %s, 'running', 1, now()) RETURNING id",
                [tenant_id, provider],
            )
        ]


def test_a_resync_rereads_a_margin_before_its_last_read(database_url: str) -> None:
    """A job finished by a transaction that began before the stream's last read but
    committed after it carries that earlier start as its finished_at; its notification was
    lost (the listener reconnected). The resync re-reads from the last read less a margin,
    or that job would stay 'running' on the client until it reconnects."""
    a = seed_tenant(database_url, "acme")
    [job_id] = _running_jobs(database_url, a.id, "acessorias")
    with psycopg.connect(database_url) as late:  # begun now, committed after the snapshot
        late.execute(_SUCCEED, [job_id])

        def commit_then_resync() -> Taken:
            late.commit()
            return Taken([], resync=True)

        sent = _scripted_stream(a, commit_then_resync)
    assert [(e["id"], e["status"]) for e in sent] == [(job_id, "running"), (job_id, "success")]


def test_a_resync_sends_only_what_changed(database_url: str) -> None:
    """A resync re-reads the live jobs and those finished within the margin: the client
    already has most of them as they are, and gets none of those again."""
    a = seed_tenant(database_url, "acme")
    live, done = _running_jobs(database_url, a.id, "acessorias", "onecode")

    def finish_then_resync() -> Taken:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(_SUCCEED, [done])
        return Taken([], resync=True)

    def resync() -> Taken:
        return Taken([], resync=True)

    sent = _scripted_stream(a, resync, finish_then_resync, resync, resync)
    assert sorted((e["id"], e["status"]) for e in sent[:2]) == sorted(
        [(live, "running"), (done, "running")]
    )
    assert [(e["id"], e["status"]) for e in sent[2:]] == [(done, "success")]
