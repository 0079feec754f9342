"""RDAP through whoisit: who runs a network, who registered a domain, and their abuse desks.

whoisit supplies the bootstrap tables, the URL construction and the response
parser. The HTTP query is ours, on aiohttp (one keep-alive pool per run: at
10,000 domains whoisit's httpx path spent more time in its connection pool
than in the queries). Around it this module adds what a crawler of other
people's servers owes them and what an untrusted answer needs:

- an **offline bootstrap** from ``rdap.bootstrap_dir`` (IANA's files; empty means
  the snapshot bundled under ``enrich/data/rdap``), per client, not whoisit's
  process-wide one;
- **politeness per server**: a minimum interval between requests
  (``rdap.rate_per_server``), bounded concurrency (``rdap.concurrency``),
  429 + ``Retry-After`` obeyed (a short wait is taken in-run, a long one defers
  the lookup to a later run), and a server that keeps failing is left alone for
  the rest of the run;
- **bounded answers**: a size cap, a timeout, ``http://`` refused unless
  ``rdap.allow_insecure`` (sandbox only), redirects (at most three) followed
  by hand, each hop re-checked and spaced like a first request;
- **no state between lookups**: every result is built from that one response
  (IntelMQ's RDAP expert once carried one event's roles into the next).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import ssl
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from whoisit.bootstrap import BaseBootstrap
from whoisit.errors import (
    BootstrapError,
    ParseError,
    QueryError,
    ResourceDoesNotExist,
    UnsupportedError,
)
from whoisit.parser import parse as whoisit_parse
from whoisit.parser import parse_public_ids, parse_vcard
from whoisit.query import QueryBuilder

from tocsin import __version__
from tocsin.clock import utcnow
from tocsin.config import RdapConfig
from tocsin.errors import ConfigError
from tocsin.net.body import read_capped
from tocsin.net.retry import parse_retry_after

log = logging.getLogger(__name__)

BUNDLED_BOOTSTRAP = Path(__file__).with_name("data") / "rdap"
BOOTSTRAP_FILES = {"asn": "asn.json", "dns": "dns.json", "ipv4": "ipv4.json", "ipv6": "ipv6.json"}
USER_AGENT = f"tocsin/{__version__} (abuse notification; RDAP client)"
MAX_REDIRECTS = 3


# --- results -----------------------------------------------------------------------------


@dataclass
class NetworkInfo:
    """An IP network's registration: who holds it and where to report abuse."""

    handle: str = ""
    name: str = ""  # the network's name (e.g. GOOGLE-IPV6)
    org: str = ""  # the holder's name (e.g. Google LLC)
    country: str = ""
    cidrs: list[str] = field(default_factory=list)
    abuse_email: str = ""
    abuse_phone: str = ""
    abuse_name: str = ""
    server: str = ""
    abuse_from: str = ""  # "" (its own entity) or where the walk found it (enrich/rdap_parent.py)
    abuse_gap: str = ""  # why the walk could not finish this run (a parent down...): retry

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkInfo:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class RegistrarInfo:
    """A registered domain's sponsoring registrar and its abuse desk."""

    domain: str = ""
    registrar: str = ""
    iana_id: str = ""
    handle: str = ""
    abuse_email: str = ""
    abuse_phone: str = ""
    abuse_from: str = ""  # "abuse" (a nested abuse entity) or "registrar" (its own vCard)
    country: str = ""
    server: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegistrarInfo:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Outcome:
    """One lookup's end: a result, a negative answer, or a failure to retry later."""

    kind: str  # ip | domain
    key: str  # the address or the domain
    result: NetworkInfo | RegistrarInfo | None = None
    negative: bool = False  # the registry says there is nothing (404, no RDAP service)
    error: str | None = None  # a transient failure: 429, down, timeout, bad answer
    retry_at: datetime | None = None  # the server's Retry-After, when it gave one
    server: str = ""
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


# --- extraction from whoisit's parsed answers --------------------------------------------


def _clean(value: Any, limit: int = 255) -> str:
    """Untrusted text from a registry: one line, no control characters, bounded."""
    text = "" if value is None else str(value)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(text.split())[:limit]


def clean_email(value: Any) -> str:
    """A plausible single mailbox, lower-cased domain, or "" (never CR/LF, commas, spaces)."""
    text = _clean(value, 320).strip().strip("<>")
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if text.count("@") != 1 or any(c in text for c in ' ,;:"()[]\\<>'):
        return ""
    local, _, domain = text.partition("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        return ""
    return f"{local}@{domain.lower()}"


def _entities_from_raw(raw: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Role -> entities, nested ones included: the fallback when whoisit cannot parse."""
    out: dict[str, list[dict[str, Any]]] = {}

    def walk(entities: Any, parent: str, depth: int) -> None:
        if not isinstance(entities, list) or depth > 8:
            return
        for entity in entities:
            if not isinstance(entity, dict):
                continue
            handle = _clean(entity.get("handle")).upper()
            card = dict(parse_vcard(entity.get("vcardArray")) or {})
            card["handle"] = handle
            card["public_ids"] = parse_public_ids(entity.get("publicIds", []))
            if parent:
                card["parent_handle"] = parent
            for role in entity.get("roles") or []:
                out.setdefault(str(role).lower(), []).append(card)
            walk(entity.get("entities"), handle, depth + 1)

    walk(raw.get("entities"), "", 0)
    return out


def _parse(kind: str, query: str, raw: dict[str, Any], bootstrap: BaseBootstrap) -> dict:
    """whoisit's parse, or a minimal one when the answer is too odd for it."""
    if not isinstance(raw, dict):
        raise ParseError("RDAP answer is not a JSON object")
    # Dates are never used, and parsing every event's date was half of whoisit's time.
    undated = {k: v for k, v in raw.items() if k != "events"}
    try:
        return whoisit_parse(bootstrap, kind, query, undated)
    except Exception as exc:  # whoisit trips over missing handles, events without actions...
        log.debug("whoisit could not parse %s %s (%s); using the raw answer", kind, query, exc)
        return {
            "handle": _clean(raw.get("handle")).upper(),
            "name": _clean(raw.get("ldhName") or raw.get("name")),
            "country": _clean(raw.get("country")),
            "cidrs": [],
            "entities": _entities_from_raw(raw),
            "start_address": _clean(raw.get("startAddress")),
            "end_address": _clean(raw.get("endAddress")),
        }


def _email_of(entity: dict[str, Any]) -> str:
    """The entity's mailbox; of several (an APNIC IRT lists ``irt@`` and ``abuse@``),
    the ``abuse``-like one."""
    emails = [
        e
        for e in (clean_email(c) for c in [entity.get("email"), *(entity.get("emails") or [])])
        if e
    ]
    for email in emails:
        if "abuse" in email.split("@")[0].lower():
            return email
    return emails[0] if emails else ""


def _best_abuse(candidates: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The abuse entity to write to: one with a mailbox, preferring an ``abuse@``-like one.

    Registries often list a generic technical role that also carries ``abuse``
    next to a dedicated abuse role (ARIN's Google network does); the dedicated
    mailbox is the one that is read.
    """
    with_mail = [e for e in candidates if _email_of(e)]
    if not with_mail:
        return None
    return max(
        enumerate(with_mail),
        key=lambda pair: ("abuse" in _email_of(pair[1]).split("@")[0], -pair[0]),
    )[1]


def network_from_parsed(parsed: dict[str, Any], server: str = "") -> NetworkInfo:
    """The network, its holder and its abuse contact, from one parsed answer."""
    entities = parsed.get("entities") or {}
    abuse = _best_abuse(entities.get("abuse", []))
    org = ""
    country = _clean(parsed.get("country"), 2).upper()
    for registrant in entities.get("registrant", []):
        if not org and registrant.get("name"):
            org = _clean(registrant.get("name"))
        reg_country = _clean((registrant.get("address") or {}).get("country"))
        if not country and len(reg_country) == 2 and reg_country.isalpha():
            country = reg_country.upper()
    cidrs = [str(c) for c in parsed.get("cidrs") or []]
    if not cidrs and parsed.get("network"):
        cidrs = [str(parsed["network"])]
    if not cidrs and parsed.get("start_address") and parsed.get("end_address"):
        try:
            cidrs = [
                str(n)
                for n in ipaddress.summarize_address_range(
                    ipaddress.ip_address(parsed["start_address"]),
                    ipaddress.ip_address(parsed["end_address"]),
                )
            ]
        except (TypeError, ValueError):
            cidrs = []
    return NetworkInfo(
        handle=_clean(parsed.get("handle")),
        name=_clean(parsed.get("name")),
        org=org or _clean(parsed.get("name")),
        country=country if len(country) == 2 else "",
        cidrs=cidrs[:64],
        abuse_email=_email_of(abuse) if abuse else "",
        abuse_phone=_clean((abuse or {}).get("tel"), 64),
        abuse_name=_clean((abuse or {}).get("name")),
        server=server,
    )


def registrar_from_parsed(domain: str, parsed: dict[str, Any], server: str = "") -> RegistrarInfo:
    """The sponsoring registrar, its IANA id and abuse desk, from one parsed domain answer."""
    entities = parsed.get("entities") or {}
    registrars = entities.get("registrar", [])
    registrar = registrars[0] if registrars else {}
    handle = _clean(registrar.get("handle"))
    iana_id = ""
    for public_id in registrar.get("public_ids") or []:
        if "iana" in str(public_id.get("type", "")).lower():
            iana_id = _clean(public_id.get("identifier"), 32)
            break
    abuse_candidates = entities.get("abuse", [])
    nested = [e for e in abuse_candidates if handle and e.get("parent_handle") == handle]
    abuse = _best_abuse(nested) or _best_abuse(abuse_candidates)
    abuse_from = "abuse" if abuse else ""
    if abuse is None and _email_of(registrar):
        abuse, abuse_from = registrar, "registrar"
    country = _clean((registrar.get("address") or {}).get("country"))
    return RegistrarInfo(
        domain=domain,
        registrar=_clean(registrar.get("name")) or handle,
        iana_id=iana_id,
        handle=handle,
        abuse_email=_email_of(abuse) if abuse else "",
        abuse_phone=_clean((abuse or {}).get("tel"), 64),
        abuse_from=abuse_from,
        country=country.upper() if len(country) == 2 and country.isalpha() else "",
        server=server,
    )


# --- bootstrap -----------------------------------------------------------------------------


class Bootstrap(BaseBootstrap):
    """IANA's service registry, loaded from files, held per client.

    Unlike whoisit's default, an address outside every listed range gets no
    server when it is not globally routable (no point asking ARIN about
    10.0.0.1), while a private range that the bootstrap lists explicitly (the
    sandbox's) is served by the server listed for it.
    """

    def _find(self, table: str, value: Any) -> tuple[tuple[str, ...], bool]:
        if not self.is_bootstrapped():
            raise BootstrapError("No bootstrap data is loaded")
        for prefix, endpoints in self._parsed_data[table].items():
            if value.version == prefix.version and value in prefix:
                return tuple(_prefer_https(endpoints)), True
        if not value.is_global:
            raise UnsupportedError(f"{value} is not a public address and no RDAP service lists it")
        return self.get_fallback_endpoints(), False

    def get_ipv4_endpoints(self, ipv4: Any) -> tuple[tuple[str, ...], bool]:
        return self._find("ipv4", ipv4)

    def get_ipv6_endpoints(self, ipv6: Any) -> tuple[tuple[str, ...], bool]:
        return self._find("ipv6", ipv6)


def _prefer_https(endpoints: Iterable[str]) -> list[str]:
    return sorted(endpoints, key=lambda url: not url.lower().startswith("https://"))


def load_bootstrap(directory: str = "", *, allow_insecure: bool = False) -> Bootstrap:
    """Read ``dns.json``, ``ipv4.json``, ``ipv6.json`` and ``asn.json`` from a folder."""
    folder = Path(directory) if directory else BUNDLED_BOOTSTRAP
    data: dict[str, Any] = {"timestamp": 0}
    for name, filename in BOOTSTRAP_FILES.items():
        path = folder / filename
        try:
            data[name] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("rdap.bootstrap_dir", f"missing {filename} in {folder}") from None
        except (OSError, ValueError) as exc:
            raise ConfigError("rdap.bootstrap_dir", f"{path}: not JSON ({exc})") from None
    objects = folder / "object-tags.json"
    if not objects.is_file():
        objects = BUNDLED_BOOTSTRAP / "object-tags.json"
    data["object"] = json.loads(objects.read_text(encoding="utf-8"))
    for name in ("asn", "ipv4", "ipv6", "dns"):
        if not data[name].get("services"):  # whoisit refuses an empty table
            data[name] = {"services": [[["0" if name == "asn" else "invalid"], ["https://x./"]]]}
            if name in ("ipv4", "ipv6"):
                net = "0.0.0.0/32" if name == "ipv4" else "::/128"
                data[name] = {"services": [[[net], ["https://x./"]]]}
    bootstrap = Bootstrap()
    try:
        bootstrap.load_bootstrap_data(data, allow_insecure=allow_insecure, from_json=False)
    except BootstrapError as exc:
        raise ConfigError("rdap.bootstrap_dir", f"{folder}: {exc}") from None
    bootstrap.known_servers = {  # type: ignore[attr-defined]
        RdapClient.server(url)
        for name in ("asn", "ipv4", "ipv6", "dns")
        for service in data[name].get("services", [])
        if isinstance(service, list) and len(service) == 2
        for url in service[1]
        if isinstance(url, str)
    }
    return bootstrap


# --- politeness -----------------------------------------------------------------------


@dataclass
class _Server:
    """What we owe one RDAP server: spacing, its Retry-After, and our patience with it."""

    next_slot: float = 0.0
    blocked_until: float = 0.0
    retry_after: float | None = None
    failures: int = 0
    requests: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


_TLS: dict[bool, ssl.SSLContext] = {}


def _tls_context(insecure: bool) -> ssl.SSLContext:
    """One TLS context per process (loading the CA bundle costs a tenth of a second)."""
    if insecure not in _TLS:
        context = ssl.create_default_context()
        if insecure:  # the sandbox's self-signed servers only (rdap.allow_insecure)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        _TLS[insecure] = context
    return _TLS[insecure]


class ServerDeferred(Exception):
    """A server asked us to come back later (or keeps failing): not a negative answer."""

    def __init__(self, message: str, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


# --- the client ------------------------------------------------------------------------


class RdapClient:
    """Async RDAP lookups for one run. Use as ``async with RdapClient(...) as client``."""

    def __init__(
        self,
        config: RdapConfig,
        *,
        clock: Any = None,
        bootstrap: Bootstrap | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or utcnow
        self.bootstrap = bootstrap or load_bootstrap(
            config.bootstrap_dir, allow_insecure=config.allow_insecure
        )
        self._builder = QueryBuilder(self.bootstrap)
        self.servers: dict[str, _Server] = {}
        self._slots = asyncio.Semaphore(config.concurrency)
        self._http: aiohttp.ClientSession | None = None
        # Servers an ``up`` link may send the parent walk to (enrich/rdap_parent.py).
        self.bootstrap_servers: set[str] = set(getattr(self.bootstrap, "known_servers", ()))

    async def __aenter__(self) -> RdapClient:
        # One pool for the run: keep-alive connections to each server, at most
        # ``concurrency`` in use (the semaphore in _run bounds them too).
        connector = aiohttp.TCPConnector(
            limit=self.config.concurrency,
            ssl=_tls_context(self.config.allow_insecure),
            keepalive_timeout=30.0,
        )
        self._http = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": USER_AGENT, "Accept": "application/rdap+json"},
            timeout=aiohttp.ClientTimeout(total=self.config.timeout.total_seconds()),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @staticmethod
    def server(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    async def wait_turn(self, server: str) -> None:
        """Space requests to one server and honour its Retry-After across all our tasks."""
        state = self.servers.setdefault(server, _Server())
        async with state.lock:
            now = time.monotonic()
            start = max(now, state.next_slot, state.blocked_until)
            state.next_slot = start + 1.0 / self.config.rate_per_server
        if start > now:
            await asyncio.sleep(start - now)

    # public lookups

    async def lookup_ip(self, address: str) -> Outcome:
        try:
            value = ipaddress.ip_address(address)
        except ValueError:
            return Outcome("ip", address, negative=True, error=None)
        try:
            endpoints = (
                self.bootstrap.get_ipv4_endpoints(value)
                if value.version == 4
                else self.bootstrap.get_ipv6_endpoints(value)
            )[0]
        except (UnsupportedError, BootstrapError) as exc:
            return Outcome("ip", address, negative=True, error=None, server=str(exc)[:100])
        url = self._builder.construct_url(_prefer_https(endpoints)[0], "ip", str(value))
        return await self._run("ip", address, url)

    async def lookup_domain(self, domain: str) -> Outcome:
        domain = domain.lower().rstrip(".")
        try:
            endpoints = self._domain_endpoints(domain)
        except (UnsupportedError, BootstrapError):
            return Outcome("domain", domain, negative=True)
        url = self._builder.construct_url(_prefer_https(endpoints)[0], "domain", domain)
        return await self._run("domain", domain, url)

    def _domain_endpoints(self, domain: str) -> tuple[str, ...]:
        labels = domain.split(".")
        for i in range(len(labels) - 1):  # the longest suffix the registry lists wins
            try:
                return self.bootstrap.get_dns_endpoints(".".join(labels[i + 1 :]))[0]
            except UnsupportedError:
                continue
        raise UnsupportedError(f"no RDAP service for {domain}")

    async def _run(self, kind: str, key: str, url: str) -> Outcome:
        server = self.server(url)
        state = self.servers.setdefault(server, _Server())
        if state.failures >= self.config.max_failures_per_server:
            return Outcome(kind, key, error=f"{server} failed repeatedly this run", server=server)
        try:
            async with self._slots:
                raw = await self._fetch(url, server)
        except ResourceDoesNotExist:
            return Outcome(kind, key, negative=True, server=server)
        except ServerDeferred as exc:
            return Outcome(kind, key, error=str(exc), retry_at=exc.retry_at, server=server)
        except QueryError as exc:
            state.failures += 1
            return Outcome(kind, key, error=_clean(str(exc), 300), server=server)
        try:
            parsed = _parse("ip" if kind == "ip" else "domain", key, raw, bootstrap=self.bootstrap)
        except ParseError as exc:
            return Outcome(kind, key, error=f"unusable RDAP answer: {_clean(exc, 200)}")
        state.failures = 0
        result: NetworkInfo | RegistrarInfo
        if kind == "ip":
            result = network_from_parsed(parsed, server)
            if not result.abuse_email and self.config.parent_budget:
                from enrich.rdap_parent import ParentWalk

                result = await ParentWalk(self, result, raw, url).run()
        else:
            result = registrar_from_parsed(key, parsed, server)
        return Outcome(kind, key, result=result, server=server)

    async def _fetch(self, url: str, server: str) -> dict[str, Any]:
        """One query, retrying a 429 while the wait is short."""
        state = self.servers[server]
        attempts = 0
        while True:
            state.retry_after = None
            status, body = await self._get(url)
            if status == 429:
                attempts += 1
                wait = state.retry_after if state.retry_after is not None else 1.0
                if (
                    attempts > self.config.retries_429
                    or wait > self.config.max_retry_wait.total_seconds()
                ):
                    retry_at = self.clock() + timedelta(seconds=wait)
                    raise ServerDeferred(
                        f"{server} rate-limited us (429, Retry-After {wait:.0f}s)", retry_at
                    ) from None
                log.info("%s answered 429; waiting %.1fs as asked", server, wait)
                # wait_turn() sleeps until blocked_until, set from the header in _get()
                continue
            if status == 404:
                raise ResourceDoesNotExist(f"RDAP GET {url} returned 404, no such resource")
            if status != 200:
                raise QueryError(f"RDAP GET {url} returned a non-200 status code of {status}")
            try:
                return json.loads(body)
            except (TypeError, ValueError) as exc:
                raise QueryError(f"Failed to parse RDAP Query response as JSON: {exc}") from None

    async def _get(self, url: str) -> tuple[int, bytes]:
        """GET ``url``; every hop, redirects included (at most three): scheme check,
        spacing, size cap, 429 bookkeeping."""
        assert self._http is not None, "use RdapClient as an async context manager"
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                status, location, body = await self._hop(url)
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                detail = str(exc) or exc.__class__.__name__
                raise QueryError(f"Failed to make a GET request to {url}: {detail}") from None
            if status not in (301, 302, 303, 307, 308) or not location:
                return status, body
            url = urljoin(url, location)
        raise QueryError(f"RDAP GET {url}: more than {MAX_REDIRECTS} redirects")

    async def _hop(self, url: str) -> tuple[int, str | None, bytes]:
        assert self._http is not None
        scheme = urlsplit(url).scheme.lower()
        if scheme != "https" and not (scheme == "http" and self.config.allow_insecure):
            raise ValueError(f"refusing {scheme}:// RDAP server")
        server = self.server(url)
        await self.wait_turn(server)
        state = self.servers[server]
        state.requests += 1
        cap = self.config.max_response
        async with self._http.get(url, allow_redirects=False) as response:
            body = await read_capped(response, cap)  # decoded: bounds a gzip bomb too
            if body is None:
                raise ValueError(f"RDAP answer from {server} exceeds {cap} bytes")
            if response.status == 429:
                state.retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), self.clock()
                )
                wait = state.retry_after if state.retry_after is not None else 1.0
                state.blocked_until = max(state.blocked_until, time.monotonic() + wait)
            return response.status, response.headers.get("Location"), body
