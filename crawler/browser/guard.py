"""The browser's request hook: check each sub-request and record what is refused.

scrapy-playwright calls :func:`abort_request` (``PLAYWRIGHT_ABORT_REQUEST``) for
every request a page makes through its route handler. The check here is for the
record: a refused request is aborted and logged against its page with the
reason. Enforcement does not depend on it: every connection Chromium opens goes
through :class:`crawler.browser.proxy.GuardProxy`, which resolves and checks
again and connects to the checked address (so DNS rebinding cannot slip
between this check and the connection).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from tocsin.errors import BlockedAddress, ResolveError

log = logging.getLogger("tocsin.browser.guard")


def recorder_of(request: Any) -> Any:
    """The :class:`~crawler.browser.recorder.Recorder` of the page making ``request``."""
    try:
        page = request.frame.page
    except Exception:  # service-worker requests have no frame
        return None
    return getattr(page, "_tocsin_recorder", None)


async def abort_request(request: Any) -> bool:
    """True (abort) when the request's destination is refused by the guard."""
    recorder = recorder_of(request)
    if recorder is None:
        return False
    parts = urlsplit(request.url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return False  # data:, blob:, about: never leave the browser
    host = parts.hostname or ""
    try:
        await recorder.policy.address_for_async(host)
    except BlockedAddress as exc:
        recorder.note_blocked(request.url, f"{exc.address} is a {exc.reason}", exc.address)
        return True
    except ResolveError:
        return False  # the proxy answers 502; the failure is recorded as such
    return recorder.should_abort(request)
