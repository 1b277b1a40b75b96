"""Test fixtures: a real PostgreSQL server per session, a fresh migrated database per test.

The server is DATABASE_URL when set, else an embedded PostgreSQL 18 in a temporary folder.
Each test database is cloned from a template migrated once per session
(`CREATE DATABASE ... TEMPLATE ...`), so tests never see each other's rows.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Callable, Iterator

import psycopg
import pytest

from infra import migrate
from infra.local import pg
from infra.local.supervise import pid_alive
from shared import auth, db, dispatch, log, secrets
from shared.dispatch import RecordingDispatcher
from shared.queue.listener import stop_listeners
from shared.settings import reload_settings
from tests.db_clones import Clones

TEST_JWT_SECRET = "test-jwt-secret-that-is-long-enough-for-hs256-0123456789"

# Settings every test starts from; a test changes them with `configure(...)`.
BASE_ENV = {
    "JWT_SECRET": TEST_JWT_SECRET,
    "DISPATCHER": "recording",
    "SECRET_BACKEND": "env",
    "BACKOFF_BASE_S": "0.05",
    "BACKOFF_CAP_S": "0.5",
    "PROVIDER_RETRY_BASE_S": "0.01",
    "PROVIDER_RETRY_CAP_S": "0.05",
    "PROVIDER_RETRY_ATTEMPTS": "4",
    "PROVIDER_TIMEOUT_S": "2",
    "ACESSORIAS_EMPTY_RECHECK_S": "0.01",
    "WORKER_BUDGET_S": "30",
    "DB_POOL_MAX": "20",
}


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A PostgreSQL server URL (connects to its `postgres` database)."""
    with pg.server_url() as url:
        yield url


SESSION_DB = re.compile(r"syncq_(?:tmpl|t)_([0-9]+)(?:_|$)")


def drop_dead_sessions_databases(server_url: str) -> None:
    """Drop the template and clones of test sessions on this machine that are gone without
    their teardown: an interrupted `make test` (xdist stops its workers before theirs runs)
    left them on a DATABASE_URL server, a template and a few clones per worker each time."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        names = [str(r[0]) for r in conn.execute("SELECT datname FROM pg_database")]
    for name in names:
        found = SESSION_DB.match(name)
        if found and not pid_alive(int(found.group(1))):
            pg.drop_database(server_url, name)


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    """A database migrated once per session, cloned by every test."""
    drop_dead_sessions_databases(pg_server_url)
    name = f"syncq_tmpl_{os.getpid()}"
    pg.drop_database(pg_server_url, name)
    url = pg.create_database(pg_server_url, name)
    migrate.migrate(url)
    yield name
    pg.drop_database(pg_server_url, name)


@pytest.fixture(scope="session")
def clones(pg_server_url: str, template_db: str) -> Iterator[Clones]:
    """Fresh clones of the template, made ahead while tests run."""
    made = Clones(pg_server_url, template_db)
    yield made
    made.close()


@pytest.fixture
def database_url(pg_server_url: str, clones: Clones, configure: Configure) -> Iterator[str]:
    """A fresh database for this test, and shared/ pointed at it."""
    name, url = clones.take()
    configure(DATABASE_URL=url)
    yield url
    stop_listeners()
    db.close_pool()
    pg.drop_database(pg_server_url, name)


class Configure:
    """Set environment variables for the test and re-read settings (undone afterwards)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._mp = monkeypatch

    def __call__(self, **env: str) -> None:
        for key, value in env.items():
            self._mp.setenv(key, value)
        reload_settings()
        stop_listeners()  # it listens on the database of the settings it started with
        db.close_pool()
        dispatch.reset_dispatcher()
        secrets.reset_store()


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """Base settings for a test; call it to change some."""
    for key in list(os.environ):
        if key.startswith("SYNCQ_SECRET_"):
            monkeypatch.delenv(key)
    # Key sets are cached by URL: a loopback JWKS endpoint of this test may get the port
    # (so the URL) of an earlier test's, whose keys (same key ids, other keys) must not verify.
    auth._key_set.cache_clear()
    conf = Configure(monkeypatch)
    conf(**BASE_ENV)
    yield conf
    stop_listeners()
    db.close_pool()
    dispatch.reset_dispatcher()
    secrets.reset_store()
    auth._key_set.cache_clear()
    monkeypatch.undo()
    reload_settings()


@pytest.fixture
def logs() -> Iterator[Callable[[], str]]:
    """Everything the `syncq` loggers write during the test, as the JSON lines they write.

    (The handler keeps the stdout it was created with, so capsys does not see log lines.)
    """
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(log.JsonFormatter())
    root = log.get_logger("tests").parent
    assert root is not None
    root.addHandler(handler)
    try:
        yield buffer.getvalue
    finally:
        root.removeHandler(handler)


@pytest.fixture
def recorder(configure: Configure) -> RecordingDispatcher:
    """The recording dispatcher tests drain by hand."""
    d = dispatch.get_dispatcher()
    assert isinstance(d, RecordingDispatcher)
    return d


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that touches PostgreSQL is a `db` test (CI repeats those on PG 15)."""
    for item in items:
        if {"database_url", "pg_server_url", "template_db"} & set(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.db)
