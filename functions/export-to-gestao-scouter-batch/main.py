"""export-to-gestao-scouter-batch: start | pause | resume | reset | status a lead export.

`run` is the runner's own wake-up (Cloud Task, sweep): service only.
"""

from __future__ import annotations

import flask
import functions_framework

from shared.gestao.models import ExportRequest
from shared.gestao.service import export_action
from shared.web import handle


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, ExportRequest, export_action)
