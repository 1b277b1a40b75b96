"""runninghub-queue-manager: the credits queue for RunningHub renders.

Routes by path: /create (a user, for themself: 201 with the new job; the same again with
the same Idempotency-Key header: 201 with that job, nothing new), /check /start
/finish /cancel (a user for their own jobs, or the service), /ledger and /jobs (a user's
own balance and ledger, own latest jobs) and /webhook (RunningHub's TASK_END, verified by
the signed URL). A route is one `Endpoint` below.
"""

from __future__ import annotations

from typing import Any

import flask

from shared.auth import SERVICE, Principal
from shared.contract import Caller, Endpoint, Function, Scheme, coded
from shared.credits import service
from shared.credits.models import (
    FUNCTION,
    IDEMPOTENCY_KEY,
    CheckRequest,
    CreateRequest,
    CreditJob,
    CreditJobRef,
    FinishRequest,
    JobList,
    Ledger,
    OwnRequest,
    QueueState,
    WebhookAnswer,
    WebhookEvent,
    WebhookQuery,
    idempotency_key,
)
from shared.credits.runninghub import verify_webhook
from shared.errors import (
    Forbidden,
    IdempotencyKeyReused,
    JobExists,
    JobFinished,
    JobNotStarted,
    NotFound,
    PaymentRequired,
    RunningHubNotConfigured,
    TooManyActiveJobs,
    UnknownTable,
    UnknownWorkflow,
    UpstreamError,
)
from shared.settings import get_settings
from shared.web import entry_point, handle

OWN = (Caller.OWNER, Caller.SERVICE)
JOB = (UnknownTable, NotFound)  # another user's job is the same 404 as none


def _signed(request: flask.Request) -> Principal:
    verify_webhook(get_settings(), request.args)  # 401 unless the URL is signed for the job
    return SERVICE


def _create(principal: Principal, req: CreateRequest) -> CreditJob:
    key = idempotency_key(flask.request.headers.get(IDEMPOTENCY_KEY.name))  # 422 if malformed
    return service.create(principal, req, key)


def _webhook(_: Principal, event: WebhookEvent) -> dict[str, Any]:
    return service.webhook(verify_webhook(get_settings(), flask.request.args), event)


API = Function(
    FUNCTION,
    "The credits queue for AI renders on RunningHub: debit once, queue, start, refund once.",
    (
        Endpoint("Create a job", CreateRequest, _create, {201: CreditJob},
                 (Caller.OWNER,), path="/create", errors=(UnknownTable, Forbidden, JobExists,
                                                          UnknownWorkflow, IdempotencyKeyReused),
                 headers=(IDEMPOTENCY_KEY,),
                 description="A user creates a job for themself; the server sets its price."
                             " Safe to retry with an `Idempotency-Key` header."),
        Endpoint("Queue state", CheckRequest, service.check, {200: QueueState}, OWN,
                 errors=JOB, path="/check"),
        Endpoint("Start a job", CreditJobRef, service.start, {200: CreditJob}, OWN, path="/start",
                 errors=(*JOB, PaymentRequired, TooManyActiveJobs, UnknownWorkflow,
                         RunningHubNotConfigured)),
        Endpoint("Finish a job", FinishRequest, service.finish, {200: CreditJob}, OWN,
                 errors=(*JOB, Forbidden, JobNotStarted), path="/finish",
                 description="The owner may fail or cancel; only the service completes, and"
                             " only a started job."),
        Endpoint("Cancel a job", CreditJobRef, service.cancel, {200: CreditJob}, OWN,
                 errors=(*JOB, JobFinished), path="/cancel"),
        Endpoint("My balance and ledger", OwnRequest, service.ledger, {200: Ledger},
                 (Caller.OWNER,), path="/ledger", errors=(Forbidden,)),
        Endpoint("My latest jobs", OwnRequest, service.jobs, {200: JobList},
                 (Caller.OWNER,), path="/jobs", errors=(Forbidden,)),
        Endpoint("RunningHub's TASK_END", WebhookEvent, _webhook, {200: WebhookAnswer},
                 (Caller.WEBHOOK,), path="/webhook", query=WebhookQuery, authenticate=_signed,
                 scheme=Scheme.SIGNED_URL,
                 # an outcome asked of RunningHub: unreachable, or no API key to ask with
                 errors=(UpstreamError, coded(UpstreamError, "credentials_missing"))),
    ),
)  # fmt: skip


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
