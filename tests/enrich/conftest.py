"""Fixtures of the enrichment tests: real RDAP answers served from loopback.

``rdap_servers`` starts three aiohttp servers on 127.0.0.1 that answer with the
real registry responses of ``tocsin/sandbox/data/rdap/`` as they are: one
normal, one that answers 429 with ``Retry-After`` twice per path before it
answers, and a "down" one (a port nobody listens on). A bootstrap folder in
IANA's format points real prefixes and TLDs at them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web
from enrich_support import ASN_DATA, HOSTS, RESPONSES, T0

from enrich.securitytxt import Fetched
from enrich.service import enrich_sites
from store.db import Database
from tocsin.app import App
from tocsin.clock import Clock
from tocsin.config import Config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class FakeRdap:
    """One loopback RDAP server and what it was asked."""

    name: str
    answers: dict[str, dict]  # "/ip/<net>" or "/domain/<name>" -> JSON
    networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]
    fail_first: int = 0  # answer 429 this many times per path first
    retry_after: str = "0"  # tests that time the wait set it higher
    port: int = 0
    log: list[str] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def reset(self) -> None:
        self.log.clear()
        self._seen.clear()

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.log.append(path)
        seen = self._seen.get(path, 0)
        self._seen[path] = seen + 1
        if seen < self.fail_first:
            return web.Response(status=429, headers={"Retry-After": self.retry_after})
        kind, _, value = path.strip("/").partition("/")
        if kind == "ip":
            address = ipaddress.ip_address(value)
            for net, key in sorted(self.networks, key=lambda n: -n[0].prefixlen):
                if address.version == net.version and address in net:
                    return web.json_response(
                        self.answers[key], content_type="application/rdap+json"
                    )
        if kind == "domain" and value.lower() in self.answers:
            return web.json_response(
                self.answers[value.lower()], content_type="application/rdap+json"
            )
        return web.json_response({"errorCode": 404, "title": "Not Found"}, status=404)


class RdapServers:
    def __init__(self, servers: list[FakeRdap], down_port: int, bootstrap_dir: Path) -> None:
        self.servers = {s.name: s for s in servers}
        self.down_port = down_port
        self.bootstrap_dir = bootstrap_dir

    def __getitem__(self, name: str) -> FakeRdap:
        return self.servers[name]

    def reset(self) -> None:
        for server in self.servers.values():
            server.reset()


def _load(name: str) -> dict:
    return json.loads((RESPONSES / f"{name}.json").read_text())


def _serve(servers: list[FakeRdap]) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runners: list[web.AppRunner] = []

    async def start() -> None:
        for server in servers:
            app = web.Application()
            app.router.add_get("/{tail:.*}", server.handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", server.port).start()
            runners.append(runner)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        for runner in runners:
            loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="fake-rdap", daemon=True)
    thread.start()
    ready.wait(10)
    return loop, thread


@pytest.fixture(scope="session")
def rdap_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RdapServers]:
    """Normal (APNIC, Google v6, .com), 429-twice (SWITCH, .no) and down (Microsoft)."""
    normal = FakeRdap(
        "normal",
        answers={
            "apnic": _load("ip_v4"),
            "google6": _load("ip_v6"),
            "google.com": _load("domain1"),
            "themarquetry.com": _load("domain3"),
            "msft": _load("ip_v4_3"),
        },
        networks=[
            (ipaddress.ip_network("1.1.1.0/24"), "apnic"),
            (ipaddress.ip_network("2001:4860::/32"), "google6"),
        ],
        port=free_port(),
    )
    limited = FakeRdap(
        "limited",
        answers={"switch": _load("ip_v4_2"), "norway.no": _load("domain2")},
        networks=[(ipaddress.ip_network("130.59.0.0/16"), "switch")],
        fail_first=2,
        port=free_port(),
    )
    down_port = free_port()
    folder = tmp_path_factory.mktemp("bootstrap")
    down = f"http://127.0.0.1:{down_port}/"

    def table(description: str, services: list) -> str:
        return json.dumps({"description": description, "services": services, "version": "1.0"})

    (folder / "ipv4.json").write_text(
        table(
            "ipv4",
            [
                [["1.0.0.0/8"], [normal.url]],
                [["130.59.0.0/16"], [limited.url]],
                [["13.0.0.0/8"], [down]],
            ],
        )
    )
    (folder / "ipv6.json").write_text(
        table("ipv6", [[["2001:4800::/21", "2606:4000::/20"], [normal.url]]])
    )
    (folder / "dns.json").write_text(
        table("dns", [[["com"], [normal.url]], [["no"], [limited.url]], [["net"], [down]]])
    )
    (folder / "asn.json").write_text(table("asn", [[["1-100000"], [normal.url]]]))
    loop, thread = _serve([normal, limited])
    yield RdapServers([normal, limited], down_port, folder)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


# --- a store with confirmed sites, and a configuration pointing at the fakes ------------------


@dataclass
class EnrichEnv:
    config: Config
    db: Database
    tmp: Path
    fetched: dict[str, Fetched]  # host -> what the fake security.txt fetcher answers
    fetch_log: list[tuple[int, str, list[str]]]

    def app(self, now: datetime = T0) -> App:
        app = App(preset=self.config, clock=Clock(now))
        app.__dict__["db"] = self.db  # the fixture's store, already migrated
        return app

    def fetcher(self, targets):
        self.fetch_log.extend(targets)
        return {
            site_id: self.fetched.get(host, Fetched("absent", detail="404"))
            for site_id, host, _urls in targets
        }

    def run(self, site_ids=None, now: datetime = T0, **kwargs):
        return enrich_sites(self.app(now), site_ids, fetch_securitytxt=self.fetcher, **kwargs)


VALID_TXT = (
    b"Contact: mailto:security@themarquetry.com\n"
    b"Contact: https://themarquetry.com/report\n"
    b"Expires: 2099-01-01T00:00:00.000Z\n"
    b"Preferred-Languages: de, en\n"
)


@pytest.fixture
def enrich_env(db: Database, rdap_servers: RdapServers, tmp_path: Path) -> EnrichEnv:
    rdap_servers.reset()
    hosts = tmp_path / "hosts"
    hosts.write_text("".join(f"{ip} {h}\n" for h, ips in HOSTS.items() for ip in ips))
    certs = tmp_path / "certs.csv"
    certs.write_text(
        "country,email,language\nAU,cert@cert.example.au,en\nCH,cert@switch-cert.example.ch,de\n"
        "JP,info@jpcert.example.jp,ja\n"
    )
    config = Config.model_validate(
        {
            "database": {"url": str(db.url)},
            "network": {"hosts_file": str(hosts), "allow_private": True},
            "asn": {
                "ipasn_db": str(ASN_DATA / "ipasn_20140513.dat.gz"),
                "ipasn6_db": str(ASN_DATA / "ipasn6_20151101.dat.gz"),
                "asnames": str(ASN_DATA / "asnames.json.gz"),
            },
            "rdap": {
                "bootstrap_dir": str(rdap_servers.bootstrap_dir),
                "allow_insecure": True,
                "rate_per_server": 100.0,
                "timeout": "5s",
            },
            "escalation": {"cert_contacts": str(certs)},
        }
    )
    body = VALID_TXT
    fetched = {
        "www.themarquetry.com": Fetched(
            "found", url="https://www.themarquetry.com/.well-known/security.txt", body=body
        ),
        "expired.themarquetry.com": Fetched(
            "found",
            url="http://expired.themarquetry.com:8080/security.txt",
            body=body.replace(b"2099", b"2020"),
        ),
    }
    return EnrichEnv(config, db, tmp_path, fetched, [])
