"""The operator CLI's job commands against a real database seeded with stuck jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infra.ops.__main__ import main
from tests.support import rows, seed_tenant

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]

INSERT = """
INSERT INTO integration_jobs (id, tenant_id, provider_slug, status, attempts, started_at,
                              heartbeat_at, run_after, created_at, finished_at, lease_token)
VALUES (%(id)s, %(tenant)s, %(provider)s, %(status)s, %(attempts)s,
        now() - %(started)s::interval, now() - %(beat)s::interval, now() - %(due)s::interval,
        now() - %(created)s::interval, now() - %(finished)s::interval, %(lease)s)
"""


def add_job(
    database_url: str, tenant: uuid.UUID, provider: str, status: str, **ages: str | None
) -> uuid.UUID:
    job_id = uuid.uuid4()
    params: dict[str, Any] = {
        "id": job_id, "tenant": tenant, "provider": provider, "status": status,
        "attempts": 1 if status == "running" else 0,
        "lease": uuid.uuid4() if status == "running" else None,
        "started": None, "beat": None, "due": "0s", "created": "0s", "finished": None,
    }  # fmt: skip
    params.update(ages)
    with psycopg.connect(database_url) as conn:
        conn.execute(INSERT, params)
    return job_id


@pytest.fixture
def seeded(database_url: str) -> dict[str, Any]:
    providers: dict[str, dict[str, Any]] = {"acessorias": {}, "onecode": {}, "bomcontrole": {}}
    a = seed_tenant(database_url, "acme", providers=providers).id
    b = seed_tenant(database_url, "globex", providers=providers).id
    c = seed_tenant(database_url, "initech", providers={"onecode": {}}).id
    jobs = {
        # stuck: a running job whose heartbeat stopped 2 hours ago
        "stale_running": add_job(database_url, a, "acessorias", "running",
                                 started="3h", beat="2h", created="3h"),
        # stuck: a running row with no timestamps at all (the seed's crash)
        "null_running": add_job(database_url, a, "onecode", "running", created="2h"),
        # stuck: pending and due for 3 hours, never claimed
        "old_pending": add_job(database_url, a, "bomcontrole", "pending", due="3h", created="3h"),
        # alive: running with a fresh heartbeat
        "live_running": add_job(database_url, b, "acessorias", "running",
                                started="2h", beat="5s", created="2h"),
        # alive: a retry scheduled in the future
        "scheduled": add_job(database_url, b, "onecode", "pending", due="-10m", created="2h"),
        # alive: just submitted
        "fresh_pending": add_job(database_url, b, "bomcontrole", "pending"),
        # history: an old finished job is not touched
        "finished": add_job(database_url, c, "onecode", "success",
                            started="5h", created="5h", finished="5h"),
    }  # fmt: skip
    with psycopg.connect(database_url) as conn:  # a ghost "running" status left by the old system
        conn.execute(
            "UPDATE tenant_integrations SET last_status = 'running' WHERE tenant_id = %s", [c]
        )
    return {"jobs": jobs, "a": a, "b": b, "c": c}


def job_rows(database_url: str) -> dict[uuid.UUID, dict[str, Any]]:
    return {r["id"]: r for r in rows(database_url, "SELECT * FROM integration_jobs")}


def test_cleanup_stuck_fixes_exactly_the_stuck_jobs(
    database_url: str, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = seeded["jobs"]
    stuck = {jobs["stale_running"], jobs["null_running"], jobs["old_pending"]}
    before = job_rows(database_url)

    assert main(["jobs", "cleanup-stuck", "--older-than", "1h", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would close 3 stuck job(s)" in out and all(str(j) in out for j in stuck)
    assert job_rows(database_url) == before

    assert main(["jobs", "cleanup-stuck", "--older-than", "1h"]) == 0
    assert "closed 3 stuck job(s)" in capsys.readouterr().out
    after = job_rows(database_url)
    for job_id, row in after.items():
        if job_id in stuck:
            assert row["status"] == "error" and row["finished_at"] is not None
            assert row["error_message"].startswith("cleanup: stuck ")
            assert row["lease_token"] is None
        else:
            assert row == before[job_id]
    integrations = rows(
        database_url,
        "SELECT tenant_id, provider_slug, last_status, last_error FROM tenant_integrations",
    )
    for i in integrations:
        if i["tenant_id"] == seeded["a"]:
            assert i["last_status"] == "error" and i["last_error"].startswith("cleanup: stuck ")
        elif i["tenant_id"] == seeded["c"]:
            assert i["last_status"] == "success"  # the ghost now mirrors its last job
        else:
            assert i["last_status"] is None
    logs = rows(database_url, "SELECT job_id FROM integration_logs WHERE message LIKE 'cleanup%%'")
    assert {r["job_id"] for r in logs} == stuck

    assert main(["jobs", "cleanup-stuck", "--older-than", "1h"]) == 0
    assert "closed 0 stuck job(s)" in capsys.readouterr().out


def test_threshold_and_provider_filter(database_url: str, seeded: dict[str, Any]) -> None:
    assert main(["jobs", "cleanup-stuck", "--older-than", "150m", "--provider", "bomcontrole"]) == 0
    errors = {
        r["id"]
        for r in rows(database_url, "SELECT id FROM integration_jobs WHERE status = 'error'")
    }
    assert errors == {seeded["jobs"]["old_pending"]}


def statuses(database_url: str) -> dict[tuple[uuid.UUID, str], str | None]:
    found = rows(
        database_url, "SELECT tenant_id, provider_slug, last_status FROM tenant_integrations"
    )
    return {(r["tenant_id"], r["provider_slug"]): r["last_status"] for r in found}


def test_the_dry_run_and_the_provider_filter_cover_the_integration_statuses_too(
    database_url: str, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """The dry run said only which jobs it would close, then the run also rewrote ghost
    statuses; and `--provider bomcontrole` rewrote another provider's (initech's onecode)."""
    before = statuses(database_url)
    assert main(["jobs", "cleanup-stuck", "--older-than", "1h", "--dry-run"]) == 0
    assert "would make 1 integration status(es) coherent" in capsys.readouterr().out
    assert statuses(database_url) == before

    assert main(["jobs", "cleanup-stuck", "--older-than", "1h", "--provider", "bomcontrole"]) == 0
    assert "integration status" not in capsys.readouterr().out
    after = statuses(database_url)
    assert after[(seeded["a"], "bomcontrole")] == "error"
    assert {k: v for k, v in after.items() if k != (seeded["a"], "bomcontrole")} == {
        k: v for k, v in before.items() if k != (seeded["a"], "bomcontrole")
    }
    assert after[(seeded["c"], "onecode")] == "running"  # a onecode status: not touched

    assert main(["jobs", "cleanup-stuck", "--older-than", "1h", "--provider", "onecode"]) == 0
    assert "made 1 integration status(es) coherent" in capsys.readouterr().out
    assert statuses(database_url)[(seeded["c"], "onecode")] == "success"


def test_jobs_list_table_filters_and_json(
    database_url: str, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jobs", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["job", "tenant", "provider", "status"]
    assert len(lines) == 2 + 7
    assert main(["jobs", "list", "--tenant", "globex", "--status", "pending"]) == 0
    body = capsys.readouterr().out.splitlines()[2:]
    assert len(body) == 2 and all("globex" in line and "pending" in line for line in body)
    assert main(["jobs", "list", "--tenant", str(seeded["c"]), "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [j["id"] for j in listed] == [str(seeded["jobs"]["finished"])]


def test_bad_duration_is_a_usage_error(database_url: str) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["jobs", "cleanup-stuck", "--older-than", "soon"])
    assert caught.value.code == 2


@pytest.mark.parametrize("duration", ["0", "0s", "0m", "-5", "-1h", "soon", "36501d"])
def test_non_positive_or_absurd_threshold_is_refused_and_changes_nothing(
    database_url: str, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str], duration: str
) -> None:
    before = job_rows(database_url)
    assert before[seeded["jobs"]["live_running"]]["status"] == "running"
    for extra in ([], ["--dry-run"]):
        with pytest.raises(SystemExit) as caught:
            main(["jobs", "cleanup-stuck", f"--older-than={duration}", *extra])
        assert caught.value.code == 2
        assert "argument --older-than" in capsys.readouterr().err
    assert job_rows(database_url) == before  # the live job (and every other) is untouched
    logs = rows(database_url, "SELECT job_id FROM integration_logs WHERE message LIKE 'cleanup%%'")
    assert logs == []


def test_sweep_command_runs_once(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["processed"] == [] and report["remaining"] == 0


def test_a_job_stuck_for_weeks_gets_a_capped_execution_time(database_url: str) -> None:
    tenant = seed_tenant(database_url, "acme", providers={"acessorias": {}}).id
    job = add_job(database_url, tenant, "acessorias", "running",
                  started="40 days", beat="40 days", created="40 days")  # fmt: skip
    assert main(["jobs", "cleanup-stuck", "--older-than", "1h"]) == 0
    row = job_rows(database_url)[job]
    assert (row["status"], row["execution_time_ms"]) == ("error", 2**31 - 1)


def test_jobs_list_names_a_tenant_that_does_not_exist_and_refuses_a_bad_limit(
    database_url: str, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo must not look like an idle tenant ("no jobs", exit 0)."""
    assert main(["jobs", "list", "--tenant", "acmee"]) == 2
    captured = capsys.readouterr()
    assert "No tenant 'acmee'" in captured.err and captured.out == ""
    for bad in ("0", "-5", "1001", "x"):
        with pytest.raises(SystemExit) as exit_:
            main(["jobs", "list", "--limit", bad])
        assert exit_.value.code == 2
        assert "argument --limit" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["jobs", "list"], ["schedules", "list"], ["export", "status"], ["export", "list"],
    ["config", "check"], ["schema", "validate"],
])  # fmt: skip
def test_every_tenant_option_names_a_tenant_that_does_not_exist(
    database_url: str, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:  # fmt: skip
    """The CLI acts as the service: a mistyped slug is missing, not "forbidden"."""
    assert main([*argv, "--tenant", "nope"]) == 2
    error = json.loads(capsys.readouterr().err)["error"]
    assert (error["code"], error["message"]) == ("not_found", "No tenant 'nope' (a slug or an id).")


def test_a_database_that_is_not_there_is_named_with_the_servers_reason(
    pg_server_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server answers, the database was never created: say so, not just "cannot reach"."""
    from infra.local import pg
    from shared.settings import reload_settings

    monkeypatch.setenv("DATABASE_URL", pg.with_dbname(pg_server_url, "syncq_never_created"))
    reload_settings()
    try:
        for argv in (
            ["migrate"],
            ["jobs", "list"],
            ["sweep"],
            ["schedules", "list", "--tenant", "a"],
        ):
            assert main(argv) == 1, argv
            err = capsys.readouterr().err
            assert "Cannot reach the database at" in err and "/syncq_never_created" in err, err
            assert 'database "syncq_never_created" does not exist' in err, err
    finally:
        monkeypatch.undo()
        reload_settings()


def test_a_tenant_option_prefers_the_slug_and_reads_an_id_in_any_case(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Slugs may look like ids: a slug that is another tenant's id names the slug's tenant
    (as when the commands took only slugs); an id in capitals is still that id."""
    victim = seed_tenant(database_url, "victim")
    other = seed_tenant(database_url, str(victim.id))
    argv = ["schedules", "set", "--provider", "acessorias", "--cron", "0 2 * * *"]
    assert main([*argv, "--tenant", str(victim.id)]) == 0
    set_on = rows(database_url, "SELECT tenant_id FROM integration_schedules")
    assert set_on == [{"tenant_id": other.id}]
    assert main(["schedules", "list", "--tenant", str(other.id).upper()]) == 0
    assert "acessorias" in capsys.readouterr().out


def test_schedules_set_and_delete_take_a_provider_and_zone_typed_with_spaces(
    database_url: str,
) -> None:
    """A value pasted with a space around it is the value, as before the request models
    stopped trimming: the command trims what a person typed, the model refuses the rest."""
    tenant = seed_tenant(database_url, "spaced")
    argv = ["schedules", "set", "--tenant", "spaced", "--provider", " acessorias ",
            "--cron", "0 2 * * *", "--timezone", "America/Sao_Paulo "]  # fmt: skip
    assert main(argv) == 0
    stored = rows(
        database_url, "SELECT tenant_id, provider_slug, timezone FROM integration_schedules"
    )
    assert stored == [
        {"tenant_id": tenant.id, "provider_slug": "acessorias", "timezone": "America/Sao_Paulo"}
    ]
    assert main(["schedules", "delete", "--tenant", "spaced", "--provider", "acessorias "]) == 0
    assert rows(database_url, "SELECT 1 FROM integration_schedules") == []


@pytest.mark.parametrize("argv", [
    ["jobs", "list", "--tenant"], ["jobs", "list", "--provider"],
    ["jobs", "cleanup-stuck", "--older-than", "1h", "--provider"],
    ["schedules", "list", "--tenant"], ["export", "list", "--tenant"],
])  # fmt: skip
def test_an_option_that_is_not_utf8_is_a_usage_error_not_a_traceback(
    database_url: str, seeded: dict[str, Any], capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:  # fmt: skip
    """Bytes that are not UTF-8 (a Latin-1 terminal's `--tenant açme`) reach argv as lone
    surrogates; the database cannot take them: a clear usage error, exit 2, nothing changed."""
    before = job_rows(database_url)
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "a\udce7me"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "not valid UTF-8" in err and "Traceback" not in err, err
    assert job_rows(database_url) == before


def test_a_database_that_was_never_migrated_says_so_not_a_traceback(
    pg_server_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new database, or DATABASE_URL pointing at the wrong one: one line that says what to
    run, not psycopg's UndefinedTable traceback."""
    from infra.local import pg
    from shared.settings import reload_settings

    name = f"syncq_unmigrated_{uuid.uuid4().hex[:8]}"
    url = pg.create_database(pg_server_url, name)
    monkeypatch.setenv("DATABASE_URL", url)
    reload_settings()
    try:
        for argv in (["jobs", "list"], ["schedules", "list", "--tenant", "a"]):
            assert main(argv) == 1, argv
            err = capsys.readouterr().err
            assert "is not migrated" in err and "make migrate" in err, err
            assert "Traceback" not in err
    finally:
        monkeypatch.undo()
        reload_settings()
        pg.drop_database(pg_server_url, name)


def test_sweep_prints_only_its_report_on_stdout(database_url: str, tmp_path: Path) -> None:
    """`ops sweep | jq` (or json.loads) reads the report: the jobs it runs log to stderr.
    Their JSON log lines went to stdout before the report, which then did not parse."""
    tenant = seed_tenant(database_url, "acme", providers={"onecode": {}}).id
    job = add_job(database_url, tenant, "onecode", "pending")
    env = {**os.environ, "DATABASE_URL": database_url, "SYNCQ_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "infra.ops", "sweep"], check=False, env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["kinds"]["integration"]["processed"] == 1, report
    assert job_rows(database_url)[job]["attempts"] == 1
    assert '"message": "sync started"' in done.stderr


def test_a_job_the_clean_up_ends_counts_and_alerts_as_any_failed_job(database_url: str) -> None:
    """A stuck job closed by the clean-up ends `error` as the engine ends one: the
    integration's failure streak counts it and its alert is in the outbox (as when the
    sweep's rescue ends a job on its last attempt), in the same statement."""
    tenant = seed_tenant(database_url, "acme", providers={"acessorias": {}}).id
    job = add_job(database_url, tenant, "acessorias", "running",
                  started="3h", beat="2h", created="3h")  # fmt: skip
    assert main(["jobs", "cleanup-stuck", "--older-than", "1h"]) == 0
    integration = rows(
        database_url,
        "SELECT consecutive_failures, last_status FROM tenant_integrations"
        " WHERE tenant_id = %s AND provider_slug = 'acessorias'",
        tenant,
    )
    assert [(i["consecutive_failures"], i["last_status"]) for i in integration] == [(1, "error")]
    alerts = rows(database_url, "SELECT job_id, event FROM alert_outbox")
    assert [(a["job_id"], a["event"]) for a in alerts] == [(job, "failing")]


def test_a_threshold_in_minutes_spares_a_job_that_beat_minutes_ago(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--older-than 30m` is thirty minutes: a job whose heartbeat is ten minutes old is
    alive at that threshold (read as 30 seconds, the clean-up closed it); the dry run names
    each stuck job with what it was."""
    tenant = seed_tenant(database_url, "acme", providers={"acessorias": {}, "onecode": {}}).id
    alive = add_job(database_url, tenant, "acessorias", "running",
                    started="1h", beat="10m", created="1h")  # fmt: skip
    stuck = add_job(database_url, tenant, "onecode", "pending", due="45m", created="45m")
    assert main(["jobs", "cleanup-stuck", "--older-than", "30m", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "would close 1 stuck job(s)",
        f"  {stuck}  onecode  was pending",
    ]
    assert main(["jobs", "cleanup-stuck", "--older-than", "30m"]) == 0
    found = job_rows(database_url)
    assert (found[alive]["status"], found[stuck]["status"]) == ("running", "error")
    assert main(["jobs", "cleanup-stuck", "--older-than", "5m"]) == 0
    assert job_rows(database_url)[alive]["status"] == "error"


def test_migrate_says_what_it_applied_and_fails_on_a_changed_migration(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deploy script runs `ops migrate && ...`: a refused migration must stop it (exit 1)."""
    from infra import migrate

    assert main(["migrate"]) == 0
    assert capsys.readouterr().out == "applied: nothing (up to date)\n"
    newest = migrate.discover()[-1]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE schema_migrations SET checksum = 'edited' WHERE version = %s", [newest.version]
        )
    assert main(["migrate"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and f"{newest.version:04d}_{newest.name}.sql changed since it was" in err


def test_sweep_exits_1_when_a_step_failed(
    database_url: str, configure: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cron running `ops sweep` sees a failed step in the exit code, not only in a log line:
    here the schedules tick times out behind a lock another session holds."""
    configure(DB_STATEMENT_TIMEOUT_MS="500")
    with psycopg.connect(database_url) as holder:
        holder.execute("LOCK TABLE integration_schedules IN ACCESS EXCLUSIVE MODE")
        assert main(["sweep"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["hooks"]["schedules"] == {"error": "failed"}
    assert "sweep: schedules failed" in err
    assert main(["sweep"]) == 0  # the lock gone, the same sweep passes
