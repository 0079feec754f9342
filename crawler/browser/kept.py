"""One Chromium for a worker's life, lent to each crawl (``TOCSIN_KEEP_BROWSER``).

scrapy-playwright ties Playwright and the browser to one crawler's download
handler: it starts them with the crawl and closes them at its end. A
``tocsin worker`` runs one crawl per batch, so it would launch Chromium (and
its guard proxy) for every batch. With ``TOCSIN_KEEP_BROWSER`` the handler's
provider is a :class:`Borrowed` one instead: Playwright, the guard proxy and
Chromium are started by the first crawl and kept here, and a crawl's end closes
only its own contexts (no cookie or page of one batch is seen by the next).
:func:`shutdown` ends them when the worker exits.

A Chromium that crashed or was closed (the handler's restart of a hung browser)
is disconnected: the next page launches a fresh one. Everything here runs on
the reactor's event loop (``crawler.runner``), one crawl after another; the
guard proxy's policy comes from the configuration, the same for the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("tocsin.browser")


class _Kept:
    """The process's Playwright provider and browser, and how many crawls borrow them."""

    def __init__(self) -> None:
        self.provider: Any = None
        self.browser: Any = None
        self.borrowers = 0
        # A crawl's two handlers (http, https) start at once: one provider, one browser.
        self.lock = asyncio.Lock()

    def connected(self) -> bool:
        return self.browser is not None and self.browser.is_connected()

    async def drop_provider(self) -> None:
        provider, self.provider, self.browser = self.provider, None, None
        if provider is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(provider.close(), 30)

    async def close(self) -> None:
        if self.connected():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.browser.close(), 30)
        await self.drop_provider()


KEPT = _Kept()


class Borrowed:
    """The provider a keeping handler gets: the process's, started once, never closed by a crawl.

    ``make(config)`` builds the real provider (with its guard proxy) the first time.
    """

    def __init__(self, config: Any, make: Callable[[Any], Any]) -> None:
        self.config = config
        self._make = make
        self._open = False

    @property
    def playwright(self) -> Any:
        return getattr(KEPT.provider, "playwright", None)

    async def _provider(self) -> Any:
        """The process's provider, started on first use (call with ``KEPT.lock`` held)."""
        if KEPT.provider is None:
            provider = self._make(self.config)
            await provider.start()
            KEPT.provider = provider
        return KEPT.provider

    async def start(self) -> None:
        async with KEPT.lock:
            await self._provider()
            KEPT.borrowers += 1
            self._open = True

    async def launch_browser(self) -> Any:
        async with KEPT.lock:
            if KEPT.connected():
                return KEPT.browser
            provider = await self._provider()
            try:
                KEPT.browser = await provider.launch_browser()
            except Exception:  # Playwright's driver itself died: start it again, once
                log.warning("cannot launch Chromium; restarting Playwright", exc_info=True)
                await KEPT.drop_provider()
                KEPT.browser = await (await self._provider()).launch_browser()
            return KEPT.browser

    async def launch_persistent_context(self, context_kwargs: dict) -> Any:
        async with KEPT.lock:
            provider = await self._provider()
        return await provider.launch_persistent_context(context_kwargs)

    async def close(self) -> None:
        """The crawl is over: close what it may have left open, keep the browser."""
        if not self._open:
            return
        self._open = False
        KEPT.borrowers -= 1
        if KEPT.borrowers or not KEPT.connected():
            return
        for context in list(KEPT.browser.contexts):  # none should be left: a leak would grow
            with contextlib.suppress(Exception):
                await asyncio.wait_for(context.close(), 10)


def shutdown(timeout: float = 60.0) -> None:
    """Close the kept Chromium, its guard proxy and Playwright (the worker is exiting)."""
    if KEPT.provider is None:  # no crawl kept a browser: nothing, and no reactor, to start
        return
    from crawler.runner import on_reactor

    try:
        on_reactor(KEPT.close(), timeout)
    except Exception:  # the process is ending: Playwright's driver takes Chromium with it
        log.warning("cannot close the kept browser", exc_info=True)
