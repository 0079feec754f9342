"""Templates: every role, kind and language; Japanese; hostile input stays inert."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from pathlib import Path

import pytest
from notify_helpers import T0, Seed, make_app, outbox_messages, parts

from notifier import render, tokens, xarf_reports
from notifier.context import IncidentView
from notifier.safety import defang, defang_text, one_line, valid_address
from notifier.service import notify
from tocsin.config import Config
from tocsin.errors import NotifyError


def _view(**overrides) -> IncidentView:
    values = dict(
        id=1,
        ticket="TCS-AAAA-BBBB",
        family="card-skimmer",
        state="open",
        level=1,
        episode=0,
        first_seen=T0,
        last_confirmed=T0,
        first_notified=None,
        resolved_at=None,
        campaign="c",
        site_id=1,
        host="shop.example.com",
        registered_domain="example.com",
        ips=["127.10.1.5"],
        asn=64500,
        as_name="EXAMPLE",
        prefix="127.10.1.0/24",
        country="JP",
        registrar="Example Registrar",
        cdn=None,
        shared_hosting=False,
        urls=["http://shop.example.com/checkout/"],
        url_count=1,
        evidence_lines=["skimmer posts card numbers to hxxps://evil[.]example/c"],
        rules=["skimmer"],
        confidence=0.9,
        payload_sha256=None,
        content_type="text/html",
        final_url=None,
    )
    values.update(overrides)
    return IncidentView(**values)


def _context(**overrides) -> dict:
    item = {
        "ticket": "TCS-AAAA-BBBB",
        "family": "phishing",
        "first_seen": T0,
        "last_confirmed": T0,
        "urls": ["http://a.example/login"],
        "url_count": 1,
        "evidence_lines": ["login form posts to hxxps://evil[.]example/"],
        "earlier_ticket": "TCS-OLD1-OLD1",
        "earlier_date": T0 - timedelta(days=4),
    }
    site = {
        "host": "a.example",
        "ips": ["127.10.1.5"],
        "asn": 64500,
        "as_name": "X",
        "prefix": "127.10.1.0/24",
        "country": "JP",
        "incidents": [item],
    }
    context = {
        "ticket": "TCS-NEWW-NEWW",
        "kind": "first",
        "level": 1,
        "part": 1,
        "parts": 1,
        "now": T0,
        "recipient": {"email": "abuse@x.example", "role": "hosting", "name": None},
        "cdn": None,
        "cdn_hosts": [],
        "notes": [],
        "sites_new": [site],
        "sites_followup": [],
        "count_new": 1,
        "count_followup": 0,
        "site_count": 1,
        "first_host": "a.example",
        "previous": [],
        "families": ["phishing"],
        "portal_url": "https://b.example/portal/t",
        "org": "tocsin",
        "from_addr": "r@tocsin.example",
        "earlier": {"ticket": "TCS-OLD1-OLD1", "date": T0 - timedelta(days=4)},
    }
    context.update(overrides)
    return context


@pytest.mark.parametrize("language", ["en", "ja"])
@pytest.mark.parametrize("role", render.ROLES)
@pytest.mark.parametrize("kind", render.KINDS)
def test_every_role_kind_and_language_renders(language: str, role: str, kind: str) -> None:
    ctx = _context(kind=kind)
    if kind == "followup":
        ctx.update(sites_followup=ctx["sites_new"], sites_new=[], count_new=0, count_followup=1)
    out = render.render_notice(role, kind, language, ctx, html=True)
    assert out.subject and "\n" not in out.subject
    if kind == "first":
        assert out.subject.startswith("[TCS-NEWW-NEWW]")
    else:
        assert "TCS-OLD1-OLD1" in out.subject and "TCS-OLD1-OLD1" in out.text
        assert "2026-11-16" in out.text  # the earlier notice's date
    assert "a[.]example" in out.text and "hxxp://a[.]example/login" in out.text
    assert "https://b.example/portal/t" in out.text
    assert "127.10.1.5" in out.text and "AS64500" in out.text
    assert "2026-11-20 09:00 UTC" in out.text
    assert out.html and "<html" in out.html
    if language == "ja":
        assert "ご担当者様" in out.text


@pytest.mark.parametrize(
    "language", sorted(p.name for p in render.NOTICES.iterdir() if p.name[0] != "_")
)
def test_the_csirt_notice_lists_the_package_in_every_language(language: str) -> None:
    """Issue 15, point 4: both parts name each incident's folder, the password and the
    portal link; the timestamp line only when package.tsa_url is set."""
    package = {"url": "https://b.example/portal/t/package", "tickets": ["TCS-AAAA-BBBB"]}
    for timestamped in (False, True):
        ctx = _context(package={**package, "timestamped": timestamped})
        out = render.render_notice("cert", "first", language, ctx, html=True)
        for part in (out.text, out.html):
            assert "incidents/TCS-AAAA-BBBB/" in part and "infected" in part
            assert "HAR" in part and "manifest.json" in part
            assert ("manifest.json.tsr" in part) is timestamped
        assert "\n  https://b.example/portal/t/package\n" in out.text
        assert 'href="https://b.example/portal/t/package"' in out.html
    plain = render.render_notice("hosting", "first", language, _context(), html=True)
    assert "/package" not in plain.text and "infected" not in plain.text


def test_languages_fall_back_to_english() -> None:
    assert render.pick_language("ja-JP") == "ja"
    assert render.pick_language("sv") == "en"  # no Swedish phrases
    assert render.pick_language(None) == "en"
    assert {"en", "ja"} <= set(render.languages())


def test_a_jp_site_gets_a_japanese_notice(db_url: str, seed: Seed, tmp_path: Path) -> None:
    jp = seed.contact("abuse@hosting.example.jp", language="ja")
    seed.incident("shop.example.jp", ladder=[(jp, 1, {"language": "ja"})], country="JP")
    notify(make_app(db_url, tmp_path))
    [message] = outbox_messages(tmp_path / "outbox")
    assert message["Content-Language"] == "ja"
    assert "改ざん" in str(message["Subject"])
    text = parts(message)["text"]
    assert "ご担当者様" in text and "shop[.]example[.]jp" in text


HOSTILE_HOST = "evil.example\r\nBcc: victim@example.org"
HOSTILE_LINE = "<script>alert(1)</script>\r\nPortal: https://phish.example/ \u202eexe.txt"


def test_hostile_text_cannot_inject_headers_lines_or_markup(
    db_url: str, seed: Seed, tmp_path: Path
) -> None:
    hosting = seed.contact("abuse@victim-host.example")
    seed.incident(
        "bad.example.com",
        ladder=[(hosting, 1, {"note": "note\r\nX-Injected: yes", "cdn": "CDN<b>\nBcc: x@y"})],
        urls=["http://bad.example.com/<img src=x onerror=alert(1)>\r\nSubject: pwned"],
        evidence=[HOSTILE_LINE, "title: " + HOSTILE_HOST],
    )
    notify(make_app(db_url, tmp_path, notify={"html": True}))
    [message] = outbox_messages(tmp_path / "outbox")
    raw = next((tmp_path / "outbox" / "new").iterdir()).read_bytes()
    headers = email.message_from_bytes(raw, policy=email.policy.default)
    assert headers.get_all("Bcc") is None and headers.get_all("X-Injected") is None
    assert len(headers.get_all("Subject")) == 1
    assert "pwned" not in str(headers["Subject"])
    body = parts(message)
    text, html = body["text"], body["html"]
    for line in text.splitlines():  # nothing starts a line of its own
        assert not line.startswith(("Bcc:", "X-Injected", "Subject: pwned", "Portal:"))
    assert "\u202e" not in text and "\u202e" not in html
    assert "https://phish.example" not in text  # URLs inside evidence are defanged too
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html
    assert "=alert" not in body["csv"].replace("onerror=alert", "")  # no formula cell


def test_safety_helpers() -> None:
    assert one_line("a\r\nb\tc\u2028d\u202e") == "a b c d"
    assert len(one_line("x" * 1000, 50)) == 50
    assert defang("https://evil.example/x?y=1") == "hxxps://evil[.]example/x?y=1"
    assert "[.]" in defang_text("see http://a.example/b now")
    assert valid_address("abuse@example.com")
    for bad in ("a@b\r\nBcc: c@d", "no-at-sign", "a b@c.d", "<a@b.c>", "a@b.c,d@e.f"):
        assert not valid_address(bad)


def test_portal_tokens_are_signed_and_only_hashed() -> None:
    config = Config.model_validate({"board": {"secret": "k", "base_url": "https://b.example/"}})
    token = tokens.new_token(config)
    assert tokens.verify(config, token) == tokens.token_hash(token)
    body, _, tag = token.partition(".")
    assert tokens.verify(config, body + "." + "0" * len(tag)) is None
    assert tokens.verify(config, body) is None
    assert tokens.portal_url(config, token) == f"https://b.example/portal/{token}"
    other = Config.model_validate({"board": {"secret": "other"}})
    assert tokens.verify(other, token) is None


@pytest.mark.parametrize(
    ("family", "type_"),
    [
        ("phishing", "phishing"),
        ("malware-download", "malware"),
        ("drive-by-download", "malware"),
        ("cryptominer", "remote_compromise"),
        ("seo-cloaking", "remote_compromise"),
        ("something-new", "remote_compromise"),
    ],
)
def test_xarf_reports_validate_per_family(family: str, type_: str) -> None:
    report = xarf_reports.build(
        _view(family=family, payload_sha256="ab" * 32),
        org="tocsin",
        contact="r@tocsin.example",
        now=T0,
    )
    assert report["type"] == type_ and report["category"] == "content"
    assert report["timestamp"] == "2026-11-20T09:00:00Z"  # the run's clock, not the wall clock
    assert xarf_reports.validate(report) == []
    if type_ == "remote_compromise":
        assert report["compromise_type"]
    broken = dict(report, url=None)
    assert xarf_reports.validate(broken)


def test_xarf_refuses_an_invalid_report() -> None:
    with pytest.raises(NotifyError, match="does not validate"):
        xarf_reports.build(_view(), org="tocsin", contact="not-an-address", now=T0)
