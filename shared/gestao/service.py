"""Request-level services of the export and schema functions (one per action)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared import db
from shared.auth import Principal
from shared.errors import Unprocessable
from shared.gestao import exports, schema
from shared.gestao.mapping import load_mapping, save_mapping, validate_mapping
from shared.gestao.models import (
    ExportAction,
    ExportHistoryQuery,
    ExportJob,
    ExportRequest,
    SchemaRequest,
    TenantRequest,
)
from shared.gestao.remote import RemoteClient, Target, require_ok, target_for
from shared.gestao.runner import KIND, run_job
from shared.jobs.wake import wake
from shared.settings import get_settings
from shared.sqlfiles import query
from shared.tenancy import Role, Tenant, require_role, tenant_with_role

RECENT_ERRORS = 20


def _admin_context(principal: Principal, tenant_id: UUID) -> tuple[Tenant, Target, dict[str, str]]:
    """Check the caller is the tenant's admin; the tenant, its target and its mapping."""
    with db.transaction() as conn:
        tenant = tenant_with_role(conn, principal, Role.ADMIN, tenant_id=tenant_id)
        return tenant, target_for(conn, tenant), load_mapping(conn, tenant.id)


def remote_columns(
    tenant_id: UUID, client: RemoteClient, *, fresh: bool = False
) -> dict[str, dict[str, Any]] | None:
    """The remote leads columns: from the shared cache unless stale (or `fresh`)."""
    max_age = 0.0 if fresh else get_settings().gestao.schema_cache_s
    with db.transaction() as conn:
        return schema.cached_columns(conn, tenant_id, client, max_age_s=max_age)


def export_action(principal: Principal, req: ExportRequest) -> dict[str, Any]:
    """export-to-gestao-scouter-batch: start | pause | resume | reset | status (| run)."""
    if req.action is ExportAction.RUN:
        principal.require_service()
        assert req.job_id is not None
        return run_job(req.job_id, req.tenant_id)
    if req.action is ExportAction.START:
        return start_export(principal, req)
    with db.transaction() as conn:
        require_role(conn, principal, req.tenant_id, Role.ADMIN)
        job_id = req.job_id or exports.get(conn, req.tenant_id, None)["id"]
        if req.action is ExportAction.PAUSE:
            row = exports.pause(conn, req.tenant_id, job_id)
        elif req.action is ExportAction.RESUME:
            row = exports.resume(conn, req.tenant_id, job_id)
        elif req.action is ExportAction.RESET:
            row = exports.reset(conn, req.tenant_id, job_id)
        else:
            row = exports.get(conn, req.tenant_id, job_id)
        errors = conn.execute(
            query("gestao", "job_errors"), {"id": job_id, "limit": RECENT_ERRORS}
        ).fetchall()
    if req.action in (ExportAction.RESUME, ExportAction.RESET) and row["status"] == "pending":
        wake(KIND, job_id, tenant_id=req.tenant_id, event=(req.action, row["updated_at"]))
    body = ExportJob.from_row(row).model_dump(mode="json")
    body["recent_errors"] = [
        {k: r[k] for k in ("lead_id", "error_message", "response_status", "created_at")}
        for r in errors
    ]
    return body


def export_history(principal: Principal, req: ExportHistoryQuery) -> dict[str, Any]:
    """The tenant's latest exports, newest first (the Sync Monitor's history)."""
    with db.transaction() as conn:
        require_role(conn, principal, req.tenant_id, Role.ADMIN)
        rows = exports.recent(conn, req.tenant_id, req.limit)
    return {"jobs": [ExportJob.from_row(r).model_dump(mode="json") for r in rows]}


def start_export(principal: Principal, req: ExportRequest) -> dict[str, Any]:
    """Validate the remote schema, count the leads in range, create the job, wake a runner."""
    tenant, target, mapping = _admin_context(principal, req.tenant_id)
    with db.transaction() as conn:
        exports.ensure_none_live(conn, tenant.id)
    settings = get_settings()
    columns = remote_columns(tenant.id, RemoteClient(target, settings))
    report = schema.compare(validate_mapping(mapping), columns)
    if not report.valid:
        raise Unprocessable(
            "The remote schema does not fit the field mapping; apply the suggested SQL and "
            "reload the schema cache.",
            code="schema_invalid",
            details=report.as_dict(),
        )
    with db.transaction() as conn:
        row = exports.create(
            conn,
            tenant_id=tenant.id,
            start=req.start_date,
            end=req.end_date,
            mapping=mapping,
            batch_size=settings.gestao.batch_size,
            created_by=principal.user_id,
        )
    wake(KIND, row["id"], tenant_id=tenant.id, event=("first",))
    return ExportJob.from_row(row).model_dump(mode="json")


def validate_schema(principal: Principal, req: SchemaRequest) -> dict[str, Any]:
    """validate-gestao-scouter-schema: the mapping (stored or proposed) against the remote."""
    tenant, target, stored = _admin_context(principal, req.tenant_id)
    mapping = validate_mapping(req.field_mappings) if req.field_mappings is not None else stored
    columns = remote_columns(tenant.id, RemoteClient(target, get_settings()))
    report = schema.compare(mapping, columns)
    saved = False
    if req.save:
        if not report.valid:
            raise Unprocessable(
                "The proposed mapping does not fit the remote schema.",
                code="schema_invalid",
                details=report.as_dict(),
            )
        with db.transaction() as conn:
            save_mapping(conn, tenant.id, mapping, principal.user_id)
        saved = True
    return {**report.as_dict(), "field_mappings": mapping, "saved": saved}


def reload_schema_cache(principal: Principal, req: TenantRequest) -> dict[str, Any]:
    """reload-gestao-scouter-schema-cache: remote reload RPC, drop our cache, re-validate."""
    tenant, target, mapping = _admin_context(principal, req.tenant_id)
    settings = get_settings()
    client = RemoteClient(target, settings)
    before = schema.fetch_columns(target, client)
    require_ok(client.reload_schema_cache(), "the schema cache reload", client.secrets)
    with db.transaction() as conn:
        schema.drop_cache(conn, tenant.id)
    columns, report = schema.wait_for_reload(client, mapping, before, settings.gestao.reload_wait_s)
    with db.transaction() as conn:
        schema.store_cache(conn, tenant.id, target.project_url, columns)
    return {"reloaded": True, "validation": report.as_dict()}
