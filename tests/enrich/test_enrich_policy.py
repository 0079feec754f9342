"""Languages, CDN / shared-hosting patterns, the ladder, contact standing, security.txt."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from enrich.csirt import load_cert_contacts
from enrich.language import cctld_country, choose, normalise_tag
from enrich.policy import Candidate, SiteContext, build_ladder, standing
from enrich.providers import ProviderPatterns
from enrich.securitytxt import candidate_urls, looks_like_securitytxt, parse, rfc2142_guesses
from store.models import Contact
from tocsin.errors import ConfigError

NOW = datetime(2026, 11, 20, tzinfo=UTC)
LADDER = [["hosting", "owner"], ["registrar"], ["cert"]]


def _contact(cid: int, email: str, role: str, **counters) -> Contact:
    contact = Contact(id=cid, email=email, role=role, source="x", languages=[], first_seen=NOW)
    for name in ("notices_sent", "replies", "bounces", "fixes", "fix_seconds_total"):
        setattr(contact, name, counters.get(name, 0))
    contact.bounced = counters.get("bounced", False)
    return contact


@pytest.mark.parametrize(
    ("preferred", "host", "country", "expected"),
    [
        (["ja-JP", "en"], "www.example.com", "US", ("ja", "preferred-languages")),
        ([], "www.shop.co.jp", "AU", ("ja", "cctld")),  # a .jp site on any network
        ([], "www.example.com", "JP", ("ja", "network-country")),
        ([], "www.example.io", "DE", ("de", "network-country")),  # .io says nothing
        ([], "www.example.co.uk", None, ("en", "cctld")),
        ([], "www.example.com.br", None, ("pt", "cctld")),
        (["x-bogus!"], "example.com", None, ("en", "default")),
    ],
)
def test_language_order(preferred, host, country, expected) -> None:
    choice = choose(preferred, host=host, network_country=country)
    assert (choice.language, choice.why) == expected


def test_language_helpers() -> None:
    assert normalise_tag("pt_BR") == "pt" and normalise_tag("und") is None
    assert cctld_country("a.b.tv") is None and cctld_country("a.uk") == "gb"


def test_cdn_and_shared_hosting_patterns(tmp_path) -> None:
    patterns = ProviderPatterns.load()
    assert patterns.cdn_of("CLOUDFLARENET - CloudFlare, Inc., US", [], []).name == "Cloudflare"
    assert patterns.cdn_of(None, [], ["d111.cloudfront.net"]).name == "Amazon CloudFront"
    generic = patterns.cdn_of("SANDFLARENET Sandflare CDN, Inc., US", ["Sandflare CDN, Inc."], [])
    assert generic.name == "Sandflare CDN, Inc." and "AS name" in generic.evidence
    assert patterns.cdn_of("HETZNER-AS, DE", ["Hetzner Online GmbH"], []) is None
    assert patterns.shared_of("UNIFIEDLAYER-AS-1 - Unified Layer, US", []).name.startswith(
        "Newfold"
    )
    assert patterns.shared_of(None, ["MegaShared Hosting LLC"]) is not None
    extra = tmp_path / "providers.json"
    extra.write_text('{"cdn": [{"name": "EdgeCo", "cname": "\\\\.edgeco\\\\.net$"}]}')
    own = ProviderPatterns.load(str(extra))
    assert own.cdn_of(None, [], ["x.edgeco.net"]).name == "EdgeCo"
    extra.write_text('{"cdn": [{"name": "bad", "org": "("}]}')
    with pytest.raises(ConfigError, match="providers_file"):
        ProviderPatterns.load(str(extra))


def test_ladder_levels_roles_notes_and_dedup() -> None:
    hosting = _contact(1, "abuse@cdn.example", "hosting")
    owner = _contact(2, "security@site.example.jp", "owner")
    owner.languages = ["ja"]
    registrar = _contact(3, "abuse@registrar.example", "registrar")
    same_as_hosting = _contact(4, "abuse@cdn.example", "owner")  # one mailbox, twice
    site = SiteContext(
        host="www.site.example.jp",
        registered_domain="site.example.jp",
        ips=("192.0.2.1",),
        asn=64505,
        as_name="SANDFLARENET",
        prefix="192.0.2.0/24",
        network_org="Sandflare CDN, Inc.",
        network_country="US",
        cdn="Sandflare CDN, Inc.",
        cdn_evidence="AS name SANDFLARENET",
    )
    rungs = build_ladder(
        site,
        [
            Candidate(owner, "owner", "security.txt", 0.95),
            Candidate(hosting, "hosting", "rdap:ip", 1.0),
            Candidate(same_as_hosting, "owner", "security.txt", 0.9),
            Candidate(registrar, "registrar", "rdap:domain", 0.9),
        ],
        LADDER,
    )
    assert [(r.level, r.role, r.email, r.language) for r in rungs] == [
        (1, "hosting", "abuse@cdn.example", "ja"),  # .jp site
        (1, "owner", "security@site.example.jp", "ja"),
        (2, "registrar", "abuse@registrar.example", "ja"),
    ]  # no CSIRT candidate: that level is skipped, not left empty
    assert rungs[0].cdn == "Sandflare CDN, Inc." and "CDN" in rungs[0].note
    assert rungs[1].cdn is None
    assert "AS64505" in rungs[0].reason and "language by cctld" in rungs[0].reason


def test_ladder_is_configurable_and_orders_by_track_record() -> None:
    good = _contact(1, "good@host.example", "hosting", notices_sent=10, replies=5, fixes=8,
                    fix_seconds_total=8 * 86400)  # fmt: skip
    hole = _contact(2, "hole@host.example", "hosting", notices_sent=10)
    site = SiteContext(host="a.example.com")
    rungs = build_ladder(
        site,
        [Candidate(hole, "hosting", "rdap:ip", 1.0), Candidate(good, "hosting", "rdap:ip", 1.0)],
        [["registrar"], ["hosting"]],
    )
    assert [(r.level, r.email) for r in rungs] == [
        (1, "good@host.example"),
        (1, "hole@host.example"),
    ]
    assert "black-hole" in rungs[1].note


def test_contact_standing() -> None:
    assert standing(_contact(1, "a@b.c", "hosting")).label == "unknown"
    assert standing(_contact(1, "a@b.c", "hosting", notices_sent=6)).label == "black-hole"
    assert (
        standing(_contact(1, "a@b.c", "hosting", notices_sent=6, replies=3)).label == "responsive"
    )
    assert standing(_contact(1, "a@b.c", "hosting", notices_sent=9, replies=1)).label == "slow"
    assert standing(_contact(1, "a@b.c", "hosting", notices_sent=2, bounces=2)).label == "bouncing"
    assert standing(_contact(1, "a@b.c", "hosting", bounced=True)).label == "bouncing"
    fast = standing(
        _contact(1, "a@b.c", "hosting", notices_sent=4, fixes=4, fix_seconds_total=4 * 3600)
    )
    slow = standing(
        _contact(1, "a@b.c", "hosting", notices_sent=4, fixes=4, fix_seconds_total=4 * 864000)
    )
    assert fast.score > slow.score and fast.mean_days_to_fix == pytest.approx(1 / 24)


def test_securitytxt_parsing_against_the_run_clock() -> None:
    body = (
        b"# comment\nContact: mailto:Sec@Example.COM?subject=x\nContact: tel:+1-555\n"
        b"Contact: mailto:bad address@x\nExpires: 2026-12-01T00:00:00Z\n"
        b"Preferred-Languages: ja-JP, en\n"
    )
    current = parse(body, "https://example.com/.well-known/security.txt", NOW)
    assert current.emails == ["Sec@example.com"] and current.languages == ["ja", "en"]
    assert current.usable and not current.expired and current.confidence > 0.8
    later = parse(body, "u", datetime(2027, 1, 1, tzinfo=UTC))
    assert later.expired and not later.usable  # expiry judged by --now, not the wall clock
    undated = parse(b"Contact: mailto:a@b.example\n", "u", NOW)
    assert undated.usable and undated.confidence == 0.7
    assert not looks_like_securitytxt(b"<!DOCTYPE html><p>Contact: x</p>")
    assert rfc2142_guesses(None) == []


def test_candidate_urls_stay_on_the_site() -> None:
    assert candidate_urls("a.example", ["https://a.example:443/x", "http://a.example:8080/y",
                                         "http://evil.example/z", "ftp://a.example/"]) == [
        "https://a.example/.well-known/security.txt",
        "https://a.example/security.txt",
        "http://a.example:8080/.well-known/security.txt",
        "http://a.example:8080/security.txt",
    ]  # fmt: skip


def test_cert_contacts_csv(tmp_path) -> None:
    path = tmp_path / "certs.csv"
    path.write_text("country,email,language\njp,incident@jpcert.example,ja-JP\nDE,c@d.example\n")
    table = load_cert_contacts(str(path))
    assert table["JP"].email == "incident@jpcert.example" and table["JP"].language == "ja"
    assert table["DE"].language is None
    path.write_text("XX,not-an-email,en\n")
    with pytest.raises(ConfigError, match="cert_contacts"):
        load_cert_contacts(str(path))


def test_candidate_walk_classifies_answers() -> None:
    from scrapy.http import Request, TextResponse
    from twisted.internet.error import ConnectionRefusedError, TimeoutError

    from crawler.spiders.securitytxt import CandidateWalk
    from enrich.securitytxt import Fetched

    urls = candidate_urls("a.example", ["http://a.example:8080/"])
    walk = CandidateWalk(1, urls, max_bytes=1000, timeout=5)
    step = walk.first()
    assert step.url == urls[0]
    step = walk.on_failure(step.url, ConnectionRefusedError())  # https origin: skip both paths
    assert step.url == urls[2]
    moved = TextResponse(step.url, status=301, headers={"Location": "/sec.txt"}, body=b"",
                         request=Request(step.url))  # fmt: skip
    step = walk.on_response(moved)
    assert step.url == "http://a.example:8080/sec.txt"
    found = TextResponse(step.url, status=200, body=b"Contact: mailto:x@a.example\n",
                         request=Request(step.url))  # fmt: skip
    result = walk.on_response(found)
    assert isinstance(result, Fetched) and result.state == "found"

    only_timeouts = CandidateWalk(2, urls, max_bytes=1000, timeout=5)
    step = only_timeouts.first()
    step = only_timeouts.on_failure(step.url, TimeoutError())
    result = only_timeouts.on_failure(step.url, TimeoutError())
    assert result.state == "error"  # nobody answered: look again later

    soft404 = CandidateWalk(3, urls[2:], max_bytes=1000, timeout=5)
    step = soft404.first()
    page = TextResponse(step.url, status=200, body=b"<html>Contact: us</html>",
                        request=Request(step.url))  # fmt: skip
    step = soft404.on_response(page)
    missing = TextResponse(step.url, status=404, body=b"", request=Request(step.url))
    assert soft404.on_response(missing).state == "absent"
