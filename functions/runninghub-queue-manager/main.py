"""runninghub-queue-manager: the credits queue for RunningHub renders.

Routes by path: /create (a user, for themself: 201 with the new job), /check /start
/finish /cancel (a user for their own jobs, or the service: 200), /ledger and /jobs (a
user's own balance and ledger, own latest jobs) and /webhook (RunningHub's TASK_END,
verified by the signed URL).
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from shared.auth import SERVICE, Principal
from shared.credits import service
from shared.credits.models import (
    CheckRequest,
    CreateRequest,
    FinishRequest,
    JobRef,
    OwnRequest,
    WebhookEvent,
)
from shared.credits.runninghub import verify_webhook
from shared.errors import NotFound
from shared.settings import get_settings
from shared.web import handle, refuse

# path -> (body model, service action, success status)
ROUTES: dict[str, tuple[type[Any], Any, int]] = {
    "/create": (CreateRequest, service.create, 201),
    "/check": (CheckRequest, service.check, 200),
    "/start": (JobRef, service.start, 200),
    "/finish": (FinishRequest, service.finish, 200),
    "/cancel": (JobRef, service.cancel, 200),
    "/ledger": (OwnRequest, service.ledger, 200),
    "/jobs": (OwnRequest, service.jobs, 200),
}


def _webhook(request: flask.Request) -> flask.Response:
    def caller(req: flask.Request) -> Principal:
        verify_webhook(get_settings(), req.args)  # 401 unless the URL is signed for the job
        return SERVICE

    def action(_: Principal, event: WebhookEvent) -> dict[str, Any]:
        return service.webhook(verify_webhook(get_settings(), request.args), event)

    return handle(request, WebhookEvent, action, authenticate_with=caller)


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    path = request.path.rstrip("/")
    if path == "/webhook":
        return _webhook(request)
    if path not in ROUTES:
        routes = [*ROUTES, "/webhook"]
        return refuse(request, NotFound("No such route.", details={"routes": routes}))
    model, action, status = ROUTES[path]
    return handle(request, model, action, status=status)
