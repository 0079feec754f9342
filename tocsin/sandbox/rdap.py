"""Fake RDAP servers with IANA-format bootstrap files pointing at them.

Responses have the shapes the real registries use (see the real answers in
``data/rdap/``): ``ip network`` objects whose abuse contact
sits where each RIR puts it (nested under the registrant for ARIN and LACNIC,
at the top level for RIPE and APNIC), ``autnum`` objects, and ``domain``
objects from a registry whose ``registrar`` entity carries ``publicIds``
(IANA Registrar ID) and a nested ``abuse`` entity.

Servers (each on its own ``127.53.0.x``):

- ``rir``: answers normally (and serves the real response files for the real
  objects they describe, e.g. ``google.com`` asked of the ``.com`` registry);
- ``throttled``: answers ``429`` with ``Retry-After`` twice per path, then 200;
- ``down``: in the bootstrap, but nothing listens (until :meth:`RdapServers.bring_up`);
- ``real``: serves only the real answers of ``data/rdap/`` byte for byte (whoisit's
  test data, BSD-3-Clause: ``data/rdap/LICENSE.txt``). They live in the package,
  not under ``tests/``, because ``tocsin demo`` runs this server too.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from tocsin.sandbox import rdap_contacts
from tocsin.sandbox.catalogue import (
    PROVIDERS,
    REGISTRARS,
    SUFFIX_REGISTRAR,
    TLD_REGISTRY_SERVER,
    Provider,
    Registrar,
)
from tocsin.sandbox.web import free_port

ADDRESSES = {
    "rir": "127.53.0.1",
    "throttled": "127.53.0.2",
    "down": "127.53.0.3",
    "real": "127.53.0.4",
}
RDAP_TYPE = "application/rdap+json"
SERVER_KEY = web.AppKey("server", str)
CONFORMANCE = ["rdap_level_0", "cidr0", "nro_rdap_profile_0"]
NOTICES = [
    {
        "title": "Terms of Service",
        "description": ["Sandbox registry data for tocsin's tests. Not real."],
        "links": [{"rel": "terms-of-service", "href": "https://rdap.sandbox.invalid/tos"}],
    }
]

# The real response files and what they answer for (``Sandbox(real_rdap_dir=)`` swaps REAL_DIR).
REAL_RESPONSES = Path(__file__).with_name("data") / "rdap"
REAL_DIR = REAL_RESPONSES
REAL_IP = (
    ("1.1.1.0/24", "ip_v4.json"),
    ("130.59.0.0/16", "ip_v4_2.json"),
    ("13.64.0.0/10", "ip_v4_3.json"),
    ("2001:4860::/32", "ip_v6.json"),
)
REAL_DOMAINS = {"google.com": "domain1.json", "norway.no": "domain2.json"}
REAL_DOMAINS["themarquetry.com"] = "domain3.json"
REAL_AUTNUM = {13335: "asn.json"}
REAL_ENTITY = {"govi": "entity.json"}
REAL_BOOTSTRAP = {
    "ipv4": ["1.0.0.0/8", "13.0.0.0/8", "130.0.0.0/8"],
    "ipv6": ["2001:4860::/32"],
    "asn": ["13335-13335"],
    "dns": ["no"],
}


@dataclass(frozen=True)
class RdapRequest:
    server: str
    method: str
    path: str
    status: int
    time: float


def vcard(
    fn: str,
    *,
    kind: str = "org",
    email: list[str] | None = None,
    tel: str = "",
    adr: str = "",
    org: str = "",
) -> list[Any]:
    props: list[list[Any]] = [["version", {}, "text", "4.0"], ["fn", {}, "text", fn]]
    if adr:
        props.append(["adr", {"label": adr}, "text", ["", "", "", "", "", "", ""]])
    if org:
        props.append(["org", {}, "text", org])
    props.append(["kind", {}, "text", kind])
    for address in email or []:
        props.append(["email", {}, "text", address])
    if tel:
        props.append(["tel", {"type": ["work", "voice"]}, "uri", f"tel:{tel}"])
    return ["vcard", props]


def _entity(handle: str, roles: list[str], card: list[Any] | None, **extra: Any) -> dict:
    entity: dict[str, Any] = {"objectClassName": "entity", "handle": handle, "roles": roles}
    if card is not None:
        entity["vcardArray"] = card
    entity.update(extra)
    return entity


def provider_entities(p: Provider) -> list[dict]:
    """The entities of a provider's network, laid out the way its RIR does it."""
    short = p.net_name.split("-")[0]
    abuse = _entity(
        f"ABUSE-{short}",
        ["abuse"],
        vcard(
            "Abuse Contact",
            kind="group",
            email=[p.abuse_email],
            tel=p.abuse_phone,
            adr=p.address,
            org=p.name,
        ),
    )
    tech = _entity(
        f"NOC-{short}",
        ["technical", "administrative"],
        vcard(
            "Network Operations",
            kind="group",
            email=[p.tech_email or f"noc@{p.abuse_email.split('@')[1]}"],
            tel=p.abuse_phone,
            adr=p.address,
        ),
    )
    org_card = vcard(p.name, adr=p.address)
    if p.rdap_style in ("arin", "lacnic"):
        org = _entity(f"ORG-{short}", ["registrant"], org_card, entities=[abuse, tech])
        return [org]
    if p.rdap_style == "apnic":
        abuse = _entity(
            f"IRT-{short}-{p.country}",
            ["abuse"],
            vcard(
                f"IRT-{short}-{p.country}",
                kind="group",
                email=[f"irt@{p.abuse_email.split('@')[1]}", p.abuse_email],
                adr=p.address,
            ),
        )
        return [abuse, tech, _entity(f"ORG-{short}-AP", ["registrant"], org_card)]
    # ripe: abuse at the top, maintainers without vCards, a maintainer nested in abuse
    mnt = _entity(f"{short}-MNT", ["registrant"], None)
    abuse["entities"] = [_entity(f"{short}-MNT", ["registrant"], None)]
    return [_entity(f"ORG-{short}1-RIPE", ["registrant"], org_card), tech, mnt, abuse]


def network_object(p: Provider, base_url: str) -> dict:
    net = p.network
    return {
        "rdapConformance": CONFORMANCE,
        "notices": NOTICES,
        "objectClassName": "ip network",
        "handle": f"NET-{str(net.network_address).replace('.', '-')}-1",
        "startAddress": str(net.network_address),
        "endAddress": str(net.broadcast_address),
        "ipVersion": "v4",
        "name": p.net_name,
        "type": "ASSIGNED PA",
        "country": p.country,
        "parentHandle": "NET-127-10-0-0-0",
        "status": ["active"],
        "cidr0_cidrs": [{"v4prefix": str(net.network_address), "length": net.prefixlen}],
        "events": [
            {"eventAction": "registration", "eventDate": "2012-04-02T09:00:00Z"},
            {"eventAction": "last changed", "eventDate": "2023-11-20T14:31:07Z"},
        ],
        "links": [
            {
                "value": f"{base_url}ip/{net}",
                "rel": "self",
                "type": RDAP_TYPE,
                "href": f"{base_url}ip/{net}",
            }
        ],
        "port43": "whois.sandbox.invalid",
        "entities": provider_entities(p),
    }


def autnum_object(p: Provider, base_url: str) -> dict:
    return {
        "rdapConformance": CONFORMANCE,
        "notices": NOTICES,
        "objectClassName": "autnum",
        "handle": f"AS{p.asn}",
        "startAutnum": p.asn,
        "endAutnum": p.asn,
        "name": p.as_name.split()[0],
        "type": "DIRECT ALLOCATION",
        "country": p.country,
        "status": ["active"],
        "links": [{"rel": "self", "type": RDAP_TYPE, "href": f"{base_url}autnum/{p.asn}"}],
        "entities": provider_entities(p),
    }


def domain_object(domain: str, registrar: Registrar, base_url: str) -> dict:
    digest = sum(ord(c) for c in domain) * 7919
    suffix = domain.split(".", 1)[1].upper().replace(".", "_")
    return {
        "rdapConformance": ["rdap_level_0", "icann_rdap_response_profile_0"],
        "notices": NOTICES,
        "objectClassName": "domain",
        "handle": f"{digest}_DOMAIN_{suffix}-SBX",
        "ldhName": domain.upper() if domain.endswith((".com", ".net")) else domain,
        "status": ["client transfer prohibited"],
        "links": [{"rel": "self", "type": RDAP_TYPE, "href": f"{base_url}domain/{domain}"}],
        "events": [
            {"eventAction": "registration", "eventDate": "2015-06-11T08:12:40Z"},
            {"eventAction": "expiration", "eventDate": "2099-06-11T08:12:40Z"},
            {"eventAction": "last update of RDAP database", "eventDate": "2024-05-01T00:00:00Z"},
        ],
        "nameservers": [
            {"objectClassName": "nameserver", "ldhName": f"NS{i}.SANDBOX-DNS.NET"} for i in (1, 2)
        ],
        "secureDNS": {"delegationSigned": False},
        "entities": [
            _entity(
                str(registrar.iana_id),
                ["registrar"],
                vcard(registrar.name),
                publicIds=[{"type": "IANA Registrar ID", "identifier": str(registrar.iana_id)}],
                links=[{"rel": "about", "href": registrar.url}],
                entities=[
                    {
                        "objectClassName": "entity",
                        "roles": ["abuse"],
                        "vcardArray": [
                            "vcard",
                            [
                                ["version", {}, "text", "4.0"],
                                ["fn", {}, "text", ""],
                                ["tel", {"type": "voice"}, "uri", f"tel:{registrar.abuse_phone}"],
                                ["email", {}, "text", registrar.abuse_email],
                            ],
                        ],
                    }
                ],
            ),
            _entity(
                "",
                ["registrant"],
                vcard("REDACTED FOR PRIVACY", kind="individual"),
                remarks=[{"title": "REDACTED FOR PRIVACY", "type": "object redacted"}],
            ),
        ],
    }


def error_object(status: int, title: str) -> dict:
    return {
        "rdapConformance": ["rdap_level_0"],
        "errorCode": status,
        "title": title,
        "notices": NOTICES,
    }


def registrar_for(domain: str, default: str | None = None) -> Registrar:
    suffix = domain.split(".", 1)[1] if "." in domain else domain
    return REGISTRARS[default or SUFFIX_REGISTRAR.get(suffix, "bluewhale")]


class RdapServers:
    """The RDAP servers, their request log, and the bootstrap files naming them."""

    def __init__(self, workdir: Path, domains: dict[str, str]) -> None:
        self.workdir = workdir
        self.domains = domains  # registered domain -> registrar id
        self.bootstrap_dir = workdir / "rdap-bootstrap"
        self.real_bootstrap_dir = workdir / "rdap-bootstrap-real"
        self.ports: dict[str, int] = {}
        self.log: list[RdapRequest] = []
        self.throttle_times = 2
        self.retry_after = 1
        self._counts: Counter[tuple[str, str]] = Counter()
        self._runners: dict[str, web.AppRunner] = {}

    # ------------------------------------------------------------------ lifecycle

    def base_url(self, server: str) -> str:
        return f"http://{ADDRESSES[server]}:{self.ports[server]}/"

    async def start(self) -> None:
        for name in ("rir", "throttled", "real"):
            await self._serve(name)
        self.ports["down"] = free_port(ADDRESSES["down"])
        self.write_bootstrap()

    async def _serve(self, name: str) -> None:
        app = web.Application()
        app[SERVER_KEY] = name
        app.router.add_get("/{tail:.*}", self.handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        for _attempt in range(10):
            port = self.ports.get(name) or free_port(ADDRESSES[name])
            try:
                await web.TCPSite(runner, ADDRESSES[name], port).start()
                self.ports[name] = port
                break
            except OSError:
                if name in self.ports:
                    await runner.cleanup()
                    raise
        self._runners[name] = runner

    async def bring_up(self, name: str = "down") -> None:
        """Start a server that was down, on the port the bootstrap already names."""
        if name not in self._runners:
            await self._serve(name)

    async def take_down(self, name: str) -> None:
        runner = self._runners.pop(name, None)
        if runner is not None:
            await runner.cleanup()

    async def stop(self) -> None:
        for name in list(self._runners):
            await self.take_down(name)

    def reset(self) -> None:
        self.log.clear()
        self._counts.clear()
        self.throttle_times = 2

    def requests(self, server: str | None = None) -> list[RdapRequest]:
        return [r for r in self.log if server is None or r.server == server]

    # ------------------------------------------------------------------ bootstrap files

    def write_bootstrap(self) -> None:
        """IANA-format ``dns.json``, ``ipv4.json``, ``ipv6.json``, ``asn.json``."""
        ipv4: dict[str, list[str]] = {}
        asn: dict[str, list[str]] = {}
        for p in PROVIDERS.values():
            ipv4.setdefault(p.rdap, []).append(p.cidr)
            asn.setdefault(p.rdap, []).append(f"{p.asn}-{p.asn}")
        dns: dict[str, list[str]] = {}
        for tld, server in TLD_REGISTRY_SERVER.items():
            dns.setdefault(server, []).append(tld)
        tables = {
            "ipv4": {**ipv4, "real": REAL_BOOTSTRAP["ipv4"]},
            "ipv6": {"real": REAL_BOOTSTRAP["ipv6"]},
            "asn": {**asn, "real": REAL_BOOTSTRAP["asn"]},
            "dns": {**dns, "real": REAL_BOOTSTRAP["dns"]},
        }
        self._write(self.bootstrap_dir, tables)
        real = {k: {"real": v} for k, v in REAL_BOOTSTRAP.items()}
        real["dns"] = {"real": ["com", "no"]}
        self._write(self.real_bootstrap_dir, real)

    def _write(self, folder: Path, tables: dict[str, dict[str, list[str]]]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        titles = {
            "ipv4": "IPv4 address allocations",
            "ipv6": "IPv6 address allocations",
            "asn": "Autonomous System Number allocations",
            "dns": "Domain Name System registrations",
        }
        for kind, by_server in tables.items():
            data = {
                "description": f"RDAP bootstrap file for {titles[kind]} (tocsin sandbox)",
                "publication": "2024-06-01T00:00:00Z",
                "services": [
                    [sorted(selectors), [self.base_url(server)]]
                    for server, selectors in sorted(by_server.items())
                ],
                "version": "1.0",
            }
            (folder / f"{kind}.json").write_text(json.dumps(data, indent=1), encoding="utf-8")

    # ------------------------------------------------------------------ answers

    async def handle(self, request: web.Request) -> web.Response:
        server = request.app[SERVER_KEY]
        path = request.path
        if server == "throttled":
            key = (server, path)
            self._counts[key] += 1
            if self._counts[key] <= self.throttle_times:
                return self._reply(
                    server,
                    request,
                    429,
                    error_object(429, "Too Many Requests"),
                    {"Retry-After": str(self.retry_after)},
                )
        if server == "real":
            found = self.real_file(path)
        else:
            found = self.sandbox_object(path, self.base_url(server)) or self.real_file(path)
        if found is None:
            return self._reply(server, request, 404, error_object(404, "Not Found"))
        return self._reply(server, request, 200, found)

    def _reply(
        self,
        server: str,
        request: web.Request,
        status: int,
        body: dict | bytes,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self.log.append(RdapRequest(server, request.method, request.path_qs, status, time.time()))
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return web.Response(
            body=data,
            status=status,
            headers={
                "Content-Type": RDAP_TYPE,
                "Access-Control-Allow-Origin": "*",
                **(headers or {}),
            },
        )

    def sandbox_object(self, path: str, base_url: str) -> dict | None:
        parts = [p for p in path.split("/") if p]
        if len(parts) < 2:
            return None
        kind, value = parts[0], "/".join(parts[1:])
        if kind == "ip":
            try:
                net = ipaddress.ip_network(value, strict=False)
            except ValueError:
                return None
            for p in PROVIDERS.values():
                if net.version == 4 and net.subnet_of(p.network):  # type: ignore[arg-type]
                    if p.abuse_via:  # sub-allocated: its parents answer too (rdap_contacts.py)
                        return rdap_contacts.network_object(net, base_url, self)  # type: ignore[arg-type]
                    return network_object(p, base_url)
            if net.version == 4:
                return rdap_contacts.network_object(net, base_url, self)  # type: ignore[arg-type]
            return None
        if kind == "entity":
            return rdap_contacts.entity_object(value)
        if kind == "autnum":
            number = value.upper().removeprefix("AS")
            for p in PROVIDERS.values():
                if number == str(p.asn):
                    return autnum_object(p, base_url)
            return None
        if kind == "domain":
            domain = value.lower().rstrip(".")
            if domain in self.domains:
                return domain_object(domain, REGISTRARS[self.domains[domain]], base_url)
            return None
        return None

    @staticmethod
    def real_file(path: str) -> bytes | None:
        parts = [p for p in path.split("/") if p]
        if len(parts) < 2:
            return None
        kind, value = parts[0], "/".join(parts[1:])
        name: str | None = None
        if kind == "ip":
            try:
                net = ipaddress.ip_network(value, strict=False)
            except ValueError:
                return None
            for cidr, filename in REAL_IP:
                real = ipaddress.ip_network(cidr)
                if net.version == real.version and net.subnet_of(real):  # type: ignore[arg-type]
                    name = filename
                    if "/" in value and filename == "ip_v4.json":
                        name = "cidr_v4.json"
                    break
        elif kind == "domain":
            name = REAL_DOMAINS.get(value.lower().rstrip("."))
        elif kind == "autnum":
            try:
                name = REAL_AUTNUM.get(int(value.upper().removeprefix("AS")))
            except ValueError:
                return None
        elif kind == "entity":
            name = REAL_ENTITY.get(value.lower())
        if name is None or not (REAL_DIR / name).is_file():
            return None
        return (REAL_DIR / name).read_bytes()
