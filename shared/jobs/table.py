"""Which table a kind's jobs live in, and the SQL fragments the kind adds to the engine's."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import LiteralString

from psycopg import sql

from shared.sqlfiles import queries, query

# The places in the engine's statements where a kind may add its own columns or side rows,
# and what each is when the kind leaves it out.
FRAGMENTS = {
    "claim_set": "",
    "claim_returning": "j.*",
    "claim_effects": "",
    "heartbeat_set": "",
    "release_set": "",
    "release_returning": "j.*",
    "release_effects": "",
}


@dataclass(frozen=True)
class JobTable:
    """A job table: `name` is trusted (a kind's constant), `sql_module` holds its fragments.

    Each fragment is an optional named query in `shared/sql/<sql_module>.sql`:
    `claim_set`/`heartbeat_set`/`release_set` start with ", col = expr", and
    `claim_effects`/`release_effects` with ", name AS (...)" (a CTE over `claimed`/`done`).
    `claim_returning`/`release_returning` list the job's columns (`j.*` when left out) that
    the kind's runner and effects read: a hot kind names only those, since every column
    returned is decoded for every job. They must include the engine's own: `id`,
    `tenant_id`, `status`, `attempts`, and `lease_token` (claim) or `finished_at` (release).
    """

    name: LiteralString
    sql_module: str

    def statement(self, name: str) -> sql.Composed:
        """The engine's statement `name` for this table, with the kind's fragments."""
        return _compose(self, name)


@cache
def _compose(table: JobTable, name: str) -> sql.Composed:
    mine = queries(table.sql_module)
    parts = {f: sql.SQL(mine.get(f, default)) for f, default in FRAGMENTS.items()}
    return sql.SQL(query("jobs", name)).format(table=sql.Identifier(table.name), **parts)
