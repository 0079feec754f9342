"""Opening a SOURCE: a file, ``-`` (stdin) or an http(s) URL, unpacked if compressed.

Every source becomes one buffered binary stream with a UTF-8 BOM at its very
start removed. gzip and zip payloads (URLhaus serves its dumps zipped) are
recognised by their magic bytes, whatever the name says, and unpacked to a
temporary file first, bounded by ``ingest.fetch_max_bytes``: a bomb is refused
before any of it is ingested. A zip must hold exactly one file.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from ingest.fetch import fetch
from tocsin.config import Config
from tocsin.errors import FeedError

BOM = b"\xef\xbb\xbf"
BUFFER = 1 << 20  # enough to peek at a format's first 64 KiB
_CHUNK = 1 << 20


@dataclass
class Opened:
    """A readable source: the stream, its size when known, and what it was called."""

    ref: str
    stream: io.BufferedIOBase
    size: int | None
    names: str  # the source and any member name, for format hints (``openphish``)
    packed: str | None = None  # gzip | zip


def is_url(ref: str) -> bool:
    return ref[:8].lower().startswith(("http://", "https://"))


@contextmanager
def open_source(ref: str, config: Config) -> Iterator[Opened]:
    """Open ``ref`` for reading or raise :class:`FeedError` saying why it cannot be read."""
    cap = config.ingest.fetch_max_bytes
    with ExitStack() as stack:
        names = ref
        size: int | None
        stream: io.BufferedIOBase
        if ref == "-":
            # A second buffer: its peek() fills up to BUFFER from a pipe, for detection.
            stream = io.BufferedReader(sys.stdin.buffer, buffer_size=BUFFER)  # type: ignore[arg-type]
            size, names = None, "stdin"
        elif is_url(ref):
            spool = stack.enter_context(_temporary())
            size = fetch(ref, config, spool)
            spool.seek(0)
            stream = spool
        else:
            try:
                stream = stack.enter_context(open(ref, "rb", buffering=BUFFER))
                size = os.fstat(stream.fileno()).st_size
            except OSError as exc:
                raise FeedError(f"cannot read {ref}: {exc.strerror or exc}") from None
        packed = None
        magic = _peek(stream, 4)
        if magic[:2] == b"\x1f\x8b":
            packed = "gzip"
            stream, size = _gunzip(stream, cap, stack)
        elif magic == b"PK\x03\x04":
            packed = "zip"
            stream, size, member = _unzip(stream, cap, stack)
            names = f"{names}!{member}"
        if _peek(stream, 3) == BOM:
            stream.read(3)
            size = None if size is None else size - 3
        yield Opened(ref, stream, size, names, packed)


def _peek(stream: io.BufferedIOBase, n: int) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is not None:
        return peek(n)[:n]
    return b""


def _temporary() -> BinaryIO:
    return tempfile.TemporaryFile(prefix="tocsin-feed-", buffering=BUFFER)


def _spool(reader: BinaryIO, cap: int, stack: ExitStack, what: str) -> tuple[BinaryIO, int]:
    spool = stack.enter_context(_temporary())
    size = 0
    while chunk := reader.read(_CHUNK):
        size += len(chunk)
        if size > cap:
            raise FeedError(f"over the size cap once {what}: more than {cap} bytes")
        spool.write(chunk)
    spool.seek(0)
    return spool, size


def _gunzip(stream: io.BufferedIOBase, cap: int, stack: ExitStack) -> tuple[io.BufferedIOBase, int]:
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as packed:
            return _spool(packed, cap, stack, "gunzipped")
    except (OSError, EOFError, zlib.error) as exc:
        raise FeedError(f"not a readable gzip stream: {exc}") from None


def _unzip(
    stream: io.BufferedIOBase, cap: int, stack: ExitStack
) -> tuple[io.BufferedIOBase, int, str]:
    if not stream.seekable():
        stream, _ = _spool(stream, cap, stack, "read")
    try:
        archive = stack.enter_context(zipfile.ZipFile(stream))
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) != 1:
            raise FeedError(f"the zip holds {len(members)} files; expected exactly one")
        with archive.open(members[0]) as member:
            spool, size = _spool(member, cap, stack, "unzipped")
        return spool, size, members[0].filename
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error) as exc:
        raise FeedError(f"not a readable zip archive: {exc}") from None
    except (NotImplementedError, RuntimeError) as exc:  # unsupported method, encrypted
        raise FeedError(f"cannot unpack the zip: {exc}") from None
