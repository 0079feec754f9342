"""Pages of issue 11's contact cases: security.txt with web forms, and CDN-fronted sites
whose own pages or headers do (or do not) reveal the origin host behind the CDN.

``cdn-origin`` sites say how through their tags: ``origin:header`` (an ``X-Origin``
response header), ``origin:asset`` (an image from the origin's address, left in
the page after the site moved behind the CDN), ``origin:link`` (a link to an
``origin.`` name under the site's domain), ``origin:none``; and what the
compromise is: ``attack:loader`` (the Balada-style loader), ``attack:iframe``
(a TDS iframe), ``attack:knownbad`` (a counter from a known-bad host), or
nothing (a clean site). The origin addresses are never served: nothing fetches
them but a browser loading an image, which is refused or answered by nobody.
"""

from __future__ import annotations

from tocsin.sandbox.pages import (
    Env,
    Reply,
    Result,
    behaviour,
    common_files,
    generic_loader,
    page,
    registered_domain,
)

# security.txt states of this module (SiteSpec.security_txt)
STATES = ("web-form", "web-form+mail")
ORIGIN_IP = "127.10.7.{part}"  # on Oakridge's network, where the origin "really" is


def origin_of(env: Env) -> str:
    return ORIGIN_IP.format(part=int(env.site.ip.rsplit(".", 1)[1]))


def security_txt(env: Env, state: str) -> Reply | None:
    """An owner who takes reports through a web form only, or a form and a mailbox."""
    if env.path != "/.well-known/security.txt":
        return None
    site = env.site
    domain = registered_domain(site.host)
    form = f"{env.origin(site.host, 'https')}/report-a-vulnerability/"
    lines = [f"# Security contact for {site.host}", f"Contact: {form}"]
    if state == "web-form+mail":
        lines.append(f"Contact: mailto:security@{domain}")
    lines += ["Expires: 2099-12-31T23:59:59.000Z", "Preferred-Languages: en"]
    return Reply("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


def _attack(env: Env) -> str:
    tags = env.site.tags
    if not env.compromised:
        return ""
    if "attack:loader" in tags:
        return generic_loader(env)
    if "attack:iframe" in tags:
        return (
            f'<iframe src="{env.atk("tds")}/in.cgi?default" width="0" height="0" '
            'frameborder="0"></iframe>'
        )
    if "attack:knownbad" in tags:
        src = f"{env.atk('knownbad')}/counter.js?id=4410"
        return f'<script type="text/javascript" src="{src}"></script>'
    return ""


@behaviour("cdn-origin")
async def cdn_origin(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    tags = env.site.tags
    origin = origin_of(env)
    content = "<h2>Handmade in small batches</h2><p>Visit our studio or order online.</p>"
    if "origin:asset" in tags:
        content += (
            f'<p><img src="http://{origin}/wp-content/uploads/2023/05/hero.jpg" '
            'alt="Our studio" width="320" height="200"></p>'
        )
    if "origin:link" in tags:
        domain = registered_domain(env.site.host)
        content += (
            f'<p><a href="http://origin.{domain}/about/">About us</a> '
            "(our old address still works).</p>"
        )
    reply = page(env, content, scripts=_attack(env))
    if "origin:header" in tags:
        reply.headers["X-Origin-Server"] = origin
    reply.headers["Via"] = "1.1 edge-cache (sandbox CDN)"
    return reply
