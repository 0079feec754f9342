"""The SSRF guard's address policy: which destinations a fetch may connect to.

Every URL tocsin fetches comes from an attacker. Unless ``network.allow_private``
is set (the sandbox and tests only), an address that is not globally routable
is refused: loopback, RFC 1918, link-local (cloud metadata at 169.254.169.254),
CGNAT, multicast, reserved, IPv6 ULA and IPv4-mapped addresses among them.
The check is on addresses, after resolution, so a name pointing inwards is
caught too; callers must then connect to the address they checked.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from tocsin.config import NetworkConfig
from tocsin.errors import BlockedAddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def block_reason(address: str | IPAddress) -> str | None:
    """Why this address must not be fetched, or None when it is a public address."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "IPv4-mapped IPv6 address"
        if ip.sixtofour is not None or ip.teredo is not None or ip in _NAT64:
            return "IPv6 transition address embedding IPv4"
        if ip in ipaddress.ip_network("fc00::/7"):
            return "IPv6 unique local address"
    checks = (
        (ip.is_loopback, "loopback address"),
        (ip.is_link_local, "link-local address (cloud metadata lives here)"),
        (ip.is_multicast, "multicast address"),
        (ip.is_unspecified, "unspecified address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "carrier-grade NAT address"),
        (ip.is_private, "private or special-purpose address"),
        (ip.is_reserved, "reserved address"),
        (not ip.is_global, "address not globally routable"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


@dataclass(frozen=True)
class Guard:
    """The policy one run applies: refuse inward addresses, bar explicit exceptions.

    ``allow_private`` (the contract's key) lets everything through: only the
    sandbox and tests set it. ``allow_cidrs`` is narrower: it admits the listed
    ranges only (the sandbox's hosting providers, an intranet), so the guard can
    be tested with the sandbox still reachable and 127.0.0.1 or 10.0.0.1 refused.
    """

    allow_private: bool = False
    allow_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_config(cls, network: NetworkConfig) -> Guard:
        return cls(
            allow_private=network.allow_private,
            allow_cidrs=tuple(ipaddress.ip_network(c, strict=False) for c in network.allow_cidrs),
        )

    def reason(self, address: str) -> str | None:
        """Why ``address`` is refused under this policy, or None."""
        if self.allow_private:
            return None
        reason = block_reason(address)
        if reason is None or not self.allow_cidrs:
            return reason
        ip = ipaddress.ip_address(address)
        if any(ip.version == net.version and ip in net for net in self.allow_cidrs):
            return None
        return reason

    def check(self, host: str, address: str) -> None:
        """Raise :class:`BlockedAddress` unless ``address`` may be fetched."""
        reason = self.reason(address)
        if reason is not None:
            raise BlockedAddress(host, address, reason)
