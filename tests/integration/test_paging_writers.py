"""Concurrent upsert batches against real PostgreSQL: sorted batches that share keys never
deadlock, and every row ends up written once (paging.walk with writers > 1)."""

from __future__ import annotations

import random
import threading
from typing import Any

import psycopg
import pytest

from shared import jsonio
from shared.sqlfiles import query
from tests.support import rows, seed_tenant

pytestmark = pytest.mark.db
KEYS = [f"{n:05d}" for n in range(400)]


def batch(rng: random.Random, version: int) -> list[dict[str, Any]]:
    """A sorted batch of 120 random keys (so batches in flight overlap heavily)."""
    keys = sorted(rng.sample(KEYS, 120))
    return [{"external_id": k, "name": f"v{version}", "tags": []} for k in keys]


def test_overlapping_sorted_batches_on_four_connections_do_not_deadlock(
    database_url: str,
) -> None:
    tenant = seed_tenant(database_url, "writers")
    sql = query("onecode", "upsert_contacts")
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(database_url) as conn:
                start.wait()
                for version in range(25):
                    with conn.transaction():
                        body = jsonio.dumps(batch(rng, version))
                        conn.execute(sql, {"tenant_id": tenant.id, "rows": body})
        except BaseException as exc:  # reported below, on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    written = rows(database_url, "SELECT count(*) AS n, count(DISTINCT external_id) AS d"
                   " FROM onecode_contacts WHERE tenant_id = %s", tenant.id)  # fmt: skip
    assert written[0]["n"] == written[0]["d"] > 300
