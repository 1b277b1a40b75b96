"""integration-job-events: a tenant-scoped server-sent event stream from LISTEN/NOTIFY."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.dispatch import RecordingDispatcher
from tests.support import bearer, call, drain, function_client, seed_tenant

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
