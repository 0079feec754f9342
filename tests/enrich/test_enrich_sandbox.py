"""`tocsin enrich` against the sandbox internet: every compromised site ends with the right
network, registrar and contacts; a 429-twice RDAP server and a down one are handled, and
a later run fills the gaps. Runs the real CLI (security.txt through the guarded spider)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from enrich_support import T0, make_site
from sqlalchemy import select

from enrich.service import registered_domain
from store import migrate
from store.db import Database
from store.models import Contact, Incident, Recipient, Site, SiteContact
from tocsin.sandbox.catalogue import REGISTRARS, SUFFIX_REGISTRAR


def _seed(sandbox, db: Database) -> dict[str, object]:
    """Store every compromised catalogue site as the crawl would leave it."""
    specs = {}
    with db.session() as s:
        for spec in sandbox.select(["compromised"], include_scale=False):
            if spec.host in specs:
                continue
            specs[spec.host] = spec
            make_site(s, spec.host, url=sandbox.url(spec.id))
    return specs


def _registrar_for(host: str):
    domain = registered_domain(host)
    suffix = domain.split(".", 1)[1]
    return REGISTRARS[SUFFIX_REGISTRAR[suffix]]


def _contacts(db: Database, host: str) -> set[tuple[str, str, str]]:
    with db.session() as s:
        rows = s.execute(
            select(SiteContact.role, Contact.email, SiteContact.source)
            .join(Contact, Contact.id == SiteContact.contact_id)
            .join(Site, Site.id == SiteContact.site_id)
            .where(Site.host == host)
        )
        return {tuple(r) for r in rows}


@pytest.fixture
def sandbox_sqlite_cli(sandbox, sqlite_cli, tmp_path: Path):
    """The CLI on the sandbox with a SQLite store: the store paths run on both engines in
    test_service.py; this test is about the network side and costs CLI start-ups."""
    url = f"sqlite:///{tmp_path / 'tocsin.db'}"
    migrate.upgrade(Database(url))
    sqlite_cli.config = sandbox.write_config(tmp_path / "sandbox.toml", url)
    sqlite_cli.database_url = url
    return sqlite_cli


@pytest.mark.slow
def test_enrich_the_sandbox(sandbox, sandbox_sqlite_cli) -> None:
    sandbox_cli = sandbox_sqlite_cli
    db = Database(sandbox_cli.database_url)
    specs = _seed(sandbox, db)
    now = T0.isoformat()
    first = sandbox_cli("--now", now, "enrich")
    assert first.returncode == 1, first.stderr  # sites behind the down RDAP server: partial
    assert "partial" in first.stderr

    with db.session() as s:
        sites = {site.host: site for site in s.scalars(select(Site))}
    down = {h for h, spec in specs.items() if sandbox.providers[spec.provider].rdap == "down"}
    parent_down = {
        h
        for h, spec in specs.items()
        if sandbox.providers[spec.provider].abuse_via == "parent-down"
    }
    assert down, "the catalogue puts some compromised sites behind the down server"
    for host, spec in specs.items():
        provider = sandbox.providers[spec.provider]
        site = sites[host]
        assert site.ips == [spec.ip], host
        assert (site.asn, site.prefix, site.as_name) == (
            provider.asn,
            provider.cidr,
            provider.as_name,
        ), host
        registrar = _registrar_for(host)
        assert (site.registrar, site.registrar_iana_id) == (
            registrar.name,
            str(registrar.iana_id),
        ), host
        contacts = _contacts(db, host)
        assert ("registrar", registrar.abuse_email, "rdap:domain") in contacts, host
        owner = {c for c in contacts if c[0] == "owner"}
        if spec.security_txt in ("valid", "legacy", "expired", "web-form+mail"):
            domain = registered_domain(host)  # an expired file is still a hint (issue 11)
            assert owner == {("owner", f"security@{domain}", "security.txt")}, host
        else:
            assert owner == set(), host  # none, or a web form only: nobody to mail
        if host in down:
            assert site.enrich_state == "partial" and "rdap:ip" in site.enrich_gaps
            assert not any(c[0] == "hosting" for c in contacts)
        elif provider.abuse_via == "parent-down":  # the parent's server: a hosting gap
            assert site.enrich_state == "partial" and site.enrich_gaps == ["hosting-contact"]
            assert not any(c[0] == "hosting" for c in contacts)
        else:
            assert site.enrich_state == "done", (host, site.enrich_error)
            assert ("hosting", provider.abuse_email, "rdap:ip") in contacts, host
            assert site.country == provider.country
        assert site.shared_hosting == provider.shared_hosting, host
        assert (site.cdn is not None) == provider.cdn, host

    # the 429-twice server was asked three times per path and answered in the same run
    throttled = [
        h for h, spec in specs.items() if sandbox.providers[spec.provider].rdap == "throttled"
    ]
    assert throttled
    assert all(sites[h].enrich_state == "done" for h in throttled)

    # ladders: CDN noted, Japanese for the .jp site on the Japanese network
    with db.session() as s:
        rungs = s.execute(
            select(
                Site.host,
                Recipient.level,
                Recipient.role,
                Recipient.language,
                Recipient.cdn,
                Recipient.note,
            )
            .join(Incident, Incident.id == Recipient.incident_id)
            .join(Site, Site.id == Incident.site_id)
        ).all()
    jp = [r for r in rungs if r.host == "www.sakura-wagashi.co.jp"]
    assert {r.role for r in jp} == {"hosting", "owner", "registrar", "cert"}
    assert all(r.language == "ja" for r in jp)
    cdn_rungs = [r for r in rungs if r.cdn]
    assert cdn_rungs and all("CDN" in r.note for r in cdn_rungs)
    shared_rungs = [r for r in rungs if r.note and "shared hosting" in r.note]
    assert shared_rungs

    # the down server comes back; an hour later the gaps are filled
    sandbox.bring_up_rdap("down")
    later = sandbox_cli("--now", (T0 + timedelta(hours=2)).isoformat(), "enrich")
    assert later.returncode == 0, later.stderr
    with db.session() as s:
        states = dict(s.execute(select(Site.host, Site.enrich_state)).all())
    assert set(states.values()) == {"done"}
    for host in down | parent_down:
        provider = sandbox.providers[specs[host].provider]
        assert ("hosting", provider.abuse_email, "rdap:ip") in _contacts(db, host)

    # the export shows contacts with their sources
    exported = sandbox_cli("export", "--format", "json")
    assert exported.returncode == 0, exported.stderr
    records = {r["host"]: r for r in json.loads(exported.stdout)}
    jp_record = records["www.sakura-wagashi.co.jp"]
    assert jp_record["asn"] == sandbox.providers["hanami"].asn
    sources = {(c["role"], c["source"]) for c in jp_record["contacts"]}
    assert sources == {
        ("hosting", "rdap:ip"),
        ("owner", "security.txt"),
        ("registrar", "rdap:domain"),
        ("cert", "cert_contacts"),
    }
