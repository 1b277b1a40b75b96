"""The test sessions' own databases on the server: none outlives its session for good."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

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


def test_a_session_stops_the_embedded_servers_of_sessions_killed_before_their_teardown() -> None:
    """A killed session's embedded server ran until the machine restarted: the next session
    stops and deletes it, and leaves a live session's server alone."""
    prefix = f"syncq-orphan-test-{os.getpid()}-"  # out of the sessions' own sweep (syncq-pg-)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # always embedded
    script = (
        "import sys, time\n"
        "from infra.local import pg\n"
        f"with pg.server_url({prefix!r}) as url:\n"
        "    print(url, flush=True)\n"
        "    time.sleep(600)\n"
    )
    session = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert session.stdout is not None
        url = session.stdout.readline().strip()
        assert pg.stop_orphaned_servers(prefix) == 0  # its session is alive
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        session.kill()
        session.wait()
        if session.stdout is not None:
            session.stdout.close()
    with psycopg.connect(url) as conn:  # killed: nothing stopped it
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert pg.stop_orphaned_servers(prefix) == 1
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()
    assert not list(Path(tempfile.gettempdir()).glob(f"{prefix}*/"))
    assert pg.stop_orphaned_servers(prefix) == 0
    Path(tempfile.gettempdir(), f"{prefix}orphans.lock").unlink()
