"""Row-level security on the OneCode and BomControle tables: a user sees only their tenants."""

from __future__ import annotations

import psycopg
import pytest

from shared import db
from tests.support import seed_tenant

pytestmark = pytest.mark.db
TABLES = ("onecode_contacts", "bomcontrole_financial_entries", "bomcontrole_clients")


def test_a_user_reads_only_rows_of_their_own_tenant(database_url: str) -> None:
    providers: dict[str, dict[str, object]] = {"onecode": {}, "bomcontrole": {}}
    a = seed_tenant(database_url, "acme", providers=providers)
    b = seed_tenant(database_url, "globex", providers=providers)
    with psycopg.connect(database_url) as conn:
        for tenant in (a, b):
            for table in TABLES:
                conn.execute(
                    f"INSERT INTO {table} (tenant_id, external_id) VALUES (%s, %s)",  # type: ignore[arg-type]
                    [tenant.id, f"{tenant.slug}-1"],
                )
    for user, tenant in ((a.member, a), (b.admin, b)):
        with db.user_transaction(user) as conn:
            for table in TABLES:
                seen = conn.execute(f"SELECT tenant_id, external_id FROM {table}").fetchall()  # type: ignore[arg-type]
                assert seen == [{"tenant_id": tenant.id, "external_id": f"{tenant.slug}-1"}]
                # The filter the code might forget makes no difference: RLS already applied.
                other = a if tenant is b else b
                hidden = conn.execute(
                    f"SELECT count(*) AS n FROM {table} WHERE tenant_id = %s",  # type: ignore[arg-type]
                    [other.id],
                ).fetchone()
                assert hidden == {"n": 0}
