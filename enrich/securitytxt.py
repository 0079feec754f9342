"""security.txt (RFC 9116): the site owner's own answer to "whom do I tell?".

Fetching happens through an SSRF-guarded fetcher (``enrich/fetch.py`` for
``tocsin enrich``, the crawl's engine in the item pipeline); this module decides
where to look (:func:`candidate_urls`), walks the candidates and redirects
(:class:`Walk`, shared by every fetcher) and reads the bytes with
``sectxt.Parser`` (never sectxt's own fetcher, which calls ``requests``
directly, past the guard). Expiry is judged against the
run's clock (``--now``), not sectxt's wall clock. An expired file is still a
hint (issue 11): its mail contact is used at the lowest confidence and flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import dateutil.parser
from sectxt import Parser

from enrich.language import normalise_tag
from enrich.rdap import clean_email

PATHS = ("/.well-known/security.txt", "/security.txt")
MAX_CONTACTS = 5
MAX_HOPS = 3  # redirects followed per candidate, each one a new, guarded request


def candidate_urls(host: str, origins: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Where to look, in order: ``https://host`` first, then each URL's own origin.

    Many compromised sites serve only http, or on an odd port; the sandbox serves
    the file on each site's own origin. Both paths are tried on each origin.
    """
    bases = [f"https://{host}"]
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            continue
        if parts.hostname.lower() != host.lower():
            continue  # only the site's own host: a redirect target is someone else
        base = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}".lower()
        if base.endswith(":443") and base.startswith("https://"):
            base = base[:-4]
        if base.endswith(":80") and base.startswith("http://"):
            base = base[:-3]
        if base not in bases:
            bases.append(base)
    return [base + path for base in bases for path in PATHS]


def looks_like_securitytxt(body: bytes) -> bool:
    """Cheap test that a 200 answer is a security.txt and not a soft-404 HTML page."""
    head = body[:2048].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        return False
    return b"contact:" in body[:65536].lower()


@dataclass
class SecurityTxt:
    """What a security.txt says that enrichment uses."""

    url: str
    emails: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    expires: datetime | None = None
    expired: bool = False
    errors: list[str] = field(default_factory=list)  # sectxt's error codes, for the record
    # https: Contact URIs (a report form): shown and named in notices, never mailed
    web_forms: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return bool(self.emails) and not self.expired

    @property
    def confidence(self) -> float:
        """A current, well-formed file is near-certain; a sloppy or undated one less so;
        an expired one is still a hint, the weakest (issue 11: used, and flagged)."""
        if self.expired:
            return 0.4
        if self.expires is None:
            return 0.7
        return 0.95 if not self.errors else 0.85


def _field(parser: Parser, name: str) -> list[str]:
    return [
        line["value"]
        for line in parser.lines
        if line.get("type") == "field" and line.get("field_name") == name
    ]


def parse(body: bytes, url: str, now: datetime) -> SecurityTxt:
    """Read a fetched security.txt; ``expired`` is judged against ``now``."""
    parser = Parser(body, urls=url)
    result = SecurityTxt(url=url)
    result.errors = sorted(
        {e["code"] for e in parser.errors if e["code"] not in ("expired", "no_https")}
    )
    expires = _field(parser, "expires")
    if expires:
        try:
            when = dateutil.parser.isoparse(expires[0].strip())
        except (ValueError, OverflowError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            result.expires = when.astimezone(UTC)
            result.expired = result.expires < now
    emails: list[str] = []
    forms: list[str] = []
    for value in _field(parser, "contact"):
        if value.lower().startswith("https://"):
            form = web_form(value)
            if form and form not in forms:
                forms.append(form)
            continue
        if not value.lower().startswith("mailto:"):
            continue  # RFC 9116 Contact is a URI; tel: and http: are not kept
        address = clean_email(value[7:].split("?", 1)[0])
        if address and address not in emails:
            emails.append(address)
    result.emails = emails[:MAX_CONTACTS]
    result.web_forms = forms[:MAX_CONTACTS]
    languages = _field(parser, "preferred-languages")
    if languages:
        tags = [normalise_tag(t) for t in languages[0].split(",")]
        result.languages = list(dict.fromkeys(t for t in tags if t))[:8]
    return result


def web_form(value: str) -> str:
    """An https: report-form URL as text safe to show and to put in a notice body, or "".

    Untrusted: one line, no spaces or control characters, no credentials, bounded.
    """
    text = value.strip()
    if len(text) > 300 or any(ch.isspace() or not ch.isprintable() for ch in text):
        return ""
    parts = urlsplit(text)
    if parts.scheme.lower() != "https" or not parts.hostname or "@" in parts.netloc:
        return ""
    if any(c in text for c in "<>\"'`\\"):
        return ""
    return text


def rfc2142_guesses(registered_domain: str | None) -> list[str]:
    """``abuse@``, ``security@`` and ``webmaster@`` the registered domain (RFC 2142)."""
    if not registered_domain:
        return []
    return [
        e
        for e in (
            clean_email(f"{box}@{registered_domain}") for box in ("abuse", "security", "webmaster")
        )
        if e
    ]


@dataclass
class Fetched:
    """What fetching one site's candidates gave.

    ``found``: a security.txt body; ``absent``: every candidate answered (404,
    an HTML page, connection refused) and none is a security.txt; ``error``:
    some candidate could not be asked (timeout, blocked...), so absence is not
    proven and a later run looks again.
    """

    state: str  # found | absent | error
    url: str = ""
    body: bytes = b""
    detail: str = ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Walk:
    """One site's way through its candidate URLs, whatever does the fetching.

    The fetcher asks for a URL, fetches it through the guard (each redirect hop
    is a new URL handed back here, so a new guarded request) and reports the
    answer or the failure. Every origin that fails at the connection level
    (refused, TLS, DNS, blocked, timeout) is skipped for its other path. The
    end is ``found``; ``absent`` when some origin answered and none had a
    security.txt; ``error`` when no origin answered at all (only timeouts), so
    a later run looks again.
    """

    def __init__(
        self, site_id: int, urls: list[str] | tuple[str, ...], *, max_bytes: int, timeout: float
    ) -> None:
        self.site_id = site_id
        self.urls = list(urls)
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.index = -1
        self.hops = 0
        self.dead: set[str] = set()
        self.answered = False
        self.errors: list[str] = []

    def first_url(self) -> str | Fetched:
        return self._next_url()

    def _next_url(self) -> str | Fetched:
        self.hops = 0
        while True:
            self.index += 1
            if self.index >= len(self.urls):
                if self.answered:
                    return Fetched("absent", detail="; ".join(self.errors[-3:]))
                return Fetched("error", detail="; ".join(self.errors[-3:]) or "no answer")
            url = self.urls[self.index]
            if _origin(url) not in self.dead:
                return url

    def answer(self, url: str, status: int, location: str | None, body: bytes) -> str | Fetched:
        """An HTTP answer from ``url``: a redirect to follow, the file, or the next candidate."""
        self.answered = True
        if 300 <= status < 400 and self.hops < MAX_HOPS and location:
            target = urljoin(url, location.strip())
            if urlsplit(target).scheme in ("http", "https"):
                self.hops += 1
                return target
        if status == 200 and looks_like_securitytxt(body[: self.max_bytes]):
            return Fetched("found", url=url, body=body[: self.max_bytes])
        self.errors.append(f"{url}: HTTP {status}")
        return self._next_url()

    def failure(self, url: str, reason: str, *, timed_out: bool) -> str | Fetched:
        """No answer from ``url``: its origin is skipped from now on."""
        origin = _origin(url)
        self.dead.add(origin)
        if not timed_out:
            self.answered = True  # refused, TLS, DNS, blocked: a definite "not here"
        self.errors.append(f"{origin}: {reason}")
        return self._next_url()
