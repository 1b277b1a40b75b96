"""Tenant isolation: every endpoint refuses a foreign tenant, and RLS hides its rows."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg
import pytest

from shared import db
from shared.auth import SERVICE, Principal
from shared.dispatch import RecordingDispatcher
from shared.tenancy import reading_as
from tests.support import TenantFixture, bearer, call, function_client, rows, seed_tenant

pytestmark = pytest.mark.db


def acme_and_a_globex_job(database_url: str) -> tuple[TenantFixture, TenantFixture, str]:
    """Tenants acme and globex, and a pending job of globex's."""
    a = seed_tenant(database_url, "acme")
    b = seed_tenant(database_url, "globex")
    b_job = call("run-integration", {"tenant_id": str(b.id), "provider_slug": "acessorias"},
                 token=b.admin_token).get_json()["job_id"]  # fmt: skip
    return a, b, b_job


def test_admin_of_a_gets_403_for_b_everywhere(
    database_url: str, recorder: RecordingDispatcher
) -> None:
    a, b, b_job = acme_and_a_globex_job(database_url)
    token = a.admin_token
    checks = [
        call("run-integration", {"tenant_id": str(b.id), "provider_slug": "acessorias"}, token=token),
        call("sync-acessorias", {"tenant_slug": "globex"}, token=token),
        function_client("list-integration-jobs").get(
            "/", query_string={"tenant_id": str(b.id)}, headers=bearer(token)),
        function_client("integration-job-events").get(
            "/", query_string={"tenant_id": str(b.id)}, headers=bearer(token)),
        # An unknown tenant looks exactly like a foreign one.
        call("sync-acessorias", {"tenant_slug": "no-such-tenant"}, token=token),
    ]  # fmt: skip
    for response in checks:
        assert response.status_code == 403, response.get_json()
        assert response.get_json()["error"]["code"] == "forbidden"
    assert (
        rows(database_url, "SELECT status FROM integration_jobs WHERE id = %s", b_job)[0]["status"]
        == "pending"
    )


def test_another_tenants_job_id_answers_like_an_unknown_one(
    database_url: str, recorder: RecordingDispatcher
) -> None:
    a, b, b_job = acme_and_a_globex_job(database_url)
    unknown = str(uuid.uuid4())
    foreign = call("cancel-integration-job", {"job_id": b_job}, token=a.admin_token)
    missing = call("cancel-integration-job", {"job_id": unknown}, token=a.admin_token)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.get_json() == missing.get_json()
    assert foreign.get_json()["error"]["code"] == "not_found"
    # B's own member can see the job, so may be told that cancelling needs the admin role.
    member = call("cancel-integration-job", {"job_id": b_job}, token=b.member_token)
    assert member.status_code == 403 and member.get_json()["error"]["code"] == "forbidden"
    # As a listing cursor, a foreign job id works exactly like an unknown one.
    lister = function_client("list-integration-jobs")
    pages = [
        lister.get("/", query_string={"tenant_id": str(a.id), "before": before},
                   headers=bearer(a.member_token)).get_json()
        for before in (b_job, unknown)
    ]  # fmt: skip
    assert pages[0] == pages[1] == {"jobs": [], "next_before": None}
    assert rows(database_url, "SELECT status FROM integration_jobs") == [{"status": "pending"}]


def test_a_stranger_cannot_lock_another_tenants_job(
    database_url: str, recorder: RecordingDispatcher
) -> None:
    a, _, b_job = acme_and_a_globex_job(database_url)
    answers: list[Any] = []
    stranger = threading.Thread(
        target=lambda: answers.append(
            call("cancel-integration-job", {"job_id": b_job}, token=a.admin_token)
        )
    )
    with psycopg.connect(database_url) as conn:  # B's side holds the row, as a worker would
        conn.execute("SELECT 1 FROM integration_jobs WHERE id = %s FOR UPDATE", [b_job])
        stranger.start()
        stranger.join(5)
        waited_for_the_lock = stranger.is_alive()
    stranger.join(10)
    assert not waited_for_the_lock
    assert answers[0].status_code == 404


def _two_tenants_with_a_job(database_url: str) -> tuple[TenantFixture, TenantFixture]:
    """acme and globex, each with an Acessórias job its admin started."""
    a = seed_tenant(database_url, "acme")
    b = seed_tenant(database_url, "globex")
    for t in (a, b):
        call(
            "run-integration",
            {"tenant_id": str(t.id), "provider_slug": "acessorias"},
            token=t.admin_token,
        )
    return a, b


def test_rls_hides_other_tenants_rows_even_without_a_filter(
    database_url: str, recorder: RecordingDispatcher
) -> None:
    a, b = _two_tenants_with_a_job(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO acessorias_companies (tenant_id, external_id, razao) VALUES (%s, '1', 'A'), (%s, '1', 'B')",
            [a.id, b.id],
        )
    with db.user_transaction(a.member) as conn:  # queries that "forgot" the tenant filter
        jobs = conn.execute("SELECT tenant_id FROM integration_jobs").fetchall()
        logs = conn.execute("SELECT tenant_id FROM integration_logs").fetchall()
        companies = conn.execute("SELECT razao FROM acessorias_companies").fetchall()
        tenants = conn.execute("SELECT slug FROM tenants").fetchall()
        members = conn.execute("SELECT tenant_id FROM tenant_members").fetchall()
        integrations = conn.execute("SELECT tenant_id FROM tenant_integrations").fetchall()
    assert {r["tenant_id"] for r in jobs + logs + members + integrations} == {a.id}
    assert companies == [{"razao": "A"}] and tenants == [{"slug": "acme"}]
    with db.user_transaction(a.member) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE integration_jobs SET status = 'error'")


def test_a_users_reads_go_through_rls_and_the_services_see_every_tenant(
    database_url: str, recorder: RecordingDispatcher
) -> None:
    """`reading_as` is how the listings, events and schedules read for their caller: as a
    user it is under row-level security, so a query that forgot its tenant filter still
    sees only the caller's tenants; as the service it sees all."""
    a, b = _two_tenants_with_a_job(database_url)
    seen: dict[str, set[uuid.UUID]] = {}
    for label, principal in (("user", Principal("user", a.member)), ("service", SERVICE)):
        with reading_as(principal) as conn:
            found = conn.execute("SELECT tenant_id FROM integration_jobs").fetchall()
        seen[label] = {r["tenant_id"] for r in found}
    assert seen == {"user": {a.id}, "service": {a.id, b.id}}
