"""Helpers for tests: seed tenants and users, mint tokens, load functions."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import functions_framework
import psycopg
from flask.testing import FlaskClient
from psycopg.types.json import Jsonb

from shared import db
from shared.auth import mint_token

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class TenantFixture:
    id: uuid.UUID
    slug: str
    admin: uuid.UUID
    member: uuid.UUID

    @property
    def admin_token(self) -> str:
        return mint_token(user_id=self.admin)

    @property
    def member_token(self) -> str:
        return mint_token(user_id=self.member)


def seed_tenant(
    database_url: str,
    slug: str,
    *,
    providers: dict[str, dict[str, Any]] | None = None,
    enabled: bool = True,
    tenant_id: uuid.UUID | None = None,
) -> TenantFixture:
    """A tenant with an admin, a member and the given integrations (provider -> config)."""
    tenant = TenantFixture(tenant_id or uuid.uuid4(), slug, uuid.uuid4(), uuid.uuid4())
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO tenants (id, slug, name) VALUES (%s, %s, %s)",
            [tenant.id, slug, slug.title()],
        )
        conn.execute(
            "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%s, %s, 'admin'),"
            " (%s, %s, 'member')",
            [tenant.id, tenant.admin, tenant.id, tenant.member],
        )
        for provider, config in (providers or {"acessorias": {}}).items():
            conn.execute(
                "INSERT INTO tenant_integrations (tenant_id, provider_slug, enabled, config)"
                " VALUES (%s, %s, %s, %s)",
                [tenant.id, provider, enabled, Jsonb(config)],
            )
    return tenant


def service_token() -> str:
    return mint_token(service=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@cache
def _app(name: str) -> Any:
    return functions_framework.create_app(  # type: ignore[no-untyped-call]
        target="main", source=str(ROOT / "functions" / name / "main.py")
    )


def function_client(name: str) -> FlaskClient:
    """A test client of a function, loaded the way functions-framework loads it."""
    client: FlaskClient = _app(name).test_client()
    return client


def rows(database_url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    """Rows of a query, as dicts."""
    from psycopg.rows import dict_row

    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(sql, params or None).fetchall()


def terminate_lock_waiters(database_url: str) -> None:
    """Terminate syncq's backends of this database that wait for a lock, once one does (a
    connection dropped in the middle of a write the test holds a row against)."""
    for _ in range(200):
        with psycopg.connect(database_url) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                " AND application_name = 'syncq'"
            ).fetchall()
        if killed:
            return
        time.sleep(0.05)
    raise AssertionError("no syncq backend waited for a lock")


def lose_the_first_commit_answer(monkeypatch: Any) -> None:
    """From now on, the first `db.retried` transaction commits, then its connection drops
    before the commit's answer arrives (the writer cannot tell whether it was written)."""
    real, lost = db._in_transaction, list[bool]()

    def answer_lost(work: Any) -> Any:
        done = real(work)
        if not lost:
            lost.append(True)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return done

    monkeypatch.setattr(db, "_in_transaction", answer_lost)


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first."""
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def call(name: str, body: Any = None, *, token: str | None = None, path: str = "/") -> Any:
    """POST JSON to a function; returns the test response."""
    headers = bearer(token) if token else {}
    return function_client(name).post(path, json=body if body is not None else {}, headers=headers)


def drain(recorder: Any, *, rounds: int = 50) -> list[Any]:
    """Deliver recorded Cloud Tasks (honouring their delays) until none is left."""
    import time

    delivered: list[tuple[Any, int]] = []
    for _ in range(rounds):
        tasks = recorder.take()
        if not tasks:
            return delivered
        for task in sorted(tasks, key=lambda t: t.delay_s):
            if task.delay_s > 0:
                time.sleep(min(task.delay_s, 2.0))
            response = call(task.function, task.body, token=service_token(), path=task.path or "/")
            delivered.append((task, response.status_code))
    raise AssertionError("tasks kept coming")
