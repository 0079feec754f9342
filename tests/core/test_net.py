"""The SSRF guard's address policy and the hosts-file-first resolver."""

from __future__ import annotations

from pathlib import Path

import pytest

from tocsin.config import NetworkConfig
from tocsin.errors import BlockedAddress, ResolveError
from tocsin.net.guard import Guard, block_reason
from tocsin.net.resolver import Resolver


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("127.0.0.1", "loopback"),
        ("127.10.1.5", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.4.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.9", "carrier-grade"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "private"),
        ("::1", "loopback"),
        ("fd12:3456::1", "unique local"),
        ("fe80::1", "link-local"),
        ("::ffff:169.254.169.254", "IPv4-mapped"),
        ("64:ff9b::a00:1", "embedding IPv4"),
    ],
)
def test_inward_addresses_are_blocked(address: str, fragment: str) -> None:
    reason = block_reason(address)
    assert reason is not None and fragment in reason
    with pytest.raises(BlockedAddress):
        Guard().check("evil.example", address)
    Guard(allow_private=True).check("evil.example", address)  # the sandbox's escape hatch


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"])
def test_public_addresses_pass(address: str) -> None:
    assert block_reason(address) is None
    Guard().check("ok.example", address)


def test_allowed_ranges_admit_only_themselves() -> None:
    network = NetworkConfig(allow_cidrs=["127.10.0.0/16"])
    guard = Guard.from_config(network)
    guard.check("shop.example.com", "127.10.3.4")
    for inward in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "::1"):
        with pytest.raises(BlockedAddress):
            guard.check("evil.example", inward)


def test_hosts_file_wins_and_literals_pass_through(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("# sandbox\n127.10.1.5 shop.test www.shop.test\n127.10.1.6 shop.test\n")
    resolver = Resolver(hosts_file=str(hosts))
    answer = resolver.resolve("SHOP.test.")
    assert answer.addresses == ("127.10.1.5", "127.10.1.6")
    assert answer.source == "hosts"
    assert resolver.resolve("203.0.113.7").source == "literal"
    assert resolver.resolve("[::1]").addresses == ("::1",)


def test_unknown_name_is_a_resolve_error(tmp_path: Path) -> None:
    resolver = Resolver(hosts_file="", nameservers=["127.0.0.1"], timeout=0.5)
    with pytest.raises(ResolveError):
        resolver.resolve("no-such-name.invalid")


def test_nameservers_take_a_port(tmp_path: Path) -> None:
    resolver = Resolver(nameservers=["127.0.0.1:5353", "[::1]:53", "192.0.2.53"])
    ports = [(n.address, n.port) for n in resolver._dns.nameservers]
    assert ports == [("127.0.0.1", 5353), ("::1", 53), ("192.0.2.53", 53)]
