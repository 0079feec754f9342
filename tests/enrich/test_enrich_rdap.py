"""RDAP through whoisit against real registry answers served from loopback."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from enrich_support import RESPONSES

from enrich.rdap import (
    RdapClient,
    clean_email,
    load_bootstrap,
    network_from_parsed,
    registrar_from_parsed,
)
from tocsin.config import RdapConfig
from tocsin.errors import ConfigError
from tocsin.net.retry import parse_retry_after


def _config(servers, **overrides) -> RdapConfig:
    values = {
        "bootstrap_dir": str(servers.bootstrap_dir),
        "allow_insecure": True,
        "rate_per_server": 50.0,
        "timeout": "5s",
    }
    values.update(overrides)
    return RdapConfig(**values)


def _run(config: RdapConfig, *lookups: tuple[str, str]):
    async def go():
        async with RdapClient(config) as client:
            coros = [
                client.lookup_ip(value) if kind == "ip" else client.lookup_domain(value)
                for kind, value in lookups
            ]
            return await asyncio.gather(*coros), client

    return asyncio.run(go())


def _parsed(name: str) -> dict:
    from whoisit.parser import parse

    raw = json.loads((RESPONSES / f"{name}.json").read_text())
    return parse(load_bootstrap(), raw["objectClassName"], "q", raw)


@pytest.mark.parametrize(
    ("name", "abuse", "org", "country", "cidr"),
    [
        ("ip_v4", "helpdesk@apnic.net", "APNIC-LABS", "AU", "1.1.1.0/24"),
        ("ip_v4_2", "abuse@switch.ch", "SWITCH-LAN", "CH", "130.59.0.0/16"),
        # nested under the registrant, and a generic role that also says "abuse": the
        # dedicated abuse mailbox wins
        ("ip_v4_3", "abuse@microsoft.com", "Microsoft Corporation", "", "13.64.0.0/11"),
        ("ip_v6", "network-abuse@google.com", "Google LLC", "", "2001:4860::/32"),
    ],
)
def test_network_abuse_contact_from_real_answers(name, abuse, org, country, cidr) -> None:
    info = network_from_parsed(_parsed(name))
    assert info.abuse_email == abuse
    assert info.org == org
    assert info.country == country
    assert cidr in info.cidrs


@pytest.mark.parametrize(
    ("name", "registrar", "iana", "abuse", "phone", "source"),
    [
        (
            "domain1",
            "MarkMonitor Inc.",
            "292",
            "abusecomplaints@markmonitor.com",
            "+1.2083895740",
            "abuse",
        ),
        (
            "domain3",
            "Hosting Concepts B.V. d/b/a Registrar.eu",
            "1647",
            "abuse@registrar.eu",
            "+31.104482297",
            "abuse",
        ),
        # a ccTLD registry without IANA ids or an abuse role: the registrar's own mailbox
        ("domain2", "Domeneshop AS", "", "kundeservice@domeneshop.no", "+47.22943333", "registrar"),
    ],
)
def test_registrar_from_real_answers(name, registrar, iana, abuse, phone, source) -> None:
    info = registrar_from_parsed("x", _parsed(name))
    assert (info.registrar, info.iana_id, info.abuse_email, info.abuse_phone) == (
        registrar,
        iana,
        abuse,
        phone,
    )
    assert info.abuse_from == source


def test_roles_never_carry_over_between_lookups() -> None:
    """IntelMQ's bug: one event's abuse role leaked into the next event's result."""
    with_abuse = network_from_parsed(_parsed("ip_v4_3"))
    without = network_from_parsed({"handle": "X", "name": "NOABUSE", "entities": {}})
    again = network_from_parsed(_parsed("ip_v4_3"))
    assert with_abuse.abuse_email == "abuse@microsoft.com"
    assert without.abuse_email == "" and without.abuse_name == ""
    assert again == with_abuse


def test_an_irt_with_several_mailboxes_gives_its_abuse_one() -> None:
    parsed = {
        "handle": "NET",
        "entities": {"abuse": [{"emails": ["irt@host.example", "abuse@host.example"]}]},
    }
    assert network_from_parsed(parsed).abuse_email == "abuse@host.example"


def test_clean_email_refuses_header_injection() -> None:
    assert clean_email("mailto:Abuse@Example.COM") == "Abuse@example.com"
    for bad in ("a@b.c\r\nBcc: x@y.z", "a@b", "a@b.c, d@e.f", "<script>@x.y", ""):
        assert clean_email(bad) == "" or "\n" not in clean_email(bad)
    assert clean_email("a@b.c, d@e.f") == ""
    assert clean_email("x@y.z\r\nBcc: evil@z.z") == ""


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30
    assert parse_retry_after("soon", now) is None


def test_bundled_bootstrap_is_offline_and_complete() -> None:
    bootstrap = load_bootstrap()
    import ipaddress

    endpoints, exact = bootstrap.get_ipv4_endpoints(ipaddress.ip_address("1.1.1.1"))
    assert exact and endpoints[0].startswith("https://rdap.apnic.net")
    assert bootstrap.get_dns_endpoints("com")[0]
    with pytest.raises(ConfigError, match=r"rdap\.bootstrap_dir"):
        load_bootstrap("/nonexistent")


def test_lookups_against_loopback_servers(rdap_servers) -> None:
    rdap_servers.reset()
    outcomes, _client = _run(
        _config(rdap_servers),
        ("ip", "1.1.1.1"),
        ("ip", "2001:4860:4860::8888"),
        ("domain", "google.com"),
        ("domain", "nosuchdomain.com"),
        ("ip", "10.0.0.1"),
    )
    v4, v6, domain, missing, private = outcomes
    assert v4.ok and v4.result.abuse_email == "helpdesk@apnic.net"
    assert v6.ok and v6.result.abuse_email == "network-abuse@google.com"
    assert domain.ok and domain.result.iana_id == "292"
    assert missing.negative and missing.ok
    # no server lists 10/8 and it is not public: a negative answer, no request
    assert private.negative
    assert not any("10.0.0.1" in p for p in rdap_servers["normal"].log)


def test_429_twice_is_obeyed_then_answered(rdap_servers) -> None:
    rdap_servers.reset()
    rdap_servers["limited"].retry_after = "1"
    start = time.monotonic()
    try:
        (outcome,), _ = _run(_config(rdap_servers), ("ip", "130.59.1.1"))
    finally:
        rdap_servers["limited"].retry_after = "0"
    elapsed = time.monotonic() - start
    assert outcome.ok and outcome.result.abuse_email == "abuse@switch.ch"
    assert rdap_servers["limited"].log.count("/ip/130.59.1.1") == 3
    assert elapsed >= 2.0  # Retry-After: 1, twice


def test_429_with_a_long_wait_defers_to_a_later_run(rdap_servers) -> None:
    rdap_servers.reset()
    rdap_servers["limited"].retry_after = "3600"
    try:
        (outcome,), _ = _run(_config(rdap_servers), ("ip", "130.59.2.2"))
    finally:
        rdap_servers["limited"].retry_after = "0"
    assert not outcome.ok and not outcome.negative
    assert "429" in outcome.error
    assert outcome.retry_at is not None
    assert outcome.retry_at - datetime.now(UTC) > timedelta(minutes=50)
    assert rdap_servers["limited"].log.count("/ip/130.59.2.2") == 1


def test_down_server_fails_fast_and_is_left_alone(rdap_servers) -> None:
    config = _config(rdap_servers, max_failures_per_server=2)
    outcomes, client = _run(config, *[("ip", f"13.64.0.{i}") for i in range(1, 7)])
    assert all(not o.ok and not o.negative for o in outcomes)
    down = f"http://127.0.0.1:{rdap_servers.down_port}"
    assert client.servers[down].requests <= 2 + config.concurrency


def test_rate_limit_spaces_requests_to_one_server(rdap_servers) -> None:
    rdap_servers.reset()
    config = _config(rdap_servers, rate_per_server=5.0)
    start = time.monotonic()
    outcomes, _ = _run(config, *[("ip", f"1.1.1.{i}") for i in range(1, 6)])
    assert all(o.ok for o in outcomes)
    assert time.monotonic() - start >= 0.75  # 5 requests at 5/s: 4 gaps of 0.2s


def test_http_servers_refused_unless_allowed(rdap_servers) -> None:
    rdap_servers.reset()
    # even if a bootstrap (or a redirect) names an http:// server, the transport refuses it
    config = _config(rdap_servers, allow_insecure=False)
    bootstrap = load_bootstrap(str(rdap_servers.bootstrap_dir), allow_insecure=True)

    async def go():
        async with RdapClient(config, bootstrap=bootstrap) as client:
            return await client.lookup_ip("1.1.1.1")

    outcome = asyncio.run(go())
    assert not outcome.ok and "http" in outcome.error
    assert rdap_servers["normal"].log == []
    # and the bootstrap alone drops http:// services when insecure is not allowed
    strict = load_bootstrap(str(rdap_servers.bootstrap_dir), allow_insecure=False)
    assert strict._parsed_data["ipv4"] == {} or all(
        u.startswith("https") for urls in strict._parsed_data["ipv4"].values() for u in urls
    )
