"""export-to-gestao-scouter-batch: start | pause | resume | reset | status a lead export.

`run` is the runner's own wake-up (Cloud Task, sweep): service only.
"""

from __future__ import annotations

import flask
import functions_framework

from shared.contract import Caller, Endpoint, Function, Link, coded
from shared.errors import Conflict, NotFound, Unprocessable
from shared.gestao.models import REMOTE_ERRORS, ExportAnswer, ExportRequest
from shared.gestao.service import export_action
from shared.web import handle

NAME = "export-to-gestao-scouter-batch"
_SAME_JOB = {"tenant_id": "$request.body#/tenant_id", "job_id": "$response.body#/id"}

API = Function(
    NAME,
    "Export a tenant's leads to its Gestão Scouter project in batches, as a job.",
    (
        Endpoint(
            summary="Start, pause, resume, reset or read an export",
            request=ExportRequest,
            action=export_action,
            answers={200: ExportAnswer},
            callers=(Caller.ADMIN, Caller.SERVICE),
            errors=(
                *REMOTE_ERRORS,
                NotFound,  # no such export job for this tenant
                coded(Conflict, "export_already_active"),
                coded(Conflict, "invalid_transition"),
                coded(Unprocessable, "schema_invalid"),  # details: the SQL to run
            ),
            description=(
                "`start` checks the remote schema first (422 `schema_invalid` with the SQL to "
                "run); one live export per tenant. `run` (the runner's wake-up) is the "
                "service's only."
            ),
            links=(
                Link("status", NAME, "Read the job.", body={**_SAME_JOB, "action": "status"}),
                Link("pause", NAME, "Pause the job.", body={**_SAME_JOB, "action": "pause"}),
            ),
        ),
    ),
)


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
