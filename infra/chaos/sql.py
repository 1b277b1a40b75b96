"""The chaos run's named queries (`chaos.sql`) and the few ways it runs them."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from psycopg.rows import dict_row

from shared.sqlfiles import named_queries

_FILE = Path(__file__).with_name("chaos.sql")


@cache
def _queries() -> dict[str, LiteralString]:
    return named_queries(_FILE)


def query(name: str) -> LiteralString:
    """One named query of chaos.sql."""
    return _queries()[name]


def rows(url: str, name: str, **params: Any) -> list[dict[str, Any]]:
    """Every row a named query answers, on a connection of its own."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(query(name), params).fetchall()


def one(url: str, name: str, **params: Any) -> dict[str, Any]:
    """The single row a named query answers."""
    found = rows(url, name, **params)
    if len(found) != 1:
        raise RuntimeError(f"{name} answered {len(found)} rows, not one")
    return found[0]


def count(url: str, name: str, **params: Any) -> int:
    """The `n` a counting query answers."""
    return int(one(url, name, **params)["n"])


def by_key(url: str, name: str, key: str, **params: Any) -> dict[str, int]:
    """A `key, n` grouping as a dict."""
    return {str(r[key]): int(r["n"]) for r in rows(url, name, **params)}
