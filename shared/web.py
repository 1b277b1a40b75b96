"""The HTTP edge every function goes through: route, method, auth, size, JSON, validation,
the answer's shape, errors.

A function's main.py declares its contract (`shared.contract.Function`) and is one call to
`handle(request, API)` in an `@entry_point`; the same declaration answers
`GET <function>/openapi.json`.
Everything here turns failures into the error envelope, never into a 5xx, except for real
bugs (logged with a stack and answered with a generic 500).
"""

from __future__ import annotations

import io
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NoReturn, TypeVar

import flask
import functions_framework
from pydantic import BaseModel, TypeAdapter, ValidationError
from werkzeug.exceptions import HTTPException

from shared import db, log
from shared.auth import authenticate
from shared.contract import Endpoint, Function, Negotiated
from shared.errors import (
    BadRequest,
    DatabaseUnavailable,
    InvalidJson,
    MalformedBody,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SyncqError,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.openapi import DOCUMENT_PATH, document
from shared.scrub import scrub_text
from shared.settings import get_settings

M = TypeVar("M", bound=BaseModel)

_logger = log.get_logger("web")


def json_response(body: Any, status: int = 200) -> flask.Response:
    """A JSON response; pydantic models are dumped in JSON mode."""
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    return flask.Response(
        json.dumps(body, default=str, ensure_ascii=False),
        status=status,
        mimetype="application/json",
    )


def error_response(error: SyncqError) -> flask.Response:
    """The error envelope for a SyncqError."""
    response = json_response(error.envelope(), error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="syncq"'
    if error.retry_hint_s is not None:
        response.headers["Retry-After"] = str(error.retry_hint_s)
    return response


# Said plainly where pydantic's words are a parser's ("invalid character: expected an
# optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `m` at 2").
_A_UUID = "Input should be a UUID, such as 123e4567-e89b-12d3-a456-426614174000."
_PLAINER = {"uuid_parsing": _A_UUID, "uuid_type": _A_UUID}


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Where and what failed; never the rejected input itself (it may hold PII)."""
    return [
        {
            "loc": [str(p) for p in e["loc"]],
            "type": e["type"],
            "message": _PLAINER.get(e["type"], e["msg"]),
        }
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def parse_model(model: type[M], data: Any) -> M:
    """Validate data against a model, as a 422 envelope on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc)) from exc


# Far deeper than any body a model accepts, far shallower than the interpreter's recursion
# limit: whatever recurses over the data later (pydantic, json.dumps, psycopg) cannot overflow.
MAX_JSON_DEPTH = 64
_NOT_JSON = "The body is not valid JSON."
_TOO_DEEP = "The body is nested too deeply."
_NOT_FINITE = "Numbers in the body must be finite."
_HAS_NUL = "Text must not contain NUL characters."
_LONE_SURROGATE = "Text must be valid Unicode (no unpaired surrogates)."
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # json.loads joins proper pairs, so any is lone


def _text_problem(text: str) -> str | None:
    """Why PostgreSQL (text, jsonb) or UTF-8 would refuse this string; None when they won't."""
    if "\x00" in text:
        return _HAS_NUL
    if not text.isascii() and _SURROGATE.search(text):
        return _LONE_SURROGATE
    return None


def _refuse_constant(_: str) -> NoReturn:
    raise InvalidJson(_NOT_FINITE)  # NaN, Infinity, -Infinity: not JSON, not jsonb


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):  # 1e400 reads as inf, which jsonb refuses
        raise InvalidJson(_NOT_FINITE)
    return value


def _check_tree(data: Any) -> None:
    """Depth, keys and strings of a parsed document, walked without recursion."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            problem = _text_problem(value)
            if problem:
                raise InvalidJson(problem)
            continue
        if not isinstance(value, dict | list):
            continue  # numbers, booleans, null: parse_float already saw to the numbers
        if depth > MAX_JSON_DEPTH:
            raise InvalidJson(_TOO_DEEP)
        if isinstance(value, dict):
            stack.extend((key, depth) for key in value)
            value = value.values()
        stack.extend((item, depth + 1) for item in value if isinstance(item, str | dict | list))


def parse_json_body(raw: bytes) -> Any:
    """A JSON document PostgreSQL can store, or InvalidJson saying why (never quoting it)."""
    try:
        data = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise InvalidJson(_TOO_DEEP) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(_NOT_JSON) from exc
    _check_tree(data)
    return data


_DRAIN_BYTES = 64 * 1024
_READ = "syncq.body_bytes_read"  # the environ's count of the body read so far


def read_body(request: flask.Request, size: int) -> bytes:
    """Up to `size` bytes of the body; 400 when its framing is broken (bad chunk sizes, a
    body cut short), after which the body reads as empty, so nothing re-reads the wreck.

    Only the server's own reader runs here, and each says "bad chunk", "truncated", "client
    gone" its own way (werkzeug: OSError, ValueError, ClientDisconnected; gunicorn:
    NoMoreData, InvalidChunkSize, ChunkMissingTerminator), so any failure is the client's;
    gunicorn's reader of a Content-Length body says nothing at all, it just ends early.
    """
    try:  # a read may answer short of what is there: read on to `size` or the end, so a
        # body cut short fails here, before the action, not after it (when the rest is read)
        pieces: list[bytes] = []
        got = 0
        while got < size and (piece := request.stream.read(size - got)):
            pieces.append(piece)
            got += len(piece)
        read = request.environ[_READ] = request.environ.get(_READ, 0) + got
        expected = request.content_length
        if got < size and expected is not None and read < expected:
            # gunicorn marks its input terminated, so werkzeug does not limit it to the
            # Content-Length: a body that ends short of it just ends (no error to catch)
            raise MalformedBody()
        return b"".join(pieces)
    except Exception as exc:
        request.stream = io.BytesIO()  # werkzeug's documented way to replace the cached stream
        raise MalformedBody() from exc


def finish_body(request: flask.Request) -> None:
    """Read what is left of the body, in bounded pieces, or raise the malformed body's 400.

    functions-framework reads every request's body to its end once the answer is made (so
    a kept-alive connection is where the next request starts), whole and unchecked: a broken
    body would fail there, after the edge, as a bare 500. Done here first, it finds nothing.
    Beyond what a body may hold, the rest is given up rather than read.
    """
    budget = get_settings().edge.max_body_bytes
    while budget > 0 and (piece := read_body(request, min(_DRAIN_BYTES, budget))):
        budget -= len(piece)
    if budget <= 0:
        request.stream = io.BytesIO()


def read_json(request: flask.Request) -> Any:
    """The request's JSON body (an object), within the size limit."""
    limit = get_settings().edge.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(details={"limit_bytes": limit})
    raw = read_body(request, limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(details={"limit_bytes": limit})
    if not raw:  # no body is {}; a blank one is not JSON
        return {}
    mimetype = request.mimetype or "application/json"
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType()
    codings = request.headers.get("Content-Encoding", "").split(",")
    if any(c.strip().lower() not in ("", "identity") for c in codings):
        # Bodies are read as sent: a compressed one was refused as "not valid JSON", and
        # one under a coding it does not carry was taken as it stood. The header is a
        # list that may be empty, and identity is no coding.
        raise UnsupportedMediaType("Send the body uncompressed (no Content-Encoding).")
    data = parse_json_body(raw)
    if not isinstance(data, dict):
        raise InvalidJson()
    return data


def check_query(args: Mapping[str, str]) -> dict[str, str]:
    """Query parameters as a dict, refused (400) when one could not reach PostgreSQL."""
    for text in (*args.keys(), *args.values()):
        problem = _text_problem(text)
        if problem:
            raise BadRequest(problem)
    return dict(args)


def query_args(request: flask.Request) -> dict[str, str]:
    """The query parameters, each given once (422 naming one given twice: which would
    count is anyone's guess), refused (400) when one could not reach PostgreSQL."""
    repeated = [name for name, values in request.args.lists() if len(values) > 1]
    if repeated:
        raise ValidationFailed(
            details=[
                {"loc": ["query", name], "type": "repeated", "message": "given more than once"}
                for name in repeated
            ]
        )
    return check_query(request.args.to_dict())


def request_data(request: flask.Request) -> Any:
    """Query parameters for GET (and HEAD), the JSON body otherwise."""
    if request.method in ("GET", "HEAD"):
        return query_args(request)
    return read_json(request)


_EXECUTION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def execution_id(request: flask.Request) -> str:
    """The platform's execution id when there is one, else a fresh one.

    A caller can send the header too, and it labels every log line of the request: only an
    id-shaped value is taken, never free text (which may be anything, personal data included).
    """
    given = request.headers.get("Function-Execution-Id", "")
    return given if _EXECUTION_ID.fullmatch(given) else uuid.uuid4().hex[:16]


# Request headers a browser may send (the preflight names them; anything else is refused):
# what @supabase/supabase-js sends (functions, auth and PostgREST clients alike) and, for a
# fetch-based event-stream client, Accept, Cache-Control and Last-Event-ID on reconnection;
# Idempotency-Key, which makes a retried credits /create safe.
CORS_ALLOWED_HEADERS = (
    "accept",
    "accept-profile",
    "apikey",
    "authorization",
    "cache-control",
    "content-profile",
    "content-type",
    "idempotency-key",
    "last-event-id",
    "prefer",
    "range",
    "x-client-info",
    "x-region",
    "x-supabase-api-version",
)
_CORS_HEADERS = ", ".join(CORS_ALLOWED_HEADERS)


def allow_header(methods: set[str]) -> str:
    """The `Allow` header a 405 sends (RFC 9110): the methods, HEAD with GET, and OPTIONS."""
    return ", ".join(sorted(methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())))


def method_not_allowed(allowed: set[str]) -> flask.Response:
    """The 405 envelope with its `Allow` header (RFC 9110: a 405 says what is allowed)."""
    refused = error_response(MethodNotAllowed(details={"allowed": sorted(allowed)}))
    refused.headers["Allow"] = allow_header(allowed)
    return refused


def with_cors(
    request: flask.Request, response: flask.Response, methods: set[str]
) -> flask.Response:
    """CORS for browsers calling a function directly (the Supabase client does)."""
    allowed = get_settings().edge.cors_allowed_origins
    origin = request.headers.get("Origin")
    if "*" in allowed:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin and origin in allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.vary.add("Origin")
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = ", ".join(sorted(methods | {"OPTIONS"}))
        response.headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    elif "Access-Control-Allow-Origin" in response.headers:
        # A page on another origin reads when to come back from a 429 or a 503.
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return response


def handle(request: flask.Request, function: Function) -> flask.Response:
    """Serve one request of `function`: its OpenAPI document, or one of its routes (the
    endpoint of the path and method; another method of a known path is a 405)."""
    path = request.path.rstrip("/") or "/"
    if path == DOCUMENT_PATH and request.method in ("GET", "HEAD", "OPTIONS"):
        return with_cors(request, json_response(function_document(function)), {"GET"})
    at_path = function.endpoints_at(path)
    if not at_path:
        routes = sorted({e.path for e in function.endpoints})
        missing = refuse(request, NotFound("No such route.", details={"routes": routes}))
        return with_cors(request, missing, {e.method for e in function.endpoints})
    allowed: set[str] = {e.method for e in at_path}
    method = as_method(request.method, allowed)
    endpoint = next((e for e in at_path if e.method == method), at_path[0])
    response = _handle(request, endpoint, method, allowed)
    return with_cors(request, settle(request, response), allowed)


def as_method(method: str, allowed: set[str]) -> str:
    """The endpoint's method a request is served by: HEAD is a GET without its body (RFC
    9110; the server drops the body) wherever GET is allowed."""
    return "GET" if method == "HEAD" and "GET" in allowed else method


def settle(request: flask.Request, response: flask.Response) -> flask.Response:
    """The response once the body is read to its end: a broken body turns it into a 400."""
    if response.is_streamed:  # a stream never reads the body (nor does the framework)
        return response
    try:
        finish_body(request)
    except BadRequest as error:
        return error_response(error)
    return response


def refuse(request: flask.Request, error: SyncqError) -> flask.Response:
    """The envelope for an error found before an endpoint runs (an unknown path)."""
    return settle(request, error_response(error))


@lru_cache(maxsize=32)
def function_document(function: Function) -> dict[str, Any]:
    """The function's own part of the OpenAPI document; its server is the folder above
    `<function>/openapi.json`, where every path of the document starts."""
    return document([function], server="..", title=f"syncq: {function.name}")


@lru_cache(maxsize=256)
def _adapter(answer: Any) -> TypeAdapter[Any]:
    return TypeAdapter(answer)


def answer_body(endpoint: Endpoint, result: BaseModel | dict[str, Any] | list[Any]) -> Any:
    """The JSON of a successful answer, as the endpoint declares it: a dict is validated
    against the declared type (a mismatch is a bug: 500) and keeps only the keys it had."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True)
    adapter = _adapter(endpoint.answer)
    value = adapter.validate_python(result)
    return adapter.dump_python(value, mode="json", by_alias=True, exclude_unset=True)


def _handle(
    request: flask.Request, endpoint: Endpoint, method: str, allowed: set[str]
) -> flask.Response:
    with log.labels(execution_id=execution_id(request), path=request.root_path + request.path):
        try:
            if method == "OPTIONS":
                return flask.Response(status=204, headers={"Allow": allow_header(allowed)})
            if method not in allowed:
                return method_not_allowed(allowed)
            if endpoint.authenticate is not None:
                principal = endpoint.authenticate(request)
            else:
                principal = authenticate(request.headers.get("Authorization"))
            if endpoint.query is not None:
                parse_model(endpoint.query, query_args(request))
            payload = parse_model(endpoint.request, request_data(request))
            result = endpoint.action(principal, payload)
            response = (
                result
                if isinstance(result, flask.Response)
                else json_response(answer_body(endpoint, result), endpoint.status)
            )
            if isinstance(endpoint.answers[endpoint.status], Negotiated):
                response.vary.add("Accept")  # one URL, JSON or text by the Accept header
            return response
        except Exception as exc:
            return _failed(exc)


def _failed(exc: Exception) -> flask.Response:
    """The answer to what an endpoint raised (called while handling it): its envelope, a 503
    for a fault of the database's, else a 500, logged with its trace (a bug)."""
    if isinstance(exc, SyncqError):
        if exc.status >= 500:
            fields = log.fields(
                code=exc.error_code, status=exc.status, reason=scrub_text(exc.message)
            )
            _logger.warning("request failed", extra=fields)
        return error_response(exc)
    if db.is_fault(exc):
        _logger.error("database unavailable", extra=log.fields(error=type(exc).__name__))
        return error_response(DatabaseUnavailable())
    _logger.exception("unhandled error")
    return error_response(SyncqError())


Entry = Callable[[flask.Request], flask.Response]


def entry_point(function: Entry) -> Entry:
    """`@functions_framework.http`, plus the envelope for what the framework answers itself.

    functions-framework answers `/robots.txt` and `/favicon.ico` with its own 404 page, and
    Flask its `/static/...` route, before the function is called: those answers become the
    envelope too, and so does a failure outside an endpoint's own handling (`_crashed`). A
    main.py runs inside the app's context while the framework loads it (in Cloud Functions,
    the gateway and the tests alike), which is where the app is found.
    """
    if flask.has_app_context():
        app: flask.Flask = flask.current_app._get_current_object()  # type: ignore[attr-defined]
        app.register_error_handler(HTTPException, _answered_by_the_framework)
        app.register_error_handler(Exception, _crashed)
    functions_framework.http(function)  # registered by its name as an HTTP function
    return function


def _crashed(error: Exception) -> flask.Response:
    """The envelope for a failure outside an endpoint's own handling: settings that cannot
    be read fail the CORS headers too, and the framework answered with its HTML page."""
    _logger.error("unhandled error", exc_info=error)
    return error_response(SyncqError())


def _answered_by_the_framework(error: HTTPException) -> flask.Response:
    """The envelope for a refusal made before the function ran (its body read, as ours)."""
    if error.code == MethodNotAllowed.status:
        allowed = set(getattr(error, "valid_methods", None) or ())
        return settle(flask.request, method_not_allowed(allowed))
    return refuse(flask.request, NotFound("No such path."))
