"""shared.jsonio: orjson where it can, the standard library where orjson is stricter."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from shared import jsonio


def test_round_trip_of_a_provider_page() -> None:
    page = {"contacts": [{"id": 1, "name": "Lúcia", "tags": [], "ok": True, "x": None}], "n": 1.5}
    text = jsonio.dumps(page)
    assert "Lúcia" in text and ", " not in text  # UTF-8, compact
    assert jsonio.loads(text) == jsonio.loads(text.encode()) == page


def test_integers_beyond_64_bits_and_nan_fall_back_to_the_standard_library() -> None:
    big = 2**70
    assert jsonio.loads(f'{{"id": {big}}}'.encode()) == {"id": big}
    assert jsonio.dumps({"id": big, "at": datetime(2024, 5, 1, tzinfo=UTC)}) == (
        f'{{"id":{big},"at":"2024-05-01T00:00:00+00:00"}}'
    )
    assert str(jsonio.loads(b'{"v": NaN}')["v"]) == "nan"


def test_datetimes_are_written_in_iso_8601() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert json.loads(jsonio.dumps([moment, date(2024, 5, 1)])) == [
        "2024-05-01T12:00:00.123000+00:00",
        "2024-05-01",
    ]


@pytest.mark.parametrize("raw", [b"", b"{", b"<html>", b'{"a": 1} x', b"[" * 200_000])
def test_what_is_not_json_raises_value_error(raw: bytes) -> None:
    """The providers read a ValueError as "not JSON"; a document nested past the parser's
    depth raised RecursionError, and the sync failed as an internal error instead."""
    with pytest.raises(ValueError):
        jsonio.loads(raw)


def test_what_json_cannot_hold_raises_type_error() -> None:
    with pytest.raises(TypeError):
        jsonio.dumps({"v": {1, 2}})


def test_an_integer_too_long_for_python_becomes_none() -> None:
    huge = "9" * 5000
    assert jsonio.loads(f'{{"a": {huge}, "b": -{huge}, "c": 7, "d": 1.5}}'.encode()) == {
        "a": None, "b": None, "c": 7, "d": 1.5,
    }  # fmt: skip


def test_lone_surrogates_become_the_replacement_character() -> None:
    doc = jsonio.loads(b'{"n": "a\\ud800b", "\\udfff": ["\\ud83d\\ude00", "\\ude00"]}')
    assert doc == {"n": "a\ufffdb", "\ufffd": ["\U0001f600", "\ufffd"]}
    jsonio.dumps(doc).encode()  # UTF-8 text again


def test_db_text_removes_nul_and_replaces_lone_surrogates() -> None:
    assert jsonio.db_text("a\u0000b\ud800c\U0001f600") == "ab\ufffdc\U0001f600"
    text = "plain"
    assert jsonio.db_text(text) is text


def test_iso_moment_is_a_real_instant_or_none() -> None:
    assert jsonio.iso_moment("2024-05-01T10:00:00+00:00") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert jsonio.iso_moment("2200-12-31 23:59:59") == datetime(2200, 12, 31, 23, 59, 59)
    for value in ("0001-01-01T00:00:00", "9999-12-31", "1899-12-31", "ontem", "", None, 1714557600):
        assert jsonio.iso_moment(value) is None
