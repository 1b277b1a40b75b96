"""JSON on the bulk paths (provider pages in, upsert batches out), parsed and written by orjson.

A 50k-contact OneCode sync spent a fifth of its CPU in the standard library's json
(bench_onecode); orjson does the same work several times faster. Where orjson is stricter
than the standard library the standard library takes over, so behaviour does not change:
integers beyond 64 bits, and NaN/Infinity, which some upstreams send.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import orjson


def loads(data: bytes | str) -> Any:
    """The parsed document; raises ValueError (json.JSONDecodeError) when it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(value: Any) -> str:
    """Compact JSON text (UTF-8, not ASCII-escaped), as PostgreSQL's json/jsonb input takes.
    Dates and datetimes are written in ISO-8601 (RFC 3339), which PostgreSQL reads."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_isoformat)


def _isoformat(value: Any) -> str:
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
