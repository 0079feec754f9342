"""Pages for the SEO-cloaking false-positive cases (issue 11, points 6 and 7).

Clean shops that serve search engines a pre-rendered copy of their single-page
app (dynamic rendering) while a browser gets an empty shell that a script fills
in, in many languages and with ordinary shop words ("cheap", "outlet", "激安",
"ブランド"...); and cloaked sites that must still be caught: an outbound link
farm, foreign-language pharma, casino or counterfeit-brand spam, shown only to
a search engine's user agent or only to visitors from a search page, one of
them with control bytes and odd markup after a ``<script>``. All synthetic.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

from tocsin.sandbox.pages import (
    SEARCH_BOTS,
    SEARCH_REFERERS,
    Env,
    Reply,
    Result,
    behaviour,
    common_files,
    js,
    page,
)


@dataclass(frozen=True)
class Shop:
    """One shop's catalogue page: what the app renders and the pre-renderer serves."""

    lang: str
    tagline: str
    products: tuple[tuple[str, str], ...]
    footer: str
    nav: tuple[tuple[str, str], ...] = ()
    extras: dict[str, str] = field(default_factory=dict)


_NAV = {
    "ja": (("ホーム", "/"), ("新着", "/new/"), ("セール", "/sale/"), ("お問い合わせ", "/contact/")),
    "de": (("Start", "/"), ("Neu", "/neu/"), ("Sale", "/sale/"), ("Kontakt", "/kontakt/")),
    "fr": (("Accueil", "/"), ("Nouveautés", "/nouveau/"), ("Soldes", "/soldes/")),
    "es": (("Inicio", "/"), ("Novedades", "/novedades/"), ("Rebajas", "/rebajas/")),
    "pt": (("Início", "/"), ("Novidades", "/novidades/"), ("Promoção", "/promocao/")),
    "zh": (("首页", "/"), ("新品", "/new/"), ("特价", "/sale/")),
    "ko": (("홈", "/"), ("신상품", "/new/"), ("세일", "/sale/")),
    "ru": (("Главная", "/"), ("Новинки", "/new/"), ("Распродажа", "/sale/")),
    "en": (("Home", "/"), ("New in", "/new/"), ("Sale", "/sale/"), ("Contact", "/contact/")),
}

SHOPS: dict[str, Shop] = {
    "fp-shop-ja": Shop(
        "ja",
        "人気ブランド雑貨を激安価格で通販。送料無料キャンペーン実施中、新作も続々入荷！",
        (
            ("ブランド食器セット 激安 セール", "¥3,980"),
            ("人気の財布 新作 送料無料", "¥5,500"),
            ("格安 腕時計 ベルト 交換用", "¥1,200"),
            ("アウトレット バッグ 通販限定", "¥7,800"),
        ),
        "© 2024 ひのき雑貨店 通販サイト",
    ),
    "fp-shop-ja-partners": Shop(
        "ja",
        "京都の着物レンタル。人気の振袖から格安プランまで、ブランド帯も販売しています。",
        (
            ("振袖レンタル 人気プラン", "¥19,800"),
            ("浴衣 格安 セット 送料無料", "¥4,980"),
            ("ブランド帯 新作 販売", "¥12,000"),
        ),
        "© 2024 着物レンタル はな",
    ),
    "fp-shop-de": Shop(
        "de",
        "Frisch geröstet in Bremen: Kaffee aus unserem Outlet, günstig und mit Rabatt auf "
        "alle Marken. Sale bis Sonntag, versandkostenfrei ab 30 Euro.",
        (
            ("Espresso Hausmarke 1 kg – Sale", "14,90 €"),
            ("Filterkaffee günstig im Outlet", "9,50 €"),
            ("Markenmühle mit 20 % Rabatt", "79,00 €"),
            ("Cheap & Cheerful Probierset", "12,00 €"),
        ),
        "© 2024 Kaffeerösterei Outlet GmbH. Alle Rechte vorbehalten.",
    ),
    "fp-shop-de-switcher": Shop(
        "de",
        "Tee aus dem Kirschgarten: grüner Tee, Kräutertee und Zubehör für Ihre Teestunde. "
        "Alle Marken vorrätig, Versand in ganz Europa.",
        (
            ("Sencha Kirschblüte 100 g", "8,90 €"),
            ("Rooibos Vanille, günstig im Vorteilspack", "11,50 €"),
            ("Teekanne aus Gusseisen – Sale", "39,00 €"),
        ),
        "© 2024 Kirschgarten Tee. Alle Rechte vorbehalten.",
    ),
    "fp-shop-fr": Shop(
        "fr",
        "Fromages affinés à la ferme : soldes d'hiver, promo sur les plateaux et prix pas "
        "cher pour les grandes marques du terroir. Livraison discount en point relais.",
        (
            ("Comté 24 mois – soldes", "12,90 €"),
            ("Plateau découverte pas cher", "24,00 €"),
            ("Brie de Meaux, marque fermière", "8,50 €"),
        ),
        "© 2024 Fromagerie Dupont. Tous droits réservés.",
    ),
    "fp-shop-es": Shop(
        "es",
        "Zapatería Solano: rebajas de temporada, outlet de marcas y calzado barato con "
        "descuento. Envío gratis en pedidos superiores a 40 euros.",
        (
            ("Botines de piel – rebajas", "59,90 €"),
            ("Zapatillas baratas outlet", "29,00 €"),
            ("Mocasines de marca con descuento", "45,00 €"),
        ),
        "© 2024 Zapatería Solano. Todos los derechos reservados.",
    ),
    "fp-shop-pt": Shop(
        "pt",
        "Sapataria Bela: promoção de verão, outlet de marcas e sapatos baratos com desconto. "
        "Frete grátis para todo o Brasil.",
        (
            ("Sandália de couro em promoção", "R$ 129,90"),
            ("Tênis barato da outlet", "R$ 89,00"),
            ("Bota de marca com desconto", "R$ 259,00"),
        ),
        "© 2024 Sapataria Bela. Todos os direitos reservados.",
    ),
    "fp-shop-zh": Shop(
        "zh",
        "茶叶小铺：品牌名茶特价促销，新品上市，全场包邮，优惠折扣天天有。",
        (
            ("西湖龙井 特价 250克", "¥168"),
            ("品牌普洱茶饼 折扣", "¥299"),
            ("白茶礼盒 包邮 优惠", "¥228"),
        ),
        "© 2024 茶叶小铺 版权所有",
    ),
    "fp-shop-ko": Shop(
        "ko",
        "한복 마켓: 브랜드 한복 할인 세일, 최저가 보장, 전 상품 무료배송. 신상품 매주 입고!",
        (
            ("여성 생활한복 세일", "₩59,000"),
            ("아동 한복 최저가 할인", "₩39,000"),
            ("브랜드 노리개 신상품", "₩25,000"),
        ),
        "© 2024 한복 마켓. 모든 권리 보유.",
    ),
    "fp-shop-ru": Shop(
        "ru",
        "Матрёшкин дом: скидки на сувениры, распродажа брендов и дешёвые подарки. "
        "Бесплатная доставка по всей России.",
        (
            ("Матрёшка ручной работы – скидка", "1 990 ₽"),
            ("Платок павлопосадский, распродажа", "3 500 ₽"),
            ("Дешёвые магниты, набор брендов", "450 ₽"),
        ),
        "© 2024 Матрёшкин дом. Все права защищены.",
    ),
    "fp-shop-replica-models": Shop(
        "en",
        "Scale replica models: die-cast replica cars, cheap starter kits, a discount outlet "
        "for the big brands, and a summer sale on every brand we stock.",
        (
            ("1:18 replica of the 1965 roadster – sale", "$89.00"),
            ("Cheap starter kit, brand new", "$19.99"),
            ("Outlet: discount replica locomotive", "$149.00"),
            ("Brand-name paint set", "$24.50"),
        ),
        "© 2024 Scale Replica Models. All rights reserved.",
    ),
    "fp-shop-straps": Shop(
        "en",
        "Not a replica shop: genuine leather straps that fit Rolex, Omega and Seiko. "
        "Outlet prices, discount on every brand, cheap shipping worldwide.",
        (
            ("20 mm leather strap, fits Rolex Datejust", "$45.00"),
            ("Rubber strap for Omega Seamaster – sale", "$39.00"),
            ("NATO strap, cheap and tough", "$12.00"),
        ),
        "© 2024 Strapworks Outlet. All rights reserved.",
    ),
    "fp-shop-hardware": Shop(
        "en",
        "Harbor Hardware: tools, fixings and garden supplies. Cheap deals every week, "
        "discount for trade accounts, clearance outlet in store.",
        (
            ("Cordless drill 18 V", "$99.00"),
            ("Wood screws, box of 500 – sale", "$8.50"),
            ("Garden hose 25 m", "$29.00"),
        ),
        "© 2024 Harbor Hardware. All rights reserved.",
    ),
}

_APP_JS = """/* storefront app: renders the catalogue from the embedded state */
(function(d){
  var state = JSON.parse(d.getElementById('shop-state').textContent);
  var root = d.getElementById('app');
  function el(tag, text, attrs){ var e = d.createElement(tag);
    if (text) e.textContent = text;
    for (var k in (attrs || {})) e.setAttribute(k, attrs[k]);
    return e; }
  var header = el('header'); header.appendChild(el('h1', state.title));
  var nav = el('nav');
  state.nav.forEach(function(n){ nav.appendChild(el('a', n[0], {href: n[1]})); });
  header.appendChild(nav); root.appendChild(header);
  var main = el('main'); main.appendChild(el('p', state.tagline, {'class': 'tagline'}));
  var list = el('ul', '', {'class': 'products'});
  state.products.forEach(function(p, i){
    var li = el('li'); var a = el('a', '', {href: '/item/' + i + '/'});
    a.appendChild(el('span', p[0], {'class': 'name'})); a.appendChild(d.createTextNode(' '));
    a.appendChild(el('span', p[1], {'class': 'price'})); li.appendChild(a); list.appendChild(li);
  });
  main.appendChild(list); root.appendChild(main);
  root.appendChild(el('footer', state.footer));
})(document);
"""


def _searcher(env: Env) -> tuple[bool, bool]:
    """(a search engine's user agent, a visitor from a search page)."""
    ua = env.request.headers.get("User-Agent", "").lower()
    referer = env.request.headers.get("Referer", "").lower()
    return any(b in ua for b in SEARCH_BOTS), any(r in referer for r in SEARCH_REFERERS)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _main_html(title: str, shop: Shop) -> str:
    """The catalogue as the app renders it, as HTML (what the pre-renderer serves)."""
    nav = "".join(f'<a href="{_e(p)}">{_e(label)}</a>' for label, p in _nav(shop))
    items = "".join(
        f'<li><a href="/item/{i}/"><span class="name">{_e(name)}</span> '
        f'<span class="price">{_e(price)}</span></a></li>'
        for i, (name, price) in enumerate(shop.products)
    )
    return (
        f"<header><h1>{_e(title)}</h1><nav>{nav}</nav></header>"
        f'<main><p class="tagline">{_e(shop.tagline)}</p><ul class="products">{items}</ul></main>'
        f"<footer>{_e(shop.footer)}</footer>"
    )


def _nav(shop: Shop) -> tuple[tuple[str, str], ...]:
    return shop.nav or _NAV.get(shop.lang, _NAV["en"])


def _document(title: str, lang: str, body: str, head: str = "") -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>{head}</head><body>{body}</body></html>\n"
    )


def _shell(env: Env, shop: Shop) -> Reply:
    """What a browser gets: an empty shell, the state, and the app that renders it."""
    title = env.site.title or env.site.host
    state = {"title": title, "tagline": shop.tagline, "products": shop.products,
             "footer": shop.footer, "nav": _nav(shop)}  # fmt: skip
    data = json.dumps(state, ensure_ascii=False).replace("</", "<\\/")
    body = (
        '<div id="app"><noscript>Please enable JavaScript.</noscript></div>'
        f'<script id="shop-state" type="application/json">{data}</script>'
        '<script src="/static/app.js" defer></script>'
    )
    return Reply(_document(title, shop.lang, body))


def _extras(env: Env, tag: str) -> str:
    """What a shop's pre-rendered copy has beyond the app's first render."""
    host = env.site.host
    if tag == "extra-internal":
        crumbs = "".join(
            f'<a href="/category/{c}/">{c.title()}</a> ' for c in ("kits", "cars", "rail")
        )
        return f'<nav class="breadcrumbs">{crumbs}<a href="/sitemap/">Sitemap</a></nav>'
    if tag == "partners":
        return (
            '<aside class="partners"><a href="https://www.kuronekoyamato.co.jp/">配送</a> '
            '<a href="https://www.paypal.com/jp/">PayPal</a> '
            '<a href="https://pay.line.me/jp/">LINE Pay</a> '
            '<a href="/guide/">ご利用ガイド</a> <a href="/faq/">よくある質問</a></aside>'
        )
    if tag == "switcher":
        label = host.split(".")[1]  # www.<label>.de
        sisters = (
            ("English", f"www.{label}.co.uk"), ("Français", f"www.{label}.fr"),
            ("Español", f"www.{label}.es"), ("Italiano", f"www.{label}.it"),
            ("Nederlands", f"www.{label}.nl"), ("日本語", f"www.{label}.jp"),
            ("中文", f"www.{label}.cn"), ("한국어", f"www.{label}.kr"),
            ("Русский", f"www.{label}.ru"), ("International", f"www.{label}.com"),
        )  # fmt: skip
        links = "".join(f'<a hreflang="x" href="https://{h}/">{n}</a> ' for n, h in sisters)
        return f'<div class="language-switcher">Deutsch {links}</div>'
    if tag == "many-links":
        cats = "".join(f'<li><a href="/c/{n}/">Department {n}</a></li>' for n in range(300))
        help_links = "".join(
            f'<a href="https://help.harbor-hardware.com/article/{n}/">Help {n}</a> '
            for n in range(40)
        )
        return f'<ul class="sitemap">{cats}</ul><div class="help">{help_links}</div>'
    return ""


def _prerendered(env: Env, shop: Shop, extra: str = "") -> Reply:
    title = env.site.title or env.site.host
    extras = "".join(_extras(env, tag) for tag in env.site.tags)
    return Reply(_document(title, shop.lang, _main_html(title, shop) + extras + extra))


@behaviour("fp-shop")
async def fp_shop(env: Env) -> Result:
    """A clean SPA shop: a shell for browsers, a pre-rendered copy for search engines."""
    shop = SHOPS[env.site.id]
    if env.path == "/static/app.js":
        return js(_APP_JS)
    if env.path != "/":
        return common_files(env)
    bot, _ = _searcher(env)
    return _prerendered(env, shop) if bot else _shell(env, shop)


# --------------------------------------------------------------------------- cloaking


def _farm(env: Env, count: int = 24) -> str:
    """An outbound link farm over the spam hosts, hidden from sight."""
    keys = ("spam", "spam-pharma", "spam-casino", "spam-replica", "spam-farm", "spam-loans")
    words = ("best-price", "buy-online", "top-deal", "review", "official", "store")
    links = "".join(
        f'<a href="{env.atk(keys[i % len(keys)])}/{words[i % len(words)]}-{i}.html">'
        f"{words[i % len(words)].replace('-', ' ')} {i}</a> "
        for i in range(count)
    )
    return f'<div style="position:absolute;left:-9999px">{links}</div>'


_SPAM = {
    # English pharma, for a Japanese page.
    "pharma-en": (
        "spam-pharma",
        "<h2>Buy Viagra online without prescription</h2><p>Cheap Cialis and Levitra from our "
        "online pharmacy, generic sildenafil and tadalafil shipped discreetly to your door. "
        "Order Kamagra today and get the best price.</p>",
    ),
    # Japanese counterfeit-brand spam, for a German page.
    "replica-ja": (
        "spam-replica",
        "<h2>スーパーコピー ブランド 激安 通販専門店</h2><p>ルイヴィトン スーパーコピー 財布、"
        "ロレックス 偽物 時計、シャネル コピー品 バッグを最高品質でお届けします。N級品のみ取扱い、"
        "送料無料。</p>",
    ),
    # Indonesian slot spam, for a Brazilian page.
    "casino-id": (
        "spam-casino",
        "<h2>Situs slot gacor terpercaya dan judi online resmi</h2><p>Daftar sekarang di situs "
        "slot gacor dengan free spins dan bonus untuk member baru. Judi slot online yang "
        "terpercaya, dan live casino dari provider terbaik di Indonesia.</p>",
    ),
    # Russian casino spam, for a Dutch page.
    "casino-ru": (
        "spam-casino",
        "<h2>Онлайн казино с бонусом</h2><p>Лучшее онлайн-казино: бонус за регистрацию, "
        "ставки на спорт у надёжного букмекера, казино на реальные деньги без задержек.</p>",
    ),
    # Chinese counterfeit-brand spam, for a Japanese shop.
    "replica-zh": (
        "spam-replica",
        "<h2>高仿名牌包包 精仿手表</h2><p>路易威登 高仿 包包，劳力士 复刻 手表，香奈儿 高仿 钱包，"
        "一比一精仿，货到付款，全国包邮。</p>",
    ),
}

# Odd markup and control bytes right after a <script>, as a hacked template emits them.
_GARBAGE = (
    "<script>var _0x1a=['\\x63'];/*\x01*/</script>\x01\x00\x0b\x1b[0m"
    "<!-- \x00 --><p\x00 class=x>\x02</p><![CDATA[ x ]]><?php echo $k; ?>"
    '<div id="\x07k"><b><i></b></i><a href="http://[::1">\x00</a>'
)


def _spam_block(env: Env, key: str, links: int) -> str:
    host_key, body = _SPAM[key]
    anchors = "".join(
        f'<a href="{env.atk(host_key)}/p/{n}.html">{n + 1}</a> ' for n in range(links)
    )
    return f'<section class="seo">{body}<p>{anchors}</p></section>'


@behaviour("fp-cloak")
async def fp_cloak(env: Env) -> Result:
    """A cloaked site: spam for a search engine's user agent or a search referrer only.

    Tags: ``ua`` or ``referer`` (who gets the spam), ``farm`` (a link farm),
    ``spam:<kind>`` (foreign-language spam with a few links), ``ctrl`` (control
    bytes and odd markup after a ``<script>``), ``shop:<id>`` (that SPA shop underneath).
    """
    tags = env.site.tags
    shop = SHOPS.get(next((t[5:] for t in tags if t.startswith("shop:")), ""))
    if env.path == "/static/app.js" and shop:
        return js(_APP_JS)
    if env.path != "/":
        return common_files(env)
    bot, referred = _searcher(env)
    targeted = env.compromised and ((bot and "ua" in tags) or (referred and "referer" in tags))
    if not targeted:
        if shop:
            return _prerendered(env, shop) if bot else _shell(env, shop)
        return page(env, _ordinary(env))
    spam = "".join(_spam_block(env, t[5:], 3) for t in tags if t.startswith("spam:"))
    if "farm" in tags:
        spam += _farm(env)
    if "ctrl" in tags:
        spam = _GARBAGE + spam
    if shop:
        return _prerendered(env, shop, spam)
    return page(env, _ordinary(env) + spam)


def _ordinary(env: Env) -> str:
    """The page a visitor sees, in the site's language."""
    text = {
        "ja": "<h2>歯科診療のご案内</h2><p>一般歯科・小児歯科・予防歯科。予約制です。</p>",
        "de": "<h2>Frisches Brot jeden Morgen</h2><p>Sauerteig, Brötchen und Kuchen aus "
        "eigener Backstube.</p>",
        "nl": "<h2>Fietsreparatie en onderhoud</h2><p>Wij repareren alle merken fietsen, "
        "ook elektrische fietsen. Kom langs in onze werkplaats.</p>",
        "pt": "<h2>Pão quentinho todos os dias</h2><p>Pães, bolos e salgados feitos na "
        "hora pela nossa família.</p>",
        "en": "<h2>Handmade stoneware</h2><p>Mugs, bowls and planters thrown in our lakeside "
        "studio. Classes on Saturdays.</p>",
    }
    return text.get(env.site.lang, text["en"])


def _attacker_page(name: str) -> Reply:
    return Reply(f"<!doctype html><title>{name}</title><h1>{name}</h1><p>SALE</p>")


@behaviour("attacker-spam-pharma")
async def attacker_spam_pharma(env: Env) -> Result:
    return _attacker_page("Discount Meds")


@behaviour("attacker-spam-casino")
async def attacker_spam_casino(env: Env) -> Result:
    return _attacker_page("Slot Jackpot")


@behaviour("attacker-spam-replica")
async def attacker_spam_replica(env: Env) -> Result:
    return _attacker_page("Replica Watches")


@behaviour("attacker-spam-farm")
async def attacker_spam_farm(env: Env) -> Result:
    return _attacker_page("Backlink Hub")


@behaviour("attacker-spam-loans")
async def attacker_spam_loans(env: Env) -> Result:
    return _attacker_page("Payday Cash")
