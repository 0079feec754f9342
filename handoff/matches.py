"""The bytes each YARA rule matched, found again in the check's own kept evidence.

A check stores which rules fired and an evidence line per rule, not the bytes.
For the package, the rules are run again over the blobs the check kept (the
DOM, the page as served, cloaking variants, payloads) and, for every rule the
check recorded, the first match is written out: which file, where, and the
bytes (at most ``MAX_BYTES``). Behaviour checks and community rules matched no
bytes; their evidence lines say what they saw.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from crawler.signatures.yara import YaraRules
from store.evidence import EvidenceStore, unzip_payload
from store.models import Evidence
from tocsin.config import Config

log = logging.getLogger("tocsin.handoff")

MAX_BYTES = 512
CACHED = 256  # blobs whose hits are remembered
_SCANNED = ("dom", "served_html", "payload_zip")


class MatchFinder:
    """The YARA rules compiled once per package, and each blob's hits remembered (a
    payload a whole campaign served is unzipped and scanned once, not per incident)."""

    def __init__(self, config: Config) -> None:
        self.rules = YaraRules.load(config.signatures.rules_dir)
        self._hits: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def find(
        self, store: EvidenceStore, rules: list[str], blobs: list[tuple[Evidence, str]]
    ) -> list[dict[str, Any]]:
        """``blobs`` are (row, path in the package); returns one record per matched rule."""
        wanted = {r for r in rules if r.startswith("yara.")}
        found: list[dict[str, Any]] = []
        for blob, path in blobs:
            if not wanted:
                break
            if not (blob.kind in _SCANNED or blob.kind.startswith("variant_")):
                continue
            for hit in self._blob_hits(store, blob):
                if hit["rule"] in wanted:
                    wanted.discard(hit["rule"])
                    found.append({**hit, "file": path + hit["file"]})
        return found

    def _blob_hits(self, store: EvidenceStore, blob: Evidence) -> list[dict[str, Any]]:
        """Every rule's first match in one blob; ``file`` is the suffix after its path."""
        known = self._hits.get(blob.sha256)
        if known is not None:
            self._hits.move_to_end(blob.sha256)
            return known
        hits: list[dict[str, Any]] = []
        if store.exists(blob.sha256):
            data = store.get(blob.sha256)
            targets = [("", "page", data)]
            if blob.kind == "payload_zip":
                try:
                    members = unzip_payload(data)
                except Exception:  # a damaged zip: nothing to show, the hash still stands
                    log.warning("payload zip %s unreadable; its matches are left out", blob.sha256)
                    members = {}
                targets = [(f"!{name}", "payload", body) for name, body in members.items()]
            for where, scope, body in targets:
                for hit in self.rules.scan(body, scope):
                    if hit.offset is None or any(h["rule"] == hit.rule for h in hits):
                        continue
                    matched = body[hit.offset : hit.offset + min(hit.length, MAX_BYTES)]
                    hits.append(
                        {
                            "rule": hit.rule,
                            "description": hit.description,
                            "file": where,
                            "offset": hit.offset,
                            "length": hit.length,
                            "bytes_hex": matched.hex(),
                            "bytes_text": matched.decode("utf-8", "replace"),
                        }
                    )
        self._hits[blob.sha256] = hits
        while len(self._hits) > CACHED:
            self._hits.popitem(last=False)
        return hits
