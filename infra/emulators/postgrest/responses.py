"""Status lines and headers as PostgREST writes them (v12).

Mirrors src/PostgREST/Response.hs (statuses, Preference-Applied per action), RangeQuery.hs
(`contentRangeH`, `rangeStatusHeader`) and Error.hs (error bodies and their headers).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from infra.emulators.postgrest.errors import PostgrestError
from infra.emulators.postgrest.writes import Prefer

JSON = "application/json; charset=utf-8"


def json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    """Compact JSON with sorted keys, as Aeson encodes `{"code","details","hint","message"}`."""
    text = json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    resp = Response(text, status, content_type=JSON)
    resp.headers.update(headers or {})
    return resp


def bare(status: int, headers: dict[str, str]) -> Response:
    """A response without a body, hence without a Content-Type (return=minimal, 204)."""
    resp = Response(b"", status)
    del resp.headers["Content-Type"]
    resp.headers.update(headers)
    return resp


def content_range(lower: int, upper: int, total: int | None) -> str:
    """`contentRangeH`: `lower-upper/total`, with `*` for an empty range, a zero total or an
    unknown one (`*/*` for writes without a count)."""
    of = "*" if total is None else str(total)
    if lower <= upper and total != 0:
        return f"{lower}-{upper}/{of}"
    return f"*/{of}"


def _with_applied(headers: dict[str, str], prefer: Prefer, *keys: str) -> dict[str, str]:
    applied = prefer.applied(*keys)
    if applied:
        headers["Preference-Applied"] = applied
    return headers


def read(body: str, count: int, offset: int, total: int | None, prefer: Prefer) -> Response:
    """A GET: 200, or 206 when the count shows rows left out, 416 past the end; the only
    preference it echoes is `count`."""
    upper = offset + count - 1
    headers = _with_applied({"Content-Range": content_range(offset, upper, total)}, prefer, "count")
    if total is not None and offset > total:
        details = f"An offset of {offset} was requested, but there are only {total} rows."
        raise PostgrestError(
            416, "PGRST103", "Requested range not satisfiable", details, headers=headers
        )
    status = 206 if total is not None and count < total else 200
    resp = Response(body, status, content_type=JSON)
    resp.headers.update(headers)
    return resp


def created(prefer: Prefer, keyed: bool, written: int, inserted: int) -> tuple[int, dict[str, str]]:
    """A POST's status and headers. 201, except 200 for a merge-duplicates upsert that
    inserted nothing (v12.0, PR #2926); `resolution` is echoed only when the table has a
    primary key or `on_conflict` was given."""
    status = 200 if prefer.resolution == "merge-duplicates" and inserted <= 0 else 201
    total = written if prefer.count else None
    headers = {"Content-Range": content_range(1, 0, total)}
    keys = ("missing", "return", "count", *(("resolution",) if keyed else ()))
    return status, _with_applied(headers, prefer, *keys)


def changed(method: str, prefer: Prefer, affected: int) -> dict[str, str]:
    """PATCH / DELETE headers: `0-(n-1)/*` for PATCH, `*/*` for DELETE (`/n` with a count)."""
    total = affected if prefer.count else None
    if method == "PATCH":
        return _with_applied(
            {"Content-Range": content_range(0, affected - 1, total)},
            prefer, "missing", "return", "count",
        )  # fmt: skip
    return _with_applied({"Content-Range": content_range(1, 0, total)}, prefer, "return", "count")
