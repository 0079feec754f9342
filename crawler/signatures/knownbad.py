"""The known-bad list (``signatures.known_bad``): domains, IPs, CIDRs and SHA-256 file
hashes (64 hex digits, optionally ``sha256:``), one a line."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from tocsin.errors import ConfigError

_SHA256 = re.compile(r"(?:sha256:)?([0-9a-f]{64})")


class KnownBad:
    """Domains match themselves and their subdomains; addresses match by network."""

    def __init__(self, entries: list[str] | None = None) -> None:
        self.domains: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.sha256: set[str] = set()
        for entry in entries or []:
            entry = entry.split("#", 1)[0].strip().lower().rstrip(".")
            if not entry:
                continue
            digest = _SHA256.fullmatch(entry)
            if digest:
                self.sha256.add(digest.group(1))
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
        return bool(self.domains or self.networks or self.sha256)

    def match_sha256(self, digest: str | None) -> bool:
        """True when a file's SHA-256 (hex) is on the list."""
        return bool(digest) and digest.lower() in self.sha256

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
