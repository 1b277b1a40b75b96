"""The Gestão Scouter CLI commands against a real database and the emulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.ops.__main__ import main
from tests.integration.gestao_support import Remote, local_view, remote_view
from tests.support import TenantFixture, rows, seed_tenant

pytest_plugins = ["tests.integration.gestao_fixtures"]
pytestmark = pytest.mark.db


def test_cli_seeds_exports_and_reports(
    database_url: str, tenant: TenantFixture, remote: Remote,
    capsys: pytest.CaptureFixture[str], configure: Any,
) -> None:  # fmt: skip
    assert main(["export", "seed-leads", "--tenant", "acme", "--count", "250"]) == 0
    assert main(["config", "check", "--tenant", "acme"]) == 0
    assert "ok   leads_writable" in capsys.readouterr().out
    assert main(["schema", "validate", "--tenant", "acme"]) == 0
    assert main(["schema", "reload", "--tenant", "acme"]) == 0
    assert main(["export", "start", "--tenant", "acme", "--from", "2024-01-01",
                 "--to", "2024-12-31", "--inline"]) == 0  # fmt: skip
    out = capsys.readouterr()
    assert '"exported_leads": 250' in out.out and "export" in out.err  # the progress bar
    assert remote_view(remote) == local_view(database_url)
    assert main(["export", "status", "--tenant", "acme"]) == 0
    assert '"status": "completed"' in capsys.readouterr().out
    assert main(["export", "list", "--tenant", "acme"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split() == ["created", "job", "status", "period", "exported", "errors"]
    assert len(listed) == 3 and listed[2].split()[2:] == [
        "completed", "2024-01-01..2024-12-31", "250/250", "0",
    ]  # fmt: skip
    for bad in ("0", "101", "x"):
        with pytest.raises(SystemExit) as exit_:
            main(["export", "list", "--tenant", "acme", "--limit", bad])
        assert exit_.value.code == 2 and "1 to 100" in capsys.readouterr().err
    assert main(["export", "pause", "--tenant", "acme"]) == 2  # nothing to pause
    assert "invalid_transition" in capsys.readouterr().err
    assert main(["export", "stuck", "--older-than", "1h"]) == 0
    assert main(["export", "prune-errors", "--days", "90"]) == 0
    assert "deleted 0 error rows" in capsys.readouterr().out
    assert rows(database_url, "SELECT count(*) AS n FROM leads")[0]["n"] == 250
    remote.state.knobs.update({"error_rate": 1.0})
    configure(GESTAO_SCOUTER_RETRIES="0", GESTAO_SCOUTER_RETRY_BASE_S="0.01")
    assert main(["config", "check", "--tenant", "acme"]) == 1
    assert "FAIL  host_reachable" in capsys.readouterr().out


def insert_job(database_url: str, tenant: TenantFixture, status: str, heartbeat_ago: str) -> str:
    """An export job row for `tenant`, its last heartbeat `heartbeat_ago` (an interval)."""
    return str(
        rows(
            database_url,
            "INSERT INTO gestao_scouter_export_jobs"
            " (tenant_id, status, field_mappings, batch_size, started_at, heartbeat_at)"
            " VALUES (%s, %s, '{}', 100, now() - %s::interval, now() - %s::interval)"
            " RETURNING id",
            tenant.id, status, heartbeat_ago, heartbeat_ago,
        )[0]["id"]
    )  # fmt: skip


def insert_error(database_url: str, job_id: str, tenant: TenantFixture, lead_id: int,
                 age: str) -> int:  # fmt: skip
    """An export error row created `age` (an interval) ago."""
    return int(
        rows(
            database_url,
            "INSERT INTO gestao_scouter_export_errors (job_id, tenant_id, lead_id, error_message,"
            " lead_snapshot, fields_sent, created_at)"
            " VALUES (%s, %s, %s, 'refused', '{}', '[]', now() - %s::interval) RETURNING id",
            job_id, tenant.id, lead_id, age,
        )[0]["id"]
    )  # fmt: skip


def error_ids(database_url: str) -> set[int]:
    return {r["id"] for r in rows(database_url, "SELECT id FROM gestao_scouter_export_errors")}


@pytest.fixture
def errors(database_url: str) -> tuple[int, int]:
    """Two error rows of one finished job: (100 days old, 1 day old)."""
    acme = seed_tenant(database_url, "acme", providers={"gestao-scouter": {}})
    job_id = insert_job(database_url, acme, "completed", "100 days")
    old = insert_error(database_url, job_id, acme, 1, "100 days")
    recent = insert_error(database_url, job_id, acme, 2, "1 day")
    return old, recent


def test_prune_errors_deletes_only_rows_older_than_the_cutoff(
    database_url: str, errors: tuple[int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    old, recent = errors
    assert main(["export", "prune-errors", "--days", "90"]) == 0
    assert "deleted 1 error rows older than 90 days" in capsys.readouterr().out
    remaining = error_ids(database_url)
    assert old not in remaining and remaining == {recent}


@pytest.mark.parametrize("days", ["0", "-5", "1.5", "many", "1000000"])
def test_prune_errors_rejects_bad_days_and_deletes_nothing(
    database_url: str, errors: tuple[int, int], capsys: pytest.CaptureFixture[str], days: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["export", "prune-errors", "--days", days])
    assert exit_.value.code == 2
    assert "argument --days" in capsys.readouterr().err
    assert error_ids(database_url) == set(errors)


def test_stuck_lists_only_running_jobs_with_an_old_heartbeat(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    acme = seed_tenant(database_url, "acme", providers={"gestao-scouter": {}})
    beta = seed_tenant(database_url, "beta", providers={"gestao-scouter": {}})
    silent = insert_job(database_url, acme, "running", "2 hours")
    fresh = insert_job(database_url, beta, "running", "1 minute")
    assert main(["export", "stuck", "--older-than", "1h"]) == 1
    out = capsys.readouterr().out
    assert silent in out and "acme" in out
    assert fresh not in out and "beta" not in out
    assert main(["export", "stuck", "--older-than", "3h"]) == 0
    assert "no stuck exports" in capsys.readouterr().out


@pytest.mark.parametrize("duration", ["0", "0m", "0.0h", "-1h", "soon", "1y", "99999999d"])
def test_stuck_rejects_durations_that_are_not_positive(
    database_url: str, capsys: pytest.CaptureFixture[str], duration: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["export", "stuck", f"--older-than={duration}"])
    assert exit_.value.code == 2
    assert "argument --older-than" in capsys.readouterr().err


def test_an_export_period_that_ends_before_it_starts_is_refused_in_one_line(
    database_url: str, tenant: TenantFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["export", "start", "--tenant", "acme", "--from", "2024-05-01", "--to", "2024-01-01"]
    assert main([*argv, "--no-follow"]) == 2
    err = capsys.readouterr().err
    assert "end_date" in err and "Traceback" not in err, err
    assert rows(database_url, "SELECT count(*) AS n FROM gestao_scouter_export_jobs")[0]["n"] == 0


def test_an_export_that_does_not_complete_and_a_schema_that_does_not_fit_exit_1(
    database_url: str, own_tenant: TenantFixture, own_remote: Remote,
    capsys: pytest.CaptureFixture[str], configure: Any,
) -> None:  # fmt: skip
    """A script (`ops export start ... && next-step`) must see an export that paused, and a
    remote schema that does not fit the mapping, in the exit code, not only in the JSON."""
    configure(GESTAO_SCOUTER_RETRIES="0", GESTAO_SCOUTER_RETRY_BASE_S="0.01",
              GESTAO_SCOUTER_FAILURE_BACKOFF_S="0", GESTAO_SCOUTER_BATCH_SIZE="10",
              GESTAO_SCOUTER_MAX_BATCH_SIZE="10", GESTAO_SCOUTER_SCHEMA_CACHE_S="0")  # fmt: skip
    assert main(["export", "seed-leads", "--tenant", "acme", "--count", "30"]) == 0
    capsys.readouterr()
    own_remote.state.knobs.update({"post_commit_error_rate": 1.0})  # every batch answered 5xx
    assert main(["export", "start", "--tenant", "acme", "--inline"]) == 1
    final = json.loads(capsys.readouterr().out)
    assert final["status"] == "paused" and final["pause_code"] == "failing", final
    own_remote.state.knobs.update({"post_commit_error_rate": 0.0})

    own_remote.sql("ALTER TABLE public.leads DROP COLUMN telephone")
    own_remote.state.reload_schema()
    assert main(["schema", "validate", "--tenant", "acme"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["missing_columns"] == ["telephone"]
    assert main(["schema", "reload", "--tenant", "acme"]) == 1
    assert json.loads(capsys.readouterr().out)["validation"]["valid"] is False
