"""Enrichment end to end on both engines: real DNS-less hosts file, real pyasn tables,
real RDAP answers from loopback servers (normal, 429-twice, down), ladders and languages."""

from __future__ import annotations

from datetime import timedelta

from enrich_support import HOSTS, T0, make_site
from sqlalchemy import select

from enrich.service import enrich_sites
from store.models import Contact, Event, Incident, RdapCache, Recipient, Site, SiteContact
from store.queries import export_records


def _sites(env, *hosts):
    with env.db.session() as s:
        return [make_site(s, h).id for h in hosts]


def _site(env, host) -> Site:
    with env.db.session() as s:
        return s.scalars(select(Site).where(Site.host == host)).one()


def _ladder(env, host) -> list[tuple[int, str, str, str]]:
    with env.db.session() as s:
        rows = s.execute(
            select(Recipient.level, Recipient.role, Contact.email, Recipient.language)
            .join(Contact, Contact.id == Recipient.contact_id)
            .join(Incident, Incident.id == Recipient.incident_id)
            .join(Site, Site.id == Incident.site_id)
            .where(Site.host == host)
            .order_by(Recipient.level, Recipient.id)
        )
        return [tuple(r) for r in rows]


def test_a_site_gets_network_registrar_owner_and_ladder(enrich_env) -> None:
    _sites(enrich_env, "www.themarquetry.com")
    summary = enrich_env.run()
    assert (summary.sites, summary.done, summary.partial) == (1, 1, 0)
    site = _site(enrich_env, "www.themarquetry.com")
    assert site.ips == ["1.1.1.10"]
    assert (site.asn, site.prefix) == (15169, "1.1.1.0/24")  # the 2014 table
    assert site.as_name.startswith("GOOGLE")
    assert site.registered_domain == "themarquetry.com"
    assert site.registrar == "Hosting Concepts B.V. d/b/a Registrar.eu"
    assert site.registrar_iana_id == "1647"
    assert site.country == "AU" and site.network_name == "APNIC-LABS"
    assert site.enrich_state == "done" and site.enrich_gaps == []
    assert site.next_enrich_at == T0 + enrich_env.config.enrich.refresh_after
    ladder = _ladder(enrich_env, "www.themarquetry.com")
    assert ladder == [
        (1, "hosting", "helpdesk@apnic.net", "en"),  # AU network, .com: English
        (1, "owner", "security@themarquetry.com", "de"),  # its own Preferred-Languages
        (2, "registrar", "abuse@registrar.eu", "en"),
        (3, "cert", "cert@cert.example.au", "en"),
    ]
    with enrich_env.db.session() as s:
        reasons = s.scalars(select(Recipient.reason).order_by(Recipient.level)).all()
        assert "AS15169" in reasons[0] and "rdap:ip" in reasons[0]
        assert "security.txt" in reasons[1]
        assert "IANA id 1647" in reasons[2]
        kinds = s.scalars(select(Event.kind)).all()
        assert "site.enriched" in kinds and "incident.ladder" in kinds
    # the export shows the contacts with their sources
    with enrich_env.db.session() as s:
        (record,) = list(export_records(s))
    assert record["asn"] == 15169 and record["registrar"].startswith("Hosting Concepts")
    assert {(c["role"], c["email"], c["source"]) for c in record["contacts"]} == {
        ("hosting", "helpdesk@apnic.net", "rdap:ip"),
        ("owner", "security@themarquetry.com", "security.txt"),
        ("owner", "", "security.txt"),  # its https: Contact, a web form: shown, not mailed
        ("registrar", "abuse@registrar.eu", "rdap:domain"),
        ("cert", "cert@cert.example.au", "cert_contacts"),
    }
    form = next(c for c in record["contacts"] if c.get("kind") == "web-form")
    assert form["url"] == "https://themarquetry.com/report"


def test_jp_site_gets_japanese_and_expired_securitytxt_is_a_weak_hint(enrich_env) -> None:
    _sites(enrich_env, "www.shop.co.jp", "expired.themarquetry.com")
    summary = enrich_env.run()
    assert summary.partial == 0
    jp = _ladder(enrich_env, "www.shop.co.jp")
    assert jp[0] == (1, "hosting", "helpdesk@apnic.net", "ja")  # the ccTLD beats the AU network
    # the AU network's CSIRT states its own language in the CSV, and that comes first
    assert jp[-1] == (2, "cert", "cert@cert.example.au", "en")
    site = _site(enrich_env, "www.shop.co.jp")
    assert site.registered_domain == "shop.co.jp" and site.registrar is None  # no RDAP for .jp
    expired = _ladder(enrich_env, "expired.themarquetry.com")
    # issue 11: an expired file's mailbox is still used (confidence 0.4), and flagged
    assert [role for _, role, _, _ in expired] == ["hosting", "owner", "registrar", "cert"]
    sectxt = _site(enrich_env, "expired.themarquetry.com").meta["enrich"]["securitytxt"]
    assert sectxt["state"] == "expired" and sectxt["expired"] is True


def test_429_twice_then_answered_in_the_same_run(enrich_env, rdap_servers) -> None:
    _sites(enrich_env, "norway.no")
    summary = enrich_env.run()
    assert summary.done == 1
    site = _site(enrich_env, "norway.no")
    assert site.asn == 559 and site.country == "CH" and site.registrar == "Domeneshop AS"
    ladder = _ladder(enrich_env, "norway.no")
    assert ladder[0] == (1, "hosting", "abuse@switch.ch", "no")  # .no: Norwegian
    assert (2, "registrar", "kundeservice@domeneshop.no", "no") in ladder
    assert rdap_servers["limited"].log.count("/ip/130.59.1.1") == 3


def test_down_rdap_server_leaves_the_site_partial_then_fills_the_gap(
    enrich_env, rdap_servers
) -> None:
    (site_id,) = _sites(enrich_env, "www.google.com")
    summary = enrich_env.run()
    assert summary.partial == 1 and summary.gaps["rdap:ip"] == 1
    site = _site(enrich_env, "www.google.com")
    assert site.enrich_state == "partial" and site.enrich_gaps == ["rdap:ip"]
    assert site.next_enrich_at == T0 + enrich_env.config.enrich.retry_after
    assert site.registrar == "MarkMonitor Inc."  # what could be learnt was kept
    assert [r[1] for r in _ladder(enrich_env, "www.google.com")] == ["registrar"]
    # not due again before its retry time
    assert enrich_env.run().sites == 0
    # the server comes back: point its prefix at a live one and move time forward
    with enrich_env.db.session() as s:
        from enrich.service import Enricher

        due = Enricher(enrich_env.config, enrich_env.db, T0 + timedelta(hours=2)).due_site_ids(s)
    assert due == [site_id]
    rdap_servers["normal"].networks.append(
        (__import__("ipaddress").ip_network("13.64.0.0/11"), "msft")
    )
    config = enrich_env.config
    bootstrap = config.rdap.bootstrap_dir
    import json
    from pathlib import Path

    folder = enrich_env.tmp / "bootstrap-later"
    folder.mkdir()
    for name in ("ipv6.json", "dns.json", "asn.json"):
        (folder / name).write_text((Path(bootstrap) / name).read_text())
    ipv4 = json.loads((Path(bootstrap) / "ipv4.json").read_text())
    for service in ipv4["services"]:
        if "13.0.0.0/8" in service[0]:
            service[1] = [rdap_servers["normal"].url]
    (folder / "ipv4.json").write_text(json.dumps(ipv4))
    enrich_env.config = config.model_copy(
        update={"rdap": config.rdap.model_copy(update={"bootstrap_dir": str(folder)})}
    )
    try:
        later = enrich_env.run(now=T0 + timedelta(hours=2))
    finally:
        rdap_servers["normal"].networks.pop()
    assert later.done == 1
    site = _site(enrich_env, "www.google.com")
    assert site.enrich_state == "done" and site.enrich_gaps == []
    # no network country and a .com name: no CSIRT rung
    assert _ladder(enrich_env, "www.google.com") == [
        (1, "hosting", "abuse@microsoft.com", "en"),
        (2, "registrar", "abusecomplaints@markmonitor.com", "en"),
    ]


def test_rdap_cache_is_per_network_and_counts_hits(enrich_env, rdap_servers) -> None:
    hosts = [f"site{i}.themarquetry.com" for i in range(5)]
    with enrich_env.db.session() as s:
        for h in hosts:
            make_site(s, h)
    hosts_file = enrich_env.tmp / "hosts"
    hosts_file.write_text(
        hosts_file.read_text() + "".join(f"1.1.1.{100 + i} {h}\n" for i, h in enumerate(hosts))
    )
    summary = enrich_env.run()
    assert summary.done == 5
    # five sites on one network and one domain: one query each
    assert rdap_servers["normal"].log.count("/domain/themarquetry.com") == 1
    assert sum(p.startswith("/ip/1.1.1.") for p in rdap_servers["normal"].log) == 1
    assert summary.rdap_queries == 2 and summary.cache_hit_ratio == 0.8
    with enrich_env.db.session() as s:
        keys = set(s.scalars(select(RdapCache.key)))
    assert {"ip:1.1.1.0/24", "domain:themarquetry.com", "registrar:1647"} <= keys
    # a later run (another process) answers from the stored cache: no query at all
    rdap_servers.reset()
    again = enrich_sites(
        enrich_env.app(T0 + timedelta(minutes=5)),
        [_site(enrich_env, h).id for h in hosts],
        fetch_securitytxt=enrich_env.fetcher,
    )
    assert again.rdap_queries == 0 and again.cache_hit_ratio == 1.0
    assert rdap_servers["normal"].log == []


def test_negative_answers_are_cached_with_their_own_ttl(enrich_env, rdap_servers) -> None:
    hosts_file = enrich_env.tmp / "hosts"
    hosts_file.write_text(hosts_file.read_text() + "1.1.1.40 www.ghost-domain.com\n")
    ids = _sites(enrich_env, "www.shop.co.jp", "www.ghost-domain.com")
    first = enrich_env.run()
    assert first.done == 2  # "nothing there" is an answer, not a gap
    with enrich_env.db.session() as s:
        rows = {r.key: r for r in s.scalars(select(RdapCache))}
    ghost = rows["domain:ghost-domain.com"]  # the registry said 404
    assert ghost.negative and ghost.data is None
    assert ghost.expires_at == T0 + enrich_env.config.rdap.negative_ttl
    assert rows["domain:shop.co.jp"].negative  # no RDAP service for .jp in this bootstrap
    assert rows["ip:1.1.1.0/24"].expires_at == T0 + enrich_env.config.rdap.cache_ttl
    rdap_servers.reset()
    enrich_env.run(ids, now=T0 + timedelta(minutes=30))  # within the negative TTL
    assert "/domain/ghost-domain.com" not in rdap_servers["normal"].log
    enrich_env.run(ids, now=T0 + timedelta(hours=2))  # past it: asked again
    assert rdap_servers["normal"].log.count("/domain/ghost-domain.com") == 1


def test_cdn_front_is_noted_on_the_hosting_rung(enrich_env) -> None:
    _sites(enrich_env, "edge.example-cdn.com")
    enrich_env.run()
    site = _site(enrich_env, "edge.example-cdn.com")
    assert site.asn == 13335 and site.cdn == "Cloudflare"
    assert "CLOUDFLARENET" in site.meta["enrich"]["cdn"]


def test_a_site_that_moved_host_gets_the_new_network(enrich_env) -> None:
    (site_id,) = _sites(enrich_env, "www.themarquetry.com")
    enrich_env.run()
    assert _ladder(enrich_env, "www.themarquetry.com")[0][2] == "helpdesk@apnic.net"
    hosts_file = enrich_env.tmp / "hosts"
    hosts_file.write_text(
        hosts_file.read_text().replace(
            "1.1.1.10 www.themarquetry.com", "130.59.9.9 www.themarquetry.com"
        )
    )
    summary = enrich_env.run([site_id], now=T0 + timedelta(minutes=1))
    assert summary.done == 1
    site = _site(enrich_env, "www.themarquetry.com")
    assert site.ips == ["130.59.9.9"] and site.asn == 559
    assert site.meta["enrich"]["moved_from"] == ["1.1.1.10"]
    ladder = _ladder(enrich_env, "www.themarquetry.com")
    hosting = [r for r in ladder if r[1] == "hosting"]
    assert hosting == [(1, "hosting", "abuse@switch.ch", "de")]  # a Swiss network now
    assert (3, "cert", "cert@switch-cert.example.ch", "de") in ladder  # CSIRT follows the host
    with enrich_env.db.session() as s:
        emails = s.scalars(
            select(Contact.email)
            .join(SiteContact, SiteContact.contact_id == Contact.id)
            .where(SiteContact.site_id == site_id)
        ).all()
    assert "helpdesk@apnic.net" not in emails


def test_rfc2142_guesses_only_when_switched_on(enrich_env) -> None:
    _sites(enrich_env, "norway.no")
    enrich_env.config = enrich_env.config.model_copy(
        update={"enrich": enrich_env.config.enrich.model_copy(update={"rfc2142_guesses": True})}
    )
    enrich_env.run()
    with enrich_env.db.session() as s:
        owners = s.execute(
            select(Contact.email, SiteContact.confidence, SiteContact.source)
            .join(SiteContact, SiteContact.contact_id == Contact.id)
            .where(SiteContact.role == "owner")
        ).all()
    assert {o.email for o in owners} == {
        "abuse@norway.no",
        "security@norway.no",
        "webmaster@norway.no",
    }
    assert all(o.confidence < 0.5 and o.source == "rfc2142" for o in owners)
    notes = [n for n in _ladder(enrich_env, "norway.no") if n[1] == "owner"]
    assert len(notes) == 3


def test_unknown_hosts_and_hosts_file_names(enrich_env) -> None:
    assert set(HOSTS) >= {"www.google.com"}
    _sites(enrich_env, "nxdomain.invalid")
    summary = enrich_env.run()
    assert summary.partial == 1 and summary.gaps["dns"] == 1
    site = _site(enrich_env, "nxdomain.invalid")
    assert site.enrich_state == "partial" and "dns" in site.enrich_gaps
