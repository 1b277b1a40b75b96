"""Load named queries (`-- name: x` headers) from the emulator's .sql files."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from psycopg import sql

SQL_DIR = Path(__file__).with_name("sql")
_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    """Split a .sql text into {name: statement} at each `-- name:` header."""
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        queries[name] = body.strip().rstrip(";").strip()
    return queries


@cache
def load_queries(filename: str = "queries.sql") -> dict[str, str]:
    """Parse a file of named queries once per process."""
    return parse_queries((SQL_DIR / filename).read_text(encoding="utf-8"))


def query(name: str) -> sql.SQL:
    """A named query from queries.sql, ready for cursor.execute."""
    return sql.SQL(load_queries()[name])


def script(filename: str) -> sql.SQL:
    """A whole .sql script (several statements, no parameters)."""
    return sql.SQL((SQL_DIR / filename).read_text(encoding="utf-8"))
