"""Row-level security of the lead and credit tables, read the way the code reads for a
user (`db.user_transaction`): queries that "forget" their filter still see only the
caller's tenants (leads, exports), the caller's admin tenants (export errors, which hold
lead snapshots) or the caller's own rows (credits)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from shared import db
from tests.credits_support import IMAGE, User, new_user, set_price
from tests.integration.gestao_support import PROVIDER, seed_leads
from tests.support import TenantFixture, rows, seed_tenant

pytestmark = pytest.mark.db


def as_user(user_id: uuid.UUID, sql: str) -> list[dict[str, Any]]:
    """A query made for this user, with no filter of its own."""
    with db.user_transaction(user_id) as conn:
        return conn.execute(sql).fetchall()


def tenant_with_an_export_error(database_url: str, slug: str) -> TenantFixture:
    """A tenant with two leads and an export job whose first lead was refused."""
    tenant = seed_tenant(database_url, slug, providers={PROVIDER: {}})
    seed_leads(database_url, tenant.id, 2)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "WITH job AS (INSERT INTO gestao_scouter_export_jobs (tenant_id, field_mappings,"
            " batch_size, status) VALUES (%(t)s, '{}', 100, 'completed') RETURNING id)"
            " INSERT INTO gestao_scouter_export_errors (job_id, tenant_id, lead_id,"
            " error_message, lead_snapshot, fields_sent)"
            " SELECT id, %(t)s, 1, 'refused', '{\"name\": \"Maria\"}', '{}' FROM job",
            {"t": tenant.id},
        )
    return tenant


@pytest.fixture
def acme_and_globex(database_url: str) -> tuple[TenantFixture, TenantFixture]:
    return (
        tenant_with_an_export_error(database_url, "acme"),
        tenant_with_an_export_error(database_url, "globex"),
    )


def join(database_url: str, tenant: TenantFixture, user: uuid.UUID, role: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%s, %s, %s)",
            [tenant.id, user, role],
        )


def test_leads_and_exports_are_seen_by_their_tenants_members_only(
    database_url: str, acme_and_globex: tuple[TenantFixture, TenantFixture]
) -> None:
    acme, globex = acme_and_globex
    for user in (acme.member, acme.admin):
        leads = as_user(user, "SELECT tenant_id, id FROM leads ORDER BY id")
        assert leads == [{"tenant_id": acme.id, "id": 1}, {"tenant_id": acme.id, "id": 2}]
        exports = as_user(user, "SELECT tenant_id FROM gestao_scouter_export_jobs")
        assert exports == [{"tenant_id": acme.id}]
    stranger = uuid.uuid4()
    assert as_user(stranger, "SELECT id FROM leads") == []
    assert as_user(stranger, "SELECT id FROM gestao_scouter_export_jobs") == []
    # globex's rows are there, only not for them
    assert len(rows(database_url, "SELECT id FROM leads WHERE tenant_id = %s", globex.id)) == 2


def test_export_errors_are_seen_by_their_tenants_admins_only(
    database_url: str, acme_and_globex: tuple[TenantFixture, TenantFixture]
) -> None:
    acme, globex = acme_and_globex
    errors = "SELECT tenant_id, lead_snapshot FROM gestao_scouter_export_errors"
    assert as_user(acme.admin, errors) == [
        {"tenant_id": acme.id, "lead_snapshot": {"name": "Maria"}}
    ]
    assert as_user(acme.member, errors) == []  # a member of the same tenant sees none
    assert as_user(uuid.uuid4(), errors) == []
    # Admin of acme and member of globex: acme's errors, never globex's.
    join(database_url, globex, acme.admin, "member")
    assert [r["tenant_id"] for r in as_user(acme.admin, errors)] == [acme.id]
    assert len(rows(database_url, errors)) == 2


def ledger_rows(database_url: str, user: User, amounts: list[int]) -> None:
    """A debited image job of the user per amount (as the queue manager leaves them)."""
    set_price(database_url, "rls", 5)
    with psycopg.connect(database_url) as conn:
        for amount in amounts:
            conn.execute(
                "WITH job AS (INSERT INTO ai_jobs (job_table, user_id, workflow_id)"
                " VALUES (%(t)s, %(u)s, 'rls') RETURNING id)"
                " INSERT INTO credit_ledger (user_id, amount, kind, job_table, job_id)"
                " SELECT %(u)s, %(a)s, 'debit', %(t)s, id FROM job",
                {"t": IMAGE, "u": user.id, "a": amount},
            )


def test_credit_accounts_and_ledger_are_seen_by_their_owner_only(database_url: str) -> None:
    alice, bob = new_user(database_url, 50), new_user(database_url, 70)
    ledger_rows(database_url, alice, [3])
    ledger_rows(database_url, bob, [7, 9])
    assert as_user(alice.id, "SELECT user_id, balance FROM credit_accounts") == [
        {"user_id": alice.id, "balance": 50}
    ]
    assert as_user(alice.id, "SELECT user_id, amount FROM credit_ledger") == [
        {"user_id": alice.id, "amount": 3}
    ]
    assert [
        r["amount"] for r in as_user(bob.id, "SELECT amount FROM credit_ledger ORDER BY id")
    ] == [7, 9]
    nobody = uuid.uuid4()
    assert as_user(nobody, "SELECT user_id FROM credit_accounts") == []
    assert as_user(nobody, "SELECT user_id FROM credit_ledger") == []


def test_a_members_query_cannot_read_the_alert_webhook_url(
    database_url: str, acme_and_globex: tuple[TenantFixture, TenantFixture]
) -> None:
    """The webhook URL is a credential (a Slack or Teams URL holds its token): the alerts
    function shows a member only its origin, and a member's own query of alert_settings (a
    Supabase deployment serves the table to the browser) must not read it either. The rest
    of the settings stay readable by the tenant's members."""
    acme, _ = acme_and_globex
    hook = "https://hooks.slack.example/services/T0/B0/the-token"
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO alert_settings (tenant_id, emails, webhook_url) VALUES (%s, %s, %s)",
            [acme.id, ["ops@acme.example"], hook],
        )
    for user in (acme.member, acme.admin):
        assert as_user(user, "SELECT tenant_id, emails FROM alert_settings") == [
            {"tenant_id": acme.id, "emails": ["ops@acme.example"]}
        ]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_user(acme.member, "SELECT webhook_url FROM alert_settings")
