"""A job's times are the times of its writes, not of the transactions that made them: what
the history, the cards and the dashboard order by must follow what happened."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from shared.dispatch import RecordingDispatcher
from shared.providers import PROVIDERS
from shared.queue import service, store
from tests.providers_for_tests import ScriptedProvider
from tests.support import bearer, call, function_client, seed_tenant, service_token

pytestmark = pytest.mark.db


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedProvider]:
    provider = ScriptedProvider()
    monkeypatch.setitem(PROVIDERS, provider.slug, provider)
    yield provider


def test_a_click_whose_insert_lands_after_another_job_ended_is_the_latest_job(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A slow click's job took its transaction's start as created_at: below a job created
    and canceled meanwhile, the card showed the canceled one and hid the live one."""
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    body = {"tenant_id": str(tenant.id), "provider_slug": "scripted"}
    real, slow = service.enabled_integration, threading.Event()

    def enabled(*args: Any) -> Any:
        if threading.current_thread().name == "slow-click":
            slow.set()
            time.sleep(0.5)  # a slow request between its first statement and its insert
        return real(*args)

    monkeypatch.setattr(service, "enabled_integration", enabled)
    answers: list[Any] = []
    click = threading.Thread(
        target=lambda: answers.append(call("run-integration", body, token=tenant.admin_token)),
        name="slow-click",
    )
    click.start()
    assert slow.wait(5)
    quick = call("run-integration", body, token=tenant.admin_token).get_json()["job_id"]
    canceled = call("cancel-integration-job", {"job_id": quick}, token=tenant.admin_token)
    assert canceled.status_code == 200
    click.join(10)
    assert answers[0].status_code == 202, answers[0].get_json()
    live = answers[0].get_json()["job_id"]
    query = {"tenant_id": str(tenant.id)}
    history = (
        function_client("list-integration-jobs")
        .get("/", query_string=query, headers=bearer(tenant.member_token))
        .get_json()["jobs"]
    )
    cards = (
        function_client("list-integrations")
        .get("/", query_string=query, headers=bearer(tenant.member_token))
        .get_json()["integrations"]
    )
    assert [j["id"] for j in history] == [live, quick]
    assert (cards[0]["latest_job"]["id"], cards[0]["latest_job"]["status"]) == (live, "pending")


def test_a_cancel_answer_is_newer_than_the_heartbeat_it_follows(
    database_url: str, scripted: ScriptedProvider, recorder: RecordingDispatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A heartbeat committed while the cancel request checked its caller was newer than the
    cancel: the dashboard, keeping the newest copy, dropped the cancel."""
    scripted.pages, scripted.page_delay_s = 40, 0.05
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    body = {"tenant_id": str(tenant.id), "provider_slug": "scripted"}
    job_id = call("run-integration", body, token=tenant.admin_token).get_json()["job_id"]
    recorder.take()
    worker = threading.Thread(
        target=call, args=("process-integration-job", {"job_id": job_id}),
        kwargs={"token": service_token()},
    )  # fmt: skip
    worker.start()
    assert scripted.started.wait(10)
    real = store.get_job

    def get_job(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("lock"):
            time.sleep(0.3)  # the request's own statements; the worker heartbeats meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "get_job", get_job)
    answer = call("cancel-integration-job", {"job_id": job_id}, token=tenant.admin_token)
    monkeypatch.setattr(store, "get_job", real)
    worker.join(20)
    job = answer.get_json()
    assert answer.status_code == 200 and job["cancel_requested"] is True
    assert job["updated_at"] >= job["heartbeat_at"], job


def test_every_insert_is_stamped_with_its_own_time_by_the_columns_defaults(
    database_url: str,
) -> None:
    """The schedule tick's and the worker's own inserts write no stamps: the defaults do it,
    with the insert's time (migration 0068), as for a click's insert and a ledger row."""
    with psycopg.connect(database_url) as conn:
        defaults = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, column_default"
                " FROM information_schema.columns"
                " WHERE table_name IN ('integration_jobs', 'credit_ledger')"
                " AND column_name IN ('created_at', 'updated_at')"
            ).fetchall()
        )
    assert defaults == {
        "integration_jobs.created_at": "clock_timestamp()",
        "integration_jobs.updated_at": "clock_timestamp()",
        "credit_ledger.created_at": "clock_timestamp()",
    }
