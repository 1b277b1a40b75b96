"""The metrics' reads (shared/sql/metrics.sql). Queue and export tables are read here
through SQL only: metrics imports neither capability (tests/unit/test_metrics_units.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from functools import cache
from typing import Any
from uuid import UUID

from psycopg import sql

from shared.db import Conn, Row
from shared.jobs import store as engine
from shared.jobs.table import JobTable
from shared.sqlfiles import query

# A piece of SQL that several statements share, written once in metrics.sql and put in
# place of `{name}` in their text.
FRAGMENTS = ("finished_pairs",)


@cache
def statement(name: str) -> sql.SQL | sql.Composed:
    """The named statement of metrics.sql, with the fragments it names in place."""
    text = query("metrics", name)
    used = {f: sql.SQL(query("metrics", f)) for f in FRAGMENTS if "{" + f + "}" in text}
    return sql.SQL(text).format(**used) if used else sql.SQL(text)


def _rows(conn: Conn, name: str, params: dict[str, Any]) -> list[Row]:
    return conn.execute(statement(name), params).fetchall()


def now(conn: Conn) -> datetime:
    """The transaction's clock: every statement of one report sees the same now()."""
    row = conn.execute(query("metrics", "clock")).fetchone()
    assert row is not None
    at: datetime = row["now"]
    return at


def tenant_providers(conn: Conn, tenant_id: UUID, registered: Sequence[str]) -> list[str]:
    """Providers the tenant has jobs for, and its enabled integrations among `registered`."""
    params = {"tenant_id": tenant_id, "registered": list(registered)}
    return [r["provider_slug"] for r in _rows(conn, "tenant_providers", params)]


def provider_stats(
    conn: Conn, tenant_id: UUID, providers: Sequence[str], since: datetime
) -> list[Row]:
    params = {"tenant_id": tenant_id, "providers": list(providers), "since": since}
    return _rows(conn, "provider_stats", params)


def daily_series(
    conn: Conn, tenant_id: UUID, providers: Sequence[str], since: datetime, days: Sequence[date]
) -> list[Row]:
    params = {
        "tenant_id": tenant_id,
        "providers": list(providers),
        "since": since,
        "first_day": days[0],
        "last_day": days[-1],
    }
    return _rows(conn, "daily_series", params)


def exports(conn: Conn, tenant_id: UUID, since: datetime) -> list[Row]:
    return _rows(conn, "exports", {"tenant_id": tenant_id, "since": since})


def queue_by_kind(conn: Conn, tables: Mapping[str, JobTable], tenant_id: UUID | None) -> list[Row]:
    """Live work per job kind (kind name -> its table), through the engine."""
    return [
        {"kind": kind, **engine.depth(conn, table, tenant_id)} for kind, table in tables.items()
    ]


def finished_by_provider(
    conn: Conn, tenant_id: UUID | None, since: datetime, bounds_s: Sequence[float]
) -> list[Row]:
    params = {"tenant_id": tenant_id, "since": since, "bounds_s": list(bounds_s)}
    return _rows(conn, "finished_by_provider", params)


def schedule_periods(conn: Conn, tenant_id: UUID) -> list[Row]:
    return _rows(conn, "schedule_periods", {"tenant_id": tenant_id})


def alert_failures(
    conn: Conn, tenant_id: UUID | None, since: datetime, provider_slug: str | None = None
) -> list[Row]:
    args = {"tenant_id": tenant_id, "since": since, "provider_slug": provider_slug}
    return _rows(conn, "alert_failures", args)


def schedule_skew(
    conn: Conn, tenant_id: UUID | None, since: datetime, bounds_s: Sequence[float]
) -> list[Row]:
    params = {"tenant_id": tenant_id, "since": since, "bounds_s": list(bounds_s)}
    return _rows(conn, "schedule_skew", params)
