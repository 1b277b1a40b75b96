"""runninghub-queue-manager: the credits queue for RunningHub renders.

Routes by path: /check /start /finish /cancel (a user for their own jobs, or the
service) and /webhook (RunningHub's TASK_END, verified by the signed URL). A route is one
`Endpoint` below.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from shared.auth import SERVICE, Principal
from shared.contract import Caller, Endpoint, Function, Scheme
from shared.credits import service
from shared.credits.models import (
    FUNCTION,
    CheckRequest,
    CreditJob,
    FinishRequest,
    JobRef,
    QueueState,
    WebhookAnswer,
    WebhookEvent,
    WebhookQuery,
)
from shared.credits.runninghub import verify_webhook
from shared.errors import (
    Forbidden,
    JobFinished,
    NotFound,
    PaymentRequired,
    RunningHubNotConfigured,
    TooManyActiveJobs,
    UnknownTable,
    UnknownWorkflow,
    UpstreamError,
)
from shared.settings import get_settings
from shared.web import handle

OWN = (Caller.OWNER, Caller.SERVICE)
JOB = (UnknownTable, NotFound)  # another user's job is the same 404 as none


def _signed(request: flask.Request) -> Principal:
    verify_webhook(get_settings(), request.args)  # 401 unless the URL is signed for the job
    return SERVICE


def _webhook(_: Principal, event: WebhookEvent) -> dict[str, Any]:
    return service.webhook(verify_webhook(get_settings(), flask.request.args), event)


API = Function(
    FUNCTION,
    "The credits queue for AI renders on RunningHub: debit once, queue, start, refund once.",
    (
        Endpoint("Queue state", CheckRequest, service.check, {200: QueueState}, OWN,
                 errors=JOB, path="/check"),
        Endpoint("Start a job", JobRef, service.start, {200: CreditJob}, OWN, path="/start",
                 errors=(*JOB, PaymentRequired, TooManyActiveJobs, UnknownWorkflow,
                         RunningHubNotConfigured)),
        Endpoint("Finish a job", FinishRequest, service.finish, {200: CreditJob}, OWN,
                 errors=(*JOB, Forbidden), path="/finish",
                 description="The owner may fail or cancel; only the service completes."),
        Endpoint("Cancel a job", JobRef, service.cancel, {200: CreditJob}, OWN,
                 errors=(*JOB, JobFinished), path="/cancel"),
        Endpoint("RunningHub's TASK_END", WebhookEvent, _webhook, {200: WebhookAnswer},
                 (Caller.WEBHOOK,), path="/webhook", query=WebhookQuery, authenticate=_signed,
                 scheme=Scheme.SIGNED_URL, errors=(UpstreamError,)),
    ),
)  # fmt: skip


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
