"""The job event stream is scoped to the tenant it was opened for, not to the caller: a
user who belongs to tenants A and B (so RLS lets them read both) streams A and sees
nothing of B, neither in the opening snapshot nor among the live changes."""

from __future__ import annotations

import queue
import threading
import uuid
from typing import Any

import psycopg
import pytest

from shared.dispatch import RecordingDispatcher
from tests.conftest import Configure
from tests.integration.test_events import _next_event, _pump, ids_and_events, parse
from tests.support import TenantFixture, bearer, call, function_client, seed_tenant

pytestmark = pytest.mark.db

FUNCTION = "integration-job-events"


def a_member_of_two_tenants(database_url: str) -> tuple[TenantFixture, TenantFixture]:
    """acme and globex; acme's member is a member of globex too."""
    acme, globex = seed_tenant(database_url, "acme"), seed_tenant(database_url, "globex")
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%s, %s, 'member')",
            [globex.id, acme.member],
        )
    return acme, globex


def run(tenant: TenantFixture) -> str:
    """A pending job of the tenant (through run-integration)."""
    response = call("run-integration", {"tenant_id": str(tenant.id), "provider_slug": "acessorias"},
                    token=tenant.admin_token)  # fmt: skip
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["job_id"]
    return job_id


def sql(database_url: str, statement: str, *params: Any) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(statement, params)


def test_the_snapshot_holds_the_streamed_tenants_jobs_only(
    database_url: str, recorder: RecordingDispatcher
) -> None:
    acme, globex = a_member_of_two_tenants(database_url)
    finished = run(globex)
    sql(database_url, "UPDATE integration_jobs SET status = 'success', finished_at = now(),"
        " updated_at = now() WHERE id = %s", finished)  # fmt: skip
    live_b = run(globex)  # globex's live job, older than acme's
    live_a = run(acme)
    recorder.take()
    client = function_client(FUNCTION)
    query = {"tenant_id": str(acme.id), "max_seconds": "0.3"}
    for last_event_id in (None, f"{live_a}:2000-01-01T00:00:00+00:00"):  # plain, and a replay
        headers = bearer(acme.member_token)
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        response = client.get("/", query_string=query, headers=headers)
        assert response.status_code == 200
        events = [event for _, event in ids_and_events([response.data])]
        assert [(e["id"], e["tenant_id"]) for e in events] == [(live_a, str(acme.id))], (
            last_event_id
        )
    assert {live_b, finished}.isdisjoint(e["id"] for e in events)


def test_live_changes_of_the_other_tenant_never_reach_the_stream(
    database_url: str, recorder: RecordingDispatcher, configure: Configure
) -> None:
    configure(SSE_PING_S="60")  # no ping between the changes and their events
    acme, globex = a_member_of_two_tenants(database_url)
    job_a = run(acme)
    recorder.take()
    response = function_client(FUNCTION).get(
        "/", query_string={"tenant_id": str(acme.id), "max_seconds": "5"},
        headers=bearer(acme.member_token), buffered=False,
    )  # fmt: skip
    assert response.status_code == 200
    chunks: queue.Queue[bytes | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(response.response, chunks), daemon=True)
    reader.start()
    try:
        assert chunks.get(timeout=5) == b"retry: 3000\n\n"
        assert _next_event(chunks, 5)["id"] == job_a  # the snapshot
        # While the stream is open, globex's jobs are created and changed ...
        job_b = run(globex)
        sql(database_url, "UPDATE integration_jobs SET status = 'running', progress = 10,"
            " attempts = 1, started_at = now() WHERE id = %s", job_b)  # fmt: skip
        other = uuid.uuid4()
        sql(database_url, "INSERT INTO integration_jobs (id, tenant_id, provider_slug)"
            " VALUES (%s, %s, 'onecode')", other, globex.id)  # fmt: skip
        # ... then acme's job changes: its event comes after any of globex's would.
        sql(database_url, "UPDATE integration_jobs SET progress = 50 WHERE id = %s", job_a)
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["id"] != job_a:
            seen.append(_next_event(chunks, 5))
        assert [(e["id"], e["progress"]) for e in seen] == [(job_a, 50)]
        rest: list[bytes] = []  # and nothing of globex's comes later either, until the stream ends
        while (chunk := chunks.get(timeout=15)) is not None:
            rest.append(chunk)
        assert parse(rest) == []
    finally:
        reader.join(15)
        response.close()
