"""The sandbox's catalogue: who hosts what, and what each site is.

This file is documentation of what tocsin must catch. Every site is a
:class:`SiteSpec`: a host on a provider's address, a *behaviour* (the page
builder in :mod:`tocsin.sandbox.pages`), and what the crawler is expected to
conclude (``verdict`` and ``family``). Malicious pages are modelled on real
attacks (Balada/NDSW-style injected loaders, SocGholish overlays, Magecart
skimmers, CoinHive miners, the Japanese keyword hack...), never on a
detector. Every payload is synthetic and harmless.

Address plan: each provider owns ``127.10.N.0/24`` and a private-use ASN
(64496-64511); RDAP servers live on ``127.53.0.x``, SMTP on ``127.25.0.x``,
and a canary on ``127.0.0.1`` that no fetch should ever reach.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

# Families and verdicts shared with the crawler (see docs/architecture.md).
FAMILIES = (
    "injected-script",
    "known-bad-host",
    "hidden-iframe",
    "malicious-redirect",
    "drive-by-download",
    "fake-update",
    "card-skimmer",
    "phishing",
    "cryptominer",
    "seo-cloaking",
    "malware-download",
)
VERDICTS = ("malicious", "suspicious", "clean", "offline", "error")

# What a site is, for the tests: compromised (a page) or payload (a direct
# file URL) are malicious; clean and tricky-clean must not be flagged; offline
# and hostile end as offline and error; ssrf must be refused by the guard;
# attacker and third-party are infrastructure other pages load from.
KINDS = (
    "compromised",
    "payload",
    "clean",
    "tricky-clean",
    "offline",
    "hostile",
    "ssrf",
    "attacker",
    "third-party",
)


@dataclass(frozen=True)
class Provider:
    """A hosting network: one /24, one ASN, one RDAP registration."""

    id: str
    name: str  # the organisation, as RDAP's registrant fn
    asn: int
    as_name: str  # as pyasn's AS-names file has it: "HANDLE Org, CC"
    cidr: str
    country: str
    abuse_email: str
    abuse_phone: str
    net_name: str  # the RDAP network ``name``
    address: str  # postal address, for the vCard ``adr`` label
    rdap: str  # which sandbox RDAP server answers for it: rir | throttled | down
    rdap_style: str  # arin | ripe | apnic | lacnic: where the abuse entity sits
    kind: str = "hosting"  # hosting | shared-hosting | cdn | bulletproof | third-party
    tech_email: str = ""

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    @property
    def shared_hosting(self) -> bool:
        return self.kind == "shared-hosting"

    @property
    def cdn(self) -> bool:
        return self.kind == "cdn"

    def ip(self, host_part: int) -> str:
        """The address ``.host_part`` inside this provider's /24."""
        return str(self.network.network_address + host_part)


@dataclass(frozen=True)
class Registrar:
    """A registrar, as the registry's RDAP domain object names it."""

    id: str
    name: str
    iana_id: int
    abuse_email: str
    abuse_phone: str
    url: str


@dataclass(frozen=True)
class SiteSpec:
    """One site (or one URL of a site) the sandbox serves, and what it is."""

    id: str
    host: str
    provider: str
    ip: str
    kind: str
    behaviour: str  # the page builder in pages.py
    verdict: str | None = None  # expected crawl verdict; None: infrastructure / see notes
    family: str | None = None
    entry: str = "/"
    scheme: str = "http"
    security_txt: str = "none"  # valid | legacy (only /security.txt) | expired | none
    title: str = ""
    lang: str = "en"
    notes: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def malicious(self) -> bool:
        return self.verdict == "malicious"


# --------------------------------------------------------------------------- providers

PROVIDERS: dict[str, Provider] = {
    p.id: p
    for p in (
        Provider(
            id="hanami",
            name="Hanami Hosting K.K.",
            asn=64501,
            as_name="HANAMI-NET Hanami Hosting K.K., JP",
            cidr="127.10.1.0/24",
            country="JP",
            abuse_email="abuse@hanami-hosting.co.jp",
            abuse_phone="+81-3-5555-0101",
            net_name="HANAMI-NET-JP",
            address="2-1-1 Nishi-Shinjuku\nShinjuku-ku\nTokyo\n163-0000\nJapan",
            rdap="rir",
            rdap_style="apnic",
            tech_email="noc@hanami-hosting.co.jp",
        ),
        Provider(
            id="deichnet",
            name="Deichnet Hosting GmbH",
            asn=64502,
            as_name="DEICHNET-AS Deichnet Hosting GmbH, DE",
            cidr="127.10.2.0/24",
            country="DE",
            abuse_email="abuse@deichnet-hosting.de",
            abuse_phone="+49-40-5555-0202",
            net_name="DEICHNET-HH",
            address="Deichstrasse 12\n20459 Hamburg\nGermany",
            rdap="rir",
            rdap_style="ripe",
            tech_email="noc@deichnet-hosting.de",
        ),
        Provider(
            id="polderhost",
            name="Polderhost B.V.",
            asn=64503,
            as_name="POLDERHOST Polderhost B.V., NL",
            cidr="127.10.3.0/24",
            country="NL",
            abuse_email="abuse@polderhost.nl",
            abuse_phone="+31-20-555-0303",
            net_name="POLDERHOST-NET",
            address="Keizersgracht 100\n1015 AA Amsterdam\nNetherlands",
            rdap="down",
            rdap_style="ripe",
            tech_email="noc@polderhost.nl",
        ),
        Provider(
            id="megashared",
            name="MegaShared Hosting LLC",
            asn=64504,
            as_name="MEGASHARED-AS MegaShared Hosting LLC, US",
            cidr="127.10.4.0/24",
            country="US",
            abuse_email="abuse@megashared-hosting.com",
            abuse_phone="+1-480-555-0104",
            net_name="MEGASHARED-SHARED-WEB",
            address="1 Shared Plaza\nScottsdale\nAZ\n85251\nUnited States",
            rdap="rir",
            rdap_style="arin",
            kind="shared-hosting",
            tech_email="noc@megashared-hosting.com",
        ),
        Provider(
            id="sandflare",
            name="Sandflare CDN, Inc.",
            asn=64505,
            as_name="SANDFLARENET Sandflare CDN, Inc., US",
            cidr="127.10.5.0/24",
            country="US",
            abuse_email="abuse@sandflare-cdn.com",
            abuse_phone="+1-415-555-0105",
            net_name="SANDFLARE-CDN-EDGE",
            address="101 Edge Street\nSan Francisco\nCA\n94107\nUnited States",
            rdap="rir",
            rdap_style="arin",
            kind="cdn",
            tech_email="noc@sandflare-cdn.com",
        ),
        Provider(
            id="cafezinho",
            name="Cafezinho Hospedagem Ltda.",
            asn=64506,
            as_name="CAFEZINHO-AS Cafezinho Hospedagem Ltda., BR",
            cidr="127.10.6.0/24",
            country="BR",
            abuse_email="abuse@cafezinho-hospedagem.com.br",
            abuse_phone="+55-11-5555-0106",
            net_name="CAFEZINHO-HOSP",
            address="Avenida Paulista 1000\nSao Paulo\nSP\n01310-100\nBrazil",
            rdap="throttled",
            rdap_style="lacnic",
            tech_email="noc@cafezinho-hospedagem.com.br",
        ),
        Provider(
            id="oakridge",
            name="Oakridge VPS Inc.",
            asn=64507,
            as_name="OAKRIDGE-VPS Oakridge VPS Inc., US",
            cidr="127.10.7.0/24",
            country="US",
            abuse_email="abuse@oakridge-vps.net",
            abuse_phone="+1-512-555-0107",
            net_name="OAKRIDGE-VPS-1",
            address="700 Congress Ave\nAustin\nTX\n78701\nUnited States",
            rdap="rir",
            rdap_style="arin",
            tech_email="noc@oakridge-vps.net",
        ),
        Provider(
            id="stormwall",
            name="Stormwall Offshore Ltd",
            asn=64510,
            as_name="STORMWALL-BPH Stormwall Offshore Ltd, SC",
            cidr="127.10.66.0/24",
            country="SC",
            abuse_email="abuse@stormwall-offshore.net",
            abuse_phone="+248-4-555-066",
            net_name="STORMWALL-OFFSHORE",
            address="Suite 1, Global Gateway\nVictoria\nMahe\nSeychelles",
            rdap="rir",
            rdap_style="ripe",
            kind="bulletproof",
        ),
        Provider(
            id="commonplace",
            name="Commonplace Cloud Services LLC",
            asn=64511,
            as_name="COMMONPLACE-CLOUD Commonplace Cloud Services LLC, US",
            cidr="127.10.100.0/24",
            country="US",
            abuse_email="abuse@commonplace-cloud.com",
            abuse_phone="+1-650-555-0111",
            net_name="COMMONPLACE-CLOUD-1",
            address="1600 Amphitheatre Way\nMountain View\nCA\n94043\nUnited States",
            rdap="rir",
            rdap_style="arin",
            kind="third-party",
        ),
    )
}

# Where an IP network's RDAP lives; the registries of the TLDs are below.
TLD_REGISTRY_SERVER = {
    "com": "rir",
    "net": "rir",
    "org": "rir",
    "jp": "rir",
    "de": "rir",
    "nl": "rir",
    "br": "throttled",
}

REGISTRARS: dict[str, Registrar] = {
    r.id: r
    for r in (
        Registrar(
            "bluewhale",
            "Bluewhale Domains LLC",
            4101,
            "abuse@bluewhale-domains.com",
            "+1.6195550141",
            "https://www.bluewhale-domains.com",
        ),
        Registrar(
            "kitsune",
            "Kitsune Registrar Co., Ltd.",
            4102,
            "abuse@kitsune-registrar.co.jp",
            "+81.355550142",
            "https://www.kitsune-registrar.co.jp",
        ),
        Registrar(
            "rheinnames",
            "Rheinnames GmbH",
            4103,
            "abuse@rheinnames.de",
            "+49.2215550143",
            "https://www.rheinnames.de",
        ),
        Registrar(
            "beijaflor",
            "Beija-Flor Registros de Dominios Ltda.",
            4104,
            "abuse@beijaflor-registros.com.br",
            "+55.1155550144",
            "https://www.beijaflor-registros.com.br",
        ),
        Registrar(
            "shadyreg",
            "Anonymous Shield Registrar Ltd",
            4105,
            "abuse@anonshield-registrar.net",
            "+248.45550145",
            "https://www.anonshield-registrar.net",
        ),
        Registrar(
            "markmonitor",
            "MarkMonitor Inc.",
            292,
            "abusecomplaints@markmonitor.com",
            "+1.2083895740",
            "https://www.markmonitor.com",
        ),
    )
}

# A registered domain's registrar by its public suffix; attacker domains and the
# real third-party names have their own.
SUFFIX_REGISTRAR = {
    "com": "bluewhale",
    "net": "bluewhale",
    "org": "bluewhale",
    "jp": "kitsune",
    "co.jp": "kitsune",
    "de": "rheinnames",
    "nl": "rheinnames",
    "com.br": "beijaflor",
}

# National CSIRTs for the providers' countries (escalation.cert_contacts).
CSIRTS = (
    ("JP", "incident@jpcert-sandbox.or.jp", "ja"),
    ("DE", "incident@cert-bund-sandbox.de", "de"),
    ("NL", "incident@ncsc-sandbox.nl", "nl"),
    ("US", "report@us-cert-sandbox.org", "en"),
    ("BR", "incidentes@cert-br-sandbox.org.br", "pt"),
    ("SC", "incident@sc-cirt-sandbox.net", "en"),
)

# --------------------------------------------------------------------------- infrastructure

# Attacker hosts (all on the bulletproof network). Names look like what real
# campaigns register: typo-squats of CDNs and analytics, "update" and "login" lures.
ATTACKER_HOSTS = {
    "loader": ("apiscdn-metrics.com", 11),  # injected-script payload host
    "delayed": ("cdn-widget-loader.com", 12),  # the delayed injection
    "knownbad": ("trafficjunction-stats.net", 13),  # on the known-bad list
    "tds": ("tds-gateway.net", 14),  # hidden-iframe traffic distribution
    "redirect": ("prize-winner-today.net", 15),  # redirect landing (scam)
    "dropper": ("secure-docs-download.net", 16),  # drive-by download
    "oncetds": ("stat-counter-cdn.net", 45),  # first-visit-only TDS (once per IP)
    "rotator": ("cdn-jsdelivery.net", 46),  # rotates payload families per visit
    "mirror": ("fast-setup-mirror.net", 47),  # pushes an installer from a compromised page
    "fakeupdate": ("update-chrome-browser.net", 17),  # SocGholish-style lure
    "skimmer": ("analytics-googlecdn.com", 18),  # Magecart exfiltration gate
    "phishgate": ("mailbox-verify-login.net", 19),  # phishing form target
    "miner": ("webminer-pool.net", 20),  # miner script
    "pool": ("ws1.webminer-pool.net", 21),  # mining pool WebSocket
    "spam": ("cheap-brand-outlet.net", 22),  # SEO spam target shop
}
# A bare attacker IP that serves Mirai/Mozi-style binaries (URLhaus has many such URLs).
ATTACKER_BARE_IP = 5

# Legitimate third parties, under their real names, served by "commonplace".
THIRD_PARTY_HOSTS = {
    "gtm": ("www.googletagmanager.com", 10),
    "ga": ("www.google-analytics.com", 11),
    "cdnjs": ("cdnjs.cloudflare.com", 12),
    "youtube": ("www.youtube-nocookie.com", 13),
    "fonts": ("fonts.googleapis.com", 14),
}

# The known-bad list the sandbox writes (signatures.known_bad): the known-bad
# family's host and IP, plus unrelated entries as a real list would have.
KNOWN_BAD = (
    "trafficjunction-stats.net",
    "127.10.66.200",
    "malware-traffic-example-tds.net",
    "bad-redirector-example.org",
)

SSRF_PRIVATE_NAME = "intranet.nimbus-corp-portal.com"  # mapped to 10.0.0.1
SSRF_PRIVATE_IP = "10.0.0.1"
METADATA_URL = "http://169.254.169.254/latest/meta-data/"

# Shared-hosting address on MegaShared: many sites, one IP.
SHARED_IP_PART = 10


def attacker(key: str) -> str:
    return ATTACKER_HOSTS[key][0]


def third_party(key: str) -> str:
    return THIRD_PARTY_HOSTS[key][0]


# --------------------------------------------------------------------------- sites


def _site(provider: str, ip_part: int, **kw: object) -> SiteSpec:
    return SiteSpec(provider=provider, ip=PROVIDERS[provider].ip(ip_part), **kw)  # type: ignore[arg-type]


_SHARED = SHARED_IP_PART

CATALOGUE: tuple[SiteSpec, ...] = (
    # ---------------------------------------------------------------- compromised
    _site(
        "hanami",
        20,
        id="injected-script",
        host="www.sakura-wagashi.co.jp",
        kind="compromised",
        behaviour="injected-script",
        verdict="malicious",
        family="injected-script",
        security_txt="valid",
        title="さくら和菓子店",
        lang="ja",
        notes="Balada/NDSW style: the served HTML is clean and loads only first-party "
        "scripts; the first-party jquery-migrate.min.js has a String.fromCharCode "
        "loader appended that inserts <script src> from apiscdn-metrics.com at run "
        "time. A .jp site on the Japanese network, with a security.txt (ja, en).",
    ),
    _site(
        "deichnet",
        22,
        id="markup-title",
        host="www.tischlerei-werner.de",
        kind="compromised",
        behaviour="injected-script",
        verdict="malicious",
        family="injected-script",
        entry="/?q=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&next=javascript:alert(2)"
        "&s=<script>alert(3)</script>",
        title="</title><script>alert('title')</script>\"><img src=x onerror=alert('img')>",
        lang="de",
        notes="The injected loader again, on a page whose title and URL carry markup "
        "(<script>, an onerror attribute) and javascript:, as an attacker may choose: every "
        "screen that shows crawled text (board, portal, notices) must show it as text.",
        tags=("markup",),
    ),
    _site(
        "hanami",
        21,
        id="delayed-injection",
        host="www.kissaten-hoshino.jp",
        kind="compromised",
        behaviour="delayed-injection",
        verdict="malicious",
        family="injected-script",
        title="喫茶ほしの",
        lang="ja",
        notes="An inline 'lazy loader' waits setTimeout(300000) (5 minutes) before "
        "inserting a script from cdn-widget-loader.com: only an advanced clock "
        "(Playwright page.clock) sees it.",
    ),
    _site(
        "megashared",
        _SHARED,
        id="known-bad-host",
        host="www.lakeside-dental.com",
        kind="compromised",
        behaviour="known-bad-host",
        verdict="malicious",
        family="known-bad-host",
        security_txt="legacy",
        title="Lakeside Family Dental",
        notes="A static <script src> in the footer from trafficjunction-stats.net, a "
        "domain on the known-bad list (signatures.known_bad). Shared hosting; its "
        "security.txt is only at the legacy /security.txt.",
    ),
    _site(
        "megashared",
        _SHARED,
        id="hidden-iframe",
        host="www.meadowbrook-florist.com",
        kind="compromised",
        behaviour="hidden-iframe",
        verdict="malicious",
        family="hidden-iframe",
        security_txt="expired",
        title="Meadowbrook Florist",
        notes="Classic injected width=0 height=0 frameborder=0 iframe to a TDS on "
        "tds-gateway.net. Shared hosting; its security.txt has expired.",
    ),
    _site(
        "megashared",
        _SHARED,
        id="hidden-iframe-display-none",
        host="www.pinecrest-plumbing.com",
        kind="compromised",
        behaviour="hidden-iframe-parent",
        verdict="malicious",
        family="hidden-iframe",
        title="Pinecrest Plumbing & Heating",
        notes="A normally sized 468x60 iframe to tds-gateway.net inside a parent "
        "<div style=display:none>: hidden by its ancestor, not by its own size.",
    ),
    _site(
        "cafezinho",
        20,
        id="malicious-redirect",
        host="www.padaria-estrela.com.br",
        kind="compromised",
        behaviour="conditional-redirect",
        verdict="malicious",
        family="malicious-redirect",
        title="Padaria Estrela",
        lang="pt",
        notes="Injected JS redirects to prize-winner-today.net only on a first visit "
        "(cookie) and only for a non-bot user agent (no bot|crawl|spider|headless). "
        "Its network's RDAP server answers 429 twice before succeeding.",
    ),
    _site(
        "deichnet",
        20,
        id="malicious-redirect-meta",
        host="www.hausarzt-lindner.de",
        kind="compromised",
        behaviour="meta-redirect",
        verdict="malicious",
        family="malicious-redirect",
        title="Hausarztpraxis Dr. Lindner",
        lang="de",
        notes="An injected <meta http-equiv=refresh content='1;url=...'> to the same "
        "scam landing as the JS redirect (so both cluster into one campaign).",
    ),
    _site(
        "polderhost",
        20,
        id="drive-by-download",
        host="www.fietsverhuur-dewit.nl",
        kind="compromised",
        behaviour="drive-by-download",
        verdict="malicious",
        family="drive-by-download",
        title="Fietsverhuur De Wit",
        lang="nl",
        notes="Injected script clicks a generated <a> to secure-docs-download.net, "
        "which answers Content-Disposition: attachment with a ZIP holding an EXE. "
        "Its network's RDAP server is down.",
    ),
    _site(
        "deichnet",
        21,
        id="fake-update",
        host="www.brauhaus-kessler.de",
        kind="compromised",
        behaviour="fake-update",
        verdict="malicious",
        family="fake-update",
        security_txt="valid",
        title="Brauhaus Kessler",
        lang="de",
        notes="SocGholish-style: an injected async <script> from "
        "update-chrome-browser.net/report builds a full-screen 'Your browser is out "
        "of date / Update Chrome' overlay whose button downloads Chrome.Update.zip "
        "(a JS dropper inside).",
    ),
    _site(
        "sandflare",
        20,
        id="card-skimmer",
        host="shop.coastal-candles.com",
        kind="compromised",
        behaviour="card-skimmer",
        verdict="malicious",
        family="card-skimmer",
        entry="/checkout/",
        security_txt="valid",
        title="Coastal Candles Co.",
        notes="Magecart-style: the first-party /static/js/checkout.min.js has a "
        "skimmer appended. It hooks change/blur on the card fields and the "
        "place-order click, and exfiltrates base64 JSON with sendBeacon (falling "
        "back to an Image) to analytics-googlecdn.com/gate.php; it also checks in "
        "with a ping.gif on load. Behind the Sandflare CDN.",
    ),
    _site(
        "megashared",
        _SHARED,
        id="phishing",
        host="www.riverside-chapel.org",
        kind="compromised",
        behaviour="phishing-offsite",
        verdict="malicious",
        family="phishing",
        entry="/wp-content/uploads/2024/05/webmail/index.html",
        title="Riverside Community Chapel",
        notes="A phishing kit dropped in wp-content/uploads: a 'Webmail' login form "
        "whose action posts to mailbox-verify-login.net. The chapel's home page "
        "is clean.",
    ),
    _site(
        "cafezinho",
        21,
        id="phishing-brand",
        host="www.oficina-mecanica-silva.com.br",
        kind="compromised",
        behaviour="phishing-brand",
        verdict="malicious",
        family="phishing",
        entry="/.well-known/pki-validation/secure/index.html",
        title="Oficina Mecânica Silva",
        lang="pt",
        notes="Microsoft 365 brand impersonation hidden in .well-known: the form "
        "posts to its own next.php (so only the brand on an unrelated domain "
        "gives it away).",
    ),
    _site(
        "megashared",
        _SHARED,
        id="cryptominer",
        host="www.summit-yoga-studio.com",
        kind="compromised",
        behaviour="cryptominer",
        verdict="malicious",
        family="cryptominer",
        title="Summit Yoga Studio",
        notes="CoinHive-style: miner.min.js from webminer-pool.net, started with "
        "new CoinHive.Anonymous(site key, {throttle}), which opens a WebSocket to "
        "ws1.webminer-pool.net/proxy (auth, job, submit).",
    ),
    _site(
        "hanami",
        22,
        id="seo-cloaking",
        host="www.yamada-seikotsuin.jp",
        kind="compromised",
        behaviour="seo-cloaking",
        verdict="malicious",
        family="seo-cloaking",
        title="山田整骨院",
        lang="ja",
        notes="The Japanese keyword hack: a Googlebot/bingbot user agent or a search "
        "engine Referer gets a spam page of brand-goods keywords linking to "
        "cheap-brand-outlet.net; a plain browser gets the clinic's page.",
    ),
    # ---------------------------------------------------------------- direct payloads
    _site(
        "oakridge",
        30,
        id="payload-pe",
        host="www.hillcrest-accounting.com",
        kind="payload",
        behaviour="payload",
        verdict="malicious",
        family="malware-download",
        entry="/wp-content/uploads/2024/03/Invoice_0342.exe",
        notes="A PE32 executable, application/x-msdownload, as an attachment.",
        tags=("pe", "honest-type"),
    ),
    _site(
        "oakridge",
        30,
        id="payload-pe-as-png",
        host="www.hillcrest-accounting.com",
        kind="payload",
        behaviour="payload",
        verdict="malicious",
        family="malware-download",
        entry="/wp-content/uploads/2024/03/logo-header.png",
        notes="The same kind of PE served as image/png: only the magic bytes tell.",
        tags=("pe", "misleading-type"),
    ),
    _site(
        "oakridge",
        30,
        id="payload-zip",
        host="www.hillcrest-accounting.com",
        kind="payload",
        behaviour="payload",
        verdict="malicious",
        family="malware-download",
        entry="/wp-content/uploads/2024/03/Invoice_0342.zip",
        notes="A ZIP holding Invoice_0342.exe, application/zip.",
        tags=("zip", "honest-type"),
    ),
    _site(
        "oakridge",
        30,
        id="payload-zip-as-html",
        host="www.hillcrest-accounting.com",
        kind="payload",
        behaviour="payload",
        verdict="malicious",
        family="malware-download",
        entry="/docs/statement.php?id=3381",
        notes="A PHP gate that returns a ZIP with an EXE inside as text/html.",
        tags=("zip", "misleading-type"),
    ),
    _site(
        "stormwall",
        ATTACKER_BARE_IP,
        id="payload-elf",
        host=PROVIDERS["stormwall"].ip(ATTACKER_BARE_IP),
        kind="payload",
        behaviour="payload",
        verdict="malicious",
        family="malware-download",
        entry="/bins/sora.mips",
        notes="A Mirai-style MIPS ELF on a bare attacker IP, application/octet-stream.",
        tags=("elf", "honest-type"),
    ),
    _site(
        "stormwall",
        ATTACKER_BARE_IP,
        id="payload-elf-as-text",
        host=PROVIDERS["stormwall"].ip(ATTACKER_BARE_IP),
        kind="payload",
        behaviour="payload",
        verdict="malicious",
        family="malware-download",
        entry="/i",
        notes="A Mozi-style ARM ELF served as text/plain.",
        tags=("elf", "misleading-type"),
    ),
    _site(
        "oakridge",
        30,
        id="payload-apk",
        host="www.hillcrest-accounting.com",
        kind="payload",
        behaviour="payload",
        verdict="malicious",
        family="malware-download",
        entry="/downloads/mobile-banking-update.apk",
        notes="An APK (ZIP with AndroidManifest.xml and classes.dex), "
        "application/vnd.android.package-archive.",
        tags=("apk", "honest-type"),
    ),
    _site(
        "oakridge",
        30,
        id="payload-apk-octet",
        host="www.hillcrest-accounting.com",
        kind="payload",
        behaviour="payload",
        verdict="malicious",
        family="malware-download",
        entry="/downloads/app",
        notes="The APK with no extension, as application/octet-stream.",
        tags=("apk", "misleading-type"),
    ),
    _site(
        "oakridge",
        30,
        id="payload-js",
        host="www.hillcrest-accounting.com",
        kind="payload",
        behaviour="payload",
        verdict="malicious",
        family="malware-download",
        entry="/docs/Payment_Advice.js",
        notes="A WSH JScript dropper (WScript.Shell, MSXML2.XMLHTTP, ADODB.Stream), "
        "application/javascript. Inert: it points at a .invalid host.",
        tags=("js", "honest-type"),
    ),
    _site(
        "oakridge",
        30,
        id="payload-js-as-text",
        host="www.hillcrest-accounting.com",
        kind="payload",
        behaviour="payload",
        verdict="malicious",
        family="malware-download",
        entry="/docs/Payment_Advice.txt",
        notes="The same dropper served as text/plain.",
        tags=("js", "misleading-type"),
    ),
    _site(
        "oakridge",
        30,
        id="payload-docm",
        host="www.hillcrest-accounting.com",
        kind="payload",
        behaviour="payload",
        verdict="malicious",
        family="malware-download",
        entry="/docs/Remittance_2024.docm",
        notes="A macro-enabled Word document (OOXML with vbaProject.bin and an "
        "AutoOpen macro), application/vnd.ms-word.document.macroEnabled.12.",
        tags=("doc", "honest-type"),
    ),
    _site(
        "oakridge",
        30,
        id="payload-xls-as-pdf",
        host="www.hillcrest-accounting.com",
        kind="payload",
        behaviour="payload",
        verdict="malicious",
        family="malware-download",
        entry="/docs/Remittance_2024.pdf",
        notes="An OLE2 (legacy Excel) file with Auto_Open/Shell macro strings, "
        "served as application/pdf.",
        tags=("doc", "misleading-type"),
    ),
    # ---- issue 11 point 5: one incident per site, whatever its payloads (pages_incidents)
    _site(
        "oakridge",
        185,
        id="incidents-once-ip",
        host="www.kestrel-bakery.com",
        kind="compromised",
        behaviour="incidents-once-ip",
        verdict="malicious",
        family="fake-update",
        title="Kestrel Bakery",
        notes="A TDS hands each visitor IP a fake-update overlay once; the hidden "
        "iframe stays. A re-check finds hidden-iframe: the same incident.",
        tags=("first-visit",),
    ),
    _site(
        "deichnet",
        186,
        id="incidents-once-cookie",
        host="www.baeckerei-lindner.de",
        kind="compromised",
        behaviour="incidents-once-cookie",
        verdict="malicious",
        family="cryptominer",
        title="Bäckerei Lindner",
        lang="de",
        notes="The site's own script injects a miner once (cookie wp_fv, and the IP "
        "remembered); a Balada-style loader stays: a re-check finds injected-script.",
        tags=("first-visit",),
    ),
    _site(
        "hanami",
        187,
        id="incidents-rotating",
        host="www.sakura-shika.jp",
        kind="compromised",
        behaviour="incidents-rotating",
        verdict="malicious",
        family="cryptominer",
        title="さくら歯科",
        lang="ja",
        notes="A payload host rotates per visit: a miner, then a fake-update overlay.",
        tags=("rotating",),
    ),
    _site(
        "oakridge",
        188,
        id="incidents-two-miner",
        host="www.lakeside-ceramics.com",
        kind="compromised",
        behaviour="incidents-two-families",
        verdict="malicious",
        family="cryptominer",
        title="Lakeside Ceramics",
        notes="One site, two URLs in one run: a miner on the home page...",
        tags=("two-urls",),
    ),
    _site(
        "oakridge",
        188,
        id="incidents-two-phish",
        host="www.lakeside-ceramics.com",
        kind="compromised",
        behaviour="incidents-two-families",
        verdict="malicious",
        family="phishing",
        entry="/wp-includes/certificates/mail/index.php",
        title="Lakeside Ceramics",
        notes="...and a webmail phishing kit in a folder: one incident, one ticket.",
        tags=("two-urls",),
    ),
    _site(
        "deichnet",
        189,
        id="incidents-two-iframe",
        host="www.gartenwerkzeug-huber.de",
        kind="compromised",
        behaviour="incidents-two-download",
        verdict="malicious",
        family="hidden-iframe",
        title="Gartenwerkzeug Huber",
        lang="de",
        notes="One site, two URLs: a hidden iframe at home...",
        tags=("two-urls",),
    ),
    _site(
        "deichnet",
        189,
        id="incidents-two-driveby",
        host="www.gartenwerkzeug-huber.de",
        kind="compromised",
        behaviour="incidents-two-download",
        verdict="malicious",
        family="drive-by-download",
        entry="/download/",
        title="Gartenwerkzeug Huber",
        lang="de",
        notes="...and a page that downloads an installer without a click (point 8: a "
        "compromised page serving an executable).",
        tags=("two-urls",),
    ),
    # ---- issue 11 point 8: executables alone are not compromise (pages_incidents)
    _site(
        "oakridge",
        190,
        id="vendor-download-page",
        host="www.quillpad-editor.com",
        kind="tricky-clean",
        behaviour="incidents-vendor",
        verdict="clean",
        entry="/download/",
        title="QuillPad",
        notes="A software vendor's own download page linking to its installers.",
    ),
    _site(
        "oakridge",
        190,
        id="vendor-download-start",
        host="www.quillpad-editor.com",
        kind="tricky-clean",
        behaviour="incidents-vendor",
        verdict="suspicious",
        entry="/download/start/",
        title="QuillPad",
        notes="The vendor's 'your download starts now' page: its own installer, from its "
        "own site, without a click. Suspicious at most, no notice.",
    ),
    *(
        _site(
            "oakridge",
            190,
            id=f"vendor-installer-{name}",
            host="www.quillpad-editor.com",
            kind="payload",
            behaviour="incidents-vendor",
            verdict="suspicious",
            entry=path,
            notes=f"The vendor's {name.upper()} installer: an executable and nothing "
            "else, so suspicious and no notice.",
            tags=("vendor", name),
        )
        for name, path in (
            ("exe", "/files/QuillPad-Setup-4.2.1.exe"),
            ("msi", "/files/QuillPad-4.2.1-x64.msi"),
            ("apk", "/files/quillpad-4.2.1.apk"),
            ("elf", "/files/quillpad-4.2.1-linux-i386"),
        )
    ),
    _site(
        "hanami",
        191,
        id="vendor-installer-octet",
        host="dl.brightpixel-games.com",
        kind="payload",
        behaviour="incidents-vendor-files",
        verdict="suspicious",
        entry="/releases/BrightPixel-Installer.exe",
        notes="Another vendor's PE installer as application/octet-stream: suspicious.",
        tags=("vendor", "exe"),
    ),
    _site(
        "oakridge",
        192,
        id="known-bad-installer-exe",
        host="www.pdfmerge-suite.com",
        kind="payload",
        behaviour="incidents-vendor-files",
        verdict="malicious",
        family="malware-download",
        entry="/files/PDFMerge-Setup-3.0.exe",
        notes="A trojanised installer whose SHA-256 is on the known-bad list.",
        tags=("known-bad-hash", "exe"),
    ),
    _site(
        "oakridge",
        192,
        id="known-bad-installer-msi",
        host="www.pdfmerge-suite.com",
        kind="payload",
        behaviour="incidents-vendor-files",
        verdict="malicious",
        family="malware-download",
        entry="/files/PDFMerge-3.0.msi",
        notes="The MSI build, also on the known-bad list.",
        tags=("known-bad-hash", "msi"),
    ),
    _site(
        "deichnet",
        193,
        id="rule-installer-elf",
        host="www.meshlink-router.de",
        kind="payload",
        behaviour="incidents-vendor-files",
        verdict="malicious",
        family="malware-download",
        entry="/support/tools/meshlink-agent-arm",
        lang="de",
        notes="A router 'agent' ELF with IoT-bot strings: YARA iot_bot_binary matches.",
        tags=("rule", "elf"),
    ),
    _site(
        "deichnet",
        193,
        id="rule-installer-exe",
        host="www.meshlink-router.de",
        kind="payload",
        behaviour="incidents-vendor-files",
        verdict="malicious",
        family="malware-download",
        entry="/support/tools/MeshLink-Setup.exe",
        lang="de",
        notes="A PE carrying a PowerShell download cradle: YARA powershell_cradle matches.",
        tags=("rule", "exe"),
    ),
    # ---------------------------------------------------------------- tricky clean
    _site(
        "oakridge",
        40,
        id="clean-analytics",
        host="www.greenfield-library.org",
        kind="tricky-clean",
        behaviour="clean-analytics",
        verdict="clean",
        security_txt="valid",
        title="Greenfield Public Library",
        notes="The real GTM snippet injects gtm.js from www.googletagmanager.com at "
        "run time, which injects analytics.js from www.google-analytics.com, which "
        "beacons /g/collect; jQuery from cdnjs.cloudflare.com; Google Fonts CSS; "
        "GTM's zero-size noscript iframe.",
    ),
    _site(
        "deichnet",
        40,
        id="clean-https-redirect",
        host="www.tischlerei-brandt.de",
        kind="tricky-clean",
        behaviour="clean-https-redirect",
        verdict="clean",
        title="Tischlerei Brandt",
        lang="de",
        notes="http:// answers 301 to the same page on https:// (the sandbox's self-signed CA).",
    ),
    _site(
        "oakridge",
        41,
        id="clean-youtube-embed",
        host="www.alpine-hiking-club.org",
        kind="tricky-clean",
        behaviour="clean-youtube-embed",
        verdict="clean",
        title="Alpine Hiking Club",
        notes="A visible 560x315 iframe from www.youtube-nocookie.com/embed/.",
    ),
    _site(
        "megashared",
        _SHARED,
        id="clean-login-form",
        host="members.riverside-tennis.com",
        kind="tricky-clean",
        behaviour="clean-login-form",
        verdict="clean",
        title="Riverside Tennis Club - Members",
        notes="A username/password form posting to its own /wp-login.php.",
    ),
    _site(
        "oakridge",
        42,
        id="clean-big-bundle",
        host="app.brightline-tasks.com",
        kind="tricky-clean",
        behaviour="clean-big-bundle",
        verdict="clean",
        title="Brightline Tasks",
        notes="A single-page app with a first-party 1.3 MB minified bundle.",
    ),
    _site(
        "hanami",
        40,
        id="clean-eval-library",
        host="www.copperfield-bistro.com",
        kind="tricky-clean",
        behaviour="clean-eval-library",
        verdict="clean",
        title="Copperfield Bistro",
        notes="json2.js's eval('(' + text + ')') fallback and a template compiler "
        "built on new Function, first-party, plus lodash from cdnjs.",
    ),
    # ---------------------------------------------------------------- plain clean
    _site(
        "megashared",
        _SHARED,
        id="clean-bookshop",
        host="www.oak-street-books.com",
        kind="clean",
        behaviour="brochure",
        verdict="clean",
        title="Oak Street Books",
        notes="A plain page on the shared-hosting IP.",
    ),
    _site(
        "megashared",
        _SHARED,
        id="clean-daycare",
        host="www.bluebird-daycare.com",
        kind="clean",
        behaviour="brochure",
        verdict="clean",
        title="Bluebird Daycare",
        notes="A plain page on the shared-hosting IP.",
    ),
    _site(
        "oakridge",
        30,
        id="clean-accounting",
        host="www.hillcrest-accounting.com",
        kind="clean",
        behaviour="brochure",
        verdict="clean",
        title="Hillcrest Accounting",
        notes="The home page of the site whose uploads serve the payloads.",
    ),
    _site(
        "megashared",
        _SHARED,
        id="clean-chapel",
        host="www.riverside-chapel.org",
        kind="clean",
        behaviour="brochure",
        verdict="clean",
        title="Riverside Community Chapel",
        notes="The home page of the site whose uploads hide the phishing kit.",
    ),
    _site(
        "hanami",
        41,
        id="clean-ramen",
        host="www.ramen-kotetsu.co.jp",
        kind="clean",
        behaviour="brochure",
        verdict="clean",
        security_txt="valid",
        title="らーめん虎鉄",
        lang="ja",
        notes="A clean Japanese site with a valid security.txt.",
    ),
    _site(
        "sandflare",
        21,
        id="clean-cdn-site",
        host="www.northwind-outfitters.com",
        kind="clean",
        behaviour="brochure",
        verdict="clean",
        title="Northwind Outfitters",
        notes="A clean site behind the CDN.",
    ),
    _site(
        "polderhost",
        21,
        id="clean-nl",
        host="www.kaasmakerij-vos.nl",
        kind="clean",
        behaviour="brochure",
        verdict="clean",
        title="Kaasmakerij Vos",
        lang="nl",
        notes="A clean site on the network whose RDAP server is down.",
    ),
    # ---------------------------------------------------------------- offline
    SiteSpec(
        id="offline-dns",
        host="www.closed-bakery.invalid",
        provider="oakridge",
        ip="",
        kind="offline",
        behaviour="none",
        verdict="offline",
        notes="A .invalid name: not in the hosts file, so resolution fails.",
    ),
    _site(
        "oakridge",
        250,
        id="offline-refused",
        host="www.old-gallery-shop.com",
        kind="offline",
        behaviour="none",
        verdict="offline",
        notes="Resolves to an address where nothing listens: connection refused.",
    ),
    _site(
        "megashared",
        _SHARED,
        id="offline-404",
        host="www.harbor-view-motel.com",
        kind="offline",
        behaviour="brochure",
        verdict="offline",
        entry="/summer-specials-2019/",
        title="Harbor View Motel",
        notes="The site is up but this page answers 404.",
    ),
    _site(
        "megashared",
        _SHARED,
        id="offline-410",
        host="www.harbor-view-motel.com",
        kind="offline",
        behaviour="brochure",
        verdict="offline",
        entry="/old-promo/",
        title="Harbor View Motel",
        notes="This page answers 410 Gone.",
    ),
    # ---------------------------------------------------------------- hostile
    _site(
        "oakridge",
        60,
        id="hostile-infinite-loop",
        host="www.trapdoor-games.net",
        kind="hostile",
        behaviour="hostile",
        verdict="error",
        entry="/spin/",
        notes="<script>for(;;){}</script>: the renderer never returns.",
    ),
    _site(
        "oakridge",
        60,
        id="hostile-alert-loop",
        host="www.trapdoor-games.net",
        kind="hostile",
        behaviour="hostile",
        verdict="error",
        entry="/alerts/",
        notes="while(true) alert(...): a dialog after every dismissal, forever.",
    ),
    _site(
        "oakridge",
        60,
        id="hostile-1gb",
        host="www.trapdoor-games.net",
        kind="hostile",
        behaviour="hostile",
        verdict="error",
        entry="/huge/",
        notes="A 1 GiB text/html body with Content-Length, streamed in 64 KiB chunks.",
    ),
    _site(
        "oakridge",
        60,
        id="hostile-gzip-bomb",
        host="www.trapdoor-games.net",
        kind="hostile",
        behaviour="hostile",
        verdict="error",
        entry="/bomb/",
        notes="Content-Encoding: gzip, 256 MiB of zeros in about 250 KB on the wire.",
    ),
    _site(
        "oakridge",
        60,
        id="hostile-redirect-loop",
        host="www.trapdoor-games.net",
        kind="hostile",
        behaviour="hostile",
        verdict="error",
        entry="/loop/a",
        notes="/loop/a -> /loop/b -> /loop/a ... (302s, forever).",
    ),
    _site(
        "oakridge",
        60,
        id="hostile-slow-drip",
        host="www.trapdoor-games.net",
        kind="hostile",
        behaviour="hostile",
        verdict="error",
        entry="/drip/",
        notes="Headers at once, then one byte of body per second, forever.",
    ),
    _site(
        "oakridge",
        60,
        id="hostile-popup-storm",
        host="www.trapdoor-games.net",
        kind="hostile",
        behaviour="hostile",
        verdict="error",
        entry="/popups/",
        notes="window.open() fifty times on load, then every 50 ms, each popup doing the same.",
    ),
    # ---------------------------------------------------------------- SSRF
    _site(
        "oakridge",
        70,
        id="ssrf-metadata-redirect",
        host="www.quickshort-links.com",
        kind="ssrf",
        behaviour="ssrf-redirect",
        verdict="error",
        entry="/r/aws",
        notes="302 to http://169.254.169.254/latest/meta-data/: the guard must refuse "
        "the hop (nothing listens there anyway).",
    ),
    SiteSpec(
        id="ssrf-private-name",
        host=SSRF_PRIVATE_NAME,
        provider="oakridge",
        ip=SSRF_PRIVATE_IP,
        kind="ssrf",
        behaviour="none",
        verdict="error",
        notes="The hosts file maps this name to 10.0.0.1: refused before connecting.",
    ),
    _site(
        "oakridge",
        71,
        id="ssrf-canary",
        host="www.pixel-tracker-demo.com",
        kind="ssrf",
        behaviour="ssrf-canary",
        verdict=None,
        notes="Its script fetch()es, and an <img> loads, http://127.0.0.1:<canary>/. "
        "With allow_private off the browser must refuse both: sb.canary_hits stays "
        "empty. The verdict is not the point.",
    ),
)


def infrastructure() -> tuple[SiteSpec, ...]:
    """Attacker and third-party hosts, as sites (they serve the payloads and libraries)."""
    bp = PROVIDERS["stormwall"]
    tp = PROVIDERS["commonplace"]
    sites = [
        SiteSpec(
            id=f"attacker-{key}",
            host=host,
            provider="stormwall",
            ip=bp.ip(part),
            kind="attacker",
            behaviour=f"attacker-{key}",
            notes="Attacker infrastructure on the bulletproof host.",
        )
        for key, (host, part) in ATTACKER_HOSTS.items()
    ]
    sites += [
        SiteSpec(
            id=f"third-party-{key}",
            host=host,
            provider="commonplace",
            ip=tp.ip(part),
            kind="third-party",
            behaviour=f"third-party-{key}",
            verdict="clean",
            notes="A legitimate third party under its real name.",
        )
        for key, (host, part) in THIRD_PARTY_HOSTS.items()
    ]
    return tuple(sites)


def catalogue() -> dict[str, SiteSpec]:
    """Every built-in site by id: the catalogue plus the infrastructure."""
    sites = {s.id: s for s in CATALOGUE}
    for s in infrastructure():
        sites[s.id] = s
    return sites
