"""Notice languages: every language renders every role, kind and family, in its own words.

The check for leftover English strips what is quoted from the incident (hosts, URLs,
evidence lines, names, addresses), then looks for common English words. English itself
must trip the same check, so it cannot pass by finding nothing.
"""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import timedelta
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import pytest
from notify_helpers import T0, Seed, make_app, outbox_messages, parts

from enrich import language
from notifier import render
from notifier.safety import defang, defang_host
from notifier.service import notify
from tocsin.sandbox.catalogue import FAMILIES

NEW = ("de", "fr", "es", "pt", "nl", "it", "pl", "ru", "zh", "ko")
ALL_FAMILIES = (*FAMILIES, "webshell", "some-new-family")
# Words an untranslated sentence of the English phrases would leave behind. Loanwords the
# CSIRTs of these countries use themselves (phishing, malware, webshell, skimmer, hosting,
# provider, ticket, browser, download, update, website, plugin, password...) are left out,
# and so are words that are also words elsewhere ("die", "is", "we", "to", "will", "real",
# "report", "sites", "message", "national").
_STOP = """
    the and with from this that these those your our you they them their there here what
    where when which who how would could should have has been were are not also only each
    every any some again after before below above about into onto than then please hello
    thank thanks found seen first confirmed reported notice follow compromised malicious
    injected redirected visitors owner owners evidence attached clean cleaning recheck ask
    needed already working help reply replies person subject items unknown known foreign
    credential payment card search engines shown served delete remove scheduled tasks
    outdated stolen attacker attackers victims victim broken someone loading weeks network
    networks constituency sponsor registrant complaint persists informed grateful reach
    listed separately forward customer customers delivery origin pass expired relied
    automatically submit hosted behind hidden
"""
STOP = frozenset(_STOP.split())
# The Latin-script words a notice in a non-Latin script may contain: acronyms, file and
# folder names from the clean-up advice, and the technical names CSIRTs leave untranslated.
_TECHNICAL = """
    ip as csv x arf v json cdn cms seo iframe cron ftp ssh php htaccess index functions wp
    content uploads security txt re utc csirt webshell web pg
"""
TECHNICAL = frozenset(_TECHNICAL.split())
WORD = re.compile(r"[^\W\d_]+")


def _incident(n: int, family: str) -> SimpleNamespace:
    host = f"shop{n}.sandbox-victim.test"
    return SimpleNamespace(
        ticket=f"TCS-{n:04d}-ABCD",
        family=family,
        first_seen=T0 - timedelta(days=2),
        last_confirmed=T0,
        urls=[f"http://{host}/checkout/?step=payment", f"http://{host}/wp-content/x.php"],
        url_count=5,
        evidence_lines=[
            f"script hxxps://cdn-metrics[.]bad-actor[.]test/p.js injected into http://{host}/",
            'page title: "Sign in to continue - Your Bank Online"',
            "form posts card number and CVV to hxxps://collect[.]bad-actor[.]test/c",
        ],
        earlier_ticket="TCS-OLD1-OLD1",
        earlier_date=T0 - timedelta(days=4),
    )


def _context(role: str, kind: str, level: int, families: tuple[str, ...]) -> dict:
    sites = [
        SimpleNamespace(
            host=f"shop{n}.sandbox-victim.test",
            ips=[f"127.20.3.{n}"],
            asn=64512,
            as_name="SANDBOX-HOSTING Example Web Services",
            prefix="127.20.3.0/24",
            country="DE",
            incidents=[_incident(n, family)],
        )
        for n, family in enumerate(families, start=1)
    ]
    half = len(sites) // 2
    new, old = (sites[:half], sites[half:]) if kind == "first" else ([], sites)
    return {
        "ticket": "TCS-NEWW-NEWW",
        "kind": kind,
        "level": level,
        "part": 1,
        "parts": 2,
        "now": T0,
        "recipient": {"email": "abuse@hoster.sandbox.test", "role": role, "name": None},
        "cdn": "Sandbox Edge CDN",
        "cdn_hosts": [s.host for s in sites[:2]],
        "cdn_origin_unknown": True,
        "cdn_origin": "origin.example-shop.de",
        "owner_web_forms": ["https://shop1.sandbox-victim.test/report-a-problem"],
        "security_txt_expired": True,
        "notes": [],  # policy notes stay English (enrich/policy.py): see docs/notices.md
        "sites_new": new,
        "sites_followup": old,
        "count_new": len(new),
        "count_followup": len(old),
        "site_count": len(sites) if level != 2 else 1,
        "first_host": sites[0].host,
        "previous": [
            {"role": r, "date": T0 - timedelta(days=3)}
            for r in ("owner", "hosting", "registrar", "cert")
        ],
        "families": sorted(set(families)),
        "portal_url": "https://board.sandbox.test/portal/tok.sig",
        "org": "Sandbox Abuse Team",
        "from_addr": "reports@tocsin.sandbox.test",
        "earlier": {"ticket": "TCS-OLD1-OLD1", "date": T0 - timedelta(days=4)},
    }


def _quoted(context: dict) -> list[str]:
    """Everything a notice quotes from the incident rather than says itself."""
    out = [context["org"], context["from_addr"], context["portal_url"], context["cdn"]]
    out += [context["recipient"]["email"], context["ticket"], context["earlier"]["ticket"]]
    out += [defang(u) for u in context["owner_web_forms"]] + [defang(context["cdn_origin"])]
    for site in context["sites_new"] + context["sites_followup"]:
        out += [defang_host(site.host), site.as_name]
        for item in site.incidents:
            out += item.evidence_lines + [defang(u) for u in item.urls] + [item.ticket]
    return sorted(out, key=len, reverse=True)


def _words(text: str, context: dict) -> set[str]:
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    for quoted in _quoted(context):
        text = text.replace(quoted, " ")
    return {w.lower() for w in WORD.findall(text)}


@cache
def _render_all(lang: str) -> list[tuple[str, dict, render.Rendered]]:
    out = []
    for role in render.ROLES:
        for kind in render.KINDS:
            for level in (1, 2, 3):
                ctx = _context(role, kind, level, ALL_FAMILIES)
                out.append(
                    (
                        f"{role}/{kind}/{level}",
                        ctx,
                        render.render_notice(role, kind, lang, ctx, html=True),
                    )
                )
    return out


def test_english_trips_the_leftover_check() -> None:
    for where, ctx, out in _render_all("en"):
        left = _words(out.subject + "\n" + out.text + "\n" + (out.html or ""), ctx) & STOP
        assert len(left) > 20, where


@pytest.mark.parametrize("lang", ["ja", *NEW])
def test_no_english_left_outside_the_evidence(lang: str) -> None:
    english = {w for _, c, out in _render_all("en") for w in _words(out.subject + out.text, c)}
    for where, ctx, out in _render_all(lang):
        assert out.text.count("\n") > 40
        words = _words(f"{out.subject}\n{out.text}\n{out.html}", ctx)
        assert not words & STOP, (lang, where, sorted(words & STOP))
        if lang in ("ja", "ru", "zh", "ko"):
            latin = {w for w in words if w.isascii()}
            assert latin <= TECHNICAL, (lang, where, sorted(latin - TECHNICAL))
        assert len(words - english) > 50  # it says things in its own words


def test_every_language_defines_every_phrase_and_family() -> None:
    assert set(NEW) | {"en", "ja"} <= set(render.languages())
    env = render.environment()
    ctx = _context("hosting", "first", 1, ALL_FAMILIES)

    def names(lang: str) -> tuple[set[str], set[str], set[str]]:
        module = env.get_template(f"{lang}/_phrases.txt.j2").make_module(
            {**ctx, "lang": lang, "role": "hosting"}
        )
        public = {k for k in vars(module) if not k.startswith("_")}
        return public, set(module.labels), set(module.rows)

    reference = names("en")
    assert set(ALL_FAMILIES) - {"some-new-family"} <= reference[1]
    for lang in render.languages():
        assert names(lang) == reference, lang


def _display(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


@pytest.mark.parametrize("lang", ["en", "ja", *NEW])
def test_fields_line_up_and_every_family_is_named(lang: str) -> None:
    ctx = _context("owner", "followup", 1, ALL_FAMILIES)
    out = render.render_notice("owner", "followup", lang, ctx)
    env = render.environment()
    phrases = env.get_template(f"{lang}/_phrases.txt.j2").make_module(
        {**ctx, "lang": lang, "role": "owner"}
    )
    columns = set()
    for line in out.text.splitlines():
        for value in ("TCS-0001-ABCD", "2026-11-18 09:00 UTC", "2026-11-16 ("):
            if line.startswith("    ") and value in line and not line.startswith("      "):
                columns.add(_display(line[: line.index(value)]))
    assert len(columns) == 1, (lang, columns)
    for family in ALL_FAMILIES:
        assert phrases.labels.get(family, phrases.unknown_label) in out.text


@pytest.mark.parametrize("lang", ["en", "ja", *NEW])
def test_optional_sentences_only_when_set(lang: str) -> None:
    ctx = _context("hosting", "first", 1, ("phishing", "webshell"))
    full = render.render_notice("hosting", "first", lang, ctx, html=True)
    for key, off in (
        ("cdn_origin_unknown", False),
        ("cdn_origin", ""),
        ("owner_web_forms", []),
        ("security_txt_expired", False),
    ):
        without = render.render_notice("hosting", "first", lang, {**ctx, key: off}, html=True)
        assert len(without.text) < len(full.text) and len(without.html) < len(full.html), key
    bare = {k: v for k, v in ctx.items() if k not in render.OPTIONAL}
    assert render.render_notice("hosting", "first", lang, bare).text  # keys may be absent
    assert "hxxps://shop1[.]sandbox-victim[.]test/report-a-problem" in full.text


@pytest.mark.parametrize("lang", ["en", "ja", *NEW])
def test_html_escapes_phrases_and_values(lang: str) -> None:
    ctx = _context("hosting", "followup", 3, ("card-skimmer",))
    ctx["cdn"] = "<b>CDN</b>"
    ctx["owner_web_forms"] = ["https://x.test/<script>alert(1)</script>"]
    ctx["sites_followup"][0].as_name = "<img src=x onerror=alert(1)>"
    out = render.render_notice("hosting", "followup", lang, ctx, html=True)
    assert f'<html lang="{lang}">' in out.html
    for raw in ("<b>CDN", "<script>", "<img"):
        assert raw not in out.html
    assert "&lt;b&gt;CDN&lt;/b&gt;" in out.html and "&lt;img" in out.html


def test_language_tags_pick_the_notice_language() -> None:
    assert render.pick_language("pt-BR") == "pt"
    assert render.pick_language("zh-Hans-CN") == "zh"
    assert render.pick_language("de_AT") == "de"
    assert render.pick_language("sv") == "en"  # no Swedish phrases: English
    assert render.pick_language("../en") == "en"
    for host, expected in (
        ("loja.example.com.br", "pt"),
        ("shop.example.de", "de"),
        ("www.example.kr", "ko"),
        ("example.pl", "pl"),
        ("example.cn", "zh"),
    ):
        assert render.pick_language(language.choose(host=host).language) == expected


def test_a_br_site_gets_a_brazilian_portuguese_notice(
    db_url: str, seed: Seed, tmp_path: Path
) -> None:
    br = seed.contact("abuse@hospedagem.example.com.br", language="pt-BR")
    seed.incident("loja.example.com.br", ladder=[(br, 1)], country="BR", family="webshell")
    notify(make_app(db_url, tmp_path))
    [message] = outbox_messages(tmp_path / "outbox")
    assert message["Content-Language"] == "pt"
    assert "comprometido" in str(message["Subject"])
    text = parts(message)["text"]
    assert text.startswith("Prezados,") and "loja[.]example[.]com[.]br" in text
    assert "webshell (porta dos fundos)" in text and "Chamado:" in text
