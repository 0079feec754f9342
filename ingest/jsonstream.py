"""Splitting a large JSON feed into its entries without loading it whole.

The two JSON feeds are a top-level array of entries (PhishTank) or a top-level
object whose values are arrays of entries (URLhaus, keyed by the URL's id).
This scanner finds where each entry starts and ends (tracking strings, escapes
and nesting) and hands its bytes on; the standard ``json`` module parses each
entry. That keeps memory bounded by the size of one entry, gives every entry
its line number and raw text for the store, and lets one bad entry be one
rejected record instead of the end of the feed.

Nesting is bounded here, before ``json`` sees an entry: the ``json`` module
recurses once a level, so a 3 KB entry nested 1,500 deep would raise
``RecursionError`` (no ``ValueError``) and end the whole ingest command. An
entry deeper than :data:`MAX_DEPTH` is skipped to its end and reported
``too-deep`` (stored as a ``bad-json`` reject); the entries after it are read.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
#: Deepest nesting of arrays and objects kept in one entry. Real feed entries are
#: 2 or 3 deep; the ``json`` module's own limit (the recursion limit) is near 1,000.
MAX_DEPTH = 64
_NON_WS = re.compile(rb"[^ \t\r\n]")
_STRUCT = re.compile(rb'["{}\[\]]')
_STR_STOP = re.compile(rb'["\\]')
_SCALAR_END = re.compile(rb"[,\]}\s]")
_OPEN = frozenset(b"{[")
_CLOSE = frozenset(b"}]")


class _Broken(Exception):
    """The JSON structure around the entries is not what a feed looks like."""


class _Ended(Exception):
    """The stream ended inside an entry (already reported as bad-json)."""


@dataclass(slots=True)
class JsonItem:
    """One entry (or the broken rest of the stream).

    ``status`` is ok, too-long, too-deep (nested deeper than :data:`MAX_DEPTH`;
    the entries after it are still read) or bad-json (the stream ends or breaks).
    """

    line_no: int
    key: str | None
    data: bytes  # the entry's bytes; capped at ``keep`` unless status is ok
    length: int
    status: str


class JsonEntries:
    """Iterate the entries of a JSON feed read from ``stream``.

    ``cap`` bounds the bytes of one entry held in memory; a longer entry is
    skipped to its end and reported ``too-long`` with its first ``keep`` bytes.
    """

    def __init__(self, stream: BinaryIO, *, cap: int, keep: int) -> None:
        self.stream = stream
        self.cap = cap
        self.keep = keep
        self.buf = b""
        self.base = 0  # stream offset of buf[0]
        self.pos = 0  # index into buf
        self.eof = False
        self.mark: int | None = None  # stream offset to keep from (an entry being captured)
        self._lines_at = 0  # stream offset up to which newlines are counted
        self._lines = 0

    @property
    def consumed(self) -> int:
        return self.base + len(self.buf)

    # -- buffer ------------------------------------------------------------

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.stream.read(_CHUNK)
        if not chunk:
            self.eof = True
            return False
        keep = self.mark if self.mark is not None else self.base + self.pos
        drop = keep - self.base
        if drop > 0:
            self._count_lines_to(keep)
            self.buf = self.buf[drop:]
            self.base = keep
            self.pos -= drop
        self.buf += chunk
        return True

    def _count_lines_to(self, offset: int) -> None:
        if offset > self._lines_at:
            self._lines += self.buf.count(b"\n", self._lines_at - self.base, offset - self.base)
            self._lines_at = offset

    def line_no(self, offset: int) -> int:
        self._count_lines_to(offset)
        return self._lines + 1

    def _skip_ws(self) -> int | None:
        """The next non-blank byte (not consumed), or None at the end."""
        while True:
            match = _NON_WS.search(self.buf, self.pos)
            if match:
                self.pos = match.start()
                return self.buf[self.pos]
            self.pos = len(self.buf)
            if not self._fill():
                return None

    # -- values ------------------------------------------------------------

    def _capture(self, key: str | None) -> JsonItem:
        """Read one JSON value starting at ``pos`` and return its bytes."""
        start = self.base + self.pos
        line_no = self.line_no(start)
        self.mark = start
        head: bytes | None = None
        first = self.buf[self.pos]
        depth, deepest, in_str, scalar = 0, 0, False, False
        if first in _OPEN:
            depth, self.pos = 1, self.pos + 1
        elif first == 0x22:  # "
            in_str, self.pos = True, self.pos + 1
        else:
            scalar = True
        while True:
            buf = self.buf
            if scalar:
                match = _SCALAR_END.search(buf, self.pos)
                if match:
                    self.pos = match.start()
                    break
                self.pos = len(buf)
            elif in_str:
                match = _STR_STOP.search(buf, self.pos)
                if match and buf[match.start()] == 0x22:
                    in_str, self.pos = False, match.start() + 1
                    if depth == 0:
                        break
                    continue
                if match and match.start() + 1 < len(buf):  # an escape: skip the next byte
                    self.pos = match.start() + 2
                    continue
                self.pos = match.start() if match else len(buf)  # keep a trailing backslash
            else:
                match = _STRUCT.search(buf, self.pos)
                if match:
                    char = buf[match.start()]
                    self.pos = match.start() + 1
                    if char == 0x22:
                        in_str = True
                    elif char in _OPEN:
                        depth += 1
                        deepest = max(deepest, depth)
                    else:
                        depth -= 1
                        if depth == 0:
                            break
                    continue
                self.pos = len(buf)
            # Nothing more in the buffer: bound what is held, then read on.
            if head is None and self.base + len(self.buf) - start > self.cap:
                head = self.buf[start - self.base : start - self.base + self.keep]
                self.mark = None
            if not self._fill():
                if scalar:
                    break
                self.mark = None
                if head is None:
                    head = self.buf[start - self.base : start - self.base + self.keep]
                return JsonItem(line_no, key, head, self.consumed - start, "bad-json")
        end = self.base + self.pos
        self.mark = None
        if deepest > MAX_DEPTH:
            if head is None:
                head = self.buf[start - self.base : min(self.pos, start - self.base + self.keep)]
            return JsonItem(line_no, key, head, end - start, "too-deep")
        if head is not None or end - start > self.cap:
            if head is None:
                head = self.buf[start - self.base : start - self.base + self.keep]
            return JsonItem(line_no, key, head, end - start, "too-long")
        return JsonItem(line_no, key, self.buf[start - self.base : self.pos], end - start, "ok")

    # -- structure ---------------------------------------------------------

    def __iter__(self) -> Iterator[JsonItem]:
        try:
            first = self._skip_ws()
            if first is None:
                return
            self.pos += 1
            if first == 0x5B:  # [
                yield from self._array(None)
            elif first == 0x7B:  # {
                yield from self._object()
            else:
                self.pos -= 1
                raise _Broken
            if self._skip_ws() is not None:
                raise _Broken
        except _Ended:
            return
        except _Broken:
            item = self._rest()
            if item is not None:
                yield item

    def _array(self, key: str | None) -> Iterator[JsonItem]:
        char = self._skip_ws()
        if char == 0x5D:  # ]
            self.pos += 1
            return
        while True:
            if char is None or char in _CLOSE or char == 0x2C:
                raise _Broken
            item = self._capture(key)
            yield item
            if item.status == "bad-json":  # the stream ended inside it
                raise _Ended
            char = self._skip_ws()
            if char == 0x2C:  # ,
                self.pos += 1
                char = self._skip_ws()
            elif char == 0x5D:
                self.pos += 1
                return
            else:
                raise _Broken

    def _object(self) -> Iterator[JsonItem]:
        char = self._skip_ws()
        if char == 0x7D:  # }
            self.pos += 1
            return
        while True:
            if char != 0x22:
                raise _Broken
            item = self._capture(None)
            if item.status != "ok":
                raise _Broken
            try:
                key = str(json.loads(item.data))
            except ValueError:
                raise _Broken from None
            if self._skip_ws() != 0x3A:  # :
                raise _Broken
            self.pos += 1
            char = self._skip_ws()
            if char == 0x5B:
                self.pos += 1
                yield from self._array(key)
            elif char is None or char in _CLOSE or char == 0x2C:
                raise _Broken
            else:
                value = self._capture(key)
                yield value
                if value.status == "bad-json":
                    raise _Ended
            char = self._skip_ws()
            if char == 0x2C:
                self.pos += 1
                char = self._skip_ws()
            elif char == 0x7D:
                self.pos += 1
                return
            else:
                raise _Broken

    def _rest(self) -> JsonItem | None:
        """Everything from the break on, as one rejected record (None if nothing is left)."""
        self.mark = None
        start = self.base + self.pos
        line_no = self.line_no(start)
        head = self.buf[self.pos : self.pos + self.keep]
        while len(head) < self.keep and self._fill():
            head = self.buf[start - self.base : start - self.base + self.keep]
        self.pos = len(self.buf)
        while self._fill():
            self.pos = len(self.buf)
        if not head.strip():
            log.warning("the JSON feed ends early at line %d; every entry before is kept", line_no)
            return None
        return JsonItem(line_no, None, head, self.consumed - start, "bad-json")
