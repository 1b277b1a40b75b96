"""Named SQL queries loaded from `shared/sql/*.sql`.

A file holds queries under `-- name: <query_name>` headers; parameters are `%(x)s`.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import LiteralString, cast

_SQL_DIR = Path(__file__).parent / "sql"
_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@cache
def queries(module: str) -> dict[str, LiteralString]:
    """All queries of `shared/sql/<module>.sql`, by name."""
    return named_queries(_SQL_DIR / f"{module}.sql")


def named_queries(path: Path) -> dict[str, LiteralString]:
    """All queries of a file of `-- name:` headers, by name (a name given twice is refused)."""
    parts = _HEADER.split(path.read_text(encoding="utf-8"))
    found: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in found:
            raise ValueError(f"query {name!r} defined twice in {path.name}")
        # Trusted text shipped with the code, never built from input.
        found[name] = cast(LiteralString, body.strip())
    return found


def query(module: str, name: str) -> LiteralString:
    """One named query."""
    try:
        return queries(module)[name]
    except KeyError:
        raise KeyError(f"no query {name!r} in {module}.sql") from None
