"""A database that does not answer is a 503 with the envelope, never a 500 (a 5xx that is
not a bug): down, the pool held by slow requests, a statement timeout."""

from __future__ import annotations

import random
import socket
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shared import db
from tests.conftest import Configure
from tests.pg_proxy import StallingProxy
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


def test_an_instance_that_started_while_the_database_was_away_is_back_with_it(
    database_url: str, recorder: Any, configure: Configure
) -> None:
    """The first request of a cold instance met the database away (a restart, a failover):
    503. The pool then tried again only after doubling delays (1, 2, 4, 8 s... up to five
    minutes), so for about as long again as the database had been away every request was a
    503 though it was back."""
    tenant = seed_tenant(database_url, "acme")
    port = _closed_port()
    configure(DATABASE_URL=make_conninfo(database_url, host="127.0.0.1", port=port),
              DB_CONNECT_TIMEOUT_S="1")  # fmt: skip
    body = {"tenant_id": str(tenant.id), "provider_slug": "acessorias"}
    forwarder = None
    try:
        assert call("run-integration", body, token=tenant.admin_token).status_code == 503
        time.sleep(3.5)  # away a few seconds more
        server = conninfo_to_dict(database_url)
        forwarder = StallingProxy(str(server.get("host") or "127.0.0.1"),
                                  int(server.get("port") or 5432), listen_port=port)  # fmt: skip
        answer = call("run-integration", body, token=tenant.admin_token)
    finally:
        db.close_pool()
        if forwarder is not None:
            forwarder.close()
    assert answer.status_code == 202, answer.get_json()


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


def test_a_write_tried_again_after_a_fault_waits_the_one_jittered_backoff(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`db.retried` waits the one backoff of syncq (issue 12: equal jitter, so workers hit by
    one blip do not all come back at once), not a formula of its own without jitter: at the
    lowest jitter, half of 0.25 s and then half of 0.5 s."""
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    monkeypatch.setattr(random, "random", lambda: 0.0)
    tries: list[int] = []

    def work(conn: db.Conn) -> int:
        tries.append(len(tries) + 1)
        if len(tries) < 3:
            raise psycopg.OperationalError("the connection dropped")
        row = conn.execute("SELECT 1 AS one").fetchone()
        assert row is not None
        return int(row["one"])

    assert db.retried(work) == 1
    assert (tries, waits) == ([1, 2, 3], [0.125, 0.25])


def test_a_connect_timeout_under_a_second_still_limits_a_connections_wait(
    configure: Configure,
) -> None:
    """DB_CONNECT_TIMEOUT_S=0.5 went to libpq as connect_timeout=0, which is no limit: a
    connection outside the pool (the queue's listener) waited for ever on a server that
    accepts and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts for it
        port = int(silent.getsockname()[1])
        configure(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/postgres",
                  DB_CONNECT_TIMEOUT_S="0.5")  # fmt: skip
        failed: list[BaseException] = []

        def connect() -> None:
            try:
                db.dedicated_connection().close()
            except psycopg.OperationalError as exc:
                failed.append(exc)

        started = time.monotonic()
        waiting = threading.Thread(target=connect, daemon=True)
        waiting.start()
        waiting.join(10)
        assert failed, "still waiting after 10 s"
        assert time.monotonic() - started < 5  # libpq's least wait is 2 s
