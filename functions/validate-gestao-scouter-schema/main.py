"""validate-gestao-scouter-schema: the field mapping against the remote OpenAPI document.

Answers `{valid, missing_columns, type_mismatches, suggested_sql, ...}`; with
`field_mappings` (and `save: true`) it validates (and stores) a proposed mapping.
"""

from __future__ import annotations

import flask
import functions_framework

from shared.gestao.models import SchemaRequest
from shared.gestao.service import validate_schema
from shared.web import handle


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return handle(request, SchemaRequest, validate_schema)
