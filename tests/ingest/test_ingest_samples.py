"""Every feed sample: format detected, every record counted, the feed's fields kept."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest_support import (
    FEEDS,
    NOW,
    assert_accounted,
    ingest,
    make_config,
    rejects,
    submissions,
    urls,
)
from sqlalchemy import select

from store.db import Database
from store.models import IngestRun

SAMPLES = {
    "urlhaus.csv": ("urlhaus-csv", "urlhaus", 4, 9),
    "urlhaus.json": ("urlhaus-json", "urlhaus", 2, 0),
    "urlhaus_asn_feed.csv": ("urlhaus-feed", "urlhaus", 2, 5),
    "phishtank_online_valid.json": ("phishtank-json", "phishtank", 2, 0),
    "phishtank_online_valid.csv": ("phishtank-csv", "phishtank", 2, 1),
    "openphish.txt": ("openphish", "openphish", 3, 0),
}


def _by_source(db: Database) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for sub in submissions(db):
        grouped.setdefault(sub.source_ref.rsplit("/", 1)[-1], []).append(sub)
    return grouped


def test_every_sample_is_detected_counted_and_kept(db: Database) -> None:
    report = ingest(db, [FEEDS / name for name in SAMPLES])
    assert_accounted(report)
    assert not report.failed
    for source, (name, (fmt, feed, records, skipped)) in zip(
        report.sources, SAMPLES.items(), strict=True
    ):
        assert (source.format, source.feed, source.records, source.skipped) == (
            fmt,
            feed,
            records,
            skipped,
        ), name
        assert source.rejected == 0
    # 15 records naming 9 distinct URLs, in the order the samples were given.
    assert (report.new, report.duplicate, report.rejected) == (9, 6, 0)
    assert [(s.new, s.duplicate) for s in report.sources] == [
        (4, 0),
        (0, 2),
        (1, 1),
        (2, 0),
        (1, 1),
        (1, 2),
    ]
    stored = {u.url: u for u in urls(db)}
    assert set(stored) == {
        "http://bakery-example.test/wp-content/plugins/x/update.js",
        "http://198.51.100.23/bins/mozi.m",
        "https://shop.example.org/checkout/",
        "http://xn--bcher-kva.example/dl/invoice.zip",
        "http://192.0.2.77:8080/i",
        "https://login-example.test/secure/verify.php",
        "http://garden-club.example/wp-includes/js/m/index.html",
        # url-normalize escapes a second "=" inside a query value
        "http://garden-club.example/wp-includes/js/m/index.html?a=1,b%3D2",
        "https://docs-share.example.net/o/index.php?email=a@b.example",
    }
    for url in stored.values():
        assert url.verdict == "pending"
        assert url.next_check_at == NOW and url.first_seen == NOW and url.last_seen == NOW
    assert stored["http://192.0.2.77:8080/i"].host == "192.0.2.77"
    assert stored["http://xn--bcher-kva.example/dl/invoice.zip"].host == "xn--bcher-kva.example"
    assert rejects(db) == []
    with db.session() as session:
        run = session.scalars(select(IngestRun)).one()
    assert (run.new, run.duplicate, run.rejected) == (9, 6, 0)
    assert run.finished_at == NOW and run.started_at == NOW
    assert run.sources == [str(FEEDS / name) for name in SAMPLES]

    by = _by_source(db)
    # URLhaus CSV: every field by header; tags split; the dump's date as UTC.
    first = by["urlhaus.csv"][0]
    assert first.line_no == 10 and first.status == "new" and first.format == "urlhaus-csv"
    assert first.feed_ref == "3412001" and first.reporter == "anonymous"
    assert first.threat == "malware_download" and first.tags == ["js", "SocGholish"]
    assert first.reported_at == datetime(2026, 11, 20, 9, 1, 11, tzinfo=UTC)
    assert first.extra == {
        "url_status": "online",
        "last_online": "2026-11-20 09:01:11",
        "urlhaus_link": "https://urlhaus.abuse.ch/url/3412001/",
    }
    assert first.raw.startswith('"3412001","2026-11-20 09:01:11","http://bakery-example.test/')
    assert first.submitted_at == NOW
    assert by["urlhaus.csv"][2].extra == {
        "url_status": "online",
        "urlhaus_link": "https://urlhaus.abuse.ch/url/3411998/",
    }
    assert [s.reporter for s in by["urlhaus.csv"]] == [
        "anonymous",
        "lrz_urlhaus",
        "researcher_x",
        "anonymous",
    ]
    # URLhaus JSON: the id is the key; tags a list or null; " UTC" dates.
    js = by["urlhaus.json"]
    assert [(s.feed_ref, s.line_no, s.status) for s in js] == [
        ("3412001", 2, "duplicate"),
        ("3411998", 3, "duplicate"),
    ]
    assert js[0].tags == ["js", "SocGholish"] and js[1].tags is None
    assert js[0].reported_at == datetime(2026, 11, 20, 9, 1, 11, tzinfo=UTC)
    assert js[1].reporter == "researcher_x" and js[1].threat == "malware_download"
    assert js[0].raw.startswith('{"dateadded": "2026-11-20 09:01:11 UTC"')
    # The per-ASN feed: its ASN, IP and country in extra.
    asn = by["urlhaus_asn_feed.csv"]
    assert asn[1].extra == {
        "url_status": "offline",
        "host": "192.0.2.77",
        "ipaddress": "192.0.2.77",
        "asnumber": "64500",
        "country": "JP",
    }
    assert asn[1].reported_at == datetime(2026, 11, 19, 22, 10, 3, tzinfo=UTC)
    assert asn[1].threat == "malware_download" and asn[1].feed_ref is None
    # PhishTank JSON: phish_id, target, the details kept.
    pt = by["phishtank_online_valid.json"]
    assert pt[0].feed_ref == "9100001" and pt[0].target == "Other" and pt[0].threat == "phishing"
    assert pt[0].reported_at == datetime(2026, 11, 20, 7, 8, 44, tzinfo=UTC)
    assert pt[0].extra["details"][0]["announcing_network"] == "64501"
    assert pt[0].extra["verified"] == "yes"
    assert pt[1].extra["details"] == []
    # PhishTank CSV: a quoted URL with commas in it.
    ptc = by["phishtank_online_valid.csv"]
    assert ptc[1].target == "Example Bank" and ptc[1].feed_ref == "9100002"
    assert ptc[1].line_no == 3 and ptc[1].status == "new"
    # OpenPhish: one URL a line.
    op = by["openphish.txt"]
    assert [(s.line_no, s.status, s.threat) for s in op] == [
        (1, "duplicate", "phishing"),
        (2, "duplicate", "phishing"),
        (3, "new", "phishing"),
    ]


def test_running_the_same_feed_again_counts_duplicates(db: Database) -> None:
    first = ingest(db, [FEEDS / "urlhaus.csv"])
    # Again, with the writer process taking over at once.
    again = ingest(db, [FEEDS / "urlhaus.csv"], make_config(db.url, ingest={"parallel_after": 1}))
    assert (first.new, first.duplicate) == (4, 0)
    assert (again.new, again.duplicate, again.rejected) == (0, 4, 0)
    assert again.run_id == first.run_id + 1
    assert len(urls(db)) == 4
    assert [s.status for s in submissions(db)] == ["new"] * 4 + ["duplicate"] * 4


def test_campaign_tags_new_urls_and_untagged_duplicates(db: Database) -> None:
    ingest(db, [FEEDS / "openphish.txt"], campaign="first")
    ingest(db, [FEEDS / "phishtank_online_valid.csv"])
    report = ingest(db, [FEEDS / "phishtank_online_valid.csv"], campaign="second")
    assert (report.new, report.duplicate) == (0, 2)
    hints = {u.url: u.campaign_hint for u in urls(db)}
    assert hints == {
        "https://login-example.test/secure/verify.php": "first",
        "http://garden-club.example/wp-includes/js/m/index.html": "first",
        "https://docs-share.example.net/o/index.php?email=a@b.example": "first",
        "http://garden-club.example/wp-includes/js/m/index.html?a=1,b%3D2": "second",
    }
    with db.session() as session:
        campaigns = list(session.scalars(select(IngestRun.campaign).order_by(IngestRun.id)))
    assert campaigns == ["first", None, "second"]
