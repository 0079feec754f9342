"""A program served by a compromised site is malware, even with nothing else on it.

An executable alone is only ``suspicious`` (a vendor's installer looks the same;
:mod:`crawler.signatures.executables`). What the verdict engine cannot see is the
site: the store writer knows which sites have an open incident, and which were
found compromised in the same batch. Such a site's lone executable is malicious
(rule ``tocsin.payload.on-compromised-site``) and joins the site's incident.

Limit: a payload checked before its site's page (an earlier batch, or a page never
fed to tocsin) stays suspicious until it is checked again.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.items import CheckItem
from crawler.signatures.domains import host_of
from store.incidents import OPEN_STATES
from store.models import Incident, Site
from tocsin.urls import defang

ON_COMPROMISED_SITE = "tocsin.payload.on-compromised-site"


def executable_only(item: CheckItem) -> bool:
    """A payload check that is suspicious only because the file is a program."""
    sniffed = item.meta.get("sniffed") or {}
    return (
        item.verdict == "suspicious"
        and item.route == "payload"
        and item.family == "malware-download"
        and sniffed.get("category") in ("executable", "apk")
    )


def corroborate(session: Session, items: list[CheckItem]) -> int:
    """Make lone executables on compromised sites malicious; returns how many."""
    lone = [item for item in items if executable_only(item)]
    if not lone:
        return 0
    hosts = {host_of(item.url).lower() for item in lone}
    in_batch = {
        host_of(item.url).lower()
        for item in items
        if item.verdict == "malicious" and host_of(item.url).lower() in hosts
    }
    tickets = dict(
        session.execute(
            select(Site.host, Incident.public_id)
            .join(Incident, Incident.site_id == Site.id)
            .where(Site.host.in_(hosts), Incident.state.in_(OPEN_STATES))
            .order_by(Incident.id.desc())
        ).all()
    )
    upgraded = 0
    for item in lone:
        host = host_of(item.url).lower()
        if host in tickets:
            why = f"an open incident ({tickets[host]})"
        elif host in in_batch:
            why = "another of its URLs found malicious in the same crawl"
        else:
            continue
        item.verdict = "malicious"
        item.confidence = max(item.confidence or 0.0, 0.85)
        item.rules = [*item.rules, ON_COMPROMISED_SITE]
        item.evidence_lines = [
            f"{defang(item.final_url or item.url)} is served by {host}, a compromised site: {why}",
            *item.evidence_lines,
        ]
        upgraded += 1
    return upgraded
