"""validate-gestao-scouter-config: named checks, each with ok and a plain-language detail.

url_well_formed -> host_reachable -> key_accepted -> service_role -> leads_readable ->
leads_writable. A check that cannot run because an earlier one failed says so. Writing is
proved with a probe row (a negative id, sync_source 'tabuladormax' so no webhook fires)
that is deleted at once; the detail says so if it could not be removed.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import jwt

from shared import db
from shared.auth import Principal
from shared.errors import RemoteUnavailable, SyncqError
from shared.gestao import NAME
from shared.gestao.mapping import SYNC_SOURCE_COLUMN, load_mapping
from shared.gestao.models import TenantRequest
from shared.gestao.remote import TABLE, RemoteAnswer, RemoteClient, Target, check_url, target_for
from shared.gestao.schema import columns_from_openapi, kind_of, needs_value
from shared.settings import get_settings
from shared.tenancy import Role, tenant_with_role

CHECKS = (
    "url_well_formed", "host_reachable", "key_accepted", "service_role", "leads_readable",
    "leads_writable",
)  # fmt: skip
_PLACEHOLDERS = {"integer": 0, "number": 0, "boolean": False, "date": "1970-01-01",
                 "timestamp": "1970-01-01T00:00:00Z", "json": {}, "array": []}  # fmt: skip


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


class Checks:
    """Collects results; later checks are skipped once one they depend on failed."""

    def __init__(self) -> None:
        self.results: dict[str, Check] = {}

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.results[name] = Check(name, ok, detail)
        return ok

    def skip_rest(self, reason: str) -> None:
        for name in CHECKS:
            self.results.setdefault(name, Check(name, False, f"Not checked: {reason}"))

    def report(self) -> dict[str, Any]:
        self.skip_rest("an earlier check failed.")
        checks = [self.results[n].as_dict() for n in CHECKS]
        return {"ok": all(c["ok"] for c in checks), "checks": checks}


def _key_role(key: str) -> str | None:
    """The role claim of a legacy JWT key (not verified: only to explain results)."""
    try:
        role = jwt.decode(key, options={"verify_signature": False}).get("role")
    except jwt.PyJWTError:
        return None
    return str(role) if role else None


def _probe_row(columns: dict[str, dict[str, Any]], mapping: dict[str, str]) -> dict[str, Any]:
    """The id, sync_source and a placeholder for each NOT NULL column without a default.
    An unmapped column whose default PostgREST's document cannot show (jsonb, arrays) is
    left out, as the export leaves it out: the write then proves it has one."""
    row: dict[str, Any] = {mapping["id"]: -secrets.randbelow(2**52) - 2**40}
    mapped = set(mapping.values())
    for name, col in columns.items():
        unknown_but_sent = col["required"] and col.get("has_default") is None and name in mapped
        if (needs_value(col) or unknown_but_sent) and name not in row:
            row[name] = _PLACEHOLDERS.get(kind_of(col["format"]), "syncq-probe")
    if SYNC_SOURCE_COLUMN in columns:
        row[SYNC_SOURCE_COLUMN] = "tabuladormax"
    return row


def _rls_detail(answer: RemoteAnswer, role: str | None) -> str:
    if answer.status == 401:
        return (
            "The key runs as the anon role: RLS refused the write with 401. Use the project's "
            "service_role key, not the anon (public) key."
        )
    return (
        f"The key's role{f' ({role})' if role else ''} is not allowed to write leads: RLS "
        "refused with 403. Give service_role a policy on public.leads (see the setup SQL)."
    )


def _check_remote(client: RemoteClient, mapping: dict[str, str], checks: Checks) -> None:
    key = client.target.key
    try:
        root = client.openapi()
    except RemoteUnavailable as exc:
        checks.add("host_reachable", False, f"{NAME} did not answer properly: {exc.message}")
        return
    swagger = isinstance(root.body, dict) and "swagger" in root.body
    if root.status not in (401, 403) and not swagger:
        checks.add("host_reachable", False, f"The URL answered HTTP {root.status}, but not as a "
                   f"Supabase REST API; check the project URL.")  # fmt: skip
        return
    checks.add("host_reachable", True, f"{NAME} answered (HTTP {root.status}).")
    if root.status in (401, 403):
        checks.add("key_accepted", False, f"The key was refused (HTTP {root.status}): "
                   f"{root.safe_message((key,))}")  # fmt: skip
        return
    checks.add("key_accepted", True, "The key was accepted.")
    role = _key_role(key)
    columns = columns_from_openapi(root.body) if root.status == 200 else None
    read = client.send("GET", f"/{TABLE}", params={"select": mapping["id"], "limit": "1"})
    if read.status == 200:
        checks.add("leads_readable", True, "public.leads can be read.")
    else:
        failure = f"Reading public.leads failed (HTTP {read.status}): {read.safe_message((key,))}"
        checks.add("leads_readable", False, failure)
    if columns is None:
        checks.add("service_role", False, "public.leads is not in the schema this key can see.")
        return
    _check_write(client, mapping, columns, role, checks)


def _check_write(
    client: RemoteClient, mapping: dict[str, str], columns: dict[str, dict[str, Any]],
    role: str | None, checks: Checks,
) -> None:  # fmt: skip
    key = (client.target.key,)
    probe = _probe_row(columns, mapping)
    probe_id = probe[mapping["id"]]
    body = json.dumps([probe]).encode()
    try:
        answer = client.send("POST", f"/{TABLE}", content=body, prefer="return=minimal")
    except RemoteUnavailable as exc:  # no answer, or a 5xx: the row may have been written
        gone = _delete(client, mapping, probe_id)
        # No answer at all: the write may still be running, so a DELETE that found nothing
        # proves nothing; a 5xx is the write's end, and a DELETE after it is.
        if exc.upstream_status is None or gone is None or not 200 <= gone < 300:
            checks.add("leads_writable", False, _left_behind(mapping, probe_id, gone, maybe=True))
        raise
    if answer.status in (401, 403):
        checks.add("service_role", False, _rls_detail(answer, role))
        checks.add("leads_writable", False, "Writing is refused for this key (see service_role).")
        return
    if role == "anon":
        checks.add("service_role", False, "This is the anon key; use the service_role key.")
    else:
        checks.add("service_role", True, f"The key can write ({role or 'opaque secret key'}).")
    if not 200 <= answer.status < 300:
        refused = f"A probe row was refused (HTTP {answer.status}): {answer.safe_message(key)}"
        if answer.code == "23502":
            refused += (
                ". That NOT NULL column has no default and the mapping leaves it out: map a "
                "field to it or give it a default."
            )
        checks.add("leads_writable", False, refused)
        return
    gone = _delete(client, mapping, probe_id)
    if gone is not None and 200 <= gone < 300:
        checks.add("leads_writable", True, "A probe row was written and deleted again.")
    else:
        checks.add("leads_writable", False, _left_behind(mapping, probe_id, gone))


def _delete(client: RemoteClient, mapping: dict[str, str], probe_id: Any) -> int | None:
    """The status the probe row's DELETE got (None: no answer)."""
    try:
        return client.send("DELETE", f"/{TABLE}", params={mapping["id"]: f"eq.{probe_id}"}).status
    except RemoteUnavailable as exc:  # a 5xx or no answer: named, never left unsaid
        return exc.upstream_status


def _left_behind(
    mapping: dict[str, str], probe_id: Any, status: int | None, *, maybe: bool = False
) -> str:
    said = f"HTTP {status}" if status is not None else "no answer"
    if maybe:
        return (
            f"A probe row may have been written (its write got no clear answer), and deleting "
            f"it got {said}; if {mapping['id']}={probe_id} is there, remove it by hand."
        )
    return (
        f"A probe row was written but could not be deleted ({said}); "
        f"remove {mapping['id']}={probe_id} by hand."
    )


def run_checks(target: Target | None, url: str | None, mapping: dict[str, str]) -> dict[str, Any]:
    """Every named check against a target (None when no key is configured)."""
    checks = Checks()
    ok, detail = check_url(url or "") if url else (False, "No project URL is configured.")
    if not checks.add("url_well_formed", ok, detail) or target is None:
        checks.skip_rest("fix the project URL and key first.")
        return checks.report()
    client = RemoteClient(target, get_settings(), retries=0)
    try:
        _check_remote(client, mapping, checks)
    except RemoteUnavailable as exc:
        checks.skip_rest(f"{NAME} failed during the checks: {exc.message}")
    return checks.report()


def validate_config(principal: Principal, req: TenantRequest) -> dict[str, Any]:
    """validate-gestao-scouter-config for a tenant admin."""
    tenant_id: UUID = req.tenant_id
    with db.transaction() as conn:
        tenant = tenant_with_role(conn, principal, Role.ADMIN, tenant_id=tenant_id)
        mapping = load_mapping(conn, tenant.id)
        try:
            target: Target | None = target_for(conn, tenant)
            url = target.project_url if target else None
        except SyncqError as exc:
            target, url = None, None
            checks = Checks()
            checks.add("url_well_formed", False, exc.message)
            checks.skip_rest("the integration is not configured.")
            return checks.report()
    return run_checks(target, url, mapping)
