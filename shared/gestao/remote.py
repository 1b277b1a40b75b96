"""Talking to the tenant's Gestão Scouter project (`<project_url>/rest/v1`).

Every call sends the key as `apikey` and as the bearer token. Transient failures (5xx,
429, timeouts, connection errors) are retried with tenacity and exponential backoff;
what remains is classified so callers can tell bad rows from a bad schema or a bad key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
import tenacity

from shared import log
from shared.db import Conn
from shared.errors import Unprocessable, UpstreamError
from shared.gestao import NAME, SLUG
from shared.providers import http
from shared.scrub import scrub_text, scrub_value
from shared.secrets import require_secret
from shared.settings import Settings
from shared.tenancy import Tenant, enabled_integration

_logger = log.get_logger("gestao.remote")
TABLE = "leads"
MERGE = "resolution=merge-duplicates, return=minimal"


@dataclass(frozen=True)
class Target:
    """A tenant's remote project: its URL and key (the key never leaves this object)."""

    project_url: str
    key: str = field(repr=False)

    @property
    def rest_url(self) -> str:
        return self.project_url.rstrip("/") + "/rest/v1"


def target_for(conn: Conn, tenant: Tenant) -> Target:
    """The tenant's configured target (422 when disabled or unconfigured)."""
    integration = enabled_integration(conn, tenant.id, SLUG)
    url = (integration.get("config") or {}).get("project_url")
    if not isinstance(url, str) or not url.strip():
        raise Unprocessable(
            f"No {NAME} project URL is configured for this tenant.", code="target_missing"
        )
    return Target(url.strip(), require_secret(tenant.slug, SLUG, "service_key"))


class Verdict(StrEnum):
    """What a remote answer means for the export."""

    OK = "ok"
    DATA = "data"  # the rows were refused: split the batch to find them
    SCHEMA = "schema"  # a column or the table is missing from the remote schema cache
    AUTH = "auth"  # key rejected, or RLS denied the role
    OTHER = "other"


# SQLSTATE classes of row-level refusals: data exceptions, integrity constraints, RAISE.
_DATA_CLASSES = frozenset({"22", "23", "P0"})
_SCHEMA_CODES = frozenset({"PGRST204", "PGRST205", "42703", "42P01", "PGRST202"})


@dataclass
class Answer:
    """A remote response, parsed once; the raw text is capped."""

    status: int
    body: Any
    text: str

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        text = response.text[:4000]
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        return cls(response.status_code, body, text)

    @property
    def code(self) -> str | None:
        return str(self.body.get("code")) if isinstance(self.body, dict) else None

    @property
    def message(self) -> str:
        if isinstance(self.body, dict) and self.body.get("message"):
            return str(self.body["message"])
        return f"HTTP {self.status}"

    @property
    def verdict(self) -> Verdict:
        if 200 <= self.status < 300:
            return Verdict.OK
        if self.status in (401, 403):
            return Verdict.AUTH
        if self.code in _SCHEMA_CODES or self.status == 404:
            return Verdict.SCHEMA
        if self.status in (409, 413) or (self.code or "")[:2] in _DATA_CLASSES:
            return Verdict.DATA
        return Verdict.OTHER

    def safe_message(self, secrets: tuple[str, ...] = ()) -> str:
        """The remote's message with secrets and quoted data removed."""
        text = self.message
        if self.code:
            text = f"{self.code}: {text}"
        return scrub_text(text, secrets)

    def safe_body(self, secrets: tuple[str, ...] = ()) -> Any:
        """The body for storage: scrubbed JSON, or scrubbed text."""
        if self.body is not None:
            return scrub_value(self.body, secrets)
        return {"text": scrub_text(self.text, secrets)} if self.text else None


class _Transient(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(f"HTTP {answer.status}")
        self.answer = answer


class RemoteUnavailable(UpstreamError):
    """The remote kept failing (5xx, 429, timeouts) after every retry."""


class RemoteClient:
    """One tenant's remote, with retries on transient failures."""

    def __init__(self, target: Target, settings: Settings, *, retries: int | None = None):
        self.target = target
        self.settings = settings
        self.retries = settings.gestao_scouter_retries if retries is None else retries
        self.http = http.client_for(target.rest_url, settings.gestao_scouter_timeout_s)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.target.key,)

    def headers(self, prefer: str | None = None) -> dict[str, str]:
        key = self.target.key
        out = {"apikey": key, "Authorization": f"Bearer {key}", "Accept": "application/json"}
        if prefer:
            out["Prefer"] = prefer
        return out

    def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        prefer: str | None = None,
    ) -> Answer:
        """One logical request; transient failures are retried, then RemoteUnavailable."""
        headers = self.headers(prefer)
        if content is not None:
            headers["Content-Type"] = "application/json"
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=tenacity.wait_exponential_jitter(
                multiplier=self.settings.gestao_scouter_retry_base_s,
                max=self.settings.gestao_scouter_retry_cap_s,
                jitter=self.settings.gestao_scouter_retry_base_s,
            ),
            retry=tenacity.retry_if_exception_type((_Transient, httpx.TransportError)),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self.http.request(
                        method, path, params=params, content=content, headers=headers
                    )
                    answer = Answer.of(response)
                    _release(response)
                    if answer.status == 429 or answer.status >= 500:
                        raise _Transient(answer)
                    return answer
        except _Transient as exc:
            raise RemoteUnavailable(
                f"{NAME} kept answering HTTP {exc.answer.status}.",
                details={"status": exc.answer.status},
            ) from exc
        except httpx.TransportError as exc:
            raise RemoteUnavailable(
                f"{NAME} could not be reached ({type(exc).__name__}).", details={"status": None}
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def upsert(self, body: bytes, columns: list[str], on_conflict: str) -> Answer:
        """Bulk upsert of a JSON array into leads (merge duplicates, minimal return)."""
        params = {"on_conflict": on_conflict, "columns": ",".join(columns)}
        return self.send("POST", f"/{TABLE}", params=params, content=body, prefer=MERGE)

    def openapi(self) -> Answer:
        """The OpenAPI root document (as this key's role sees it)."""
        return self.send("GET", "/")

    def reload_schema_cache(self) -> Answer:
        """The remote RPC that issues `NOTIFY pgrst, 'reload schema'`."""
        return self.send("POST", "/rpc/reload_schema_cache", content=b"{}")


def _release(response: httpx.Response) -> None:
    """Break httpx's Response <-> stream reference cycle once the body is read.

    Otherwise the response, its request and the request body (a whole batch) live until
    the next full garbage collection, and memory grows with the export's size.
    """
    response.stream = httpx.ByteStream(b"")


def require_ok(answer: Answer, what: str, secrets: tuple[str, ...]) -> Answer:
    """2xx, or an UpstreamError that says what failed without leaking anything."""
    if answer.verdict is Verdict.OK:
        return answer
    code = "credentials_rejected" if answer.verdict is Verdict.AUTH else "remote_error"
    raise UpstreamError(
        f"{NAME} refused {what} (HTTP {answer.status}): {answer.safe_message(secrets)}",
        code=code,
        details={"status": answer.status, "remote_code": answer.code},
        retryable=False,
    )


def dumps(rows: list[dict[str, Any]]) -> bytes:
    """Rows as the JSON body of an upsert."""
    return json.dumps(rows, ensure_ascii=False, default=str).encode()
