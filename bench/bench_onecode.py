"""Provider ingest: a full OneCode sync of N contacts against the emulator, beside row-by-row.

    .venv/bin/python -m bench.bench_onecode [--records 50000] [--repeat 1] [--json PATH]

The emulator runs as its own process (`python -m infra.emulators.onecode`), like the real
API is another machine; PostgreSQL is DATABASE_URL, else an embedded server. Contenders:

* syncq: the real sync (`run_direct` -> the worker's state machine): 100 contacts per
  page, fetched 8 pages ahead, one `jsonb_to_recordset` upsert per 500 rows with two in
  flight, heartbeats, the job row finished.
* syncq re-sync: the same again with nothing changed (the IS DISTINCT FROM guard writes
  no row).
* row-by-row: the same pages fetched with the same client, then one upsert statement and
  one commit per contact — what the old edge function did (same statement, same JSON
  writer).
* db only: the same statement over the pre-fetched, mapped rows — 500 per statement vs
  one per statement and commit (the database side of the comparison, without HTTP).
Records/s is wall time from the first request to the last commit. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from bench import _pg
from infra import migrate
from shared import jsonio

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-onecode-token"


@contextmanager
def emulator(records: int) -> Iterator[str]:
    """The OneCode emulator in its own process, seeded with `records` contacts."""
    cmd = [sys.executable, "-m", "infra.emulators.onecode", "--port", "0",
           "--seed-token", f"{TOKEN}={records}"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip().rsplit(" ", 1)[-1]
    finally:
        proc.terminate()
        proc.wait(10)


def configure(db_url: str) -> None:
    """Point shared/ at this database, with production-like provider settings."""
    from shared import db, dispatch, secrets
    from shared.secrets import env_var, secret_name
    from shared.settings import reload_settings

    os.environ.update({
        "DATABASE_URL": db_url, "DISPATCHER": "disabled", "SECRET_BACKEND": "env",
        "JWT_SECRET": "bench-secret-" + "x" * 40, "PROVIDER_TIMEOUT_S": "30",
        env_var(secret_name("bench", "onecode", "token")): TOKEN,
    })  # fmt: skip
    reload_settings()
    db.close_pool()
    dispatch.reset_dispatcher()
    secrets.reset_store()


def seed_tenant(db_url: str, base_url: str) -> uuid.UUID:
    migrate.migrate(db_url)
    tenant = uuid.uuid4()
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO tenants (id, slug, name) VALUES (%s, 'bench', 'Bench')", [tenant])
        conn.execute(
            "INSERT INTO tenant_integrations (tenant_id, provider_slug, enabled, config)"
            " VALUES (%s, 'onecode', true, %s)",
            [tenant, json.dumps({"base_url": base_url})],
        )
    return tenant


def count(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM onecode_contacts").fetchone()
    return int(row[0]) if row else 0


def run_syncq(tenant: uuid.UUID) -> tuple[float, dict[str, Any]]:
    """The real sync through the queue's direct path; seconds and its result."""
    from shared.auth import SERVICE
    from shared.queue.service import run_direct

    started = time.perf_counter()
    result = run_direct(SERVICE, "onecode", tenant_id=tenant)
    return time.perf_counter() - started, result


def run_row_by_row(db_url: str, base_url: str, tenant: uuid.UUID) -> tuple[float, int]:
    """Same pages, same client; one statement and one commit per contact."""
    from shared.db import connect_kwargs
    from shared.providers import onecode
    from shared.providers.base import http_client
    from shared.settings import get_settings
    from shared.sqlfiles import query

    client = http_client(base_url, get_settings(), onecode.NAME)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    sql = query("onecode", "upsert_contacts")
    written = 0
    started = time.perf_counter()
    with psycopg.connect(db_url, **connect_kwargs()) as conn:
        conn.autocommit = True
        for number in range(1, 100_000):
            response = client.request(
                "GET", "/api/contacts", params={"page": number, "pageSize": 100}, headers=headers
            )
            page = onecode.parse_page(response, 100)
            for row in page.rows:
                conn.execute(sql, {"tenant_id": tenant, "rows": jsonio.dumps([row])})
                written += 1
            if not page.rows or number * page.size >= page.total:
                break
    return time.perf_counter() - started, written


def fetch_rows(base_url: str) -> list[dict[str, Any]]:
    """Every contact, mapped as the sync maps it (for the database-only contenders)."""
    from shared.providers import onecode
    from shared.providers.base import http_client
    from shared.settings import get_settings

    client = http_client(base_url, get_settings(), onecode.NAME)
    out: list[dict[str, Any]] = []
    for number in range(1, 100_000):
        response = client.request(
            "GET",
            "/api/contacts",
            params={"page": number, "pageSize": 100},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        page = onecode.parse_page(response, 100)
        out += page.rows
        if not page.rows or number * page.size >= page.total:
            return out
    return out


def upsert_only(db_url: str, tenant: uuid.UUID, rows: list[dict[str, Any]], batch: int) -> float:
    """The same upsert statement over pre-fetched rows, `batch` rows per transaction."""
    from shared.db import connect_kwargs
    from shared.sqlfiles import query

    sql = query("onecode", "upsert_contacts")
    with psycopg.connect(db_url, **connect_kwargs()) as conn:
        conn.execute("TRUNCATE onecode_contacts")
        conn.commit()
        conn.autocommit = True
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            with conn.transaction():
                chunk = jsonio.dumps(rows[start : start + batch])
                conn.execute(sql, {"tenant_id": tenant, "rows": chunk})
        return time.perf_counter() - started


def warm_up(base_url: str, records: int) -> None:
    """Read every page once, untimed: the emulator serializes each contact on first use,
    and that one-off cost must not land on whichever contender runs first."""
    import httpx

    with httpx.Client(base_url=base_url, timeout=30) as client:
        for number in range(1, records // 100 + 2):
            client.get(
                "/api/contacts",
                params={"page": number, "pageSize": 100},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ).raise_for_status()


def measure(server_url: str, base_url: str, records: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with _pg.fresh_database(server_url, "onecode") as db_url:
        tenant = seed_tenant(db_url, base_url)
        configure(db_url)
        seconds, result = run_syncq(tenant)
        assert result["records"] == records == count(db_url), (result, count(db_url))
        out.append({"contender": "syncq sync (batched upserts)", "seconds": seconds})
        seconds, result = run_syncq(tenant)
        assert result["changed"] == 0
        out.append({"contender": "syncq re-sync (nothing changed)", "seconds": seconds})
        with psycopg.connect(db_url) as conn:
            conn.execute("TRUNCATE onecode_contacts")
        seconds, written = run_row_by_row(db_url, base_url, tenant)
        assert written == records == count(db_url)
        out.append({"contender": "row-by-row upsert", "seconds": seconds})
        rows = fetch_rows(base_url)
        out.append({"contender": "db only: batched (500/stmt)", "seconds": upsert_only(
            db_url, tenant, rows, 500)})  # fmt: skip
        out.append({"contender": "db only: row-by-row", "seconds": upsert_only(
            db_url, tenant, rows, 1)})  # fmt: skip
        from shared import db

        db.close_pool()
    for item in out:
        item["records"] = records
        item["records_per_s"] = round(records / item["seconds"], 1)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_onecode", description=__doc__)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs; the median is shown")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    runs: list[list[dict[str, Any]]] = []
    with _pg.server() as server_url, emulator(args.records) as base_url:
        version = _pg.server_version(server_url)
        warm_up(base_url, args.records)
        for _ in range(args.repeat):
            runs.append(measure(server_url, base_url, args.records))
    best = [_median(runs, i) for i in range(len(runs[0]))]
    baselines = [best[2]["records_per_s"]] * 3 + [best[4]["records_per_s"]] * 2
    rows = [
        [b["contender"], f"{b['records']}", f"{b['seconds']:.2f}", f"{b['records_per_s']:.0f}",
         f"{b['records_per_s'] / base:.1f}x"]
        for b, base in zip(best, baselines, strict=True)
    ]  # fmt: skip
    print(f"OneCode ingest, {args.records} contacts, {version}, median of {args.repeat}")
    print(_pg.render_table(["contender", "records", "seconds", "records/s", "vs row-by-row"], rows))
    if args.json:
        _pg.write_json(args.json, {"server": version, "results": best})
    return 0


def _median(runs: list[list[dict[str, Any]]], index: int) -> dict[str, Any]:
    ordered = sorted((r[index] for r in runs), key=lambda item: item["seconds"])
    return ordered[len(ordered) // 2]


if __name__ == "__main__":
    sys.exit(main())
