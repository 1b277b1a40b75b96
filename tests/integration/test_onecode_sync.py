"""The OneCode sync against its emulator, through the queue (issue 4 acceptance)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from infra.emulators.onecode import OneCodeState, create_app
from shared.dispatch import get_dispatcher
from shared.secrets import env_var, secret_name
from tests.provider_support import (
    FLAKY_KNOBS,
    LIVE_JOBS,
    RunJob,
    cancel_midway,
    checksum,
    direct_sync_takes_the_slot,
    job_row,
    provider_fixtures,
    start_job,
    stored_text,
    work_in_background,
)
from tests.support import TenantFixture, call, rows, service_token

pytestmark = pytest.mark.db
TOKEN = "acme-onecode-token-5f2c"
CONTACTS = 2500

emulator, state, tenant, run_job = provider_fixtures(
    OneCodeState, create_app, seed=21, token=TOKEN, count=CONTACTS,
    provider="onecode", secret="token",
)  # fmt: skip


def emulator_view(state: OneCodeState) -> list[tuple[Any, ...]]:
    return [
        (str(c["id"]), c["name"], c["number"], c["email"] or None, c["isGroup"],
         tuple(t["name"] for t in c["tags"]), c["updatedAt"][:23])
        for c in state.contacts(TOKEN)
    ]  # fmt: skip


def db_view(database_url: str) -> list[tuple[Any, ...]]:
    found = rows(
        database_url,
        "SELECT external_id, name, number, email, is_group, tags,"
        " to_char(remote_updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') AS upd"
        " FROM onecode_contacts",
    )
    return [
        (r["external_id"], r["name"], r["number"], r["email"], r["is_group"],
         tuple(t["name"] for t in r["tags"]), r["upd"])
        for r in found
    ]  # fmt: skip


def test_full_sync_equals_emulator_resync_writes_nothing_and_updates_propagate(
    database_url: str, state: OneCodeState, run_job: RunJob
) -> None:
    job = run_job()
    assert job["status"] == "success", job["error_message"]
    assert job["progress"] == 100 and job["execution_time_ms"] is not None
    assert (job["result"]["records"], job["result"]["pages"]) == (CONTACTS, 25)
    assert len(db_view(database_url)) == CONTACTS
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))

    stamp = "SELECT external_id, updated_at FROM onecode_contacts ORDER BY 1"
    before = rows(database_url, stamp)
    second = run_job()
    assert second["status"] == "success" and second["result"]["changed"] == 0
    assert rows(database_url, stamp) == before  # an unchanged re-sync writes nothing

    target = state.contacts(TOKEN)[1234]
    changed = state.mutate_contact(TOKEN, target["id"], name="Ana Atualizada", tags=[])
    third = run_job()
    assert third["status"] == "success" and third["result"]["changed"] == 1
    row = rows(
        database_url,
        "SELECT name, tags FROM onecode_contacts WHERE external_id = %s",
        str(changed["id"]),
    )
    assert row == [{"name": "Ana Atualizada", "tags": []}]
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))


def test_faults_still_end_in_success_with_no_duplicates(
    database_url: str, state: OneCodeState, run_job: RunJob, configure: Any
) -> None:
    configure(PROVIDER_TIMEOUT_S="0.5")
    state.knobs.update(FLAKY_KNOBS)
    job = run_job()
    assert job["status"] == "success", job["error_message"]
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))
    assert rows(database_url, "SELECT count(*) AS n FROM onecode_contacts") == [{"n": CONTACTS}]
    faults = state.stats()["faults"]
    assert faults.get("429") and (faults.get("500") or faults.get("502") or faults.get("503"))


def test_persistent_faults_end_in_error_after_max_attempts(
    database_url: str, state: OneCodeState, run_job: RunJob, configure: Any
) -> None:
    configure(PROVIDER_RETRY_ATTEMPTS="2")
    state.knobs.update({"error_rate": 1.0})
    job = run_job()
    assert (job["status"], job["attempts"], job["max_attempts"]) == ("error", 3, 3)
    assert "OneCode kept answering HTTP 5" in job["error_message"]
    assert rows(database_url, LIVE_JOBS) == [{"n": 0}]
    integration = rows(database_url, "SELECT last_status FROM tenant_integrations")
    assert integration == [{"last_status": "error"}]


def test_rejected_token_is_not_retried_and_never_leaks(
    database_url: str, tenant: TenantFixture, run_job: RunJob, configure: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    configure(**{env_var(secret_name("acme", "onecode", "token")): "wrong-onecode-token-77"})
    job = run_job()
    assert (job["status"], job["attempts"]) == ("error", 1)
    assert job["error_message"] == "OneCode rejected the credentials (HTTP 401)."
    assert "wrong-onecode-token-77" not in stored_text(database_url) + capsys.readouterr().out


def test_page_size_is_taken_from_the_answer(
    database_url: str, state: OneCodeState, run_job: RunJob, configure: Any
) -> None:
    configure(ONECODE_PAGE_SIZE="250")  # above the server's 100: it clamps and says so
    job = run_job()
    assert job["status"] == "success", job["error_message"]
    assert (job["result"]["records"], job["result"]["pages"]) == (CONTACTS, 25)
    state.knobs.update({"page_size_mode": "reject"})
    rejected = run_job()
    assert (rejected["status"], rejected["attempts"]) == ("error", 1)
    assert "ERR_PAGE_SIZE" in rejected["error_message"]


def test_a_busy_account_gaining_contacts_during_the_sync_succeeds_in_one_walk(
    database_url: str, state: OneCodeState, run_job: RunJob
) -> None:
    """New contacts get the next id, at the end of the listing: they shift nothing. A sync
    that saw some arrive on every walk used to fail after nine walks, every row stored."""
    state.knobs.update({"latency_ms": 40})  # a network, not loopback
    stop = threading.Event()

    def arrivals() -> None:
        while not stop.wait(0.1):
            state.add_contact(TOKEN)

    worker = threading.Thread(target=arrivals, daemon=True)
    worker.start()
    try:
        job = run_job()
    finally:
        stop.set()
        worker.join()
    assert (job["status"], job["attempts"]) == ("success", 1), job["error_message"]
    assert job["result"]["passes"] == 1
    stored = rows(database_url, "SELECT count(*) AS n FROM onecode_contacts")[0]["n"]
    assert CONTACTS < stored == job["result"]["records"] <= len(state.contacts(TOKEN))


def test_a_listing_longer_than_max_pages_fails_and_says_so(
    database_url: str, run_job: RunJob, configure: Any
) -> None:
    """Not a success with the later pages left out."""
    configure(ONECODE_MAX_PAGES="3")
    job = run_job()
    assert (job["status"], job["attempts"]) == ("error", 1)
    assert "longer than 3 pages" in job["error_message"]


def test_cancel_during_a_long_sync_stops_between_pages(
    database_url: str, tenant: TenantFixture, state: OneCodeState, configure: Any
) -> None:
    count = "SELECT count(*) AS n FROM onecode_contacts"
    cancel_midway(
        database_url, tenant, state, configure, provider="onecode", count_sql=count, total=CONTACTS
    )
    expected = {c[0]: c for c in emulator_view(state)}
    assert all(expected[r[0]] == r for r in db_view(database_url))  # every row is right


def test_sync_onecode_contacts_over_http_takes_the_same_slot(
    database_url: str, tenant: TenantFixture
) -> None:
    body = {"tenant_id": str(tenant.id)}
    response = call("sync-onecode-contacts", body, token=tenant.admin_token)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["records"] == CONTACTS
    assert rows(database_url, "SELECT status, provider_slug FROM integration_jobs") == [
        {"status": "success", "provider_slug": "onecode"}
    ]
    live = direct_sync_takes_the_slot(tenant, "sync-onecode-contacts", "onecode")
    by_id = call("sync-onecode-contacts", {**body, "job_id": live}, token=service_token())
    assert by_id.status_code == 200 and by_id.get_json()["job_id"] == live


def test_a_contact_with_an_offset_postgresql_refuses_does_not_fail_the_sync(
    database_url: str, state: OneCodeState, run_job: RunJob
) -> None:
    """ISO 8601 (and Python) allow offsets up to +-23:59; PostgreSQL refuses beyond +-15:59."""
    victim = state.contacts(TOKEN)[1500]
    state.mutate_contact(TOKEN, victim["id"], createdAt="2024-05-01T12:00:00+20:00")
    job = run_job()
    assert job["status"] == "success", job["error_message"]
    assert rows(database_url, "SELECT count(*) AS n FROM onecode_contacts") == [{"n": CONTACTS}]


def test_a_throttled_sync_retries_no_sooner_than_the_api_asked(
    database_url: str, tenant: TenantFixture, state: OneCodeState, configure: Any
) -> None:
    """A 429 whose Retry-After outlasts the client's retries fails the attempt: the job's
    retry must wait what the API asked for (within BACKOFF_CAP_S), not the short backoff of
    a first failure, which only spends the next attempt on the same 429s."""
    configure(PROVIDER_RETRY_ATTEMPTS="2", BACKOFF_BASE_S="1", BACKOFF_CAP_S="3600")
    state.knobs.update({"rate_429": 1.0, "retry_after_s": 120})
    job_id = start_job(tenant, "onecode")
    get_dispatcher().take()  # type: ignore[attr-defined]
    answer = call("process-integration-job", {"job_id": job_id}, token=service_token())
    assert answer.status_code == 200, answer.get_json()
    job = job_row(database_url, job_id)
    assert (job["status"], job["attempts"]) == ("pending", 1), job["error_message"]
    wait = rows(
        database_url,
        "SELECT extract(epoch FROM run_after - now())::float AS s FROM integration_jobs"
        " WHERE id = %s",
        job_id,
    )[0]["s"]
    assert wait >= 110, wait


def test_a_page_that_always_answers_empty_mid_listing_does_not_end_in_success(
    database_url: str, emulator: Any, state: OneCodeState, run_job: RunJob
) -> None:
    """Page 3 answers ``contacts: []`` on every read while ``count`` still says 2,500: the
    walks agree, but on 200 of the contacts only; the rest were never read, so the sync
    must not report success."""
    from flask import jsonify, request

    def hole() -> Any:
        if request.path == "/api/contacts" and request.args.get("page") == "3":
            return jsonify({"contacts": [], "count": CONTACTS, "page": 3, "pageSize": 100,
                            "pageCount": 0})  # fmt: skip
        return None

    emulator.server.app.before_request(hole)
    job = run_job()
    assert job["status"] == "error", (job["status"], job["result"])
    assert rows(database_url, "SELECT count(*) AS n FROM onecode_contacts") == [{"n": 200}]


def test_a_heartbeat_throttle_past_the_lease_does_not_let_the_sweep_run_a_sync_twice(
    database_url: str, state: OneCodeState, tenant: TenantFixture, configure: Any
) -> None:
    """LISTING_HEARTBEAT_S at or above STALE_AFTER_S (a throttle raised to spare writes):
    the sync's heartbeat came too seldom for its lease, the sweep rescued it mid-listing and
    a second worker walked the whole listing again beside it (every page asked twice)."""
    from shared.jobs import sweep
    from shared.queue.kind import KIND

    configure(STALE_AFTER_S="1", LISTING_HEARTBEAT_S="60", LISTING_FETCH_AHEAD="0",
              BACKOFF_BASE_S="0", BACKOFF_CAP_S="0")  # fmt: skip
    state.knobs.update({"latency_ms": 200})  # 25 pages, one at a time: about 5 s
    job_id, worker = work_in_background(tenant, "onecode")
    threading.Event().wait(2.5)  # past the 1 s lease, mid-listing
    assert job_row(database_url, job_id)["status"] == "running"
    rescued = sweep.rescue(KIND)
    call("process-integration-job", {"job_id": job_id}, token=service_token())
    worker.join(60)
    assert rescued == 0
    job = job_row(database_url, job_id)
    assert (job["status"], job["attempts"]) == ("success", 1), job["error_message"]
    assert state.stats()["requests"] == CONTACTS // 100 + 1  # one walk: 25 pages and the end


def test_a_stored_contact_whose_tags_alone_differ_is_rewritten(
    database_url: str, state: OneCodeState, run_job: RunJob
) -> None:
    """Tags are part of a contact's row: a stored copy that differs only in its tags (a tag
    applied in OneCode need not touch the contact's updatedAt) is written again."""
    assert run_job()["status"] == "success"
    tagged = next(c for c in state.contacts(TOKEN) if c["tags"])
    tags = "SELECT tags FROM onecode_contacts WHERE external_id = %s"
    listed = rows(database_url, tags, str(tagged["id"]))
    rows(database_url, "UPDATE onecode_contacts SET tags = '[]' WHERE external_id = %s"
         " RETURNING 1", str(tagged["id"]))  # fmt: skip
    job = run_job()
    assert job["status"] == "success" and job["result"]["changed"] == 1, job["result"]
    assert rows(database_url, tags, str(tagged["id"])) == listed != [{"tags": []}]
