"""The abuse desk of a network that names none: its parents, then its holder's org.

Sub-allocated and re-assigned networks (a reseller's /24 inside a transit
provider's /20) often carry no ``abuse`` entity of their own; the registry
answers for the customer block and the abuse desk sits one or two levels up,
or on the holder's ``org`` entity. Without this walk the hosting level of the
ladder is silently empty while the registrar and the CSIRT are told.

The walk, bounded by ``rdap.parent_depth`` (levels) and ``rdap.parent_budget``
(extra queries per network):

1. the ``up`` link (RFC 9083 ``links``, ``rel: up``), only to an RDAP server the
   bootstrap lists (a registry answer must not send us to an arbitrary host);
2. else the ``parentHandle``: the registry is asked for ever wider blocks around
   the network (``ip/<net>/<len-1>``, ``/<len-2>``...) until the answer is the
   network with that handle (RDAP has no standard lookup of a network by handle);
3. when no level has an abuse entity: the ``entity/<handle>`` of each registrant
   (the RIR's org object), whose nested ``abuse`` entity, or an abuse-like mailbox
   of its own, is taken.

A parent that cannot be reached (down, 429 beyond the in-run wait) leaves
``abuse_gap`` set: the enrichment records a ``hosting-contact`` gap and retries,
and the network is not cached. "Nothing anywhere" leaves both empty.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin

from whoisit.errors import ParseError, QueryError, ResourceDoesNotExist

if TYPE_CHECKING:
    from enrich.rdap import NetworkInfo, RdapClient

log = logging.getLogger(__name__)

WIDEN_MAX = 8  # at most this many bits wider than the network, per parentHandle step


class _Gap(Exception):
    """A parent or org could not be asked this run (not a negative answer)."""


def _up_link(raw: dict[str, Any], base_url: str) -> str:
    for link in raw.get("links") or []:
        if not isinstance(link, dict) or str(link.get("rel", "")).lower() != "up":
            continue
        href = link.get("href") or link.get("value")
        if isinstance(href, str) and href:
            return urljoin(base_url, href.strip())
    return ""


def _registrant_handles(raw: dict[str, Any]) -> list[str]:
    """Handles of the registrant entities, nested ones included, in order."""
    found: list[str] = []

    def walk(entities: Any, depth: int) -> None:
        if not isinstance(entities, list) or depth > 4:
            return
        for entity in entities:
            if not isinstance(entity, dict):
                continue
            roles = {str(r).lower() for r in entity.get("roles") or []}
            handle = str(entity.get("handle") or "").strip()
            if "registrant" in roles and handle and len(handle) <= 100 and handle not in found:
                found.append(handle)
            walk(entity.get("entities"), depth + 1)

    walk(raw.get("entities"), 0)
    return found


def _base(url: str) -> str:
    """The RDAP base URL of a query URL (``https://rdap.example/registry/ip/x`` -> ``.../``)."""
    for marker in ("/ip/", "/entity/", "/autnum/", "/domain/"):
        at = url.rfind(marker)
        if at >= 0:
            return url[: at + 1]
    return url.rsplit("/", 1)[0] + "/"


class ParentWalk:
    """One network's walk: what it may spend, and what it found."""

    def __init__(self, client: RdapClient, info: NetworkInfo, raw: dict[str, Any], url: str):
        self.client = client
        self.info = info
        self.raw = raw
        self.url = url
        self.budget = client.config.parent_budget
        self.orgs: list[str] = _registrant_handles(raw)

    async def _ask(self, url: str) -> dict[str, Any] | None:
        """One query of the walk: the answer, None for a 404, ``_Gap`` for a failure."""
        from enrich.rdap import ServerDeferred

        if self.budget <= 0:
            raise _Gap(f"rdap.parent_budget ({self.client.config.parent_budget}) spent")
        self.budget -= 1
        from enrich.rdap import _Server

        server = self.client.server(url)
        if server not in self.client.bootstrap_servers and server != self.client.server(self.url):
            raise _Gap(f"refusing {server}: not an RDAP server of the bootstrap")
        self.client.servers.setdefault(server, _Server())
        try:
            async with self.client._slots:
                return await self.client._fetch(url, server)
        except ResourceDoesNotExist:
            return None
        except ServerDeferred as exc:
            raise _Gap(str(exc)) from None
        except QueryError as exc:
            raise _Gap(" ".join(str(exc).split())[:200]) from None

    def _network(self, raw: dict[str, Any], url: str) -> NetworkInfo:
        from enrich.rdap import _parse, network_from_parsed

        try:
            parsed = _parse("ip", "", raw, bootstrap=self.client.bootstrap)
        except ParseError as exc:
            raise _Gap(f"unusable parent answer: {exc}") from None
        return network_from_parsed(parsed, self.client.server(url))

    async def _parent(self, raw: dict[str, Any], url: str, cidrs: list[str]) -> tuple | None:
        """The next level up: (raw answer, its URL), or None when there is none."""
        up = _up_link(raw, url)
        if up:
            answer = await self._ask(up)
            return None if answer is None else (answer, up)
        handle = str(raw.get("parentHandle") or "").strip().upper()
        if not handle or not cidrs:
            return None
        try:
            net = ipaddress.ip_network(cidrs[0], strict=False)
        except ValueError:
            return None
        own = str(raw.get("handle") or "").strip().upper()
        floor = max(net.prefixlen - WIDEN_MAX, 8 if net.version == 4 else 16)
        for length in range(net.prefixlen - 1, floor - 1, -1):
            wider = net.supernet(new_prefix=length)
            query = urljoin(_base(url), f"ip/{wider}")
            answer = await self._ask(query)
            if answer is None:
                return None
            got = str(answer.get("handle") or "").strip().upper()
            if got == handle:
                return answer, query
            if got and got != own:
                return None  # some other network: the registry's tree is not what it said
        return None

    async def run(self) -> NetworkInfo:
        info = self.info
        raw, url, cidrs = self.raw, self.url, list(info.cidrs)
        try:
            for _level in range(self.client.config.parent_depth):
                step = await self._parent(raw, url, cidrs)
                if step is None:
                    break
                raw, url = step
                parent = self._network(raw, url)
                for handle in _registrant_handles(raw):
                    if handle not in self.orgs:
                        self.orgs.append(handle)
                if parent.abuse_email:
                    where = f"parent network {parent.handle or parent.name}"
                    where += f" {parent.cidrs[0]}" if parent.cidrs else ""
                    return self._found(
                        parent.abuse_email, parent.abuse_phone, parent.abuse_name, where
                    )
                cidrs = parent.cidrs
            for handle in self.orgs:
                answer = await self._ask(urljoin(_base(self.url), f"entity/{quote(handle)}"))
                if answer is None:
                    continue
                found = _org_abuse(answer)
                if found is not None:
                    return self._found(*found, f"org {handle}")
        except _Gap as exc:
            info.abuse_gap = str(exc)[:300]
            log.info("abuse desk of %s not found this run: %s", info.handle, exc)
        return info

    def _found(self, email: str, phone: str, name: str, where: str) -> NetworkInfo:
        self.info.abuse_email, self.info.abuse_phone = email, phone
        self.info.abuse_name = name or self.info.abuse_name
        self.info.abuse_from = where[:200]
        return self.info


def _org_abuse(raw: dict[str, Any]) -> tuple[str, str, str] | None:
    """The abuse desk of an org entity: a nested ``abuse`` entity, else its own abuse box."""
    from whoisit.parser import parse_vcard

    from enrich.rdap import _best_abuse, _clean, _email_of, _entities_from_raw

    abuse = _best_abuse(_entities_from_raw(raw).get("abuse", []))
    if abuse is None:
        own = dict(parse_vcard(raw.get("vcardArray")) or {})
        roles = {str(r).lower() for r in raw.get("roles") or []}
        email = _email_of(own)
        if email and ("abuse" in roles or "abuse" in email.split("@")[0].lower()):
            abuse = own
    if abuse is None:
        return None
    return _email_of(abuse), _clean(abuse.get("tel"), 64), _clean(abuse.get("name"))
