"""Load named queries (`-- name: x` headers) from the emulator's .sql files."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from psycopg import sql

from shared.sqlfiles import named_queries

SQL_DIR = Path(__file__).with_name("sql")


@cache
def load_queries(filename: str = "queries.sql") -> dict[str, str]:
    """Parse a file of named queries once per process (each without its final `;`, as
    a composed statement takes it)."""
    return {n: q.rstrip(";").strip() for n, q in named_queries(SQL_DIR / filename).items()}


def query(name: str) -> sql.SQL:
    """A named query from queries.sql, ready for cursor.execute."""
    return sql.SQL(load_queries()[name])


def script(filename: str) -> sql.SQL:
    """A whole .sql script (several statements, no parameters)."""
    return sql.SQL((SQL_DIR / filename).read_text(encoding="utf-8"))
