"""Messages off the byte stream from the client, framed as the protocol says (header lines, a
blank line, a body of Content-Length bytes), read so that no client can exhaust the server's
memory or desynchronise the stream.

A body over MAX_MESSAGE_BYTES is never read into memory; a header block that frames nothing
(no Content-Length, one that is not a number, a line too long) is discarded. Either way the
reader hands back a Garbled for the server to answer, then skips to the next line that is a
Content-Length header and reads on from there. A JSON body cannot hold such a line (JSON keeps
line ends out of its strings, and the header's words are no JSON outside one), so the skip
stops at the next real message, whether the bad one's body was sent in full, cut short, or
never."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_MESSAGE_BYTES = 64 * 2**20   # a body larger than this is refused unread
MAX_HEADER_LINE = 4096           # real header lines are well under 100 bytes
MAX_HEADER_LINES = 32
CHUNK = 2**16                    # bytes asked of the stream at a time

_LENGTH_LINE = re.compile(rb"content-length[ \t]*:[ \t]*(\d{1,20})[ \t]*\r?\n\Z", re.I)

RequestId = int | str | None


@dataclass(frozen=True)
class Garbled:
    """A message that could not be read: why, and the id of the request it was when that could
    be told (None otherwise, which is the id JSON-RPC answers such a message with)."""
    reason: str
    request_id: RequestId = None


class _Unframed(Exception):
    """The header block being read frames no message."""


class FrameReader:
    """Reads framed messages off a stream through `read(n)`, which returns between 1 and n bytes,
    as many as have come (blocking only while none have), and b"" at the end of the stream:
    `BufferedReader.read1`, so that what has come is handled without waiting for more."""

    def __init__(self, read: Callable[[int], bytes], max_body: int = MAX_MESSAGE_BYTES):
        self._read = read
        self.max_body = max_body
        self._buffer = bytearray()
        self._ended = False
        self._lost = False     # after a Garbled: skip to the next Content-Length header first

    def next(self) -> bytes | Garbled | None:
        """The next message's body; a Garbled for a message that could not be read (the next call
        reads on after it); None at the end of the stream."""
        try:
            length = self._headers(self._resync() if self._lost else None)
        except EOFError:
            return None
        except _Unframed as exc:
            self._lost = True
            return Garbled(str(exc))
        if length > self.max_body:
            self._lost = True
            return Garbled(f"message of {length} bytes refused: the limit is {self.max_body} bytes "
                           f"({self.max_body / 2**20:g} MiB)", _request_id(bytes(self._buffer[:CHUNK])))
        return self._exactly(length)

    # the header ----------------------------------------------------------------------------------
    def _headers(self, length: int | None) -> int:
        """The Content-Length of the header block read up to its blank line (`length` when its
        Content-Length line was read already). Blank lines before a block are no block: skipped."""
        seen = length is not None
        for _ in range(MAX_HEADER_LINES):
            line = self._line(MAX_HEADER_LINE)
            if not line.endswith(b"\n"):
                if len(line) < MAX_HEADER_LINE:
                    raise EOFError   # the stream ended inside the line
                raise _Unframed(f"header line longer than {MAX_HEADER_LINE} bytes")
            if not line.strip():
                if not seen:
                    continue
                if length is None:
                    raise _Unframed("header without Content-Length")
                return length
            seen = True
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                if not value.strip().isdigit():
                    raise _Unframed("Content-Length is not a number: "
                                    + value.strip()[:40].decode("ascii", errors="replace"))
                length = int(value)
        raise _Unframed(f"header of more than {MAX_HEADER_LINES} lines")

    def _resync(self) -> int:
        """Skips to the end of the next line that ends in a Content-Length header and gives its
        length. A cut-short body runs straight into the next header, with no line end between,
        so the header is looked for at the end of a line, not only as the whole of it."""
        tail = b""   # the end of a line longer than a chunk, where such a header may begin
        while True:
            line = tail + self._line(CHUNK)
            found = _LENGTH_LINE.search(line)
            if found:
                self._lost = False
                return int(found.group(1))
            tail = b"" if line.endswith(b"\n") else line[-64:]

    # the bytes -----------------------------------------------------------------------------------
    def _line(self, limit: int) -> bytes:
        """The next line with its line end, or its first `limit` bytes when it is longer, or what
        is left of the stream when that has no line end; EOFError when nothing is left."""
        while True:
            end = self._buffer.find(b"\n", 0, limit)
            if end >= 0:
                return self._take(end + 1)
            if len(self._buffer) >= limit:
                return self._take(limit)
            if not self._fill():
                if not self._buffer:
                    raise EOFError
                return self._take(len(self._buffer))

    def _exactly(self, n: int) -> bytes | None:
        """The next n bytes; None when the stream ends before them."""
        while len(self._buffer) < n:
            if not self._fill():
                return None
        return self._take(n)

    def _fill(self) -> bool:
        """Adds what has come from the stream to the buffer; False at the end of the stream."""
        if self._ended:
            return False
        chunk = self._read(CHUNK)
        if not chunk:
            self._ended = True
            return False
        self._buffer += chunk
        return True

    def _take(self, n: int) -> bytes:
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out


def _request_id(head: bytes) -> RequestId:
    """The id of a request from the start of its body (what of it has come), if it is one of the
    members before the first object or array (where editors put it: before the params); None
    when it is not there. Only what is there is read: the rest may never come."""
    text = head.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    at = _skip_space(text, 0)
    if not text.startswith("{", at):
        return None
    try:
        while True:
            key, at = decoder.raw_decode(text, _skip_space(text, at + 1))
            at = _skip_space(text, at)
            if not text.startswith(":", at):
                return None
            at = _skip_space(text, at + 1)
            if text.startswith(("{", "["), at):
                return None
            value, at = decoder.raw_decode(text, at)
            if key == "id":
                return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None
            at = _skip_space(text, at)
            if not text.startswith(",", at):
                return None
    except ValueError:   # cut off inside a member, or not JSON
        return None


def _skip_space(text: str, at: int) -> int:
    """The offset of the first character at or after `at` that is not JSON whitespace."""
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at
