"""The pieces under the formats: the bounded line reader, the JSON splitter, detection."""

from __future__ import annotations

import io
import json

import pytest
from ingest_support import FEEDS

import ingest.jsonstream
from ingest.detect import detect
from ingest.jsonstream import JsonEntries
from ingest.lines import LineReader


def test_line_reader_bounds_long_lines_and_counts_them() -> None:
    data = b"a\r\nbb\n" + b"x" * 100_000 + b"\r\n" + b"y" * 50 + b"\rz\n" + b"last\r"
    reader = LineReader(io.BufferedReader(io.BytesIO(data), 4096), max_line=64)
    lines = list(reader)
    assert [(n, content[:5], length) for n, content, length in lines] == [
        (1, b"a", 1),
        (2, b"bb", 2),
        (3, b"xxxxx", 100_000),
        (4, b"yyyyy", 52),
        (5, b"last", 4),
    ]
    assert len(lines[2][1]) <= 66  # never the whole line in memory
    assert lines[3][1] == b"y" * 50 + b"\rz"  # a CR inside a line stays in it
    assert reader.consumed == len(data)


def test_line_reader_overlong_line_ending_in_crlf_across_reads() -> None:
    # 12 bytes, then 65536 ending in the CR: the LF comes alone in the next read.
    data = b"x" * 65_547 + b"\r\n" + b"ok\n"
    lines = list(LineReader(io.BufferedReader(io.BytesIO(data), 65536), max_line=10))
    assert [(n, length) for n, _, length in lines] == [(1, 65_547), (2, 2)]


@pytest.mark.parametrize("chunk", [1, 3, 7, 65536])
def test_json_splitter_on_any_chunking(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(ingest.jsonstream, "_CHUNK", chunk)
    entries = [
        {"url": 'http://a.example/"quoted"\\', "tags": ["}", "]", "{"]},
        {"url": "http://b.example/", "nested": {"deep": [1, {"x": "\\u0041"}]}},
        "a string entry",
        12.5,
        None,
    ]
    data = ("[\n" + ",\n".join(json.dumps(e) for e in entries) + "\n]").encode()
    items = list(JsonEntries(io.BytesIO(data), cap=10_000, keep=100))
    assert [i.status for i in items] == ["ok"] * 5
    assert [json.loads(i.data) for i in items] == entries
    assert [i.line_no for i in items] == [2, 3, 4, 5, 6]
    keyed = b'{"9": [{"url": "x"}, {"url": "y"}],\n"10": {"url": "z"}, "11": []}'
    items = list(JsonEntries(io.BytesIO(keyed), cap=10_000, keep=100))
    assert [(i.key, i.line_no, json.loads(i.data)["url"]) for i in items] == [
        ("9", 1, "x"),
        ("9", 1, "y"),
        ("10", 2, "z"),
    ]


def test_json_splitter_skips_an_oversized_entry_holding_only_its_head() -> None:
    huge = b'{"url": "' + b"a" * 5_000_000 + b'"}'
    data = b"[" + huge + b', {"url": "next"}]'
    splitter = JsonEntries(io.BytesIO(data), cap=1000, keep=50)
    items = list(splitter)
    assert [(i.status, i.length, len(i.data)) for i in items] == [
        ("too-long", len(huge), 50),
        ("ok", 15, 15),
    ]
    assert len(splitter.buf) < 200_000  # the buffer never held the entry


@pytest.mark.parametrize(
    ("head", "names", "expected"),
    [
        ((FEEDS / "urlhaus.csv").read_bytes(), "x", "urlhaus-csv"),
        ((FEEDS / "urlhaus_asn_feed.csv").read_bytes(), "x", "urlhaus-feed"),
        ((FEEDS / "urlhaus.json").read_bytes(), "x", "urlhaus-json"),
        ((FEEDS / "phishtank_online_valid.json").read_bytes(), "x", "phishtank-json"),
        ((FEEDS / "phishtank_online_valid.csv").read_bytes(), "x", "phishtank-csv"),
        ((FEEDS / "openphish.txt").read_bytes(), "/feeds/openphish.txt", "openphish"),
        ((FEEDS / "openphish.txt").read_bytes(), "/feeds/list.txt", "plain"),
        (b"# id,dateadded,url,url_status,threat,tags,urlhaus_link,reporter\n", "x", "urlhaus-csv"),
        (b"#comment\n# first,URL\nx,y\n", "x", "csv"),
        (b"\n\nName,Url,Notes\r\n", "x", "csv"),
        (b"\x00\x01binary\xff\n", "x", "plain"),
        (b"", "x", "plain"),
    ],
)
def test_detection(head: bytes, names: str, expected: str) -> None:
    assert detect(head, names) == expected


def test_a_failing_writer_process_is_reported() -> None:
    from datetime import UTC, datetime

    from ingest.writer import _Child
    from tocsin.errors import StoreError

    with pytest.raises(StoreError, match="writing to the store failed: ConfigError"):
        _Child("nosuchdriver://nowhere", datetime.now(UTC), 1, 10, None)
