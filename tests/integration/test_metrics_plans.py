"""The metrics' cost stays flat with history: on a seeded table (60k jobs over 20 tenants and
400 days), every metrics statement reads integration_jobs through indexes (the window ones
through integration_jobs_finished_idx), never a sequential scan, as a user under RLS and as
the service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from shared import db
from shared.metrics import derive
from shared.metrics import store as metrics
from shared.metrics.service import snapshot_transaction
from shared.queue.store import TABLE as QUEUE
from shared.sqlfiles import query
from tests.support import plan_nodes, seed_tenant

pytestmark = pytest.mark.db

FINISHED_IDX = "integration_jobs_finished_idx"
SEED = """
INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts, started_at,
                              finished_at, execution_time_ms, created_at)
SELECT t.ids[1 + g %% 20], (ARRAY['acessorias', 'onecode', 'bomcontrole'])[1 + g %% 3],
       (ARRAY['success', 'success', 'error', 'canceled'])[1 + g %% 4], 1,
       f - make_interval(secs => 1 + g %% 600), f, (1 + g %% 600) * 1000, f - interval '10 min'
FROM generate_series(1, 60000) AS g,
     LATERAL (SELECT now() - make_interval(days => g %% 400, mins => g %% 1440) AS f) AS x,
     (SELECT %(tenants)s::uuid[] AS ids) AS t
"""


def explain(
    conn: psycopg.Connection[Any], name: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    stmt = sql.SQL("EXPLAIN (FORMAT JSON) ") + metrics.statement(name)
    row = conn.execute(stmt, params).fetchone()
    assert row is not None
    return list(plan_nodes(row["QUERY PLAN"][0]["Plan"]))


def scans(nodes: list[dict[str, Any]], relation: str) -> set[tuple[str, str | None]]:
    return {
        (n["Node Type"], n.get("Index Name")) for n in nodes if n.get("Relation Name") == relation
    }


@pytest.fixture
def seeded(database_url: str) -> tuple[str, list[uuid.UUID]]:
    tenants = [seed_tenant(database_url, f"t{i:02d}").id for i in range(20)]
    with psycopg.connect(database_url) as conn:
        conn.execute(SEED, {"tenants": tenants})  # type: ignore[arg-type]
        conn.execute(
            "INSERT INTO leads (tenant_id, id, criado) SELECT %s, g,"
            " now() - make_interval(mins => g) FROM generate_series(1, 20000) AS g",
            [tenants[0]],
        )
        conn.execute(
            "INSERT INTO gestao_scouter_export_jobs (tenant_id, status, field_mappings, batch_size,"
            " created_at, started_at) VALUES (%s, 'running', '{}', 50, now(), now())",
            [tenants[0]],
        )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return database_url, tenants


def test_tenant_reads_use_indexes_under_rls(seeded: tuple[str, list[uuid.UUID]]) -> None:
    url, tenants = seeded
    user = uuid.uuid4()
    with psycopg.connect(url, row_factory=dict_row) as conn:
        conn.execute(
            "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%s, %s, 'member')",
            [tenants[0], user],
        )
        db.act_as_user(conn, user)
        now: datetime = conn.execute("SELECT now() AS now").fetchone()["now"]  # type: ignore[index]
        since, days = derive.window(now, 30)
        base = {"tenant_id": tenants[0], "since": since}
        providers = ["acessorias", "bomcontrole", "onecode"]
        plans = {
            "tenant_providers": explain(conn, "tenant_providers", {**base, "registered": providers}),
            "provider_stats": explain(conn, "provider_stats", {**base, "providers": providers}),
            "daily_series": explain(conn, "daily_series", {
                **base, "providers": providers, "first_day": days[0], "last_day": days[-1]}),
            "exports": explain(conn, "exports", base),
        }  # fmt: skip
    for name, nodes in plans.items():
        jobs = scans(nodes, "integration_jobs")
        assert not any(kind == "Seq Scan" for kind, _ in jobs), (name, jobs)
        assert not any(kind == "Seq Scan" for kind, _ in scans(nodes, "leads")), name
    for name in ("provider_stats", "daily_series"):
        assert FINISHED_IDX in {index for _, index in scans(plans[name], "integration_jobs")}, name
    assert {i for _, i in scans(plans["exports"], "leads")} == {"leads_criado_idx"}


def test_service_reads_use_indexes(seeded: tuple[str, list[uuid.UUID]]) -> None:
    url, tenants = seeded
    with psycopg.connect(url, row_factory=dict_row) as conn:
        now: datetime = conn.execute("SELECT now() AS now").fetchone()["now"]  # type: ignore[index]
        since, _ = derive.window(now, 30)
        bounds = list(derive.DURATION_BUCKETS_S)
        for tenant_id in (None, tenants[3]):
            depth = QUEUE.statement("depth").as_string(conn)
            row = conn.execute(
                f"EXPLAIN (FORMAT JSON) {depth}", {"tenant_id": tenant_id}
            ).fetchone()  # type: ignore[arg-type]
            assert row is not None
            plans = {
                "queue depth": list(plan_nodes(row["QUERY PLAN"][0]["Plan"])),
                "finished_by_provider": explain(conn, "finished_by_provider", {
                    "tenant_id": tenant_id, "since": since, "bounds_s": bounds}),
                "schedule_skew": explain(conn, "schedule_skew", {
                    "tenant_id": tenant_id, "since": since, "bounds_s": bounds}),
            }  # fmt: skip
            for name, nodes in plans.items():
                jobs = scans(nodes, "integration_jobs")
                assert jobs and not any(k == "Seq Scan" for k, _ in jobs), (name, tenant_id, jobs)
            for name in ("finished_by_provider", "schedule_skew"):
                window = {i for _, i in scans(plans[name], "integration_jobs")}
                assert FINISHED_IDX in window, (name, window)


def test_the_report_transaction_plans_for_its_values(
    seeded: tuple[str, list[uuid.UUID]],
) -> None:
    """Even on a server that prefers generic plans (psycopg prepares a statement after its
    5th run), the report's statements get plans for their values, one snapshot, no JIT."""
    url, tenants = seeded
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} SET plan_cache_mode = force_generic_plan")  # type: ignore[arg-type]
    db.close_pool()
    with snapshot_transaction(None) as conn:
        settings = conn.execute(
            "SELECT current_setting('plan_cache_mode') AS plans, current_setting('jit') AS jit,"
            " current_setting('transaction_isolation') AS iso,"
            " current_setting('transaction_read_only') AS ro"
        ).fetchone()
        assert settings == {
            "plans": "force_custom_plan", "jit": "off", "iso": "repeatable read", "ro": "on",
        }  # fmt: skip
        now: datetime = conn.execute("SELECT now() AS now").fetchone()["now"]  # type: ignore[index]
        since, days = derive.window(now, 30)
        # By hand, values bound client-side: EXPLAIN EXECUTE takes no bind parameters.
        psycopg.ClientCursor(conn).execute(
            "PREPARE series (uuid, text[], timestamptz, date, date) AS "  # type: ignore[arg-type]
            + query("metrics", "daily_series")
            .replace("%(tenant_id)s", "$1").replace("%(providers)s", "$2")
            .replace("%(since)s", "$3").replace("%(first_day)s", "$4")
            .replace("%(last_day)s", "$5")
        )  # fmt: skip
        row = (
            psycopg.ClientCursor(conn)
            .execute(
                "EXPLAIN (FORMAT JSON) EXECUTE series(%s, %s, %s, %s, %s)",
                [tenants[0], ["acessorias", "onecode"], since, days[0], days[-1]],
            )
            .fetchone()
        )
    assert row is not None
    conds = [n.get("Index Cond", "") for n in plan_nodes(row["QUERY PLAN"][0]["Plan"])
             if n.get("Index Name") == FINISHED_IDX]  # fmt: skip
    assert conds and all("provider_slug" in c and "status" in c for c in conds), conds
