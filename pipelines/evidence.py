"""Evidence: screenshot, request log, DOM and payloads into the blob store.

Blobs are written here, in the check worker (``pipelines.worker``), after the
verdict; their rows are written with the check by the store writer. The request
log is compact JSON (not a HAR): what was requested, by whom, with what answer,
and what the guard refused. Payloads (a direct payload, a drive-by download) go
in AES zips with the password ``infected``, reused when the same payload was
zipped before.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any

from crawler.items import Blob, CheckItem
from store.db import Database
from store.evidence import EvidenceStore, existing_zip, zip_payload
from tocsin.config import Config

_LOG_DROP = ("bodies", "dom", "body_types", "served_html", "inline_scripts", "text", "links")


def request_log(item: CheckItem) -> dict[str, Any]:
    """The compact, JSON-able record of a visit."""
    browser = dict(item.browser or {})
    for key in _LOG_DROP:
        browser.pop(key, None)
    browser["downloads"] = [
        {k: v for k, v in d.items() if k != "data"} for d in browser.get("downloads", [])
    ]
    return {
        "url": item.url,
        "kind": item.kind,
        "route": item.route,
        "route_reason": item.route_reason,
        "redirect_chain": item.redirect_chain,
        "variants": {
            name: {k: v for k, v in variant.items() if k != "html"}
            for name, variant in item.variants.items()
        },
        "blocked": item.blocked,
        "browser": browser,
        "sniffed": item.meta.get("sniffed"),
    }


class EvidenceKeeper:
    """Writes a judged check's blobs; one per crawl, so its memory of zips is the crawl's."""

    def __init__(self, config: Config, db: Database | None) -> None:
        self.config = config
        self.store = EvidenceStore.from_config(config)
        self.db = db
        # Zips made by this crawl whose rows may not be committed yet: content -> (sha, size).
        self.zipped: OrderedDict[str, tuple[str, int]] = OrderedDict()

    def keep(self, item: CheckItem) -> None:
        if item.verdict == "offline":
            item.blobs = []
            return
        if item.verdict == "clean" and not self.config.evidence.keep_clean:
            item.blobs = [b for b in item.blobs if b.kind != "dom"]
        if item.browser or item.variants or item.blocked:
            # Without a browser visit the check row holds the whole story (redirect chain,
            # what the bytes are); a log blob would repeat it.
            log = json.dumps(request_log(item), ensure_ascii=False, default=str).encode("utf-8")
            item.blobs.append(Blob("requests", "application/json", log, "request log"))
        interesting = item.verdict in ("malicious", "suspicious")
        if interesting and item.variants and "seo-cloaking" in (item.family or ""):
            for name, variant in item.variants.items():
                if variant.get("html"):
                    note = f"the page as served to the '{name}' fetch"
                    item.blobs.append(
                        Blob(f"variant_{name}", "text/html", variant["html"].encode(), note)
                    )
        payloads: list[tuple[bytes, str, str]] = []
        if item.payload is not None and (item.meta.get("sniffed") or {}).get("category"):
            payloads.append(
                (item.payload, item.payload_name or "payload", "the payload served at the URL")
            )
        for download in (item.browser or {}).get("downloads", []):
            if download.get("data") and download.get("category"):
                note = f"downloaded from {download.get('url', '')[:300]}"
                payloads.append((download["data"], download.get("filename") or "download", note))
        for data, name, note in payloads:
            self._zip(item, data, name, note)
        for blob in item.blobs:
            if blob.data is not None and blob.sha256 is None:
                stored = self.store.put(blob.data)
                blob.sha256, blob.size = stored.sha256, stored.size
                if stored.truncated:
                    blob.note = (blob.note or "") + f" (cut at {self.store.max_blob} bytes)"
            blob.data = None  # the bytes are on disk now; keep the item small

    def _zip(self, item: CheckItem, data: bytes, name: str, note: str) -> None:
        """Zip a payload, or point at the zip of the same bytes made before."""
        content = hashlib.sha256(data).hexdigest()
        known = self.zipped.get(content)
        if known is not None and self.store.exists(known[0]):
            item.blobs.append(Blob("payload_zip", "application/zip", None, note, content, *known))
            return
        if self.db is not None:
            with self.db.session() as session:
                found = existing_zip(session, content)
                if found is not None and self.store.exists(found.sha256):
                    item.blobs.append(
                        Blob(
                            "payload_zip",
                            "application/zip",
                            None,
                            note,
                            content,
                            found.sha256,
                            found.size,
                        )
                    )
                    return
        stored = self.store.put(zip_payload(data, name))
        self.zipped[content] = (stored.sha256, stored.size)
        while len(self.zipped) > 4096:
            self.zipped.popitem(last=False)
        note += " (zip, password: infected)"
        item.blobs.append(
            Blob("payload_zip", "application/zip", None, note, content, stored.sha256, stored.size)
        )
