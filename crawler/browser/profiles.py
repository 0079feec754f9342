"""Who the browser pretends to be: a person's desktop or phone, from a search page or not.

Injected loaders stay quiet for automated browsers (``navigator.webdriver``,
"HeadlessChrome" in the user agent, no plugins, a single language, a window with
no outer frame) and some redirects fire only for phones or only for visitors who
come from a search engine. A visit therefore runs under a :class:`Condition`: a
:class:`Profile` (``desktop`` or ``mobile``) and an optional search-engine
referer. The plan (:func:`condition_plan`) starts with desktop and no referer;
the spider tries the others only while the page is not already malicious and
the per-URL budget lasts.

The user agent is that of a current stable Chrome whose major version is the
running Chromium's own (a page that tests features against the claimed version
sees no mismatch), in Chrome's reduced form (``Chrome/156.0.0.0``). The phone
takes its screen, viewport, pixel ratio and touch from Playwright's device
descriptor (``browser.mobile_device``), with the same Chrome version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tocsin.config import Config

# When the browser has not said its version yet (it always does once launched).
FALLBACK_CHROME_MAJOR = 156

_DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36"
)
# Chrome on Android sends this reduced form whatever the phone ("Android 10; K").
_MOBILE_UA = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/{major}.0.0.0 Mobile Safari/537.36"
)
# The keys of a Playwright device descriptor a context takes (the user agent is ours).
_DEVICE_KEYS = ("viewport", "screen", "device_scale_factor", "is_mobile", "has_touch")


@dataclass(frozen=True)
class Condition:
    """One way to visit a page: which profile, and which referer (None: typed in)."""

    profile: str  # desktop | mobile
    referer: str | None = None

    @property
    def label(self) -> str:
        return f"{self.profile}, " + (f"referer {self.referer}" if self.referer else "no referer")

    def as_record(self, device: str | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {"profile": self.profile, "referer": self.referer}
        if self.profile == "mobile" and device:
            record["device"] = device
        return record


BASELINE = Condition("desktop")


def condition_plan(config: Config) -> list[Condition]:
    """The conditions to try, first the baseline, at most ``browser.max_visits`` of them."""
    browser = config.browser
    if not browser.condition_visits:
        return [BASELINE]
    referer = browser.search_referer or None
    plan = [BASELINE, Condition("mobile")]
    if referer:
        plan += [Condition("desktop", referer), Condition("mobile", referer)]
    return plan[: max(1, browser.max_visits)]


def chrome_major(version: str | None) -> int:
    """The major version in a browser version string such as ``156.0.8078.129``."""
    found = re.match(r"\s*(\d+)\.", version or "")
    return int(found.group(1)) if found else FALLBACK_CHROME_MAJOR


def user_agent(profile: str, major: int) -> str:
    return (_MOBILE_UA if profile == "mobile" else _DESKTOP_UA).format(major=major)


def context_options(
    profile: str, config: Config, browser_version: str | None, devices: dict[str, Any]
) -> dict[str, Any]:
    """Playwright ``new_context`` options for ``profile`` (viewport, touch, user agent)."""
    browser = config.browser
    major = chrome_major(browser_version)
    if profile == "mobile":
        descriptor = devices.get(browser.mobile_device) or {}
        options = {key: descriptor[key] for key in _DEVICE_KEYS if key in descriptor}
        options.setdefault("viewport", {"width": 412, "height": 839})
        options.setdefault("is_mobile", True)
        options.setdefault("has_touch", True)
        options["user_agent"] = browser.mobile_user_agent or user_agent("mobile", major)
        return options
    return {
        "viewport": {"width": browser.viewport_width, "height": browser.viewport_height},
        "screen": {"width": browser.screen_width, "height": browser.screen_height},
        "user_agent": browser.user_agent or user_agent("desktop", major),
    }


def ua_override(
    profile: str, options: dict[str, Any], browser_version: str | None, config: Config
) -> dict[str, Any]:
    """DevTools ``Emulation.setUserAgentOverride`` parameters matching the user agent.

    Playwright sets the user agent string only; this also sets ``navigator.platform``,
    ``navigator.languages`` and ``navigator.userAgentData`` (and the Sec-CH-UA headers)
    to what the claimed Chrome on the claimed system reports.
    """
    major = str(chrome_major(browser_version))
    full = (browser_version or f"{major}.0.0.0").strip()
    mobile = profile == "mobile"
    brands = [("Google Chrome", major), ("Chromium", major), ("Not_A Brand", "24")]
    locale = config.browser.locale
    language = locale.split("-")[0]
    accept = locale if language == locale else f"{locale},{language}"
    return {
        "userAgent": options["user_agent"],
        "acceptLanguage": accept,
        "platform": "Linux armv81" if mobile else "Win32",
        "userAgentMetadata": {
            "brands": [{"brand": b, "version": v} for b, v in brands],
            "fullVersionList": [
                {"brand": b, "version": full if v == major else f"{v}.0.0.0"} for b, v in brands
            ],
            "fullVersion": full,
            "platform": "Android" if mobile else "Windows",
            "platformVersion": "14.0.0" if mobile else "15.0.0",
            "architecture": "" if mobile else "x86",
            "model": config.browser.mobile_device if mobile else "",
            "mobile": mobile,
            "bitness": "" if mobile else "64",
            "wow64": False,
        },
    }
