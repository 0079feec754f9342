"""ASN data, RDAP servers, the mail relay, config, feeds and mutation, over real sockets."""

from __future__ import annotations

import csv
import email
import email.policy
import json
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

import httpx
import pyasn
import pytest
from whoisit.bootstrap import Bootstrap

from tocsin import config as tocsin_config
from tocsin.net.resolver import parse_hosts_file
from tocsin.sandbox import PROVIDERS, REGISTRARS, Sandbox
from tocsin.sandbox.rdap import REAL_DIR

# --------------------------------------------------------------------------- ASN


def test_ipasn_file_maps_each_provider(sandbox: Sandbox) -> None:
    db = pyasn.pyasn(str(sandbox.ipasn_path), as_names_file=str(sandbox.asnames_path))
    for site in sandbox.select(["compromised", "clean", "attacker", "third-party"]):
        provider = PROVIDERS[site.provider]
        assert db.lookup(site.ip) == (provider.asn, provider.cidr), site.id
    assert db.get_as_name(64501) == "HANAMI-NET Hanami Hosting K.K., JP"
    assert "CDN" in db.get_as_name(PROVIDERS["sandflare"].asn)
    assert db.lookup("8.8.8.8") == (None, None)


# --------------------------------------------------------------------------- RDAP


def rdap(sb: Sandbox, server: str, path: str) -> httpx.Response:
    return httpx.get(sb.rdap.base_url(server) + path, timeout=5)


def find_entities(obj: dict, role: str) -> list[dict]:
    found = []
    for entity in obj.get("entities", []):
        if role in entity.get("roles", []):
            found.append(entity)
        found.extend(find_entities(entity, role))
    return found


def vcard_values(entity: dict, prop: str) -> list[str]:
    return [p[3] for p in entity.get("vcardArray", ["vcard", []])[1] if p[0] == prop]


@pytest.mark.parametrize("provider_id", ["hanami", "deichnet", "megashared", "cafezinho"])
def test_rdap_network_objects_have_the_real_shape(sandbox: Sandbox, provider_id: str) -> None:
    provider = PROVIDERS[provider_id]
    sandbox.rdap.throttle_times = 0
    response = rdap(sandbox, "rir", f"ip/{provider.ip(20)}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/rdap+json"
    net = response.json()
    assert net["objectClassName"] == "ip network"
    assert net["startAddress"] == str(provider.network.network_address)
    assert net["endAddress"] == str(provider.network.broadcast_address)
    assert net["cidr0_cidrs"] == [{"v4prefix": str(provider.network.network_address), "length": 24}]
    assert net["country"] == provider.country and net["name"] == provider.net_name
    abuse_emails = [e for ent in find_entities(net, "abuse") for e in vcard_values(ent, "email")]
    assert provider.abuse_email in abuse_emails
    registrants = find_entities(net, "registrant")
    assert provider.name in [v for ent in registrants for v in vcard_values(ent, "fn")]
    autnum = rdap(sandbox, "rir", f"autnum/{provider.asn}").json()
    assert autnum["objectClassName"] == "autnum" and autnum["startAutnum"] == provider.asn


def test_rdap_abuse_sits_where_each_rir_puts_it(sandbox: Sandbox) -> None:
    arin = rdap(sandbox, "rir", "ip/127.10.4.10").json()
    assert [e["roles"] for e in arin["entities"]] == [["registrant"]]
    assert find_entities(arin["entities"][0], "abuse")
    ripe = rdap(sandbox, "rir", "ip/127.10.2.20").json()
    assert any("abuse" in e["roles"] for e in ripe["entities"])


def test_rdap_domain_objects_name_the_registrar(sandbox: Sandbox) -> None:
    domain = rdap(sandbox, "rir", "domain/sakura-wagashi.co.jp").json()
    assert domain["objectClassName"] == "domain"
    (registrar,) = find_entities(domain, "registrar")
    kitsune = REGISTRARS["kitsune"]
    assert registrar["publicIds"] == [
        {"type": "IANA Registrar ID", "identifier": str(kitsune.iana_id)}
    ]
    assert vcard_values(registrar, "fn") == [kitsune.name]
    (abuse,) = find_entities(registrar, "abuse")
    assert vcard_values(abuse, "email") == [kitsune.abuse_email]
    assert rdap(sandbox, "rir", "domain/no-such-domain-here.com").status_code == 404


def test_rdap_throttled_server_answers_429_twice(sandbox: Sandbox) -> None:
    path = "ip/127.10.6.20"
    first = rdap(sandbox, "throttled", path)
    second = rdap(sandbox, "throttled", path)
    third = rdap(sandbox, "throttled", path)
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 200]
    assert first.headers["retry-after"] == "1"
    assert third.json()["country"] == "BR"
    assert [r.status for r in sandbox.rdap.requests("throttled")] == [429, 429, 200]


def test_rdap_down_server_refuses_until_brought_up(sandbox: Sandbox) -> None:
    with pytest.raises(httpx.ConnectError):
        rdap(sandbox, "down", "ip/127.10.3.20")
    sandbox.bring_up_rdap("down")
    assert rdap(sandbox, "down", "ip/127.10.3.20").json()["country"] == "NL"


def test_rdap_real_responses_are_served_verbatim(sandbox: Sandbox) -> None:
    cases = {
        "ip/1.1.1.1": "ip_v4.json",
        "ip/1.1.1.0/24": "cidr_v4.json",
        "ip/130.59.31.80": "ip_v4_2.json",
        "ip/13.72.183.192": "ip_v4_3.json",
        "ip/2001:4860:4860::8888": "ip_v6.json",
        "domain/google.com": "domain1.json",
        "domain/norway.no": "domain2.json",
        "autnum/13335": "asn.json",
        "entity/GOVI": "entity.json",
    }
    for path, name in cases.items():
        assert rdap(sandbox, "real", path).content == (REAL_DIR / name).read_bytes(), path
    assert rdap(sandbox, "real", "domain/sakura-wagashi.co.jp").status_code == 404
    # The .com registry answers for google.com with the real file too.
    assert (
        rdap(sandbox, "rir", "domain/GOOGLE.COM").content
        == (REAL_DIR / "domain1.json").read_bytes()
    )


def _load_bootstrap(folder: Path) -> Bootstrap:
    data = {
        kind: json.loads((folder / f"{kind}.json").read_text())
        for kind in ("asn", "dns", "ipv4", "ipv6")
    }
    data["object"] = {"services": [[["x"], ["http://127.53.0.1/"]]]}
    data["timestamp"] = 1717200000
    boot = Bootstrap()
    boot.load_bootstrap_data(json.dumps(data), allow_insecure=True)
    return boot


def test_bootstrap_files_are_iana_format_and_route_to_the_right_server(sandbox: Sandbox) -> None:
    folder = sandbox.rdap.bootstrap_dir
    for kind in ("dns", "ipv4", "ipv6", "asn"):
        data = json.loads((folder / f"{kind}.json").read_text())
        assert set(data) >= {"description", "publication", "services", "version"}
        for selectors, urls in data["services"]:
            assert selectors and all(isinstance(s, str) for s in selectors)
            assert all(u.startswith("http://127.53.0.") and u.endswith("/") for u in urls)
    boot = _load_bootstrap(folder)
    assert boot.get_dns_endpoints("jp")[0] == [sandbox.rdap.base_url("rir")]
    assert boot.get_dns_endpoints("br")[0] == [sandbox.rdap.base_url("throttled")]
    assert boot.get_asn_endpoints(64503)[0] == [sandbox.rdap.base_url("down")]
    assert boot.get_asn_endpoints(13335)[0] == [sandbox.rdap.base_url("real")]
    ipv4 = json.loads((folder / "ipv4.json").read_text())
    by_cidr = {c: urls[0] for cidrs, urls in ipv4["services"] for c in cidrs}
    for provider in PROVIDERS.values():
        assert by_cidr[provider.cidr] == sandbox.rdap.base_url(provider.rdap)
    real = _load_bootstrap(sandbox.rdap.real_bootstrap_dir)
    assert real.get_dns_endpoints("com")[0] == [sandbox.rdap.base_url("real")]


# --------------------------------------------------------------------------- SMTP


def make_message(to: str, subject: str = "[TOCSIN-T1] Compromised site") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "tocsin-notices@tocsin-sandbox.org"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = "<t1@tocsin-sandbox.org>"
    msg["Reply-To"] = "tickets+T1@tocsin-sandbox.org"
    msg.set_content("hello")
    return msg


def smtp(sb: Sandbox) -> smtplib.SMTP:
    return smtplib.SMTP(sb.smtp.host, sb.smtp.port, timeout=5)


def test_smtp_keeps_every_message(sandbox: Sandbox) -> None:
    with smtp(sandbox) as client:
        client.send_message(make_message("abuse@hanami-hosting.co.jp"))
    (received,) = sandbox.smtp.to("abuse@hanami-hosting.co.jp")
    assert received.mail_from == "tocsin-notices@tocsin-sandbox.org"
    assert received.message_id == "<t1@tocsin-sandbox.org>"
    assert b"Subject: [TOCSIN-T1] Compromised site" in received.data
    assert received.listener == "plain" and not received.tls


def test_smtp_scripted_421_then_accept(sandbox: Sandbox) -> None:
    sandbox.smtp.script("abuse@polderhost.nl", "421 4.7.0 Try again later")
    with smtp(sandbox) as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.send_message(make_message("abuse@polderhost.nl"))
    assert refused.value.recipients["abuse@polderhost.nl"][0] == 421
    with smtp(sandbox) as client:
        client.send_message(make_message("abuse@polderhost.nl"))
    assert len(sandbox.smtp.to("abuse@polderhost.nl")) == 1


def test_smtp_permanent_550(sandbox: Sandbox) -> None:
    sandbox.smtp.script("gone@deichnet-hosting.de", "550 5.1.1 User unknown", repeat_last=True)
    for _ in range(2):
        with smtp(sandbox) as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.send_message(make_message("gone@deichnet-hosting.de"))
        assert refused.value.recipients["gone@deichnet-hosting.de"][0] == 550
    assert sandbox.smtp.to("gone@deichnet-hosting.de") == []


def test_smtp_accept_then_bounce_writes_a_dsn(sandbox: Sandbox) -> None:
    sandbox.smtp.script("abuse@cafezinho-hospedagem.com.br", "bounce")
    with smtp(sandbox) as client:
        client.send_message(make_message("abuse@cafezinho-hospedagem.com.br"))
    assert len(sandbox.smtp.to("abuse@cafezinho-hospedagem.com.br")) == 1
    (key,) = sandbox.smtp.maildir.keys()
    raw = (sandbox.smtp.maildir_path / "new" / key).read_bytes()
    dsn = email.message_from_bytes(raw, policy=email.policy.default)
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    assert dsn["To"] == "tocsin-notices@tocsin-sandbox.org"
    status = next(p for p in dsn.iter_parts() if p.get_content_type() == "message/delivery-status")
    blocks = status.get_payload()
    assert blocks[1]["Final-Recipient"] == "rfc822; abuse@cafezinho-hospedagem.com.br"
    assert blocks[1]["Action"] == "failed" and blocks[1]["Status"] == "5.1.1"
    headers = next(p for p in dsn.iter_parts() if p.get_content_type() == "text/rfc822-headers")
    assert "<t1@tocsin-sandbox.org>" in headers.get_content()


def test_smtp_replies_and_out_of_office(sandbox: Sandbox) -> None:
    sandbox.smtp.script("abuse@hanami-hosting.co.jp", "reply", "ooo")
    for _ in range(2):
        with smtp(sandbox) as client:
            client.send_message(make_message("abuse@hanami-hosting.co.jp"))
    messages = list(sandbox.smtp.maildir.values())
    subjects = sorted(m["Subject"] for m in messages)
    assert subjects == [
        "Automatic reply: [TOCSIN-T1] Compromised site",
        "Re: [TOCSIN-T1] Compromised site",
    ]
    assert all(m["To"] == "tickets+T1@tocsin-sandbox.org" for m in messages)


def test_smtp_starttls_and_auth(sandbox: Sandbox) -> None:
    table = sandbox.smtp.config("starttls")
    assert table["starttls"] is True
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        smtplib.SMTP(table["host"], table["port"], timeout=5) as client,
        pytest.raises(smtplib.SMTPException),
    ):
        client.send_message(make_message("abuse@oakridge-vps.net"))
    with smtplib.SMTP(table["host"], table["port"], timeout=5) as client:
        client.starttls(context=context)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(table["username"], "wrong")
        client.login(table["username"], table["password"])
        client.send_message(make_message("abuse@oakridge-vps.net"))
    table = sandbox.smtp.config("ssl")
    with smtplib.SMTP_SSL(table["host"], table["port"], timeout=5, context=context) as client:
        client.login(table["username"], table["password"])
        client.send_message(make_message("abuse@oakridge-vps.net"))
    received = sandbox.smtp.to("abuse@oakridge-vps.net")
    assert [(m.listener, m.tls, m.auth_user) for m in received] == [
        ("starttls", True, "tocsin"),
        ("ssl", True, "tocsin"),
    ]


def test_cert_contacts_csv(sandbox: Sandbox) -> None:
    rows = list(csv.DictReader(sandbox.cert_contacts_path.open(encoding="utf-8")))
    countries = {row["country"] for row in rows}
    assert countries >= {p.country for p in PROVIDERS.values()}
    assert all(row["email"] and row["language"] for row in rows)


# --------------------------------------------------------------------------- config, feeds


@pytest.mark.parametrize("guard", ["open", "strict"])
def test_written_config_loads(sandbox: Sandbox, tmp_path: Path, guard: str) -> None:
    path = sandbox.write_config(
        tmp_path / "tocsin.toml", "sqlite:///x.db", guard=guard, notify={"mode": "smtp"}
    )
    cfg = tocsin_config.load(path, environ={})
    assert cfg.network.allow_private is (guard == "open")
    assert cfg.network.allow_cidrs == ([] if guard == "open" else ["127.10.0.0/16"])
    assert cfg.network.hosts_file == str(sandbox.hosts_file)
    assert cfg.rdap.allow_insecure and Path(cfg.rdap.bootstrap_dir, "dns.json").is_file()
    assert cfg.smtp.host == "127.25.0.1" and cfg.smtp.port == sandbox.smtp.port
    assert cfg.notify.mode == "smtp" and cfg.notify.from_addr
    assert cfg.notify.outbox_dir == str(tmp_path / "outbox")
    assert Path(cfg.signatures.known_bad).read_text().count("trafficjunction-stats.net") == 1
    assert Path(cfg.escalation.cert_contacts).is_file()
    assert Path(cfg.asn.ipasn_db).is_file() and Path(cfg.asn.asnames).is_file()


def test_write_feed(sandbox: Sandbox, tmp_path: Path) -> None:
    plain = sandbox.write_feed(tmp_path / "feed.txt", kinds=["compromised", "payload"])
    urls = plain.read_text().splitlines()
    expected = sandbox.select(["compromised", "payload"])
    assert urls == [sandbox.url(s.id) for s in expected]
    assert sandbox.url("card-skimmer") in urls
    feed = sandbox.write_feed(tmp_path / "urlhaus.csv", format="urlhaus-csv")
    lines = feed.read_text().splitlines()
    header = next(line for line in lines if line.startswith("# id,"))
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    assert header.lstrip("# ").split(",")[2] == "url"
    assert len(rows) == len(
        sandbox.select(
            ["compromised", "payload", "clean", "tricky-clean", "offline", "hostile", "ssrf"]
        )
    )
    assert all(row[5] == "malware_download" for row in rows)


# --------------------------------------------------------------------------- mutation


def test_move_site_rebinds_and_rewrites_hosts(sandbox: Sandbox) -> None:
    before = sandbox.sites["payload-pe"].ip
    moved = sandbox.move_site("payload-pe", "deichnet")
    assert moved.provider == "deichnet" and moved.ip.startswith("127.10.2.")
    # Every URL of the host moved with it.
    assert sandbox.sites["payload-zip"].ip == moved.ip
    assert parse_hosts_file(sandbox.hosts_file)["www.hillcrest-accounting.com"] == [moved.ip]
    new = httpx.get(
        f"http://{moved.ip}:{sandbox.http_port}{moved.entry}",
        headers={"Host": moved.host},
        timeout=5,
    )
    assert new.status_code == 200 and new.content[:2] == b"MZ"
    old = httpx.get(
        f"http://{before}:{sandbox.http_port}{moved.entry}", headers={"Host": moved.host}, timeout=5
    )
    assert old.status_code == 404
    sandbox.reset()
    assert sandbox.sites["payload-pe"].ip == before
    assert parse_hosts_file(sandbox.hosts_file)["www.hillcrest-accounting.com"] == [before]


def test_set_site_state_validates(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="state"):
        sandbox.set_site_state("card-skimmer", "pwned")
    with pytest.raises(KeyError):
        sandbox.set_site_state("no-such-site", "clean")
