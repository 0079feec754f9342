"""Who is who: registered domains (offline), and the third parties everyone loads.

"Foreign" in the behaviour checks means: a registered domain other than the
site's, and not a well-known third party (CDNs, analytics, fonts, video,
payment). The list is deliberately short and only of services a compromised
site does not control; ``signatures.allow_domains`` adds to it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import urlsplit

import tldextract

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # the bundled snapshot

REPUTABLE = frozenset(
    {
        # analytics, tags, ads
        "googletagmanager.com", "google-analytics.com", "googleadservices.com",
        "googlesyndication.com", "doubleclick.net", "google.com", "gstatic.com",
        "googleapis.com", "recaptcha.net", "hotjar.com", "clarity.ms", "bing.com",
        "facebook.net", "facebook.com", "fbcdn.net", "linkedin.com", "licdn.com",
        "twitter.com", "twimg.com", "x.com", "pinterest.com", "tiktok.com",
        "segment.com", "segment.io", "mixpanel.com", "newrelic.com", "nr-data.net",
        "cloudflareinsights.com", "yandex.ru", "yandex.net", "matomo.cloud",
        # CDNs and libraries
        "cloudflare.com", "jsdelivr.net", "unpkg.com", "jquery.com", "bootstrapcdn.com",
        "fontawesome.com", "typekit.net", "fonts.net", "wp.com", "wordpress.com",
        "gravatar.com", "shopify.com", "shopifycdn.com", "squarespace.com", "wixstatic.com",
        # video and embeds
        "youtube.com", "youtube-nocookie.com", "ytimg.com", "vimeo.com", "vimeocdn.com",
        "instagram.com", "spotify.com", "soundcloud.com",
        # payment and consent
        "stripe.com", "stripe.network", "paypal.com", "paypalobjects.com",
        "braintreegateway.com", "adyen.com", "klarna.com", "hcaptcha.com",
        "cookiebot.com", "onetrust.com", "cookielaw.org", "trustpilot.com",
        "intercom.io", "intercomcdn.com", "zendesk.com", "zdassets.com",
    }
)  # fmt: skip


@lru_cache(maxsize=65536)
def registered_domain(host: str) -> str:
    """``www.shop.example.co.uk`` -> ``example.co.uk``; an IP or a bare name stays as it is."""
    host = (host or "").lower().strip("[]").rstrip(".")
    if not host:
        return ""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    parts = _EXTRACT(host)
    found = getattr(parts, "top_domain_under_public_suffix", None)
    if found is None:  # tldextract < 5.3
        found = parts.registered_domain
    return found or host


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def path_of(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "/"
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class Domains:
    """Foreign or not, relative to one site."""

    def __init__(self, site_host: str, allow: Iterable[str] = ()) -> None:
        self.site_host = site_host.lower()
        self.site = registered_domain(site_host)
        self.allowed = REPUTABLE | {a.lower().lstrip(".") for a in allow}

    def reputable(self, host: str) -> bool:
        rd = registered_domain(host)
        return rd in self.allowed or host.lower() in self.allowed

    def foreign(self, host: str) -> bool:
        """A host that is neither the site's (same registered domain) nor reputable."""
        if not host:
            return False
        rd = registered_domain(host)
        return rd != self.site and not self.reputable(host)

    def foreign_url(self, url: str) -> bool:
        if not url.startswith(("http://", "https://", "ws://", "wss://")):
            return False
        return self.foreign(host_of(url))
