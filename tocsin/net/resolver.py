"""Name resolution for every fetcher: ``network.hosts_file`` first, then DNS.

Answers are cached with their TTL. The same resolver feeds the SSRF guard and
the connection, so the address that was checked is the address that is used
(which is what defeats DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.nameserver
import dns.resolver

from tocsin.config import NetworkConfig
from tocsin.errors import ResolveError

DEFAULT_TTL = 300
NEGATIVE_TTL = 60


@dataclass(frozen=True)
class Resolution:
    """The addresses a name resolved to, how, and the CNAME chain on the way."""

    host: str
    addresses: tuple[str, ...]
    source: str  # literal | hosts | dns
    cname_chain: tuple[str, ...] = ()
    ttl: int = DEFAULT_TTL


def _nameserver(text: str) -> dns.nameserver.Do53Nameserver:
    """``"192.0.2.53"``, ``"192.0.2.53:5353"`` or ``"[2001:db8::53]:5353"``."""
    host, port = text.strip(), 53
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif host.count(":") == 1:
        host, _, number = host.partition(":")
        port = int(number)
    ipaddress.ip_address(host)
    return dns.nameserver.Do53Nameserver(host, port)


def parse_hosts_file(path: str | Path) -> dict[str, list[str]]:
    """Read an ``/etc/hosts``-style file into name -> addresses (in file order)."""
    table: dict[str, list[str]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        address, *names = line.split()
        try:
            ipaddress.ip_address(address)
        except ValueError:
            continue
        for name in names:
            table.setdefault(name.lower().rstrip("."), []).append(address)
    return table


@dataclass
class Resolver:
    """Hosts file, then DNS with timeouts; thread-safe, with a TTL cache."""

    hosts_file: str = ""
    timeout: float = 5.0
    nameservers: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.hosts = parse_hosts_file(self.hosts_file) if self.hosts_file else {}
        self._dns = dns.resolver.Resolver(configure=not self.nameservers)
        if self.nameservers:
            self._dns.nameservers = [_nameserver(n) for n in self.nameservers]
        self._dns.lifetime = self.timeout
        self._dns.timeout = min(self.timeout, 2.0)
        self._cache: dict[str, tuple[float, Resolution | ResolveError]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, network: NetworkConfig) -> Resolver:
        return cls(
            hosts_file=network.hosts_file,
            timeout=network.dns_timeout.total_seconds(),
            nameservers=list(network.nameservers),
        )

    def resolve(self, host: str) -> Resolution:
        """Resolve ``host`` (a name or an IP literal) or raise :class:`ResolveError`."""
        name = host.lower().strip("[]").rstrip(".")
        try:
            ipaddress.ip_address(name)
            return Resolution(name, (name,), "literal", ttl=0)
        except ValueError:
            pass
        if name in self.hosts:
            return Resolution(name, tuple(self.hosts[name]), "hosts", ttl=0)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
        if cached and cached[0] > now:
            if isinstance(cached[1], ResolveError):
                raise cached[1]
            return cached[1]
        try:
            answer = self._query(name)
        except ResolveError as exc:
            with self._lock:
                self._cache[name] = (now + NEGATIVE_TTL, exc)
            raise
        with self._lock:
            self._cache[name] = (now + answer.ttl, answer)
        return answer

    def _query(self, name: str) -> Resolution:
        addresses: list[str] = []
        chain: list[str] = []
        ttl = DEFAULT_TTL
        errors: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = self._dns.resolve(name, rdtype, raise_on_no_answer=False)
            except dns.resolver.NXDOMAIN:
                raise ResolveError(f"{name}: no such domain") from None
            except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
                errors.append(f"{rdtype}: {exc.__class__.__name__}")
                continue
            except dns.exception.DNSException as exc:
                errors.append(f"{rdtype}: {exc}")
                continue
            if answer.rrset is None:
                continue
            ttl = min(ttl, answer.rrset.ttl)
            addresses.extend(r.to_text() for r in answer.rrset)
            for rrset in answer.response.answer:
                if rrset.rdtype == dns.rdatatype.CNAME:
                    for record in rrset:
                        target = record.target.to_text().rstrip(".")
                        if target not in chain:
                            chain.append(target)
        if not addresses:
            raise ResolveError(
                f"{name}: no address" + (f" ({'; '.join(errors)})" if errors else "")
            )
        return Resolution(name, tuple(addresses), "dns", tuple(chain), max(ttl, 1))
