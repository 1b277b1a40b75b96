"""Acceptance of the lead export against a real Postgres and the Gestão Scouter emulator."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from shared import db, secrets
from shared.gestao import exports, runner
from shared.gestao.batches import START, batch_statement, next_batch
from shared.gestao.mapping import DEFAULT_MAPPING
from shared.gestao.remote import RemoteAnswer, RemoteClient
from shared.jobs import store as engine
from tests.integration.gestao_support import (
    PROVIDER,
    Remote,
    drive,
    export,
    job_row,
    local_view,
    recorder,
    remote_view,
    run_once,
    secrets_env,
    seed_leads,
    sweep,
)
from tests.support import (
    TenantFixture,
    bearer,
    call,
    function_client,
    rows,
    seed_tenant,
    service_token,
)

pytest_plugins = ["tests.integration.gestao_fixtures"]
pytestmark = [pytest.mark.db, pytest.mark.slow]

FAST = {
    "GESTAO_SCOUTER_RETRY_BASE_S": "0.01",
    "GESTAO_SCOUTER_RETRY_CAP_S": "0.05",
    "GESTAO_SCOUTER_FAILURE_BACKOFF_S": "0.01",
    "GESTAO_SCOUTER_TIMEOUT_S": "5",
}


def setup(configure: Any, remote: Remote, **env: str) -> None:
    """The export against the emulated remote. A test that names a batch size gets batches of
    exactly that size (no adapting), unless it also names a maximum."""
    fixed = (
        {"GESTAO_SCOUTER_MAX_BATCH_SIZE": env["GESTAO_SCOUTER_BATCH_SIZE"]}
        if ("GESTAO_SCOUTER_BATCH_SIZE" in env)
        else {}
    )
    configure(**{**FAST, **secrets_env(remote.state.service_key), **fixed, **env})  # env wins


def start(tenant: TenantFixture, **body: Any) -> str:
    response = export(tenant, "start", **body)
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["id"])


def test_20k_leads_exported_exactly_through_continuations(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    # A budget spent at once: each run sends its one guaranteed batch and hands over.
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="500", GESTAO_SCOUTER_BUDGET_S="0")
    seed_leads(database_url, tenant.id, 20_000)
    job_id = start(tenant)
    job = drive(database_url, job_id)
    assert job["status"] == "completed", job
    assert (job["total_leads"], job["exported_leads"], job["error_leads"]) == (20_000, 20_000, 0)
    assert job["batches"] == 40 and job["attempts"] == 41  # 40 runs, then one to complete
    assert remote_view(remote) == local_view(database_url)
    assert remote.sql("SELECT DISTINCT sync_source FROM public.leads") == [("tabuladormax",)]
    status = export(tenant, "status").get_json()
    assert status["progress"] == 100 and status["recent_errors"] == []


def _card(tenant: TenantFixture) -> dict[str, Any]:
    """The Gestão Scouter integration as list-integrations shows it (its card)."""
    listed = function_client("list-integrations").get(
        "/", query_string={"tenant_id": str(tenant.id)}, headers=bearer(tenant.member_token)
    )
    [card] = [i for i in listed.get_json()["integrations"] if i["provider_slug"] == PROVIDER]
    return {k: card[k] for k in ("last_run", "last_status", "last_error")}


def test_an_export_that_ends_is_the_integrations_last_run(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    """The Gestão Scouter card said "Última execução —" after every export: only the
    queue's jobs wrote an integration's last run. A paused export has not ended."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, tenant.id, 300)
    assert _card(tenant) == {"last_run": None, "last_status": None, "last_error": None}
    job = drive(database_url, start(tenant))
    assert job["status"] == "completed"
    card = _card(tenant)
    assert (card["last_status"], card["last_error"]) == ("success", None)
    assert datetime.fromisoformat(card["last_run"]) == job["finished_at"]
    export(tenant, "reset", job_id=str(job["id"]))
    export(tenant, "pause", job_id=str(job["id"]))
    assert drive(database_url, str(job["id"]))["status"] == "paused"
    assert _card(tenant) == card  # paused, not ended: the last run stays the completed one


def test_an_export_that_fails_is_the_integrations_last_run_with_its_error(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, tenant.id, 100)
    job_id = start(tenant)
    for name in secrets_env(remote.state.service_key):  # the key is gone before it runs
        monkeypatch.delenv(name)
    secrets.reset_store()
    job = drive(database_url, job_id)
    assert job["status"] == "failed" and job["error_message"]
    card = _card(tenant)
    assert (card["last_status"], card["last_error"]) == ("error", job["error_message"])


def test_batch_body_is_utf8_bytes_whatever_the_client_encoding(
    database_url: str, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body is posted as the bytes Postgres built: they must be UTF-8 even where libpq
    would default to another client encoding (a snowman has no LATIN1 byte at all)."""
    monkeypatch.setenv("PGCLIENTENCODING", "LATIN1")
    db.close_pool()
    seed_leads(database_url, tenant.id, 3)
    params = {"tenant_id": tenant.id, "from_ts": None, "to_ts": None, "limit": 10}
    with db.transaction() as conn:
        assert conn.execute("SHOW client_encoding").fetchone() == {"client_encoding": "UTF8"}
        conn.execute("UPDATE leads SET name = 'Conceição ☃' WHERE tenant_id = %s", [tenant.id])
        batch = next_batch(conn, batch_statement(DEFAULT_MAPPING), params, START)
    assert isinstance(batch.body, bytes) and batch.size == 3
    sent = json.loads(batch.body.decode("utf-8"))
    assert [r["name"] for r in sent] == ["Conceição ☃"] * 3
    assert {r["sync_source"] for r in sent} == {"tabuladormax"}


class Killed(BaseException):
    """The runner's process dies (not an exception anything may catch)."""


def test_5xx_and_killed_runners_still_export_everything_once(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # The runner dies 12 times in a row at one batch: no backoff, so the test stays quick.
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="200", GESTAO_SCOUTER_STALE_AFTER_S="0.3",
          GESTAO_SCOUTER_MAX_FAILING_BATCHES="20", GESTAO_SCOUTER_FAILURE_BACKOFF_S="0")  # fmt: skip
    seed_leads(database_url, tenant.id, 6_000)
    remote.state.knobs.update({"error_rate": 0.2, "post_commit_error_rate": 0.15})
    kills = {"n": 0}
    real = runner.BatchRunner._checkpoint

    def checkpoint_or_die(self: runner.BatchRunner, batch: Any, outcome: Any) -> None:
        if self.batches % 4 == 3 and kills["n"] < 12:  # posted, not yet recorded: the worst time
            kills["n"] += 1
            raise Killed()
        real(self, batch, outcome)

    monkeypatch.setattr(runner.BatchRunner, "_checkpoint", checkpoint_or_die)
    job_id = start(tenant)
    job = drive(database_url, job_id, swallow=Killed, stale_wait_s=0.35, rounds=1000)
    assert job["status"] == "completed", job
    assert kills["n"] == 12
    assert remote.state.stats()["faults"].get("post_commit", 0) > 0
    assert sum(v for k, v in remote.state.stats()["faults"].items() if k.startswith("5")) > 0
    assert (job["exported_leads"], job["error_leads"]) == (6_000, 0)
    assert remote_view(remote) == local_view(database_url)


def test_bad_leads_are_isolated_and_the_rest_exported(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="500")
    seed_leads(database_url, tenant.id, 5_000)
    no_name = [17, 250, 251, 999, 1000, 1001, 2222, 3001, 3333, 3500, 4000, 4100, 4444, 4998, 5000]
    too_old = [1, 2, 3, 600, 1500, 2500, 3600, 4200, 4700, 4999]
    refused = [77, 1777, 2777, 3777, 4777]  # the remote answers 409 for these
    with __import__("psycopg").connect(database_url) as conn:
        conn.execute("UPDATE leads SET name = NULL WHERE id = ANY(%s)", [no_name])
        conn.execute("UPDATE leads SET age = 500 WHERE id = ANY(%s)", [too_old])
    remote.state.knobs.update({"reject_ids": refused, "reject_status": 409})
    job = drive(database_url, start(tenant))
    bad = sorted(no_name + too_old + refused)
    assert job["status"] == "completed", job
    assert (job["exported_leads"], job["error_leads"]) == (4_970, 30)
    errors = rows(database_url, "SELECT * FROM gestao_scouter_export_errors ORDER BY lead_id")
    assert [e["lead_id"] for e in errors] == bad
    by_id = {e["lead_id"]: e for e in errors}
    assert by_id[17]["response_status"] == 400 and by_id[17]["response_body"]["code"] == "23502"
    assert by_id[1]["response_body"]["code"] == "23514"
    assert by_id[77]["response_status"] == 409 and by_id[77]["response_body"]["code"] == "23505"
    for e in errors:
        assert e["lead_snapshot"]["id"] == e["lead_id"] and "email" in e["lead_snapshot"]
        assert e["fields_sent"]["id"] == e["lead_id"] and "phone" in e["fields_sent"]
        text = e["error_message"] + str(e["response_body"])
        assert "@example.com" not in text and e["lead_snapshot"]["celular"] not in text
    assert "[redacted]" in str(by_id[77]["response_body"]["details"])
    exported = {r[0] for r in remote.sql("SELECT id FROM public.leads")}
    assert exported == set(range(1, 5001)) - set(bad)
    good = " AND ".join(f"id <> {i}" for i in bad)
    assert remote_view(remote) == local_view(database_url, good)


def test_pause_resume_and_reset(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, tenant.id, 3_000)
    remote.state.knobs.update({"latency_ms": 25})
    job_id = start(tenant)
    recorder().take()
    # From its 7th batch on the run waits for the pause: however slow this thread is, the
    # pause cannot come after the last batch.
    real_post, posts, pause_asked = runner.BatchRunner._post, [0], threading.Event()
    lock = threading.Lock()

    def post_after_the_pause(self: runner.BatchRunner, body: bytes) -> Any:
        with lock:
            posts[0] += 1
            wait = posts[0] > 6
        if wait:
            pause_asked.wait(30)
        return real_post(self, body)

    monkeypatch.setattr(runner.BatchRunner, "_post", post_after_the_pause)
    body = {"tenant_id": str(tenant.id), "action": "run", "job_id": job_id}
    worker = threading.Thread(
        target=call,
        args=("export-to-gestao-scouter-batch", body),
        kwargs={"token": service_token()},
    )
    worker.start()
    deadline = time.monotonic() + 30
    while job_row(database_url, job_id)["exported_leads"] < 600 and time.monotonic() < deadline:
        time.sleep(0.02)
    paused = export(tenant, "pause", job_id=job_id).get_json()
    pause_asked.set()
    assert paused["pause_requested"] is True
    worker.join(30)
    monkeypatch.setattr(runner.BatchRunner, "_post", real_post)
    job = job_row(database_url, job_id)
    assert job["status"] == "paused" and job["pause_reason"] == "paused by an admin"
    assert job["pause_code"] == "admin"
    assert rows(database_url, "SELECT * FROM alert_outbox") == []  # an admin's pause: no alert
    done_at_pause = job["exported_leads"]
    assert 600 <= done_at_pause < 3_000
    requests = remote.state.stats()["by_path"]["/rest/v1/leads"]
    for task in recorder().take():  # stray wake-ups and the sweep must not run a paused job
        call(task.function, task.body, token=service_token())
    sweep()
    time.sleep(0.2)
    assert remote.state.stats()["by_path"]["/rest/v1/leads"] == requests
    assert job_row(database_url, job_id)["status"] == "paused"

    remote.state.knobs.update({"latency_ms": 0})
    assert export(tenant, "resume", job_id=job_id).get_json()["status"] == "pending"
    job = drive(database_url, job_id)
    assert job["status"] == "completed" and job["exported_leads"] == 3_000
    resumed = remote.state.stats()["by_path"]["/rest/v1/leads"] - requests
    assert resumed <= (3_000 - done_at_pause) // 100 + 3  # from the checkpoint, not the start
    assert remote_view(remote) == local_view(database_url)

    remote.sql("TRUNCATE public.leads")
    reset = export(tenant, "reset", job_id=job_id).get_json()
    assert (reset["status"], reset["exported_leads"], reset["error_leads"]) == ("pending", 0, 0)
    job = drive(database_url, job_id)
    assert job["status"] == "completed" and job["exported_leads"] == 3_000
    assert remote_view(remote) == local_view(database_url)


def test_date_range_and_conflicts(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="50")
    seed_leads(database_url, tenant.id, 600, first_day="2024-01-01", spread_days=60)
    assert export(tenant, "status").status_code == 404
    job_id = start(tenant, start_date="2024-01-10", end_date="2024-01-19")
    second = export(tenant, "start")
    assert second.status_code == 409
    assert second.get_json()["error"]["code"] == "export_already_active"
    assert second.get_json()["error"]["details"]["job_id"] == job_id
    run = call("export-to-gestao-scouter-batch",
               {"tenant_id": str(tenant.id), "action": "run", "job_id": job_id},
               token=tenant.admin_token)  # fmt: skip
    assert run.status_code == 403
    member = call("export-to-gestao-scouter-batch", {"tenant_id": str(tenant.id), "action": "status"},
                  token=tenant.member_token)  # fmt: skip
    assert member.status_code == 403
    job = drive(database_url, job_id)
    in_range = "criado >= '2024-01-10' AND criado < '2024-01-20'"
    expected = local_view(database_url, in_range)
    assert (
        job["status"] == "completed"
        and job["exported_leads"] == len(expected) == job["total_leads"]
    )
    assert remote_view(remote) == expected
    assert str(job["last_completed_date"]) == "2024-01-19"
    assert export(tenant, "pause", job_id=job_id).status_code == 409
    assert start(tenant) != job_id  # finished: a new export may start


def test_leads_created_at_one_moment_across_batches_are_each_sent_once(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    """The cursor is the page's last (criado, id): a page ending inside a run of leads
    created at the same moment goes on after its last id, not its first."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="3")
    seed_leads(database_url, tenant.id, 10)
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE leads SET criado = '2024-01-05 12:00:00+00'")
    job = drive(database_url, start(tenant))
    assert (job["status"], job["exported_leads"], job["batches"]) == ("completed", 10, 4)
    assert remote.state.stats()["by_path"]["/rest/v1/leads"] == 4
    assert remote_view(remote) == local_view(database_url)


def test_a_checkpoint_says_the_day_before_the_cursors_is_complete(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    """The cursor's own day may hold leads not yet sent: the last completed day is the one
    before it (a budget of 0: one batch per run)."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_BUDGET_S="0")
    seed_leads(database_url, tenant.id, 300)
    job_id = start(tenant)
    recorder().take()
    assert run_once(tenant.id, job_id).status_code == 200
    job = job_row(database_url, job_id)
    [last] = rows(
        database_url, "SELECT (criado AT TIME ZONE 'UTC')::date AS day FROM leads WHERE id = 100"
    )
    assert (job["status"], job["exported_leads"], job["cursor_id"]) == ("pending", 100, 100)
    assert job["processing_date"] == last["day"]
    assert job["last_completed_date"] == last["day"] - timedelta(days=1)


def test_a_completed_export_has_completed_its_range_up_to_its_end_date(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    """The range's last days hold no lead: completed, the export has still done them."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="50")
    seed_leads(database_url, tenant.id, 30, first_day="2024-01-01", spread_days=3)
    job = drive(database_url, start(tenant, start_date="2024-01-01", end_date="2024-01-31"))
    assert (job["status"], job["exported_leads"]) == ("completed", 30)
    assert str(job["processing_date"]) < "2024-01-05"
    assert str(job["last_completed_date"]) == "2024-01-31"


def test_two_runners_never_share_a_job(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, tenant.id, 1_000)
    remote.state.knobs.update({"latency_ms": 10})
    job_id = start(tenant)
    recorder().take()
    body = {"tenant_id": str(tenant.id), "action": "run", "job_id": job_id}
    answers: list[Any] = []

    def run() -> None:
        answers.append(call("export-to-gestao-scouter-batch", body, token=service_token()))

    workers = [threading.Thread(target=run) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert all(a.status_code == 200 for a in answers)
    job = job_row(database_url, job_id)
    assert job["status"] == "completed" and job["attempts"] == 1  # claimed once
    assert job["exported_leads"] == 1_000 and job["batches"] == 10
    assert remote.state.stats()["by_path"]["/rest/v1/leads"] == 10  # no batch sent twice


def paused_by_a_failing_remote(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> tuple[str, dict[str, Any]]:
    """An export of 300 leads in batches of 100 against a remote failing every request:
    paused after 3 failed batches in a row. Its id and row."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_RETRIES="1",
          GESTAO_SCOUTER_MAX_FAILING_BATCHES="3")  # fmt: skip
    seed_leads(database_url, tenant.id, 300)
    job_id = start(tenant)
    remote.state.knobs.update({"error_rate": 1.0})
    return job_id, drive(database_url, job_id)


def test_failing_batches_pause_the_job_with_the_reason(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    job_id, job = paused_by_a_failing_remote(database_url, tenant, remote, configure)
    assert job["status"] == "paused" and job["consecutive_failures"] == 3
    assert job["pause_reason"].startswith("3 batches in a row failed; last: Gestão Scouter kept")
    assert job["pause_code"] == "failing"
    assert job["exported_leads"] == 0 and job["attempts"] == 3
    # The export paused itself: one alert, written with the pause, saying why.
    [alert] = rows(database_url, "SELECT * FROM alert_outbox")
    assert (alert["event"], str(alert["job_id"])) == ("export_paused", str(job_id))
    assert alert["detail"].startswith("3 batches in a row failed")
    assert alert["pause_code"] == "failing"  # said by code: a client need not parse the text
    shown = export(tenant, "status", job_id=job_id).get_json()
    assert (shown["pause_code"], shown["consecutive_failures"]) == ("failing", 3)
    listed = function_client("integration-alerts").get(
        "/", query_string={"tenant_id": str(tenant.id)}, headers=bearer(tenant.admin_token)
    )
    assert [(a["event"], a["pause_code"]) for a in listed.get_json()["recent"]] == [
        ("export_paused", "failing")
    ]

    remote.state.knobs.update({"error_rate": 0.0})
    configure(**secrets_env(remote.state.anon_key), GESTAO_SCOUTER_BATCH_SIZE="100")
    export(tenant, "resume", job_id=job_id)
    job = drive(database_url, job_id)
    assert job["status"] == "paused" and "refused the key (HTTP 401" in job["pause_reason"]
    assert remote.state.anon_key not in job["pause_reason"] and job["pause_code"] == "key"
    events = rows(
        database_url, "SELECT event, detail, pause_code FROM alert_outbox ORDER BY created_at"
    )
    assert [(e["event"], e["pause_code"]) for e in events] == [
        ("export_paused", "failing"),
        ("export_paused", "key"),
    ]
    assert remote.state.anon_key not in events[1]["detail"]

    configure(**secrets_env(remote.state.service_key), GESTAO_SCOUTER_BATCH_SIZE="100")
    export(tenant, "resume", job_id=job_id)
    job = drive(database_url, job_id)
    assert job["status"] == "completed" and job["exported_leads"] == 300
    assert job["consecutive_failures"] == 0 and job["pause_reason"] is None
    assert job["pause_code"] is None


def test_a_resumed_export_gets_its_full_run_of_failed_batches_again(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    """Resume starts the failure count over: a remote still failing after a resume pauses
    the export after the same number of batches in a row, not at the first one."""
    job_id, job = paused_by_a_failing_remote(database_url, tenant, remote, configure)
    assert (job["status"], job["consecutive_failures"], job["attempts"]) == ("paused", 3, 3)

    assert export(tenant, "resume", job_id=job_id).status_code == 200
    job = drive(database_url, job_id)
    assert (job["status"], job["consecutive_failures"], job["attempts"]) == ("paused", 3, 6)
    assert job["pause_reason"].startswith("3 batches in a row failed")


def test_lead_dates_the_export_cannot_carry_are_refused_and_the_edges_export(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    # Counted but never sent (the cursor starts at year 1 and is read back into Python):
    # such dates cannot be stored at all; the representable edges export like any other.
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="2")
    insert = (
        "INSERT INTO leads (tenant_id, id, name, criado, updated_at) VALUES (%s, %s, 'x', %s, %s)"
    )
    ok = "2024-01-01 00:00:00+00"
    bad = ["-infinity", "infinity", "0001-01-01 00:00:00+00", "0500-06-01 00:00:00+00 BC",
           "9999-12-31 00:00:00+00", "12000-01-01 00:00:00+00"]  # fmt: skip
    with psycopg.connect(database_url, autocommit=True) as conn:
        for i, value in enumerate(bad):
            for criado, updated_at in ((value, ok), (ok, value)):
                with pytest.raises(psycopg.errors.CheckViolation):
                    conn.execute(insert, (tenant.id, i, criado, updated_at))
        edges = ["0001-01-02 00:00:00+00", "9999-12-30 23:59:59+00", ok]
        for i, value in enumerate(edges, start=100):
            conn.execute(insert, (tenant.id, i, value, value))
    assert rows(database_url, "SELECT count(*) AS n FROM leads")[0]["n"] == 3
    job = drive(database_url, start(tenant))
    assert (job["status"], job["total_leads"], job["exported_leads"]) == ("completed", 3, 3)
    assert remote_view(remote) == local_view(database_url)


def test_the_batch_size_adapts_to_a_body_limit_and_exports_everything(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    """From the default start the batches grow while the remote answers fast; a proxy's body
    limit (413) halves them, the refused batch is split and sent, and later batches stay
    under the size that was refused. Nothing is lost or counted as an error."""
    configure(**{**FAST, **secrets_env(remote.state.service_key)},
              GESTAO_SCOUTER_BATCH_SIZE="200", GESTAO_SCOUTER_MAX_BATCH_SIZE="5000")  # fmt: skip
    seed_leads(database_url, tenant.id, 6_000)
    remote.state.knobs.update({"max_body_bytes": 400_000})
    job = drive(database_url, start(tenant))
    assert job["status"] == "completed"
    assert (job["exported_leads"], job["error_leads"]) == (6_000, 0)
    assert remote_view(remote) == local_view(database_url)
    refused = remote.state.stats()["faults"].get("body_too_large", 0)
    # It learns the limit instead of hitting it on every batch: the refusals are the first
    # oversized batch and those already read ahead at that size (IN_FLIGHT in flight).
    assert 1 <= refused <= 5
    assert 200 < job["batch_size"] < 1_000  # grew from the start, kept under the limit


def slow_remote(remote: Remote, rows_in_time: int) -> None:
    """A remote whose statement_timeout cancels any upsert of more than `rows_in_time` rows
    (PostgREST answers HTTP 500 with SQLSTATE 57014)."""
    remote.sql(f"""
CREATE FUNCTION public.slow_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n int;
BEGIN
  n := coalesce(nullif(current_setting('x.n', true), ''), '0')::int + 1;
  PERFORM set_config('x.n', n::text, true);
  IF n > {int(rows_in_time)} THEN
    RAISE EXCEPTION 'canceling statement due to statement timeout' USING ERRCODE = '57014';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER slow_rows BEFORE INSERT ON public.leads
  FOR EACH ROW EXECUTE FUNCTION public.slow_rows();""")


def test_a_statement_timeout_on_the_remote_shrinks_the_batches_and_exports_everything(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    """PostgREST answers a statement its statement_timeout cancelled with HTTP 500 and
    SQLSTATE 57014: the batch was too big, not the remote down. It is split like a 413
    (it was retried at the same size until the export paused, every resume again)."""
    slow_remote(own_remote, 40)
    setup(configure, own_remote, GESTAO_SCOUTER_BATCH_SIZE="100",
          GESTAO_SCOUTER_MAX_BATCH_SIZE="100", GESTAO_SCOUTER_MAX_FAILING_BATCHES="3")  # fmt: skip
    seed_leads(database_url, own_tenant.id, 300)
    job = drive(database_url, start(own_tenant))
    assert job["status"] == "completed", job["pause_reason"]
    assert (job["exported_leads"], job["error_leads"]) == (300, 0)
    assert job["batch_size"] <= 40
    assert remote_view(own_remote) == local_view(database_url)


def test_a_remote_that_times_out_even_on_one_lead_pauses_the_export_not_the_leads(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    """When even one lead times out the remote is slow for all, not refusing that lead: the
    batch fails (backoff, then a pause with the reason), no lead is marked as an error."""
    slow_remote(own_remote, 0)
    setup(configure, own_remote, GESTAO_SCOUTER_BATCH_SIZE="50",
          GESTAO_SCOUTER_MAX_FAILING_BATCHES="3")  # fmt: skip
    seed_leads(database_url, own_tenant.id, 100)
    job = drive(database_url, start(own_tenant))
    assert (job["status"], job["exported_leads"], job["error_leads"]) == ("paused", 0, 0)
    assert "timed out even on a single lead" in job["pause_reason"]


def test_a_lead_the_remote_refuses_with_a_500_is_isolated_and_the_rest_exported(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    """PostgREST answers some row-level refusals with HTTP 500 (class 54 here: one lead's
    name too long for an index entry). Retried as an outage, it paused the export for good,
    the leads after it held back on every resume."""
    setup(configure, own_remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    own_remote.sql("CREATE INDEX leads_name_idx ON public.leads (name)")
    seed_leads(database_url, own_tenant.id, 500)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE leads SET name = (SELECT string_agg(md5(g::text || random()::text), '')"
            " FROM generate_series(1, 200) AS g) WHERE id = 150"
        )
    job = drive(database_url, start(own_tenant))
    assert (job["status"], job["exported_leads"], job["error_leads"]) == ("completed", 499, 1)
    [error] = rows(database_url, "SELECT * FROM gestao_scouter_export_errors")
    assert error["lead_id"] == 150 and error["response_status"] == 500
    assert error["response_body"]["code"] == "54000"
    exported = {r[0] for r in own_remote.sql("SELECT id FROM public.leads")}
    assert exported == set(range(1, 501)) - {150}


def refusing_remote(remote: Remote, lead_id: int, raise_it: str) -> None:
    """A remote whose trigger refuses one lead with the PostgREST status it chooses."""
    remote.sql(f"""
CREATE FUNCTION public.check_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id = {int(lead_id)} THEN {raise_it}; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER check_lead BEFORE INSERT ON public.leads
  FOR EACH ROW EXECUTE FUNCTION public.check_lead();""")


@pytest.mark.parametrize("refusal", [
    ("RAISE EXCEPTION 'lead refused' USING ERRCODE = 'PT400'", 400, "PT400"),
    ("RAISE EXCEPTION 'lead refused' USING ERRCODE = 'PT422'", 422, "PT422"),
    ("""RAISE SQLSTATE 'PGRST' USING message = '{"code":"L001","message":"bad lead"}',
                                     detail = '{"status":422,"headers":{}}'""", 422, "L001"),
])  # fmt: skip
def test_a_lead_a_remote_trigger_refuses_with_a_status_of_its_own_is_isolated(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote, configure: Any,
    refusal: tuple[str, int, str],
) -> None:  # fmt: skip
    """PostgREST lets a trigger refuse a row with the HTTP status and code it chooses
    (`PTxxx`, or `RAISE SQLSTATE 'PGRST'`): a refusal of that lead, not of the export
    (which paused, the leads after it held back on every resume)."""
    raise_it, status, code = refusal
    refusing_remote(own_remote, 150, raise_it)
    setup(configure, own_remote, GESTAO_SCOUTER_BATCH_SIZE="100",
          GESTAO_SCOUTER_MAX_BATCH_SIZE="100")  # fmt: skip
    seed_leads(database_url, own_tenant.id, 300)
    job = drive(database_url, start(own_tenant))
    assert (job["status"], job["exported_leads"], job["error_leads"]) == ("completed", 299, 1), job[
        "pause_reason"
    ]
    [error] = rows(database_url, "SELECT * FROM gestao_scouter_export_errors")
    assert (error["lead_id"], error["response_status"]) == (150, status)
    assert error["response_body"]["code"] == code


def test_a_4xx_refusing_the_statement_pauses_the_export_instead_of_failing_every_lead(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    """PostgREST answers 400 for any code it does not map: here 0A000, a rule on the remote
    table that an upsert cannot go through. Split down to single leads, each was refused
    and the export "completed" with every lead an error."""
    own_remote.sql(
        "CREATE TABLE public.audit (id bigint);"
        " CREATE RULE audit AS ON UPDATE TO public.leads DO ALSO"
        " INSERT INTO public.audit VALUES (NEW.id);"
    )
    setup(configure, own_remote, GESTAO_SCOUTER_BATCH_SIZE="100",
          GESTAO_SCOUTER_MAX_BATCH_SIZE="100")  # fmt: skip
    seed_leads(database_url, own_tenant.id, 300)
    job = drive(database_url, start(own_tenant))
    assert (job["status"], job["error_leads"]) == ("paused", 0), job["pause_reason"]
    assert "0A000" in job["pause_reason"] and job["pause_code"] == "refused"
    assert rows(database_url, "SELECT count(*) AS n FROM gestao_scouter_export_errors") == [
        {"n": 0}
    ]


@pytest.mark.parametrize("case", [
    (RemoteAnswer(401, {"message": "JWT invalid\x00"}, ""), "paused"),  # the pause reason
    (RemoteAnswer(400, {"code": "23502", "message": "null value\x00"}, ""), "completed"),  # a row
])  # fmt: skip
def test_a_remote_message_holding_a_nul_is_stored_without_it(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any, *,
    monkeypatch: pytest.MonkeyPatch, case: tuple[RemoteAnswer, str],
) -> None:  # fmt: skip
    """jsonb holds no NUL: the runner crashed storing the remote's words, and the export
    paused as an internal error, the real reason lost (a bad lead stopped it all)."""
    answer, expected = case
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="1")
    seed_leads(database_url, tenant.id, 1)
    job_id = start(tenant)
    monkeypatch.setattr(RemoteClient, "upsert", lambda self, *a, **k: answer)
    job = drive(database_url, job_id)
    assert job["status"] == expected, (job["status"], job["pause_reason"])
    assert "Internal error" not in (job["pause_reason"] or "")


def test_a_trigger_that_fails_on_some_rows_has_them_isolated(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    """A trigger ending without RETURN on odd ids (2F005, PostgREST's default 400) fails
    those rows, not the statement: they are set aside, the rest exported."""
    own_remote.sql(
        "CREATE FUNCTION public.picky() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF NEW.id % 2 = 0 THEN RETURN NEW; END IF; END $$;"
        " CREATE TRIGGER picky BEFORE INSERT OR UPDATE ON public.leads"
        " FOR EACH ROW EXECUTE FUNCTION public.picky();"
    )
    setup(configure, own_remote, GESTAO_SCOUTER_BATCH_SIZE="10")
    seed_leads(database_url, own_tenant.id, 10)
    job = drive(database_url, start(own_tenant))
    assert (job["status"], job["error_leads"]) == ("completed", 5), job["pause_reason"]


def test_a_4xx_without_a_code_is_no_row_refusal(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any, *,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A gateway before PostgREST answering {"message": "Bad Request"}: its code was read as
    the text "None", a code of the remote's own, and every lead became an error."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="4")
    seed_leads(database_url, tenant.id, 4)
    job_id = start(tenant)
    answer = RemoteAnswer(400, {"message": "Bad Request"}, "")
    monkeypatch.setattr(RemoteClient, "upsert", lambda self, *a, **k: answer)
    job = drive(database_url, job_id)
    assert (job["status"], job["error_leads"]) == ("paused", 0), job["pause_reason"]


def test_the_runners_retry_lines_carry_the_job_and_tenant_labels(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any,
    logs: Callable[[], str],
) -> None:  # fmt: skip
    """The POSTs go out from a thread pool, whose threads started without the labels."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_RETRIES="1",
          GESTAO_SCOUTER_MAX_FAILING_BATCHES="1")  # fmt: skip
    seed_leads(database_url, tenant.id, 100)
    job_id = start(tenant)
    remote.state.knobs.update({"error_rate": 1.0})
    assert drive(database_url, job_id)["status"] == "paused"
    lines = [json.loads(line) for line in logs().splitlines()]
    retries = [line for line in lines if line["message"] == "upstream request retry"]
    assert retries
    for line in retries:
        labels = line["logging.googleapis.com/labels"]
        assert (labels["job_id"], labels["tenant_id"]) == (job_id, str(tenant.id))


def test_the_history_lists_the_tenants_exports_newest_first(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, tenant.id, 300)
    first = start(tenant)
    assert drive(database_url, first)["status"] == "completed"
    second = start(tenant, start_date="2024-01-01", end_date="2024-01-31")
    assert drive(database_url, second)["status"] == "completed"
    other = seed_tenant(database_url, "globex", providers={"gestao-scouter": {}})
    client = function_client("export-to-gestao-scouter-batch")

    def history(token: str, **query: Any) -> Any:
        return client.get("/", query_string={"tenant_id": str(tenant.id), **query},
                          headers=bearer(token))  # fmt: skip

    listed = history(tenant.admin_token)
    assert listed.status_code == 200, listed.get_json()
    jobs = listed.get_json()["jobs"]
    assert [j["id"] for j in jobs] == [second, first]
    assert [(j["status"], j["progress"], j["start_date"]) for j in jobs] == [
        ("completed", 100, "2024-01-01"), ("completed", 100, None),
    ]  # fmt: skip
    assert jobs[1]["exported_leads"] == 300 and "lease_token" not in jobs[1]
    assert [j["id"] for j in history(tenant.admin_token, limit="1").get_json()["jobs"]] == [second]
    assert history(tenant.member_token).status_code == 403
    assert history(other.admin_token).status_code == 403  # another tenant's admin
    for bad in ("0", "101", "x"):
        answer = history(tenant.admin_token, limit=bad)
        assert (
            answer.status_code == 422 and answer.get_json()["error"]["code"] == "validation_error"
        )


# A remote trigger that drops every tenth new lead without a word (RETURN NULL).
SKIP_EVERY_TENTH = (
    "CREATE FUNCTION public.skip_some() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN IF NEW.id % 10 = 0 THEN RETURN NULL; END IF; RETURN NEW; END $$;"
    " CREATE TRIGGER skip_some BEFORE INSERT ON public.leads"
    " FOR EACH ROW EXECUTE FUNCTION public.skip_some();"
)


def test_rows_a_remote_trigger_discards_are_errors_not_exported(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    """A BEFORE trigger returning NULL drops a row without a word: the export counted 300
    exported for 270 rows in the remote. It asks the remote to count what it wrote."""
    own_remote.sql(SKIP_EVERY_TENTH)
    setup(configure, own_remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, own_tenant.id, 300)
    job = drive(database_url, start(own_tenant))
    assert own_remote.sql("SELECT count(*) FROM public.leads")[0][0] == 270
    assert (job["status"], job["exported_leads"], job["error_leads"]) == ("completed", 270, 30)
    errors = rows(database_url, "SELECT lead_id, error_message FROM gestao_scouter_export_errors")
    assert len(errors) == 30 and all(e["lead_id"] % 10 == 0 for e in errors)
    assert "discarded" in errors[0]["error_message"]


SUPPRESS = (
    "CREATE TRIGGER z_min_update BEFORE UPDATE ON public.leads"
    " FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();"
)


def test_a_second_export_of_unchanged_leads_is_exported_not_errors(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    """A remote that skips unchanged updates counts 0 rows for them: that count alone made
    every lead of a second export an error (found by the diff review of 97c6ee7)."""
    own_remote.sql(SUPPRESS)
    setup(configure, own_remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, own_tenant.id, 300)
    first = drive(database_url, start(own_tenant))
    assert (first["status"], first["exported_leads"], first["error_leads"]) == ("completed", 300, 0)
    again = drive(database_url, start(own_tenant))
    assert (again["status"], again["exported_leads"], again["error_leads"]) == ("completed", 300, 0)


def test_discarded_rows_are_told_from_unchanged_ones(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    own_remote.sql(SKIP_EVERY_TENTH + SUPPRESS)
    setup(configure, own_remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, own_tenant.id, 300)
    first = drive(database_url, start(own_tenant))
    again = drive(database_url, start(own_tenant))  # the 270 unchanged, the 30 discarded again
    assert own_remote.sql("SELECT count(*) FROM public.leads")[0][0] == 270
    for job in (first, again):
        assert (job["exported_leads"], job["error_leads"]) == (270, 30)


# A remote guard that refuses to overwrite every tenth lead it holds (RETURN NULL on UPDATE).
GUARD_EVERY_TENTH = (
    "CREATE FUNCTION public.guard_some() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN IF NEW.id % 10 = 0 THEN RETURN NULL; END IF; RETURN NEW; END $$;"
    " CREATE TRIGGER guard_some BEFORE UPDATE ON public.leads"
    " FOR EACH ROW EXECUTE FUNCTION public.guard_some();"
)


def test_updates_a_remote_trigger_vetoes_are_errors_not_exported(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    """A BEFORE UPDATE trigger returning NULL keeps the remote's copy: the lead was there, so
    the export counted it exported although the remote never took the edit. The leads the
    remote holds unchanged (suppressed: the first 150 were not edited) still count."""
    own_remote.sql(GUARD_EVERY_TENTH + SUPPRESS)
    setup(configure, own_remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, own_tenant.id, 300)
    first = drive(database_url, start(own_tenant))
    assert (first["exported_leads"], first["error_leads"]) == (300, 0)  # inserts: no veto
    edited = "id IN (SELECT id FROM leads ORDER BY id OFFSET 150)"
    rows(database_url, f"UPDATE leads SET name = name || ' (edited)' WHERE {edited} RETURNING id")
    again = drive(database_url, start(own_tenant))
    assert (again["status"], again["exported_leads"], again["error_leads"]) == (
        "completed", 285, 15,
    )  # fmt: skip
    errors = rows(database_url, "SELECT lead_id, error_message, lead_snapshot"
                  " FROM gestao_scouter_export_errors WHERE job_id = %s ORDER BY lead_id",
                  again["id"])  # fmt: skip
    vetoed = [r[0] for r in local_view(database_url, edited) if r[0] % 10 == 0]
    assert [e["lead_id"] for e in errors] == vetoed and len(vetoed) == 15
    assert all("refused" in e["error_message"] for e in errors)
    assert all(e["lead_snapshot"]["name"].endswith(" (edited)") for e in errors)
    held = dict(own_remote.sql("SELECT id, name FROM public.leads"))
    assert [i for i in vetoed if held[i].endswith(" (edited)")] == []  # the remote kept its own


def test_leads_a_remote_trigger_rewrites_are_not_taken_for_vetoed_ones(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    """A remote that stamps its own updated_at on every update (Supabase's moddatetime) holds
    written leads in another copy than sent: in a batch whose count a veto cut short, only
    the vetoed leads are errors."""
    own_remote.sql(
        GUARD_EVERY_TENTH + " CREATE FUNCTION public.stamp() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END $$;"
        " CREATE TRIGGER a_stamp BEFORE UPDATE ON public.leads"
        " FOR EACH ROW EXECUTE FUNCTION public.stamp();"
    )
    setup(configure, own_remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, own_tenant.id, 300)
    assert drive(database_url, start(own_tenant))["exported_leads"] == 300
    rows(database_url, "UPDATE leads SET name = name || ' (edited)' RETURNING id")
    again = drive(database_url, start(own_tenant))  # every lead an update: a tenth vetoed
    assert (again["exported_leads"], again["error_leads"]) == (270, 30)
    errors = rows(database_url, "SELECT lead_id FROM gestao_scouter_export_errors"
                  " WHERE job_id = %s", again["id"])  # fmt: skip
    assert len(errors) == 30 and all(e["lead_id"] % 10 == 0 for e in errors)


def test_a_resend_of_vetoed_leads_the_remote_refuses_is_split_to_find_them(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote, configure: Any
) -> None:
    """The leads a count cut short are sent again; a remote refusing that resend for a row's
    data (a guard that vetoes an edit once, then raises) has it split like any batch: the
    raising leads are errors with the remote's own word, the others exported."""
    own_remote.sql(
        "CREATE TABLE public.vetoed (id bigint PRIMARY KEY);"
        " CREATE FUNCTION public.guard_once() RETURNS trigger LANGUAGE plpgsql"
        " SECURITY DEFINER AS $$"
        " BEGIN IF NEW.id % 10 <> 0 THEN RETURN NEW; END IF;"
        " IF EXISTS (SELECT 1 FROM public.vetoed WHERE id = NEW.id) THEN"
        "  RAISE EXCEPTION 'lead % is locked here', NEW.id; END IF;"
        " INSERT INTO public.vetoed VALUES (NEW.id); RETURN NULL; END $$;"
        " CREATE TRIGGER guard_once BEFORE UPDATE ON public.leads"
        " FOR EACH ROW EXECUTE FUNCTION public.guard_once();"
    )
    setup(configure, own_remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, own_tenant.id, 300)
    assert drive(database_url, start(own_tenant))["exported_leads"] == 300
    rows(database_url, "UPDATE leads SET name = name || ' (edited)' RETURNING id")
    again = drive(database_url, start(own_tenant))
    assert (again["status"], again["exported_leads"], again["error_leads"]) == (
        "completed", 270, 30,
    )  # fmt: skip
    errors = rows(database_url, "SELECT lead_id, error_message FROM gestao_scouter_export_errors"
                  " WHERE job_id = %s", again["id"])  # fmt: skip
    assert len(errors) == 30 and all(e["lead_id"] % 10 == 0 for e in errors)
    assert all(f"lead {e['lead_id']} is locked here" in e["error_message"] for e in errors)


def _job_lines(logs: Callable[[], str], job_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in logs().splitlines() if line.startswith("{")]
    return [e for e in lines if e.get("logging.googleapis.com/labels", {}).get("job_id") == job_id]


def test_an_export_that_stops_itself_logs_an_error_with_its_code_and_reason(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any,
    logs: Callable[[], str],
) -> None:  # fmt: skip
    """As a queue job's final failure does: an export that pauses itself (failing batches,
    or the remote refusing the key) logged its end at INFO ("export released", no reason),
    and its failing batches' lines held no code."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_RETRIES="1",
          GESTAO_SCOUTER_MAX_FAILING_BATCHES="2")  # fmt: skip
    seed_leads(database_url, tenant.id, 100)
    job_id = start(tenant)
    remote.state.knobs.update({"error_rate": 1.0})
    assert drive(database_url, job_id)["status"] == "paused"
    ours = _job_lines(logs, job_id)
    [retry] = [e for e in ours if e["message"] == "export batch failed, retry scheduled"]
    assert retry["severity"] == "WARNING" and retry["code"] and retry["reason"]
    [final] = [e for e in ours if e["severity"] == "ERROR"]
    assert final["code"] and final["reason"].startswith("2 batches in a row failed")

    remote.state.knobs.update({"error_rate": 0.0})
    configure(**secrets_env(remote.state.anon_key), GESTAO_SCOUTER_BATCH_SIZE="100")
    before = len(_job_lines(logs, job_id))
    export(tenant, "resume", job_id=job_id)
    assert drive(database_url, job_id)["status"] == "paused"
    [refused] = [e for e in _job_lines(logs, job_id)[before:] if e["severity"] == "ERROR"]
    assert (refused["code"], refused["reason"]) == (
        "remote_key_refused",
        "Gestão Scouter refused the export (HTTP 401, 42501)",
    )
    assert refused["logging.googleapis.com/labels"]["tenant_id"] == str(tenant.id)
    assert remote.state.anon_key not in logs()


def test_a_runner_whose_export_was_taken_from_it_says_so_at_warning(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any,
    logs: Callable[[], str],
) -> None:  # fmt: skip
    """As a queue job's and an alert's runner do: a lost lease means the runner went silent
    past its stale limit and its job was handed to another (INFO hid it among the routine)."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100")
    seed_leads(database_url, tenant.id, 100)
    job_id = start(tenant)
    with db.transaction() as conn:
        [claimed] = engine.claim(conn, exports.TABLE, job_id=job_id)
    with psycopg.connect(database_url) as conn:  # rescued and claimed by another runner
        conn.execute(
            "UPDATE gestao_scouter_export_jobs SET lease_token = gen_random_uuid() WHERE id = %s",
            [job_id],
        )
    assert runner.run_claimed(claimed, time.monotonic() + 30) is None
    job = job_row(database_url, job_id)
    assert job["lease_token"] != claimed["lease_token"] and job["exported_leads"] == 0
    [lost] = [e for e in _job_lines(logs, job_id) if "lease lost" in e["message"]]
    assert lost["severity"] == "WARNING"


def test_an_export_sends_its_own_tenants_leads_and_no_other_tenants(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="20")
    other = seed_tenant(database_url, "globex")
    seed_leads(database_url, other.id, 70)
    seed_leads(database_url, tenant.id, 30)
    job = drive(database_url, start(tenant))
    assert job["status"] == "completed", job
    assert (job["total_leads"], job["exported_leads"], job["error_leads"]) == (30, 30, 0)
    assert remote_view(remote) == local_view(database_url, f"tenant_id = '{tenant.id}'")
