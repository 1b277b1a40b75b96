"""The migrations add up to the schema the code expects, and running them twice is a no-op."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infra import migrate
from infra.local import pg
from shared import db
from shared.gestao import exports
from tests.support import bearer, function_client, seed_tenant

pytestmark = pytest.mark.db

EXPECTED_JOB_COLUMNS = {
    "id", "tenant_id", "provider_slug", "status", "progress", "attempts", "max_attempts",
    "started_at", "finished_at", "execution_time_ms", "error_message", "payload", "result",
    "created_by", "created_at", "updated_at", "heartbeat_at", "run_after", "lease_token",
    "cancel_requested",
    "trigger",
    "scheduled_for",
    "scheduled_due_at",
}  # fmt: skip


def test_migrations_are_idempotent(database_url: str) -> None:
    assert migrate.migrate(database_url) == []
    with psycopg.connect(database_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in migrate.discover()]


def test_schema_matches_code(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        cols = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'integration_jobs'"
            )
        }
        indexes = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'integration_jobs'"
            )
        }
        rls = dict(
            conn.execute(
                "SELECT relname, relrowsecurity FROM pg_class WHERE relname = ANY(%s)",
                [
                    [
                        "tenants",
                        "tenant_members",
                        "tenant_integrations",
                        "integration_jobs",
                        "integration_logs",
                        "acessorias_companies",
                    ]
                ],
            ).fetchall()
        )
        triggers = {
            r[0] for r in conn.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'integration_jobs'::regclass"
            )
        }  # fmt: skip
    assert cols == EXPECTED_JOB_COLUMNS
    active = indexes["integration_jobs_one_active_idx"]
    assert "UNIQUE" in active and "pending" in active and "running" in active
    claim = indexes["integration_jobs_claim_idx"]
    assert "(status, run_after, created_at)" in claim and "WHERE (status = 'pending'" in claim
    assert all(rls.values()) and len(rls) == 6
    assert "integration_jobs_notify" in triggers


def test_every_named_query_parses(database_url: str) -> None:
    """Each query in shared/sql is valid SQL against the migrated schema (PREPARE checks it);
    the engine's statements are checked as each registered kind composes them."""
    from pathlib import Path

    from shared.gestao.batches import batch_statement, synced_statement
    from shared.gestao.mapping import DEFAULT_MAPPING, LOCAL_FIELDS
    from shared.gestao.reverse import upsert_statement
    from shared.jobs.table import FRAGMENTS
    from shared.kinds import KINDS
    from shared.metrics import store as metrics
    from shared.sqlfiles import queries

    modules = sorted(
        p.stem for p in (Path(migrate.__file__).parents[1] / "shared" / "sql").glob("*.sql")
    )
    statements = {
        f"{module}.{name}": text
        for module in modules
        if module != "jobs"  # templates: composed per kind below
        for name, text in queries(module).items()
        if name not in FRAGMENTS and not (module == "metrics" and name in metrics.FRAGMENTS)
    }
    with psycopg.connect(database_url) as conn:
        for label in [k for k in statements if k.startswith("metrics.")]:
            statements[label] = metrics.statement(label.split(".")[1]).as_string(conn)
        # The export's and the reverse sync's templates, as the default mapping fills them.
        statements["gestao.export_page"] = batch_statement(DEFAULT_MAPPING).as_string(conn)
        statements["gestao.export_synced_since"] = synced_statement(DEFAULT_MAPPING).as_string(conn)
        statements["gestao.reverse_upsert"] = upsert_statement(sorted(LOCAL_FIELDS)).as_string(conn)
        for kind in KINDS:
            for name in queries("jobs"):
                statements[f"{kind.name}.{name}"] = kind.table.statement(name).as_string(conn)
        for label, text in statements.items():
            # Named parameters become NULLs for the parse check.
            import re

            plain = re.sub(r"%\((\w+)\)[sb]", "NULL", text)
            try:
                conn.execute(f"PREPARE q AS {plain}")  # type: ignore[arg-type]
                conn.execute("DEALLOCATE q")
            except psycopg.errors.Error as exc:
                raise AssertionError(f"{label}: {exc}") from exc


def _copy(tmp_path: Path, upto: int | None = None) -> Path:
    """The migrations folder (up to a version) in a folder a test may change."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    for m in migrate.discover():
        if upto is None or m.version <= upto:
            shutil.copy(m.path, folder / m.path.name)
    return folder


def test_an_applied_migration_renamed_or_edited_is_refused_by_name(
    database_url: str, tmp_path: Path
) -> None:
    """A database it was applied to would never get the change a new database gets."""
    folder = _copy(tmp_path)
    last = max(folder.glob("*.sql"))
    last.write_text(last.read_text() + "\n-- an edit after the fact\n")
    with pytest.raises(
        migrate.MigrationChanged, match=re.escape(f"{last.name} changed since it was")
    ):
        migrate.migrate(database_url, folder)
    last.rename(folder / (last.name[:5] + "renamed.sql"))
    with pytest.raises(migrate.MigrationChanged, match="never renamed or edited"):
        migrate.migrate(database_url, folder)


def test_an_applied_migration_renumbered_or_removed_is_refused_by_name(
    database_url: str, tmp_path: Path
) -> None:
    """Renumbered, it was applied a second time; removed, nobody noticed."""
    folder = _copy(tmp_path)
    first, *_, last = sorted(folder.glob("*.sql"))
    renumbered = folder / f"{int(last.name[:4]) + 1:04d}{last.name[4:]}"
    last.rename(renumbered)
    with pytest.raises(migrate.MigrationChanged, match=re.escape(f"{last.name[:-4]} was applied")):
        migrate.migrate(database_url, folder)
    renumbered.rename(last)
    first.unlink()
    with pytest.raises(migrate.MigrationChanged, match=re.escape(f"{first.name[:-4]} was applied")):
        migrate.migrate(database_url, folder)


def test_the_newest_applied_migration_renumbered_into_a_gap_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    """Moved below the others, the newest looked like a newer release's and was applied again."""
    folder = _copy(tmp_path)
    versions = {m.version for m in migrate.discover(folder)}
    gap = next(v for v in range(1, 10_000) if v not in versions)
    last = sorted(folder.glob("*.sql"))[-1]
    last.rename(folder / f"{gap:04d}{last.name[4:]}")
    with pytest.raises(migrate.MigrationChanged, match=re.escape(f"{last.name[:-4]} was applied")):
        migrate.migrate(database_url, folder)


def test_an_older_release_runs_beside_the_migrations_of_a_newer_one(
    database_url: str, tmp_path: Path
) -> None:
    """A rollback: the database holds versions past the older release's last file."""
    newest = migrate.discover()[-1].version
    assert migrate.migrate(database_url, _copy(tmp_path, upto=newest - 1)) == []


def test_a_migration_waiting_for_a_table_lock_does_not_hold_up_the_queue(
    database_url: str, tmp_path: Path
) -> None:
    """An ALTER waiting behind an open reader queued every claim behind it until the reader
    ended; it now gives up after a second, lets the queue go on, and tries again."""
    from shared.queue import store

    folder = _copy(tmp_path)
    (folder / "0999_alter_jobs.sql").write_text(
        "ALTER TABLE integration_jobs ADD COLUMN IF NOT EXISTS probe integer;"
    )
    reader = psycopg.connect(database_url)
    reader.execute("SELECT count(*) FROM integration_jobs")  # a transaction left open
    applied: list[list[str]] = []
    thread = threading.Thread(target=lambda: applied.append(migrate.migrate(database_url, folder)))
    thread.start()
    try:
        time.sleep(0.5)  # the ALTER waits for the reader now
        with psycopg.connect(database_url) as worker:
            worker.execute("SET statement_timeout = '3s'")
            store.claim(worker, limit=1)  # a claim: waits a second at most, not for the reader
    finally:
        reader.close()
        thread.join(30)
    assert applied == [["0999_alter_jobs"]]  # the next try, once the reader ended


def test_a_table_locked_for_good_fails_the_migration_with_nothing_applied(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate, "LOCK_PAUSE_S", 0.01)
    monkeypatch.setattr(migrate, "LOCK_ATTEMPTS", 2)
    folder = _copy(tmp_path)
    (folder / "0999_alter_jobs.sql").write_text(
        "ALTER TABLE integration_jobs ADD COLUMN IF NOT EXISTS probe integer;"
    )
    with psycopg.connect(database_url) as reader:
        reader.execute("SELECT count(*) FROM integration_jobs")
        with pytest.raises(migrate.MigrationFailed, match="stayed locked by another session"):
            migrate.migrate(database_url, folder)
    with psycopg.connect(database_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert 999 not in versions


def test_a_checkout_with_crlf_line_endings_is_the_same_migration(
    database_url: str, tmp_path: Path
) -> None:
    folder = _copy(tmp_path)
    for path in folder.glob("*.sql"):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert migrate.migrate(database_url, folder) == []
    with psycopg.connect(database_url) as conn:  # the same checksum, whatever the checkout
        sums = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
    assert sums == {
        m.version: hashlib.sha256(m.path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()
        for m in migrate.discover()
    }


def test_checksums_recorded_from_raw_bytes_of_either_line_ending_still_match(
    database_url: str, tmp_path: Path
) -> None:
    """Before checksums read line endings as LF, a CRLF checkout recorded those bytes'."""
    for ending in (b"\r\n", b"\n"):
        with psycopg.connect(database_url) as conn:
            for m in migrate.discover():
                body = m.path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", ending)
                conn.execute(
                    "UPDATE schema_migrations SET checksum = %s WHERE version = %s",
                    [hashlib.sha256(body).hexdigest(), m.version],
                )
        assert migrate.migrate(database_url) == [], ending
        with psycopg.connect(database_url) as conn:
            sums = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
        assert sums == {m.version: migrate.checksum(m) for m in migrate.discover()}


def test_rows_recorded_before_checksums_get_theirs(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = NULL")
    assert migrate.migrate(database_url) == []
    with psycopg.connect(database_url) as conn:
        sums = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
    assert sums == {m.version: migrate.checksum(m) for m in migrate.discover()}


def test_a_release_lands_whole_or_not_at_all(pg_server_url: str, tmp_path: Path) -> None:
    """0060 dropped a function that 0062 restored: committed one file at a time, a migrate
    that stopped between them left the previous release's instances failing every job."""
    folder = _copy(tmp_path, upto=59)
    url = pg.create_database(pg_server_url, f"syncq_whole_{os.getpid()}")
    try:
        migrate.migrate(url, folder)
        for m in migrate.discover():
            if m.version >= 60:
                shutil.copy(m.path, folder / m.path.name)
        (folder / "0099_fails.sql").write_text("SELECT 1/0;")
        pending = len([m for m in migrate.discover(folder) if m.version >= 60])
        with pytest.raises(
            migrate.MigrationFailed, match=rf"0099_fails\.sql failed, so none of {pending} pending"
        ):
            migrate.migrate(url, folder)
        with psycopg.connect(url) as conn:
            top = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
            old = conn.execute(
                "SELECT count(*) FROM pg_proc WHERE proname = 'integration_alert_event'"
                " AND pronargs = 5"
            ).fetchone()
        assert top == (50,) and old == (1,)  # nothing of 0060-0099, the old function kept
    finally:
        pg.drop_database(pg_server_url, pg.dbname_of(url))


def test_an_invalid_metrics_index_is_built_again(database_url: str) -> None:
    """What a failed CREATE INDEX CONCURRENTLY by hand leaves: 0050 took it for done."""
    [fix] = [m for m in migrate.discover() if m.name == "metrics_index_valid"]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE pg_index SET indisvalid = false"
            " WHERE indexrelid = 'integration_jobs_finished_idx'::regclass"
        )
        conn.execute(fix.path.read_text())
        valid = conn.execute(
            "SELECT indisvalid FROM pg_index"
            " WHERE indexrelid = 'integration_jobs_finished_idx'::regclass"
        ).fetchone()
    assert valid == (True,)


def test_failure_alerted_is_kept_right_for_a_previous_release_s_writes(
    database_url: str,
) -> None:
    """An instance of the release before 0060 moves the streak and last_alert_at, never
    failure_alerted: this release then told no `recovered` (rolling deploys)."""
    tenant = seed_tenant(database_url, "acme", providers={"onecode": {}})
    previous_release = (
        "UPDATE tenant_integrations SET consecutive_failures = %s, last_alert_at = {}"
        " WHERE tenant_id = %s AND provider_slug = 'onecode'"
        " RETURNING failure_alerted"
    )
    with psycopg.connect(database_url) as conn:
        told = conn.execute(previous_release.format("now()"), [1, tenant.id]).fetchone()
        held = conn.execute(previous_release.format("last_alert_at"), [2, tenant.id]).fetchone()
        ended = conn.execute(previous_release.format("last_alert_at"), [0, tenant.id]).fetchone()
        quiet = conn.execute(previous_release.format("last_alert_at"), [1, tenant.id]).fetchone()
    assert (told, held, ended, quiet) == ((True,), (True,), (False,), (False,))


def test_a_database_owner_that_is_no_superuser_can_act_as_its_users(
    pg_server_url: str, configure: Any
) -> None:
    """Managed servers (Cloud SQL, RDS) give the application a CREATEROLE user, never a
    superuser. The migrations create `authenticated` as that user, but creating a role makes
    no member of it: every read made for a user (`SET LOCAL ROLE authenticated`) was refused
    and answered 500. Here the owner holds on `authenticated` what creating it gives its
    creator on this server (PostgreSQL 16 and later: ADMIN, no SET), since the role exists."""
    owner, name = f"syncq_owner_{os.getpid()}", f"syncq_owned_{os.getpid()}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {owner} LOGIN CREATEROLE")
        if conn.info.server_version >= 160000:
            conn.execute(
                f"GRANT authenticated TO {owner} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE"
            )
        conn.execute(f"CREATE DATABASE {name} OWNER {owner}")
    url = psycopg.conninfo.make_conninfo(pg.with_dbname(pg_server_url, name), user=owner)
    try:
        migrate.migrate(url)
        configure(DATABASE_URL=url)
        acme = seed_tenant(url, "acme")
        listed = function_client("list-integrations").get(
            "/", query_string={"tenant_id": str(acme.id)}, headers=bearer(acme.member_token)
        )
        assert listed.status_code == 200, listed.get_json()
    finally:
        db.close_pool()
        pg.drop_database(pg_server_url, name)
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {owner}")


def test_exports_paused_before_0074_get_the_code_their_reason_says(
    pg_server_url: str, tmp_path: Path
) -> None:
    """0074 adds pause_code: an export paused by the previous release (and its alert) gets
    the code its English reason's wording stood for, so the dashboard says it right."""
    folder = _copy(tmp_path, upto=73)
    url = pg.create_database(pg_server_url, f"syncq_pause_code_{os.getpid()}")
    reasons = {
        "paused by an admin": "admin",
        "Gestão Scouter schema does not fit (PGRST204). Validate the schema, …": "schema",
        "Gestão Scouter refused the key (HTTP 401: JWT expired). Fix it, then resume.": "key",
        "Gestão Scouter refused the batch (HTTP 400: 0A000).": "refused",
        "3 batches in a row failed; last: Gestão Scouter kept answering HTTP 503.": "failing",
        "The runner stopped without a word 3 times in a row (crash, timeout …)": "stalled",
        "a wording no release wrote": None,
    }
    try:
        migrate.migrate(url, folder)
        with psycopg.connect(url) as conn:
            for n, reason in enumerate(reasons):
                conn.execute(
                    "WITH t AS (INSERT INTO tenants (slug, name) VALUES (%s, 'T') RETURNING id),"
                    " j AS (INSERT INTO gestao_scouter_export_jobs"
                    "  (tenant_id, field_mappings, batch_size, status, pause_reason)"
                    "  SELECT id, '{}', 50, 'paused', %s FROM t RETURNING id, tenant_id)"
                    " INSERT INTO alert_outbox (tenant_id, provider_slug, event, job_id, detail)"
                    " SELECT tenant_id, 'gestao_scouter', 'export_paused', id, %s FROM j",
                    (f"t{n}", reason, reason),
                )
        for m in migrate.discover():
            shutil.copy(m.path, folder / m.path.name)
        migrate.migrate(url, folder)
        with psycopg.connect(url) as conn:
            jobs = dict(
                conn.execute(
                    "SELECT pause_reason, pause_code FROM gestao_scouter_export_jobs"
                ).fetchall()
            )
            alerts = dict(conn.execute("SELECT detail, pause_code FROM alert_outbox").fetchall())
        assert jobs == reasons and alerts == reasons
    finally:
        pg.drop_database(pg_server_url, pg.dbname_of(url))


def test_exports_at_rest_before_0075_rest_since_they_last_changed(
    pg_server_url: str, tmp_path: Path
) -> None:
    """0075 adds paused_at: an export paused or failed under the previous release rests
    since its last change (updated_at), so its resume leaves that rest out of its rate; one
    that goes or ended does not rest."""
    folder = _copy(tmp_path, upto=74)
    url = pg.create_database(pg_server_url, f"syncq_paused_at_{os.getpid()}")
    statuses = ["paused", "failed", "pending", "completed"]
    try:
        migrate.migrate(url, folder)
        with psycopg.connect(url) as conn:
            for status in statuses:
                conn.execute(
                    "WITH t AS (INSERT INTO tenants (slug, name) VALUES (%s, 'T') RETURNING id)"
                    " INSERT INTO gestao_scouter_export_jobs (tenant_id, field_mappings,"
                    "  batch_size, status, started_at, updated_at)"
                    " SELECT id, '{}', 50, %s, now() - interval '2 hours',"
                    "  now() - interval '1 hour' FROM t",
                    (status, status),
                )
        for m in migrate.discover():
            shutil.copy(m.path, folder / m.path.name)
        migrate.migrate(url, folder)
        with psycopg.connect(url) as conn:
            rested = dict(
                conn.execute(
                    "SELECT status, paused_at = updated_at FROM gestao_scouter_export_jobs"
                ).fetchall()
            )
            resumed = conn.execute(
                "UPDATE gestao_scouter_export_jobs SET status = 'pending'"
                " WHERE status IN ('paused', 'failed') RETURNING paused_s"
            ).fetchall()
        assert rested == {"paused": True, "failed": True, "pending": None, "completed": None}
        assert [3600 <= r[0] < 3660 for r in resumed] == [True, True]
    finally:
        pg.drop_database(pg_server_url, pg.dbname_of(url))


def test_pause_code_is_kept_right_for_a_previous_release_s_writes(database_url: str) -> None:
    """During a rolling deploy, instances of the release before 0074 still pause, resume
    and release exports with their own statements, which write pause_reason and never
    pause_code: a resume left the old code on a pending job, a pause by an admin or by
    failing batches said no code (or the stale one), and their alert none."""
    tenant = seed_tenant(database_url, "acme")
    with psycopg.connect(database_url) as conn:
        created = conn.execute(
            "INSERT INTO gestao_scouter_export_jobs"
            " (tenant_id, field_mappings, batch_size, status, pause_reason, pause_code)"
            " VALUES (%s, '{}', 50, 'paused',"
            "  'Gestão Scouter refused the key (HTTP 401: JWT expired). Fix it, then resume.',"
            "  'key') RETURNING id",
            [tenant.id],
        ).fetchone()
        assert created is not None
        [job_id] = created
        ids = {"id": job_id, "tenant_id": tenant.id}

        def state() -> tuple[Any, ...] | None:
            return conn.execute(
                "SELECT status, pause_reason, pause_code FROM gestao_scouter_export_jobs"
                " WHERE id = %s",
                [job_id],
            ).fetchone()

        # The previous release's `resume` (shared/sql/gestao.sql before 0074).
        conn.execute(
            "UPDATE gestao_scouter_export_jobs"
            " SET status = CASE WHEN status IN ('paused', 'failed') THEN 'pending' ELSE status END,"
            "  pause_requested = false, pause_reason = NULL, error_message = NULL,"
            "  consecutive_failures = 0, run_after = now(), finished_at = NULL"
            " WHERE id = %(id)s AND tenant_id = %(tenant_id)s",
            ids,
        )
        assert state() == ("pending", None, None)
        # Its `request_pause` of a pending job.
        conn.execute(
            "UPDATE gestao_scouter_export_jobs"
            " SET status = CASE WHEN status = 'pending' THEN 'paused' ELSE status END,"
            "  pause_requested = (status = 'running'), pause_reason = 'paused by an admin'"
            " WHERE id = %(id)s AND tenant_id = %(tenant_id)s",
            ids,
        )
        assert state() == ("paused", "paused by an admin", "admin")
        # Resumed and claimed by this release, then paused by the previous one's runner after
        # failing batches: its release (release_set and release_effects) names no code.
        conn.execute(
            "UPDATE gestao_scouter_export_jobs SET status = 'running', pause_requested = false,"
            " pause_reason = NULL, pause_code = NULL WHERE id = %s",
            [job_id],
        )
        failing = "3 batches in a row failed; last: Gestão Scouter kept answering HTTP 503."
        conn.execute(
            "WITH done AS (UPDATE gestao_scouter_export_jobs j"
            "  SET status = 'paused', consecutive_failures = 3, pause_requested = false,"
            "   pause_reason = %(reason)s"
            "  WHERE id = %(id)s RETURNING j.*)"
            " INSERT INTO alert_outbox (tenant_id, provider_slug, event, job_id, failures, detail)"
            " SELECT tenant_id, 'gestao_scouter', 'export_paused', id, consecutive_failures,"
            "  pause_reason FROM done",
            {**ids, "reason": failing},
        )
        assert state() == ("paused", failing, "failing")
        alert = conn.execute("SELECT detail, pause_code FROM alert_outbox").fetchone()
        assert alert == (failing, "failing")


def test_an_exports_rests_add_up_whoever_changes_its_status(database_url: str) -> None:
    """0075's trigger keeps paused_s (the rests that ended since the first start) and
    paused_at (the current rest's start) through the admin's pause, resume and reset and the
    engine's claims and releases: a rest before the first start counts nothing, a failure
    rests until resumed, two rests add up, a rest whose start is ahead of the resume's clock
    adds nothing, and a reset (at rest, or resumed before it ran again) starts from 0."""
    tenant = seed_tenant(database_url, "acme")
    with psycopg.connect(database_url) as conn:
        created = conn.execute(
            "INSERT INTO gestao_scouter_export_jobs (tenant_id, field_mappings, batch_size)"
            " VALUES (%s, '{}', 50) RETURNING id",
            [tenant.id],
        ).fetchone()
    assert created is not None
    [job_id] = created

    def admin(act: Any) -> tuple[Any, ...]:  # shared/gestao/exports.py, as the API does
        with db.transaction() as conn:
            act(conn, tenant.id, job_id)
        return sql(None)

    def sql(statement: str | None, *params: Any) -> tuple[Any, ...]:  # its own now()
        with psycopg.connect(database_url) as conn:
            if statement:
                conn.execute(statement, [*params, job_id])
            row = conn.execute(
                "SELECT status, paused_s, paused_at IS NOT NULL FROM gestao_scouter_export_jobs"
                " WHERE id = %s",
                [job_id],
            ).fetchone()
        assert row is not None
        return tuple(row)

    def rested(seconds: int) -> tuple[Any, ...]:  # the current rest began that long ago
        return sql(
            "UPDATE gestao_scouter_export_jobs"
            " SET paused_at = paused_at + make_interval(secs => %s) WHERE id = %s",
            -seconds,
        )

    def engine(status: str) -> tuple[Any, ...]:  # a claim (jobs.sql), or its release
        return sql(
            "UPDATE gestao_scouter_export_jobs SET status = %s,"
            " started_at = COALESCE(started_at, now() - interval '2 hours') WHERE id = %s",
            status,
        )

    admin(exports.pause)  # pending: paused at once, before its first start
    assert rested(600) == ("paused", 0, True)
    assert admin(exports.resume) == ("pending", 0, False)
    engine("running")
    assert engine("failed") == ("failed", 0, True)
    rested(600)
    status, once, at_rest = admin(exports.resume)
    assert status == "pending" and 600 <= once < 660 and not at_rest
    engine("running")
    engine("paused")
    rested(300)
    status, twice, _ = admin(exports.resume)
    assert 900 <= twice < once + 360  # the two rests add up
    engine("running")
    engine("paused")
    rested(-3600)  # begun "after" the resume's transaction
    assert admin(exports.resume) == ("pending", twice, False)
    assert admin(exports.reset) == ("pending", 0, False)  # resumed, not run again yet
    engine("running")
    engine("paused")
    rested(300)
    assert admin(exports.reset) == ("pending", 0, False)  # at rest


@pytest.mark.parametrize(
    "names",
    [["0001_a.sql", "0001_b.sql"], ["0001-init.sql"], ["1_init.sql"], ["0001_Init.sql"],
     ["0001_two words.sql"], ["0001_.sql"]],
)  # fmt: skip
def test_migration_files_named_out_of_the_rules_are_refused_by_name(
    tmp_path: Path, names: list[str]
) -> None:
    """Two files of one number would leave one never applied (which one depends on the
    names); a name out of NNNN_name.sql is refused rather than read some other way."""
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(ValueError, match=r"two migrations numbered 0001|not NNNN_name\.sql"):
        migrate.discover(tmp_path)


def test_migrations_are_applied_in_number_order(tmp_path: Path) -> None:
    for name in ("0010_c.sql", "0002_b.sql", "0001_a.sql", "0100_d.sql"):
        (tmp_path / name).write_text("SELECT 1;")
    found = [(m.version, m.name) for m in migrate.discover(tmp_path)]
    assert found == [(1, "a"), (2, "b"), (10, "c"), (100, "d")]


def test_a_second_migrator_waits_for_the_first(database_url: str, tmp_path: Path) -> None:
    """Two deploys migrating at once: the second waits on the migrators' lock and then finds
    the work done, rather than applying the same files beside the first."""
    folder = _copy(tmp_path)
    (folder / "0999_probe.sql").write_text("CREATE TABLE probe (n integer);")
    applied: list[list[str]] = []
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [migrate._LOCK_KEY])  # another migrator
        thread = threading.Thread(
            target=lambda: applied.append(migrate.migrate(database_url, folder))
        )
        thread.start()
        thread.join(1.5)
        assert thread.is_alive() and applied == []  # waiting, nothing applied meanwhile
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT to_regclass('probe')").fetchone() == (None,)
        other.execute("SELECT pg_advisory_unlock(%s)", [migrate._LOCK_KEY])
        thread.join(30)
    assert applied == [["0999_probe"]]


def test_a_new_migration_may_reuse_an_old_ones_name(database_url: str, tmp_path: Path) -> None:
    """The rules name a file NNNN_name.sql, not a unique name: a new `0999_tenancy.sql`
    beside the applied `0001_tenancy.sql` was taken for 0001 renumbered ("no file has that
    number", though it has), and no migration ran again until the new file was renamed."""
    folder = _copy(tmp_path)
    first = migrate.discover(folder)[0]
    (folder / f"0999_{first.name}.sql").write_text("CREATE TABLE probe (n integer);")
    assert migrate.migrate(database_url, folder) == [f"0999_{first.name}"]
    assert migrate.migrate(database_url, folder) == []


def test_an_older_release_runs_beside_a_newer_migration_that_reused_a_name(
    database_url: str, tmp_path: Path
) -> None:
    """A rollback after a release whose new file reused an applied one's name: the older
    release has no file of the newer number, and the applied `0001_tenancy.sql` is still
    there under its own number, so nothing was renumbered (it was taken for 0001 moved, and
    the older release could not migrate beside the newer one's database)."""
    folder = _copy(tmp_path)
    first = migrate.discover(folder)[0]
    newer = folder / f"0999_{first.name}.sql"
    newer.write_text("CREATE TABLE probe (n integer);")
    assert migrate.migrate(database_url, folder) == [f"0999_{first.name}"]
    newer.unlink()  # the older release's files
    assert migrate.migrate(database_url, folder) == []
