"""Scrapy settings: the static ones below, and :func:`from_config` for the rest.

This is the one place a tocsin :class:`~tocsin.config.Config` becomes Scrapy
settings. ``crawler.runner`` (the ``tocsin`` commands) calls
:func:`scrapy_settings` with the run's configuration. Under a plain
``scrapy crawl check`` Scrapy reads this module instead; its configuration-derived
names are then computed on first access (PEP 562) from ``$TOCSIN_CONFIG`` or
``./tocsin.toml``, so importing :func:`from_config` never reads a file. Pass
``-s TOCSIN_NOW=2026-01-01T00:00:00Z`` for the ``--now`` clock.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path
from typing import Any

from scrapy.settings import Settings

from tocsin.config import Config

BOT_NAME = "tocsin"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# We visit URLs reported as malicious, one page each; robots.txt does not apply to a
# check an abuse desk will rely on.
ROBOTSTXT_OBEY = False
TELNETCONSOLE_ENABLED = False
COOKIES_ENABLED = True
HTTPERROR_ALLOW_ALL = True  # the spider routes on every status itself
DUPEFILTER_CLASS = "scrapy.dupefilters.BaseDupeFilter"  # every check is asked for on purpose
REDIRECT_ENABLED = False  # redirects are followed by hand, so every hop is recorded and guarded
METAREFRESH_ENABLED = False  # meta refresh is the browser's to see (and to judge)
LOG_LEVEL = "INFO"
# Scrapy would parse each callback's source (per response) to warn about `return x` in
# generators; ours are checked by the tests, and the check costs ~1 ms a response.
WARN_ON_GENERATOR_RETURN_VALUE = False
LOGSTATS_INTERVAL = 60.0
# What one callback yields is handled by this many tasks (Scrapy makes them all for
# every response, even one that yields nothing); ours yield at most three things,
# and Scrapy's default of 100 costs ~2 ms of the reactor per response.
CONCURRENT_ITEMS = 4
REACTOR_THREADPOOL_MAXSIZE = 20  # DNS lookups run in these threads
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
TWISTED_DNS_RESOLVER = "crawler.net.GuardedResolver"

# A name that does not resolve is cached as such by tocsin's resolver, so retrying
# it is pointless; everything else transient is retried (crawl.retries times).
RETRY_EXCEPTIONS = [
    "scrapy.exceptions.DownloadConnectionRefusedError",
    "scrapy.exceptions.DownloadFailedError",
    "scrapy.exceptions.DownloadTimeoutError",
    "scrapy.exceptions.ResponseDataLossError",
    "twisted.internet.error.ConnectionDone",
    "twisted.internet.error.ConnectError",
    "twisted.internet.error.ConnectionLost",
    "scrapy.core.downloader.handlers.http11.TunnelError",
]

# A refused connection (a checked address, nothing listening) is the offline verdict:
# retried this many times only, not crawl.retries (see OfflineAwareRetryMiddleware).
TOCSIN_REFUSED_RETRIES = 1

DOWNLOADER_MIDDLEWARES = {
    # Environment proxies would resolve names where the guard cannot see them.
    "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.OfflineAwareRetryMiddleware": 550,  # stock RetryMiddleware's place
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    # Last before the downloader, after anything that could rewrite the request.
    "crawler.middlewares.SsrfGuardMiddleware": 950,
}

DOWNLOAD_HANDLERS = {
    "http": "crawler.browser.handler.BrowserDownloadHandler",
    "https": "crawler.browser.handler.BrowserDownloadHandler",
}

ITEM_PIPELINES = {
    # Verdict, evidence and store, in the check worker process (see pipelines.worker).
    "pipelines.checks.CheckPipeline": 300,
    "pipelines.enrich.EnrichPipeline": 400,  # the enrich stage's hand-off (enrich.in_crawl)
}

PLAYWRIGHT_BROWSER_TYPE = "chromium"
PLAYWRIGHT_PROCESS_REQUEST_HEADERS = None  # Chromium's own headers: a realistic visit
PLAYWRIGHT_ABORT_REQUEST = "crawler.browser.guard.abort_request"
PLAYWRIGHT_RESTART_DISCONNECTED_BROWSER = True
PLAYWRIGHT_MAX_PAGES_PER_CONTEXT = 4  # the page plus a few popups before they are closed

# The browser's requests share one downloader slot whose size is browser.concurrency,
# so pages waiting for Chromium never hold the triage slots.
BROWSER_SLOT = "tocsin-browser"

# Chromium's own traffic (docs/crawl.md, "Chromium's own traffic"): a crawl must make
# no request its pages did not cause. Only the last --disable-features counts, so the
# list repeats the features Playwright disables for its own correctness.
_PLAYWRIGHT_DISABLED_FEATURES = (
    "AvoidUnnecessaryBeforeUnloadCheckSync,DestroyProfileOnBrowserClose,HttpsUpgrades,"
    "HttpsFirstBalancedModeAutoEnable,LensOverlay,MediaRouter,PaintHolding,"
    "ThirdPartyStoragePartitioning,AvoidCorsURLLoaderRestartOnRedirect,"
    "NetworkTimeServiceQuerying,AimEnabled,PreconnectToSearch"
)
_BACKGROUND_FEATURES = (
    "Translate,OptimizationHints,OptimizationHintsFetching,OptimizationGuideModelDownloading,"
    "OptimizationTargetPrediction,DialMediaRouteProvider,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions,"
    "SafeBrowsingEnhancedProtection,PrivacySandboxSettings4,SodaLanguagePackInstaller"
)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--dns-prefetch-disable",
    # WebRTC would send UDP around the proxy, and so around the guard.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    # navigator.webdriver is false, as in a person's Chrome (docs/crawl.md).
    "--disable-blink-features=AutomationControlled",
    # Background services: updates, Safe Browsing, sign-in, sync, metrics, pings.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-pings",
    "--metrics-recording-only",
    "--disable-breakpad",
    "--disable-domain-reliability",
    "--safebrowsing-disable-auto-update",
    "--disable-client-side-phishing-detection",
    "--disable-component-extensions-with-background-pages",
    "--disable-default-apps",
    "--disable-field-trial-config",
    "--password-store=basic",
    "--use-mock-keychain",
    "--no-service-autorun",
    "--disable-features=" + _PLAYWRIGHT_DISABLED_FEATURES + "," + _BACKGROUND_FEATURES,
]

_CHROMIUM_CANDIDATES = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
    "/snap/bin/chromium",
)


def chromium_path(configured: str) -> str | None:
    """``browser.executable_path``, else a system Chromium, else None (Playwright's own)."""
    if configured:
        return configured
    for candidate in _CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def from_config(config: Config) -> dict[str, Any]:
    """The settings that depend on the tocsin configuration."""
    crawl, browser = config.crawl, config.browser
    launch: dict[str, Any] = {
        "headless": browser.headless,
        "args": [*CHROMIUM_FLAGS, *browser.args],
        "timeout": 60_000,
    }
    executable = chromium_path(browser.executable_path)
    if executable:
        launch["executable_path"] = executable
    extra: dict[str, Any] = {}
    if not browser.enabled:  # no Playwright at all: Scrapy's own HTTP handler
        http11 = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
        extra["DOWNLOAD_HANDLERS"] = {"http": http11, "https": http11}
    return extra | {
        "TOCSIN_CONFIG": config,
        "USER_AGENT": crawl.user_agent,
        "CONCURRENT_REQUESTS": crawl.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.per_domain,
        "DOWNLOAD_TIMEOUT": crawl.download_timeout.total_seconds(),
        "DOWNLOAD_MAXSIZE": crawl.max_body,
        "DOWNLOAD_WARNSIZE": 0,
        "RETRY_TIMES": crawl.retries,
        "DNS_TIMEOUT": config.network.dns_timeout.total_seconds(),
        "DOWNLOAD_SLOTS": {
            BROWSER_SLOT: {"concurrency": browser.concurrency, "delay": 0, "jitter": 0}
        },
        "PLAYWRIGHT_LAUNCH_OPTIONS": launch,
        "PLAYWRIGHT_MAX_CONTEXTS": browser.concurrency,
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": browser.navigation_timeout.total_seconds() * 1000,
        "PLAYWRIGHT_DOWNLOAD_TIMEOUT": int(browser.navigation_timeout.total_seconds() * 1000),
    }


def static_settings() -> dict[str, Any]:
    """This module's own upper-case settings (not the configuration-derived ones)."""
    return {k: v for k, v in globals().items() if k.isupper() and not k.startswith("_")}


def scrapy_settings(config: Config, **extra: Any) -> Settings:
    """Complete Scrapy settings for a run with ``config``; ``extra`` wins."""
    settings = Settings()
    settings.setdict(static_settings(), priority="project")
    settings.setdict(from_config(config), priority="project")
    settings.setdict(extra, priority="cmdline")
    return settings


@cache
def _from_default_config() -> dict[str, Any]:
    from tocsin.config import load, resolve_path

    return from_config(load(resolve_path(None)))


def __getattr__(name: str) -> Any:
    # Only reached under `scrapy crawl`, when Scrapy reads this module's settings.
    if not name.isupper():
        raise AttributeError(name)
    derived = _from_default_config()
    if name in derived:
        return derived[name]
    raise AttributeError(name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_from_default_config()))
