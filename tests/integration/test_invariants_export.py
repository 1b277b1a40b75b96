"""The lead export's lease invariants, pinned on real PostgreSQL.

A runner that went silent and was rescued, its job since claimed by another runner, must
not move the job's counters or cursor when it wakes up; and a rescue takes only silent
runners' jobs. The job store is reached only through the helpers below, so a new job
engine rewires them and nothing else; the tests assert on the rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
import pytest

from shared import db
from shared.errors import LeaseLost
from shared.gestao import exports
from shared.gestao.mapping import DEFAULT_MAPPING
from shared.gestao.models import ExportStatus
from shared.gestao.runner import KIND
from shared.jobs import store as engine
from shared.jobs.lease import Lease
from tests.conftest import Configure
from tests.integration.gestao_support import PROVIDER, seed_leads
from tests.support import TenantFixture, rows, seed_tenant

pytestmark = pytest.mark.db

Cursor = tuple[datetime, int]


# --- the engine, as these tests use it --------------------------------------------------


def create(conn: db.Conn, tenant: TenantFixture) -> uuid.UUID:
    """A pending export of all the tenant's leads; its id."""
    row = exports.create(
        conn, tenant_id=tenant.id, start=None, end=None, mapping=dict(DEFAULT_MAPPING),
        batch_size=100, created_by=tenant.admin,
    )  # fmt: skip
    job_id: uuid.UUID = row["id"]
    return job_id


def claim(conn: db.Conn, tenant: TenantFixture, job_id: uuid.UUID) -> uuid.UUID:
    """A runner takes the job; its lease."""
    exports.get(conn, tenant.id, job_id)
    [row] = engine.claim(conn, exports.TABLE, job_id=job_id)
    lease: uuid.UUID = row["lease_token"]
    return lease


def _lease(job_id: uuid.UUID, lease: uuid.UUID) -> Lease:
    return Lease(exports.TABLE, {"id": job_id, "lease_token": lease})


def checkpoint(
    conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID, cursor: Cursor, *, bad_lead: int | None
) -> bool:
    """One batch of 100 accounted for under the lease (one lead refused); whether it held."""
    errors = [] if bad_lead is None else [
        {"lead_id": bad_lead, "error_message": "refused", "response_status": 400,
         "response_body": {}, "fields_sent": {}},
    ]  # fmt: skip
    try:
        exports.checkpoint(conn, _lease(job_id, lease), exported=100, cursor=cursor, errors=errors)
    except LeaseLost:
        return False
    return True


def heartbeat(conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID) -> bool:
    """The runner's "still mine?"; whether the lease held."""
    try:
        _lease(job_id, lease).heartbeat(conn)
    except LeaseLost:
        return False
    return True


def release(conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID, status: str) -> bool:
    """The runner hands the job back in `status`; whether the lease held."""
    try:
        exports.release(conn, _lease(job_id, lease), ExportStatus(status))
    except LeaseLost:
        return False
    return True


def rescue(conn: db.Conn) -> None:
    """The sweep's rescue of jobs whose runner went silent (the export kind's own rule)."""
    stale_after_s = KIND.stale_after_s()
    for row in engine.lock_stale(conn, exports.TABLE, stale_after_s=stale_after_s, limit=100):
        KIND.rescue(conn, row)


# --- rows ---------------------------------------------------------------------------------

JOB_STATE = (
    "SELECT status, lease_token, attempts, exported_leads, error_leads, batches, cursor_criado,"
    " cursor_id, processing_date, last_completed_date, consecutive_failures, heartbeat_at"
    " FROM gestao_scouter_export_jobs WHERE id = %s"
)


def state(database_url: str, job_id: uuid.UUID) -> dict[str, Any]:
    return rows(database_url, JOB_STATE, job_id)[0]


def go_silent(database_url: str, job_id: uuid.UUID) -> None:
    """The job's runner stopped heartbeating an hour ago."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE gestao_scouter_export_jobs SET heartbeat_at = now() - interval '1 hour'"
            " WHERE id = %s",
            [job_id],
        )


def cursor_at(database_url: str, tenant: TenantFixture, n: int) -> Cursor:
    """The cursor after the tenant's first `n` leads in export order."""
    lead = rows(
        database_url,
        "SELECT criado, id FROM leads WHERE tenant_id = %s ORDER BY criado, id OFFSET %s LIMIT 1",
        tenant.id, n - 1,
    )[0]  # fmt: skip
    return lead["criado"], lead["id"]


@pytest.fixture
def acme(database_url: str, configure: Configure) -> TenantFixture:
    """A tenant with 400 leads; silent runners are rescued after a minute, retried at once."""
    configure(GESTAO_SCOUTER_STALE_AFTER_S="60", GESTAO_SCOUTER_FAILURE_BACKOFF_S="0")
    tenant = seed_tenant(database_url, "acme", providers={PROVIDER: {}})
    seed_leads(database_url, tenant.id, 400)
    return tenant


# --- leases ---------------------------------------------------------------------------------


def stale_checkpoint(conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID, cursor: Cursor) -> None:
    assert not checkpoint(conn, job_id, lease, cursor, bad_lead=cursor[1])


def stale_heartbeat(conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID, cursor: Cursor) -> None:
    assert not heartbeat(conn, job_id, lease)


def stale_release(conn: db.Conn, job_id: uuid.UUID, lease: uuid.UUID, cursor: Cursor) -> None:
    assert not release(conn, job_id, lease, "completed")


@pytest.mark.parametrize(
    "zombie", [stale_checkpoint, stale_heartbeat, stale_release],
    ids=["checkpoint", "heartbeat", "release"],
)  # fmt: skip
def test_a_rescued_runner_changes_neither_counters_nor_cursor(
    database_url: str,
    acme: TenantFixture,
    zombie: Callable[[db.Conn, uuid.UUID, uuid.UUID, Cursor], None],
) -> None:
    with db.transaction() as conn:
        job_id = create(conn, acme)
    with db.transaction() as conn:
        old_lease = claim(conn, acme, job_id)
        assert checkpoint(conn, job_id, old_lease, cursor_at(database_url, acme, 100),
                          bad_lead=None)  # fmt: skip
    go_silent(database_url, job_id)
    with db.transaction() as conn:
        rescue(conn)
    assert state(database_url, job_id)["status"] == "pending"
    with db.transaction() as conn:  # a second runner takes over and sends the next batch
        new_lease = claim(conn, acme, job_id)
        assert checkpoint(conn, job_id, new_lease, cursor_at(database_url, acme, 200),
                          bad_lead=None)  # fmt: skip
    before = state(database_url, job_id)
    assert (before["status"], before["lease_token"], before["attempts"]) == (
        "running", new_lease, 2,
    )  # fmt: skip
    assert (before["exported_leads"], before["batches"]) == (200, 2)
    assert (before["cursor_criado"], before["cursor_id"]) == cursor_at(database_url, acme, 200)

    with db.transaction() as conn:  # the first runner wakes up, a batch further on
        zombie(conn, job_id, old_lease, cursor_at(database_url, acme, 300))

    after = state(database_url, job_id)
    assert (after["exported_leads"], after["error_leads"], after["batches"]) == (200, 0, 2)
    assert (after["cursor_criado"], after["cursor_id"]) == cursor_at(database_url, acme, 200)
    assert after == before
    assert rows(database_url, "SELECT lead_id FROM gestao_scouter_export_errors") == []
    with db.transaction() as conn:  # the second runner still holds the job
        assert heartbeat(conn, job_id, new_lease)


# --- rescue ---------------------------------------------------------------------------------


def test_a_rescue_takes_the_silent_runners_job_and_leaves_the_fresh_one(
    database_url: str, acme: TenantFixture
) -> None:
    globex = seed_tenant(database_url, "globex", providers={PROVIDER: {}})
    seed_leads(database_url, globex.id, 200)
    with db.transaction() as conn:
        stale_id, fresh_id = create(conn, acme), create(conn, globex)
    with db.transaction() as conn:
        stale_lease, fresh_lease = claim(conn, acme, stale_id), claim(conn, globex, fresh_id)
        assert checkpoint(conn, fresh_id, fresh_lease, cursor_at(database_url, globex, 100),
                          bad_lead=None)  # fmt: skip
    go_silent(database_url, stale_id)
    fresh_before = state(database_url, fresh_id)
    with db.transaction() as conn:
        rescue(conn)

    assert state(database_url, fresh_id) == fresh_before
    assert (fresh_before["status"], fresh_before["lease_token"]) == ("running", fresh_lease)
    stale = state(database_url, stale_id)
    assert (stale["status"], stale["lease_token"], stale["consecutive_failures"]) == (
        "pending", None, 1,
    )  # fmt: skip
    with db.transaction() as conn:  # the fresh runner carries on undisturbed
        assert checkpoint(conn, fresh_id, fresh_lease, cursor_at(database_url, globex, 200),
                          bad_lead=None)  # fmt: skip
        assert release(conn, fresh_id, fresh_lease, "completed")
    assert state(database_url, fresh_id)["exported_leads"] == 200
    assert stale_lease != fresh_lease


# --- error rows -----------------------------------------------------------------------------


def test_a_lead_refused_in_two_batches_of_one_export_counts_as_one_error(
    database_url: str, acme: TenantFixture
) -> None:
    """A remote edit can move a refused lead's `criado` further on, into a later batch that
    the remote refuses again (with another lead): error_leads counts the rows written."""
    with db.transaction() as conn:
        job_id = create(conn, acme)
    bad = cursor_at(database_url, acme, 50)[1]
    with db.transaction() as conn:
        lease = claim(conn, acme, job_id)
        assert checkpoint(conn, job_id, lease, cursor_at(database_url, acme, 100), bad_lead=bad)
    again = cursor_at(database_url, acme, 150)[1]  # the next batch: it and a new bad lead
    errors = [
        {"lead_id": lead, "error_message": "refused", "response_status": 400,
         "response_body": {}, "fields_sent": {}}
        for lead in (bad, again)
    ]  # fmt: skip
    with db.transaction() as conn:
        exports.checkpoint(
            conn, _lease(job_id, lease), exported=98, cursor=cursor_at(database_url, acme, 200),
            errors=errors,
        )  # fmt: skip
    assert state(database_url, job_id)["error_leads"] == 2
    written = rows(database_url, "SELECT lead_id FROM gestao_scouter_export_errors ORDER BY id")
    assert written == [{"lead_id": bad}, {"lead_id": again}]


def test_an_error_row_holds_its_own_tenants_lead_not_anothers_with_the_same_id(
    database_url: str, configure: Configure
) -> None:
    """Lead ids are per tenant: the snapshot of a refused lead is the exporting tenant's."""
    configure(GESTAO_SCOUTER_STALE_AFTER_S="60", GESTAO_SCOUTER_FAILURE_BACKOFF_S="0")
    globex = seed_tenant(database_url, "globex", providers={PROVIDER: {}})
    seed_leads(database_url, globex.id, 200)  # first: its rows come first in the table
    acme = seed_tenant(database_url, "acme", providers={PROVIDER: {}})
    seed_leads(database_url, acme.id, 200)
    bad = cursor_at(database_url, acme, 50)[1]
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE leads SET name = 'Globex lead' WHERE tenant_id = %s", [globex.id])
        conn.execute("UPDATE leads SET name = 'Acme lead' WHERE tenant_id = %s", [acme.id])
    with db.transaction() as conn:
        job_id = create(conn, acme)
    with db.transaction() as conn:
        lease = claim(conn, acme, job_id)
        assert checkpoint(conn, job_id, lease, cursor_at(database_url, acme, 100), bad_lead=bad)
    [error] = rows(
        database_url, "SELECT tenant_id, lead_id, lead_snapshot FROM gestao_scouter_export_errors"
    )
    assert (error["tenant_id"], error["lead_id"]) == (acme.id, bad)
    assert error["lead_snapshot"]["name"] == "Acme lead"
    assert state(database_url, job_id)["error_leads"] == 1


def test_a_batch_that_goes_through_ends_the_failure_streak_a_later_crash_counts_one(
    database_url: str, acme: TenantFixture
) -> None:
    with db.transaction() as conn:
        job_id = create(conn, acme)
    with db.transaction() as conn:
        lease = claim(conn, acme, job_id)
    with psycopg.connect(database_url) as conn:  # two failed batches before this run
        conn.execute(
            "UPDATE gestao_scouter_export_jobs SET consecutive_failures = 2 WHERE id = %s",
            [job_id],
        )
    with db.transaction() as conn:
        assert checkpoint(conn, job_id, lease, cursor_at(database_url, acme, 100), bad_lead=None)
    assert state(database_url, job_id)["consecutive_failures"] == 0
    go_silent(database_url, job_id)  # then its runner dies
    with db.transaction() as conn:
        rescue(conn)
    after = state(database_url, job_id)
    assert (after["status"], after["consecutive_failures"]) == ("pending", 1)
