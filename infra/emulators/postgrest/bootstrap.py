"""Create the remote project's database, API roles and schema when they are missing.

Everything here is idempotent and safe to run from several processes at once: the
database and roles tolerate a concurrent creator, the schema is applied under an
advisory lock and only when `public.leads` is absent (so a test's schema drift survives
an emulator restart).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra.emulators.postgrest._sqlfile import query, script
from infra.emulators.postgrest.auth import API_ROLES

if TYPE_CHECKING:
    from infra.emulators.postgrest.state import PostgrestState

REMOTE_SCHEMA_FILE = "remote_schema.sql"
_NOLOGIN = sql.SQL("NOLOGIN")
_BYPASS = sql.SQL("NOLOGIN BYPASSRLS")
_ALREADY_THERE = (errors.DuplicateDatabase, errors.DuplicateObject, errors.UniqueViolation)


def database_name(database_url: str) -> str:
    """The database a connection URL points at."""
    name = conninfo_to_dict(database_url).get("dbname")
    if not name:
        raise ValueError("the database URL names no database")
    return str(name)


def sibling_url(database_url: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return make_conninfo(database_url, dbname=dbname)


def ensure_database(database_url: str) -> None:
    """CREATE DATABASE if it does not exist (through the server's `postgres` database)."""
    try:
        psycopg.connect(database_url, connect_timeout=10).close()
        return
    except psycopg.OperationalError:
        pass  # most likely missing: create it below (a real outage fails there too)
    name = database_name(database_url)
    admin_url = sibling_url(database_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        if conn.execute(query("database_exists"), {"name": name}).fetchone():
            return
        with contextlib.suppress(*_ALREADY_THERE):  # another process created it meanwhile
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def ensure_roles(conn: psycopg.Connection[Any]) -> None:
    """Create the API roles as Supabase has them and let the current user SET ROLE to them.

    service_role gets BYPASSRLS (as on Supabase) when we may grant it; its RLS policy in
    remote_schema.sql gives it the same access either way.
    """
    row = conn.execute(query("current_role_info")).fetchone()
    superuser = bool(row and row[0])
    for role in API_ROLES:
        if not conn.execute(query("role_exists"), {"name": role}).fetchone():
            options = _BYPASS if role == "service_role" and superuser else _NOLOGIN
            # Roles are cluster-wide: another database's emulator may win the race.
            with contextlib.suppress(*_ALREADY_THERE):
                conn.execute(sql.SQL("CREATE ROLE {} {}").format(sql.Identifier(role), options))
        if not superuser:
            conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))


def ensure_schema(conn: psycopg.Connection[Any]) -> bool:
    """Apply remote_schema.sql when public.leads is missing; True when it was applied."""
    with conn.transaction():
        conn.execute(query("bootstrap_lock"))
        row = conn.execute(query("table_exists"), {"name": "public.leads"}).fetchone()
        if row and row[0]:
            return False
        conn.execute(script(REMOTE_SCHEMA_FILE))
    return True


def ensure_remote_database(database_url: str, *, apply_schema: bool = True) -> None:
    """Database, roles and (optionally) schema of the emulated remote project."""
    ensure_database(database_url)
    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
        ensure_roles(conn)
        if apply_schema:
            ensure_schema(conn)


def seed_remote_leads(state: PostgrestState, source: str, count: int) -> None:
    """Insert `count` leads that exist only remotely, with the given sync_source."""
    with state.connection() as conn:
        conn.execute(query("seed_leads"), {"source": source, "count": count})
