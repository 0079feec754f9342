"""The SSRF guard, with ``allow_private`` off and only the sandbox's 127.10/16 admitted.

Scrapy refuses a redirect to the cloud metadata address and a name mapped to
10.0.0.1; the browser refuses a page's sub-requests to 127.0.0.1 (the canary
sees nothing); and a DNS server that answers first an allowed address and then
127.0.0.1 (rebinding) gets nowhere: the resolver Twisted connects through and
the browser's proxy both check the answer they connect to.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import dns.message
import dns.nameserver
import dns.rdatatype
import dns.rrset
import pytest
from crawl_support import add_urls, new_store, sandbox_config
from sqlalchemy import select
from twisted.internet.error import DNSLookupError

from crawler.browser.proxy import GuardProxy
from crawler.net import GuardedResolver, NetPolicy
from crawler.runner import _ReactorThread, crawl_due
from store import migrate
from store.db import Database
from store.models import Check
from tocsin.app import App
from tocsin.config import NetworkConfig
from tocsin.errors import BlockedAddress

REBIND_NAME = "rebind.attacker-dns.test"
ALLOWED = "127.10.250.250"  # inside the admitted 127.10.0.0/16, nothing listens there


class RebindingDns:
    """A UDP DNS server: the first answer for a name is allowed, later ones are 127.0.0.1."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.answers: Counter[str] = Counter()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            if question.rdtype == dns.rdatatype.A and name == REBIND_NAME:
                self.answers[name] += 1
                address = ALLOWED if self.answers[name] == 1 else "127.0.0.1"
                reply.answer.append(dns.rrset.from_text(question.name, 0, "IN", "A", address))
            self.sock.sendto(reply.to_wire(), peer)

    @property
    def nameserver(self) -> str:
        """This server in ``network.nameservers`` syntax."""
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def rebinding_dns() -> Iterator[RebindingDns]:
    server = RebindingDns()
    yield server
    server.close()


def _strict_policy(*nameservers: str) -> NetPolicy:
    network = NetworkConfig(
        allow_cidrs=["127.10.0.0/16"], dns_timeout="2s", nameservers=list(nameservers)
    )
    return NetPolicy.from_config(network)


@pytest.fixture(scope="module")
def strict_crawl(sandbox, tmp_path_factory):
    """The SSRF sites crawled with the guard on (SQLite; the store paths are tested elsewhere)."""
    folder = tmp_path_factory.mktemp("ssrf")
    db_url = f"sqlite:///{folder / 'tocsin.db'}"
    config = sandbox_config(sandbox, folder, db_url, guard="strict")
    db = Database(db_url)
    migrate.upgrade(db)
    sandbox.web.canary_hits.clear()
    sites = ("ssrf-metadata-redirect", "ssrf-private-name", "ssrf-canary", "clean-bookshop")
    ids = add_urls(db, [sandbox.url(s) for s in sites])
    app = App(config_path=config)
    outcomes, _ = crawl_due(app)
    by_site = {s: outcomes[ids[next(u for u in ids if sandbox.sites[s].host in u)]] for s in sites}
    return by_site, db, list(sandbox.canary_hits)


def test_a_redirect_to_the_metadata_address_is_refused(strict_crawl) -> None:
    outcomes, db, _ = strict_crawl
    outcome = outcomes["ssrf-metadata-redirect"]
    assert (outcome.verdict, outcome.route) == ("error", "blocked")
    with db.session() as session:
        check = session.get(Check, outcome.check_id)
        assert "169.254.169.254" in check.error or "169.254.169.254" in check.route_reason
        assert "link-local" in check.route_reason and "redirect hop 1" in check.route_reason
        assert check.redirect_chain[0]["status"] == 302
        assert check.meta["blocked"][0]["url"].startswith("http://169.254.169.254/")


def test_a_name_mapped_to_a_private_address_is_refused(strict_crawl) -> None:
    outcomes, db, _ = strict_crawl
    outcome = outcomes["ssrf-private-name"]
    assert (outcome.verdict, outcome.route) == ("error", "blocked")
    with db.session() as session:
        assert "10.0.0.1" in session.get(Check, outcome.check_id).route_reason


def test_browser_sub_requests_to_loopback_are_refused_and_recorded(strict_crawl) -> None:
    outcomes, db, canary_hits = strict_crawl
    assert canary_hits == []
    outcome = outcomes["ssrf-canary"]
    assert outcome.route == "browser"
    with db.session() as session:
        blocked = session.get(Check, outcome.check_id).meta["browser"]["blocked"]
    assert blocked and all("127.0.0.1" in b["url"] for b in blocked)
    assert any("loopback" in b["reason"] for b in blocked)
    # The sandbox itself stays reachable under the strict guard.
    assert outcomes["clean-bookshop"].verdict == "clean"


def test_rebinding_is_refused_at_connection_time(rebinding_dns) -> None:
    """The check sees the allowed answer; the connection would see 127.0.0.1 and is refused."""
    reactor_thread = _ReactorThread.get()  # the reactor the crawls run on
    policy = _strict_policy(rebinding_dns.nameserver)
    assert policy.address_for(REBIND_NAME) == ALLOWED  # what a middleware check sees
    time.sleep(1.1)  # the answer's TTL (0, kept at least 1 s) runs out

    async def connect_time_lookup() -> str:
        resolver = GuardedResolver(reactor_thread.reactor, policy)
        deferred = resolver.getHostByName(REBIND_NAME)
        return await deferred.asFuture(asyncio.get_running_loop())

    with pytest.raises(DNSLookupError, match=r"127\.0\.0\.1.*loopback"):
        reactor_thread.submit(connect_time_lookup()).result(10)
    assert policy.blocks.get(REBIND_NAME) is not None
    assert rebinding_dns.answers[REBIND_NAME] == 2


def test_rebinding_is_refused_by_the_browser_proxy(rebinding_dns, sandbox) -> None:
    policy = _strict_policy(rebinding_dns.nameserver)
    assert policy.address_for(REBIND_NAME) == ALLOWED
    time.sleep(1.1)
    port = sandbox.canary_port

    async def tunnel() -> bytes:
        proxy = GuardProxy(policy)
        await proxy.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(f"CONNECT {REBIND_NAME}:{port} HTTP/1.1\r\n\r\n".encode())
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(4096), 5)
            writer.close()
            assert proxy.block_for(REBIND_NAME) is not None
            return answer
        finally:
            await proxy.close()

    answer = asyncio.run(tunnel())
    assert answer.startswith(b"HTTP/1.1 403") and b"loopback" in answer
    assert sandbox.canary_hits == []


def test_a_crawl_through_a_rebinding_name_never_reaches_loopback(
    rebinding_dns, sandbox, tmp_path
) -> None:
    """End to end: whatever the DNS says when, no connection reaches the canary."""
    db_url = new_store(f"sqlite:///{tmp_path / 'tocsin.db'}")
    network = {"nameservers": [rebinding_dns.nameserver]}
    config = sandbox_config(sandbox, tmp_path, db_url, guard="strict", network=network)
    app = App(config_path=config)
    sandbox.web.canary_hits.clear()
    add_urls(app.db, [f"http://{REBIND_NAME}:{sandbox.canary_port}/latest/meta-data/"])
    outcomes, _ = crawl_due(app)
    (outcome,) = outcomes.values()
    assert outcome.verdict in ("offline", "error")
    assert sandbox.canary_hits == []
    assert rebinding_dns.answers[REBIND_NAME] >= 1
    with app.db.session() as session:
        assert session.scalars(select(Check)).one().verdict == outcome.verdict


def test_the_guard_refuses_inward_literals_everywhere() -> None:
    policy = _strict_policy()
    for literal in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "100.64.0.1"):
        with pytest.raises(BlockedAddress):
            policy.address_for(literal)
    assert policy.address_for("127.10.1.20") == "127.10.1.20"
