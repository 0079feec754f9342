"""Hostile input: every record accounted for, with its exact reason and line number."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from ingest_support import assert_accounted, ingest, make_config, rejects, submissions, urls

from store.db import Database

TEN_MB = 10 * 1024 * 1024


def _row(url: str | bytes, n: int = 1) -> bytes:
    url = url.encode("utf-8") if isinstance(url, str) else url
    return (
        f'"{n}","2026-11-20 09:01:11","'.encode()
        + url
        + b'","online","","malware_download","x","https://urlhaus.abuse.ch/url/1/","anon"'
    )


def hostile_csv(path: Path) -> Path:
    """A URLhaus-format dump with CRLF endings, a BOM, and one trap a line."""
    garbage = bytes(random.Random(5).randrange(0x80, 0x100) for _ in range(300))
    lines = [
        b"\xef\xbb\xbf###########################################",  # 1 BOM, banner
        b"# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter",  # 2
        _row("http://good.example/a"),  # 3 new
        _row("HTTP://Example.COM:80/a"),  # 4 new: http://example.com/a
        _row("http://example.com/a"),  # 5 duplicate (case, default port)
        _row("http://example.com:80/a#fragment"),  # 6 duplicate
        _row("http://bücher.example/"),  # 7 new: punycode
        _row("http://xn--bcher-kva.example/"),  # 8 duplicate
        _row("javascript:alert(document.cookie)"),  # 9 bad-scheme
        _row("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="),  # 10 bad-scheme
        garbage,  # 11 undecodable
        b"\x00\x01\x02\x03garbage\xff\xfe",  # 12 nul-byte
        _row("http://long.example/" + "a" * TEN_MB),  # 13 too-long
        b'"7","2026-11-20 09:01:11","http://truncated.example/,"online',  # 14 bad-csv
        _row(b"http://nul\x00.example/"),  # 15 nul-byte
        b"",  # 16 blank: not a record
        _row(""),  # 17 no-url
        _row("not a url at all"),  # 18 no-url
        _row("http://exa mple.com/"),  # 19 bad-host
        _row("http://good.example:99999/"),  # 20 bad-port
        _row("http://cr.example/\rX"),  # 21 control-char (a CR that is not a line end)
        b"\xef\xbb\xbf" + _row("http://bom.example/"),  # 22 stray-bom
        b'"9","2026-11-20 09:01:11","http://short.example/","online"',  # 23 bad-csv (4 fields)
        _row("ftp://files.example/x"),  # 24 bad-scheme
        _row("http://GOOD.example/a"),  # 25 duplicate of line 3
        _row("http://last.example/"),  # 26 new, no line end
    ]
    path.write_bytes(b"\r\n".join(lines))
    return path


EXPECTED_REJECTS = [
    (9, "bad-scheme"),
    (10, "bad-scheme"),
    (11, "undecodable"),
    (12, "nul-byte"),
    (13, "too-long"),
    (14, "bad-csv"),
    (15, "nul-byte"),
    (17, "no-url"),
    (18, "no-url"),
    (19, "bad-host"),
    (20, "bad-port"),
    (21, "control-char"),
    (22, "stray-bom"),
    (23, "bad-csv"),
    (24, "bad-scheme"),
]


@pytest.mark.parametrize("parallel_after", [0, 1], ids=["in-process", "writer-process"])
def test_hostile_csv_is_fully_accounted_for(
    db: Database, tmp_path: Path, parallel_after: int
) -> None:
    feed = hostile_csv(tmp_path / "hostile.csv")
    config = make_config(db.url, ingest={"parallel_after": parallel_after})
    report = ingest(db, [feed], config)
    assert_accounted(report)
    (source,) = report.sources
    assert source.format == "urlhaus-csv" and source.error is None
    assert (source.records, source.new, source.duplicate, source.rejected) == (23, 4, 4, 15)
    assert source.skipped == 3  # the banner, the header and the blank line
    assert [(r.line_no, r.reason) for r in rejects(db)] == EXPECTED_REJECTS
    assert {r.run_id for r in rejects(db)} == {report.run_id}
    by_line = {r.line_no: r for r in rejects(db)}
    long_line = by_line[13]
    assert len(long_line.raw) == 8192 and long_line.raw.startswith(b'"1","2026-11-20')
    assert long_line.raw_len == len(_row("http://long.example/" + "a" * TEN_MB))
    assert by_line[12].raw == b"\x00\x01\x02\x03garbage\xff\xfe" and by_line[12].raw_len == 13
    assert by_line[21].raw.endswith(
        b'http://cr.example/\rX","online","","malware_download","x",'
        b'"https://urlhaus.abuse.ch/url/1/","anon"'
    )
    assert by_line[22].raw.startswith(b"\xef\xbb\xbf")
    assert {r.source_ref for r in rejects(db)} == {str(feed)}
    assert {r.format for r in rejects(db)} == {"urlhaus-csv"}
    assert sorted(u.url for u in urls(db)) == [
        "http://example.com/a",
        "http://good.example/a",
        "http://last.example/",
        "http://xn--bcher-kva.example/",
    ]
    assert [(s.line_no, s.status) for s in submissions(db)] == [
        (3, "new"),
        (4, "new"),
        (5, "duplicate"),
        (6, "duplicate"),
        (7, "new"),
        (8, "duplicate"),
        (25, "duplicate"),
        (26, "new"),
    ]
    # CRLF is a line end, not part of the record.
    assert not any(s.raw.endswith("\r") for s in submissions(db))


def test_hostile_plain_list(db: Database, tmp_path: Path) -> None:
    feed = tmp_path / "list.txt"
    feed.write_bytes(
        b"\xef\xbb\xbfhttp://one.example/\r\n"  # 1 new (the BOM is the file's)
        b"# a comment\r\n"  # 2 skipped
        b"   \r\n"  # 3 skipped
        b"one.example\r\n"  # 4 duplicate: no scheme, read as http://one.example/
        b"  http://ONE.example:80/  \n"  # 5 duplicate, surrounding blanks ignored
        b"javascript:void(0)\n"  # 6 bad-scheme
        b"\xc3\x28\n"  # 7 undecodable
        b"localhost\n"  # 8 no-url (no scheme, no dotted host)
        b"http://[::1/\n"  # 9 bad-host
        b"http://0x7f.1/\n" + b"x" * 9000 + b"\n"  # 10 bad-host  # 11 too-long
        b"https://two.example/path?q=%7e#frag"  # 12 new, no line end
    )
    report = ingest(db, [feed])
    assert_accounted(report)
    (source,) = report.sources
    assert source.format == "plain" and source.feed == "plain"
    assert (source.records, source.new, source.duplicate, source.rejected) == (10, 2, 2, 6)
    assert source.skipped == 2
    assert [(r.line_no, r.reason) for r in rejects(db)] == [
        (6, "bad-scheme"),
        (7, "undecodable"),
        (8, "no-url"),
        (9, "bad-host"),
        (10, "bad-host"),
        (11, "too-long"),
    ]
    assert sorted(u.url for u in urls(db)) == [
        "http://one.example/",
        "https://two.example/path?q=~",
    ]


def _entries(*items: bytes) -> bytes:
    return b"[\n" + b",\n".join(items) + b"\n]\n"


@pytest.mark.parametrize("truncate", [False, True])
def test_hostile_json_is_fully_accounted_for(db: Database, tmp_path: Path, truncate: bool) -> None:
    good = json.dumps({"phish_id": "1", "url": "http://ok.example/", "target": "X"}).encode()
    body = _entries(
        good,  # 2 new
        b'{"phish_id": "2", "url": "HTTP://OK.example:80/"}',  # 3 duplicate
        b'"just a string"',  # 4 bad-record
        b'{"phish_id": "3", "url": 42}',  # 5 bad-record
        b'{"phish_id": "4"}',  # 6 no-url
        b'{"phish_id": "5", "url": "http://nul\\u0000.example/"}',  # 7 nul-byte
        b'{"phish_id": "6", "url": "http://bad\xff.example/"}',  # 8 undecodable
        b'{"phish_id": "7", "url": "http://' + b"a" * 70000 + b'.example/"}',  # 9 too-long
        b'{"phish_id": "8", "url": "javascript:alert(1)"}',  # 10 bad-scheme
        b'{"phish_id": "9", "url": "http://x.example/", "bad": tru}',  # 11 bad-json
        b'{"phish_id": "10", "url": "https://last.example/"}',  # 12 new
    )
    if truncate:  # the stream is cut in the middle of the last entry
        body = body[: body.rindex(b"last.example")]
    feed = tmp_path / "phish.json"
    feed.write_bytes(body)
    report = ingest(db, [feed])
    assert_accounted(report)
    (source,) = report.sources
    assert source.format == "phishtank-json"
    expected = [
        (4, "bad-record"),
        (5, "bad-record"),
        (6, "no-url"),
        (7, "nul-byte"),
        (8, "undecodable"),
        (9, "too-long"),
        (10, "bad-scheme"),
        (11, "bad-json"),
    ]
    if truncate:
        expected.append((12, "bad-json"))
    assert [(r.line_no, r.reason) for r in rejects(db)] == expected
    assert source.records == 11 and source.rejected == len(expected)
    assert (source.new, source.duplicate) == ((1, 1) if truncate else (2, 1))
    assert rejects(db)[5].raw_len > 70000 and len(rejects(db)[5].raw) == 8192


def test_broken_json_structure_is_one_record(db: Database, tmp_path: Path) -> None:
    feed = tmp_path / "broken.json"
    feed.write_bytes(b'{"1": [{"url": "http://a.example/"}],\n  oops "2": []}\n')
    report = ingest(db, [feed])
    assert_accounted(report)
    (source,) = report.sources
    assert (source.format, source.records, source.new, source.rejected) == ("urlhaus-json", 2, 1, 1)
    (reject,) = rejects(db)
    assert (reject.line_no, reject.reason) == (2, "bad-json")
    assert reject.raw == b'oops "2": []}\n' and reject.raw_len == 14


def test_max_line_is_configurable(db: Database, tmp_path: Path) -> None:
    feed = tmp_path / "list.txt"
    feed.write_text("http://a.example/" + "x" * 100 + "\nhttp://b.example/\n")
    config = make_config(db.url, ingest={"max_line": 64})
    report = ingest(db, [feed], config)
    assert (report.new, report.rejected) == (1, 1)
    (reject,) = rejects(db)
    assert (reject.reason, len(reject.raw), reject.raw_len) == ("too-long", 64, 117)


def _nested(depth: int, inner: bytes = b"1") -> bytes:
    """``depth`` arrays and objects around ``inner``, alternating: a small entry, deeply nested."""
    head = b"".join(b'{"a":' if i % 2 else b"[" for i in range(depth))
    tail = b"".join(b"}" if i % 2 else b"]" for i in reversed(range(depth)))
    return head + inner + tail


def test_deeply_nested_json_is_a_reject_and_the_next_sources_still_run(
    db: Database, tmp_path: Path
) -> None:
    phish = tmp_path / "phish.json"
    phish.write_bytes(
        _entries(
            b'{"phish_id": "1", "url": "http://before.example/"}',  # 2 new
            b'{"phish_id": "2", "url": "http://deep.example/", "x": ' + _nested(1500) + b"}",  # 3
            _nested(1500),  # 4: the entry itself is 1,500 deep
            b'{"phish_id": "3", "url": "http://ok-depth.example/", "x": ' + _nested(40) + b"}",  # 5
            b'{"phish_id": "4", "url": "http://after.example/"}',  # 6 new
        )
    )
    urlhaus = tmp_path / "urlhaus.json"  # the object form, with the deep value as an entry
    urlhaus.write_bytes(b'{"7": [' + _nested(3000) + b'], "8": [{"url": "http://u.example/"}]}')
    plain = tmp_path / "list.txt"
    plain.write_text("http://next-source.example/\n")
    report = ingest(db, [phish, urlhaus, plain])
    assert_accounted(report)
    assert [s.error for s in report.sources] == [None, None, None]
    assert [(s.records, s.new, s.rejected) for s in report.sources] == [
        (5, 3, 2),
        (2, 1, 1),
        (1, 1, 0),
    ]
    deep = rejects(db)
    assert [(r.line_no, r.reason) for r in deep] == [
        (3, "bad-json"),
        (4, "bad-json"),
        (1, "bad-json"),
    ]
    assert deep[1].raw == _nested(1500) and deep[1].raw_len == len(_nested(1500))
    assert "http://next-source.example/" in {u.url for u in urls(db)}
