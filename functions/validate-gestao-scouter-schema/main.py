"""validate-gestao-scouter-schema: the field mapping against the remote OpenAPI document.

Answers `{valid, missing_columns, type_mismatches, suggested_sql, ...}`; with
`field_mappings` (and `save: true`) it validates (and stores) a proposed mapping.
"""

from __future__ import annotations

import flask

from shared.contract import Caller, Endpoint, Function, coded
from shared.errors import Unprocessable
from shared.gestao.models import REMOTE_ERRORS, SchemaRequest, ValidateSchemaAnswer
from shared.gestao.service import validate_schema
from shared.web import entry_point, handle

API = Function(
    "validate-gestao-scouter-schema",
    "Check a field mapping (stored or proposed) against the remote leads table; save it.",
    (
        Endpoint(
            summary="Validate (and save) the field mapping",
            request=SchemaRequest,
            action=validate_schema,
            answers={200: ValidateSchemaAnswer},
            callers=(Caller.ADMIN, Caller.SERVICE),
            errors=(*REMOTE_ERRORS, coded(Unprocessable, "schema_invalid")),
        ),
    ),
)


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
