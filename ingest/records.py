"""What a parser hands on: an accepted record, a rejected one, and why.

A *record* is the unit the invariant ``new + duplicate + rejected == records``
counts:

- line formats (URLhaus CSV and per-ASN feed, PhishTank CSV, generic CSV,
  OpenPhish, plain): one physical line, except blank lines, ``#`` comment lines
  and the CSV header, which are counted as ``skipped`` instead;
- JSON formats: one URL entry (an element of PhishTank's array, an element of
  each of URLhaus's per-id arrays). A stretch of JSON that cannot be parsed
  ends the source and is one rejected record (``bad-json``) at the line where
  it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tocsin.urls import URL_REASONS

#: Every reason a record can be rejected for. Fixed: reports and tests key on them.
REASONS: dict[str, str] = {
    "too-long": "the record is longer than ingest.max_line bytes (for JSON entries, the URL "
    "is; the whole entry may be 8 times that); only the first max_line bytes are kept",
    "nul-byte": "the record contains a NUL byte",
    "undecodable": "the record is not valid UTF-8",
    "stray-bom": "a byte-order mark after the start of the file (concatenated files, "
    "invisible characters in a URL): kept out rather than guessed about",
    "control-char": "a control character other than a tab between fields, such as a CR "
    "that is not part of a CRLF line ending",
    "bad-csv": "a CSV line that does not parse: a quote left open at the end of the line "
    "(a quoted field never spans lines), or a different number of fields than the header",
    "bad-json": "JSON that does not parse; the rest of a broken JSON source is one record",
    "bad-record": "valid JSON or CSV, but not a feed record (not an object, url not a string)",
    **URL_REASONS,
}


@dataclass(slots=True)
class Fields:
    """A feed's own fields that matter for a record (see FeedSubmission)."""

    feed_ref: str | None = None
    reporter: str | None = None
    threat: str | None = None
    tags: list[str] | None = None
    target: str | None = None
    reported_at: datetime | None = None
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class Entry:
    """A record with a URL in it, still to be normalised."""

    line_no: int
    raw: str  # the record verbatim: the line without its end, or the JSON entry's text
    url: str  # the URL as the feed wrote it
    fields: Fields = field(default_factory=Fields)


@dataclass(slots=True)
class Bad:
    """A rejected record: where, why, and its bytes (capped at ingest.max_line)."""

    line_no: int
    reason: str
    raw: bytes
    raw_len: int
