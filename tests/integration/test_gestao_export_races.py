"""Export runs racing an admin (pause, reset), dying on every batch, or naming another tenant."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import pytest

from shared import db
from shared.errors import RemoteUnavailable
from shared.gestao import exports, runner
from shared.jobs import store as engine
from tests.integration.gestao_support import (
    Remote,
    drive,
    export,
    job_row,
    local_view,
    recorder,
    remote_view,
    run_once,
    seed_leads,
)
from tests.integration.test_gestao_export import Killed, setup, start
from tests.support import call, rows, service_token

pytest_plugins = ["tests.integration.gestao_fixtures"]
pytestmark = [pytest.mark.db, pytest.mark.slow]


def deliver_all() -> None:
    for task in recorder().take():
        call(task.function, task.body, token=service_token(), path=task.path or "/")


def test_a_pause_asked_during_the_last_batch_of_a_run_is_kept(
    database_url: str, tenant: Any, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Budget 0: the run sends its one batch and would hand over to a continuation; the
    # pause arrives while that batch is in flight, so the hand-over must become a pause.
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_BUDGET_S="0",
          GESTAO_SCOUTER_IN_FLIGHT="1")  # fmt: skip
    seed_leads(database_url, tenant.id, 1_000)
    job_id = start(tenant)
    recorder().take()
    real = runner.BatchRunner._post
    answers: list[Any] = []

    def post_while_an_admin_pauses(self: runner.BatchRunner, body: bytes) -> Any:
        admin = threading.Thread(target=lambda: answers.append(export(tenant, "pause")))
        admin.start()
        admin.join(10)
        return real(self, body)

    monkeypatch.setattr(runner.BatchRunner, "_post", post_while_an_admin_pauses)
    assert run_once(tenant.id, job_id).status_code == 200
    assert answers[0].get_json()["pause_requested"] is True
    monkeypatch.setattr(runner.BatchRunner, "_post", real)
    job = job_row(database_url, job_id)
    assert (job["status"], job["pause_requested"]) == ("paused", False)
    assert job["pause_reason"] == "paused by an admin" and job["exported_leads"] == 100
    posts = remote.state.stats()["by_path"]["/rest/v1/leads"]
    deliver_all()  # whatever was queued must not run a paused job
    assert remote.state.stats()["by_path"]["/rest/v1/leads"] == posts == 1
    assert job_row(database_url, job_id)["status"] == "paused"


def test_a_resume_while_the_runner_stops_for_a_pause_is_kept(
    database_url: str, tenant: Any, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The runner saw the pause at a checkpoint and stops; a resume answered before it lets
    go ("a pause not yet taken") must win, not be dropped with the job left paused."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_IN_FLIGHT="1")
    seed_leads(database_url, tenant.id, 1_000)
    job_id = start(tenant)
    recorder().take()
    real_post, real_checkpoint = runner.BatchRunner._post, runner.BatchRunner._checkpoint
    said: dict[str, Any] = {}

    def admin(action: str) -> None:  # another request, on its own connection
        thread = threading.Thread(target=lambda: said.__setitem__(action, export(tenant, action)))
        thread.start()
        thread.join(10)

    def post(self: runner.BatchRunner, body: bytes) -> Any:
        if "pause" not in said:
            admin("pause")  # while the first batch is out
        return real_post(self, body)

    def checkpoint(self: runner.BatchRunner, batch: Any, outcome: Any) -> Any:
        stop = real_checkpoint(self, batch, outcome)
        if stop is not None and "resume" not in said:
            admin("resume")  # the runner saw the pause; it has not let the job go yet
        return stop

    monkeypatch.setattr(runner.BatchRunner, "_post", post)
    monkeypatch.setattr(runner.BatchRunner, "_checkpoint", checkpoint)
    assert run_once(tenant.id, job_id).status_code == 200
    resumed = said["resume"].get_json()
    assert (resumed["status"], resumed["pause_requested"]) == ("running", False)
    held = job_row(database_url, job_id)
    assert (held["status"], held["pause_reason"]) == ("pending", None)
    monkeypatch.setattr(runner.BatchRunner, "_post", real_post)
    monkeypatch.setattr(runner.BatchRunner, "_checkpoint", real_checkpoint)
    job = drive(database_url, job_id)  # the continuation woken by the release
    assert (job["status"], job["exported_leads"]) == ("completed", 1_000)


def test_a_reset_while_running_waits_for_the_runner_then_starts_over(
    database_url: str, tenant: Any, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_IN_FLIGHT="3")
    seed_leads(database_url, tenant.id, 3_000)
    job_id = start(tenant)
    recorder().take()
    spans: list[tuple[Any, float, float]] = []  # (runner lease, sent, answered)
    lock = threading.Lock()
    five_sent, reset_asked = threading.Event(), threading.Event()
    real = runner.BatchRunner._post

    def timed_post(self: runner.BatchRunner, body: bytes) -> Any:
        with lock:
            first_runner = not spans or spans[0][0] == self.lease
            sent = time.monotonic()
            spans.append((self.lease, sent, 0.0))
            index = len(spans) - 1
        if first_runner and index >= 5:  # the first runner is mid-export when the reset comes
            five_sent.set()
            reset_asked.wait(10)
        try:
            return real(self, body)
        finally:
            with lock:
                spans[index] = (self.lease, sent, time.monotonic())

    monkeypatch.setattr(runner.BatchRunner, "_post", timed_post)
    first = threading.Thread(target=run_once, args=(tenant.id, job_id))
    first.start()
    assert five_sent.wait(30)
    reset = export(tenant, "reset", job_id=job_id).get_json()
    assert (reset["status"], reset["reset_requested"]) == ("running", True)
    deliver_all()  # a second runner woken now finds nothing to claim
    reset_asked.set()
    first.join(30)
    job = job_row(database_url, job_id)
    assert (job["status"], job["reset_requested"], job["exported_leads"]) == ("pending", False, 0)
    assert job["cursor_id"] is None and job["batches"] == 0
    runners = list(dict.fromkeys(r for r, _, _ in spans))
    assert len(runners) == 1  # nobody else posted while the first runner held the job

    job = drive(database_url, job_id)
    assert job["status"] == "completed" and job["exported_leads"] == 3_000
    assert remote_view(remote) == local_view(database_url)
    runners = list(dict.fromkeys(r for r, _, _ in spans))
    assert len(runners) >= 2
    last_of_first = max(end for r, _, end in spans if r == runners[0])
    assert all(sent >= last_of_first for r, sent, _ in spans if r != runners[0])


def test_a_pause_asked_after_a_reset_of_a_running_export_is_kept(
    database_url: str, tenant: Any, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """At rest, reset then pause leaves the export paused; while it runs, the same two
    clicks must too, not start it over and export everything."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_IN_FLIGHT="1")
    seed_leads(database_url, tenant.id, 1_000)
    job_id = start(tenant)
    recorder().take()
    real = runner.BatchRunner._post
    said: dict[str, Any] = {}

    def admin(action: str) -> None:  # another request, on its own connection
        def ask() -> None:
            said[action] = export(tenant, action, job_id=job_id)

        thread = threading.Thread(target=ask)
        thread.start()
        thread.join(10)

    def post(self: runner.BatchRunner, body: bytes) -> Any:
        if not said:  # while the first batch is out: reset, then pause
            admin("reset")
            admin("pause")
        return real(self, body)

    monkeypatch.setattr(runner.BatchRunner, "_post", post)
    assert run_once(tenant.id, job_id).status_code == 200
    monkeypatch.setattr(runner.BatchRunner, "_post", real)
    assert said["reset"].get_json()["reset_requested"] is True
    assert said["pause"].get_json()["pause_requested"] is True
    deliver_all()  # whatever the release woke must not run a paused job
    job = job_row(database_url, job_id)
    assert (job["status"], job["pause_reason"]) == ("paused", "paused by an admin")
    assert job["pause_code"] == "admin"
    assert (job["exported_leads"], job["batches"], job["cursor_id"]) == (0, 0, None)


def test_a_runner_that_dies_on_every_batch_ends_paused_not_restarted_forever(
    database_url: str, tenant: Any, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_STALE_AFTER_S="0.3",
          GESTAO_SCOUTER_MAX_FAILING_BATCHES="3")  # fmt: skip
    seed_leads(database_url, tenant.id, 500)

    def die(self: runner.BatchRunner, batch: Any, outcome: Any) -> None:
        raise Killed()  # e.g. the instance runs out of memory on this batch, every time

    real = runner.BatchRunner._checkpoint
    monkeypatch.setattr(runner.BatchRunner, "_checkpoint", die)
    job_id = start(tenant)
    job = drive(database_url, job_id, swallow=Killed, stale_wait_s=0.35, rounds=50)
    assert job["status"] == "paused", job
    assert "stopped without a word 3 times in a row" in job["pause_reason"]
    assert job["pause_code"] == "stalled"
    assert (job["attempts"], job["consecutive_failures"], job["exported_leads"]) == (3, 3, 0)
    assert rows(database_url, "SELECT lease_token FROM gestao_scouter_export_jobs") == [
        {"lease_token": None}
    ]

    monkeypatch.setattr(runner.BatchRunner, "_checkpoint", real)
    assert export(tenant, "resume", job_id=job_id).get_json()["status"] == "pending"
    job = drive(database_url, job_id)
    assert job["status"] == "completed" and job["exported_leads"] == 500


def test_a_run_naming_another_tenant_does_not_touch_the_job(
    database_url: str, tenant: Any, remote: Remote, configure: Any
) -> None:
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, tenant.id, 300)
    job_id = start(tenant)
    recorder().take()
    assert run_once(uuid.uuid4(), job_id).status_code == 404
    job = job_row(database_url, job_id)
    assert (job["status"], job["attempts"], job["exported_leads"]) == ("pending", 0, 0)
    assert remote.state.stats()["by_path"].get("/rest/v1/leads", 0) == 0


def test_the_next_page_is_read_while_a_batch_is_out(
    database_url: str, tenant: Any, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # One POST at a time: each waits until the reader has built the page after it, which
    # only happens if reading overlaps sending (a runner that reads after each answer and
    # checkpoint would time out here).
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_IN_FLIGHT="1")
    seed_leads(database_url, tenant.id, 450)
    job_id = start(tenant)
    recorder().take()
    real_read, real_post = runner.BatchRunner._read, runner.BatchRunner._post
    reads: list[threading.Event] = [threading.Event() for _ in range(10)]
    count = iter(range(10))
    overlapped: list[bool] = []

    def read(self: runner.BatchRunner, cursor: Any) -> Any:
        page = real_read(self, cursor)
        reads[next(count)].set()
        return page

    def post(self: runner.BatchRunner, body: bytes) -> Any:
        overlapped.append(reads[len(overlapped) + 1].wait(10))  # the page after this one
        return real_post(self, body)

    monkeypatch.setattr(runner.BatchRunner, "_read", read)
    monkeypatch.setattr(runner.BatchRunner, "_post", post)
    assert run_once(tenant.id, job_id).status_code == 200
    job = job_row(database_url, job_id)
    assert (job["status"], job["exported_leads"], job["batches"]) == ("completed", 450, 5)
    assert overlapped == [True] * 5  # the fifth batch waited for the empty sixth page
    assert remote_view(remote) == local_view(database_url)


def test_one_failed_batch_after_progress_is_counted_from_the_last_checkpoint(
    database_url: str, tenant: Any, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Two failed runs, then a run that exports and meets one blip: the blip is the first
    failure in a row (a backoff), not the third (a pause and an alert)."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_RETRIES="0",
          GESTAO_SCOUTER_MAX_FAILING_BATCHES="3", GESTAO_SCOUTER_IN_FLIGHT="1")  # fmt: skip
    seed_leads(database_url, tenant.id, 500)
    job_id = start(tenant)
    recorder().take()
    remote.state.knobs.update({"error_rate": 1.0})
    for _ in range(2):
        time.sleep(0.05)  # past the (tiny) backoff
        run_once(tenant.id, job_id)
    assert job_row(database_url, job_id)["consecutive_failures"] == 2
    remote.state.knobs.update({"error_rate": 0.0})
    real, posts = runner.BatchRunner._post, [0]

    def blip_on_the_third(self: runner.BatchRunner, body: bytes) -> Any:
        posts[0] += 1
        if posts[0] == 3:
            raise RemoteUnavailable("Gestão Scouter blip", upstream_status=503)
        return real(self, body)

    monkeypatch.setattr(runner.BatchRunner, "_post", blip_on_the_third)
    time.sleep(0.05)
    run_once(tenant.id, job_id)
    job = job_row(database_url, job_id)
    assert (job["status"], job["consecutive_failures"]) == ("pending", 1)
    assert job["exported_leads"] == 200
    assert rows(database_url, "SELECT * FROM alert_outbox") == []
    monkeypatch.setattr(runner.BatchRunner, "_post", real)
    assert drive(database_url, job_id)["status"] == "completed"


def test_a_reset_of_a_job_whose_runner_died_is_carried_out_by_the_sweep(
    database_url: str, tenant: Any, remote: Remote, configure: Any
) -> None:
    """The sweep rescues the silent runner's job, carries out the reset asked meanwhile and
    wakes the fresh run (it crashed on the reset's row: a 500, the rest of the sweep
    skipped, no wake-up)."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_STALE_AFTER_S="0.3")
    seed_leads(database_url, tenant.id, 300)
    job_id = start(tenant)
    recorder().take()
    with psycopg.connect(database_url, autocommit=True) as conn:  # a runner that then died
        conn.execute(
            "UPDATE gestao_scouter_export_jobs SET status = 'running', attempts = 1,"
            " lease_token = gen_random_uuid(), heartbeat_at = now(), started_at = now()"
            " WHERE id = %s",
            [job_id],
        )
    reset = export(tenant, "reset", job_id=job_id).get_json()
    assert (reset["status"], reset["reset_requested"]) == ("running", True)
    time.sleep(0.4)  # the runner is silent past the stale limit
    sweep = call("process-integration-job", {}, token=service_token())
    assert sweep.status_code == 200, sweep.get_json()
    job = job_row(database_url, job_id)
    assert (job["status"], job["reset_requested"], job["exported_leads"]) == ("pending", False, 0)
    woken = [t for t in recorder().take() if t.body.get("job_id") == job_id]
    assert woken, "the reset job's fresh run was never woken"
    assert drive(database_url, job_id)["exported_leads"] == 300


def test_an_export_paused_by_a_dropped_column_starts_over_with_the_mapping_saved_since(
    database_url: str, own_tenant: Any, own_remote: Remote, configure: Any
) -> None:
    """The job kept the mapping it was created with, and a reset kept it too: paused by a
    column the remote dropped for good, it could never finish, and as a live export it
    refused every new one (409)."""
    from shared.gestao.mapping import DEFAULT_MAPPING

    setup(configure, own_remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_BUDGET_S="0")
    seed_leads(database_url, own_tenant.id, 300)
    job_id = start(own_tenant)
    deliver_all()  # one batch out
    own_remote.sql("ALTER TABLE public.leads DROP COLUMN gender")  # dropped for good
    assert drive(database_url, job_id)["status"] == "paused"
    mapping = {k: v for k, v in DEFAULT_MAPPING.items() if k != "genero"}
    body = {"tenant_id": str(own_tenant.id), "field_mappings": mapping, "save": True}
    saved = call("validate-gestao-scouter-schema", body, token=own_tenant.admin_token)
    assert saved.status_code == 200 and saved.get_json()["saved"] is True
    assert export(own_tenant, "reset", job_id=job_id).status_code == 200
    job = drive(database_url, job_id)
    assert (job["status"], job["exported_leads"]) == ("completed", 300), job["pause_reason"]
    assert own_remote.sql("SELECT count(*) FROM public.leads")[0][0] == 300


def test_a_reset_while_a_runner_takes_the_pending_job_is_not_refused(
    database_url: str, tenant: Any, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The reset read the job pending; a runner woken meanwhile claimed it before the reset
    wrote: the reset must be asked of that runner (or carried out first), not answered 409
    "cannot be reset now" for a job that can be."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, tenant.id, 300)
    job_id = start(tenant)
    recorder().take()
    real_count = exports.count_leads
    claimed: list[Any] = []

    def claim_elsewhere() -> None:  # a continuation's wake-up, in another request
        with db.transaction() as conn:
            claimed.extend(engine.claim(conn, exports.TABLE, job_id=uuid.UUID(job_id)))

    def count_while_a_runner_claims(*args: Any) -> int:
        if not claimed:
            thread = threading.Thread(target=claim_elsewhere)
            thread.start()
            thread.join(10)
        return real_count(*args)

    monkeypatch.setattr(exports, "count_leads", count_while_a_runner_claims)
    reset = export(tenant, "reset", job_id=job_id)
    assert reset.status_code == 200, reset.get_json()
    monkeypatch.setattr(exports, "count_leads", real_count)
    if claimed:  # the runner got it first: the reset waits for it
        assert (reset.get_json()["status"], reset.get_json()["reset_requested"]) == (
            "running",
            True,
        )
        runner.run_claimed(claimed[0], time.monotonic() + 30)
    job = job_row(database_url, job_id)
    assert (job["status"], job["reset_requested"], job["batches"]) == ("pending", False, 0)
    assert drive(database_url, job_id)["exported_leads"] == 300
