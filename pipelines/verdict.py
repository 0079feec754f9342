"""The verdict pipeline: every rule and check over a check's record, one verdict.

Detection runs in a worker thread (YARA over megabytes of scripts must not stall
the reactor); the engine is built once per configuration.
"""

from __future__ import annotations

import asyncio
from typing import Any

from crawler.items import CheckItem
from crawler.signatures.engine import Engine
from tocsin.config import Config


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
        verdict = await asyncio.to_thread(self.engine.evaluate, item)
        item.verdict = verdict.value
        item.family = verdict.family
        item.confidence = verdict.confidence
        item.rules = verdict.rules
        item.iocs = verdict.iocs
        item.evidence_lines = verdict.evidence
        item.meta["cluster"] = verdict.cluster
        return item
