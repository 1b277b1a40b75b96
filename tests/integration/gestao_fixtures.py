"""Fixtures of the Gestão Scouter tests (a pytest plugin: `pytest_plugins = [...]`).

The remote emulator on its own database (per module), reset per test, and a tenant wired
to it with its secrets.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from infra.emulators._common import start_in_thread
from infra.emulators.postgrest import PostgrestState, create_app
from infra.local import pg
from tests.integration.gestao_support import PROVIDER, REMOTE_SECRET, SLUG, Remote, secrets_env
from tests.support import TenantFixture, seed_tenant

_counter = itertools.count()


@contextmanager
def serve_remote(pg_server_url: str) -> Iterator[Remote]:
    """An emulated remote project on a database of its own, dropped afterwards."""
    name = f"gs_remote_{os.getpid()}_{next(_counter)}"
    pg.drop_database(pg_server_url, name)
    url = pg.with_dbname(pg_server_url, name)
    state = PostgrestState(url, REMOTE_SECRET, project_ref="gsremote", pool_size=6)
    handle = start_in_thread(create_app(state))
    try:
        yield Remote(state, handle, url)
    finally:
        handle.stop()
        state.close()
        pg.drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def remote_server(pg_server_url: str) -> Iterator[Remote]:
    """One remote per test module (reset before each test by `remote`)."""
    with serve_remote(pg_server_url) as remote:
        yield remote


@pytest.fixture
def own_remote(pg_server_url: str) -> Iterator[Remote]:
    """A remote for this test alone (for tests that change its schema)."""
    with serve_remote(pg_server_url) as remote:
        yield remote


@pytest.fixture
def remote(remote_server: Remote) -> Iterator[Remote]:
    remote_server.reset()
    yield remote_server
    remote_server.state.knobs.update({"error_rate": 0, "latency_ms": 0})


@pytest.fixture
def tenant(database_url: str, remote: Remote, configure: Any) -> TenantFixture:
    configure(**secrets_env(remote.state.service_key))
    return seed_tenant(database_url, SLUG, providers={PROVIDER: {"project_url": remote.url}})


@pytest.fixture
def own_tenant(database_url: str, own_remote: Remote, configure: Any) -> TenantFixture:
    configure(**secrets_env(own_remote.state.service_key))
    return seed_tenant(database_url, SLUG, providers={PROVIDER: {"project_url": own_remote.url}})
