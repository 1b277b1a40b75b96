"""integration-alerts: who hears of failures, and what was sent.

GET ?tenant_id[&limit] (a member): the settings and the recent alerts (a member sees the
webhook's origin only; admins get the whole URL and the webhook signing key); PUT
{tenant_id, emails, webhook_url?, events, remind_at, pause_schedule_after} (an admin)
replaces the settings.
"""

from __future__ import annotations

import flask

from shared.alerts.models import AlertSettingsRequest, AlertsQuery, AlertsSaved, AlertsView
from shared.alerts.service import get_alerts, put_alerts
from shared.contract import Caller, Endpoint, Function
from shared.errors import Forbidden
from shared.web import entry_point, handle

API = Function(
    "integration-alerts",
    "Failure alerts: recipients, webhook, events and throttling, and the alerts sent.",
    (
        Endpoint("Alert settings and recent alerts", AlertsQuery, get_alerts,
                 {200: AlertsView}, (Caller.MEMBER, Caller.SERVICE), errors=(Forbidden,),
                 method="GET"),
        Endpoint("Replace the alert settings", AlertSettingsRequest, put_alerts,
                 {200: AlertsSaved}, (Caller.ADMIN, Caller.SERVICE), errors=(Forbidden,),
                 method="PUT", description="Recipients are e-mail addresses; the webhook an "
                 "absolute https URL without credentials (http only where the deployment "
                 "allows it); 422 naming the field otherwise."),
    ),
)  # fmt: skip


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
