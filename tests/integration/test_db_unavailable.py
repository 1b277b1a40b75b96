"""A database that does not answer is a 503 with the envelope, never a 500 (a 5xx that is
not a bug): down, the pool held by slow requests, a statement timeout."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from psycopg.conninfo import make_conninfo

from shared import db
from tests.conftest import Configure
from tests.support import bearer, call, function_client, rows, seed_tenant

pytestmark = pytest.mark.db
UNAVAILABLE = {
    "code": "database_unavailable",
    "message": "The database is unavailable; retry shortly.",
}


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return int(server.getsockname()[1])  # nothing listens there once this closes


def test_a_database_that_does_not_answer_is_503(
    database_url: str, recorder: Any, configure: Configure
) -> None:
    tenant = seed_tenant(database_url, "acme")
    down = make_conninfo(database_url, host="127.0.0.1", port=_closed_port())
    configure(DATABASE_URL=down, DB_CONNECT_TIMEOUT_S="1")
    try:
        body = {"tenant_id": str(tenant.id), "provider_slug": "acessorias"}
        answer = call("run-integration", body, token=tenant.admin_token)
    finally:
        db.close_pool()
    assert answer.status_code == 503, answer.get_json()
    assert answer.get_json() == {"error": UNAVAILABLE}
    assert answer.headers["Retry-After"] == "5"
    assert rows(database_url, "SELECT id FROM integration_jobs") == []


def test_a_pool_held_by_a_slow_request_is_503(
    database_url: str, recorder: Any, configure: Configure
) -> None:
    tenant = seed_tenant(database_url, "acme")
    configure(DB_POOL_MAX="1", DB_CONNECT_TIMEOUT_S="1")
    try:
        with db.transaction():  # the only connection, held by a slow request
            answer = function_client("list-integration-jobs").get(
                "/", query_string={"tenant_id": str(tenant.id)}, headers=bearer(tenant.member_token)
            )
    finally:
        db.close_pool()
    assert answer.status_code == 503, answer.get_json()
    assert answer.get_json() == {"error": UNAVAILABLE}
    assert answer.headers["Retry-After"] == "5"
