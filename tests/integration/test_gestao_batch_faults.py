"""The export's adaptive batch size against faults: a lead bigger than the body limit, a
timed-out batch while others are in flight, a reset asked while a run adapts."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from shared.errors import RemoteUnavailable
from shared.gestao import runner
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
from tests.integration.test_gestao_export import setup, start
from tests.support import TenantFixture, rows

pytest_plugins = ["tests.integration.gestao_fixtures"]
pytestmark = [pytest.mark.db, pytest.mark.slow]


def test_a_lead_bigger_than_the_body_limit_is_an_error_row_and_the_rest_exported(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="50", GESTAO_SCOUTER_MAX_BATCH_SIZE="400")
    _export_with_one_lead_too_big(database_url, tenant, remote, lead_id=120)
    assert remote_view(remote) == local_view(database_url, "id <> 120")


def _export_with_one_lead_too_big(
    database_url: str, tenant: TenantFixture, remote: Remote, *, lead_id: int
) -> dict[str, Any]:
    """300 leads exported to a remote taking bodies up to 200 kB, lead `lead_id` alone bigger:
    the export completes with that lead its one error row (413), the rest exported."""
    seed_leads(database_url, tenant.id, 300)
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE leads SET address = repeat('x', 300000) WHERE id = %s", [lead_id])
    remote.state.knobs.update({"max_body_bytes": 200_000})
    job = drive(database_url, start(tenant))
    assert (job["status"], job["exported_leads"], job["error_leads"]) == ("completed", 299, 1)
    [error] = rows(database_url, "SELECT * FROM gestao_scouter_export_errors")
    assert error["lead_id"] == lead_id and error["response_status"] == 413
    return job


def test_a_timed_out_batch_halves_the_size_the_next_run_sends(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """README: a timed-out request halves the batches and they never grow back to the size
    refused; the size carries to the job's next run. The third batch (100 leads) times out
    while the first one's fast answer has already grown the size to 200."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_MAX_BATCH_SIZE="400",
          GESTAO_SCOUTER_IN_FLIGHT="3", GESTAO_SCOUTER_FAST_ANSWER_S="60")  # fmt: skip
    seed_leads(database_url, tenant.id, 1000)
    job_id = start(tenant)
    recorder().take()
    real = runner.BatchRunner._post
    sizes: list[int] = []

    def third_times_out(self: runner.BatchRunner, body: bytes) -> Any:
        sent = json.loads(body)
        if sent[0]["id"] == 201:
            sizes.append(len(sent))
            raise RemoteUnavailable("Gestão Scouter timed out", upstream_status=None)
        return real(self, body)

    monkeypatch.setattr(runner.BatchRunner, "_post", third_times_out)
    assert run_once(tenant.id, job_id).status_code == 200
    job = job_row(database_url, job_id)
    assert sizes == [100]
    assert (job["status"], job["exported_leads"]) == ("pending", 200)
    assert job["batch_size"] <= 50  # half the batch that timed out, not the size grown since


def test_the_size_a_run_learned_carries_over_a_reset_asked_while_it_ran(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The first batch (400 leads) passes the proxy's body limit (413): the run halves the
    size. A reset asked meanwhile must not send the next run back to the refused size."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="400", GESTAO_SCOUTER_IN_FLIGHT="1")
    seed_leads(database_url, tenant.id, 1_000)
    remote.state.knobs.update({"max_body_bytes": 120_000})
    job_id = start(tenant)
    recorder().take()
    real = runner.BatchRunner._checkpoint

    def reset_after_the_first(self: runner.BatchRunner, batch: Any, outcome: Any) -> Any:
        if self.batches == 0:
            assert export(tenant, "reset", job_id=job_id).get_json()["reset_requested"]
        return real(self, batch, outcome)

    monkeypatch.setattr(runner.BatchRunner, "_checkpoint", reset_after_the_first)
    assert run_once(tenant.id, job_id).status_code == 200
    assert remote.state.stats()["faults"].get("body_too_large", 0) >= 1
    job = job_row(database_url, job_id)
    assert (job["status"], job["exported_leads"]) == ("pending", 0)
    assert job["batch_size"] <= 200  # the size refused is not tried again


def test_a_half_refused_for_its_size_in_a_split_halves_the_size_the_next_run_sends(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """README: a 413 or a statement timeout halves the batches "from the size of the batch
    refused". The first batch (400 leads) is refused for its size, and so is each of its
    halves (200) while it is split: the next run must not send 200 leads again (one more
    413, or one more statement_timeout waited for). A budget of 0: one batch per run."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="400", GESTAO_SCOUTER_IN_FLIGHT="1",
          GESTAO_SCOUTER_BUDGET_S="0", GESTAO_SCOUTER_FAST_ANSWER_S="0")  # fmt: skip
    seed_leads(database_url, tenant.id, 1_000)
    with psycopg.connect(database_url) as conn:  # leads of ~1.5 kB: 100 fit, 200 do not
        conn.execute("UPDATE leads SET address = repeat('x', 1000)")
    limit = 150 * 1100
    remote.state.knobs.update({"max_body_bytes": limit})
    real = runner.BatchRunner._post
    sent: list[tuple[int, int]] = []

    def recorded(self: runner.BatchRunner, body: bytes) -> Any:
        sent.append((len(json.loads(body)), len(body)))
        return real(self, body)

    monkeypatch.setattr(runner.BatchRunner, "_post", recorded)
    job = drive(database_url, start(tenant))
    assert (job["status"], job["exported_leads"], job["error_leads"]) == ("completed", 1000, 0)
    assert all(size > limit for rows, size in sent if rows >= 200)
    assert [rows for rows, _ in sent if rows >= 200] == [400, 200, 200], sent


def test_a_remote_that_asks_for_a_wait_is_not_sent_the_batch_again_sooner(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    """A remote that refuses a batch with 429 and `Retry-After: 300` (past the client's own
    retries) gets the next run no sooner than it asked, as the integration queue's providers
    do: retried at the export's own backoff (seconds), three refused batches in a row paused
    an export the remote had only asked to wait five minutes."""
    setup(configure, remote, GESTAO_SCOUTER_RETRIES="0")
    seed_leads(database_url, tenant.id, 10)
    job_id = start(tenant)
    recorder().take()
    remote.state.knobs.update({"rate_429": 1.0, "retry_after_s": 300})
    run_once(tenant.id, job_id)
    job = job_row(database_url, job_id)
    assert (job["status"], job["exported_leads"]) == ("pending", 0)
    [wake_up] = recorder().take()
    assert wake_up.delay_s >= 300
    waits = rows(
        database_url,
        "SELECT extract(epoch FROM run_after - now())::float8 AS s"
        " FROM gestao_scouter_export_jobs WHERE id = %s",
        job_id,
    )
    assert waits[0]["s"] > 290


def test_a_pause_asked_while_the_last_batch_is_out_lets_the_export_complete(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The run has read past the last lead when the pause comes: nothing is left to pause."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_IN_FLIGHT="2")
    seed_leads(database_url, tenant.id, 100)
    job_id = start(tenant)
    recorder().take()
    real = runner.BatchRunner._post

    def paused_meanwhile(self: runner.BatchRunner, body: bytes) -> Any:
        answer = real(self, body)
        assert export(tenant, "pause", job_id=job_id).get_json()["pause_requested"]
        return answer

    monkeypatch.setattr(runner.BatchRunner, "_post", paused_meanwhile)
    assert run_once(tenant.id, job_id).status_code == 200
    job = job_row(database_url, job_id)
    assert (job["status"], job["exported_leads"]) == ("completed", 100)
    assert not job["pause_requested"]


def test_a_lead_bigger_than_the_body_limit_in_a_batch_at_full_size_is_set_aside(
    database_url: str, tenant: TenantFixture, remote: Remote, configure: Any
) -> None:
    """One batch out at a time: the size is still the refused batch's half when its halves
    are split, and only one half at each level is refused for its size (the big lead)."""
    setup(configure, remote, GESTAO_SCOUTER_BATCH_SIZE="100", GESTAO_SCOUTER_IN_FLIGHT="1")
    job = _export_with_one_lead_too_big(database_url, tenant, remote, lead_id=20)
    assert job["batch_size"] >= 50  # one big lead halves the batches once, not at every split
