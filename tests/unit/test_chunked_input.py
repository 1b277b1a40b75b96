"""The local gateway's strict chunked-body reader."""

from __future__ import annotations

import io

import pytest

from infra.local.chunked import MalformedChunks, body_input


def read(raw: bytes, transfer_encoding: str = "chunked") -> bytes:
    return body_input(transfer_encoding, io.BytesIO(raw)).read(1 << 20)


@pytest.mark.parametrize(
    "raw,body",
    [
        (b"0\r\n\r\n", b""),
        (b"2\r\n{}\r\n0\r\n\r\n", b"{}"),
        (b"3;name=value\r\nabc\r\n1\r\nd\r\n0\r\nX-Trailer: 1\r\n\r\n", b"abcd"),
        (b"A\r\n0123456789\r\n0\n\n", b"0123456789"),  # bare LF, as werkzeug accepts
    ],
)
def test_well_formed_bodies(raw: bytes, body: bytes) -> None:
    assert read(raw) == body


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"zz\r\n{}\r\n0\r\n\r\n",
        b"-2\r\n{}\r\n0\r\n\r\n",
        b"ffffffffffffffffffff\r\n{}",
        b"ff\r\n{}",
        b"2\r\n{}XX0\r\n\r\n",
        b"2\r\n{}\r\n",
        b"2" * 5000,
        b"00000000000000010\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n",  # 17 digits
        b"0\r\nX-Trailer: 1\r\n",
        b"0\r\n" + b"X: 1\r\n" * 40 + b"\r\n",
    ],
)
def test_broken_bodies_are_refused(raw: bytes) -> None:
    with pytest.raises(MalformedChunks):
        read(raw)


def test_a_short_chunk_is_never_padded() -> None:
    """werkzeug's reader handed back a full buffer for a chunk cut short (stale memory)."""
    stream = body_input("chunked", io.BytesIO(b"10\r\nabc"))
    with pytest.raises(MalformedChunks):
        stream.read(1 << 18)


@pytest.mark.parametrize("coding", ["gzip", "gzip, chunked", "chunked, chunked", "identity"])
def test_other_transfer_codings_are_refused(coding: str) -> None:
    with pytest.raises(MalformedChunks):
        read(b"2\r\n{}\r\n0\r\n\r\n", coding)
