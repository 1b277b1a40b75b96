"""The HTTP contract of a function: its routes, what each accepts and answers, who may call.

Every `functions/<name>/main.py` declares one `Function` (a module constant `API`) with an
`Endpoint` per route and hands it to `shared.web.handle`. The same declaration validates
each request, shapes each answer and writes the OpenAPI document (`shared.openapi`), so the
document cannot drift from the code: a new route is one more `Endpoint`.

Who may call is documented here (`Caller`); the services enforce it (`require_role`, the
owner checks, `require_service`), the webhooks through their `authenticate` hook.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

import flask
from pydantic import BaseModel, BeforeValidator, ConfigDict

from shared.auth import Principal
from shared.errors import (
    BadRequest,
    DatabaseUnavailable,
    InvalidJson,
    MalformedBody,
    MethodNotAllowed,
    PayloadTooLarge,
    ServiceUnavailable,
    SyncqError,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)

Result = BaseModel | dict[str, Any] | list[Any] | flask.Response


class Answer(BaseModel):
    """An answer's shape, exactly: a key it does not declare is a bug, not a surprise."""

    model_config = ConfigDict(extra="forbid")


class Strict(BaseModel):
    """A request's shape, exactly: a key it does not declare is refused (422)."""

    model_config = ConfigDict(extra="forbid")


def _json_integer(value: Any) -> Any:
    if isinstance(value, bool | str):  # lax pydantic would read `true` as 1 and "5" as 5
        raise ValueError("expected an integer")
    return value  # an int, or a float pydantic takes when it is whole (5.0, as JSON Schema)


# A body's integer as the document's JSON Schema means it: 5 and 5.0, never true or "5".
# Constraints go before it (`Annotated[int, Field(ge=2), JSON_INTEGER]`): after it, pydantic
# would enforce them but leave them out of the document.
JSON_INTEGER = BeforeValidator(_json_integer)
JsonInt = Annotated[int, JSON_INTEGER]


def _query_value(pattern: str, kind: str) -> BeforeValidator:
    """A query string's value as the document's `type` means it, nothing looser: lax pydantic
    reads " 5 " and "+5" as 5, and Python's digit grouping "5_0" as 50."""
    whole = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not whole.fullmatch(value):
            raise ValueError(f"expected {kind}")
        return value

    return BeforeValidator(check)


# Constraints go before them, as for JSON_INTEGER.
QUERY_INTEGER = _query_value(r"-?[0-9]+", "an integer")  # `type: integer`: digits
QUERY_NUMBER = _query_value(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", "a number")  # JSON's

Action = Callable[[Principal, Any], Result]


class Caller(StrEnum):
    """Who may call an endpoint."""

    PUBLIC = "public"  # anyone, no credentials (the gateway's document and reference page)
    MEMBER = "member"  # a member (or admin) of the tenant the request names
    ADMIN = "admin"  # an admin of the tenant the request names
    OWNER = "owner"  # the user who owns the job the request names
    SERVICE = "service"  # the service: a service-role JWT, or a Cloud Tasks OIDC token
    WEBHOOK = "webhook secret"  # the remote system, proving a per-tenant or per-job secret


CALLER_TEXT = {
    Caller.PUBLIC: "anyone (no credentials)",
    Caller.MEMBER: "a member of the tenant",
    Caller.ADMIN: "an admin of the tenant",
    Caller.OWNER: "the user who owns the job",
    Caller.SERVICE: "the service (service-role JWT, or a Cloud Tasks OIDC token)",
    Caller.WEBHOOK: "the remote system, holding the webhook secret",
}


class Scheme(StrEnum):
    """How a caller proves who it is (the document's security schemes)."""

    BEARER = "bearerJWT"  # a user JWT, a service-role JWT or a Cloud Tasks OIDC token
    WEBHOOK_SECRET = "webhookSecret"  # `Authorization: Bearer <the tenant's webhook secret>`
    SIGNED_URL = "signedUrl"  # `?table=&job=&sig=`: an HMAC of the job, in the URL


@dataclass(frozen=True)
class Stream:
    """An answer that is a stream rather than a JSON document."""

    media_type: str
    description: str


@dataclass(frozen=True)
class Negotiated:
    """An answer in the form the request asks for: JSON (`json`, a model), or one of
    `streams` (a text format, chosen by a query parameter or the Accept header)."""

    json: Any
    streams: tuple[Stream, ...]


def json_shape(answer: Any) -> Any:
    """The JSON form of an endpoint's answer (a Stream stays a Stream)."""
    return answer.json if isinstance(answer, Negotiated) else answer


@dataclass(frozen=True)
class ErrorCode:
    """One error an endpoint can answer: its status and its envelope `code`."""

    status: int
    code: str


def coded(error: type[SyncqError], code: str) -> ErrorCode:
    """An error raised with a code of its own (`Conflict(code="job_canceled")`)."""
    return ErrorCode(error.status, code)


def error_code(error: type[SyncqError] | ErrorCode) -> ErrorCode:
    """The (status, code) an error class answers with."""
    return error if isinstance(error, ErrorCode) else ErrorCode(error.status, error.code)


@dataclass(frozen=True)
class Link:
    """A follow-up call fed by this answer (an OpenAPI link): `parameters` for a GET
    target's query, `body` for a POST target's body; values may be runtime expressions
    (`$request.body#/tenant_id`, `$response.body#/job_id`)."""

    name: str
    target: str  # "<function>" or "<function>/<route>" (the target's operation id)
    description: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Header:
    """A request header an endpoint reads (an OpenAPI header parameter, never required)."""

    name: str
    description: str
    schema: Mapping[str, Any]


@dataclass(frozen=True, eq=False)
class Endpoint:
    """One route of a function."""

    summary: str
    request: type[BaseModel]  # the JSON body; for GET, the query parameters
    action: Action
    answers: Mapping[int, Any]  # success status -> a type (a model, a union), Stream, Negotiated
    callers: tuple[Caller, ...]
    errors: tuple[type[SyncqError] | ErrorCode, ...] = ()  # beside the edge's own (below)
    method: Literal["GET", "POST", "PUT", "DELETE"] = "POST"
    path: str = "/"  # "/" or "/<route>"
    query: type[BaseModel] | None = None  # query parameters of a POST (webhook URLs)
    authenticate: Callable[[flask.Request], Principal] | None = None  # None: bearer JWT
    scheme: Scheme = Scheme.BEARER
    links: tuple[Link, ...] = ()
    description: str = ""
    headers: tuple[Header, ...] = ()  # optional request headers it reads

    @property
    def status(self) -> int:
        """The status of a successful answer."""
        status: int = next(iter(self.answers))
        return status

    @property
    def answer(self) -> Any:
        """The successful answer's type (its JSON form, when it is negotiated)."""
        return json_shape(self.answers[self.status])

    def all_errors(self) -> list[ErrorCode]:
        """Every error this endpoint can answer: its own and the edge's, in status order."""
        if Caller.PUBLIC in self.callers:  # the static files: no credentials, no parameters
            edge_public = (BadRequest, MalformedBody, MethodNotAllowed, SyncqError)
            public = {error_code(e) for e in (*edge_public, *self.errors)}
            return sorted(public, key=lambda c: (c.status, c.code))
        edge: list[type[SyncqError]] = [
            DatabaseUnavailable,
            MalformedBody,  # every request's body is read to its end (settle)
            Unauthorized,
            MethodNotAllowed,
            ValidationFailed,
            SyncqError,
        ]
        if self.method != "GET":  # a JSON body
            edge += [InvalidJson, PayloadTooLarge, UnsupportedMediaType]
        if self.method == "GET" or self.query is not None:
            edge.append(BadRequest)  # a query value PostgreSQL could not hold
        if self.scheme is Scheme.BEARER:
            edge.append(ServiceUnavailable)  # the OIDC certificates or the JWKS cannot be read
        codes = {error_code(e) for e in (*edge, *self.errors)}
        return sorted(codes, key=lambda c: (c.status, c.code))


@dataclass(frozen=True, eq=False)  # hashed by identity (the document cache)
class Function:
    """A deployable function: its name (the URL segment) and its routes."""

    name: str
    description: str
    endpoints: tuple[Endpoint, ...]

    def endpoints_at(self, path: str) -> list[Endpoint]:
        """The endpoints at `path` ("/" or "/<route>", a trailing slash ignored): one per
        method (integration-schedules reads with GET and writes with PUT and DELETE)."""
        wanted = path.rstrip("/") or "/"
        return [e for e in self.endpoints if e.path == wanted]

    def endpoint(self, path: str, method: str | None = None) -> Endpoint | None:
        """The route at `path` (for `method`, when several share the path)."""
        found = self.endpoints_at(path)
        return next((e for e in found if method is None or e.method == method), None)

    def operation_id(self, endpoint: Endpoint) -> str:
        """`<function>` or `<function>/<route>`, and `:<method>` when a path has several:
        the operation's id in the document."""
        base = self.name if endpoint.path == "/" else f"{self.name}{endpoint.path}"
        shared = len(self.endpoints_at(endpoint.path)) > 1
        return f"{base}:{endpoint.method.lower()}" if shared else base
