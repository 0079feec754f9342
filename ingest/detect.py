"""Recognising a feed's format from its first bytes (``--format auto``).

The rules, in order, on the first 64 KiB (already unpacked, BOM removed):

1. ``{`` first: the URLhaus JSON dump; ``[`` first: PhishTank's JSON.
2. A ``#`` comment holding a CSV header with a ``url`` column: URLhaus's dump
   (``id,dateadded,url,...`` / ``urlhaus_link``), its per-ASN, country or TLD
   feed (``Dateadded (UTC),URL,URL_status,...,ASnumber``), else generic ``csv``.
3. A first line that is a CSV header with a ``url`` column: ``phishtank-csv``
   when it also has ``phish_id``, else ``csv``.
4. Anything else is a list of URLs, one a line: ``openphish`` when the source's
   name says so (the content is identical to a plain list), else ``plain``.
   Lines that are not URLs are then rejected one by one, never guessed at.
"""

from __future__ import annotations

import csv

FORMATS = (
    "urlhaus-csv",
    "urlhaus-json",
    "urlhaus-feed",
    "phishtank-json",
    "phishtank-csv",
    "openphish",
    "plain",
    "csv",
)

#: The feed name a format stands for (``--source`` overrides it).
FEED_NAMES = {
    "urlhaus-csv": "urlhaus",
    "urlhaus-json": "urlhaus",
    "urlhaus-feed": "urlhaus",
    "phishtank-json": "phishtank",
    "phishtank-csv": "phishtank",
    "openphish": "openphish",
    "plain": "plain",
    "csv": "csv",
}

SNIFF_BYTES = 1 << 16


def header_fields(text: str) -> list[str] | None:
    """The lower-cased column names if ``text`` is a CSV header with a ``url`` column."""
    try:
        row = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        return None
    fields = [f.strip().lower() for f in row]
    return fields if "url" in fields and len(fields) > 1 else None


def comment_header(text: str) -> list[str] | None:
    """The header fields of a ``# a,b,url,...`` comment line, or None."""
    return header_fields(text.lstrip("#").strip()) if text.startswith("#") else None


def detect(head: bytes, names: str) -> str:
    """The format of a source whose first bytes are ``head``."""
    stripped = head.lstrip(b" \t\r\n")
    if stripped.startswith(b"{"):
        return "urlhaus-json"
    if stripped.startswith(b"["):
        return "phishtank-json"
    lines = head.decode("utf-8", "replace").splitlines()
    if len(head) >= SNIFF_BYTES and lines:
        lines.pop()  # probably cut short
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            fields = comment_header(line)
            if fields is None:
                continue
            if "urlhaus_link" in fields or fields[:2] == ["id", "dateadded"]:
                return "urlhaus-csv"
            if "asnumber" in fields or "dateadded (utc)" in fields:
                return "urlhaus-feed"
            return "csv"
        fields = header_fields(line)
        if fields is not None:
            return "phishtank-csv" if "phish_id" in fields else "csv"
        break
    return "openphish" if "openphish" in names.lower() else "plain"
