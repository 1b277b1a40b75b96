"""Strict `Transfer-Encoding: chunked` request bodies for the local gateway.

werkzeug's development server decodes chunked bodies leniently: a chunk cut short by the
end of the connection comes back padded with whatever bytes were in the buffer, and a
chunk size of 2**80 is read as announced, for ever. This reader refuses both: a size line
is 1 to 16 hex digits (extensions allowed), each chunk arrives whole and ends in CRLF, and
the body ends with the zero chunk and its trailer. Anything else raises MalformedChunks,
an OSError, which the edge (`shared.web.read_body`) answers with a 400 envelope.
"""

from __future__ import annotations

import io
import re

_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(;[^\r\n]*)?\r?\n")
_MAX_LINE = 4096  # a size line with its extensions, or a trailer field
_MAX_TRAILERS = 32


class MalformedChunks(OSError):
    """The chunked body breaks the framing (RFC 9112 section 7.1)."""


class ChunkedInput(io.RawIOBase):
    """The decoded body of a chunked request, read from the connection as asked."""

    def __init__(self, rfile: io.BufferedIOBase) -> None:
        self._rfile = rfile
        self._left = 0  # bytes of the current chunk still to read
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._done or not len(buffer):
            return 0
        if self._left == 0:
            self._left = self._size_line()
            if self._left == 0:
                self._trailer()
                self._done = True
                return 0
        wanted = min(len(buffer), self._left)
        data = self._rfile.read(wanted)
        if len(data) != wanted:
            raise MalformedChunks("the body ends inside a chunk")
        buffer[:wanted] = data
        self._left -= wanted
        if self._left == 0 and self._rfile.readline(3) not in (b"\r\n", b"\n"):
            raise MalformedChunks("a chunk does not end with CRLF")
        return wanted

    def _size_line(self) -> int:
        match = _SIZE.fullmatch(self._rfile.readline(_MAX_LINE))
        if match is None:
            raise MalformedChunks("a chunk size is not hex, too long, or missing")
        return int(match.group(1), 16)

    def _trailer(self) -> None:
        for _ in range(_MAX_TRAILERS):
            line = self._rfile.readline(_MAX_LINE)
            if line in (b"\r\n", b"\n"):
                return
            if not line.endswith(b"\n"):
                raise MalformedChunks("the body ends before its trailer does")
        raise MalformedChunks("the trailer is too long")


class _Refused(io.RawIOBase):
    """The body of a request whose transfer coding we do not speak: unreadable."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        raise MalformedChunks("only the chunked transfer coding is supported")


def body_input(transfer_encoding: str, rfile: io.BufferedIOBase) -> io.BufferedReader:
    """The body stream a WSGI app reads for a request with this Transfer-Encoding header
    (`read(n)` returns n bytes unless the body ends first)."""
    codings = [c.strip().lower() for c in transfer_encoding.split(",")]
    raw = ChunkedInput(rfile) if codings == ["chunked"] else _Refused()
    return io.BufferedReader(raw)
