"""Run one request as one transaction, as the role of its JWT (so RLS denials are real)."""
# The role travels as a set_config('role', ...) value; it is still checked against the
# allow-list first, since it decides what the request may touch.

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg

from infra.emulators.postgrest._sqlfile import query
from infra.emulators.postgrest.auth import API_ROLES, Identity
from infra.emulators.postgrest.errors import from_psycopg

if TYPE_CHECKING:
    from infra.emulators.postgrest.state import PostgrestState


@contextmanager
def transaction_as(
    state: PostgrestState, identity: Identity, method: str, path: str
) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection inside a transaction with `SET LOCAL ROLE` and the JWT claims."""
    if identity.role not in API_ROLES:  # allow-list: the role becomes an identifier
        raise ValueError(f"role not allowed: {identity.role}")
    try:
        with state.connection() as conn, conn.transaction():
            claims = json.dumps(identity.claims)
            params = {"role": identity.role, "claims": claims, "method": method, "path": path}
            conn.execute(query("set_claims"), params)
            yield conn
    except psycopg.Error as exc:
        raise from_psycopg(exc, identity.authenticated) from exc


def fetch_one(conn: psycopg.Connection[Any], stmt: Any, params: Any = None) -> dict[str, Any]:
    """The single row an aggregate statement returns."""
    row = conn.execute(stmt, params).fetchone()
    if row is None:  # aggregates always return a row; keep mypy and readers honest
        raise RuntimeError("statement returned no row")
    return dict(row)
