"""Sources: files, gzip and zip, http(s) through the SSRF guard, size caps, failures."""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ingest_support import (
    FEEDS,
    FeedServer,
    Reply,
    assert_accounted,
    ingest,
    make_config,
    urls,
)

from store import migrate
from store.db import Database

PLAIN = b"http://one.example/\nhttp://two.example/\nhttp://one.example/\n"


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'tocsin.db'}")
    migrate.upgrade(database)
    yield database
    database.dispose()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_gzip_and_zip_files_are_unpacked(sqlite_db: Database, tmp_path: Path) -> None:
    csv_bytes = (FEEDS / "urlhaus.csv").read_bytes()
    gz = tmp_path / "recent.csv.gz"
    gz.write_bytes(gzip.compress(csv_bytes))
    zipped = tmp_path / "openphish-feed.bin"  # the magic bytes count, not the name
    zipped.write_bytes(_zip({"feed.txt": (FEEDS / "openphish.txt").read_bytes()}))
    report = ingest(sqlite_db, [gz, zipped])
    assert_accounted(report)
    assert [(s.format, s.packed, s.new, s.error) for s in report.sources] == [
        ("urlhaus-csv", "gzip", 4, None),
        ("openphish", "zip", 3, None),
    ]


@pytest.mark.parametrize("packing", ["gzip", "zip"])
def test_the_size_cap_bounds_unpacked_bytes(
    sqlite_db: Database, tmp_path: Path, packing: str
) -> None:
    bomb = b"http://a.example/\n" * 20000  # 360 kB that packs into 1 kB
    packed = gzip.compress(bomb) if packing == "gzip" else _zip({"a.txt": bomb})
    assert len(packed) < 4000
    feed = tmp_path / "bomb"
    feed.write_bytes(packed)
    config = make_config(sqlite_db.url, ingest={"fetch_max_bytes": 100_000})
    report = ingest(sqlite_db, [feed, FEEDS / "openphish.txt"], config)
    bombed, fine = report.sources
    assert "over the size cap" in (bombed.error or "") and bombed.records == 0
    assert fine.error is None and fine.new == 3  # the other source still ran
    assert len(urls(sqlite_db)) == 3


def test_unreadable_sources_are_reported(sqlite_db: Database, tmp_path: Path) -> None:
    two = tmp_path / "two.zip"
    two.write_bytes(_zip({"a.txt": PLAIN, "b.txt": PLAIN}))
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(PLAIN)[:-12])
    headerless = tmp_path / "no-header.csv"
    headerless.write_text("id,link\n1,http://a.example/\n")
    report = ingest(
        sqlite_db,
        [tmp_path / "missing.txt", two, broken, tmp_path, FEEDS / "openphish.txt"],
    )
    errors = [s.error or "" for s in report.sources]
    assert "No such file or directory" in errors[0]
    assert "holds 2 files" in errors[1]
    assert "gzip" in errors[2]
    assert "Is a directory" in errors[3]
    assert errors[4] == "" and report.sources[4].new == 3
    forced = ingest(sqlite_db, [headerless], fmt="csv")
    assert "no CSV header with a url column" in (forced.sources[0].error or "")


def test_format_can_be_forced(sqlite_db: Database, tmp_path: Path) -> None:
    feed = tmp_path / "list.txt"
    feed.write_bytes((FEEDS / "openphish.txt").read_bytes())
    auto = ingest(sqlite_db, [feed])
    assert (auto.sources[0].format, auto.sources[0].feed) == ("plain", "plain")
    forced = ingest(sqlite_db, [feed], fmt="openphish", source_name="my-list")
    assert (forced.sources[0].format, forced.sources[0].feed) == ("openphish", "my-list")
    # A URLhaus dump read as a plain list: every data line is one (unparseable) URL.
    wrong = ingest(sqlite_db, [FEEDS / "urlhaus.csv"], fmt="plain")
    assert_accounted(wrong)
    assert (wrong.sources[0].records, wrong.sources[0].rejected) == (4, 4)


def test_generic_csv_by_its_header(sqlite_db: Database, tmp_path: Path) -> None:
    feed = tmp_path / "mine.csv"
    feed.write_text(
        "Reported,URL,Threat,Note\r\n"
        "2026-11-01T10:00:00Z,http://a.example/x,phishing,first\r\n"
        'yesterday,"http://b.example/y?a=1,2",,\r\n'
    )
    report = ingest(sqlite_db, [feed], campaign="autumn")
    assert_accounted(report)
    assert (report.sources[0].format, report.sources[0].feed, report.new) == ("csv", "csv", 2)
    assert {u.campaign_hint for u in urls(sqlite_db)} == {"autumn"}


def test_http_source_needs_the_guard_to_allow_it(
    sqlite_db: Database, tmp_path: Path, feed_server: FeedServer
) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 feeds.test\n")
    url = feed_server.serve("/openphish.txt", PLAIN)
    named = f"http://feeds.test:{feed_server.port}/openphish.txt"
    strict = make_config(sqlite_db.url, network={"hosts_file": str(hosts)})
    refused = ingest(sqlite_db, [url, named], strict)
    assert all("blocked" in (s.error or "") for s in refused.sources)
    assert "loopback" in (refused.sources[0].error or "")
    assert feed_server.requests == []  # nothing reached the server

    network = {"allow_private": True, "hosts_file": str(hosts)}
    allowed = ingest(sqlite_db, [named], make_config(sqlite_db.url, network=network))
    (source,) = allowed.sources
    assert (source.error, source.format, source.new, source.duplicate) == (None, "openphish", 2, 1)
    # The connection went to the checked address, with the name in the Host header.
    assert feed_server.requests[-1] == ("/openphish.txt", f"feeds.test:{feed_server.port}")
    # A narrow exception admits the listed range only.
    narrow = make_config(sqlite_db.url, network={"allow_cidrs": ["127.0.0.0/8"]})
    assert ingest(sqlite_db, [url], narrow).sources[0].duplicate == 3


def test_http_payloads_errors_and_caps(sqlite_db: Database, feed_server: FeedServer) -> None:
    csv_bytes = (FEEDS / "urlhaus.csv").read_bytes()
    zipped = feed_server.serve("/downloads/csv_recent/", _zip({"csv.txt": csv_bytes}))
    moved = feed_server.serve("/moved", b"", 302, Location="/downloads/csv_recent/")
    missing = feed_server.url("/nothing-here")
    big = feed_server.serve("/big.txt", b"http://a.example/\n" * 10000)
    config = make_config(
        sqlite_db.url, network={"allow_private": True}, ingest={"fetch_max_bytes": 50_000}
    )
    report = ingest(sqlite_db, [zipped, moved, missing, big], config)
    first, redirected, absent, too_big = report.sources
    assert (first.format, first.packed, first.new) == ("urlhaus-csv", "zip", 4)
    assert (redirected.error, redirected.duplicate) == (None, 4)
    assert absent.error == "HTTP 404 Not Found"
    assert "over the size cap" in (too_big.error or "")
    assert len(report.failed) == 2


def test_a_feed_behind_a_dead_address_comes_from_the_next(
    sqlite_db: Database, tmp_path: Path, feed_server: FeedServer
) -> None:
    """feeds.test has two addresses; nothing listens on the first."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.9 feeds.test\n127.0.0.1 feeds.test\n")
    feed_server.serve("/openphish.txt", PLAIN)
    before = len(feed_server.requests)
    config = make_config(sqlite_db.url, network={"allow_private": True, "hosts_file": str(hosts)})
    report = ingest(sqlite_db, [f"http://feeds.test:{feed_server.port}/openphish.txt"], config)
    (source,) = report.sources
    assert (source.error, source.new, source.duplicate) == (None, 2, 1)
    assert len(feed_server.requests) == before + 1


def test_a_busy_feed_is_tried_again(sqlite_db: Database, feed_server: FeedServer) -> None:
    """A dropped download, then 503 with Retry-After, then the feed: one clean ingest,
    nothing of the cut-short body counted."""
    url = feed_server.serve_in_turn(
        "/feed.txt",
        Reply(200, PLAIN[:25], cut_short=True),
        Reply(503, b"busy", {"Retry-After": "0"}),
        Reply(200, PLAIN),
    )
    before = len(feed_server.requests)
    config = make_config(sqlite_db.url, network={"allow_private": True})
    (source,) = ingest(sqlite_db, [url], config).sources
    assert (source.error, source.new, source.duplicate, source.rejected) == (None, 2, 1, 0)
    assert len(feed_server.requests) == before + 3
    again = ingest(sqlite_db, [url], config)
    assert_accounted(again)
    assert (again.sources[0].new, again.sources[0].duplicate) == (0, 3)


def test_a_feed_that_stays_down_fails_after_three_tries(
    sqlite_db: Database, feed_server: FeedServer
) -> None:
    down = feed_server.serve("/down.txt", b"oops", 503, **{"Retry-After": "0"})
    later = feed_server.serve("/later.txt", b"slow down", 429, **{"Retry-After": "3600"})
    missing = feed_server.url("/missing.txt")
    before = len(feed_server.requests)
    config = make_config(sqlite_db.url, network={"allow_private": True})
    report = ingest(sqlite_db, [down, later, missing], config)
    errors = [source.error for source in report.sources]
    assert errors == [
        "HTTP 503 Service Unavailable (3 tries)",
        "HTTP 429 Too Many Requests (1 try)",  # an hour's wait is past ingest.fetch_timeout
        "HTTP 404 Not Found",
    ]
    paths = [path for path, _ in feed_server.requests[before:]]
    assert paths == ["/down.txt"] * 3 + ["/later.txt", "/missing.txt"]
