"""JSON on the bulk paths (provider pages in, upsert batches out), parsed and written by orjson.

A 50k-contact OneCode sync spent a fifth of its CPU in the standard library's json
(bench_onecode); orjson does the same work several times faster. Where orjson is stricter
than the standard library the standard library takes over, so behaviour does not change:
integers beyond 64 bits, and NaN/Infinity, which some upstreams send. Two things even the
standard library would let through or refuse are made safe there: a lone surrogate escape
(``"\\ud800"``, which no UTF-8 text can hold) becomes U+FFFD, and an integer too long for
Python to parse (beyond ``sys.get_int_max_str_digits()``) becomes None, which the mappers
then store as NULL like any other value their columns cannot hold.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

import orjson

_FIRST_YEAR, _LAST_YEAR = 1900, 2200
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def loads(data: bytes | str) -> Any:
    """The parsed document; raises ValueError (json.JSONDecodeError) when it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return _clean(json.loads(data, parse_int=_parse_int))
    except RecursionError as exc:  # nested past the parser's depth (orjson stops at 1024)
        raise ValueError("JSON nested too deep") from exc


def db_text(text: str) -> str:
    """``text`` as PostgreSQL text/jsonb can hold it: NUL removed, lone surrogates U+FFFD."""
    if not _UNSAFE.search(text):
        return text
    return _SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def iso_moment(value: Any) -> datetime | None:
    """An ISO-8601 date-time string as a datetime (in UTC when it has an offset: ISO 8601
    allows offsets up to ±23:59, PostgreSQL refuses beyond ±15:59), or None: not a string,
    not ISO, or a year outside 1900-2200 — a sentinel like 0001-01-01, or a year PostgreSQL
    would store but Python could not read back (BC, or past 9999 in UTC) — is no real
    instant."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if not _FIRST_YEAR <= moment.year <= _LAST_YEAR:
        return None
    return moment if moment.tzinfo is None else moment.astimezone(UTC)


def text_field(value: Any) -> str | None:
    """A JSON value as a text column holds it, or None: strings (cleaned by ``db_text`` and
    stripped) and integers written as text (an id or a number may come as one); floats
    (NaN too), booleans and objects are no text."""
    if isinstance(value, str):
        text = db_text(value).strip()
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        return None
    return text or None


def _parse_int(digits: str) -> int | None:
    """An integer literal; None when it is too long for Python to parse."""
    try:
        return int(digits)
    except ValueError:
        return None


def _clean(value: Any) -> Any:
    """The standard library's result with lone surrogates (from ``\\udXXX`` escapes) replaced."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


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
