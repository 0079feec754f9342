"""The origin behind a CDN, where the site's own evidence gives it away.

A CDN's abuse desk can forward a report or name the origin host, but cannot
clean it; a notice that can name the origin saves a round trip. Compromised
sites often reveal it themselves:

- a response header the origin or the proxy adds (``X-Origin``,
  ``X-Origin-Server``, ``X-Backend-Server``...), recorded by the crawl on each
  hop of the redirect chain (``origin_hints``);
- an absolute asset URL or link to an IP address (``http://203.0.113.7/wp-content/...``)
  left in the page by a site moved behind the CDN after install;
- a link to an origin-like name under the site's own domain
  (``origin.``, ``direct.``, ``backend.``...).

Only the stored evidence is read (the final DOM and the crawl's checks): no
request is made, the values are untrusted text and are validated as a host
name or an address before they are kept. The limits are in docs/enrich.md.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.evidence import EvidenceStore
from store.models import Check, Evidence, Site, Url

ORIGIN_HEADERS = (
    "x-origin",
    "x-origin-server",
    "x-origin-host",
    "x-backend-server",
    "x-backend-host",
    "x-real-server",
)
ORIGIN_LABELS = (
    "origin",
    "direct",
    "backend",
    "orig",
    "origin-www",
    "www-origin",
    "direct-connect",
)
ASSET_PATHS = ("/wp-content/", "/wp-includes/", "/assets/", "/static/", "/images/", "/media/")
MAX_DOM = 2 * 1024 * 1024  # bytes of a DOM blob read
MAX_CHECKS = 4  # the site's latest checks looked at
_URL = re.compile(r"""https?://([A-Za-z0-9.\-\[\]:]{1,260})(/[^\s"'<>()]*)?""")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def clean_origin(value: str) -> str:
    """An address or a host name from untrusted text, or "" (ports and paths dropped)."""
    text = value.strip().lower()
    if not text or len(text) > 300:
        return ""
    if "://" in text:
        text = urlsplit(text).netloc
    text = text.rsplit("@", 1)[-1]
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    text = text.rstrip(".")
    return text if _HOST.match(text) else ""


def origin_hints(headers: Mapping[Any, Any]) -> dict[str, str]:
    """The origin-revealing headers of one response (for the crawl's redirect chain)."""
    found: dict[str, str] = {}
    for name in ORIGIN_HEADERS:
        raw = headers.get(name) or headers.get(name.title())
        if isinstance(raw, bytes):
            raw = raw.decode("latin-1", "replace")
        if raw:
            value = clean_origin(str(raw))
            if value:
                found[name] = value
    return found


def origin_in_text(text: str, site: Site) -> tuple[str, str] | None:
    """(origin, evidence) from a page's text: an asset URL on an address, or an origin-like
    name under the site's own domain; None when the page reveals nothing."""
    own = {a.lower() for a in (site.ips or [])}
    host = (site.host or "").lower()
    domain = (site.registered_domain or "").lower()
    for match in _URL.finditer(text):
        candidate = clean_origin(match.group(1))
        path = match.group(2) or "/"
        if not candidate or candidate == host or candidate in own:
            continue
        try:
            ipaddress.ip_address(candidate)
            is_ip = True
        except ValueError:
            is_ip = False
        url = match.group(0)[:200]
        if is_ip and path.startswith(ASSET_PATHS):
            return candidate, f"an asset URL on the address: {url}"
        if (
            not is_ip
            and domain
            and candidate.endswith("." + domain)
            and candidate.split(".", 1)[0] in ORIGIN_LABELS
        ):
            return candidate, f"a link to an origin name under {domain}: {url}"
    return None


def find_origin(session: Session, site: Site, store: EvidenceStore) -> dict[str, str] | None:
    """The origin the site's latest checks reveal: ``{"origin", "evidence"}``, or None."""
    checks = list(
        session.scalars(
            select(Check)
            .join(Url, Url.id == Check.url_id)
            .where(Url.site_id == site.id)
            .order_by(Check.id.desc())
            .limit(MAX_CHECKS)
        )
    )
    for check in checks:
        for hop in check.redirect_chain or []:
            for name, value in (hop.get("origin") or {}).items():
                value = clean_origin(str(value))
                if value and value not in (site.ips or []) and value != site.host:
                    return {
                        "origin": value,
                        "evidence": f"{name} header on {hop.get('url', '')}"[:300],
                    }
    doms = session.scalars(
        select(Evidence.sha256).where(
            Evidence.check_id.in_([c.id for c in checks]), Evidence.kind == "dom"
        )
    ).all()
    for sha in _unique(doms):
        try:
            data = store.get(sha)[:MAX_DOM]
        except (OSError, ValueError):
            continue
        found = origin_in_text(data.decode("utf-8", "replace"), site)
        if found:
            return {"origin": found[0], "evidence": found[1][:300]}
    return None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def note_origins(session: Session, sites: Iterable[Site], store: EvidenceStore) -> None:
    """Record on each CDN-fronted site the origin its evidence reveals (or that none does)."""
    for site in sites:
        if not site.cdn:
            continue
        meta = dict(site.meta or {})
        enrich = dict(meta.get("enrich") or {})
        enrich["cdn_origin"] = find_origin(session, site, store)
        meta["enrich"] = enrich
        site.meta = meta
