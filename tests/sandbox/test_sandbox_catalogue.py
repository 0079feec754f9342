"""The catalogue itself: every family covered, addresses inside their providers."""

from __future__ import annotations

import ipaddress

from tocsin.sandbox import FAMILIES, KINDS, PROVIDERS, VERDICTS, catalogue, scale_sites


def test_every_family_has_a_malicious_site() -> None:
    sites = catalogue().values()
    covered = {s.family for s in sites if s.verdict == "malicious"}
    assert covered == set(FAMILIES)


def test_sites_are_well_formed() -> None:
    sites = catalogue()
    for site in sites.values():
        assert site.kind in KINDS, site.id
        assert site.verdict is None or site.verdict in VERDICTS, site.id
        assert site.provider in PROVIDERS, site.id
        assert (site.family is not None) == (site.verdict == "malicious"), site.id
        if site.ip.startswith("127.10."):
            ip = ipaddress.ip_address(site.ip)
            assert ip in PROVIDERS[site.provider].network, site.id


def test_required_cases_exist() -> None:
    sites = catalogue()
    by_kind = {k: [s for s in sites.values() if s.kind == k] for k in KINDS}
    assert len(by_kind["tricky-clean"]) >= 6
    assert {s.id for s in by_kind["hostile"]} >= {
        "hostile-infinite-loop",
        "hostile-alert-loop",
        "hostile-1gb",
        "hostile-gzip-bomb",
        "hostile-redirect-loop",
        "hostile-slow-drip",
        "hostile-popup-storm",
    }
    assert {s.security_txt for s in sites.values()} == {
        "valid",
        "legacy",
        "expired",
        "none",
        "web-form",
        "web-form+mail",
    }
    shared = PROVIDERS["megashared"]
    on_shared = [s for s in sites.values() if s.provider == "megashared" and s.malicious]
    assert len(on_shared) >= 3 and shared.shared_hosting
    assert PROVIDERS["sandflare"].cdn and "CDN" in PROVIDERS["sandflare"].name
    assert {p.rdap for p in PROVIDERS.values()} == {"rir", "throttled", "down"}
    assert all(64480 <= p.asn <= 64511 for p in PROVIDERS.values())  # 64480-64495: issue 11
    assert len({p.cidr for p in PROVIDERS.values()}) == len(PROVIDERS)


def test_scale_mix_and_ip_spread() -> None:
    sites = scale_sites(2000)
    assert len(sites) == 2000
    kinds = {k: sum(1 for s in sites if s.tags[1] == k) for k in ("offline", "payload", "page")}
    assert kinds == {"offline": 800, "payload": 600, "page": 600}
    many = scale_sites(10000, mix={"page": 1.0})
    ips = {s.ip for s in many}
    assert 200 <= len(ips) <= 400
    assert len({s.host for s in many}) == 10000
