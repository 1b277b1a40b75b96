"""The dashboard's reads of a tenant's job history stay flat with that history: on a tenant
with many jobs, list-integrations finds each integration's newest job in one index descent,
also for an integration that ran long ago or never (gestao-scouter has no jobs at all)."""

from __future__ import annotations

from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from shared import db
from shared.sqlfiles import query
from tests.support import bearer, function_client, plan_nodes, seed_tenant

pytestmark = pytest.mark.db

JOBS = 20_000
SEED = """
INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts, started_at,
                              finished_at, execution_time_ms, created_at)
SELECT %(tenant_id)s, (%(providers)s::text[])[1 + g %% cardinality(%(providers)s::text[])],
       'success', 1, c, c + interval '1 s', 1000, c
FROM generate_series(1, %(jobs)s) AS g, LATERAL (SELECT now() - make_interval(mins => g)) AS x(c)
"""


def rows_read(
    conn: psycopg.Connection[Any], statement: LiteralString, params: dict[str, Any]
) -> int:
    """Rows the statement's scans of integration_jobs read, kept or filtered out."""
    row = conn.execute(
        sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + sql.SQL(statement), params
    ).fetchone()
    assert row is not None
    return sum(
        int((n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"])
        for n in plan_nodes(row["QUERY PLAN"][0]["Plan"])
        if n.get("Relation Name") == "integration_jobs"
    )


def test_list_integrations_reads_one_job_per_integration(database_url: str) -> None:
    providers: dict[str, dict[str, Any]] = {
        "acessorias": {}, "bomcontrole": {}, "onecode": {}, "gestao-scouter": {}
    }  # fmt: skip
    acme = seed_tenant(database_url, "acme", providers=providers)
    others = [seed_tenant(database_url, slug).id for slug in ("globex", "initech")]
    with psycopg.connect(database_url) as conn:
        # acme's history is Acessórias and BomControle; OneCode ran once, long ago.
        busy = ["acessorias", "bomcontrole"]
        conn.execute(SEED, {"tenant_id": acme.id, "jobs": JOBS, "providers": busy})
        for other in others:
            every = ["acessorias", "bomcontrole", "onecode"]
            conn.execute(SEED, {"tenant_id": other, "jobs": JOBS // 4, "providers": every})
        old = conn.execute(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, status, created_at)"
            " VALUES (%s, 'onecode', 'success', now() - interval '400 days') RETURNING id",
            [acme.id],
        ).fetchone()
    assert old is not None
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE integration_jobs")

    answer = function_client("list-integrations").get(
        "/", query_string={"tenant_id": str(acme.id)}, headers=bearer(acme.member_token)
    )
    assert answer.status_code == 200, answer.get_json()
    latest = {i["provider_slug"]: i["latest_job"] for i in answer.get_json()["integrations"]}
    assert latest["onecode"]["id"] == str(old[0]) and latest["gestao-scouter"] is None

    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        db.act_as_user(conn, acme.member)
        read = rows_read(conn, query("tenancy", "list_integrations"), {"tenant_id": acme.id})
    # One newest job per integration at most (its id from the index, then its row), not the
    # tenant's history walked for the integration that ran long ago and the one that never ran.
    assert read <= 2 * len(providers), f"read {read} job rows of {JOBS + 1}"
