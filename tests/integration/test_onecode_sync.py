"""The OneCode sync against its emulator, through the queue (issue 4 acceptance)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.emulators._common import ServerHandle, start_in_thread
from infra.emulators.onecode import OneCodeState, create_app
from shared.dispatch import get_dispatcher
from shared.secrets import env_var, secret_name
from tests.support import TenantFixture, call, drain, rows, seed_tenant, service_token

pytestmark = pytest.mark.db
TOKEN = "acme-onecode-token-5f2c"
CONTACTS = 2500

RunJob = Callable[[], dict[str, Any]]


@pytest.fixture
def emulator() -> Iterator[ServerHandle]:
    state = OneCodeState(seed=21)
    state.seed_token(TOKEN, CONTACTS)
    with start_in_thread(create_app(state)) as handle:
        yield handle


@pytest.fixture
def state(emulator: ServerHandle) -> OneCodeState:
    assert isinstance(emulator.state, OneCodeState)
    return emulator.state


@pytest.fixture
def tenant(database_url: str, emulator: ServerHandle, configure: Any) -> TenantFixture:
    configure(
        **{env_var(secret_name("acme", "onecode", "token")): TOKEN},
        PROVIDER_RETRY_ATTEMPTS="8",
    )
    return seed_tenant(database_url, "acme", providers={"onecode": {"base_url": emulator.url}})


@pytest.fixture
def run_job(database_url: str, tenant: TenantFixture) -> RunJob:
    """Click "Executar" and deliver the wake-ups until the queue is idle; the job row."""

    def run() -> dict[str, Any]:
        response = call(
            "run-integration",
            {"tenant_id": str(tenant.id), "provider_slug": "onecode"},
            token=tenant.admin_token,
        )
        assert response.status_code == 202, response.get_json()
        drain(get_dispatcher())
        job_id = response.get_json()["job_id"]
        return rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]

    return run


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


def checksum(view: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(repr(sorted(view)).encode()).hexdigest()


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
    state.knobs.update({"error_rate": 0.2, "rate_429": 0.1, "timeout_rate": 0.03, "hang_s": 1})
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
    live = "SELECT count(*) AS n FROM integration_jobs WHERE status IN ('pending', 'running')"
    assert rows(database_url, live) == [{"n": 0}]
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
    stored = str(rows(database_url, "SELECT * FROM integration_jobs"))
    stored += str(rows(database_url, "SELECT * FROM integration_logs"))
    assert "wrong-onecode-token-77" not in stored + capsys.readouterr().out


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


def test_cancel_during_a_long_sync_stops_between_pages(
    database_url: str, tenant: TenantFixture, state: OneCodeState, configure: Any
) -> None:
    configure(LISTING_HEARTBEAT_S="0")  # a heartbeat (and cancel check) before every page
    state.knobs.update({"latency_ms": 60})
    job_id = call(
        "run-integration", {"tenant_id": str(tenant.id), "provider_slug": "onecode"},
        token=tenant.admin_token,
    ).get_json()["job_id"]  # fmt: skip
    get_dispatcher().take()  # type: ignore[attr-defined]
    worker = threading.Thread(
        target=call, args=("process-integration-job", {"job_id": job_id}),
        kwargs={"token": service_token()},
    )  # fmt: skip
    worker.start()
    count = "SELECT count(*) AS n FROM onecode_contacts"
    for _ in range(200):
        if rows(database_url, count)[0]["n"] >= 500:
            break
        threading.Event().wait(0.05)
    assert (
        call("cancel-integration-job", {"job_id": job_id}, token=tenant.admin_token).status_code
        == 200
    )
    worker.join(60)
    job = rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]
    assert job["status"] == "canceled"
    written = rows(database_url, count)[0]["n"]
    assert 500 <= written < CONTACTS and written % 100 == 0  # whole pages only
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
    live = call(
        "run-integration", {"tenant_id": str(tenant.id), "provider_slug": "onecode"},
        token=tenant.admin_token,
    ).get_json()["job_id"]  # fmt: skip
    busy = call("sync-onecode-contacts", body, token=service_token())
    assert busy.status_code == 409
    assert busy.get_json()["error"]["details"]["job_id"] == live
    by_id = call("sync-onecode-contacts", {**body, "job_id": live}, token=service_token())
    assert by_id.status_code == 200 and by_id.get_json()["job_id"] == live
    assert call("sync-onecode-contacts", body, token=tenant.member_token).status_code == 403
