"""The feed formats: how each one turns into records and which of its fields are kept.

CSV formats are parsed by their header, found in a ``#`` comment (URLhaus) or
as the first line (PhishTank, generic ``csv``), so older URLhaus dumps without
``last_online`` work too. Without any header, the URLhaus and PhishTank
formats fall back to their published columns (URLhaus by field count); a
generic CSV without a ``url`` column cannot be read at all.

Each physical line is parsed on its own: a quoted field never spans lines, so
one unbalanced quote is one ``bad-csv`` record instead of swallowing the rest
of the file.
"""

from __future__ import annotations

import csv
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, BinaryIO

from ingest.detect import comment_header, header_fields
from ingest.jsonstream import JsonEntries
from ingest.lines import LineReader, check_line
from ingest.records import Bad, Entry, Fields
from tocsin.errors import FeedError

#: Published columns, for files that come without a header line.
DEFAULT_COLUMNS = {
    "urlhaus-csv": "id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter",
    "urlhaus-feed": "dateadded (utc),url,url_status,threat,host,ipaddress,asnumber,country",
    "phishtank-csv": "phish_id,url,phish_detail_url,submission_time,verified,"
    "verification_time,online,target",
}

#: Columns (lower case) that fill a FeedSubmission field; every other one goes to ``extra``.
ROLES = {
    "id": "feed_ref",
    "phish_id": "feed_ref",
    "dateadded": "reported_at",
    "dateadded (utc)": "reported_at",
    "submission_time": "reported_at",
    "date": "reported_at",
    "first_seen": "reported_at",
    "threat": "threat",
    "tags": "tags",
    "target": "target",
    "reporter": "reporter",
}

#: What a feed is about when its records do not say.
DEFAULT_THREAT = {
    "phishtank-json": "phishing",
    "phishtank-csv": "phishing",
    "openphish": "phishing",
}

JSON_ENTRY_FACTOR = 8  # a JSON entry may be this many times ingest.max_line


@lru_cache(maxsize=4096)
def parse_time(text: str) -> datetime | None:
    """A feed's timestamp (``2026-11-20 09:01:11``, ``... UTC``, ISO 8601) as aware UTC."""
    text = text.strip().removesuffix(" UTC").removesuffix("Z")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    value = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return value.strip() or None


def fields_of(pairs: Iterable[tuple[str, Any]], fmt: str, feed_ref: str | None = None) -> Fields:
    """The FeedSubmission fields of one parsed record, from its (lower-case name, value) pairs."""
    out = Fields(feed_ref=feed_ref, threat=DEFAULT_THREAT.get(fmt))
    extra: dict[str, Any] = {}
    for key, value in pairs:
        if value is None or value == "" or key == "url":
            continue
        role = ROLES.get(key)
        if role is None:
            extra[key] = value
        elif role == "reported_at":
            when = parse_time(value) if isinstance(value, str) else None
            if when is None:
                extra[key] = value
            elif out.reported_at is None:
                out.reported_at = when
        elif role == "tags":
            if isinstance(value, list):
                tags = [str(t).strip() for t in value if t is not None and str(t).strip()]
            else:
                tags = [t.strip() for t in str(value).split(",") if t.strip()]
            out.tags = tags or None
        elif role == "feed_ref" and out.feed_ref is not None:
            extra[key] = value
        else:
            setattr(out, role, _text(value))
    out.extra = extra or None
    return out


def row_fields(header: list[str], fmt: str) -> Callable[[list[str]], Fields]:
    """:func:`fields_of` for CSV rows, planned once per header (the hot path).

    The returned function appends an empty field to the row it is given, which
    stands for every role the header lacks.
    """
    blank = len(header)
    roles: dict[str, int] = {}
    extras: list[tuple[int, str]] = []
    for i, name in enumerate(header):
        role = ROLES.get(name)
        if name == "url":
            continue
        if role is None or role in roles:
            extras.append((i, name))
        else:
            roles[role] = i
    i_ref, i_reporter, i_threat, i_target, i_tags, i_time = (
        roles.get(role, blank)
        for role in ("feed_ref", "reporter", "threat", "target", "tags", "reported_at")
    )
    time_name = header[i_time] if i_time < blank else ""
    default_threat = DEFAULT_THREAT.get(fmt)
    extra_columns = tuple(extras)

    def fields(row: list[str]) -> Fields:
        row.append("")
        tags, when = row[i_tags], row[i_time]
        out = Fields(
            feed_ref=row[i_ref].strip() or None,
            reporter=row[i_reporter].strip() or None,
            threat=row[i_threat].strip() or default_threat,
            target=row[i_target].strip() or None,
            tags=[t for t in (x.strip() for x in tags.split(",")) if t] or None if tags else None,
            reported_at=parse_time(when) if when else None,
        )
        extra = {name: row[i] for i, name in extra_columns if row[i]}
        if when and out.reported_at is None and when.strip():
            extra[time_name] = when
        out.extra = extra or None
        return out

    return fields


class Parser:
    """Turns one opened source into records: :class:`Entry` and :class:`Bad` items.

    ``skipped`` counts the lines that are not records (blank, comments, the
    header); ``consumed`` the bytes read, for the progress bar.
    """

    def __init__(self, fmt: str, stream: BinaryIO, max_line: int) -> None:
        self.fmt = fmt
        self.max_line = max_line
        self.skipped = 0
        self._json: JsonEntries | None = None
        self._lines: LineReader | None = None
        if fmt.endswith("-json"):
            cap = max_line * JSON_ENTRY_FACTOR
            self._json = JsonEntries(stream, cap=cap, keep=max_line)
        else:
            self._lines = LineReader(stream, max_line)

    @property
    def consumed(self) -> int:
        reader = self._json or self._lines
        return reader.consumed if reader is not None else 0

    def __iter__(self) -> Iterator[Entry | Bad]:
        if self._json is not None:
            return self._json_records()
        if self.fmt in ("plain", "openphish"):
            return self._plain_records()
        return self._csv_records()

    # -- one URL a line ---------------------------------------------------------

    def _plain_records(self) -> Iterator[Entry | Bad]:
        assert self._lines is not None
        threat = DEFAULT_THREAT.get(self.fmt)
        for line_no, content, length in self._lines:
            text = check_line(line_no, content, length, self.max_line)
            if isinstance(text, Bad):
                yield text
                continue
            url = text.strip()
            if not url or url.startswith("#"):
                self.skipped += 1
                continue
            yield Entry(line_no, text, url, Fields(threat=threat))

    # -- CSV ------------------------------------------------------------------------

    def _csv_records(self) -> Iterator[Entry | Bad]:
        assert self._lines is not None
        # csv.reader takes its lines from this deque, one at a time: when a quote is
        # still open at the end of a line it asks for another, and popleft() on the
        # empty deque raises IndexError, which rejects the line.
        pending: deque[str] = deque()
        reader = csv.reader(iter(pending.popleft, None))
        header: list[str] | None = None
        in_comment: list[str] | None = None
        url_at, mapper = 0, row_fields([], self.fmt)
        max_line = self.max_line
        for line_no, content, length in self._lines:
            text = check_line(line_no, content, length, max_line)
            if isinstance(text, Bad):
                yield text
                continue
            stripped = text.strip()
            if not stripped or stripped[0] == "#":
                self.skipped += 1
                if header is None and stripped:
                    in_comment = comment_header(stripped) or in_comment
                continue
            pending.append(text)
            try:
                row = next(reader)
            except (IndexError, csv.Error, StopIteration):
                pending.clear()
                yield Bad(line_no, "bad-csv", content, length)
                continue
            if header is None:
                header = in_comment or header_fields(text)
                if header is not None and header is not in_comment:
                    self.skipped += 1  # this line is the header
                    url_at, mapper = header.index("url"), row_fields(header, self.fmt)
                    continue
                header = header or self._default_header(len(row))
                url_at, mapper = header.index("url"), row_fields(header, self.fmt)
            if len(row) != len(header):
                yield Bad(line_no, "bad-csv", content, length)
                continue
            yield Entry(line_no, text, row[url_at], mapper(row))

    def _default_header(self, width: int) -> list[str]:
        columns = DEFAULT_COLUMNS.get(self.fmt)
        if columns is None:
            raise FeedError("no CSV header with a url column before the first record")
        names = columns.split(",")
        if self.fmt == "urlhaus-csv" and width == len(names) - 1:
            names.remove("last_online")  # older dumps
        return names

    # -- JSON -----------------------------------------------------------------------

    def _json_records(self) -> Iterator[Entry | Bad]:
        assert self._json is not None
        for item in self._json:
            if item.status != "ok":
                reason = "bad-json" if item.status == "too-deep" else item.status
                yield Bad(item.line_no, reason, item.data, item.length)
                continue
            data = item.data
            if b"\x00" in data:
                yield Bad(item.line_no, "nul-byte", data[: self.max_line], item.length)
                continue
            try:
                text = data.decode("utf-8")
                record = json.loads(text)
            except UnicodeDecodeError:
                yield Bad(item.line_no, "undecodable", data[: self.max_line], item.length)
                continue
            except (ValueError, RecursionError):  # RecursionError: depth is bounded above
                yield Bad(item.line_no, "bad-json", data[: self.max_line], item.length)
                continue
            if b"u0000" in data and "\x00" in json.dumps(record, ensure_ascii=False):
                yield Bad(item.line_no, "nul-byte", data[: self.max_line], item.length)
                continue
            url = record.get("url") if isinstance(record, dict) else None
            if not isinstance(record, dict) or not isinstance(url, str | None):
                yield Bad(item.line_no, "bad-record", data[: self.max_line], item.length)
                continue
            if url is not None and len(url.encode("utf-8")) > self.max_line:
                yield Bad(item.line_no, "too-long", data[: self.max_line], item.length)
                continue
            if url is not None and "\ufeff" in url:
                yield Bad(item.line_no, "stray-bom", data[: self.max_line], item.length)
                continue
            pairs = ((str(k).strip().lower(), v) for k, v in record.items())
            fields = fields_of(pairs, self.fmt, feed_ref=item.key)
            yield Entry(item.line_no, text, url or "", fields)
