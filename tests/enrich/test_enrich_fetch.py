"""The security.txt fetcher of ``tocsin enrich`` (enrich/fetch.py) keeps the SSRF guard on
every hop: with ``allow_private`` off and only 127.10/16 admitted, a site that redirects
to the canary on 127.0.0.1 (as an IP literal, or by a name mapped there), or whose name
points at 10.0.0.1, gets a refusal and the canary sees nothing; answers are bounded."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from crawler.net import NetPolicy
from enrich.fetch import GuardedFetcher, GuardedResolver, ProcessFetcher, fetch_guarded
from enrich.securitytxt import candidate_urls
from tocsin.config import Config

SITE_IP = "127.10.77.1"  # admitted by allow_cidrs
TXT = "Contact: mailto:security@ok.test\nExpires: 2099-01-01T00:00:00.000Z\n"


def _port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


@dataclass
class Servers:
    site_port: int
    canary_port: int
    canary_hits: list[str] = field(default_factory=list)
    site_hits: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    found = Servers(_port(SITE_IP), _port("127.0.0.1"))

    async def site(request: web.Request) -> web.StreamResponse:
        host = (request.host or "").split(":")[0]
        found.site_hits.append(f"{host}{request.path}")
        if request.path != "/.well-known/security.txt":
            return web.Response(status=404, text="<html>not found</html>")
        if host == "literal.test":  # to the canary by IP literal
            raise web.HTTPFound(f"http://127.0.0.1:{found.canary_port}/.well-known/security.txt")
        if host == "named.test":  # to the canary by a name the hosts file maps to 127.0.0.1
            raise web.HTTPFound(f"http://canary.test:{found.canary_port}/.well-known/security.txt")
        if host == "metadata.test":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        if host == "hop.test":  # a redirect that stays on admitted ground is followed
            raise web.HTTPFound(f"http://ok.test:{found.site_port}/.well-known/security.txt")
        if host == "big.test":
            return web.Response(text="Contact: mailto:a@big.test\n" + "#" * 100_000)
        return web.Response(text=TXT, content_type="text/plain")

    async def canary(request: web.Request) -> web.Response:
        found.canary_hits.append(request.path)
        return web.Response(text=TXT, content_type="text/plain")

    loop = asyncio.new_event_loop()
    runners: list[web.AppRunner] = []

    async def start() -> None:
        for handler, address, port in (
            (site, SITE_IP, found.site_port),
            (canary, "127.0.0.1", found.canary_port),
        ):
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, address, port).start()
            runners.append(runner)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield found

    async def stop() -> None:
        for runner in runners:
            await runner.cleanup()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.fixture
def config(tmp_path: Path, servers: Servers) -> Config:
    hosts = tmp_path / "hosts"
    names = ("ok.test", "literal.test", "named.test", "metadata.test", "hop.test", "big.test")
    hosts.write_text(
        "".join(f"{SITE_IP} {name}\n" for name in names)
        + "127.0.0.1 canary.test\n10.0.0.1 inward.test\n"
    )
    return Config.model_validate(
        {
            "network": {
                "hosts_file": str(hosts),
                "allow_private": False,
                "allow_cidrs": ["127.10.0.0/16"],
            },
            "enrich": {"securitytxt_max_bytes": 4096, "securitytxt_timeout": "5s"},
        }
    )


def _targets(servers: Servers, *hosts: str) -> list[tuple[int, str, list[str]]]:
    return [
        (n, host, candidate_urls(host, [f"http://{host}:{servers.site_port}/"]))
        for n, host in enumerate(hosts, 1)
    ]


def test_every_hop_is_guarded_and_the_canary_sees_nothing(config, servers) -> None:
    servers.canary_hits.clear()
    hosts = ("ok.test", "literal.test", "named.test", "metadata.test", "inward.test", "hop.test")
    targets = _targets(servers, *hosts)
    results = fetch_guarded(config, targets)
    by_host = {host: results[n] for n, host, _urls in targets}

    assert by_host["ok.test"].state == "found"
    assert by_host["ok.test"].url == f"http://ok.test:{servers.site_port}/.well-known/security.txt"
    assert by_host["hop.test"].state == "found"  # an admitted redirect is followed
    assert by_host["hop.test"].url.startswith("http://ok.test:")
    for host in ("literal.test", "named.test", "metadata.test"):
        assert by_host[host].state != "found", host
        assert "blocked" in by_host[host].detail, (host, by_host[host].detail)
    assert "127.0.0.1" in by_host["literal.test"].detail
    assert "169.254.169.254" in by_host["metadata.test"].detail
    assert "10.0.0.1" in by_host["inward.test"].detail  # refused before any connection
    assert servers.canary_hits == []


def test_the_worker_process_keeps_the_guard(config, servers) -> None:
    servers.canary_hits.clear()
    fetcher = ProcessFetcher(config, worker_min=1)
    try:
        results = fetcher(_targets(servers, "ok.test", "literal.test"))
    finally:
        fetcher.close()
    assert results[1].state == "found"
    assert results[2].state != "found" and "blocked" in results[2].detail
    assert servers.canary_hits == []


def test_answers_are_bounded(config, servers) -> None:
    (big,) = _targets(servers, "big.test")
    result = fetch_guarded(config, [big])[1]
    assert result.state == "absent"  # the origin answered, with more than 4096 bytes
    assert "over 4096 bytes" in result.detail


def test_the_resolver_and_the_socket_refuse_inward_addresses(config, servers) -> None:
    policy = NetPolicy.from_config(config.network)
    resolver = GuardedResolver(policy)
    with pytest.raises(OSError, match=r"127\.0\.0\.1"):
        asyncio.run(resolver.resolve("canary.test", servers.canary_port))
    (answer,) = asyncio.run(resolver.resolve("ok.test", 80))
    assert answer["host"] == SITE_IP

    fetcher = GuardedFetcher(policy, max_bytes=1024, timeout=5, concurrency=4, user_agent="t")
    for address in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "::1"):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with pytest.raises(OSError, match="blocked"):
            fetcher._socket((family, socket.SOCK_STREAM, 6, "", (address, 80)))
    sock = fetcher._socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", (SITE_IP, 80)))
    sock.close()
