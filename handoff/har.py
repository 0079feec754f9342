"""The browser's request log as a HAR 1.2 file, for any HAR viewer.

Written from the compact request log the crawl keeps (``pipelines/evidence.py``),
not recorded by Playwright: that log is what the verdict was made from, and a
second recording would be a second visit. It has no headers, bodies or timings,
so those are empty (``-1`` where HAR allows "unknown"); what tocsin knows beyond
HAR goes in ``_``-prefixed fields (HAR 1.2 allows custom fields so named):
``_resourceType``, ``_initiator``, ``_blocked`` (what the SSRF guard refused),
``_error`` (a failed request) and ``_phase``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from tocsin import __version__

NOTE = (
    "Written by tocsin from its request log of the visit: URLs, methods, statuses, MIME "
    "types, order and start times are recorded; headers, bodies and timings were not."
)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _query(url: str) -> list[dict[str, str]]:
    query = url.partition("#")[0].partition("?")[2]  # urlsplit's netloc checks cost 10x
    return [{"name": k, "value": v} for k, v in parse_qsl(query, keep_blank_values=True)]


def _entry(record: dict[str, Any], started: datetime) -> dict[str, Any]:
    url = str(record.get("url") or "")
    at = record.get("at")
    when = started + timedelta(milliseconds=at) if isinstance(at, int | float) else started
    post = record.get("post_data")
    request: dict[str, Any] = {
        "method": str(record.get("method") or "GET"),
        "url": url,
        "httpVersion": "",
        "cookies": [],
        "headers": [],
        "queryString": _query(url),
        "headersSize": -1,
        "bodySize": len(post.encode("utf-8")) if isinstance(post, str) else 0,
    }
    if isinstance(post, str):
        request["postData"] = {"mimeType": "", "text": post}
    status = record.get("status")
    entry: dict[str, Any] = {
        "pageref": "page_1",
        "startedDateTime": _iso(when),
        "time": 0,
        "request": request,
        "response": {
            "status": status if isinstance(status, int) else 0,
            "statusText": "",
            "httpVersion": "",
            "cookies": [],
            "headers": [],
            "content": {"size": -1, "mimeType": str(record.get("mime") or "x-unknown")},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 0, "receive": 0},
        "_resourceType": record.get("type"),
        "_phase": record.get("phase"),
    }
    for key, field in (
        ("initiator", "_initiator"),
        ("blocked", "_blocked"),
        ("failure", "_error"),
        ("redirected_from", "_redirectedFrom"),
    ):
        if record.get(key):
            entry[field] = record[key]
    return entry


def request_log_har(log: dict[str, Any], started: datetime) -> dict[str, Any]:
    """The HAR 1.2 document of one stored request log; ``started`` is the visit's start."""
    browser = log.get("browser") or {}
    records = [r for r in browser.get("requests") or [] if isinstance(r, dict)]
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "tocsin", "version": __version__},
            "browser": {"name": "Chromium", "version": ""},
            "pages": [
                {
                    "startedDateTime": _iso(started),
                    "id": "page_1",
                    "title": str(browser.get("title") or log.get("url") or ""),
                    "pageTimings": {},
                }
            ],
            "entries": [_entry(record, started) for record in records],
            "comment": NOTE,
        }
    }
