"""Reading a byte stream as lines, never holding more than ``max_line`` of one.

A 10 MB line is read in 64 KiB pieces and only its first ``max_line`` bytes
are kept (for the reject's ``raw``), with its full length counted. CRLF and LF
endings are both line ends; a CR anywhere else is part of the line and makes
it a ``control-char`` reject. A UTF-8 BOM at the very start of the stream is
dropped by the source (:mod:`ingest.sources`); one anywhere else is a
``stray-bom`` reject.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from ingest.records import Bad

_CHUNK = 1 << 16
BOM_BYTES = b"\xef\xbb\xbf"
# A control byte (tab allowed), or the first byte of a UTF-8 BOM: then look closer.
_BAD_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f\xef]")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class LineReader:
    """Yields ``(line_no, content, length)``; ``length > max_line`` means it was cut.

    ``consumed`` counts the bytes read so far, for the progress bar.
    """

    def __init__(self, stream: BinaryIO, max_line: int) -> None:
        self.stream = stream
        self.max_line = max_line
        self.consumed = 0

    def __iter__(self) -> Iterator[tuple[int, bytes, int]]:
        readline = self.stream.readline
        limit = self.max_line + 2  # room for CRLF
        line_no = 0
        while True:
            chunk = readline(limit)
            if not chunk:
                return
            line_no += 1
            self.consumed += len(chunk)
            if chunk.endswith(b"\n"):
                content = chunk[:-2] if chunk.endswith(b"\r\n") else chunk[:-1]
                yield line_no, content, len(content)
            elif len(chunk) < limit:  # the last line, without an end
                content = chunk[:-1] if chunk.endswith(b"\r") else chunk
                yield line_no, content, len(content)
            else:
                yield line_no, chunk, self._skip_rest(len(chunk), chunk.endswith(b"\r"))

    def _skip_rest(self, length: int, last_cr: bool) -> int:
        """Consume an overlong line to its end; return its length without the line end."""
        readline = self.stream.readline
        while True:
            more = readline(_CHUNK)
            if not more:
                return length - (1 if last_cr else 0)
            self.consumed += len(more)
            if more.endswith(b"\n"):
                ending = 2 if more.endswith(b"\r\n") or (more == b"\n" and last_cr) else 1
                return length + len(more) - ending
            length += len(more)
            last_cr = more.endswith(b"\r")


def check_line(line_no: int, content: bytes, length: int, max_line: int) -> str | Bad:
    """The line as text, or why it is rejected (checked on bytes before decoding)."""
    if length > max_line:
        return Bad(line_no, "too-long", content[:max_line], length)
    if _BAD_BYTES.search(content):
        if b"\x00" in content:
            return Bad(line_no, "nul-byte", content, length)
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return Bad(line_no, "undecodable", content, length)
        if BOM_BYTES in content:
            return Bad(line_no, "stray-bom", content, length)
        if _CONTROL.search(content):
            return Bad(line_no, "control-char", content, length)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return Bad(line_no, "undecodable", content, length)
