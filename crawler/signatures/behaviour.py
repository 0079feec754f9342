"""Checks written in Python over what a check recorded: one function per family.

Each takes :class:`Facts` and returns findings. Evidence lines are written for
a person reading a notice: what, where, and by whom, with URLs defanged.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urljoin, urlsplit

from lxml import html as lxml_html

from crawler.browser import exfil
from crawler.browser.recorder import MARKERS
from crawler.items import CheckItem
from crawler.signatures import cloaking
from crawler.signatures.domains import Domains, host_of, path_of, registered_domain
from crawler.signatures.knownbad import KnownBad
from crawler.signatures.markup import extract as markup_text
from crawler.signatures.verdict import Finding
from tocsin.urls import defang

CARD_FIELD = re.compile(
    r"card.?num|cc.?num|cc-?number|cardnumber|credit.?card|card_?no|cvv|cvc|csc|cc-?csc|"
    r"security.?code|cc-?exp|expiry|card.?holder|cc-?name",
    re.I,
)
_INPUT_EVENTS = {"input", "change", "keyup", "keydown", "keypress", "blur", "focusout", "paste"}
_UPDATE_LURE = re.compile(
    r"(update|upgrade|install|download)\s+(your\s+|the\s+latest\s+)?(google\s+)?"
    r"(chrome|browser|firefox|edge|safari|opera)|"
    r"(browser|chrome|firefox|edge|safari)\s+(version\s+)?(is\s+)?(out\s*of\s*date|outdated|"
    r"too\s+old|not\s+up\s*to\s*date|needs?\s+(an?\s+)?update|requires?\s+(an?\s+)?update)|"
    r"critical\s+(security\s+)?update|ブラウザ.{0,10}(更新|アップデート)|"
    r"browser\s+ist\s+veraltet|aktualisieren\s+sie\s+(ihren\s+)?browser",
    re.I,
)
_CLICKFIX = re.compile(
    r"(win(dows)?\s*(key)?\s*\+\s*r|ctrl\s*\+\s*v|run\s+dialog).{0,400}"
    r"(powershell|mshta|cmd|paste)|verify\s+you\s+are\s+(a\s+)?human.{0,400}(win\s*\+\s*r|powershell)",
    re.I | re.S,
)
_PAYLOAD_LINK = re.compile(
    r"\.(exe|msi|msix|zip|rar|7z|js|jse|vbs|hta|apk|iso|img|scr|bat)(\?|$)", re.I
)
_MINING_FRAME = re.compile(
    r'"(type|method)"\s*:\s*"(auth|job|submit|login|getjob|mining\.(subscribe|authorize|submit|notify))"|'
    r'"(site_key|job_id|hashes)"\s*:',
    re.I,
)
_MINER_HOST = re.compile(
    r"coinhive|coin-hive|authedmine|crypto-?loot|coinimp|webminepool|minero\.cc|jsecoin|"
    r"cryptonight|\bpool\b|xmr|monero|miner",
    re.I,
)
# Brands phishing kits impersonate, with the registered domains that are really theirs.
BRANDS: dict[str, tuple[re.Pattern[str], tuple[str, ...]]] = {
    name: (re.compile(entry["pattern"], re.I), tuple(entry["domains"]))
    for name, entry in json.loads(
        Path(__file__).with_name("brands.json").read_text(encoding="utf-8")
    ).items()
}


@dataclass
class Facts:
    """A check's recorded facts, with the site's notion of "foreign"."""

    item: CheckItem
    domains: Domains
    known_bad: KnownBad
    resolve: Any  # host -> addresses (cached); for known-bad addresses
    browser: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, item: CheckItem, allow: list[str], known_bad: KnownBad, resolve: Any) -> Facts:
        return cls(item, Domains(host_of(item.url), allow), known_bad, resolve, item.browser or {})

    @property
    def site_host(self) -> str:
        return self.domains.site_host

    @property
    def served_html(self) -> str:
        return self.item.served_html or self.browser.get("served_html") or ""

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.browser.get("requests", [])

    def on_site(self, document: str | None) -> bool:
        """True when a request was made by one of the site's own documents."""
        if not document or not document.startswith("http"):
            return True
        return registered_domain(host_of(document)) == self.domains.site

    def where(self, url: str | None = None) -> str:
        return path_of(url or self.item.final_url or self.item.url)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _ioc(finding: Finding, url: str) -> None:
    finding.add_ioc("urls", url)
    host = host_of(url)
    try:
        import ipaddress

        ipaddress.ip_address(host)
        finding.add_ioc("ips", host)
    except ValueError:
        finding.add_ioc("domains", host)


def _who(initiator: dict[str, Any] | None, facts: Facts, document: str | None) -> str:
    if not initiator:
        return "a script"
    url = initiator.get("url")
    line = initiator.get("line")
    at = f" at line {line}" if line else ""
    if not url or (document and url.split("#")[0] == document.split("#")[0]):
        return f"inline script{at}"
    who = "first-party script" if not facts.domains.foreign(host_of(url)) else "script"
    return f"{who} {defang(url)}{at}"


# --------------------------------------------------------------------------- families


def _static_script_hosts(markup: str, base: str) -> set[str]:
    """Hosts of the ``<script src>`` tags in the HTML as served."""
    if not markup.strip():
        return set()
    try:
        doc = lxml_html.fromstring(markup)
    except (ValueError, lxml_html.etree.ParserError):
        return set()
    return {host_of(urljoin(base, src)) for src in doc.xpath("//script/@src")[:500]}


def injected_script(facts: Facts) -> Iterator[Finding]:
    static = _static_script_hosts(facts.served_html, facts.item.final_url or facts.item.url)
    seen: set[str] = set()
    for req in facts.requests:
        if req.get("type") != "script":
            continue
        url = req.get("url") or ""
        host = host_of(url)
        initiator = req.get("initiator") or {}
        if not facts.domains.foreign(host) or url in seen:
            continue
        if initiator.get("type") == "parser" or not facts.on_site(req.get("document")):
            continue
        by = initiator.get("url")
        if by and facts.domains.reputable(host_of(by)):
            continue  # a tag manager loading its own kind
        if host in static:
            continue  # a <script src> in the HTML as served: static, not injected at run time
        seen.add(url)
        document = req.get("document") or facts.item.final_url or facts.item.url
        when = ""
        if req.get("phase") == "clock":
            when = " after the page's clock was advanced (a delayed loader)"
        finding = Finding(
            "tocsin.injected-script",
            "injected-script",
            "malicious",
            0.9 if not by or not facts.domains.foreign(host_of(by)) else 0.8,
            [
                f"script {defang(url)} injected into {path_of(document)} by "
                f"{_who(initiator, facts, document)}{when}; it is not in the page as served"
            ],
            cluster=[f"host:{registered_domain(host)}"],
        )
        _ioc(finding, url)
        yield finding


def known_bad_host(facts: Facts) -> Iterator[Finding]:
    if not facts.known_bad:
        return
    candidates: list[tuple[str, str]] = [(facts.item.url, "the URL itself")]
    candidates += [(h.get("url") or "", "a redirect hop") for h in facts.item.redirect_chain]
    candidates += [(r.get("url") or "", f"{r.get('type') or 'resource'}") for r in facts.requests]
    candidates += [(f.get("src") or "", "iframe") for f in facts.browser.get("frames", [])]
    candidates += [(w.get("url") or "", "WebSocket") for w in facts.browser.get("websockets", [])]
    reported: set[str] = set()
    for url, what in candidates:
        host = host_of(url)
        if not host or host in reported:
            continue
        entry = facts.known_bad.match_host(host)
        via = ""
        if entry is None:
            for hop in facts.item.redirect_chain:
                if host_of(hop.get("url") or "") == host and hop.get("ip"):
                    entry = facts.known_bad.match_host(hop["ip"])
                    via = f" ({hop['ip']})"
            if entry is None and facts.resolve is not None:
                for address in facts.resolve(host):
                    entry = facts.known_bad.match_host(address)
                    if entry:
                        via = f" ({address})"
                        break
        if entry is None:
            continue
        reported.add(host)
        if what == "the URL itself":
            line = f"{defang(url)} is on a known-bad host{via}"
        else:
            line = f"{facts.where()} loads {what} {defang(url)} from a known-bad host{via}"
        finding = Finding(
            f"tocsin.known-bad:{entry}",
            "known-bad-host",
            "malicious",
            0.9,
            [line + f" (listed as {entry})"],
            cluster=[f"host:{registered_domain(host)}"],
        )
        _ioc(finding, url)
        yield finding


def hidden_iframe(facts: Facts) -> Iterator[Finding]:
    for frame in facts.browser.get("frames", []):
        src = frame.get("src") or ""
        if (
            not frame.get("hidden")
            or frame.get("in_noscript")
            or not facts.domains.foreign_url(src)
        ):
            continue
        where = facts.where(frame.get("parent") or None)
        finding = Finding(
            "tocsin.hidden-iframe",
            "hidden-iframe",
            "malicious",
            0.85,
            [f"hidden iframe to {defang(src)} ({frame['hidden']}) in {where}"],
            cluster=[f"host:{registered_domain(host_of(src))}"],
        )
        _ioc(finding, src)
        yield finding


_META_REFRESH = re.compile(
    r"""<meta[^>]+http-equiv\s*=\s*["']?refresh["']?[^>]*content\s*=\s*["']?\s*(\d*)\s*[;,]?\s*url\s*=\s*['"]?([^"'>\s]+)""",
    re.I,
)


def malicious_redirect(facts: Facts) -> Iterator[Finding]:
    reasons = {"scriptInitiated": "by script", "metaTagRefresh": "by a meta refresh",
               "httpHeaderRefresh": "by a Refresh header"}  # fmt: skip
    targets: dict[str, str] = {}
    navigations = facts.browser.get("navigations", [])
    for nav in navigations[1:]:
        url = nav.get("url") or ""
        if facts.domains.foreign_url(url):
            how = reasons.get(nav.get("reason") or "", "by the page")
            targets.setdefault(url, how)
    for delay, target in _META_REFRESH.findall(facts.served_html):
        url = urljoin(facts.item.final_url or facts.item.url, target)
        if facts.domains.foreign_url(url):
            targets.setdefault(url, f"by a meta refresh after {delay or 0}s")
    plain_location = None
    for hop in facts.item.redirect_chain:
        plain_location = hop.get("location") or plain_location
    for name, variant in facts.item.variants.items():
        location = variant.get("location")
        if location and location != plain_location and facts.domains.foreign_url(location):
            who = "search engines" if name == "bot" else "visitors coming from a search engine"
            targets.setdefault(location, f"only for {who} (a conditional server redirect)")
    for url, how in targets.items():
        host = host_of(url)
        finding = Finding(
            "tocsin.malicious-redirect",
            "malicious-redirect",
            "malicious",
            0.9,
            [f"{facts.where(facts.item.url)} sends visitors to {defang(url)} {how}"],
            cluster=[f"host:{registered_domain(host)}"],
        )
        _ioc(finding, url)
        yield finding


def drive_by_download(facts: Facts) -> Iterator[Finding]:
    for download in facts.browser.get("downloads", []):
        if download.get("phase") == "interaction" or not download.get("sha256"):
            continue
        category = download.get("category")
        risky = download.get("risky")
        url = download.get("url") or ""
        alone = ""
        if category in ("executable", "apk") and not facts.domains.foreign_url(url):
            # A vendor's "your download starts now" page: its own installer, from its own
            # site (or a reputable host), is no compromise by itself (executables.py).
            severity, confidence = "suspicious", 0.5
            alone = "; it comes from the site itself and nothing else marks it as malware"
        elif category in ("executable", "apk") or (
            category in ("archive", "script", "document") and risky
        ):
            severity, confidence = "malicious", 0.9
        elif category in ("archive", "script", "document"):
            severity, confidence = "suspicious", 0.5
        else:
            continue
        inner = f", containing {download['details'][0]}" if download.get("details") else ""
        finding = Finding(
            "tocsin.drive-by-download",
            "drive-by-download",
            severity,
            confidence,
            [
                f"{facts.where()} starts a download of {download.get('filename') or 'a file'} "
                f"({download.get('label')}{inner}; sha256 {download['sha256']}) from "
                f"{defang(url)} without a click{alone}"
            ],
            cluster=[f"sha256:{download['sha256']}", f"host:{registered_domain(host_of(url))}"],
        )
        _ioc(finding, url)
        finding.add_ioc("sha256", download["sha256"])
        yield finding


def fake_update(facts: Facts) -> Iterator[Finding]:
    bodies = facts.browser.get("bodies", {})
    for overlay in facts.browser.get("overlays", []):
        text = overlay.get("text") or ""
        if overlay.get("src"):
            body = bodies.get(overlay["src"])
            if body:
                text += " " + _text_of(body.decode("utf-8", "replace"))
        lure = _UPDATE_LURE.search(text) or _CLICKFIX.search(text)
        if not lure:
            continue
        links = [
            link
            for link in overlay.get("links", [])
            if link.get("download") or _PAYLOAD_LINK.search(urlsplit(link.get("href") or "").path)
        ]
        source = _foreign_script_hosts(facts)
        finding = Finding(
            "tocsin.fake-update",
            "fake-update",
            "malicious",
            0.95 if links else 0.85,
            [
                f"{facts.where()} is covered by a full-screen overlay "
                f"({int(overlay.get('coverage', 0) * 100)}% of the window) saying "
                f"\u201c{_excerpt(text, lure)}\u201d"
            ],
        )
        for link in links[:3]:
            href = link.get("href") or ""
            label = (link.get("text") or "").strip()[:60]
            finding.evidence.append(f"its button \u201c{label}\u201d downloads {defang(href)}")
            _ioc(finding, href)
            finding.cluster.append(f"host:{registered_domain(host_of(href))}")
        for url in source[:3]:
            finding.evidence.append(f"the overlay comes with script {defang(url)}")
            _ioc(finding, url)
        finding.cluster = [
            f"host:{registered_domain(host_of(u))}" for u in source[:1]
        ] + finding.cluster
        yield finding
        return


def _foreign_script_hosts(facts: Facts) -> list[str]:
    return _unique(
        [
            r["url"]
            for r in facts.requests
            if r.get("type") == "script" and facts.domains.foreign(host_of(r.get("url") or ""))
        ]
    )


def _decodings(text: str) -> list[str]:
    """``text`` as sent, URL-decoded, and with base64 or hex tokens decoded."""
    out = [text, unquote_plus(text)]
    for token in re.findall(r"[A-Za-z0-9+/_\-]{16,}={0,2}", out[1])[:50]:
        padded = token + "=" * (-len(token) % 4)
        for decoder in (base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(binascii.Error, ValueError):
                out.append(decoder(padded).decode("utf-8", "replace"))
                break
    for token in re.findall(r"(?:[0-9a-fA-F]{2}){12,}", text)[:20]:
        with contextlib.suppress(ValueError):
            out.append(bytes.fromhex(token).decode("utf-8", "replace"))
    return out


# A card-like number: 15 (Amex) or 16 (Visa, Mastercard, Discover) digits, Luhn-valid.
_CARD_LIKE = re.compile(r"(?<!\d)(3[47]\d{13}|[456]\d{15})(?!\d)")
CARD_LIKE = "a card-like number"


def luhn(number: str) -> bool:
    """The card-number checksum: a random run of digits passes one time in ten."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch) * (2 if i % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def _carries_test_data(event: dict[str, Any]) -> str | None:
    text = event.get("data")
    if text is None:  # a request record
        text = (event.get("url") or "") + "\n" + (event.get("post_data") or "")
    for decoded in _decodings(text):
        compact = re.sub(r"[\s-]", "", decoded)
        for marker in MARKERS:
            if marker.replace(" ", "") in compact:
                return marker
        if any(luhn(m) for m in _CARD_LIKE.findall(compact)):
            return CARD_LIKE
    return None


def exfil_events(facts: Facts) -> list[dict[str, Any]]:
    """Every channel data left the page by (:mod:`crawler.browser.exfil`)."""
    found = facts.browser.get("exfil")
    return found if found is not None else exfil.events(facts.browser)


def _exfiltration(facts: Facts) -> list[tuple[dict[str, Any], str | None]]:
    """Data sent to foreign hosts after the test data was typed, and whether it carries it.

    Every channel counts (fetch, XHR, beacon, image, form, WebSocket, WebRTC). A
    WebSocket frame or a data-channel message whose time is unknown counts only
    when it carries the test data.
    """
    out = []
    for event in exfil_events(facts):
        host = event.get("host") or host_of(event.get("url") or "")
        if event.get("channel") != "webrtc" and not facts.domains.foreign(host):
            continue
        if facts.domains.site == registered_domain(host):
            continue
        marker = _carries_test_data(event)
        if event.get("phase") in ("interaction", "clock") or marker:
            out.append((event, marker))
    return out


def _is_card(marker: str | None) -> bool:
    return bool(marker) and (marker == CARD_LIKE or str(marker).startswith("4111"))


_CHANNEL_NAMES = {
    "fetch": "fetch()",
    "xhr": "XMLHttpRequest",
    "beacon": "navigator.sendBeacon",
    "image": "an image URL",
    "form": "a posted form",
    "navigation": "a page load",
    "script": "a script URL",
    "websocket": "a WebSocket",
    "webrtc": "a WebRTC data channel",
}


def card_skimmer(facts: Facts) -> Iterator[Finding]:
    filled = facts.browser.get("interaction", {}).get("filled", [])
    if not any(f.startswith(("card:", "cvv:")) for f in filled):
        return
    listeners = [
        entry
        for entry in facts.browser.get("listeners", [])
        if entry.get("type") in _INPUT_EVENTS | {"click", "submit", "mousedown"}
        and (
            CARD_FIELD.search(" ".join(str(v) for v in (entry.get("target") or {}).values()))
            or (entry.get("target") or {}).get("tag") in ("#document", "window", "form", "body")
        )
    ]
    sent = _exfiltration(facts)
    leaks = [(event, marker) for event, marker in sent if _is_card(marker)]
    suspect = [(event, marker) for event, marker in sent if event.get("data")]
    if not leaks and not (listeners and suspect):
        return
    scripts = _unique(
        [
            (e.get("script") or {}).get("url", "")
            for e in listeners
            if (e.get("script") or {}).get("url")
        ]
    )
    fields = _unique(
        [f.split(":", 1)[1] for f in filled if f.startswith(("card:", "cvv:", "exp:"))]
    )
    evidence = []
    for script in scripts[:2]:
        events = _unique(
            [e["type"] for e in listeners if (e.get("script") or {}).get("url") == script]
        )
        evidence.append(
            f"script {defang(script)} listens to {', '.join(events[:4])} "
            f"on the payment form of {facts.where()}"
        )
    target = (leaks or suspect)[0][0]
    url = target.get("url") or ""
    host = target.get("host") or host_of(url)
    channel = _CHANNEL_NAMES.get(target.get("channel") or "", target.get("channel") or "request")
    if leaks:
        evidence.append(
            f"test card data typed into {facts.where()} ({', '.join(fields[:4]) or 'card fields'}) "
            f"was sent to {defang(url.split('?')[0])} (by {channel})"
        )
    else:
        evidence.append(
            f"after test card data was typed into {facts.where()}, "
            f"the page sent data to {defang(url.split('?')[0])} (by {channel})"
        )
    for other in _unique([_CHANNEL_NAMES.get(e.get("channel") or "", "") for e, _ in leaks[1:]])[
        :3
    ]:
        if other and other != channel:
            evidence.append(f"the card data also left by {other}")
    finding = Finding(
        "tocsin.card-skimmer",
        "card-skimmer",
        "malicious",
        0.97 if leaks else 0.8,
        evidence,
        cluster=[f"host:{registered_domain(host)}"],
    )
    if target.get("channel") == "webrtc":
        finding.add_ioc("domains", host)
    else:
        _ioc(finding, url.split("?")[0])
    for script in scripts[:2]:
        _ioc(finding, script)
    yield finding


def phishing(facts: Facts) -> Iterator[Finding]:
    forms = facts.browser.get("forms", [])
    has_password = bool(facts.browser.get("loose_passwords")) or any(
        any(f.get("type") == "password" for f in form.get("fields", [])) for form in forms
    )
    reported = False
    for form in forms:
        if not any(f.get("type") == "password" for f in form.get("fields", [])):
            continue
        action = form.get("action") or ""
        if facts.domains.foreign_url(action):
            finding = Finding(
                "tocsin.phishing.offsite-form",
                "phishing",
                "malicious",
                0.9,
                [f"login form on {facts.where()} sends the password to {defang(action)}"],
                cluster=[f"host:{registered_domain(host_of(action))}"],
            )
            _ioc(finding, action)
            reported = True
            yield finding
    for req, marker in _exfiltration(facts):
        if marker and marker.startswith("Tocsin-Test-Pw"):
            url = (req.get("url") or "").split("?")[0]
            finding = Finding(
                "tocsin.phishing.credential-exfil",
                "phishing",
                "malicious",
                0.95,
                [f"a test login typed into {facts.where()} was sent to {defang(url)}"],
                cluster=[f"host:{registered_domain(host_of(url))}"],
            )
            _ioc(finding, url)
            reported = True
            yield finding
            break
    if not has_password or reported:
        return
    title = facts.browser.get("title") or ""
    text = (facts.browser.get("text") or "")[:600]
    images = " ".join(facts.browser.get("images", []))
    for brand, (pattern, owned) in BRANDS.items():
        found = pattern.search(title) or pattern.search(text) or pattern.search(images)
        if not found:
            continue
        if facts.domains.site in owned or any(facts.site_host.endswith("." + d) for d in owned):
            continue
        finding = Finding(
            "tocsin.phishing.brand",
            "phishing",
            "malicious",
            0.85,
            [
                f"{facts.where()} asks for a password under the {brand} name "
                f"(\u201c{found.group(0)[:60]}\u201d) on {defang(facts.site_host)}, "
                f"which is not a {brand} domain"
            ],
            cluster=[f"brand:{brand.lower()}:{facts.domains.site}"],
        )
        _ioc(finding, facts.item.final_url or facts.item.url)
        yield finding
        return


def cryptominer(facts: Facts) -> Iterator[Finding]:
    for ws in facts.browser.get("websockets", []):
        frames = " ".join(ws.get("sent", []) + ws.get("received", []))
        found = [m.group(0) for m in _MINING_FRAME.finditer(frames)]
        url = ws.get("url") or ""
        if not found and not (_MINER_HOST.search(host_of(url)) and facts.domains.foreign_url(url)):
            continue
        tokens = _unique([re.sub(r'[\s"]', "", t) for t in found])
        finding = Finding(
            "tocsin.cryptominer.websocket",
            "cryptominer",
            "malicious",
            0.95 if found else 0.75,
            [
                f"{facts.where()} opens a WebSocket to {defang(url)}"
                + (f" speaking a mining protocol ({', '.join(tokens[:5])})" if tokens else "")
            ],
            cluster=[f"host:{registered_domain(host_of(url))}"],
        )
        _ioc(finding, url)
        yield finding
        return


def _text_of(markup: str) -> str:
    return markup_text(markup).text


def _excerpt(text: str, match: re.Match[str] | None = None, width: int = 100) -> str:
    if match is None:
        return text[:width]
    start = max(0, match.start() - 20)
    return " ".join(text[start : start + width].split())


def seo_cloaking(facts: Facts) -> Iterator[Finding]:
    """The bot or search-referrer copy against the rendered page (see :mod:`.cloaking`)."""
    yield from cloaking.seo_cloaking(facts)


def malware_download(facts: Facts) -> Iterator[Finding]:
    item = facts.item
    sniffed = item.meta.get("sniffed") or {}
    if item.route != "payload" or item.payload is None:
        return
    category = sniffed.get("category")
    if category not in ("executable", "apk", "archive", "script", "document"):
        return
    risky = sniffed.get("risky")
    declared = sniffed.get("declared") or ""
    mismatch = ""
    if declared and not _declared_fits(declared, sniffed.get("kind", "")):
        mismatch = f", served as {declared}"
    alone = ""
    if category in ("executable", "apk"):
        # Vendors serve installers every day: a program alone is suspicious; a
        # disguise or a bare-IP host makes it malicious (executables.py: more signals).
        if mismatch or _is_ip(host_of(item.final_url or item.url)):
            severity, confidence = "malicious", 0.9
        else:
            severity, confidence = "suspicious", 0.5
            alone = "; nothing else marks it as malware"
    elif risky:
        severity, confidence = "malicious", 0.85
    elif category == "archive":
        severity, confidence = "suspicious", 0.5
    else:
        return  # a plain script or document: only a rule match makes it a finding
    sha = item.meta.get("payload_sha256") or ""
    inner = ""
    if sniffed.get("details") and category in ("archive", "document", "script"):
        inner = f" ({', '.join(sniffed['details'][:3])})"
    finding = Finding(
        f"tocsin.payload.{sniffed.get('kind')}",
        "malware-download",
        severity,
        confidence,
        [
            f"{defang(item.final_url or item.url)} serves {sniffed.get('label')}{inner}"
            f"{mismatch} ({len(item.payload)} bytes, sha256 {sha}){alone}"
        ],
        cluster=[f"sha256:{sha}"],
    )
    _ioc(finding, item.final_url or item.url)
    finding.add_ioc("sha256", sha)
    yield finding


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _declared_fits(declared: str, kind: str) -> bool:
    fits = {
        "pe": ("msdownload", "octet-stream", "x-msdos", "x-dosexec", "exe", "portable-executable"),
        "zip": ("zip", "octet-stream", "compressed"),
        "apk": ("android", "octet-stream", "zip"),
        "elf": ("octet-stream", "x-executable", "x-elf", "x-sharedlib"),
        "msi": ("x-msi", "msi", "x-ole-storage", "msdownload", "octet-stream"),
        "jar": ("java-archive", "x-jar", "octet-stream", "zip"),
        "script": ("javascript", "script", "text/plain", "x-sh"),
        "ooxml": ("officedocument", "ms-word", "ms-excel", "macroenabled", "octet-stream"),
        "ole": ("msword", "ms-excel", "ms-powerpoint", "octet-stream"),
        "pdf": ("pdf",),
    }.get(kind, ("octet-stream",))
    return any(f in declared for f in fits)


CHECKS = (
    malware_download,
    injected_script,
    known_bad_host,
    hidden_iframe,
    malicious_redirect,
    drive_by_download,
    fake_update,
    card_skimmer,
    phishing,
    cryptominer,
    seo_cloaking,
)
