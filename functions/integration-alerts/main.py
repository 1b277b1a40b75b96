"""integration-alerts: who hears of failures, and what was sent.

GET ?tenant_id[&limit] (a member): the settings and the recent alerts (admins also get the
webhook signing key); PUT {tenant_id, emails, webhook_url?, events, remind_at,
pause_schedule_after} (an admin) replaces the settings.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from shared.alerts.models import AlertSettingsRequest, AlertsQuery
from shared.alerts.service import get_alerts, put_alerts
from shared.web import handle_by_method

METHODS: dict[str, tuple[type[Any], Any]] = {
    "GET": (AlertsQuery, get_alerts),
    "PUT": (AlertSettingsRequest, put_alerts),
}


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle_by_method(request, METHODS)
