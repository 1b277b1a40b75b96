"""A database restart or failover: the pool's idle connections die with it, and nothing a
request or a running job does afterwards may fail for that (a dead connection is replaced
before it is handed out)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg
import pytest
from pydantic import BaseModel

from shared import db
from shared.dispatch import RecordingDispatcher
from shared.providers import PROVIDERS
from shared.providers.base import SyncContext, SyncResult
from tests.providers_for_tests import AnyOptions, ScriptedProvider
from tests.support import call, lose_the_first_commit_answer, rows, seed_tenant, service_token

pytestmark = pytest.mark.db


def restart(database_url: str) -> int:
    """What a restart does to this database's connections (the server is back at once)."""
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchone()
    assert killed is not None
    return int(killed[0])


def _submitted(database_url: str, recorder: RecordingDispatcher) -> str:
    """A tenant's "Executar" of the scripted provider: the job's id (its task taken)."""
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    body = {"tenant_id": str(tenant.id), "provider_slug": "scripted"}
    job_id: str = call("run-integration", body, token=tenant.admin_token).get_json()["job_id"]
    recorder.take()
    return job_id


def _worker(job_id: str) -> tuple[threading.Thread, list[Any]]:
    """A worker delivered the job's task, in a thread not started yet; its answers."""
    answers: list[Any] = []
    worker = threading.Thread(
        target=lambda: answers.append(
            call("process-integration-job", {"job_id": job_id}, token=service_token())
        )
    )
    return worker, answers


def test_requests_after_a_restart_get_fresh_connections(
    database_url: str, recorder: RecordingDispatcher, configure: Any, monkeypatch: Any
) -> None:
    configure(DB_POOL_MIN="4")
    monkeypatch.setitem(PROVIDERS, "scripted", ScriptedProvider())
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    db.get_pool().wait()
    assert restart(database_url) >= 4
    body = {"tenant_id": str(tenant.id), "provider_slug": "scripted"}
    answer = call("run-integration", body, token=tenant.admin_token)
    assert answer.status_code == 202, answer.get_json()


@dataclass
class _Pausing:
    """Heartbeats once, then waits while the test restarts the database, then succeeds."""

    slug: str = "scripted"
    display_name: str = "Scripted"
    options: ClassVar[type[BaseModel]] = AnyOptions
    beat: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)
    runs: int = 0

    def sync(self, ctx: SyncContext) -> SyncResult:
        self.runs += 1
        ctx.progress(50)  # its connection goes back to the pool
        self.beat.set()
        self.go.wait(10)
        return SyncResult(records=10, pages=1)


def test_a_sync_that_ends_after_a_restart_is_recorded_once(
    database_url: str, recorder: RecordingDispatcher, monkeypatch: Any
) -> None:
    """The worker's last write used to draw a dead connection: a 500, the job left
    running until the sweep's rescue ran the whole sync again."""
    provider = _Pausing()
    monkeypatch.setitem(PROVIDERS, provider.slug, provider)
    job_id = _submitted(database_url, recorder)
    worker, answers = _worker(job_id)
    worker.start()
    assert provider.beat.wait(10)
    restart(database_url)
    provider.go.set()
    worker.join(30)
    assert answers[0].status_code == 200, answers[0].get_json()
    job = rows(database_url, "SELECT status, attempts FROM integration_jobs")[0]
    assert (job["status"], job["attempts"], provider.runs) == ("success", 1, 1)


def test_the_end_of_a_sync_whose_connection_is_killed_while_writing_it_is_still_written(
    database_url: str, recorder: RecordingDispatcher, monkeypatch: Any
) -> None:
    """The sync succeeded; the backend writing its end is terminated mid-statement. The job
    sat 'running' until the rescue, then ended 'error: timed out' (or ran the sync again)."""
    provider, go = ScriptedProvider(pages=0), threading.Event()
    real = provider.sync

    def sync(ctx: SyncContext) -> SyncResult:
        provider.started.set()
        go.wait(10)
        return real(ctx)

    monkeypatch.setattr(provider, "sync", sync)
    monkeypatch.setitem(PROVIDERS, "scripted", provider)
    job_id = _submitted(database_url, recorder)
    worker, answers = _worker(job_id)
    with psycopg.connect(database_url) as locker:
        worker.start()
        assert provider.started.wait(10)
        locker.execute("SELECT 1 FROM integration_jobs WHERE id = %s FOR UPDATE", [job_id])
        go.set()  # the sync returns; writing its end waits for the lock
        killed: list[Any] = []
        for _ in range(200):
            killed = rows(
                database_url,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                " AND application_name = 'syncq'",
            )
            if killed:
                break
            time.sleep(0.05)
        assert killed
        locker.rollback()
    worker.join(30)
    assert answers[0].status_code == 200, answers[0].get_json()
    [job] = rows(database_url, "SELECT status, lease_token FROM integration_jobs")
    assert (job["status"], job["lease_token"], provider.runs) == ("success", None, 1)


@pytest.mark.parametrize(("failures", "reported"), [(0, ["success"]), (1, ["pending", "success"])])
def test_an_end_whose_commit_answer_was_lost_is_reported_as_written(
    database_url: str, recorder: RecordingDispatcher, monkeypatch: Any,
    failures: int, reported: list[str],
) -> None:  # fmt: skip
    """The commit happened, the connection dropped before its answer: the next try found the
    lease gone and called the attempt 'lease_lost' (a retry then went without its wake-up)."""
    monkeypatch.setitem(PROVIDERS, "scripted", ScriptedProvider(pages=0, failures=failures))
    job_id = _submitted(database_url, recorder)
    lose_the_first_commit_answer(monkeypatch)
    answer = call("process-integration-job", {"job_id": job_id}, token=service_token())
    assert [p["status"] for p in answer.get_json()["processed"]] == reported
    [job] = rows(database_url, "SELECT status FROM integration_jobs")
    assert job["status"] == "success"
