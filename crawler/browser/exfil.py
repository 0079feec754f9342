"""Every channel by which data left a page, as one list of "exfil events".

A skimmer or a phishing kit may send what was typed by ``fetch``, XHR,
``sendBeacon``, an image URL, a form posted into a hidden frame, a WebSocket or
a WebRTC data channel. The recorder sees these in different places (the request
log, WebSocket frames, the instrumentation's data-channel log); judging them one
way needs them in one shape::

    {"channel": "fetch", "url": "...", "host": "...", "method": "POST",
     "data": "<query string and body, clipped>", "phase": "interaction",
     "initiator": {...} | None}

Only events that carry data (a query string, a body, a frame, a message) are
listed: a plain GET of a stylesheet cannot carry what was typed.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from tocsin.urls import host_of

MAX_EVENTS = 300
MAX_DATA = 4096

# Playwright resource types -> channel names.
_CHANNELS = {
    "fetch": "fetch",
    "xhr": "xhr",
    "ping": "beacon",
    "beacon": "beacon",
    "image": "image",
    "script": "script",
    "stylesheet": "stylesheet",
    "document": "form",
    "eventsource": "eventsource",
}
_ICE = re.compile(r"^(?:stuns?|turns?):(?:\[([^\]]+)\]|([^:?/\s]+))", re.I)
_PEER = re.compile(r"^peer:([^:\s]+)")


def ice_host(url: str) -> str:
    """The host of a ``turn:``/``stun:`` ICE server URL, or of a ``peer:ip:port`` note."""
    found = _ICE.match(url or "")
    if found:
        return (found.group(1) or found.group(2) or "").lower()
    found = _PEER.match(url or "")
    return found.group(1).lower() if found else ""


def _request_event(req: dict[str, Any]) -> dict[str, Any] | None:
    url = req.get("url") or ""
    query = urlsplit(url).query if "?" in url else ""
    body = req.get("post_data") or ""
    kind = req.get("type") or "other"
    if not (query or body):
        return None
    if kind == "document" and (req.get("method") or "GET") == "GET":
        channel = "navigation"
    else:
        channel = _CHANNELS.get(kind, kind)
    data = (query + ("\n" if query and body else "") + body)[:MAX_DATA]
    return {
        "channel": channel,
        "url": url,
        "host": host_of(url),
        "method": req.get("method"),
        "data": data,
        "phase": req.get("phase"),
        "initiator": req.get("initiator"),
        "document": req.get("document"),
    }


def events(browser: dict[str, Any]) -> list[dict[str, Any]]:
    """The exfil events of one recorded visit (see the module docstring)."""
    out: list[dict[str, Any]] = []
    for req in browser.get("requests") or []:
        event = _request_event(req)
        if event is not None:
            out.append(event)
    for ws in browser.get("websockets") or []:
        url = ws.get("url") or ""
        phases = ws.get("sent_phases") or []
        for i, frame in enumerate(ws.get("sent") or []):
            out.append(
                {
                    "channel": "websocket",
                    "url": url,
                    "host": host_of(url),
                    "method": None,
                    "data": str(frame)[:MAX_DATA],
                    "phase": phases[i] if i < len(phases) else None,
                    "initiator": None,
                    "document": None,
                }
            )
    for sent in browser.get("datachannels") or []:
        servers = [s for s in sent.get("servers") or [] if ice_host(s)]
        target = servers[0] if servers else "webrtc:unknown-peer"
        script = sent.get("script") or {}
        out.append(
            {
                "channel": "webrtc",
                "url": target,
                "host": ice_host(target) or "unknown-peer",
                "method": None,
                "data": str(sent.get("data") or "")[:MAX_DATA],
                "phase": sent.get("phase"),
                "initiator": {"type": "script", **script} if script.get("url") else None,
                "document": None,
                "label": sent.get("label"),
                "servers": servers[:10],
            }
        )
    return out[:MAX_EVENTS]
