"""Errors as PostgREST and the Supabase gateway render them.

EmulatorError            status + JSON body
 ├── GatewayError        {"message", "hint"} (the API gateway, before PostgREST)
 └── PostgrestError      {"code", "message", "details", "hint"}
"""

from __future__ import annotations

import json
from typing import Any

import psycopg


class EmulatorError(Exception):
    """An error answered to the client with a status and a JSON body."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body
        self.headers = headers or {}


class GatewayError(EmulatorError):
    """Rejected by the API gateway (key checks), shaped like Kong's answers."""

    def __init__(self, status: int, message: str, hint: str | None = None):
        body: dict[str, Any] = {"message": message}
        if hint:
            body["hint"] = hint
        super().__init__(status, body)


class PostgrestError(EmulatorError):
    """A PostgREST error body `{"code","message","details","hint"}`; a 401 carries
    `WWW-Authenticate: Bearer` (JWT errors pass their own `error="invalid_token"` value)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        *,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        body = {"code": code, "message": message, "details": details, "hint": hint}
        headers = dict(headers or {})
        if status == 401:  # Error.hs: every 401 asks for a bearer token (42501 as anon, ...)
            headers.setdefault("WWW-Authenticate", "Bearer")
        super().__init__(status, body, headers)
        self.code = code


def column_not_found(table: str, column: str) -> PostgrestError:
    """PGRST204: a column the schema cache does not know."""
    return PostgrestError(
        400, "PGRST204", f"Could not find the '{column}' column of '{table}' in the schema cache"
    )


def table_not_found(table: str, known: list[str]) -> PostgrestError:
    """PGRST205: a table the schema cache does not know."""
    hint = f"Perhaps you meant the table 'public.{known[0]}'" if known else None
    return PostgrestError(
        404,
        "PGRST205",
        f"Could not find the table 'public.{table}' in the schema cache",
        hint=hint,
    )


def invalid_body(message: str = "Empty or invalid json") -> PostgrestError:
    """PGRST102: a body PostgREST cannot turn into rows."""
    return PostgrestError(400, "PGRST102", message)


def sqlstate_status(sqlstate: str, authenticated: bool, message: str = "") -> int:
    """HTTP status PostgREST answers for a SQLSTATE (its pgErrorStatus table, abridged)."""
    exact = {
        "23503": 409,
        "23505": 409,
        "25006": 405,
        "53400": 500,
        "57P01": 503,
        "P0001": 400,
        "42P01": 404,
        "42P17": 500,
        "42883": 404,
    }
    if sqlstate == "42501":
        return 403 if authenticated else 401
    if sqlstate.startswith("PT"):  # a status of the raiser's choosing (500 when not one)
        return (
            int(sqlstate[2:]) if sqlstate[2:].isdigit() and 100 <= int(sqlstate[2:]) <= 599 else 500
        )
    if sqlstate == "21000":
        return 400 if "requires a WHERE clause" in message else 500
    if sqlstate in exact:
        return exact[sqlstate]
    by_class = {
        "08": 503,
        "09": 500,
        "0L": 403,
        "0P": 403,
        "25": 500,
        "28": 403,
        "2D": 500,
        "38": 500,
        "39": 500,
        "3B": 500,
        "40": 500,
        "53": 503,
        "54": 500,
        "55": 500,
        "57": 500,
        "58": 500,
        "F0": 500,
        "HV": 500,
        "P0": 500,
        "XX": 500,
    }
    return by_class.get(sqlstate[:2], 400)


def from_psycopg(exc: psycopg.Error, authenticated: bool) -> PostgrestError:
    """Translate a database error into the body and status PostgREST would send."""
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
        return PostgrestError(
            503, "PGRST000", "Database connection error. Retrying the connection."
        )
    diag = exc.diag
    if isinstance(exc, psycopg.DataError) and exc.sqlstate is None:
        # psycopg refuses a NUL in a text parameter before sending it; PostgreSQL, which
        # PostgREST hands the value to, refuses it as 22021 (a 400), not as a server fault.
        message = 'invalid byte sequence for encoding "UTF8": 0x00'
        return PostgrestError(400, "22021", message)
    sqlstate = exc.sqlstate or "XX000"
    if sqlstate == "PGRST":
        return _raised_pgrst(diag.message_primary or "", diag.message_detail)
    message = diag.message_primary or str(exc)
    status = sqlstate_status(sqlstate, authenticated, message)
    return PostgrestError(status, sqlstate, message, diag.message_detail, hint=diag.message_hint)


def _raised_pgrst(message: str, detail: str | None) -> PostgrestError:
    """`RAISE SQLSTATE 'PGRST'`: the whole answer is the raiser's (RaisePgrst.hs): MESSAGE
    is JSON {code, message: text; details?, hint?: text}, DETAIL {status: a number, headers:
    text to text; status_text?}. Read in that order, the first fault is a PGRST121."""
    body = _json_object(message)
    if body is None or not _texts(body, ("code", "message"), ("details", "hint")):
        return _unparsed(f"Invalid JSON value for MESSAGE: '{message}'", _MESSAGE_HINT)
    if detail is None:
        return _unparsed("DETAIL is missing in the RAISE statement", _DETAIL_HINT)
    answer = _json_object(detail)
    headers = answer.get("headers") if answer is not None else None
    status = answer.get("status") if answer is not None else None
    if (
        not isinstance(status, int) or isinstance(status, bool)
        or not isinstance(headers, dict) or not _texts(headers, (), tuple(headers))
        or not _texts(answer or {}, (), ("status_text",))
    ):  # fmt: skip
        return _unparsed(f"Invalid JSON value for DETAIL: '{detail}'", _DETAIL_HINT)
    return PostgrestError(
        status, body["code"], body["message"], body.get("details"), hint=body.get("hint"),
        headers=dict(headers),
    )  # fmt: skip


_MESSAGE_HINT = (
    "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional"
    " keys: 'details', 'hint'."
)
_DETAIL_HINT = (
    "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional"
    " key: 'status_text'."
)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _texts(obj: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...]) -> bool:
    """The required keys hold text; the optional ones text or null, when present."""
    return all(isinstance(obj.get(k), str) for k in required) and all(
        obj.get(k) is None or isinstance(obj[k], str) for k in optional
    )


def _unparsed(details: str, hint: str) -> PostgrestError:
    """PGRST121: the raise's JSON could not be read."""
    message = "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error"
    return PostgrestError(500, "PGRST121", message, details, hint=hint)
