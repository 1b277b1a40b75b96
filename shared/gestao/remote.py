"""Talking to the tenant's Gestão Scouter project (`<project_url>/rest/v1`).

Every call sends the key as `apikey` and as the bearer token. Transient failures (5xx,
429, timeouts, connection errors) are retried by the shared HTTP client (`shared.http`,
GESTAO_SCOUTER_* settings); what remains is classified (`Reply`) so callers can tell bad
rows from a bad schema or a bad key.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx

from shared.db import Conn
from shared.errors import RemoteUnavailable, Unprocessable, UpstreamError, UpstreamUnavailable
from shared.gestao import NAME, SLUG
from shared.http import HttpClient, RetryPolicy
from shared.scrub import scrub_text, scrub_value
from shared.secrets import require_secret
from shared.settings import Settings
from shared.tenancy import Tenant, enabled_integration

TABLE = "leads"
# count=exact: the answer's Content-Range says how many rows were written (`*/N`), so rows
# a remote trigger or rule discarded without a word are not counted as exported.
MERGE = "resolution=merge-duplicates, return=minimal, count=exact"
MERGE_LISTED = "resolution=merge-duplicates, return=representation, count=exact"
_WRITTEN = re.compile(r"(?:\*|[0-9]+-[0-9]+)/([0-9]+)")
_IDS_PER_LOOKUP = 300


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
    ok, detail = check_url(url.strip())
    if not ok:
        raise Unprocessable(detail, code="target_invalid")
    return Target(url.strip(), require_secret(tenant.slug, SLUG, "service_key"))


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_url(url: str) -> tuple[bool, str]:
    """https with a host (plain http only for a loopback emulator); what is wrong, else
    what it looks like."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # `http://[::1`: not a URL at all
        return False, "The project URL is not a valid URL."
    if parts.scheme not in ("http", "https") or not host:
        return False, "The project URL must look like https://<project>.supabase.co."
    if parts.scheme == "http" and not _loopback(host):
        return False, "The project URL must use https (plain http only for a local emulator)."
    if parts.query or parts.fragment:
        return False, "The project URL must not carry a query or fragment."
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number, or out of range
        return False, "The project URL has an invalid port."
    return True, f"{parts.scheme}://{host}{port} looks right."


class Reply(StrEnum):
    """How the remote answered, as the export reads it."""

    OK = "ok"
    DATA = "data"  # the rows were refused: split the batch to find them
    SCHEMA = "schema"  # a column or the table is missing from the remote schema cache
    AUTH = "auth"  # key rejected, or RLS denied the role
    OTHER = "other"


# SQLSTATE classes of row-level refusals: data exceptions (22), integrity constraints (23),
# RAISE and PL/pgSQL errors (P0), a trigger's routine failing on a row (2F: no RETURN, 27:
# a triggered data change), a view's WITH CHECK OPTION (44), and those PostgREST answers
# with a 500 although a row's data caused them: program limits (54: an index entry too
# big), trigger and routine failures (09, 38, 39). A batch refused so is split to find the
# rows, never retried whole.
_DATA_CLASSES = frozenset({"22", "23", "P0", "54", "09", "38", "39", "2F", "27", "44"})
# PostgreSQL's own SQLSTATE classes (its manual's Appendix A); a code outside them was chosen
# by the remote's code (a trigger's `RAISE SQLSTATE 'PGRST'`).
_POSTGRESQL_CLASSES = frozenset({
    "00", "01", "02", "03", "08", "09", "0A", "0B", "0F", "0L", "0P", "0Z", "20", "21", "22",
    "23", "24", "25", "26", "27", "28", "2B", "2D", "2F", "34", "38", "39", "3B", "3D", "3F",
    "40", "42", "44", "53", "54", "55", "57", "58", "72", "F0", "HV", "P0", "XX",
})  # fmt: skip
_STATEMENT_TIMEOUT = "57014"  # the remote's statement_timeout cut the upsert short
_SCHEMA_CODES = frozenset({"PGRST204", "PGRST205", "42703", "42P01", "PGRST202"})


@dataclass
class RemoteAnswer:
    """A remote response, parsed once; the raw text is capped."""

    status: int
    body: Any
    text: str
    written: int | None = None  # rows written, when the remote counted them (count=exact)

    @classmethod
    def of(cls, response: httpx.Response) -> RemoteAnswer:
        text = response.text[:4000]
        try:
            body = response.json() if response.content else None
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            body = None
        counted = _WRITTEN.fullmatch(response.headers.get("Content-Range", "").strip())
        return cls(response.status_code, body, text, int(counted[1]) if counted else None)

    def wrote_all(self, rows: int) -> bool:
        """Every row sent was written (or the remote did not say: PostgREST always does)."""
        return self.written is None or self.written >= rows

    @property
    def code(self) -> str | None:
        code = self.body.get("code") if isinstance(self.body, dict) else None
        return None if code is None else str(code)  # no code is none, not the text "None"

    @property
    def message(self) -> str:
        if isinstance(self.body, dict) and self.body.get("message"):
            return str(self.body["message"])
        return f"HTTP {self.status}"

    @property
    def reply(self) -> Reply:
        if 200 <= self.status < 300:
            return Reply.OK
        if self.status in (401, 403):
            return Reply.AUTH
        if self.code in _SCHEMA_CODES or self.status == 404:
            return Reply.SCHEMA
        if self.status == 409 or self.too_big or self.refused_rows:
            return Reply.DATA  # a batch too big is split in halves like one with a bad row
        return Reply.OTHER

    @property
    def refused_rows(self) -> bool:
        """The remote refused rows of the batch for their data (whatever the HTTP status).

        Besides the classes above: a 4xx whose code the remote's own code chose, a trigger
        refusing a row with the status of its choice (`RAISE ... ERRCODE 'PT422'`, or `RAISE
        SQLSTATE 'PGRST'` with a code of its own). Any other PostgreSQL code PostgREST
        answers with its default 400 (a rule the upsert cannot go through, 0A000) refuses
        the statement, not a row: split, every lead would be marked as an error.
        """
        code = self.code or ""
        if code[:2] in _DATA_CLASSES:
            return True
        chosen = code.startswith("PT") or (
            bool(code) and not code.startswith("PGRST") and code[:2] not in _POSTGRESQL_CLASSES
        )
        return 400 <= self.status < 500 and chosen

    @property
    def too_big(self) -> bool:
        """The batch was too big for the remote (body limit, statement timeout)."""
        return self.status == 413 or self.timed_out

    @property
    def timed_out(self) -> bool:
        """The remote's statement_timeout cancelled the upsert."""
        return self.code == _STATEMENT_TIMEOUT

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


class RemoteClient:
    """One tenant's remote, with retries on transient failures."""

    def __init__(self, target: Target, settings: Settings, *, retries: int | None = None):
        self.target = target
        self.settings = settings
        self.retries = settings.gestao.retries if retries is None else retries
        policy = RetryPolicy(
            attempts=self.retries + 1,
            base_s=settings.gestao.retry_base_s,
            cap_s=settings.gestao.retry_cap_s,
            timeout_s=settings.gestao.timeout_s,
        )
        self.http = HttpClient(target.rest_url, policy, name=NAME, secrets=(target.key,))

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
        idempotent: bool | None = None,
        final: Callable[[httpx.Response], bool] | None = None,
    ) -> RemoteAnswer:
        """One logical request; transient failures are retried, then RemoteUnavailable.

        `idempotent` defaults from the method (a plain POST insert is not retried once it
        may have arrived); an upsert that merges duplicates is.
        """
        headers = self.headers(prefer)
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self.http.request(
                method,
                path,
                params=params,
                content=content,
                headers=headers,
                idempotent=idempotent,
                final=final,
            )
        except UpstreamUnavailable as exc:
            raise RemoteUnavailable(
                exc.message,
                upstream_status=exc.upstream_status,
                retry_after_s=exc.retry_after_s,
                repeatable=exc.repeatable,
                details={"status": exc.upstream_status},
            ) from exc
        return RemoteAnswer.of(response)

    def upsert(
        self, body: bytes, columns: list[str], on_conflict: str, *, written: bool = False
    ) -> RemoteAnswer:
        """Bulk upsert of a JSON array into leads (merge duplicates, minimal return; with
        `written`, the answer's body lists the keys of the rows it wrote)."""
        params = {"on_conflict": on_conflict, "columns": ",".join(columns)}
        if written:
            params["select"] = on_conflict
        return self.send(
            "POST",
            f"/{TABLE}",
            params=params,
            content=body,
            prefer=MERGE_LISTED if written else MERGE,
            idempotent=True,
            final=_refused_as_is,  # the same batch would only fail again: split it
        )

    def held(self, column: str, ids: list[int], select: list[str]) -> dict[int, dict[str, Any]]:
        """The remote's copies (`select` columns) of those of these lead ids its leads holds,
        by id (GETs of a few hundred ids each, so no URL grows past a proxy's limit);
        RemoteUnavailable when it cannot say."""
        found: dict[int, dict[str, Any]] = {}
        columns = ",".join(dict.fromkeys([column, *select]))
        for start in range(0, len(ids), _IDS_PER_LOOKUP):
            chunk = ",".join(str(i) for i in ids[start : start + _IDS_PER_LOOKUP])
            params = {"select": columns, column: f"in.({chunk})"}
            answer = self.send("GET", f"/{TABLE}", params=params)
            if not 200 <= answer.status < 300 or not isinstance(answer.body, list):
                raise RemoteUnavailable(
                    f"{NAME} could not list the leads it holds (HTTP {answer.status}).",
                    upstream_status=answer.status,
                )
            found.update((int(r[column]), r) for r in answer.body if isinstance(r, dict))
        return found

    def openapi(self) -> RemoteAnswer:
        """The OpenAPI root document (as this key's role sees it)."""
        return self.send("GET", "/")

    def reload_schema_cache(self) -> RemoteAnswer:
        """The remote RPC that issues `NOTIFY pgrst, 'reload schema'` (safe to repeat)."""
        return self.send("POST", "/rpc/reload_schema_cache", content=b"{}", idempotent=True)


def _refused_as_is(response: httpx.Response) -> bool:
    """A 5xx that sending the same batch again would only meet again: the remote's
    statement_timeout cancelled it (SQLSTATE 57014; PostgREST maps class 57 to 500), or
    rows of it were refused with a class PostgREST maps to 500 (54, 09, 38, 39, P0)."""
    answer = RemoteAnswer.of(response)
    return response.status_code >= 500 and (answer.timed_out or answer.refused_rows)


def require_ok(answer: RemoteAnswer, what: str, secrets: tuple[str, ...]) -> RemoteAnswer:
    """2xx, or an UpstreamError that says what failed without leaking anything."""
    if answer.reply is Reply.OK:
        return answer
    code = "credentials_rejected" if answer.reply is Reply.AUTH else "remote_error"
    raise UpstreamError(
        f"{NAME} refused {what} (HTTP {answer.status}): {answer.safe_message(secrets)}",
        code=code,
        details={"status": answer.status, "remote_code": answer.code},
        retryable=False,
    )


def dumps(rows: list[dict[str, Any]]) -> bytes:
    """Rows as the JSON body of an upsert."""
    return json.dumps(rows, ensure_ascii=False, default=str).encode()
