"""The cloaking check without a browser: the markup reader, language, spam in context,
the comparison with the rendered page, and a check that raises becoming an ``error``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from crawl_support import add_urls
from lxml import html as lxml_html
from sqlalchemy import select

from crawler.items import CheckItem
from crawler.signatures import behaviour
from crawler.signatures.cloaking import foreign_language, language_of, spam_hits
from crawler.signatures.engine import Engine
from crawler.signatures.markup import extract
from pipelines.verdict import judge
from pipelines.worker import end_job, handle_batch
from store.models import Check, Url
from tocsin.app import App
from tocsin.config import Config

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SITE = "http://www.hinoki-zakka.jp/"
FARM = "".join(f'<a href="http://spam{n % 7}-shop.net/p{n}.html">buy {n}</a>' for n in range(14))
SHOP = (
    '<html lang="ja"><body><h1>ひのき雑貨店</h1><p>人気ブランド雑貨を激安価格で通販。'
    "送料無料キャンペーン実施中、新作も続々入荷！</p><ul><li><a href=/item/1/>"
    "ブランド食器セット 激安 セール</a></li><li><a href=/item/2/>アウトレット バッグ</a></li>"
    "</ul></body></html>"
)
SHELL = (
    '<html lang="ja"><body><div id="app"></div><script src="/static/app.js"></script></body></html>'
)


@pytest.mark.parametrize(
    "garbage",
    [
        "\x01",
        "\x00",
        "\x00\x01\x0b\x1b[0m\x7f",
        "<!-- \x00 --><p\x00 class=x>\x02</p><![CDATA[ x ]]><?php echo 1; ?>",
        "<b><i></b></i><div id='\x07'>",
        "\ud800\ufffe",
        '<a href="http://[::1">odd</a>',
    ],
)
def test_the_markup_reader_survives_control_bytes_after_a_script(garbage: str) -> None:
    markup = f"<html><body><script>var a = 1;</script>{garbage}<p>spam text</p>{FARM}</body></html>"
    page = extract(markup, SITE)
    assert "spam text" in page.text and "var a" not in page.text
    assert len(page.links) == 14 and page.links[0] == "http://spam0-shop.net/p0.html"


def test_what_the_old_reader_raised_on() -> None:
    """A bad href, an XML declaration, nothing but a comment: lxml or urljoin raise."""
    with pytest.raises(ValueError):
        urljoin(SITE, "http://[::1")
    with pytest.raises(ValueError):
        lxml_html.fromstring("<?xml version='1.0' encoding='utf-8'?><p>x</p>")
    with pytest.raises(lxml_html.etree.ParserError):
        lxml_html.fromstring("<!-- only a comment -->")
    assert extract(
        "<?xml version='1.0' encoding='utf-8'?><p>x</p><a href=/y>y</a>", SITE
    ).links == ["http://www.hinoki-zakka.jp/y"]
    assert extract("<!-- only a comment -->", SITE).text == ""


@pytest.mark.parametrize(
    "markup",
    [
        "",
        "   ",
        "\x00",
        "<",
        "<?xml version='1.0' encoding='utf-8'?><a href=/x>y</a>",
        b"\xff\xfe<a href=/x>y",
    ],
)
def test_the_markup_reader_never_raises(markup: Any) -> None:
    page = extract(markup, SITE)
    assert isinstance(page.text, str) and isinstance(page.links, list)


def test_text_after_a_script_is_kept_and_script_bodies_are_not() -> None:
    page = extract('<html lang="de-DE"><script>var x="hidden"</script>tail<p>Brot</p></html>', SITE)
    assert page.blocks == ["tail", "Brot"] and page.lang == "de"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("人気ブランド雑貨を激安価格で通販。送料無料キャンペーン実施中、新作も続々入荷！", "ja"),
        ("茶叶小铺：品牌名茶特价促销，新品上市，全场包邮，优惠折扣天天有。", "zh"),
        ("한복 마켓: 브랜드 한복 할인 세일, 최저가 보장, 전 상품 무료배송.", "ko"),
        ("Матрёшкин дом: скидки на сувениры, распродажа брендов и подарки.", "ru"),
        (
            "Frisch geröstet: Kaffee aus unserem Outlet, günstig und mit Rabatt auf die Marken.",
            "de",
        ),
        (
            "Fromages affinés : soldes et promo sur les plateaux pour vous et votre famille.",
            "fr",
        ),
        (
            "Daftar sekarang di situs slot dengan bonus untuk member baru yang terpercaya.",
            "id",
        ),
        ("Buy the best tools for your garden and the home, from our shop in the harbor.", "en"),
        ("ok", ""),
    ],
)
def test_language_of(text: str, lang: str) -> None:
    assert language_of(text) == lang


def test_foreign_language() -> None:
    assert foreign_language("de", "ja") and foreign_language("ja", "en")
    assert foreign_language("ja", "latin") and not foreign_language("de", "latin")
    assert not foreign_language("ja", "ja") and not foreign_language("ja", "")


@pytest.mark.parametrize(
    "text",
    [
        "人気ブランド雑貨を激安価格で通販。送料無料、新作、アウトレット、格安、財布、バッグ、時計",
        "Cheap starter kit, brand new; outlet discount on every brand; summer sale.",
        "1:18 replica of the 1965 roadster; die-cast replica cars",
        "Kaffee aus dem Outlet, günstig, Sale, Rabatt auf alle Marken",
        "品牌名茶特价促销，全场包邮，优惠折扣",
        "브랜드 한복 할인 세일, 최저가",
        "leather strap that fits a Rolex Datejust; Omega straps on sale",
    ],
)
def test_ordinary_shop_words_are_not_spam(text: str) -> None:
    assert spam_hits(text) == []


@pytest.mark.parametrize(
    ("text", "least"),
    [
        ("Buy Viagra online without prescription, cheap Cialis from our online pharmacy", 3),
        ("ルイヴィトン スーパーコピー 財布、ロレックス 偽物 時計、N級品", 3),
        ("situs slot gacor terpercaya, judi online, free spins", 3),
        ("Replica Rolex watches and fake Gucci bags", 2),
        ("Лучшее онлайн-казино, ставки у букмекера", 2),
    ],
)
def test_spam_in_context(text: str, least: int) -> None:
    assert len(spam_hits(text)) >= least


SISTERS = (("de", "Deutsch"), ("fr", "Français"), ("cn", "中文"), ("kr", "한국어"),
           ("com", "English"), ("ru", "Русский"))  # fmt: skip


SISTERS = (("de", "Deutsch"), ("fr", "Français"), ("cn", "中文"), ("kr", "한국어"),
           ("com", "English"), ("ru", "Русский"))  # fmt: skip


def _item(served: str, dom: str, bot: str | None = None, referer: str | None = None) -> CheckItem:
    item = CheckItem(1, SITE, "triage", T, route="browser", http_status=200, final_url=SITE)
    item.served_html = served
    item.browser = {"dom": dom, "final_url": SITE, "requests": []}
    for name, html in (("bot", bot), ("referer", referer)):
        if html is not None:
            item.variants[name] = {"status": 200, "location": None, "html": html}
    return item


def _verdict(item: CheckItem) -> Any:
    return Engine.for_config(Config()).evaluate(item)


def test_a_pre_rendered_shop_is_compared_with_the_rendered_page_not_the_shell() -> None:
    verdict = _verdict(_item(SHELL, SHOP, bot=SHOP))
    assert verdict.value == "clean", verdict.evidence


def test_a_bot_copy_with_a_few_partner_links_and_a_language_switcher_is_clean() -> None:
    extra = (
        '<a href="https://www.paypal.com/">PayPal</a><a href="https://pay.line.me/">LINE</a>'
        + "".join(
            f'<a href="https://www.hinoki-zakka.{tld}/">{label}</a>' for tld, label in SISTERS
        )
    )
    bot = SHOP.replace("</body>", extra + "</body>")
    assert _verdict(_item(SHELL, SHOP, bot=bot)).value == "clean"


def test_a_link_farm_only_for_the_bot_is_cloaking() -> None:
    bot = SHOP.replace("</body>", f"<div style=display:none>{FARM}</div></body>")
    verdict = _verdict(_item(SHELL, SHOP, bot=bot, referer=SHOP))
    assert (verdict.value, verdict.family) == ("malicious", "seo-cloaking")
    line = verdict.evidence[0]
    assert "search engines (Googlebot)" in line and "14 links to 7 other site(s)" in line
    assert "the page Chromium rendered" in line and "[.]" in line


def test_the_farm_linked_from_the_rendered_page_too_is_not_cloaking() -> None:
    rendered = SHOP.replace("</body>", f"{FARM}</body>")
    assert _verdict(_item(SHELL, rendered, bot=rendered)).value == "clean"


def test_foreign_language_spam_for_search_referrers_is_cloaking() -> None:
    page = '<html lang="de"><body><h1>Bäckerei</h1><p>Frisches Brot jeden Morgen.</p></body></html>'
    spam = page.replace(
        "</body>",
        "<p>ルイヴィトン スーパーコピー 財布、ロレックス 偽物 時計、シャネル コピー品 バッグ</p>"
        '<a href="http://replica-watch-store.net/p/1.html">1</a></body>',
    )
    verdict = _verdict(_item(page, page, bot=page, referer=spam))
    assert (verdict.value, verdict.family) == ("malicious", "seo-cloaking")
    assert "visitors coming from a search engine" in verdict.evidence[0]
    assert "Japanese spam on a German page" in verdict.evidence[0]
    assert verdict.iocs["domains"] == ["replica-watch-store.net"]


def test_same_language_shop_words_in_the_bot_copy_are_not_cloaking() -> None:
    bot = SHOP.replace(
        "</ul>", "<li>ルイヴィトン 財布 激安 人気 新作 送料無料 格安 ブランド</li></ul>"
    )
    assert _verdict(_item(SHELL, SHOP, bot=bot)).value == "clean"


def test_control_bytes_in_the_bot_copy_do_not_hide_cloaking() -> None:
    bot = SHOP.replace("<h1>", "<script>var a=1;</script>\x01\x00<h1>").replace(
        "</body>", f"{FARM}</body>"
    )
    verdict = _verdict(_item(SHELL, SHOP, bot=bot))
    assert (verdict.value, verdict.family) == ("malicious", "seo-cloaking")


def _old_parser_check(facts: behaviour.Facts) -> Any:
    """A check as the cloaking check's link reader once was: urljoin on every href."""
    markup = facts.item.variants["bot"]["html"]
    for href in lxml_html.fromstring(markup).xpath("//a/@href"):
        urljoin(facts.item.url, href)  # raises on "http://[::1"
    return iter(())


BAD = '<script></script>\x00<a href="http://[::1">x</a><h1>'


def test_a_check_that_raises_on_a_page_is_an_error_with_its_reason(monkeypatch) -> None:
    monkeypatch.setattr(behaviour, "CHECKS", (*behaviour.CHECKS, _old_parser_check))
    item = _item(SHELL, SHOP, bot=SHOP.replace("<h1>", BAD))
    judge(Engine.for_config(Config()), item)
    assert item.verdict == "error"
    assert "the -old-parser-check check failed on this page (ValueError" in item.error
    assert any("failed" in line for line in item.evidence_lines)


def test_a_check_that_raises_does_not_hide_a_malicious_finding(monkeypatch) -> None:
    monkeypatch.setattr(behaviour, "CHECKS", (*behaviour.CHECKS, _old_parser_check))
    bot = SHOP.replace("<h1>", BAD).replace("</body>", f"{FARM}</body>")
    verdict = _verdict(_item(SHELL, SHOP, bot=bot))
    assert (verdict.value, verdict.family) == ("malicious", "seo-cloaking")


def test_the_error_is_stored_and_the_url_retried(db_url: str, tmp_path: Path, monkeypatch) -> None:
    """Through the worker's batch handling and the store, on both engines."""
    monkeypatch.setattr(behaviour, "CHECKS", (*behaviour.CHECKS, _old_parser_check))
    config = Config.model_validate(
        {"database": {"url": db_url}, "evidence": {"dir": str(tmp_path / "evidence")}}
    )
    app = App(preset=config)
    (url_id,) = add_urls(app.db, [SITE]).values()
    item = _item(SHELL, SHOP, bot=SHOP.replace("<h1>", BAD))
    item.url_id = url_id
    token = uuid.uuid4().hex
    try:
        (outcome,) = handle_batch(token, config, T, [item])
    finally:
        end_job(token)
    assert outcome.verdict == "error"
    with app.db.session() as session:
        row = session.get(Check, outcome.check_id)
        assert row.verdict == "error" and "old-parser-check check failed" in row.error
        url = session.scalars(select(Url).where(Url.id == url_id)).one()
        assert url.verdict == "error" and url.next_check_at == T + config.crawl.error_retry_after


def test_the_quoted_spam_has_its_names_defanged() -> None:
    page = '<html lang="ja"><body><h1>歯科</h1><p>一般歯科・小児歯科・予防歯科。</p></body></html>'
    spam = page.replace(
        "</body>",
        "<p>Buy Viagra at www.rx-discount-meds.net/order without prescription from the "
        "online pharmacy, cheap Cialis for you</p></body>",
    )
    verdict = _verdict(_item(page, page, bot=spam))
    line = verdict.evidence[0]
    assert "English spam on a Japanese page" in line
    assert "www[.]rx-discount-meds[.]net/order" in line and "rx-discount-meds.net" not in line


def test_without_a_rendered_page_a_difference_is_only_suspicious() -> None:
    """The browser failed: the shell is all there is to compare with, which a clean
    SPA's pre-rendered copy always differs from, so no notice rests on it."""
    bot = SHOP.replace("</body>", f"{FARM}</body>")
    item = _item(SHELL, "", bot=bot)
    verdict = _verdict(item)
    assert (verdict.value, verdict.family) == ("suspicious", "seo-cloaking")
    assert "no rendered page" in verdict.evidence[0]
    item.route, item.error = "error", "the page did not load"
    assert _verdict(item).value == "error"
