"""Tenants and who may act on them. Roles come from the database, never from the token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from shared import db
from shared.auth import Principal
from shared.contract import Answer
from shared.db import Conn
from shared.errors import Forbidden, IntegrationDisabled
from shared.sqlfiles import query


class Role(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"


@dataclass(frozen=True)
class Tenant:
    id: UUID
    slug: str
    name: str


def require_role(conn: Conn, principal: Principal, tenant_id: UUID, role: Role) -> None:
    """The service may act on any tenant that exists; a user needs `role` (admin implies
    member).

    An unknown tenant answers the same 403 as a foreign one, so ids cannot be probed.
    """
    if principal.is_service:
        get_tenant(conn, tenant_id=tenant_id)
        return
    row = conn.execute(
        query("tenancy", "member_role"), {"tenant_id": tenant_id, "user_id": principal.user_id}
    ).fetchone()
    if row is None or (role is Role.ADMIN and row["role"] != Role.ADMIN):
        raise refused(role)


def refused(role: Role) -> Forbidden:
    """The one 403 a user gets for a tenant they lack `role` in, whether it exists or not."""
    return Forbidden(f"You need the {role} role in this tenant.")


def tenant_with_role(
    conn: Conn,
    principal: Principal,
    role: Role,
    *,
    tenant_id: UUID | None = None,
    slug: str | None = None,
) -> Tenant:
    """The tenant named by id or slug, once the caller holds `role` in it. A user gets the
    same 403 for an unknown tenant as for a foreign one, so ids and slugs cannot be probed."""
    try:
        tenant = get_tenant(conn, tenant_id=tenant_id, slug=slug)
    except Forbidden:
        if principal.is_service:
            raise
        raise refused(role) from None
    if not principal.is_service:  # the service may act on any tenant that exists: found above
        require_role(conn, principal, tenant.id, role)
    return tenant


def has_role(conn: Conn, principal: Principal, tenant_id: UUID, role: Role) -> bool:
    """Whether the caller holds `role` in the tenant (the service holds every role)."""
    try:
        require_role(conn, principal, tenant_id, role)
    except Forbidden:
        return False
    return True


@contextmanager
def reading_as(principal: Principal) -> Iterator[Conn]:
    """A transaction as the caller: under row-level security for a user, so a forgotten
    filter still cannot leak another tenant's rows; as the service otherwise."""
    if principal.user_id is None:
        with db.transaction() as conn:
            yield conn
    else:
        with db.user_transaction(principal.user_id) as conn:
            yield conn


def get_tenant(conn: Conn, *, tenant_id: UUID | None = None, slug: str | None = None) -> Tenant:
    """A tenant by id or slug; a missing one is Forbidden (see require_role)."""
    if tenant_id is not None:
        row = conn.execute(query("tenancy", "tenant_by_id"), {"id": tenant_id}).fetchone()
    else:
        row = conn.execute(query("tenancy", "tenant_by_slug"), {"slug": slug}).fetchone()
    if row is None:
        raise Forbidden("You may not act on this tenant.")
    return Tenant(id=row["id"], slug=row["slug"], name=row["name"])


def enabled_integration(conn: Conn, tenant_id: UUID, provider_slug: str) -> dict[str, Any]:
    """The tenant's integration row, which must exist and be enabled."""
    row = conn.execute(
        query("tenancy", "integration"), {"tenant_id": tenant_id, "provider_slug": provider_slug}
    ).fetchone()
    if row is None or not row["enabled"]:
        raise IntegrationDisabled(details={"provider_slug": provider_slug})
    return dict(row)


class MyTenantsQuery(BaseModel):
    """`GET my-tenants` takes no parameters."""

    model_config = ConfigDict(extra="forbid")


class MyTenant(Answer):
    """A tenant the user belongs to, and their role in it."""

    id: UUID
    slug: str
    name: str
    role: Role


class MyTenants(Answer):
    """The signed-in user and their tenants, by name."""

    user_id: UUID
    tenants: list[MyTenant]


def my_tenants(principal: Principal, _: MyTenantsQuery) -> dict[str, Any]:
    """The caller's tenants and their role in each (a user's own rows, read under RLS).

    The service belongs to no tenant: it is refused rather than shown every tenant.
    """
    if principal.user_id is None:
        raise Forbidden("Only a signed-in user has tenants.")
    with db.user_transaction(principal.user_id) as conn:
        found = conn.execute(query("tenancy", "my_tenants"), {"user_id": principal.user_id})
        tenants = [
            {"id": str(r["id"]), "slug": r["slug"], "name": r["name"], "role": r["role"]}
            for r in found.fetchall()
        ]
    return {"user_id": str(principal.user_id), "tenants": tenants}
