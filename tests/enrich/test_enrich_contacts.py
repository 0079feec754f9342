"""Issue 11's contact cases against the sandbox's RDAP servers and sites, on both engines.

- abuse desks found above a network that names none: through the ``up`` link, through
  ``parentHandle`` alone, on the holder's org entity, two levels up; a parent on a server
  that is down is a ``hosting-contact`` gap, retried, filled once the server is up, and
  left standing (shown) after ``enrich.hosting_retries``;
- security.txt: a web form only (kept and shown, nobody mailed), a form and a mailbox
  (the mailbox written to), an expired file (its mailbox used, trusted less, flagged);
- CDNs known only by their ASN or only by their AS name: their abuse desk is told, and
  the notice says the origin is unknown.

Enrichment runs in-process (the real pipeline: DNS from the hosts file, pyasn, RDAP over
loopback, security.txt through the guarded fetcher); notices go to an outbox.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
from datetime import timedelta
from pathlib import Path

import pytest
from enrich_support import T0, make_site
from sqlalchemy import select

from enrich.service import enrich_sites
from notifier.service import notify
from store.db import Database
from store.models import Contact, Incident, Recipient, Site, SiteContact
from store.queries import export_records
from tocsin.app import App
from tocsin.clock import Clock
from tocsin.config import Config

RDAP_CASES = {  # site id -> where the abuse desk was found
    "contacts-parent-up": "parent network NET-127-10-40-0-23",
    "contacts-parent-handle": "parent network NET-127-10-42-0-23",
    "contacts-org": "org ORG-MERIDIAN",
    "contacts-parent-chain": "parent network NET-127-10-48-0-22",
}
CDN_CASES = {"cdn-asn-no-origin": ("Kestrel Edge", "AS64489")}
CDN_CASES["cdn-asname-origin-asset"] = ("Nimbus Edge Networks Ltd", "AS name NIMBUSEDGE-CDN")
SITES = [*RDAP_CASES, "contacts-parent-down", *CDN_CASES]


def _app(sandbox, db: Database, tmp: Path, now=T0, **enrich) -> App:
    tables = sandbox.config_tables(str(db.url), base_dir=tmp)
    tables["enrich"] = {**tables.get("enrich", {}), **enrich}
    tables["notify"]["max_evidence_age"] = "30d"  # no last-minute re-crawl here
    tables["rdap"]["rate_per_server"] = 200.0  # loopback: no need to space requests
    app = App(preset=Config.model_validate(tables), clock=Clock(frozen=now))
    app.__dict__["db"] = db
    return app


def _seed(sandbox, db: Database) -> dict[str, int]:
    with db.session() as s:
        return {
            sid: make_site(s, sandbox.sites[sid].host, url=sandbox.url(sid)).id for sid in SITES
        }


def _links(db: Database, site_id: int) -> dict[str, list[tuple[str, float, str]]]:
    out: dict[str, list[tuple[str, float, str]]] = {}
    with db.session() as s:
        rows = s.execute(
            select(SiteContact.role, Contact.email, SiteContact.confidence, SiteContact.note)
            .join(Contact, Contact.id == SiteContact.contact_id)
            .where(SiteContact.site_id == site_id)
        )
        for role, mail, confidence, note in rows:
            out.setdefault(role, []).append((mail, confidence, note or ""))
    return out


def _messages(folder: Path) -> dict[str, str]:
    """Recipient -> the text of the notice(s) written to them."""
    out: dict[str, str] = {}
    if not folder.exists():
        return out
    for raw in mailbox.Maildir(folder, factory=None, create=False):
        msg = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        text = " ".join(body.get_content().split()) if body else ""
        out[str(msg["To"]).lower()] = out.get(str(msg["To"]).lower(), "") + text
    return out


@pytest.mark.slow
def test_contacts_are_found_shown_and_told(sandbox, db: Database, tmp_path: Path) -> None:
    ids = _seed(sandbox, db)
    app = _app(sandbox, db, tmp_path)
    summary = enrich_sites(app)
    assert summary.gaps["hosting-contact"] == 1  # the parent on the down server

    with db.session() as s:
        sites = {sid: s.get(Site, ids[sid]) for sid in SITES}
        s.expunge_all()
    for sid, where in RDAP_CASES.items():
        provider = sandbox.providers[sandbox.sites[sid].provider]
        site, links = sites[sid], _links(db, ids[sid])
        assert site.enrich_state == "done", (sid, site.enrich_error)
        assert [m for m, _c, _n in links["hosting"]] == [provider.abuse_email], sid
        assert where in links["hosting"][0][2], links["hosting"]
        assert "registrar" in links, sid  # the other rungs as before

    # security.txt: a web form only, a form and a mailbox, an expired file
    forms = sites["contacts-parent-up"].meta["enrich"]["securitytxt"]["web_forms"]
    assert len(forms) == 1 and forms[0].startswith("https://www.harbourview-dental.com")
    assert forms[0].endswith("/report-a-vulnerability/")
    assert "owner" not in _links(db, ids["contacts-parent-up"])
    owner = _links(db, ids["contacts-parent-handle"])["owner"]
    assert [m for m, _c, _n in owner] == ["security@fjellstua-cabins.com"]
    assert sites["contacts-parent-handle"].meta["enrich"]["securitytxt"]["web_forms"]
    expired = _links(db, ids["contacts-org"])["owner"]
    assert [(m, c) for m, c, _n in expired] == [("security@meridian-yoga-studio.com", 0.4)]
    assert expired[0][2].startswith("expired ")
    assert sites["contacts-org"].meta["enrich"]["securitytxt"]["expired"] is True

    # the parent on the down server: a gap, shown and due again; nothing silently skipped
    down = sites["contacts-parent-down"]
    assert down.enrich_state == "partial" and "hosting-contact" in down.enrich_gaps
    gap = down.meta["enrich"]["hosting_gap"]
    assert gap["retrying"] and gap["attempts"] == 1 and "could not be asked" in gap["reason"]
    assert "hosting" not in _links(db, ids["contacts-parent-down"])
    assert down.next_enrich_at is not None

    # CDNs by ASN only and by AS name only: their desk is the level-1 rung, marked CDN
    with db.session() as s:
        for sid, (name, evidence) in CDN_CASES.items():
            site = sites[sid]
            assert site.cdn == name and site.meta["enrich"]["cdn"].startswith(evidence), sid
            assert site.meta["enrich"]["cdn_origin"] is None  # no crawl evidence here
            rungs = s.execute(
                select(Recipient.level, Recipient.role, Recipient.cdn, Contact.email)
                .join(Contact, Contact.id == Recipient.contact_id)
                .join(Incident, Incident.id == Recipient.incident_id)
                .where(Incident.site_id == ids[sid])
            ).all()
            provider = sandbox.providers[sandbox.sites[sid].provider]
            assert (1, "hosting", name, provider.abuse_email) in [tuple(r) for r in rungs], rungs

    # export shows the web form, the gap, the expiry
    with db.session() as s:
        records = {r["host"]: r for r in export_records(s, default_tlp="amber")}
    up = records["www.harbourview-dental.com"]
    assert {"role": "owner", "email": "", "source": "security.txt", "kind": "web-form",
            "url": forms[0]} in up["contacts"]  # fmt: skip
    assert records["www.tidewater-kayaks.com"]["enrichment"]["hosting_contact_missing"]
    assert records["www.meridian-yoga-studio.com"]["enrichment"]["security_txt_expired"]
    assert records["www.kestrel-ceramics.com"]["enrichment"]["cdn"] == "Kestrel Edge"

    # notices: who is told, and what the hosting notice says
    report = notify(app)
    assert not report.failed
    sent = _messages(tmp_path / "outbox")
    brightline = sent["abuse@brightline-upstream.net"]
    assert "asks for security reports through" in brightline
    assert "harbourview-dental[.]com" in brightline  # defanged, as every site URL is
    assert not any(to.endswith("@harbourview-dental.com") for to in sent)  # a form: no mail
    assert "security@fjellstua-cabins.com" in sent
    assert "security@meridian-yoga-studio.com" in sent
    assert "security.txt has expired" in sent["abuse@meridian-upstream.net"]
    for upstream in ("abuse@fjordlink-upstream.net", "abuse@cobblestone-upstream.net"):
        assert upstream in sent
    assert "origin host behind the CDN is unknown" in sent["abuse@kestrel-networks.se"]
    assert "origin host behind the CDN is unknown" in sent["abuse@nimbus-edge.ie"]
    assert "abuse@tidewater-upstream.net" not in sent  # not found yet: the gap shows it

    # the down server comes up: the retry fills the gap, and the hosting desk is told
    sandbox.bring_up_rdap("down")
    later = T0 + timedelta(hours=3)
    again = enrich_sites(_app(sandbox, db, tmp_path, later))
    assert again.sites == 1 and again.partial == 0
    with db.session() as s:
        down = s.get(Site, ids["contacts-parent-down"])
        assert down.enrich_state == "done" and down.enrich_gaps == []
        assert down.meta["enrich"]["hosting_gap"] is None
    hosting = _links(db, ids["contacts-parent-down"])["hosting"]
    assert [m for m, _c, _n in hosting] == ["abuse@tidewater-upstream.net"]
    notify(_app(sandbox, db, tmp_path, later))
    assert "abuse@tidewater-upstream.net" in _messages(tmp_path / "outbox")


@pytest.mark.slow
def test_a_hosting_gap_stays_shown_after_its_retries(sandbox, db: Database, tmp_path) -> None:
    with db.session() as s:
        site_id = make_site(
            s, sandbox.sites["contacts-parent-down"].host, url=sandbox.url("contacts-parent-down")
        ).id
    states = []
    for hours in (0, 3):
        enrich_sites(_app(sandbox, db, tmp_path, T0 + timedelta(hours=hours), hosting_retries=1))
        with db.session() as s:
            site = s.get(Site, site_id)
            states.append((site.enrich_state, site.enrich_gaps, site.meta["enrich"]["hosting_gap"]))
    (state1, gaps1, gap1), (state2, gaps2, gap2) = states
    assert state1 == "partial" and gaps1 == ["hosting-contact"] and gap1["retrying"]
    # retries spent: no longer due soon, but the gap is still there for everyone to see
    assert state2 == "done" and gaps2 == ["hosting-contact"]
    assert gap2["attempts"] == 2 and not gap2["retrying"]
    with db.session() as s:
        status_site = s.get(Site, site_id)
        assert status_site.enrich_error and "hosting contact" in status_site.enrich_error
        from store.queries import status_summary

        assert status_summary(s)["enrichment"]["hosting_contact_missing"] == 1
