"""Phishing-kit traces: kit archives in open directory listings, and bot exfiltration.

Both are evidence under the ``phishing`` family:

- an open directory listing (Apache or nginx autoindex, and the like) holding
  archives named after a brand or after a kit (``office365.zip``, ``kit.zip``):
  the upload a phisher unpacked, left next to the kit;
- a page that sends what was typed into it to a messaging bot (Telegram's
  ``sendMessage``, a Discord or Slack webhook): kits do that so the phisher needs
  no server of their own. Seen sent (any channel), or wired into the page's
  scripts next to a password field (kits that send only on submit, which tocsin
  never does on a login form).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote, urljoin, urlsplit

from lxml import html as lxml_html

from crawler.signatures.behaviour import (
    BRANDS,
    Facts,
    _carries_test_data,
    _ioc,
    _is_card,
    _unique,
    exfil_events,
)
from crawler.signatures.domains import host_of, registered_domain
from crawler.signatures.verdict import Finding
from tocsin.urls import defang

_LISTING_TITLE = re.compile(r"^\s*(index of|directory listing for)\s+/", re.I)
_ARCHIVE = re.compile(r"\.(zip|rar|7z|tar\.gz|tgz|tar)$", re.I)
_KIT_WORD = re.compile(
    r"(?<![a-z])(kit|scam|scampage|phish|webmail|owa|log[-_ ]?in|sign[-_ ]?in|verif\w*|"
    r"secure[-_ ]?update|o365|office|wetransfer|onedrive|bank\w*)(?![a-z])",
    re.I,
)
# Messaging-bot APIs kits post stolen logins to: (name, URL pattern).
BOT_APIS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "Telegram bot",
        re.compile(r"api\.telegram\.org(?::\d+)?/bot[0-9]{5,12}:?[A-Za-z0-9_-]*/?\w*", re.I),
    ),
    (
        "Discord webhook",
        re.compile(
            r"(?:canary\.|ptb\.)?discord(?:app)?\.com(?::\d+)?/api/(?:v\d+/)?webhooks/[\w/-]+", re.I
        ),
    ),
    (
        "Slack webhook",
        re.compile(r"hooks\.slack\.com(?::\d+)?/(?:services|workflows)/[\w/-]+", re.I),
    ),
    (
        "Teams webhook",
        re.compile(r"[\w-]+\.webhook\.office\.com(?::\d+)?/webhookb2/[\w@/-]+", re.I),
    ),
)
_PASSWORD_HINT = re.compile(r"passw|passwd|\bpwd\b|\bpass\b|type=[\"']?password", re.I)


def _listing(facts: Facts) -> tuple[str, list[str]] | None:
    """The listing's title and its archive links, if the page is a directory listing."""
    markup = facts.served_html
    head = markup[:4000].lower()
    if "index of" not in head and "directory listing for" not in head:
        return None
    try:
        doc = lxml_html.fromstring(markup)
    except (ValueError, lxml_html.etree.ParserError):
        return None
    title = " ".join(" ".join(doc.xpath("//title//text()")).split())
    heading = " ".join(" ".join(doc.xpath("(//h1)[1]//text()")).split())
    if not (_LISTING_TITLE.match(title) or _LISTING_TITLE.match(heading)):
        return None
    base = facts.item.final_url or facts.item.url
    archives = []
    for href in doc.xpath("//a/@href")[:2000]:
        path = urlsplit(urljoin(base, href)).path
        if _ARCHIVE.search(path):
            archives.append(urljoin(base, href))
    return title or heading, archives


_HOSTLIKE = re.compile(r"(?i)\b((?:[a-z0-9-]+\.)+(?!(?:zip|rar|7z|gz|tgz|tar)\b)[a-z]{2,})\b")


def _plain(text: str, limit: int) -> str:
    """Page-chosen text for an evidence line: one line, bounded, host-like names defanged."""
    text = " ".join(text.split())[:limit]
    return _HOSTLIKE.sub(lambda m: m.group(1).replace(".", "[.]"), text)


def _kit_name(url: str) -> str | None:
    """Why an archive's name looks like a kit: the brand or the word, else None."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    spaced = re.sub(r"[-_.]+", " ", name)
    for brand, (pattern, _owned) in BRANDS.items():
        if pattern.search(spaced) or pattern.search(name):
            return brand
    found = _KIT_WORD.search(spaced)
    return f"\u201c{found.group(0)[:30]}\u201d" if found else None


def kit_listing(facts: Facts) -> Iterator[Finding]:
    found = _listing(facts)
    if not found:
        return
    title, archives = found
    kits = [(url, why) for url in archives if (why := _kit_name(url))]
    if not kits:
        return
    names = [urlsplit(url).path.rsplit("/", 1)[-1] for url, _ in kits]
    whys = _unique([why for _, why in kits])
    finding = Finding(
        "tocsin.phishing.kit-listing",
        "phishing",
        "malicious",
        0.85 if len(kits) == 1 else 0.9,
        [
            f"{defang(facts.item.final_url or facts.item.url)} is an open directory listing "
            f"(\u201c{_plain(title, 80)}\u201d) holding "
            f"{len(kits)} phishing-kit archive(s): {', '.join(_plain(n, 60) for n in names[:5])} "
            f"(named after {', '.join(whys[:4])})"
        ],
        cluster=[f"kit:{names[0].lower()[:60]}"],
    )
    for url, _ in kits[:5]:
        _ioc(finding, url)
    yield finding


def _bot(url: str) -> str | None:
    for name, pattern in BOT_APIS:
        if pattern.search(url):
            return name
    return None


def _scripts(facts: Facts) -> list[tuple[str, str]]:
    """(where, text) of the page's scripts: inline, fetched, and the page as served."""
    browser = facts.browser
    out = [(f"inline script of {facts.where()}", s) for s in browser.get("inline_scripts") or []]
    for url, body in (browser.get("bodies") or {}).items():
        if (browser.get("body_types") or {}).get(url) == "script":
            out.append((f"script {defang(url)}", body.decode("utf-8", "replace")))
    out.append((facts.where(), facts.served_html))
    return out


def bot_exfil(facts: Facts) -> Iterator[Finding]:
    """Logins sent to a messaging bot, seen leaving or wired into the page."""
    for event in exfil_events(facts):  # a bot API is never the site's, nor vouched for
        name = _bot(event.get("url") or "")
        marker = _carries_test_data(event) if name else None
        if not name or not marker or _is_card(marker):
            continue  # a card sent to a bot is the card-skimmer check's
        url = (event.get("url") or "").split("?")[0]
        what = "password" if marker.startswith("Tocsin-Test-Pw") else "login"
        finding = Finding(
            "tocsin.phishing.bot-exfil",
            "phishing",
            "malicious",
            0.97,
            [
                f"a test {what} typed into {facts.where()} was sent to a {name} "
                f"({defang(url)}, by {event.get('channel')})"
            ],
            cluster=[f"bot:{registered_domain(host_of(url))}:{urlsplit(url).path[:80]}"],
        )
        _ioc(finding, url)
        yield finding
        return
    forms = facts.browser.get("forms", [])
    has_password = bool(facts.browser.get("loose_passwords")) or any(
        any(f.get("type") == "password" for f in form.get("fields", [])) for form in forms
    )
    if not has_password:
        return
    for where, text in _scripts(facts):
        for name, pattern in BOT_APIS:
            found = pattern.search(text)
            if not found or not _PASSWORD_HINT.search(text):
                continue
            url = "https://" + found.group(0)
            finding = Finding(
                "tocsin.phishing.bot-wired",
                "phishing",
                "malicious",
                0.9,
                [
                    f"the login form of {facts.where()} is wired to a {name} "
                    f"({defang(url)}) in {where}"
                ],
                cluster=[f"bot:{registered_domain(host_of(url))}:{urlsplit(url).path[:80]}"],
            )
            _ioc(finding, url)
            yield finding
            return


CHECKS = (kit_listing, bot_exfil)
