"""The test sessions' own databases on the server: none outlives its session for good."""

from __future__ import annotations

import os
import subprocess

import psycopg
import pytest

from infra.local import pg
from tests.conftest import drop_dead_sessions_databases

pytestmark = pytest.mark.db


def test_a_session_drops_what_one_gone_without_its_teardown_left(pg_server_url: str) -> None:
    """xdist stops its workers on Ctrl-C before their session teardown runs: a template and
    a few clones per worker (and a stack's remotes, `…_gs_2`) stayed on a DATABASE_URL
    server, every time. A session drops the databases of test processes that are gone, and
    only theirs."""
    gone = subprocess.Popen(["true"])  # noqa: S607 - a pid nobody has any more
    gone.wait()
    dead = [f"syncq_tmpl_{gone.pid}", f"syncq_t_{gone.pid}_0", f"syncq_t_{gone.pid}_1_gs_2"]
    alive = [f"syncq_t_{os.getpid()}_999999", f"syncq_t_{os.getpid()}x_{gone.pid}"]
    for name in dead + alive:
        pg.create_database(pg_server_url, name)
    try:
        drop_dead_sessions_databases(pg_server_url)
        with psycopg.connect(pg_server_url) as conn:
            left = [r[0] for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname = ANY(%s) ORDER BY 1",
                [dead + alive],
            )]  # fmt: skip
    finally:
        for name in dead + alive:
            pg.drop_database(pg_server_url, name)
    assert left == sorted(alive)
