"""The OpenAPI 3.1 document of one function or of all, written from their `Function`
declarations (`shared.contract`): request models, answers per status, the error envelope
with the codes each status carries, who may call, and links between operations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import CoreModeRef, DefsRef, GenerateJsonSchema, JsonSchemaMode

from shared.contract import (
    CALLER_TEXT,
    Caller,
    Endpoint,
    ErrorCode,
    Function,
    Negotiated,
    Scheme,
    Stream,
    json_shape,
)

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
DOCUMENT_PATH = "/openapi.json"
_REF = "#/components/schemas/{model}"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    Scheme.BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "A user's JWT (HS256 with the project's secret, or ES256/RS256 from its JWKS; "
            "audience `authenticated`), a service-role JWT, or in production a Cloud Tasks "
            "OIDC token of an allowed service account. Tenant roles come from the database, "
            "never from the token."
        ),
    },
    Scheme.WEBHOOK_SECRET: {
        "type": "http",
        "scheme": "bearer",
        "description": "The tenant's Gestão Scouter webhook secret, compared in constant time.",
    },
    Scheme.SIGNED_URL: {
        "type": "apiKey",
        "in": "query",
        "name": "sig",
        "description": (
            "The HMAC of the job (`table`, `job`) that syncq puts in each job's webhook URL."
        ),
    },
}

ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "description": "Every error: a stable `code`, a message safe to show, maybe `details`.",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"description": "What failed (never the rejected input)."},
            },
        }
    },
}


def document(
    functions: Sequence[Function], *, server: str, title: str = "syncq functions"
) -> dict[str, Any]:
    """The OpenAPI document of `functions`, served under `server` (a URL or a path)."""
    schemas, components = _schemas(functions)
    paths: dict[str, Any] = {}
    for function in functions:
        for endpoint in function.endpoints:
            path = f"/{function.name}" + ("" if endpoint.path == "/" else endpoint.path)
            op = _operation(function, endpoint, schemas, components)
            paths.setdefault(path, {})[endpoint.method.lower()] = op
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": API_VERSION,
            "description": (
                "The HTTP functions of syncq. Every error is "
                '`{"error": {"code", "message", "details"?}}`; each response below lists '
                "the codes it can carry. Text anywhere in a request (keys, values, query "
                "parameters) must be storable by PostgreSQL: no NUL character and no unpaired "
                "surrogate (400 otherwise). Each function also answers "
                "`GET <function>/openapi.json` with its own part of this document."
            ),
        },
        "servers": [{"url": server}],
        "tags": [{"name": f.name, "description": f.description} for f in functions],
        "paths": paths,
        "components": {
            "schemas": {**components, "ErrorEnvelope": ERROR_ENVELOPE},
            "securitySchemes": {
                str(s): SECURITY_SCHEMES[s]
                for s in sorted({e.scheme for f in functions for e in f.endpoints})
            },
        },
    }


_Key = tuple[str, int]  # (operation id, status); status 0 = request, -1 = query


def _schemas(
    functions: Sequence[Function],
) -> tuple[dict[tuple[_Key, JsonSchemaMode], dict[str, Any]], dict[str, Any]]:
    """Every request and answer schema, with one shared set of named components."""
    inputs: list[tuple[_Key, JsonSchemaMode, TypeAdapter[Any]]] = []
    for function in functions:
        for endpoint in function.endpoints:
            op = function.operation_id(endpoint)
            inputs.append(((op, 0), "validation", _adapter(endpoint.request)))
            if endpoint.query is not None:
                inputs.append(((op, -1), "validation", _adapter(endpoint.query)))
            for status, answer in endpoint.answers.items():
                shape = json_shape(answer)
                if not isinstance(shape, Stream):
                    inputs.append(((op, status), "serialization", _adapter(shape)))
    by_key, defs = TypeAdapter.json_schemas(
        inputs, by_alias=True, ref_template=_REF, schema_generator=_Names
    )
    return by_key, dict(sorted(defs.get("$defs", {}).items()))


def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


class _Names(GenerateJsonSchema):
    """Component names `<capability>.<Name>` (`queue.JobRef`, `credits.CreditJobRef`): the same
    in the whole document and in each function's part, before pydantic's fallbacks."""

    def get_defs_ref(self, core_mode_ref: CoreModeRef) -> DefsRef:
        defs_ref = super().get_defs_ref(core_mode_ref)
        parts = core_mode_ref[0].rsplit(":", 1)[0].split(".")
        if len(parts) >= 3 and parts[0] == "shared":
            choices = self._prioritized_defsref_choices[defs_ref]
            choices.insert(0, DefsRef(f"{parts[1]}.{parts[-1]}"))
        return defs_ref


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A schema with its top-level `$ref` followed (a model used for query parameters)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        return _resolve(components[ref.rsplit("/", 1)[1]], components)
    return schema


def _operation(
    function: Function,
    endpoint: Endpoint,
    schemas: dict[tuple[_Key, JsonSchemaMode], dict[str, Any]],
    components: dict[str, Any],
) -> dict[str, Any]:
    op_id = function.operation_id(endpoint)
    request = schemas[((op_id, 0), "validation")]
    callers = ", or ".join(CALLER_TEXT[c] for c in endpoint.callers)
    description = "\n\n".join(
        p for p in (endpoint.description, f"**Who may call:** {callers}.") if p
    )
    op: dict[str, Any] = {
        "operationId": op_id,
        "tags": [function.name],
        "summary": endpoint.summary,
        "description": description,
        "x-callers": [str(c) for c in endpoint.callers],
        "security": [] if Caller.PUBLIC in endpoint.callers else [{str(endpoint.scheme): []}],
    }
    parameters: list[dict[str, Any]] = []
    if endpoint.method == "GET":
        parameters += _query_parameters(_resolve(request, components))
    else:
        body = _resolve(request, components)
        op["requestBody"] = {  # an empty body is read as {}: required only if {} is invalid
            "required": bool(body.get("required") or body.get("oneOf")),  # oneOf: {} fails it
            "content": {"application/json": {"schema": request}},
        }
    if endpoint.query is not None:
        query = schemas[((op_id, -1), "validation")]
        parameters += _query_parameters(_resolve(query, components))
    parameters += [
        {"name": h.name, "in": "header", "required": False, "schema": dict(h.schema),
         "description": h.description}
        for h in endpoint.headers
    ]  # fmt: skip
    if parameters:
        op["parameters"] = parameters
    op["responses"] = {
        **_success(function, endpoint, schemas),
        **error_responses(endpoint.all_errors()),
    }
    return op


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A model's fields as query parameters (a query value is never JSON null)."""
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": _not_null(prop),
        }
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`X | None` as X: an optional query parameter is left out, never sent as null."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    kept = [b for b in branches if b != {"type": "null"}]
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    if "enum" in rest:
        rest["enum"] = [v for v in rest["enum"] if v is not None]
    if len(kept) == 1:
        return {**rest, **kept[0]}
    return {**rest, "anyOf": kept}


def _success(
    function: Function,
    endpoint: Endpoint,
    schemas: dict[tuple[_Key, JsonSchemaMode], dict[str, Any]],
) -> dict[str, Any]:
    op_id = function.operation_id(endpoint)
    out: dict[str, Any] = {}
    for status, answer in endpoint.answers.items():
        streams = answer.streams if isinstance(answer, Negotiated) else ()
        if isinstance(answer, Stream):
            content = {answer.media_type: {"schema": {"type": "string"}}}
            description = answer.description
        else:
            content = {"application/json": {"schema": schemas[((op_id, status), "serialization")]}}
            description = _describe(json_shape(answer))
        for stream in streams:
            content[stream.media_type] = {"schema": {"type": "string"}}
            description += f" Or `{stream.media_type}`: {stream.description}"
        response: dict[str, Any] = {"description": description, "content": content}
        if endpoint.links and status == endpoint.status:
            response["links"] = {
                link.name: {
                    "operationId": link.target,
                    "description": link.description,
                    **({"parameters": dict(link.parameters)} if link.parameters else {}),
                    **({"requestBody": dict(link.body)} if link.body is not None else {}),
                }
                for link in endpoint.links
            }
        out[str(status)] = response
    return out


def _describe(answer: Any) -> str:
    if isinstance(answer, type) and issubclass(answer, BaseModel):
        doc = (answer.__doc__ or "").strip().splitlines()
        return doc[0] if doc else answer.__name__
    return "The answer."


_STATUS_TEXT = {
    400: "Bad request",
    401: "Missing or invalid credentials",
    402: "Not enough credits",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Unprocessable",
    429: "Too many requests",
    500: "Internal error",
    502: "Upstream failure",
    503: "Unavailable",
}


_HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`."}},
    405: {"Allow": {"schema": {"type": "string"}, "description": "The allowed methods."}},
    **{
        status: {
            "Retry-After": {
                "schema": {"type": "integer", "minimum": 1},
                "description": "Seconds to wait before trying again, when the condition "
                "frees itself (absent for `runninghub_not_configured`).",
            }
        }
        for status in (429, 503)
    },
}


def error_responses(codes: Iterable[ErrorCode]) -> dict[str, Any]:
    """One response per status: the envelope, its `code` one of the listed ones."""
    by_status: dict[int, list[str]] = {}
    for c in codes:
        by_status.setdefault(c.status, []).append(c.code)
    out: dict[str, Any] = {}
    for status, names in sorted(by_status.items()):
        listed = ", ".join(f"`{n}`" for n in names)
        schema = {
            "allOf": [
                {"$ref": _REF.format(model="ErrorEnvelope")},
                {"properties": {"error": {"properties": {"code": {"enum": names}}}}},
            ]
        }
        response: dict[str, Any] = {
            "description": f"{_STATUS_TEXT.get(status, 'Error')}: {listed}.",
            "content": {"application/json": {"schema": schema}},
        }
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        out[str(status)] = response
    return out
