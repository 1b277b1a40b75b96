"""shared.web.parse_json_body: JSON that PostgreSQL can hold, or InvalidJson."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import flask
import pytest
from werkzeug.test import EnvironBuilder

from shared.errors import BadRequest, InvalidJson, PayloadTooLarge, UnsupportedMediaType
from shared.settings import get_settings
from shared.web import MAX_JSON_DEPTH, check_query, finish_body, parse_json_body, read_json


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "b": [true, false, null], "c": {"d": "x"}}',
        b'{"big": 123456789012345678901234567890, "neg": -0.0, "max": 1.7976931348623157e308}',
        b'{"tiny": 1e-400}',  # underflows to 0.0: finite, PostgreSQL takes it
        '{"pt": "Lúcia", "emoji": "😀", "pair": "\\ud83d\\ude00"}'.encode(),
        b'{"tab": "a\\tb", "escaped_backslash_u0000": "\\\\u0000"}',
        b'{"x": ' + nested(MAX_JSON_DEPTH - 1) + b"}",
        b"[1, 2]",
        b'"just a string"',
    ],
)
def test_ordinary_json_is_parsed_as_json_loads_would(raw: bytes) -> None:
    assert parse_json_body(raw) == json.loads(raw)


def test_surrogate_pairs_become_one_character() -> None:
    assert parse_json_body(b'{"e": "\\ud83d\\ude00"}') == {"e": "\U0001f600"}


@pytest.mark.parametrize(
    ("raw", "leak"),
    [
        (b"[" * 50_000, None),
        (nested(5_000), None),
        (nested(MAX_JSON_DEPTH + 1), None),
        (b'{"x": ' + nested(MAX_JSON_DEPTH) + b"}", None),
        (b'{"a":' * 500 + b"1" + b"}" * 500, None),
        (b"{not json", None),
        (b"\xff\xfe", None),
        (b"1" * 5_000, None),  # beyond int-from-string limit: ValueError, not a crash
        (b'{"v": NaN}', "NaN"),
        (b'{"v": Infinity}', "Infinity"),
        (b'{"v": -Infinity}', "Infinity"),
        (b'{"v": 1e400}', "1e400"),
        (b'{"v": [0.5, {"w": -1e999}]}', "1e999"),
        (b'{"v": "ab\\u0000cd"}', "ab"),
        (b'{"ab\\u0000cd": 1}', "ab"),
        (b'{"v": {"deep": ["ab\\u0000"]}}', "ab"),
        (b'{"v": "ab\\ud800"}', "ab"),
        (b'{"v": "\\udfffab"}', "ab"),
        (b'{"ab\\udc00": 1}', "ab"),
        (b'{"v": "ab\xed\xa0\x80"}', "ab"),  # UTF-8 of U+D800, decoded with surrogatepass
        (b'{"v": "\\ude00\\ud83d"}', None),  # a pair in the wrong order is two lone halves
    ],
)
def test_hostile_json_is_invalid_json(raw: bytes, leak: str | None) -> None:
    with pytest.raises(InvalidJson) as caught:
        parse_json_body(raw)
    error = caught.value
    assert error.status == 400 and error.error_code == "invalid_json"
    assert error.message
    if leak is not None:
        assert leak not in error.message and leak not in json.dumps(error.envelope())


def test_reasons_are_told_apart_without_the_value() -> None:
    def message(raw: bytes) -> str:
        with pytest.raises(InvalidJson) as caught:
            parse_json_body(raw)
        return caught.value.message

    messages = {
        message(b"{nope"),
        message(nested(5_000)),
        message(b"[NaN]"),
        message(b'["\\u0000"]'),
        message(b'["\\ud800"]'),
    }
    assert len(messages) == 5


def test_wide_documents_do_not_recurse() -> None:
    wide = json.dumps({"rows": [{"k": str(i), "v": [i, i / 3]} for i in range(50_000)]})
    data = parse_json_body(wide.encode())
    assert len(data["rows"]) == 50_000 and math.isclose(data["rows"][3]["v"][1], 1.0)


def test_query_parameters_refuse_nul_and_keep_everything_else() -> None:
    assert check_query({"tenant_id": "x", "q": "Lúcia 😀"}) == {"tenant_id": "x", "q": "Lúcia 😀"}
    for args in ({"q": "a\x00b"}, {"a\x00b": "1"}):
        with pytest.raises(BadRequest) as caught:
            check_query(args)
        assert caught.value.status == 400 and caught.value.error_code == "bad_request"
        assert "a" + "\x00" not in caught.value.message


@pytest.mark.parametrize("over", [1, 1000])
def test_a_body_sent_without_a_length_is_refused_as_too_large_past_the_limit(over: int) -> None:
    """A chunked body carries no Content-Length: past the limit it is a 413 naming the
    limit, whether it ends one byte or many beyond it (not a 400 for the cut-off JSON)."""
    limit = get_settings().edge.max_body_bytes
    body = json.dumps({"x": "a" * (limit - 9 + over)}).encode()
    assert len(body) == limit + over
    environ = _environ("application/json", body)
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input_terminated"] = True  # as a server hands over a chunked body
    request = flask.Request(environ)
    assert request.content_length is None
    with pytest.raises(PayloadTooLarge) as refused:
        read_json(request)
    assert (refused.value.status, refused.value.details) == (413, {"limit_bytes": limit})


@pytest.mark.parametrize("length", ["declared", "chunked"])
def test_a_body_of_exactly_the_limit_is_read(length: str) -> None:
    """The limit is what a body may hold: one of exactly that many bytes is read, whether
    its Content-Length says so up front or it comes chunked."""
    limit = get_settings().edge.max_body_bytes
    body = json.dumps({"x": "a" * (limit - 9)}).encode()
    assert len(body) == limit
    environ = _environ("application/json", body)
    if length == "chunked":
        environ.pop("CONTENT_LENGTH", None)
        environ["wsgi.input_terminated"] = True
    assert read_json(flask.Request(environ)) == {"x": "a" * (limit - 9)}


def test_the_rest_of_a_body_past_the_limit_is_given_up_not_left_to_the_framework() -> None:
    """functions-framework reads whatever is left of a body whole once the answer is made:
    past what a body may hold, the edge drops the rest instead of leaving it there."""
    limit = get_settings().edge.max_body_bytes
    request = flask.Request(_environ("application/json", b"a" * (limit + 5000)))
    finish_body(request)
    assert request.stream.read() == b""


def _environ(content_type: str, body: bytes) -> dict[str, Any]:
    return EnvironBuilder(
        "/", method="POST", input_stream=io.BytesIO(body), content_type=content_type
    ).get_environ()


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/merge-patch+json",
     "application/vnd.syncq.v1+json"],
)  # fmt: skip
def test_json_media_types_are_read_and_others_are_415(content_type: str) -> None:
    """Any JSON media type (RFC 6839 `+json` suffixes too) is read as JSON; text is not."""
    assert read_json(flask.Request(_environ(content_type, b'{"a": 1}'))) == {"a": 1}
    with pytest.raises(UnsupportedMediaType) as refused:
        read_json(flask.Request(_environ("text/plain", b'{"a": 1}')))
    assert refused.value.status == 415


def test_a_body_sent_without_a_content_type_is_read_as_json() -> None:
    """A POST that names no media type (a script's, with no Content-Type header) is read
    as the JSON every endpoint takes, not refused 415."""
    environ = _environ("", b'{"a": 1}')
    environ.pop("CONTENT_TYPE", None)
    request = flask.Request(environ)
    assert not request.mimetype
    assert read_json(request) == {"a": 1}


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", ""])
def test_no_body_is_an_empty_object_and_a_blank_one_is_not_json(content_type: str) -> None:
    """A POST with no body at all (a button that sends nothing) reads as `{}`, whatever its
    Content-Type; one of blanks is not JSON (400)."""
    assert read_json(flask.Request(_environ(content_type, b""))) == {}
    with pytest.raises(InvalidJson):
        read_json(flask.Request(_environ("application/json", b"  \n")))
