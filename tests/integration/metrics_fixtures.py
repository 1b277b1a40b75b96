"""A hand-built history for the metrics tests: every number the report should show is
counted by hand in the comments (and asserted in test_metrics.py).

Times are placed relative to the database's clock: `D0` is today 00:00 UTC, "day -k" is
D0 - k days + 12 h, and "today" is halfway between D0 and now (so it is always today and
in the past). The window of `days=7` starts at D0 - 6 days.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.support import TenantFixture, seed_tenant

DAY = timedelta(days=1)


@dataclass(frozen=True)
class History:
    acme: TenantFixture
    globex: TenantFixture
    both: uuid.UUID  # a user who is a member of acme and of globex
    now: datetime  # the database's clock when seeded
    d0: datetime  # today 00:00 UTC
    today: datetime  # a moment of today, before now
    exports: dict[str, uuid.UUID]
    leads: dict[int, datetime]  # acme's lead id -> criado

    def day(self, k: int, hours: float = 12) -> datetime:
        """Day -k at the given hour (UTC)."""
        return self.d0 - k * DAY + timedelta(hours=hours)


def db_now(database_url: str) -> datetime:
    """The server's clock, waiting out the last seconds of a UTC day (a test must not
    straddle midnight: its days would shift under it)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    now: datetime = row[0]
    midnight = datetime.combine(now.astimezone(UTC).date() + DAY, datetime.min.time(), UTC)
    if (midnight - now).total_seconds() < 60:
        time.sleep((midnight - now).total_seconds() + 1)
        return db_now(database_url)
    if (now - (midnight - DAY)).total_seconds() < 60:  # just after midnight: "today" too short
        time.sleep(61 - (now - (midnight - DAY)).total_seconds())
        return db_now(database_url)
    return now


def add_job(  # noqa: PLR0917 - the seeds read as one line per job
    conn: psycopg.Connection[Any],
    tenant: uuid.UUID,
    provider: str,
    status: str,
    finished_at: datetime | None,
    ms: int | None,
    **extra: Any,
) -> uuid.UUID:
    """One job row as the engine leaves it (started_at = finished_at - its time)."""
    started = finished_at - timedelta(milliseconds=ms) if finished_at and ms is not None else None
    cols: dict[str, Any] = {
        "tenant_id": tenant, "provider_slug": provider, "status": status, "attempts": 1,
        "finished_at": finished_at, "execution_time_ms": ms, "started_at": started,
        "created_at": (started or finished_at or datetime.now(UTC)) - timedelta(seconds=1),
    }  # fmt: skip
    cols.update(extra)
    names = ", ".join(cols)
    marks = ", ".join(["%s"] * len(cols))
    row = conn.execute(
        f"INSERT INTO integration_jobs ({names}) VALUES ({marks}) RETURNING id",  # type: ignore[arg-type]
        list(cols.values()),
    ).fetchone()
    assert row is not None
    job_id: uuid.UUID = row[0]
    return job_id


def add_export(conn: psycopg.Connection[Any], tenant: uuid.UUID, **cols: Any) -> uuid.UUID:
    values = {"tenant_id": tenant, "field_mappings": Jsonb({"name": "nome"}), "batch_size": 50}
    values.update(cols)
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    row = conn.execute(
        f"INSERT INTO gestao_scouter_export_jobs ({names}) VALUES ({marks}) RETURNING id",  # type: ignore[arg-type]
        list(values.values()),
    ).fetchone()
    assert row is not None
    export_id: uuid.UUID = row[0]
    return export_id


def seed_history(database_url: str) -> History:
    """Two tenants, a user in both, and the history below."""
    acme = seed_tenant(database_url, "acme", providers={
        "acessorias": {}, "onecode": {}, "bomcontrole": {},
        "gestao-scouter": {"project_url": "http://127.0.0.1:9"},  # not a job provider
    })  # fmt: skip
    globex = seed_tenant(database_url, "globex", providers={"acessorias": {}, "onecode": {}})
    both = uuid.uuid4()
    now = db_now(database_url)
    d0 = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
    today = d0 + (now - d0) / 2
    h = History(acme, globex, both, now, d0, today, {}, {})
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%s, %s, 'member'),"
            " (%s, %s, 'member')",
            [acme.id, both, globex.id, both],
        )
        _acme_jobs(conn, h)
        _globex_jobs(conn, h)
        _acme_exports(conn, h)
    return h


def _acme_jobs(conn: psycopg.Connection[Any], h: History) -> None:
    a = h.acme.id
    since = h.d0 - 6 * DAY
    # acessorias, in the window: successes 50 (at the window's very start), 100, 200, 400,
    # 500 (today); errors 300, 1000 (exactly 1 s: the le="1.0" bucket holds it); one
    # canceled without a time. Runs 8, successes 5, errors 2, canceled 1, rate 5/7.
    # Sorted times: 50 100 200 300 400 500 1000 -> p50 (rank 4) 300, p95 (rank 7) 1000.
    add_job(conn, a, "acessorias", "success", since, 50)
    add_job(conn, a, "acessorias", "success", since - timedelta(microseconds=1), 60)  # out
    add_job(conn, a, "acessorias", "success", h.day(10), 5000)  # out of the window
    add_job(conn, a, "acessorias", "success", h.day(6), 100)
    add_job(conn, a, "acessorias", "error", h.day(6, 13), 300)
    add_job(conn, a, "acessorias", "success", h.day(3), 200)
    add_job(conn, a, "acessorias", "success", h.day(3, 14), 400)
    add_job(conn, a, "acessorias", "canceled", h.day(3, 15), None)
    add_job(conn, a, "acessorias", "error", h.day(1), 1000)
    add_job(conn, a, "acessorias", "success", h.today, 500)
    # ... and a pending job due two minutes ago: depth 1, oldest due ~120 s.
    add_job(conn, a, "acessorias", "pending", None, None, attempts=0,
            run_after=h.now - timedelta(seconds=120))  # fmt: skip
    # onecode: success 2000 on day -4 (its last success: 3.5 days ago, at least), errors
    # 50 and 70 on day -2. Runs 3, rate 1/3, p50 (rank 2) 70, p95 (rank 3) 2000.
    # A running job: depth 1, nothing due.
    add_job(conn, a, "onecode", "success", h.day(4), 2000)
    add_job(conn, a, "onecode", "error", h.day(2), 50)
    add_job(conn, a, "onecode", "error", h.day(2, 13), 70)
    add_job(conn, a, "onecode", "running", None, None, started_at=h.now, heartbeat_at=h.now)
    # bomcontrole: one error (30 ms) yesterday, never a success; a pending job due in 1 h.
    add_job(conn, a, "bomcontrole", "error", h.day(1, 13), 30)
    add_job(conn, a, "bomcontrole", "pending", None, None, attempts=0,
            run_after=h.now + timedelta(hours=1))  # fmt: skip
    # retired: no integration row any more, a success 8 days ago (outside the window).
    add_job(conn, a, "retired", "success", h.day(8), 10)


def _globex_jobs(conn: psycopg.Connection[Any], h: History) -> None:
    # globex: one acessorias success (700 ms) yesterday; onecode enabled, never run.
    add_job(conn, h.globex.id, "acessorias", "success", h.day(1), 700)


def _acme_exports(conn: psycopg.Connection[Any], h: History) -> None:
    a = h.acme.id
    # Leads 1..5 created on days -5 (at 13:00), -4, -3, -2, -1 at 00:00.
    for lead_id, k in ((1, 5), (2, 4), (3, 3), (4, 2), (5, 1)):
        criado = h.d0 - k * DAY + (timedelta(hours=13) if lead_id == 1 else timedelta())
        h.leads[lead_id] = criado
        conn.execute(
            "INSERT INTO leads (tenant_id, id, name, criado, updated_at) VALUES (%s, %s, %s, %s, %s)",
            [a, lead_id, f"Lead {lead_id}", criado, criado],
        )
    conn.execute(
        "INSERT INTO leads (tenant_id, id, criado) VALUES (%s, 99, %s)", [h.globex.id, h.now]
    )
    s1 = h.day(5)
    # completed, no range: 3 exported, 1 error of 4 in 100 s; cursor at lead 4, lead 5 is
    # newer: lag = lead 5 - lead 4 = 1 day.
    h.exports["completed"] = add_export(
        conn, a, status="completed", total_leads=4, exported_leads=3, error_leads=1,
        created_at=s1, started_at=s1, finished_at=s1 + timedelta(seconds=100),
        heartbeat_at=s1 + timedelta(seconds=90), cursor_criado=h.leads[4], cursor_id=4,
    )  # fmt: skip
    # running, from day -3: 1 exported in 40 s (to its last heartbeat), cursor at lead 3
    # (the range's first lead, at its very start); newest lead 5: lag 2 days.
    s2 = h.now - timedelta(seconds=60)
    h.exports["running"] = add_export(
        conn, a, status="running", start_date=(h.d0 - 3 * DAY).date(), total_leads=3,
        exported_leads=1, created_at=s2, started_at=s2, heartbeat_at=s2 + timedelta(seconds=40),
        cursor_criado=h.leads[3], cursor_id=3, lease_token=uuid.uuid4(),
    )  # fmt: skip
    # failed before its first batch, up to day -4 (leads 1 and 2): never started, lag =
    # lead 2 - lead 1 = 1 day - 13 h.
    h.exports["unstarted"] = add_export(
        conn, a, status="failed", end_date=(h.d0 - 4 * DAY).date(), total_leads=2,
        created_at=h.day(2), finished_at=h.day(2, 13),
    )  # fmt: skip
    # completed up to day -3 (leads 1-3), cursor at lead 3: caught up, lag 0; 3 in 10 s.
    s4 = h.day(3)
    h.exports["caught_up"] = add_export(
        conn, a, status="completed", end_date=(h.d0 - 3 * DAY).date(), total_leads=3,
        exported_leads=3, created_at=s4, started_at=s4, finished_at=s4 + timedelta(seconds=10),
        cursor_criado=h.leads[3], cursor_id=3,
    )  # fmt: skip
    # Outside the window (created 20 days ago, finished): not shown.
    add_export(conn, a, status="completed", created_at=h.day(20), finished_at=h.day(20))
    # globex's export: never acme's.
    add_export(conn, h.globex.id, status="completed", created_at=h.day(1), finished_at=h.day(1))
