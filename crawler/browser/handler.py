"""The download handler: scrapy-playwright, with Chromium behind the guard proxy.

Plain requests go to Scrapy's HTTP/1.1 handler as usual. Browser requests
(``meta["playwright"]``) go to scrapy-playwright, with three changes:

- the browser is launched with :class:`~crawler.browser.proxy.GuardProxy` as its
  proxy (started with the handler, closed with it);
- a page load has a hard time limit (``browser.page_timeout``): a renderer stuck
  in an infinite loop never answers Playwright, so the wait is cut, the page and
  then its context are closed, and if even that hangs the browser is closed
  (scrapy-playwright launches a fresh one for the next page);
- a failure carries the page's recorder, so the spider can say why;
- with the ``TOCSIN_KEEP_BROWSER`` setting (``tocsin worker``), Chromium and its
  guard proxy outlive the crawl (:mod:`crawler.browser.kept`): the crawl's end
  closes its contexts only;
- a context asked for with ``tocsin_profile`` (``desktop`` or ``mobile``) gets
  that profile's viewport, screen, touch and user agent (from Playwright's device
  descriptor and the running Chromium's version, see
  :mod:`crawler.browser.profiles`); the recorder finishes the disguise per page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial
from typing import Any

from scrapy import Request
from scrapy.http import Response
from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler
from scrapy_playwright.provider import PlaywrightBrowserProvider

from crawler.browser import profiles
from crawler.browser.kept import Borrowed
from crawler.browser.proxy import GuardProxy
from crawler.net import NetPolicy
from tocsin.config import Config

log = logging.getLogger("tocsin.browser")


class PageTimeout(Exception):
    """The page did not finish within browser.page_timeout."""


class GuardedBrowserProvider(PlaywrightBrowserProvider):
    """Playwright's provider, launching Chromium with the guard proxy for all traffic."""

    def __init__(self, config: Any, proxy: GuardProxy) -> None:
        super().__init__(config)
        self.proxy = proxy

    async def start(self) -> None:
        await self.proxy.start()
        await super().start()

    async def launch_browser(self) -> Any:
        if self.browser_type is None:
            raise RuntimeError("start() must be awaited before launch_browser()")
        options = dict(self.config.launch_options)
        # Playwright adds --proxy-bypass-list=<-loopback>: loopback is proxied (and guarded).
        options["proxy"] = {"server": self.proxy.url}
        log.debug("launching Chromium %s", options.get("executable_path", "(Playwright's)"))
        return await self.browser_type.launch(**options)

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            await self.proxy.close()


async def close_quietly(page: Any, wait: float = 5.0) -> bool:
    """Close a page, then its context (in that order: the scrapy-playwright leak).

    Returns False when Chromium did not answer in time.
    """
    ok = True
    context = None
    with contextlib.suppress(Exception):
        context = page.context
    try:
        if not page.is_closed():
            await asyncio.wait_for(page.close(run_before_unload=False), wait)
    except Exception:
        ok = False
    if context is not None:
        try:
            await asyncio.wait_for(context.close(), wait)
        except Exception:
            ok = False
    return ok


class BrowserDownloadHandler(ScrapyPlaywrightDownloadHandler):
    """scrapy-playwright behind the guard proxy, with a hard limit per page."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        config = crawler.settings.get("TOCSIN_CONFIG")
        if not isinstance(config, Config):
            config = Config()
        browser = config.browser
        self.tocsin_config = config
        self.page_timeout = browser.page_timeout.total_seconds()
        self.proxy = GuardProxy(
            NetPolicy.for_config(config.network),
            max_bytes=max(browser.max_download, config.crawl.max_body) + 1024**2,
            idle_timeout=browser.navigation_timeout.total_seconds(),
            log_path=browser.proxy_log or None,
        )
        provider = partial(GuardedBrowserProvider, proxy=self.proxy)
        self.keep = crawler.settings.getbool("TOCSIN_KEEP_BROWSER")
        self.browser_provider_cls = partial(Borrowed, make=provider) if self.keep else provider

    async def _close(self) -> None:
        if not self.keep:
            return await super()._close()
        # The kept browser stays; this crawl's contexts go (nothing carries to the next).
        wrappers = list(self.context_wrappers.values())
        self.context_wrappers.clear()
        for wrapper in wrappers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(wrapper.context.close(), 10)
        if hasattr(self, "browser"):
            self.browser.remove_listener("disconnected", self._browser_disconnected_callback)
            del self.browser
        if getattr(self, "browser_provider", None):
            await self.browser_provider.close()

    async def _create_browser_context(
        self, name: str, context_kwargs: dict | None, spider: Any = None
    ) -> Any:
        kwargs = dict(context_kwargs or {})
        profile = kwargs.pop("tocsin_profile", None)
        if profile is None:
            return await super()._create_browser_context(name, kwargs, spider)
        await self._maybe_launch_browser()
        version = self.browser.version
        playwright = getattr(self.browser_provider, "playwright", None)
        devices = dict(playwright.devices) if playwright is not None else {}
        options = profiles.context_options(profile, self.tocsin_config, version, devices)
        wrapper = await super()._create_browser_context(name, {**kwargs, **options}, spider)
        wrapper.context._tocsin_profile = (
            profile,
            profiles.ua_override(profile, options, version, self.tocsin_config),
        )
        return wrapper

    async def _download_request_with_page(
        self, request: Request, page: Any, spider: Any
    ) -> Response:
        # The clock starts once the page exists: waiting for a free context is not the
        # page's fault. The spider bounds the rest of the visit from the same start.
        request.meta["tocsin_started"] = time.monotonic()
        deadline = request.meta.get("tocsin_deadline", self.page_timeout)
        try:
            return await asyncio.wait_for(
                super()._download_request_with_page(request, page, spider), deadline
            )
        except TimeoutError:
            request.meta.setdefault("playwright_page", page)
            await self._abandon(request)
            raise PageTimeout(f"the page did not load within {deadline:.0f}s") from None

    async def _abandon(self, request: Request) -> None:
        """Close whatever the timed-out request left open; restart Chromium if it hangs."""
        page = request.meta.get("playwright_page")
        name = request.meta.get("playwright_context")
        ok = True
        if page is not None:
            ok = await close_quietly(page)
        elif name in self.context_wrappers:
            try:
                await asyncio.wait_for(self.context_wrappers[name].context.close(), 5)
            except Exception:
                ok = False
        if not ok and hasattr(self, "browser"):
            log.warning("Chromium did not close a stuck page; restarting it")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.browser.close(), 10)
