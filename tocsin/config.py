"""Configuration: one TOML file plus ``TOCSIN_<TABLE>_<KEY>`` environment overrides.

The keys and defaults of ``CONTRACT.md`` are fixed; every other key is ours.
Each table is a pydantic model, so a wrong value is caught once, at start-up,
and reported as one line naming the key (:class:`~tocsin.errors.ConfigError`,
exit code 2). Unknown keys are errors too: a typo must not silently fall back
to a default.

Settings are read here and nowhere else. Scrapy components get them through
``crawler.settings.from_config`` and ``from_crawler``; other stages receive the
:class:`Config` object.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import sys
import tomllib
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from tocsin.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(value: Any) -> timedelta:
    """``"90s"``, ``"15m"``, ``"6h"``, ``"3d"`` (also ``ms`` and ``w``) to a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match[1]) * _DURATION_UNITS[match[2]])
    raise ValueError(f"expected a duration such as 90s, 15m, 6h or 3d, got {value!r}")


def parse_size(value: Any) -> int:
    """``"10MB"``, ``"512KiB"`` or a plain integer to a number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(float(match[1]) * _SIZE_UNITS[(match[2] or "b").lower()])
    raise ValueError(f"expected a size such as 8192, 512KiB or 10MB, got {value!r}")


def check_cidr(value: str) -> str:
    """An IP network such as ``127.10.0.0/16``: checked at load, not when the guard first runs."""
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(f"expected an IP network such as 10.0.0.0/8, got {value!r}") from None
    return value.strip()  # as the guard reads it


def check_nameserver(value: str) -> str:
    """``ip``, ``ip:port`` or ``[ipv6]:port`` (the forms tocsin.net.resolver reads)."""
    host, port = value.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ("53" if not rest else "")
    elif host.count(":") == 1:
        host, _, port = host.partition(":")
    try:
        ipaddress.ip_address(host)
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError
    except ValueError:
        raise ValueError(
            f"expected a name server address such as 192.0.2.53 or 192.0.2.53:5353, got {value!r}"
        ) from None
    return value.strip()


def check_http_url(value: str) -> str:
    """Empty, or an ``http(s)://host...`` URL (an operator's service: MISP, a TSA)."""
    if value and not re.match(r"^https?://[^/\s]+", value, re.IGNORECASE):
        raise ValueError(f"expected an http(s) URL such as https://host.example/, got {value!r}")
    return value


def check_uuid(value: str) -> str:
    """Empty, or a UUID: checked at load, not at the first export."""
    if value.strip():
        try:
            uuid.UUID(value.strip())
        except ValueError:
            raise ValueError(f"expected a UUID or nothing, got {value!r}") from None
    return value.strip()


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Cidr = Annotated[str, AfterValidator(check_cidr)]
Nameserver = Annotated[str, AfterValidator(check_nameserver)]
HttpUrl = Annotated[str, AfterValidator(check_http_url)]
Uuid = Annotated[str, AfterValidator(check_uuid)]


class Section(BaseModel):
    """A configuration table. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_bool(cls, value: Any, info: ValidationInfo) -> Any:
        """Every ``bool`` key takes only true or false (StrictBool for every key, also ones
        added later): pydantic's lax mode would read ``"yes"``, ``"off"`` or ``0`` silently."""
        annotation = cls.model_fields[info.field_name].annotation if info.field_name else None
        if annotation is bool and not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value


class DatabaseConfig(Section):
    url: str = "sqlite:///tocsin.db"


class NetworkConfig(Section):
    allow_private: bool = False
    allow_cidrs: list[Cidr] = Field(default_factory=list)  # private ranges admitted anyway
    hosts_file: str = ""
    dns_timeout: Duration = timedelta(seconds=5)
    nameservers: list[Nameserver] = Field(default_factory=list)  # "ip" or "ip:port"; empty = system


class BrowserConfig(Section):
    executable_path: str = ""
    headless: bool = True
    concurrency: int = Field(default=3, ge=1, le=32)  # pages at once (they mostly wait)
    navigation_timeout: Duration = timedelta(seconds=20)
    page_timeout: Duration = timedelta(seconds=45)
    clock_advance: Duration = timedelta(minutes=10)
    max_download: Size = 32 * 1024**2
    # false: triage only (benchmarks, machines without Chromium). HTML pages get route
    # "browser-skipped" and a verdict from the static rules over the served HTML alone.
    enabled: bool = True
    args: list[str] = Field(default_factory=list)  # extra Chromium flags
    user_agent: str = ""  # empty: Chrome on Windows, the running Chromium's version
    locale: str = "en-US"
    timezone: str = "America/New_York"
    viewport_width: int = Field(default=1366, ge=320, le=4096)
    viewport_height: int = Field(default=768, ge=240, le=4096)
    settle_time: Duration = timedelta(milliseconds=800)  # quiet after load (and clock steps)
    interact: bool = True  # fill payment and login fields with test data, to make skimmers act
    max_dialogs: int = Field(default=20, ge=1)  # more: "alert() loop", the page is an error
    max_popups: int = Field(default=10, ge=1)  # more: "popup storm", the page is an error
    max_requests: int = Field(default=1000, ge=10)  # request-log entries kept per page
    max_scan_body: Size = 2 * 1024**2  # a script or document body kept for the rules
    max_scan_total: Size = 16 * 1024**2  # all bodies kept per page
    max_dom: Size = 4 * 1024**2
    screenshot: bool = True
    # Visit conditions (docs/crawl.md, "Visit conditions"): after the desktop visit
    # with no referer, a page that is not already malicious is visited again as a
    # phone and from a search engine, at most max_visits visits within visit_budget.
    condition_visits: bool = True
    # Only pages whose scripts read what a condition changes (user agent, touch, screen
    # or window size, referrer) get the further visits; false: every page not malicious.
    condition_gate: bool = True
    max_visits: int = Field(default=4, ge=1, le=4)
    visit_budget: Duration = timedelta(seconds=90)
    mobile_device: str = "Pixel 7"  # a Playwright device descriptor
    mobile_user_agent: str = ""  # empty: Chrome on Android, the running Chromium's version
    search_referer: str = "https://www.google.com/"
    screen_width: int = Field(default=1920, ge=320, le=8192)  # the desktop's screen
    screen_height: int = Field(default=1080, ge=240, le=8192)
    # A JSON-lines file of every connection Chromium asks the guard proxy for (audits).
    proxy_log: str = ""


class CrawlConfig(Section):
    concurrency: int = Field(default=32, ge=1, le=1024)
    per_domain: int = Field(default=2, ge=1, le=64)
    download_timeout: Duration = timedelta(seconds=20)
    max_body: Size = 10 * 1024**2
    max_redirects: int = Field(default=10, ge=0, le=50)
    retries: int = Field(default=2, ge=0, le=10)
    batch_size: int = Field(default=500, ge=1)
    user_agent: str = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    )
    # SEO cloaking: an HTML page is fetched again as a search engine's crawler and as a
    # visitor coming from a search results page, and compared with the plain fetch.
    cloaking_check: bool = True
    bot_user_agent: str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    search_referer: str = "https://www.google.com/search?q=site"
    # A URL whose check ended in `error` is due again after this long, up to
    # max_attempts checks in all; other verdicts are not re-visited by `crawl`
    # (open incidents are, by `recheck`).
    error_retry_after: Duration = timedelta(hours=6)
    max_attempts: int = Field(default=3, ge=1, le=100)
    # A crawl's lease on a URL lapses after this long unless the crawl extends it (it
    # does, every third of the term, while it runs): the backstop when a worker dies.
    lease_seconds: int = Field(default=600, ge=10, le=86400)


class WorkerConfig(Section):
    """`tocsin worker` and `tocsin crawl --enqueue` (PostgreSQL only)."""

    queue: str = Field(default="crawl", min_length=1, max_length=100)
    # How often a worker says it is alive, and after how long without a word its
    # jobs are retried by the other workers.
    heartbeat: Duration = timedelta(seconds=10)
    stalled_after: Duration = timedelta(seconds=30)


class SignaturesConfig(Section):
    known_bad: str = ""  # a file of known-bad domains, IPs and file SHA-256s, one a line
    rules_dir: str = ""  # extra YARA-X rules (*.yar) besides the bundled ones
    community_rules: list[str] = Field(default_factory=list)  # more fiddleitm JSON / IOK folders
    # The community packs that run on every check (bundled with tocsin; a copy fetched by
    # `tocsin rules update` wins over the bundled one). [] switches them off.
    community_packs: list[Literal["fiddleitm", "iok"]] = Field(
        default_factory=lambda: ["fiddleitm", "iok"]
    )
    # Where `tocsin rules update` keeps the packs it fetched (and the previous ones, for
    # `rules rollback`). Empty: "rule-packs" beside the config file, else beside the
    # SQLite store, else in the user's data folder; a relative path is taken from there.
    packs_dir: str = ""
    # Where `tocsin rules update` fetches each pack: a JSON file, a YAML file, or a
    # .zip / .tar.gz archive (GitHub's archive of a branch).
    fiddleitm_url: str = "https://raw.githubusercontent.com/jeromesegura/fiddleitm/main/rules.json"
    iok_url: str = "https://codeload.github.com/phish-report/IOK/tar.gz/refs/heads/main"
    pack_timeout: Duration = timedelta(minutes=2)  # one pack's download, redirects included
    pack_max_download: Size = 32 * 1024**2  # the response (an archive as sent)
    pack_max_unpacked: Size = 128 * 1024**2  # every member of an archive, unpacked
    # What a community-rule match alone makes of a page: third-party rules vary in
    # quality, so by default they mark a page suspicious and add to the evidence of a
    # malicious verdict, but never send a notice on their own.
    community_verdict: Literal["suspicious", "malicious", "ignore"] = "suspicious"
    # Extra reputable third-party domains (CDNs, analytics, payment) never counted as
    # "foreign" by the behaviour checks.
    allow_domains: list[str] = Field(default_factory=list)


class EvidenceConfig(Section):
    dir: str = "evidence"
    max_blob: Size = 32 * 1024**2
    keep_clean: bool = True  # keep screenshots and logs of clean pages too (re-check proof)


class IngestConfig(Section):
    max_line: Size = 8192
    fetch_timeout: Duration = timedelta(seconds=60)
    fetch_max_bytes: Size = 512 * 1024**2
    batch_size: int = Field(default=20_000, ge=1)  # records per transaction
    parallel_after: int = Field(default=50_000, ge=0)  # then a writer process; 0: never


class AsnConfig(Section):
    ipasn_db: str = ""
    ipasn6_db: str = ""
    asnames: str = ""
    # `tocsin asn update`: where RouteViews publishes its RIB dumps, and where to write.
    routeviews_url: str = "https://archive.routeviews.org/bgpdata"
    update_dir: str = "asn-data"
    download_timeout: Duration = timedelta(minutes=10)
    max_download: Size = 1024**3


class RdapConfig(Section):
    bootstrap_dir: str = ""
    allow_insecure: bool = False
    timeout: Duration = timedelta(seconds=15)
    cache_ttl: Duration = timedelta(days=1)
    negative_ttl: Duration = timedelta(hours=1)
    concurrency: int = Field(default=8, ge=1, le=256)
    rate_per_server: float = Field(default=5.0, gt=0)
    retries_429: int = Field(default=2, ge=0, le=10)  # in-run retries after a 429
    max_retry_wait: Duration = timedelta(seconds=10)  # longer Retry-After: defer to a later run
    max_failures_per_server: int = Field(default=3, ge=1)  # then skip that server this run
    max_response: Size = 2 * 1024**2
    # A network without an abuse entity: how many parent networks (up link / parentHandle)
    # are walked, and how many extra queries one lookup may spend on it (orgs included).
    parent_depth: int = Field(default=3, ge=0, le=8)
    parent_budget: int = Field(default=6, ge=0, le=32)


class EnrichConfig(Section):
    rfc2142_guesses: bool = False
    retry_after: Duration = timedelta(hours=1)
    # A site fully enriched is looked at again after this long (hosts move, contacts change).
    refresh_after: Duration = timedelta(days=30)
    batch_size: int = Field(default=200, ge=1)
    dns_concurrency: int = Field(default=16, ge=1, le=256)
    max_ips: int = Field(default=4, ge=1, le=32)  # addresses per site looked up in RDAP
    securitytxt: bool = True
    securitytxt_max_bytes: Size = 32 * 1024
    securitytxt_timeout: Duration = timedelta(seconds=10)
    securitytxt_concurrency: int = Field(default=64, ge=1, le=1024)  # requests in flight
    in_crawl: bool = True  # the crawl's item pipeline enriches sites right after confirmation
    # The contact ladder: level N notifies the roles listed at position N-1.
    ladder: list[list[Literal["owner", "hosting", "registrar", "cert"]]] = Field(
        default_factory=lambda: [["hosting", "owner"], ["registrar"], ["cert"]]
    )
    # Extra CDN / shared-hosting patterns (a JSON file like enrich/data/providers.json).
    providers_file: str = ""
    # More sites than this on one address marks it as shared hosting.
    shared_hosting_sites: int = Field(default=20, ge=2)
    default_language: str = "en"
    # Runs that retry a missing hosting contact (no abuse desk found) before it stays a gap.
    hosting_retries: int = Field(default=3, ge=0, le=20)


class NotifyConfig(Section):
    mode: Literal["outbox", "smtp"] = "outbox"
    outbox_dir: str = "outbox"
    from_addr: str = ""
    batch_cap: int = Field(default=500, ge=1)
    max_evidence_age: Duration = timedelta(hours=12)
    html: bool = False
    rate_per_day: int = Field(default=20, ge=0)  # messages per recipient per day; 0: no limit
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_key_file: str = ""
    # Who we are in From, X-ARF reporter/sender, and the reply address (plus-addressed
    # with the ticket id, e.g. abuse+TCS-7K3M-9QXP@example.org); empty: from_addr.
    org_name: str = "tocsin"
    reply_to: str = ""
    # smtp mode journals to the store (table relay_journal). This names the file journal
    # of an older tocsin, read during crash recovery only; relative: to the config's folder.
    journal: str = ""
    sending_timeout: Duration = timedelta(hours=1)  # a "sending" row of another host is stale
    retry_base: Duration = timedelta(minutes=5)  # 4xx / refused: back off, doubling
    retry_max: Duration = timedelta(hours=6)
    max_attempts: int = Field(default=12, ge=1)
    send_batch: int = Field(default=100, ge=1, le=1000)  # notices claimed per transaction
    compose_batch: int = Field(default=50, ge=1, le=5000)  # recipients per transaction
    # Processes that render notices while the main one reads and stores (1: render
    # in-process). Used when a run has many recipients to write to.
    workers: int = Field(default=2, ge=1, le=64)
    max_evidence_lines: int = Field(default=10, ge=1, le=100)
    portal_ttl: Duration = timedelta(days=90)
    # Per-ASN digest subscriptions, "ASN=email" (e.g. "64500=noc@example.net").
    digest_subscribers: list[str] = Field(default_factory=list)
    # `tocsin inbox` without a PATH reads this IMAP mailbox.
    imap_host: str = ""
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_ssl: bool = True
    imap_username: str = ""
    imap_password: str = ""
    imap_folder: str = "INBOX"


class SmtpConfig(Section):
    host: str = "localhost"
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = False
    username: str = ""
    password: str = ""
    timeout: Duration = timedelta(seconds=30)
    verify: bool = True  # check the relay's TLS certificate
    ca_file: str = ""  # extra CA bundle for the relay (e.g. a private relay's own CA)


class EscalationConfig(Section):
    grace: Duration = timedelta(days=3)
    recheck_after: list[Duration] = Field(
        default_factory=lambda: [parse_duration(d) for d in ("1d", "2d", "4d", "8d", "16d")]
    )
    cert_contacts: str = ""


class SuppressConfig(Section):
    # Domains never reported (a site on them or a subdomain is skipped).
    allowlist_domains: list[str] = Field(default_factory=list)
    # Opt-outs: "email" (everything) or "email:type", where type is a family id
    # (e.g. "phishing") or an X-ARF type ("malware", "phishing", "remote_compromise").
    optout: list[str] = Field(default_factory=list)


TLP_LABELS = ("clear", "green", "amber", "amber+strict", "red")
Tlp = Literal["clear", "green", "amber", "amber+strict", "red"]


class BoardConfig(Section):
    base_url: str = "http://127.0.0.1:8080"
    token: str = ""  # an admin bearer token, when set
    secret: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    default_tlp: Tlp = "amber"
    max_body: Size = 1024**2
    max_urls: int = Field(default=10_000, ge=1)
    session_ttl: Duration = timedelta(hours=12)
    # Failed log-ins and portal-token misses per client address within rate_window.
    max_failures: int = Field(default=10, ge=1)
    rate_window: Duration = timedelta(minutes=15)
    # Reverse proxies whose X-Forwarded-For names the client (for the rate limit).
    trusted_proxies: list[str] = Field(default_factory=list)
    page_size: int = Field(default=50, ge=5, le=1000)
    workers: int = Field(default=2, ge=1, le=64)  # processes serving the board


class MispConfig(Section):
    # The MISP instance ``tocsin export --push misp`` adds and updates events on.
    url: HttpUrl = ""
    key: str = ""  # the API key of a MISP user allowed to add events
    verify_tls: bool = True
    timeout: Duration = timedelta(seconds=30)
    # 0 your organisation only, 1 this community, 2 connected communities, 3 all.
    distribution: int = Field(default=0, ge=0, le=3)
    # Mixed into every event's uuid5; empty: tocsin's own namespace (docs/handoff.md).
    uuid_namespace: Uuid = ""


class ServeConfig(Section):
    """`tocsin serve`: how often each job runs ("0s": never). Feeds have their own ``every``."""

    crawl_every: Duration = timedelta(minutes=5)
    enrich_every: Duration = timedelta(minutes=15)
    notify_every: Duration = timedelta(minutes=15)
    recheck_every: Duration = timedelta(hours=1)
    inbox_every: Duration = timedelta(minutes=15)
    # Where crawl, enrich, notify and recheck run: "workers" (queued for `tocsin worker`;
    # PostgreSQL only), "here" (in serve's process), "auto" (workers on PostgreSQL, here
    # on SQLite). Feeds and the inbox always run in serve.
    run_jobs: Literal["auto", "here", "workers"] = "auto"
    # With run_jobs = "here", on PostgreSQL: the crawl job still queues the due URLs for
    # `tocsin worker` (crawl --enqueue) instead of crawling them in this process.
    crawl_enqueue: bool = False
    # A maildir or mbox read by the inbox job; empty: IMAP when notify.imap_host is set,
    # else no inbox job.
    inbox_path: str = ""
    # A job's lease lapses this long after its holder stopped extending it (a dead serve).
    lease: Duration = timedelta(minutes=10)
    # /healthz calls a job stale once its last success is older than this many intervals.
    stale_after: float = Field(default=3.0, gt=1)


class FeedConfig(Section):
    """One ``[[feeds]]`` entry: a feed ``tocsin serve`` pulls every ``every``."""

    url: HttpUrl
    format: str = "auto"
    source: str = Field(default="", max_length=100)
    campaign: str = Field(default="", max_length=200)
    every: Duration = timedelta(hours=1)

    @field_validator("url")
    @classmethod
    def _needs_url(cls, value: str) -> str:
        if not value:
            raise ValueError("expected an http(s) URL")
        return value

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from ingest.detect import FORMATS

        if value not in ("auto", *FORMATS):
            raise ValueError(f"expected one of auto, {', '.join(FORMATS)}, got {value!r}")
        return value

    @property
    def job(self) -> str:
        """The job's name in the schedule (``job_leases``, /metrics, /healthz)."""
        return f"feed:{self.source or self.url}"[:128]


class PackageConfig(Section):
    """Evidence packages for CSIRTs and law enforcement (``tocsin package``, docs/handoff.md)."""

    operator: str = ""  # who makes the packages: a person or a team, written in the manifest
    tsa_url: HttpUrl = ""  # an RFC 3161 time-stamping authority; empty: no timestamp
    tsa_ca: str = ""  # PEM file of the CA(s) the TSA's certificate is checked against
    tsa_timeout: Duration = timedelta(seconds=30)


class Config(Section):
    """The whole configuration; one attribute per TOML table."""

    database: DatabaseConfig = DatabaseConfig()
    network: NetworkConfig = NetworkConfig()
    browser: BrowserConfig = BrowserConfig()
    crawl: CrawlConfig = CrawlConfig()
    worker: WorkerConfig = WorkerConfig()
    signatures: SignaturesConfig = SignaturesConfig()
    evidence: EvidenceConfig = EvidenceConfig()
    ingest: IngestConfig = IngestConfig()
    asn: AsnConfig = AsnConfig()
    rdap: RdapConfig = RdapConfig()
    enrich: EnrichConfig = EnrichConfig()
    notify: NotifyConfig = NotifyConfig()
    smtp: SmtpConfig = SmtpConfig()
    escalation: EscalationConfig = EscalationConfig()
    suppress: SuppressConfig = SuppressConfig()
    board: BoardConfig = BoardConfig()
    misp: MispConfig = MispConfig()
    package: PackageConfig = PackageConfig()
    serve: ServeConfig = ServeConfig()
    feeds: list[FeedConfig] = Field(default_factory=list)  # [[feeds]]

    @field_validator("feeds")
    @classmethod
    def _feeds_apart(cls, feeds: list[FeedConfig]) -> list[FeedConfig]:
        """Each feed is its own job: two with one name would share one schedule."""
        seen: set[str] = set()
        for feed in feeds:
            if feed.job in seen:
                raise ValueError(f"two feeds are both named {feed.job!r}: give each a source")
            seen.add(feed.job)
        return feeds


def _env_overrides(environ: dict[str, str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Collect ``TOCSIN_<TABLE>_<KEY>`` variables for keys that exist.

    Matching is driven by the model, not by splitting on ``_``, because keys such
    as ``allow_private`` contain the separator themselves. Returns the overrides
    and, for error messages, which variable set which key.
    """
    overrides: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    known = set(ENV_NOT_KEYS)
    for table, field in Config.model_fields.items():
        section_model = field.annotation
        if not hasattr(section_model, "model_fields"):  # [[feeds]]: the file only
            continue
        for key, key_field in section_model.model_fields.items():
            var = f"TOCSIN_{table}_{key}".upper()
            known.add(var)
            if var not in environ:
                continue
            raw = environ[var]
            value: Any = raw
            if key_field.annotation is bool:  # written as in TOML: true or false, nothing else
                value = {"true": True, "false": False}.get(raw.strip(), raw)
            elif getattr(key_field.annotation, "__origin__", None) is list:
                stripped = raw.strip()
                if stripped.startswith("["):
                    try:
                        value = json.loads(stripped)
                    except json.JSONDecodeError:
                        raise ConfigError(
                            f"{table}.{key}", f"{var} is not a JSON list: {raw!r}"
                        ) from None
                else:
                    value = [part.strip() for part in stripped.split(",") if part.strip()]
            overrides.setdefault(table, {})[key] = value
            origin[f"{table}.{key}"] = var
    for var in sorted(environ):
        if var.startswith("TOCSIN_") and var not in known:
            _warn_unknown(var, known)
    return overrides, origin


# TOCSIN_* variables that are not configuration keys (the config file, a test-only fault point,
# the test suite's PostgreSQL).
ENV_NOT_KEYS = ("TOCSIN_CONFIG", "TOCSIN_FAULT", "TOCSIN_TEST_PG")


def _warn_unknown(var: str, known: set[str]) -> None:
    """One line on stderr: a misspelt variable would otherwise be ignored without a word."""
    name = "".join(c if c.isprintable() else "?" for c in var)[:100]
    close = difflib.get_close_matches(var, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    sys.stderr.write(f"tocsin: warning: unknown environment variable {name} ignored{hint}\n")


def _explain(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    got = error.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error.get("msg")))
    expected = {
        "bool_parsing": "expected true or false",
        "bool_type": "expected true or false",
        "int_parsing": "expected an integer",
        "int_type": "expected an integer",
        "float_parsing": "expected a number",
        "string_type": "expected a string",
        "list_type": "expected a list",
        "literal_error": f"expected one of {error.get('ctx', {}).get('expected', '')}",
        "model_type": "expected a table",
        "dict_type": "expected a table",
    }.get(kind, error.get("msg", "invalid value"))
    return f"{expected}, got {got!r}"


def resolve_path(explicit: str | None, environ: dict[str, str] | None = None) -> Path | None:
    """``--config``, else ``$TOCSIN_CONFIG``, else ``./tocsin.toml`` when present."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get("TOCSIN_CONFIG"):
        return Path(environ["TOCSIN_CONFIG"])
    default = Path("tocsin.toml")
    return default if default.is_file() else None


def _paths_beside(data: dict[str, Any], overrides: dict[str, Any], folder: Path) -> None:
    """Resolve relative file keys against the config file's folder, never the working
    directory: cron runs from elsewhere (issue 12)."""
    for table, key, default in (
        ("notify", "journal", ""),
        ("signatures", "packs_dir", "rule-packs"),
        ("package", "tsa_ca", ""),
    ):
        given = False
        for source in (data, overrides):
            section = source.get(table)
            if isinstance(section, dict) and isinstance(section.get(key), str) and section[key]:
                given = True
                value = Path(section[key]).expanduser()
                if not value.is_absolute():
                    section[key] = str(folder.resolve() / value)
        section = data.get(table, {})
        if default and not given and isinstance(section, dict):
            data[table] = {**section, key: str(folder.resolve() / default)}


def load(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read the TOML file (if any), apply the environment, validate, or raise ConfigError."""
    environ = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("--config", f"no such file: {path}") from None
        except IsADirectoryError:
            raise ConfigError("--config", f"a folder, not a file: {path}") from None
        except OSError as exc:  # unreadable: permissions, a FIFO, an I/O error
            raise ConfigError("--config", f"cannot read {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    overrides, origin = _env_overrides(environ)
    if path is not None:
        _paths_beside(data, overrides, path.parent)
    for table, values in overrides.items():
        if not isinstance(data.get(table, {}), dict):
            raise ConfigError(table, "expected a table")
        data.setdefault(table, {}).update(values)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
        problem = _explain(first)
        if key in origin:
            problem += f" (from {origin[key]})"
        raise ConfigError(key, problem) from None
