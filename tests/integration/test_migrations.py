"""The migrations add up to the schema the code expects, and running them twice is a no-op."""

from __future__ import annotations

import psycopg
import pytest

from infra import migrate

pytestmark = pytest.mark.db

EXPECTED_JOB_COLUMNS = {
    "id", "tenant_id", "provider_slug", "status", "progress", "attempts", "max_attempts",
    "started_at", "finished_at", "execution_time_ms", "error_message", "payload", "result",
    "created_by", "created_at", "updated_at", "heartbeat_at", "run_after", "lease_token",
    "cancel_requested",
    "trigger",
    "scheduled_for",
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
