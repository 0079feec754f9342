"""The verdict pipeline: every rule and check over a check's record, one verdict.

Detection of a browser visit, or of a large body, runs in a worker thread (YARA
over megabytes of scripts must not stall the reactor); a small record (an
offline URL, a small payload, a page the browser did not visit) is judged in
place, as the hop to a thread and back would cost more than the rules. The
engine is built once per configuration.
"""

from __future__ import annotations

import asyncio
from typing import Any

from crawler.items import CheckItem
from crawler.signatures.engine import Engine
from tocsin.config import Config

INLINE_MAX_BYTES = 256 * 1024  # bodies up to this size are judged on the reactor thread


class VerdictPipeline:
    def __init__(self, config: Config) -> None:
        self.engine = Engine.for_config(config)

    @classmethod
    def from_crawler(cls, crawler: Any) -> VerdictPipeline:
        config = crawler.settings.get("TOCSIN_CONFIG")
        return cls(config if isinstance(config, Config) else Config())

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, CheckItem):
            return item
        if is_light(item):
            verdict = self.engine.evaluate(item)
        else:
            verdict = await asyncio.to_thread(self.engine.evaluate, item)
        item.verdict = verdict.value
        item.family = verdict.family
        item.confidence = verdict.confidence
        item.rules = verdict.rules
        item.iocs = verdict.iocs
        item.evidence_lines = verdict.evidence
        item.meta["cluster"] = verdict.cluster
        return item


def is_light(item: CheckItem) -> bool:
    """True when judging ``item`` is cheaper than a thread hop: no browser record, small bodies."""
    if item.browser or item.variants:
        return False
    size = len(item.payload or b"") + len(item.served_html or "")
    return size <= INLINE_MAX_BYTES
