"""The known-bad list (``signatures.known_bad``): domains, IPs and CIDRs, one a line."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from tocsin.errors import ConfigError


class KnownBad:
    """Domains match themselves and their subdomains; addresses match by network."""

    def __init__(self, entries: list[str] | None = None) -> None:
        self.domains: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries or []:
            entry = entry.split("#", 1)[0].strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.domains.add(entry.lstrip("*."))

    @classmethod
    def load(cls, path: str) -> KnownBad:
        if not path:
            return cls()
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ConfigError("signatures.known_bad", f"cannot read {path}: {exc}") from None
        return cls(text.splitlines())

    def __bool__(self) -> bool:
        return bool(self.domains or self.networks)

    def match_host(self, host: str) -> str | None:
        """The list entry ``host`` (a name or an IP) matches, if any."""
        host = host.lower().strip("[]").rstrip(".")
        if not host:
            return None
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            labels = host.split(".")
            for i in range(len(labels)):
                candidate = ".".join(labels[i:])
                if candidate in self.domains:
                    return candidate
            return None
        for network in self.networks:
            if ip.version == network.version and ip in network:
                return str(network) if network.num_addresses > 1 else str(ip)
        return None
