"""sync-from-gestao-scouter: the remote trigger's webhook, applied to local leads.

The URL names the tenant (`?tenant=<slug>`); the bearer token must equal that tenant's
webhook secret (constant-time). A lead that came from us (`sync_source` tabuladormax) is
skipped — that is the loop breaker. Otherwise the reverse mapping is applied and the row
upserted with sync_source 'gestao_scouter', unless the local row is newer.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import flask
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from shared import db, log
from shared.auth import SERVICE, Principal, bearer_token, secrets_equal
from shared.errors import Unauthorized, ValidationFailed
from shared.gestao import SLUG
from shared.gestao.mapping import LOCAL_FIELDS, load_mapping, reverse
from shared.gestao.models import ReverseSyncRequest
from shared.gestao.schema import kind_of
from shared.secrets import get_store, secret_name
from shared.sqlfiles import query
from shared.tenancy import enabled_integration, get_tenant

OUR_SOURCES = frozenset({"tabuladormax", "supabase"})
# Local columns that are NOT NULL with a default (infra/migrations/0030_leads.sql): a null
# from the remote says nothing, so the field is left out — the default on insert, the local
# value on update (a null `criado` must not move the lead in the export's cursor order).
KEEP_WHEN_NULL = frozenset({"criado", "updated_at", "ficha_confirmada"})
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_logger = log.get_logger("gestao.reverse")


def tenant_slug(request: flask.Request) -> str:
    """The tenant the webhook URL names."""
    return request.args.get("tenant", "").strip()


def verify_webhook(request: flask.Request) -> Principal:
    """The remote's bearer token against the tenant's webhook secret (401 otherwise)."""
    slug = tenant_slug(request)
    token = bearer_token(request.headers.get("Authorization"))
    known = _SLUG.fullmatch(slug)
    expected = get_store().get(secret_name(slug, SLUG, "webhook_secret")) if known else None
    if not secrets_equal(token, expected):
        raise Unauthorized("Invalid webhook secret.")
    return SERVICE


def _valid(kind: str, value: Any) -> bool:
    if value is None:
        return True
    checks: dict[str, Any] = {
        "integer": lambda v: _integral(v) is not None,
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "date": lambda v: isinstance(v, str) and _parses(date.fromisoformat, v[:10]),
        "timestamp": lambda v: isinstance(v, str) and _parses(datetime.fromisoformat, v),
        "text": lambda v: isinstance(v, str | int | float) and not isinstance(v, bool),
    }
    return bool(checks.get(kind, lambda v: True)(value))


def _integral(value: Any) -> int | None:
    """An integer as JSON may spell it (`7` or `7.0`), else None."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _parses(parse: Any, text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def local_row(lead: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """The remote row as local fields (unmapped columns dropped), or 422 naming bad fields."""
    back = reverse(mapping)
    row = {back[k]: v for k, v in lead.items() if k in back}
    problems = [
        {
            "loc": ["lead", remote],
            "type": "invalid_value",
            "message": f"expected {kind_of(LOCAL_FIELDS[local])}",
        }
        for remote, local in back.items()
        if remote in lead and not _valid(kind_of(LOCAL_FIELDS[local]), lead[remote])
    ]
    if "id" not in row or row["id"] is None:
        problems.append({"loc": ["lead", mapping["id"]], "type": "missing", "message": "required"})
    if problems:
        raise ValidationFailed("The lead is not valid.", details=problems)
    return {k: _local_value(kind_of(LOCAL_FIELDS[k]), v)
            for k, v in row.items() if v is not None or k not in KEEP_WHEN_NULL}  # fmt: skip


def _local_value(kind: str, value: Any) -> Any:
    """A valid remote value as the local column takes it (text as text, 7.0 as 7)."""
    if value is None:
        return None
    if kind == "text":
        return str(value)
    if kind == "timestamp":
        return _utc(value)
    return _integral(value) if kind == "integer" else value


def _utc(text: str) -> str:
    """A timestamp in UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return text
    try:
        return moment.astimezone(UTC).isoformat()
    except OverflowError:  # before year 1 in UTC: left for the CHECK to refuse
        return text


def upsert_statement(fields: list[str]) -> sql.Composed:
    """Insert or update the given local fields; never over a newer local row."""
    cols = [f for f in fields if f in LOCAL_FIELDS]  # allow-list
    return sql.SQL(query("gestao", "reverse_upsert")).format(
        idents=sql.SQL(", ").join(sql.Identifier(c) for c in cols),
        values=sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in cols),
        sets=sql.SQL("").join(
            sql.SQL("{c} = EXCLUDED.{c}, ").format(c=sql.Identifier(c)) for c in cols if c != "id"
        ),
    )


def receive(principal: Principal, req: ReverseSyncRequest, slug: str) -> dict[str, Any]:
    """Apply one remote lead; answers upserted | skipped_loop | skipped_stale."""
    if str(req.lead.get("sync_source") or "") in OUR_SOURCES:
        return {"action": "skipped_loop"}
    with db.transaction() as conn:
        tenant = get_tenant(conn, slug=slug)
        enabled_integration(conn, tenant.id, SLUG)  # a disabled integration takes no edits
        row = local_row(req.lead, load_mapping(conn, tenant.id))
        statement = upsert_statement(list(row))
        if "updated_at" in row:  # the remote's value stands, even when equal to ours
            conn.execute(query("gestao", "updated_at_given"))
        try:
            with conn.transaction():
                done = conn.execute(
                    statement, {"tenant_id": tenant.id, "row": Jsonb(row)}
                ).fetchone()
        except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
            # Name the column or constraint, never the value (the message quotes the row).
            diag = exc.diag
            where = {"column": diag.column_name, "constraint": diag.constraint_name}
            raise ValidationFailed(
                "The lead has a value the local schema refuses.",
                details={"sqlstate": diag.sqlstate, **{k: v for k, v in where.items() if v}},
            ) from exc
    action = "upserted" if done is not None else "skipped_stale"
    with log.labels(tenant_id=tenant.id):  # one function serves every tenant's remote
        _logger.info("reverse sync", extra=log.fields(action=action))
    return {"action": action}
