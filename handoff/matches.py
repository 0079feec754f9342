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
from typing import Any

from crawler.signatures.yara import YaraRules
from store.evidence import EvidenceStore, unzip_payload
from store.models import Evidence
from tocsin.config import Config

log = logging.getLogger("tocsin.handoff")

MAX_BYTES = 512
_SCANNED = ("dom", "served_html", "payload_zip")


class MatchFinder:
    """The YARA rules compiled once per package."""

    def __init__(self, config: Config) -> None:
        self.rules = YaraRules.load(config.signatures.rules_dir)

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
            if not store.exists(blob.sha256):
                continue
            data = store.get(blob.sha256)
            targets = [(path, "page", data)]
            if blob.kind == "payload_zip":
                try:
                    members = unzip_payload(data)
                except Exception:  # a damaged zip: nothing to show, the hash still stands
                    log.warning("payload zip %s unreadable; its matches are left out", path)
                    continue
                targets = [(f"{path}!{name}", "payload", body) for name, body in members.items()]
            for where, scope, body in targets:
                for hit in self.rules.scan(body, scope):
                    if hit.rule not in wanted or hit.offset is None:
                        continue
                    wanted.discard(hit.rule)
                    matched = body[hit.offset : hit.offset + min(hit.length, MAX_BYTES)]
                    found.append(
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
        return found
