"""What a page did in the browser, recorded for the rules and for the evidence.

A :class:`Recorder` is attached to the page before navigation (scrapy-playwright's
``playwright_page_init_callback``) and records, bounded in count and size:

- every request and response: URL, method, status, resource type, frame,
  initiator (from the DevTools protocol: the parser, or which script at which
  line), post data, and whether the guard refused it;
- the main frame's navigations with their cause (HTTP redirect, script,
  meta refresh), popups, downloads (bytes to ``browser.max_download``),
  WebSockets (first frames), WebRTC data-channel sends, workers, console errors, dialogs;
- bodies of documents and scripts (for the YARA rules).

After the page has loaded, :meth:`Recorder.finish` lets it settle, fills payment
and login fields with test data (what makes a skimmer act), advances the page's
clock (``page.clock``) to fire delayed payloads, then reads the frames (hidden
ones included), forms, full-screen overlays and script listeners, the final DOM
and a screenshot. Every step has a time limit; the spider bounds the whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from crawler.browser import exfil
from crawler.items import Blob
from crawler.net import RECENT_BLOCKS, NetPolicy
from crawler.triage import sniff
from tocsin.config import Config
from tocsin.urls import host_of

log = logging.getLogger("tocsin.browser")

INSTRUMENT_JS = (Path(__file__).with_name("instrument.js")).read_text(encoding="utf-8")
# The page's reads of what a visit condition changes are noted under this name (random
# per process, so a page cannot look for it by name).
PROBE_KEY = "_" + secrets.token_hex(6)
PERSON_JS = (
    (Path(__file__).with_name("person.js"))
    .read_text(encoding="utf-8")
    .replace("__TOCSIN_PROBE__", PROBE_KEY)
)
# Code a probe cannot see: `'ontouchstart' in window` reads no property.
_CONDITION_TEXT = re.compile(rb"ontouchstart|TouchEvent|DocumentTouch|orientationchange")


def _snippets() -> dict[str, str]:
    text = Path(__file__).with_name("snippets.js").read_text(encoding="utf-8")
    found = re.split(r"^// ==== (\w+)\n", text, flags=re.M)
    return {found[i]: found[i + 1].strip() for i in range(1, len(found) - 1, 2)}


_JS = _snippets()
_FIND_FIELDS_JS = _JS["find_fields"]
_NO_NAVIGATE_JS = _JS["no_navigate"]
_FRAMES_JS = _JS["frames"]
_PAGE_JS = _JS["page"]

TEST_CARD = {
    "number": "4111111111111111",
    "cvv": "737",
    "exp": "12/29",
    "month": "12",
    "year": "2029",
    "name": "Tess Tocsin",
    "email": "tess.tocsin@example.org",
    "password": "Tocsin-Test-Pw-4827",
    "user": "tess.tocsin",
}
# Strings whose presence in a request shows the test data left the page.
MARKERS = ("4111111111111111", "4111 1111 1111 1111", "Tocsin-Test-Pw-4827", "tess.tocsin")

_SCAN_TYPES = ("document", "script")


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit] + "…"


def _initiator(params: dict[str, Any]) -> dict[str, Any]:
    """Who caused a request, from a DevTools ``Network.requestWillBeSent``."""
    initiator = params.get("initiator") or {}
    kind = initiator.get("type", "other")
    result: dict[str, Any] = {"type": kind}
    if kind == "parser":
        result["url"] = initiator.get("url")
        if initiator.get("lineNumber") is not None:
            result["line"] = initiator["lineNumber"] + 1
        return result
    stack = initiator.get("stack")
    while stack:
        for frame in stack.get("callFrames", []):
            if frame.get("url", "").startswith(("http://", "https://")):
                result["url"] = frame["url"]
                result["line"] = frame.get("lineNumber", 0) + 1
                result["function"] = frame.get("functionName") or None
                return result
        stack = stack.get("parent")
    if initiator.get("url"):
        result["url"] = initiator["url"]
    return result


class Recorder:
    """Records one page visit; see the module docstring."""

    def __init__(self, config: Config, url: str, started: datetime) -> None:
        self.config = config
        self.browser = config.browser
        self.policy = NetPolicy.for_config(config.network)
        self.url = url
        self.started = started
        self.t0 = time.monotonic()
        self.phase = "load"
        self.page: Any = None
        self.requests: list[dict[str, Any]] = []
        self._by_request: dict[int, dict[str, Any]] = {}
        self.initiators: dict[str, dict[str, Any]] = {}
        self.documents: dict[str, str] = {}  # CDP request url -> documentURL
        self.nav_reasons: dict[str, str] = {}
        self.navigations: list[dict[str, Any]] = []
        self.popups: list[dict[str, Any]] = []
        self.popup_count = 0
        self.downloads: list[dict[str, Any]] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.dialogs: list[dict[str, str]] = []
        self.dialog_count = 0
        self.websockets: list[dict[str, Any]] = []
        self.datachannels: list[dict[str, Any]] = []
        self.workers: list[str] = []
        self.blocked: list[dict[str, str]] = []
        self.bodies: dict[str, bytes] = {}
        self.body_types: dict[str, str] = {}
        self._body_total = 0
        self.main_document: bytes | None = None
        self.main_status: int | None = None
        self.frames: list[dict[str, Any]] = []
        self.page_info: dict[str, Any] = {}
        self.interaction: dict[str, Any] = {}
        self.clock_ms = 0
        self.probes: set[str] = set()
        self.dom: str | None = None
        self.screenshot: bytes | None = None
        self.crashed = False
        self.final_url: str | None = None
        self.steps: list[str] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._inflight = 0
        self._last_activity = time.monotonic()
        self._main_frame_id: str | None = None

    # ------------------------------------------------------------------ attach

    def _step(self, name: str) -> None:
        self.steps.append(f"{name}@{self._ms()}ms")

    def _ms(self) -> int:
        return int((time.monotonic() - self.t0) * 1000)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def attach(self, page: Any, request: Any = None) -> None:
        """The page init callback: instrument the page before it navigates."""
        self.page = page
        self.t0 = time.monotonic()
        page._tocsin_recorder = self
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_failed)
        page.on("requestfinished", self._on_finished)
        page.on("framenavigated", self._on_navigated)
        page.on("popup", self._on_popup)
        page.on("download", self._on_download)
        page.on("dialog", self._on_dialog)
        page.on("console", self._on_console)
        page.on("pageerror", self._on_pageerror)
        page.on("websocket", self._on_websocket)
        page.on("worker", lambda w: self.workers.append(_clip(w.url, 500) or ""))
        page.on("crash", self._on_crash)
        profile = getattr(page.context, "_tocsin_profile", None)
        if profile is not None:
            await page.add_init_script(PERSON_JS)
        await page.add_init_script(INSTRUMENT_JS)
        with contextlib.suppress(Exception):
            await page.clock.install()
        try:
            cdp = await page.context.new_cdp_session(page)
            if profile is not None:  # platform, languages, userAgentData: see profiles.py
                await cdp.send("Emulation.setUserAgentOverride", profile[1])
            tree = await cdp.send("Page.getFrameTree")
            self._main_frame_id = tree["frameTree"]["frame"]["id"]
            cdp.on("Network.requestWillBeSent", self._on_cdp_request)
            cdp.on("Page.frameRequestedNavigation", self._on_cdp_navigation)
            await cdp.send(
                "Network.enable", {"maxTotalBufferSize": 1024, "maxResourceBufferSize": 1024}
            )
            await cdp.send("Page.enable")
        except Exception as exc:  # the record is poorer without initiators, not wrong
            log.debug("no DevTools session: %s", exc)

    # ------------------------------------------------------------------ events

    def _on_cdp_request(self, params: dict[str, Any]) -> None:
        url = params.get("request", {}).get("url", "")
        if (
            url
            and url not in self.initiators
            and len(self.initiators) < 4 * self.browser.max_requests
        ):
            self.initiators[url] = _initiator(params)
            self.documents[url] = params.get("documentURL", "")

    def _on_cdp_navigation(self, params: dict[str, Any]) -> None:
        if params.get("frameId") == self._main_frame_id and params.get("url"):
            self.nav_reasons.setdefault(params["url"], params.get("reason", ""))

    def _on_request(self, request: Any) -> None:
        self._inflight += 1
        self._last_activity = time.monotonic()
        if len(self.requests) >= self.browser.max_requests:
            return
        try:
            frame = request.frame
            frame_url = frame.url
            main = frame == self.page.main_frame
        except Exception:
            frame_url, main = "", False
        post = None
        with contextlib.suppress(Exception):
            buffer = request.post_data_buffer
            if buffer:
                post = buffer[:4096].decode("utf-8", "replace")
        record = {
            "url": _clip(request.url, 2000),
            "method": request.method,
            "type": request.resource_type,
            "frame": _clip(frame_url, 500),
            "main_frame": main,
            "navigation": request.is_navigation_request(),
            "post_data": post,
            "phase": self.phase,
            "at": self._ms(),
        }
        redirected = request.redirected_from
        if redirected is not None:
            record["redirected_from"] = _clip(redirected.url, 2000)
        self.requests.append(record)
        self._by_request[id(request)] = record

    def _on_response(self, response: Any) -> None:
        self._last_activity = time.monotonic()
        request = response.request
        record = self._by_request.get(id(request))
        if record is not None:
            record["status"] = response.status
            headers = response.headers
            record["mime"] = (headers.get("content-type") or "").split(";")[0][:100] or None
            if headers.get("x-tocsin-guard") == "403":
                self._guard_refused(record)
        if request.resource_type in _SCAN_TYPES and 200 <= response.status < 300:
            self._spawn(self._keep_body(response))

    def _on_finished(self, request: Any) -> None:
        self._inflight = max(0, self._inflight - 1)
        self._last_activity = time.monotonic()

    def _on_failed(self, request: Any) -> None:
        self._inflight = max(0, self._inflight - 1)
        self._last_activity = time.monotonic()
        record = self._by_request.get(id(request))
        failure = ""
        with contextlib.suppress(Exception):
            failure = request.failure or ""
        if record is not None:
            record["failure"] = failure[:200]
            if "TUNNEL_CONNECTION_FAILED" in failure or "ERR_BLOCKED_BY_CLIENT" in failure:
                self._guard_refused(record)

    def _guard_refused(self, record: dict[str, Any]) -> None:
        if record.get("blocked"):
            return
        block = RECENT_BLOCKS.get(host_of(record["url"] or ""))
        reason = f"{block.address} is a {block.reason}" if block else "refused by the guard"
        record["blocked"] = reason
        self.blocked.append({"url": record["url"], "reason": reason})

    def note_blocked(self, url: str, reason: str, address: str | None = None) -> None:
        """The route hook refused a request (called before the request event fires)."""
        for record in reversed(self.requests[-50:]):
            if record["url"] == url and not record.get("blocked"):
                record["blocked"] = reason
                break
        if len(self.blocked) < 200:
            self.blocked.append({"url": _clip(url, 2000) or "", "reason": reason})

    def should_abort(self, request: Any) -> bool:
        """Beyond the hostile bounds, stop feeding the page."""
        return self.popup_count > self.browser.max_popups * 3

    async def _keep_body(self, response: Any) -> None:
        url = response.url
        try:
            length = int(response.headers.get("content-length") or 0)
        except ValueError:
            length = 0
        cap = self.browser.max_scan_body
        if length > cap * 4 or self._body_total >= self.browser.max_scan_total:
            return
        try:
            body = await response.body()
        except Exception:
            return
        is_main = (
            response.request.is_navigation_request() and response.frame == self.page.main_frame
        )
        if is_main and self.main_document is None:
            self.main_document = body[: self.browser.max_scan_body]
            self.main_status = response.status
        body = body[:cap]
        if url not in self.bodies and self._body_total + len(body) <= self.browser.max_scan_total:
            self.bodies[url] = body
            self.body_types[url] = response.request.resource_type
            self._body_total += len(body)

    def _on_navigated(self, frame: Any) -> None:
        with contextlib.suppress(Exception):
            if frame == self.page.main_frame and len(self.navigations) < 50:
                self.navigations.append({"url": _clip(frame.url, 2000), "at": self._ms()})

    def _on_popup(self, popup: Any) -> None:
        self.popup_count += 1
        if len(self.popups) < 50:
            self.popups.append({"url": _clip(popup.url, 2000), "at": self._ms()})
        self._spawn(self._close_popup(popup))

    async def _close_popup(self, popup: Any) -> None:
        with contextlib.suppress(Exception):
            await asyncio.sleep(0.2)  # let its first navigation show
            if self.popups and self.popups[-1]["url"] in ("about:blank", "", None):
                self.popups[-1]["url"] = _clip(popup.url, 2000)
            await asyncio.wait_for(popup.close(run_before_unload=False), 5)

    def _on_dialog(self, dialog: Any) -> None:
        self.dialog_count += 1
        if len(self.dialogs) < 20:
            self.dialogs.append({"type": dialog.type, "message": (dialog.message or "")[:300]})
        if self.dialog_count <= self.browser.max_dialogs:
            self._spawn(dialog.dismiss())
        # Past the bound the dialog stays open: the page's script stops there.

    def _on_console(self, message: Any) -> None:
        with contextlib.suppress(Exception):
            if message.type == "error" and len(self.console_errors) < 50:
                self.console_errors.append(message.text[:500])

    def _on_pageerror(self, error: Any) -> None:
        if len(self.page_errors) < 50:
            self.page_errors.append(str(error)[:500])

    def _on_crash(self, page: Any) -> None:
        self.crashed = True

    def _on_websocket(self, ws: Any) -> None:
        if len(self.websockets) >= 20:
            return
        record: dict[str, Any] = {
            "url": _clip(ws.url, 2000),
            "sent": [],
            "received": [],
            "sent_phases": [],
        }
        self.websockets.append(record)

        def keep(key: str) -> Any:
            def _frame(payload: Any) -> None:
                if len(record[key]) < 10:
                    if isinstance(payload, bytes):
                        payload = payload[:500].decode("utf-8", "replace")
                    record[key].append(str(payload)[:500])
                    if key == "sent":  # when: before or after the test data was typed
                        record["sent_phases"].append(self.phase)

            return _frame

        ws.on("framesent", keep("sent"))
        ws.on("framereceived", keep("received"))

    def _on_download(self, download: Any) -> None:
        record: dict[str, Any] = {
            "url": _clip(download.url, 2000),
            "filename": (download.suggested_filename or "")[:200],
            "phase": self.phase,
            "at": self._ms(),
        }
        if len(self.downloads) < 10:
            self.downloads.append(record)
            self._spawn(self._keep_download(download, record))

    async def _keep_download(self, download: Any, record: dict[str, Any]) -> None:
        cap = self.browser.max_download
        try:
            failure = await asyncio.wait_for(download.failure(), 60)
            if failure:
                record["failure"] = failure[:200]
                return
            path = await download.path()
            data = await asyncio.to_thread(_read_head, path, cap + 1)
        except Exception as exc:
            record["failure"] = str(exc)[:200]
            return
        record["truncated"] = len(data) > cap
        data = data[:cap]
        found = sniff(data, None, record["url"] or "", record["filename"])
        record.update(
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            type=found.kind,
            category=found.category,
            label=found.label,
            risky=found.risky,
            details=found.details[:10],
            data=data,
        )

    # ------------------------------------------------------------------ finish

    async def _settle(self, quiet: float, longest: float) -> None:
        """Wait until the network has been quiet for ``quiet`` seconds (or ``longest``)."""
        end = time.monotonic() + longest
        await asyncio.sleep(min(0.1, quiet))
        while time.monotonic() < end:
            if self._inflight <= 0 and time.monotonic() - self._last_activity >= quiet:
                return
            await asyncio.sleep(0.05)

    async def _eval(self, target: Any, script: str, arg: Any = None, limit: float = 5.0) -> Any:
        return await asyncio.wait_for(target.evaluate(script, arg), limit)

    async def finish(self, page: Any) -> None:
        """Settle, interact, advance the clock, then read the page; see the module docstring."""
        self.page = page
        settle = self.browser.settle_time.total_seconds()
        with contextlib.suppress(Exception):
            await page.wait_for_load_state(
                "load", timeout=min(self.browser.navigation_timeout.total_seconds(), 10) * 1000
            )
        self._step("loaded")
        await self._settle(settle * 0.5, settle * 3)
        if self.hostile_reason():
            return
        if self.browser.interact:
            await self._interact(page)
            await self._settle(settle * 0.5, settle * 2)
        if self.hostile_reason():
            return
        await self._advance_clock(page, settle)
        await self._read_probes(page)
        await self._collect(page)

    async def _read_probes(self, page: Any) -> None:
        """What the page read that a visit condition changes (before our own reads)."""
        script = f"() => Object.keys(window['{PROBE_KEY}'] || {{}})"
        for frame in page.frames[:10]:
            with contextlib.suppress(Exception):
                self.probes.update(
                    str(name)[:40] for name in await self._eval(frame, script, None, 2)
                )
        for body in [self.main_document or b"", *self.bodies.values()]:
            if _CONDITION_TEXT.search(body):
                self.probes.add("touch events")
                break

    async def _interact(self, page: Any) -> None:
        try:
            fields = await self._eval(page, _FIND_FIELDS_JS, 12)
        except Exception:
            return
        inputs = [f for f in fields if f["kind"] != "button"]
        if not inputs:
            return
        self.phase = "interaction"
        self._step("interaction")
        filled = []
        values = {
            "card": TEST_CARD["number"],
            "cvv": TEST_CARD["cvv"],
            "exp": TEST_CARD["exp"],
            "name": TEST_CARD["name"],
            "user": TEST_CARD["user"],
            "password": TEST_CARD["password"],
        }
        with contextlib.suppress(Exception):
            await self._eval(page, _NO_NAVIGATE_JS)
        for field in inputs:
            locator = page.locator(f'[data-tocsin-field="{field["index"]}"]')
            try:
                if field["tag"] == "select":
                    continue
                await locator.fill(values[field["kind"]], timeout=1500)
                await locator.press("Tab", timeout=1500)
                filled.append(f"{field['kind']}:{field['name'][:40]}")
            except Exception as exc:
                log.debug("could not fill %s: %s", field, exc)
        clicked = []
        has_card = any(f["kind"] in ("card", "cvv") for f in inputs)
        for button in [f for f in fields if f["kind"] == "button"][:1]:
            if not has_card:
                break  # a login form is filled, never submitted
            try:
                await page.locator(f'[data-tocsin-button="{button["index"]}"]').click(
                    timeout=1500, no_wait_after=True
                )
                clicked.append(button["name"][:60])
            except Exception as exc:
                log.debug("could not click %s: %s", button, exc)
        self.interaction = {"filled": filled, "clicked": clicked, "at": self._ms()}

    async def _advance_clock(self, page: Any, settle: float) -> None:
        total = int(self.browser.clock_advance.total_seconds() * 1000)
        if total <= 0:
            return
        self.phase = "clock"
        # A second jump only when the first set something off: a timer set by a timer
        # (a loader that waits, then waits again) fires too.
        for step in range(2):
            before = len(self.requests)
            try:
                await asyncio.wait_for(page.clock.fast_forward(total), 5)
            except Exception:
                return
            self.clock_ms += total
            await self._settle(settle * 0.3, settle * 2)
            if step == 0 and len(self.requests) == before:
                break
        self._step(f"clock+{self.clock_ms // 1000}s")

    async def _collect(self, page: Any) -> None:
        limits = {"elements": 6000, "text": 20000}
        self.phase = "collect"
        with contextlib.suppress(Exception):
            self.page_info = await self._eval(page, _PAGE_JS, limits, 8)
        for frame in page.frames[:20]:
            try:
                found = await self._eval(frame, _FRAMES_JS, 50, 3)
            except Exception as exc:
                log.debug("frame %s not readable: %s", frame.url, exc)
                continue
            for info in found:
                info["parent"] = _clip(frame.url, 500)
                info["main_frame"] = frame == page.main_frame
            self.frames.extend(found)
        if page.frames[1:]:
            listeners = self.page_info.setdefault("listeners", [])
            for frame in page.frames[1:10]:
                with contextlib.suppress(Exception):
                    more = await self._eval(
                        frame, "() => (window.__tocsin && window.__tocsin.listeners) || []", None, 2
                    )
                    for entry in more[:100]:
                        entry["frame"] = _clip(frame.url, 300)
                    listeners.extend(more[:100])
        for frame in page.frames[:10]:
            with contextlib.suppress(Exception):
                sent = await self._eval(
                    frame, "() => (window.__tocsin && window.__tocsin.exfil) || []", None, 2
                )
                for entry in sent[:50]:
                    if len(self.datachannels) < 100:
                        entry["frame"] = _clip(frame.url, 300)
                        self.datachannels.append(entry)
        self.final_url = page.url
        with contextlib.suppress(Exception):
            dom = await asyncio.wait_for(page.content(), 8)
            self.dom = dom[: self.browser.max_dom]
        if self.browser.screenshot:
            with contextlib.suppress(Exception):
                self.screenshot = await page.screenshot(type="png", timeout=8000)
        # Let pending body and download reads finish, briefly.
        if self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(list(self._tasks), timeout=3)
        self._step("collected")

    # ------------------------------------------------------------------ results

    def hostile_reason(self) -> str | None:
        """Why this page must end in ``error``, if it behaved like a trap."""
        if self.dialog_count > self.browser.max_dialogs:
            return f"alert() loop: more than {self.browser.max_dialogs} dialogs"
        if self.popup_count > self.browser.max_popups:
            return f"popup storm: {self.popup_count} popups opened"
        if self.crashed:
            return "the page crashed the browser's renderer"
        return None

    def result(self) -> dict[str, Any]:
        """The recorded behaviour (JSON-able except ``bodies`` and download ``data``)."""
        for record in self.requests:
            found = self.initiators.get(record["url"] or "")
            if found:
                record["initiator"] = found
                record["document"] = _clip(self.documents.get(record["url"] or ""), 500)
        navigations = []
        for nav in self.navigations:
            reason = self.nav_reasons.get(nav["url"] or "", "")
            navigations.append({**nav, "reason": reason or None})
        info = self.page_info
        recorded = {
            "url": self.url,
            "final_url": self.final_url
            or (self.navigations[-1]["url"] if self.navigations else None),
            "title": info.get("title"),
            "main_status": self.main_status,
            "served_html": (self.main_document or b"").decode("utf-8", "replace")
            if self.main_document is not None
            else None,
            "requests": self.requests,
            "navigations": navigations,
            "frames": self.frames,
            "popups": self.popups,
            "popup_count": self.popup_count,
            "downloads": self.downloads,
            "websockets": self.websockets,
            "workers": self.workers,
            "dialogs": self.dialogs,
            "dialog_count": self.dialog_count,
            "console_errors": self.console_errors,
            "page_errors": self.page_errors,
            "blocked": self.blocked,
            "forms": info.get("forms", []),
            "loose_passwords": info.get("loose_passwords", 0),
            "overlays": info.get("overlays", []),
            "listeners": info.get("listeners", []),
            "text": info.get("text", ""),
            "images": info.get("images", []),
            "links": info.get("links", []),
            "scripts": info.get("scripts", []),
            "inline_scripts": info.get("inline_scripts", []),
            "interaction": self.interaction,
            "clock_advanced_ms": self.clock_ms,
            "condition_probes": sorted(self.probes),
            "crashed": self.crashed,
            "steps": self.steps,
            "elapsed_ms": self._ms(),
            "dom": self.dom,
            "bodies": self.bodies,
            "body_types": self.body_types,
            "datachannels": self.datachannels,
        }
        recorded["exfil"] = exfil.events(recorded)
        return recorded

    def blobs(self) -> list[Blob]:
        out = []
        if self.screenshot:
            out.append(Blob("screenshot", "image/png", self.screenshot, "the page as rendered"))
        if self.dom:
            out.append(Blob("dom", "text/html", self.dom.encode("utf-8"), "the final DOM"))
        return out


def _read_head(path: Any, size: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)
