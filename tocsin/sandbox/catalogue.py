"""The sandbox's catalogue: who hosts what, and what each site is.

This file is documentation of what tocsin must catch. Every site is a
:class:`SiteSpec`: a host on a provider's address, a *behaviour* (the page
builder in :mod:`tocsin.sandbox.pages`), and what the crawler is expected to
conclude (``verdict`` and ``family``). Malicious pages are modelled on real
attacks (Balada/NDSW-style injected loaders, SocGholish overlays, Magecart
skimmers, CoinHive miners, the Japanese keyword hack...), never on a
detector. Every payload is synthetic and harmless.

Address plan: each provider owns ``127.10.N.0/24`` and an ASN from 64496-64511
(issue 11's sub-allocated networks and CDNs: ``127.10.40-49.0/24``, 64480-64495);
RDAP servers live on ``127.53.0.x``, SMTP on ``127.25.0.x``, and a canary on
``127.0.0.1`` that no fetch should ever reach.
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
    "webshell",
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
    # Where RDAP puts the abuse desk when the network has none (sandbox/rdap_contacts.py):
    # "" (its own) | up | parent-handle | org | chain2 | parent-down
    abuse_via: str = ""

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
    # valid | legacy (only /security.txt) | expired | web-form | web-form+mail | none
    security_txt: str = "none"
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


# Issue 11 (contacts): sub-allocated networks whose abuse desk sits on a parent network or
# on the holder's org (tocsin/sandbox/rdap_contacts.py serves them), and CDNs recognised only
# by their ASN (the sandbox's providers file) or only by their AS name.
def _sublet(n: int, pid: str, name: str, via: str, country: str = "GB") -> Provider:
    short = pid.upper()
    return Provider(
        id=pid,
        name=name,
        asn=64480 + (n - 40),
        as_name=f"{short}-AS {name}, {country}",
        cidr=f"127.10.{n}.0/24",
        country=country,
        abuse_email=f"abuse@{pid}-upstream.net",  # where the walk must end: parent or org
        abuse_phone=f"+44-20-5555-01{n}",
        net_name=f"{short}-CUSTOMER-{n}",
        address=f"{n} Carrier Lane\nLondon\nEC1A 1AA\nUnited Kingdom",
        rdap="rir",
        rdap_style="ripe",
        abuse_via=via,
    )


PROVIDERS.update(
    {
        p.id: p
        for p in (
            _sublet(40, "brightline", "Brightline Web Services Ltd", "up"),
            _sublet(42, "fjordlink", "Fjordlink Hosting AS", "parent-handle", "NO"),
            _sublet(44, "meridian", "Meridian Colocation Ltd", "org"),
            _sublet(46, "tidewater", "Tidewater Servers Ltd", "parent-down"),
            _sublet(48, "cobblestone", "Cobblestone Hosting Ltd", "chain2"),
            Provider(
                id="kestrel",
                name="Kestrel Networks AB",
                asn=64489,
                as_name="KESTREL-AS Kestrel Networks AB, SE",
                cidr="127.10.41.0/24",
                country="SE",
                abuse_email="abuse@kestrel-networks.se",
                abuse_phone="+46-8-5555-0141",
                net_name="KESTREL-EDGE-POP",
                address="Sveavagen 1\n111 57 Stockholm\nSweden",
                rdap="rir",
                rdap_style="ripe",
                kind="cdn",  # known as a CDN by its ASN only (the sandbox's providers file)
            ),
            Provider(
                id="nimbusedge",
                name="Nimbus Edge Networks Ltd",
                asn=64490,
                as_name="NIMBUSEDGE-CDN Nimbus Edge Networks Ltd, IE",
                cidr="127.10.43.0/24",
                country="IE",
                abuse_email="abuse@nimbus-edge.ie",
                abuse_phone="+353-1-555-0143",
                net_name="NIMBUS-EDGE-1",
                address="1 Docklands Quay\nDublin 1\nIreland",
                rdap="rir",
                rdap_style="arin",
                kind="cdn",  # known as a CDN by its AS name only ("CDN" in it)
            ),
        )
    }
)
# The CDN the sandbox's providers file (enrich.providers_file) lists by ASN alone.
CDN_BY_ASN = {"Kestrel Edge": [64489]}

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
    # issue 11's providers (contacts)
    ("GB", "incident@ncsc-gb-sandbox.org.uk", "en"),
    ("NO", "cert@norcert-sandbox.no", "en"),
    ("SE", "cert@cert-se-sandbox.se", "en"),
    ("IE", "incident@csirt-ie-sandbox.ie", "en"),
)

# --------------------------------------------------------------------------- infrastructure

# Attacker hosts (all on the bulletproof network). Names look like what real
# campaigns register: typo-squats of CDNs and analytics, "update" and "login" lures.
ATTACKER_HOSTS = {
    "loader": ("apiscdn-metrics.com", 11),  # injected-script payload host
    "delayed": ("cdn-widget-loader.com", 12),  # the delayed injection
    # Browser realism (issue 11 points 1-2): loaders quiet for automation, redirects
    # only for phones or search visitors (tocsin.sandbox.pages_browser).
    "personcheck": ("wp-emoji-cdn.com", 30),  # loaders that skip automated browsers
    "personcheck2": ("jsdelivr-static.net", 31),  # the same, a second campaign
    "mobileprize": ("mobile-prize-claim.net", 32),  # phone-only redirect landing
    "searchdeal": ("search-deals-today.net", 33),  # search-referer-only redirect landing
    "androidreward": ("android-reward-center.net", 34),  # phone and search referer landing
    "knownbad": ("trafficjunction-stats.net", 13),  # on the known-bad list
    "tds": ("tds-gateway.net", 14),  # hidden-iframe traffic distribution
    "redirect": ("prize-winner-today.net", 15),  # redirect landing (scam)
    "dropper": ("secure-docs-download.net", 16),  # drive-by download
    "oncetds": ("stat-counter-cdn.net", 45),  # first-visit-only TDS (once per IP)
    "rotator": ("cdn-jsdelivery.net", 46),  # rotates payload families per visit
    "mirror": ("fast-setup-mirror.net", 47),  # pushes an installer from a compromised page
    "fakeupdate": ("update-chrome-browser.net", 17),  # SocGholish-style lure
    "skimmer": ("analytics-googlecdn.com", 18),  # Magecart exfiltration gate
    "skimfetch": ("cdn-assetsync.com", 35),  # skimmer gate: fetch, XHR, beacon
    "skimimg": ("img-pixelstat.net", 36),  # skimmer gate: image URL, posted form
    "skimws": ("wss-checkout-sync.com", 37),  # skimmer WebSocket
    "skimrtc": ("turn.rtc-mediarelay.net", 38),  # skimmer's WebRTC TURN relay
    "phishgate": ("mailbox-verify-login.net", 19),  # phishing form target
    "miner": ("webminer-pool.net", 20),  # miner script
    "pool": ("ws1.webminer-pool.net", 21),  # mining pool WebSocket
    "spam": ("cheap-brand-outlet.net", 22),  # SEO spam target shop
    "spam-pharma": ("rx-discount-meds.net", 50),  # cloaking: pharma spam target
    "spam-casino": ("slot-gacor-jackpot.net", 51),  # cloaking: casino spam target
    "spam-replica": ("replica-watch-store.net", 52),  # cloaking: counterfeit-brand target
    "spam-farm": ("seo-backlink-hub.net", 53),  # cloaking: link farm
    "spam-loans": ("quick-payday-cash.net", 54),  # cloaking: link farm
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
    "stripejs": ("js.stripe.com", 20),
    "stripeapi": ("api.stripe.com", 21),
    "telegram": ("api.telegram.org", 22),  # abused by phishing kits, legitimate itself
    "discord": ("discord.com", 23),
    "slack": ("hooks.slack.com", 24),
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
    # ---------------------------------------------------------------- browser realism
    # Issue 11 points 1-2 (tocsin.sandbox.pages_browser): loaders that stay quiet for
    # an automated browser, redirects only for phones and/or search-engine visitors.
    _site(
        "oakridge",
        150,
        id="person-webdriver",
        host="www.bluebell-bistro.com",
        kind="compromised",
        behaviour="person-only-loader",
        verdict="malicious",
        family="injected-script",
        title="www.bluebell-bistro.com",
        notes="An inline loader returns when navigator.webdriver is true, else inserts a script"
        " from wp-emoji-cdn.com.",
        tags=("webdriver", "wd"),
    ),
    _site(
        "oakridge",
        151,
        id="person-plugins",
        host="www.harbor-yoga-studio.com",
        kind="compromised",
        behaviour="person-only-loader",
        verdict="malicious",
        family="injected-script",
        title="www.harbor-yoga-studio.com",
        notes="The loader wants at least two plugins and two navigator.languages (a bare "
        "automated Chromium has one language).",
        tags=("plugins-languages", "pl"),
    ),
    _site(
        "polderhost",
        152,
        id="person-window",
        host="www.fietsen-van-dijk.nl",
        kind="compromised",
        behaviour="person-only-loader",
        verdict="malicious",
        family="injected-script",
        title="www.fietsen-van-dijk.nl",
        lang="nl",
        notes="The loader wants a window frame: outerWidth/outerHeight set and outerHeight at "
        "least 40px over innerHeight (headless: equal, old headless: 0).",
        tags=("window", "ow"),
    ),
    _site(
        "deichnet",
        153,
        id="person-useragent",
        host="www.baeckerei-sonnenschein.de",
        kind="compromised",
        behaviour="person-only-loader",
        verdict="malicious",
        family="injected-script",
        title="www.baeckerei-sonnenschein.de",
        lang="de",
        notes="The first-party wp-emoji file has a loader appended that returns for "
        "HeadlessChrome (or puppeteer, playwright...) in the user agent.",
        tags=("useragent", "ua"),
    ),
    _site(
        "oakridge",
        154,
        id="person-uadata",
        host="www.maple-street-dental.com",
        kind="compromised",
        behaviour="person-only-loader",
        verdict="malicious",
        family="injected-script",
        scheme="https",
        title="www.maple-street-dental.com",
        notes="Over https (userAgentData needs a secure context): the loader wants "
        "navigator.userAgentData with a 'Google Chrome' brand and no Headless brand.",
        tags=("uadata", "uad"),
    ),
    _site(
        "hanami",
        155,
        id="person-combo",
        host="www.onsen-kaede.jp",
        kind="compromised",
        behaviour="person-only-loader",
        verdict="malicious",
        family="injected-script",
        title="www.onsen-kaede.jp",
        lang="ja",
        notes="Several tells at once (webdriver, HeadlessChrome, plugins, languages, "
        "Notification.permission 'denied'), then a 1.5 s timer before the script from "
        "jsdelivr-static.net.",
        tags=("combo", "cb"),
    ),
    _site(
        "cafezinho",
        156,
        id="mobile-ua-redirect",
        host="www.oficina-do-carlos.com.br",
        kind="compromised",
        behaviour="condition-redirect",
        verdict="malicious",
        family="malicious-redirect",
        title="www.oficina-do-carlos.com.br",
        lang="pt",
        notes="Redirects to mobile-prize-claim.net only when the user agent says "
        "Android/iPhone/Mobile.",
        tags=("ua", "-", "mobileprize"),
    ),
    _site(
        "oakridge",
        157,
        id="mobile-touch-redirect",
        host="www.cedar-creek-plumbing.com",
        kind="compromised",
        behaviour="condition-redirect",
        verdict="malicious",
        family="malicious-redirect",
        title="www.cedar-creek-plumbing.com",
        notes="Redirects only on a touch screen (ontouchstart and maxTouchPoints).",
        tags=("touch", "-", "mobileprize"),
    ),
    _site(
        "polderhost",
        158,
        id="mobile-viewport-redirect",
        host="www.bakkerij-de-molen.nl",
        kind="compromised",
        behaviour="condition-redirect",
        verdict="malicious",
        family="malicious-redirect",
        title="www.bakkerij-de-molen.nl",
        lang="nl",
        notes="Redirects only for a narrow viewport with a coarse pointer and a small screen "
        "(matchMedia).",
        tags=("viewport", "-", "mobileprize"),
    ),
    _site(
        "oakridge",
        159,
        id="search-regex-redirect",
        host="www.summit-roofing-co.com",
        kind="compromised",
        behaviour="condition-redirect",
        verdict="malicious",
        family="malicious-redirect",
        title="www.summit-roofing-co.com",
        notes="Redirects to search-deals-today.net only when document.referrer matches "
        "google|bing|yahoo|yandex|naver.",
        tags=("-", "regex", "searchdeal"),
    ),
    _site(
        "deichnet",
        160,
        id="search-host-redirect",
        host="www.zahnarzt-am-markt.de",
        kind="compromised",
        behaviour="condition-redirect",
        verdict="malicious",
        family="malicious-redirect",
        title="www.zahnarzt-am-markt.de",
        lang="de",
        notes="Redirects only when the referrer host name is a search engine (google, bing,"
        " yandex, naver, yahoo, duckduckgo).",
        tags=("-", "host", "searchdeal"),
    ),
    _site(
        "oakridge",
        161,
        id="mobile-search-redirect",
        host="www.lakeview-pet-clinic.com",
        kind="compromised",
        behaviour="condition-redirect",
        verdict="malicious",
        family="malicious-redirect",
        title="www.lakeview-pet-clinic.com",
        notes="Redirects only a phone (user agent) coming from a search engine (referrer host):"
        " both conditions at once.",
        tags=("ua", "host", "androidreward"),
    ),
    _site(
        "hanami",
        162,
        id="touch-search-redirect",
        host="www.hanaya-tsubaki.jp",
        kind="compromised",
        behaviour="condition-redirect",
        verdict="malicious",
        family="malicious-redirect",
        title="www.hanaya-tsubaki.jp",
        lang="ja",
        notes="Redirects only a touch screen coming from a search engine (referrer regex).",
        tags=("touch", "regex", "androidreward"),
    ),
    _site(
        "oakridge",
        163,
        id="clean-condition-aware",
        host="www.riverside-bakery-cafe.com",
        kind="tricky-clean",
        behaviour="clean-condition-aware",
        verdict="clean",
        title="www.riverside-bakery-cafe.com",
        notes="Clean: sends phones to its own /m/ page, greets search visitors, loads its own "
        "chat widget only for a non-automated browser. Nothing leaves the site.",
        tags=(),
    ),
    _site(
        "polderhost",
        164,
        id="clean-condition-aware-nl",
        host="www.tandarts-de-vries.nl",
        kind="tricky-clean",
        behaviour="clean-condition-aware",
        verdict="clean",
        title="www.tandarts-de-vries.nl",
        lang="nl",
        notes="Clean: the same condition tests as clean-condition-aware, on a Dutch dentist site.",
        tags=(),
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
    # ---------------------------------------------------------------- exfil (issue 11: 3, 4)
    _site(
        "sandflare",
        165,
        id="skimmer-fetch",
        host="shop.alpine-outfitters.com",
        kind="compromised",
        behaviour="skimmer-fetch",
        verdict="malicious",
        family="card-skimmer",
        entry="/checkout/",
        title="Alpine Outfitters",
        lang="en",
        notes="A string-array obfuscated skimmer appended to the site-wide "
        "/static/js/app.min.js runs only on checkout paths and sends the form by "
        "fetch() POST of the form as JSON to cdn-assetsync.com.",
    ),
    _site(
        "hanami",
        166,
        id="skimmer-xhr",
        host="shop.kyoto-sencha.jp",
        kind="compromised",
        behaviour="skimmer-xhr",
        verdict="malicious",
        family="card-skimmer",
        entry="/checkout/onepage/",
        title="京都煎茶本舗",
        lang="ja",
        notes="A string-array obfuscated skimmer appended to the site-wide "
        "/static/js/app.min.js runs only on checkout paths and sends the form by "
        "XMLHttpRequest POST of base64 JSON to cdn-assetsync.com (a .map URL).",
    ),
    _site(
        "deichnet",
        167,
        id="skimmer-beacon",
        host="shop.roesterei-brandt.de",
        kind="compromised",
        behaviour="skimmer-beacon",
        verdict="malicious",
        family="card-skimmer",
        entry="/checkout/",
        title="Kaffeerösterei Brandt",
        lang="de",
        notes="A string-array obfuscated skimmer appended to the site-wide "
        "/static/js/app.min.js runs only on checkout paths and sends the form by "
        "navigator.sendBeacon of hex-encoded JSON to cdn-assetsync.com.",
    ),
    _site(
        "polderhost",
        168,
        id="skimmer-image",
        host="webshop.kaasboerderij-vos.nl",
        kind="compromised",
        behaviour="skimmer-image",
        verdict="malicious",
        family="card-skimmer",
        entry="/checkout/",
        title="Kaasboerderij Vos",
        lang="nl",
        notes="A string-array obfuscated skimmer appended to the site-wide "
        "/static/js/app.min.js runs only on checkout paths and sends the form by "
        "new Image().src with base64 JSON in the query, to img-pixelstat.net.",
    ),
    _site(
        "cafezinho",
        169,
        id="skimmer-form",
        host="loja.cafe-serrano.com.br",
        kind="compromised",
        behaviour="skimmer-form",
        verdict="malicious",
        family="card-skimmer",
        entry="/checkout/",
        title="Café Serrano",
        lang="pt",
        notes="A string-array obfuscated skimmer appended to the site-wide "
        "/static/js/app.min.js runs only on checkout paths and sends the form by "
        "a hidden form posted into a hidden iframe, to img-pixelstat.net.",
    ),
    _site(
        "sandflare",
        170,
        id="skimmer-websocket",
        host="shop.northwind-bikes.com",
        kind="compromised",
        behaviour="skimmer-websocket",
        verdict="malicious",
        family="card-skimmer",
        entry="/checkout/",
        title="Northwind Bikes",
        lang="en",
        notes="A string-array obfuscated skimmer appended to the site-wide "
        "/static/js/app.min.js runs only on checkout paths and sends the form by "
        "a WebSocket to wss-checkout-sync.com opened on load; frames carry base64 JSON.",
    ),
    _site(
        "oakridge",
        171,
        id="skimmer-webrtc",
        host="store.maple-ridge-crafts.com",
        kind="compromised",
        behaviour="skimmer-webrtc",
        verdict="malicious",
        family="card-skimmer",
        entry="/checkout/onepage/",
        title="Maple Ridge Crafts",
        lang="en",
        notes="A string-array obfuscated skimmer appended to the site-wide "
        "/static/js/app.min.js runs only on checkout paths and sends the form by "
        "an RTCDataChannel whose peer is a TURN relay on turn.rtc-mediarelay.net (no "
        "UDP leaves the guard's browser: the send is seen by instrumentation, not on "
        "the wire).",
    ),
    _site(
        "deichnet",
        172,
        id="kit-listing-apache",
        host="www.pension-lindenhof.de",
        kind="compromised",
        behaviour="dir-listing",
        verdict="malicious",
        family="phishing",
        entry="/wp-content/uploads/2024/05/",
        title="Pension Lindenhof",
        lang="de",
        notes="An Apache autoindex of an uploads folder holding "
        "Office365-Login-2024.zip and dhl_tracking_kit.zip next to the unpacked "
        "webmail/ kit.",
    ),
    _site(
        "polderhost",
        173,
        id="kit-listing-nginx",
        host="www.bakkerij-jansen.nl",
        kind="compromised",
        behaviour="dir-listing",
        verdict="malicious",
        family="phishing",
        entry="/old/",
        title="Bakkerij Jansen",
        lang="nl",
        notes="An nginx autoindex holding netflix-billing-update.zip and scampage_v3.rar.",
    ),
    _site(
        "hanami",
        174,
        id="phishing-telegram",
        host="www.tanaka-seikotsu.jp",
        kind="compromised",
        behaviour="phishing-bot",
        verdict="malicious",
        family="phishing",
        entry="/wp-includes/js/share/doc/index.html",
        title="田中整骨院",
        lang="ja",
        notes="A SharePoint-style lure whose inline script fetch()es the email and "
        "password to api.telegram.org/bot.../sendMessage when the password "
        "changes.",
        tags=("telegram",),
    ),
    _site(
        "cafezinho",
        175,
        id="phishing-discord",
        host="www.academia-forca.com.br",
        kind="compromised",
        behaviour="phishing-bot",
        verdict="malicious",
        family="phishing",
        entry="/images/dhl/index.html",
        title="Academia Força",
        lang="pt",
        notes="A DHL lure whose verify.js posts the login to a Discord webhook, only "
        "on submit (which tocsin never does on a login form): seen in the "
        "script, not sent.",
        tags=("discord",),
    ),
    _site(
        "oakridge",
        176,
        id="phishing-slack",
        host="www.greenfield-vet.com",
        kind="compromised",
        behaviour="phishing-bot",
        verdict="malicious",
        family="phishing",
        entry="/mail/index.html",
        title="Greenfield Veterinary Clinic",
        lang="en",
        notes="A webmail lure that sendBeacon()s the login to a Slack incoming webhook on blur.",
        tags=("slack",),
    ),
    _site(
        "oakridge",
        177,
        id="webshell-wso",
        host="www.harborlight-motel.com",
        kind="compromised",
        behaviour="webshell",
        verdict="malicious",
        family="webshell",
        entry="/wp-content/plugins/hello-dolly/wso.php",
        title="Harborlight Motel",
        lang="en",
        notes="A WSO-like panel: Uname/Php/Hdd lines, a file manager with "
        "permissions, Console, Self remove.",
        tags=("wso",),
    ),
    _site(
        "deichnet",
        178,
        id="webshell-b374k",
        host="www.fahrschule-krueger.de",
        kind="compromised",
        behaviour="webshell",
        verdict="malicious",
        family="webshell",
        entry="/wp-includes/css/b374k.php",
        title="Fahrschule Krüger",
        lang="de",
        notes="A b374k-like panel: explorer with perms and actions, terminal form "
        "(cmd), reverse shell menu.",
        tags=("b374k",),
    ),
    _site(
        "hanami",
        179,
        id="webshell-alfa",
        host="www.yamada-koumuten.jp",
        kind="compromised",
        behaviour="webshell",
        verdict="malicious",
        family="webshell",
        entry="/wp-content/uploads/alfa.php",
        title="山田工務店",
        lang="ja",
        notes="An Alfa-like panel: server details, file table with actions, Back "
        "Connect menu, command textarea.",
        tags=("alfa",),
    ),
    _site(
        "sandflare",
        180,
        id="clean-shop-own-socket",
        host="shop.chaya-teahouse.com",
        kind="tricky-clean",
        behaviour="shop-own-socket",
        verdict="clean",
        family=None,
        entry="/checkout/",
        title="Chaya Teahouse",
        lang="en",
        notes="Sends the card, in clear JSON, over a WebSocket to its own "
        "/payments/socket: its own site is no exfiltration.",
    ),
    _site(
        "oakridge",
        181,
        id="clean-shop-stripe",
        host="shop.saddle-and-stitch.com",
        kind="tricky-clean",
        behaviour="shop-stripe",
        verdict="clean",
        family=None,
        entry="/checkout/",
        title="Saddle & Stitch",
        lang="en",
        notes="Tokenises the card with js.stripe.com (fetch to "
        "api.stripe.com/v1/tokens), then posts the token to its own server.",
    ),
    _site(
        "megashared",
        182,
        id="docs-listing-apache",
        host="www.millbrook-hall.org",
        kind="tricky-clean",
        behaviour="dir-listing",
        verdict="clean",
        family=None,
        entry="/files/",
        title="Millbrook Village Hall",
        lang="en",
        notes="An Apache autoindex of minutes, newsletters and two ZIPs (bylaws, "
        "photos): archives, but not named after a brand or a kit.",
    ),
    _site(
        "polderhost",
        183,
        id="clean-filemanager-login",
        host="www.lakeshore-rowing.org",
        kind="tricky-clean",
        behaviour="webshell",
        verdict="clean",
        family=None,
        entry="/filemanager/login.php",
        title="Lakeshore Rowing Club",
        lang="en",
        notes="A legitimate file manager's login page: it names upload, rename, chmod "
        "and delete, but shows no system details, files or command form.",
        tags=("filemanager",),
    ),
    _site(
        "cafezinho",
        184,
        id="docs-listing-nginx",
        host="downloads.tidy-helper.org",
        kind="tricky-clean",
        behaviour="dir-listing",
        verdict="clean",
        family=None,
        entry="/pub/",
        title="tidy-helper",
        lang="en",
        notes="An nginx autoindex of a software release (tar.gz and zip) and its manual.",
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
    # ------------------------------------------- tricky clean: cloaking false positives
    # (issue 11, point 6; pages in pages_fp.py). The Googlebot copy differs from the
    # plain fetch (an empty SPA shell) but not from the page Chromium renders.
    _site(
        "hanami",
        200,
        id="fp-shop-ja",
        host="www.hinoki-zakka.jp",
        kind="tricky-clean",
        behaviour="fp-shop",
        verdict="clean",
        title="ひのき雑貨店",
        lang="ja",
        notes="A single-page-app shop: browsers get an empty shell the app fills in; search "
        "engines get a pre-rendered copy (dynamic rendering). Shop words: 激安, ブランド, 通販, "
        "送料無料, 新作, 人気, アウトレット.",
    ),
    _site(
        "hanami",
        201,
        id="fp-shop-ja-partners",
        host="www.kimono-hana.jp",
        kind="tricky-clean",
        behaviour="fp-shop",
        verdict="clean",
        title="着物レンタル はな",
        lang="ja",
        notes="A single-page-app shop: browsers get an empty shell the app fills in; search "
        "engines get a pre-rendered copy (dynamic rendering). The bot copy adds a few "
        "links to carriers and payment services.",
        tags=("partners",),
    ),
    _site(
        "deichnet",
        200,
        id="fp-shop-de",
        host="www.kaffee-outlet.de",
        kind="tricky-clean",
        behaviour="fp-shop",
        verdict="clean",
        title="Kaffeerösterei Outlet",
        lang="de",
        notes="A single-page-app shop: browsers get an empty shell the app fills in; search "
        "engines get a pre-rendered copy (dynamic rendering). Outlet, Sale, günstig, "
        "Rabatt, Marken, and a 'Cheap & Cheerful' set.",
    ),
    _site(
        "deichnet",
        201,
        id="fp-shop-de-switcher",
        host="www.kirschgarten-tee.de",
        kind="tricky-clean",
        behaviour="fp-shop",
        verdict="clean",
        title="Kirschgarten Tee",
        lang="de",
        notes="A single-page-app shop: browsers get an empty shell the app fills in; search "
        "engines get a pre-rendered copy (dynamic rendering). The bot copy has a language"
        " switcher: ten sister domains (.fr, .jp, .cn, .kr...) labelled in their "
        "languages.",
        tags=("switcher",),
    ),
    _site(
        "polderhost",
        200,
        id="fp-shop-fr",
        host="www.fromagerie-dupont.fr",
        kind="tricky-clean",
        behaviour="fp-shop",
        verdict="clean",
        title="Fromagerie Dupont",
        lang="fr",
        notes="A single-page-app shop: browsers get an empty shell the app fills in; search "
        "engines get a pre-rendered copy (dynamic rendering). Soldes, promo, pas cher, "
        "marques, discount.",
    ),
    _site(
        "polderhost",
        201,
        id="fp-shop-ru",
        host="www.matryoshkin-dom.ru",
        kind="tricky-clean",
        behaviour="fp-shop",
        verdict="clean",
        title="Матрёшкин дом",
        lang="ru",
        notes="A single-page-app shop: browsers get an empty shell the app fills in; search "
        "engines get a pre-rendered copy (dynamic rendering). Скидки, распродажа, "
        "дешёвые, бренды.",
    ),
    _site(
        "sandflare",
        200,
        id="fp-shop-es",
        host="www.zapateria-solano.es",
        kind="tricky-clean",
        behaviour="fp-shop",
        verdict="clean",
        title="Zapatería Solano",
        lang="es",
        notes="A single-page-app shop: browsers get an empty shell the app fills in; search "
        "engines get a pre-rendered copy (dynamic rendering). Rebajas, outlet de marcas, "
        "barato, descuento.",
    ),
    _site(
        "cafezinho",
        200,
        id="fp-shop-pt",
        host="www.sapataria-bela.com.br",
        kind="tricky-clean",
        behaviour="fp-shop",
        verdict="clean",
        title="Sapataria Bela",
        lang="pt",
        notes="A single-page-app shop: browsers get an empty shell the app fills in; search "
        "engines get a pre-rendered copy (dynamic rendering). Promoção, outlet, barato, "
        "desconto, marcas.",
    ),
    _site(
        "oakridge",
        200,
        id="fp-shop-zh",
        host="www.chaye-xiaopu.cn",
        kind="tricky-clean",
        behaviour="fp-shop",
        verdict="clean",
        title="茶叶小铺",
        lang="zh",
        notes="A single-page-app shop: browsers get an empty shell the app fills in; search "
        "engines get a pre-rendered copy (dynamic rendering). 品牌, 特价, 折扣, 包邮, 优惠.",
    ),
    _site(
        "oakridge",
        201,
        id="fp-shop-ko",
        host="www.hanbok-market.kr",
        kind="tricky-clean",
        behaviour="fp-shop",
        verdict="clean",
        title="한복 마켓",
        lang="ko",
        notes="A single-page-app shop: browsers get an empty shell the app fills in; search "
        "engines get a pre-rendered copy (dynamic rendering). "
        "브랜드, 할인, 세일, 최저가, 무료배송.",
    ),
    _site(
        "oakridge",
        202,
        id="fp-shop-replica-models",
        host="www.scale-replica-models.com",
        kind="tricky-clean",
        behaviour="fp-shop",
        verdict="clean",
        title="Scale Replica Models",
        lang="en",
        notes="A single-page-app shop: browsers get an empty shell the app fills in; search "
        "engines get a pre-rendered copy (dynamic rendering). Replica model cars, cheap, "
        "sale, discount, outlet, brand; the bot copy adds a few internal links.",
        tags=("extra-internal",),
    ),
    _site(
        "oakridge",
        203,
        id="fp-shop-straps",
        host="www.strapworks-outlet.com",
        kind="tricky-clean",
        behaviour="fp-shop",
        verdict="clean",
        title="Strapworks Outlet",
        lang="en",
        notes="A single-page-app shop: browsers get an empty shell the app fills in; search "
        "engines get a pre-rendered copy (dynamic rendering). Watch straps that fit Rolex"
        " and Omega, and the words 'not a replica shop' next to them.",
    ),
    _site(
        "oakridge",
        204,
        id="fp-shop-hardware",
        host="www.harbor-hardware.com",
        kind="tricky-clean",
        behaviour="fp-shop",
        verdict="clean",
        title="Harbor Hardware",
        lang="en",
        notes="A single-page-app shop: browsers get an empty shell the app fills in; search "
        "engines get a pre-rendered copy (dynamic rendering). The bot copy adds a "
        "300-link sitemap and 40 links to its own help subdomain.",
        tags=("many-links",),
    ),
    # Cloaking that must still be caught (the same pages_fp.py).
    _site(
        "oakridge",
        214,
        id="fp-cloak-farm-ua",
        host="www.lakeside-pottery.com",
        kind="compromised",
        behaviour="fp-cloak",
        verdict="malicious",
        family="seo-cloaking",
        title="Lakeside Pottery",
        lang="en",
        notes="Googlebot's user agent gets the page plus a hidden link farm: 24 links over six "
        "spam domains.",
        tags=("ua", "farm"),
    ),
    _site(
        "deichnet",
        214,
        id="fp-cloak-referer-ja",
        host="www.baeckerei-krume.de",
        kind="compromised",
        behaviour="fp-cloak",
        verdict="malicious",
        family="seo-cloaking",
        title="Bäckerei Krume",
        lang="de",
        notes="A search-engine Referer gets Japanese counterfeit-brand spam with three links; "
        "the user agent alone gets the bakery.",
        tags=("referer", "spam:replica-ja"),
    ),
    _site(
        "polderhost",
        214,
        id="fp-cloak-ctrl",
        host="www.fietsenmaker-jansen.nl",
        kind="compromised",
        behaviour="fp-cloak",
        verdict="malicious",
        family="seo-cloaking",
        title="Fietsenmaker Jansen",
        lang="nl",
        notes="Googlebot gets control bytes, a NUL and odd markup right after a <script>, then "
        "Russian casino spam and a link farm.",
        tags=("ua", "ctrl", "farm", "spam:casino-ru"),
    ),
    _site(
        "hanami",
        214,
        id="fp-cloak-pharma-en",
        host="www.hoshino-shika.jp",
        kind="compromised",
        behaviour="fp-cloak",
        verdict="malicious",
        family="seo-cloaking",
        title="ほしの歯科",
        lang="ja",
        notes="Googlebot gets English pharma spam with three links on a Japanese dental page.",
        tags=("ua", "spam:pharma-en"),
    ),
    _site(
        "cafezinho",
        214,
        id="fp-cloak-casino-id",
        host="www.padaria-aurora.com.br",
        kind="compromised",
        behaviour="fp-cloak",
        verdict="malicious",
        family="seo-cloaking",
        title="Padaria Aurora",
        lang="pt",
        notes="A search-engine Referer gets Indonesian slot spam with three links on a "
        "Brazilian bakery's page.",
        tags=("referer", "spam:casino-id"),
    ),
    _site(
        "hanami",
        215,
        id="fp-cloak-spa-shop",
        host="www.momiji-zakka.jp",
        kind="compromised",
        behaviour="fp-cloak",
        verdict="malicious",
        family="seo-cloaking",
        title="もみじ雑貨",
        lang="ja",
        notes="An SPA shop whose pre-rendered copy for Googlebot also carries Chinese "
        "counterfeit-brand spam and a link farm.",
        tags=("ua", "farm", "spam:replica-zh", "shop:fp-shop-ja"),
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
    # ---------------------------------------------------------------- issue 11: contacts
    # Sub-allocated networks whose abuse desk is on a parent or the holder's org
    # (sandbox/rdap_contacts.py), security.txt web forms and an expired file, and
    # sites behind CDNs known only by ASN or AS name, revealing the origin or not.
    _site(
        "brightline",
        220,
        id="contacts-parent-up",
        host="www.harbourview-dental.com",
        kind="compromised",
        behaviour="known-bad-host",
        verdict="malicious",
        family="known-bad-host",
        security_txt="web-form",
        title="Harbourview Dental",
        notes="Its /24 has no abuse entity; the up link names the parent /23 that has one. "
        "security.txt lists only a web form: kept and shown, nobody mailed from it.",
    ),
    _site(
        "fjordlink",
        221,
        id="contacts-parent-handle",
        host="www.fjellstua-cabins.com",
        kind="compromised",
        behaviour="hidden-iframe",
        verdict="malicious",
        family="hidden-iframe",
        security_txt="web-form+mail",
        title="Fjellstua Cabins",
        notes="No abuse entity and no up link: only parentHandle leads to the parent /23. "
        "security.txt has a web form and a mailbox: the mailbox is written to.",
    ),
    _site(
        "meridian",
        222,
        id="contacts-org",
        host="www.meridian-yoga-studio.com",
        kind="compromised",
        behaviour="cryptominer",
        verdict="malicious",
        family="cryptominer",
        security_txt="expired",
        title="Meridian Yoga Studio",
        notes="Neither the network nor its parent has an abuse desk; the holder's org entity "
        "does. Its security.txt has expired: the mailbox is still used, flagged.",
    ),
    _site(
        "cobblestone",
        223,
        id="contacts-parent-chain",
        host="www.cobblestone-cycles.com",
        kind="compromised",
        behaviour="hidden-iframe",
        verdict="malicious",
        family="hidden-iframe",
        title="Cobblestone Cycles",
        notes="The abuse desk is two levels up: /24 -> /23 (none) -> /22.",
    ),
    _site(
        "tidewater",
        224,
        id="contacts-parent-down",
        host="www.tidewater-kayaks.com",
        kind="compromised",
        behaviour="known-bad-host",
        verdict="malicious",
        family="known-bad-host",
        title="Tidewater Kayaks",
        notes="The up link points at the RDAP server that is down: a hosting-contact gap, "
        "retried, and filled once the server is up.",
    ),
    _site(
        "kestrel",
        225,
        id="cdn-asn-no-origin",
        host="www.kestrel-ceramics.com",
        kind="compromised",
        behaviour="cdn-origin",
        verdict="malicious",
        family="injected-script",
        title="Kestrel Ceramics",
        notes="Behind a CDN known only by its ASN; nothing reveals the origin.",
        tags=("origin:none", "attack:loader"),
    ),
    _site(
        "kestrel",
        226,
        id="cdn-asn-origin-header",
        host="www.linden-tea-house.com",
        kind="compromised",
        behaviour="cdn-origin",
        verdict="malicious",
        family="hidden-iframe",
        title="Linden Tea House",
        notes="Behind the ASN-only CDN; an X-Origin-Server header names the origin address.",
        tags=("origin:header", "attack:iframe"),
    ),
    _site(
        "nimbusedge",
        227,
        id="cdn-asname-origin-asset",
        host="www.saltmarsh-gallery.com",
        kind="compromised",
        behaviour="cdn-origin",
        verdict="malicious",
        family="injected-script",
        title="Saltmarsh Gallery",
        notes="Behind a CDN known only by its AS name; an image still loads from the origin "
        "address (http://<origin-ip>/wp-content/uploads/...).",
        tags=("origin:asset", "attack:loader"),
    ),
    _site(
        "nimbusedge",
        228,
        id="cdn-asname-origin-link",
        host="www.quarry-lane-books.com",
        kind="compromised",
        behaviour="cdn-origin",
        verdict="malicious",
        family="known-bad-host",
        title="Quarry Lane Books",
        notes="Behind the AS-name CDN; a link to origin.quarry-lane-books.com names the origin.",
        tags=("origin:link", "attack:knownbad"),
    ),
    _site(
        "nimbusedge",
        229,
        id="clean-cdn-origin-asset",
        host="www.wren-and-fern.com",
        kind="clean",
        behaviour="cdn-origin",
        verdict="clean",
        title="Wren and Fern",
        notes="A clean site behind the AS-name CDN whose page shows its origin address: "
        "an origin hint is no sign of compromise.",
        tags=("origin:asset",),
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
