"""integration-alerts: a tenant's alert settings and its recent alerts."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from shared import db
from shared.alerts.channels import signing_key, webhook_url_problem
from shared.alerts.models import AlertEvent, AlertSettingsRequest, AlertsQuery
from shared.auth import Principal
from shared.db import Row
from shared.errors import UpstreamError, ValidationFailed
from shared.settings import get_settings
from shared.sqlfiles import query
from shared.tenancy import Role, has_role, reading_as, require_role

DEFAULTS: dict[str, Any] = {
    "emails": [],
    "webhook_url": None,
    "events": [str(e) for e in AlertEvent],
    "remind_at": [3, 10],
    "pause_schedule_after": 5,
}


def _public(row: Row | None, *, admin: bool) -> dict[str, Any]:
    if row is None:
        return dict(DEFAULTS)
    shown = {key: row[key] for key in DEFAULTS}
    if shown["webhook_url"] and not admin:
        shown["webhook_url"] = _origin(shown["webhook_url"])
    return shown


def _origin(url: str) -> str:
    """Where a webhook goes, without the path and query that often hold its token (a
    Slack or Teams URL is a credential)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"


def get_alerts(principal: Principal, req: AlertsQuery) -> dict[str, Any]:
    """Settings and recent alerts (a member: the webhook's origin only); admins also see the
    whole webhook URL and its signing key."""
    with db.transaction() as conn:
        require_role(conn, principal, req.tenant_id, Role.MEMBER)
        admin = has_role(conn, principal, req.tenant_id, Role.ADMIN)
        # Users may not read the URL (a credential) themselves: the service reads it here.
        hook = conn.execute(query("alerts", "webhook_url"), {"tenant_id": req.tenant_id})
        webhook = hook.fetchone()
    with reading_as(principal) as conn:
        shown = conn.execute(query("alerts", "settings_shown"), {"tenant_id": req.tenant_id})
        prefs = shown.fetchone()
        recent = conn.execute(
            query("alerts", "recent"), {"tenant_id": req.tenant_id, "limit": req.limit}
        ).fetchall()
    if prefs is not None and webhook is not None:
        prefs = {**prefs, **webhook}
    body: dict[str, Any] = {
        "settings": _public(prefs, admin=admin),
        "recent": [_alert(r) for r in recent],
    }
    if admin:
        body["webhook_signing_key"] = _key_or_none(str(req.tenant_id))
    return body


def put_alerts(principal: Principal, req: AlertSettingsRequest) -> dict[str, Any]:
    """Replace the tenant's alert settings (an admin)."""
    if req.webhook_url is not None:
        problem = webhook_url_problem(
            req.webhook_url, allow_http=get_settings().alerts.alert_webhook_allow_http
        )
        if problem is not None:
            raise ValidationFailed(
                details=[{"loc": ["webhook_url"], "type": "value_error", "message": problem}]
            )
    with db.transaction() as conn:
        require_role(conn, principal, req.tenant_id, Role.ADMIN)
        row = conn.execute(
            query("alerts", "put_settings"),
            {
                "tenant_id": req.tenant_id,
                "emails": req.emails,
                "webhook_url": req.webhook_url,
                "events": [str(e) for e in req.events],
                "remind_at": req.remind_at,
                "pause_schedule_after": req.pause_schedule_after,
                "updated_by": principal.user_id,
            },
        ).fetchone()
    key = _key_or_none(str(req.tenant_id))
    return {"settings": _public(row, admin=True), "webhook_signing_key": key}


def _key_or_none(tenant_id: str) -> str | None:
    try:
        return signing_key(get_settings(), tenant_id)
    except UpstreamError:
        return None


def _alert(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "provider_slug": row["provider_slug"],
        "event": row["event"],
        "job_id": str(row["job_id"]) if row["job_id"] else None,
        "failures": row["failures"],
        "detail": row["detail"],
        "pause_code": row["pause_code"],
        "schedule_paused": row["schedule_paused"],
        "status": row["status"],
        "attempts": row["attempts"],
        "delivered": list(row["delivered"]),
        "error": row["error_message"],
        "created_at": row["created_at"].isoformat(),
        "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
    }
