"""export-to-gestao-scouter-batch: start | pause | resume | reset | status a lead export;
GET ?tenant_id lists the tenant's latest exports.

`run` is the runner's own wake-up (Cloud Task, sweep): service only.
"""

from __future__ import annotations

import flask

from shared.contract import Caller, Endpoint, Function, Link, coded
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable
from shared.gestao.models import (
    REMOTE_ERRORS,
    ExportAnswer,
    ExportHistoryQuery,
    ExportJobList,
    ExportRequest,
)
from shared.gestao.service import export_action, export_history
from shared.web import entry_point, handle

NAME = "export-to-gestao-scouter-batch"
ACT = f"{NAME}:post"  # the actions' operation (GET lists the exports)
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
                Link("status", ACT, "Read the job.", body={**_SAME_JOB, "action": "status"}),
                Link("pause", ACT, "Pause the job.", body={**_SAME_JOB, "action": "pause"}),
                Link(
                    "history",
                    f"{NAME}:get",
                    "The tenant's latest exports.",
                    parameters={"tenant_id": "$request.body#/tenant_id"},
                ),
            ),
        ),
        Endpoint(
            summary="List the tenant's latest exports",
            request=ExportHistoryQuery,
            action=export_history,
            answers={200: ExportJobList},
            callers=(Caller.ADMIN, Caller.SERVICE),
            errors=(Forbidden,),
            method="GET",
            description="Newest first, `limit` of them (20 unless asked, at most 100).",
        ),
    ),
)


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
