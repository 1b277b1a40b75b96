"""The PostgreSQL connection pool and transaction helpers.

One pool per process, created on first use and reused by warm invocations. A block of
`transaction()` is one transaction: committed on success, rolled back on any exception.
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast
from uuid import UUID

import psycopg
import tenacity
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from shared.backoff import backoff_delay, retrying
from shared.settings import get_settings

Conn = psycopg.Connection[DictRow]
Row = dict[str, Any]
T = TypeVar("T")

_pool: ConnectionPool[Conn] | None = None
_pool_lock = threading.Lock()


# Date and time as syncq reads and writes them, whatever the server's or the database's
# defaults: psycopg reads a timestamptz in the ISO style only, and times come back in UTC.
SESSION_TIME = "-c DateStyle=ISO -c IntervalStyle=postgres -c TimeZone=UTC"


def connect_kwargs() -> dict[str, Any]:
    """Options every syncq connection gets: dict rows, a statement timeout, ISO times in
    UTC, and UTF-8 on the wire whatever the server's default (the export posts a body as
    Postgres sent it)."""
    settings = get_settings()
    return {
        "row_factory": dict_row,
        # Whole seconds for libpq, rounded up: a 0 there would be no limit.
        "connect_timeout": math.ceil(settings.db.db_connect_timeout_s),
        "options": f"-c statement_timeout={settings.db.db_statement_timeout_ms} {SESSION_TIME}",
        "application_name": "syncq",
        "client_encoding": "UTF8",
    }


def get_pool() -> ConnectionPool[Conn]:
    """The process-wide pool (opened lazily)."""
    global _pool  # noqa: PLW0603 - the one long-lived pool per process, by design
    with _pool_lock:
        if _pool is None:
            settings = get_settings()
            pool = ConnectionPool(
                settings.db.database_url,
                connection_class=cast(type[Conn], psycopg.Connection),
                kwargs=connect_kwargs(),
                min_size=settings.db.db_pool_min,
                max_size=settings.db.db_pool_max,
                timeout=settings.db.db_connect_timeout_s,
                # A connection the server dropped while it sat idle (a restart, a failover,
                # an idle timeout) is replaced before a request gets it, not after it failed.
                check=ConnectionPool.check_connection,
                # A connection that cannot be made is tried again with a doubling delay:
                # given up after this long, the next request that waits starts afresh, so
                # an instance that came up while the database was away is back with it,
                # not minutes later (the delay of a try that failed for as long).
                reconnect_timeout=settings.db.db_connect_timeout_s,
                open=False,
                name="syncq",
            )
            pool.open(wait=False)
            _pool = pool
        return _pool


def close_pool() -> None:
    """Close the pool (tests and shutdown); the next use opens a new one."""
    global _pool  # noqa: PLW0603
    with _pool_lock:
        if _pool is not None:
            _pool.close()
            _pool = None


@contextmanager
def transaction() -> Iterator[Conn]:
    """A pooled connection inside one transaction, as the service (RLS bypassed by the owner)."""
    with get_pool().connection() as conn:
        yield conn


def is_fault(exc: BaseException) -> bool:
    """A fault of the database's, not of the statement: down, restarting, the connection
    dropped, the pool's wait run out (an OperationalError too), a timeout, a deadlock or a
    serialization failure. Not a program limit (class 54: a statement or row too big),
    which trying again cannot mend."""
    return isinstance(exc, psycopg.OperationalError) and not (exc.sqlstate or "").startswith("54")


def retried(work: Callable[[Conn], T], *, attempts: int = 3) -> T:
    """`work` in one transaction, run again on another connection when the database failed
    under it: for a write that must not be lost to one dropped connection and is safe to
    repeat (conditional on a lease, say). A commit whose answer was lost did happen: the
    next try must know its own earlier write when it meets it."""
    done: T = retrying(is_fault, attempts=attempts, wait=_wait)(_in_transaction, work)
    return done


def _wait(state: tenacity.RetryCallState) -> float:
    return backoff_delay(state.attempt_number, base_s=0.25, cap_s=2.0, rand=random.random())


def _in_transaction(work: Callable[[Conn], T]) -> T:
    with transaction() as conn:
        return work(conn)


def act_as_user(conn: Conn, user_id: UUID) -> None:
    """For the rest of the current transaction, run as `authenticated` for this user (RLS)."""
    claims = json.dumps({"sub": str(user_id), "role": "authenticated"})
    conn.execute("SELECT set_config('request.jwt.claims', %s, true)", [claims])
    conn.execute("SET LOCAL ROLE authenticated")


@contextmanager
def user_transaction(user_id: UUID) -> Iterator[Conn]:
    """A transaction whose queries run as `authenticated` for this user, under RLS."""
    with transaction() as conn:
        act_as_user(conn, user_id)
        yield conn


@contextmanager
def snapshot(user_id: UUID | None = None) -> Iterator[Conn]:
    """A read-only transaction whose statements all read one snapshot, so an answer made of
    several reads (a balance and its ledger, a report's totals and its series) agrees with
    itself: a write committed between two of them is in both or in neither. As the user
    (under RLS) when one is given."""
    with transaction() as conn:
        # Must be the transaction's first statement; a transaction mode, not a query.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if user_id is not None:
            act_as_user(conn, user_id)
        yield conn


# A connection that waits for the server for long stretches (LISTEN) learns from TCP when
# the network under it has gone dark: probes after 30 s idle, every 10 s, 3 unanswered.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
              "keepalives_count": 3}  # fmt: skip


def dedicated_connection(*, autocommit: bool = True, application_name: str = "syncq") -> Conn:
    """A connection outside the pool, for LISTEN or long streams. The caller closes it."""
    kwargs = {**connect_kwargs(), **KEEPALIVES, "application_name": application_name}
    return psycopg.connect(get_settings().db.database_url, autocommit=autocommit, **kwargs)
