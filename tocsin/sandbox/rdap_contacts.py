"""RDAP objects of sub-allocated networks: the abuse desk is one or two levels up.

For a provider with ``abuse_via`` set, the customer /24 carries no abuse entity.
Its parents are wider blocks around it (``127.10.N.0/23``, ``/22``) held by the
upstream, and the holder's org is an ``entity`` object:

- ``up``: an ``up`` link and a ``parentHandle`` to a /23 with the abuse desk;
- ``parent-handle``: only a ``parentHandle`` (the client must find the /23 itself);
- ``org``: the parent has no abuse desk either; the holder's org entity does;
- ``chain2``: /24 -> /23 (no abuse desk) -> /22 (the abuse desk);
- ``parent-down``: the ``up`` link points at the RDAP server that is down.

The desk found must be the provider's ``abuse_email``.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from tocsin.sandbox.catalogue import PROVIDERS, Provider

if TYPE_CHECKING:
    from tocsin.sandbox.rdap import RdapServers

RDAP_TYPE = "application/rdap+json"


def _short(p: Provider) -> str:
    return p.id.upper()


def _abuse(p: Provider) -> dict[str, Any]:
    from tocsin.sandbox.rdap import _entity, vcard

    return _entity(
        f"ABUSE-{_short(p)}-UP",
        ["abuse"],
        vcard("Upstream Abuse Desk", kind="group", email=[p.abuse_email], tel=p.abuse_phone),
    )


def _org(p: Provider, *, upstream: bool = False, with_abuse: bool = False) -> dict[str, Any]:
    from tocsin.sandbox.rdap import _entity, vcard

    handle = f"ORG-{_short(p)}-UP" if upstream else f"ORG-{_short(p)}"
    name = f"{p.name} (upstream transit)" if upstream else p.name
    extra = {"entities": [_abuse(p)]} if with_abuse else {}
    return _entity(handle, ["registrant"], vcard(name, adr=p.address), **extra)


def _handle(net: ipaddress.IPv4Network) -> str:
    return f"NET-{str(net.network_address).replace('.', '-')}-{net.prefixlen}"


def _parents(p: Provider) -> list[ipaddress.IPv4Network]:
    """The provider's parent blocks, nearest first."""
    net = p.network
    depth = 2 if p.abuse_via == "chain2" else 1
    return [net.supernet(new_prefix=net.prefixlen - i) for i in range(1, depth + 1)]


def _network(
    p: Provider,
    net: ipaddress.IPv4Network,
    base_url: str,
    servers: RdapServers,
    level: int,
) -> dict[str, Any]:
    """The network object at ``level`` (0: the customer's /24; 1, 2: its parents)."""
    parents = _parents(p)
    via = p.abuse_via
    links: list[dict[str, Any]] = [
        {
            "rel": "self",
            "type": RDAP_TYPE,
            "href": f"{base_url}ip/{net}",
            "value": f"{base_url}ip/{net}",
        }
    ]
    obj: dict[str, Any] = {
        "rdapConformance": ["rdap_level_0", "cidr0"],
        "objectClassName": "ip network",
        "handle": _handle(net),
        "startAddress": str(net.network_address),
        "endAddress": str(net.broadcast_address),
        "ipVersion": "v4",
        "name": p.net_name if level == 0 else f"{_short(p)}-UPSTREAM-{level}",
        "type": "SUB-ALLOCATED PA" if level < len(parents) else "ALLOCATED PA",
        "country": p.country,
        "status": ["active"],
        "cidr0_cidrs": [{"v4prefix": str(net.network_address), "length": net.prefixlen}],
        "links": links,
    }
    if level < len(parents):
        parent = parents[level]
        obj["parentHandle"] = _handle(parent)
        if via != "parent-handle":
            up_base = servers.base_url("down") if via == "parent-down" else base_url
            links.append({"rel": "up", "type": RDAP_TYPE, "href": f"{up_base}ip/{parent}"})
    top = level == len(parents)
    if level == 0:
        obj["entities"] = [_org(p)]
    elif top and via != "org":
        obj["entities"] = [_org(p, upstream=True), _abuse(p)]
    else:
        obj["entities"] = [_org(p, upstream=True)]
    return obj


def network_object(
    net: ipaddress.IPv4Network, base_url: str, servers: RdapServers
) -> dict[str, Any] | None:
    """The most specific sub-allocation object holding ``net``, or None."""
    for p in PROVIDERS.values():
        if not p.abuse_via:
            continue
        levels = [p.network, *_parents(p)]
        for level, block in enumerate(levels):
            if net.subnet_of(block):
                return _network(p, block, base_url, servers, level)
    return None


def entity_object(handle: str) -> dict[str, Any] | None:
    """The holder's org: with a nested abuse desk for the ``org`` variant only."""
    for p in PROVIDERS.values():
        if p.abuse_via and handle.upper() == f"ORG-{_short(p)}":
            org = _org(p, with_abuse=p.abuse_via == "org")
            return {"rdapConformance": ["rdap_level_0"], "objectClassName": "entity", **org}
    return None
