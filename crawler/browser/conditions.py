"""The condition plan of one URL: which browser visits to make, and which one to keep.

The first visit is as a desktop with no referer. Redirects and loaders that fire only
for phones or only for visitors from a search engine are caught by visiting again
under the other conditions of :func:`crawler.browser.profiles.condition_plan`, but
only while the visits so far are not malicious (the detection engine judges each
one, in a thread) and only while ``browser.visit_budget`` lasts, so a clean page
costs at most ``browser.max_visits`` visits. The kept visit is the worst one
(malicious, then suspicious, then the first); the evidence says under which
condition it was seen and what the others showed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from crawler.browser.profiles import Condition, condition_plan
from crawler.items import Blob, CheckItem
from tocsin.config import Config
from tocsin.urls import defang

log = logging.getLogger("tocsin.crawl")

_RANK = {"malicious": 0, "suspicious": 1}


@dataclass
class Outcome:
    """One finished browser visit under one condition."""

    condition: Condition
    browser: dict[str, Any]
    blobs: list[Blob]
    problem: str | None
    verdict: str
    elapsed_ms: int

    def record(self, device: str) -> dict[str, Any]:
        out = self.condition.as_record(device)
        out.update(verdict=self.verdict, elapsed_ms=self.elapsed_ms)
        if self.problem:
            out["problem"] = self.problem[:200]
        return out


@dataclass
class ConditionRun:
    """The plan and what came of it so far, for one URL."""

    config: Config
    plan: list[Condition]
    outcomes: list[Outcome] = field(default_factory=list)
    started: float | None = None  # when the first visit's page opened

    @classmethod
    def for_config(cls, config: Config) -> ConditionRun:
        return cls(config, condition_plan(config))

    @property
    def current(self) -> Condition:
        return self.plan[min(len(self.outcomes), len(self.plan) - 1)]

    def next_condition(self) -> Condition | None:
        """The next condition to try, or None: the plan is done (see the module doc)."""
        if len(self.outcomes) >= len(self.plan):
            return None
        last = self.outcomes[-1] if self.outcomes else None
        if last is not None and (last.problem or last.verdict == "malicious"):
            return None
        budget = self.config.browser.visit_budget.total_seconds()
        if self.started is not None and time.monotonic() - self.started >= budget:
            return None
        return self.plan[len(self.outcomes)]

    def kept(self) -> Outcome:
        """The worst visit: malicious, else suspicious, else the first (the baseline)."""
        first = self.outcomes[0]
        if first.problem:
            return first
        usable = [o for o in self.outcomes if not o.problem]
        return min(usable, key=lambda o: _RANK.get(o.verdict, 9))

    def apply(self, item: CheckItem) -> Outcome:
        """Put the kept visit on ``item``, with the conditions tried."""
        kept = self.kept()
        device = self.config.browser.mobile_device
        item.browser = kept.browser
        item.browser["condition"] = kept.condition.as_record(device)
        item.browser["conditions"] = [o.record(device) for o in self.outcomes]
        item.blobs.extend(kept.blobs)
        return kept


async def provisional_verdict(config: Config, item: CheckItem, browser: dict[str, Any]) -> str:
    """What the engine would say of ``item`` with this visit (it runs again in the worker)."""
    from crawler.signatures.engine import Engine

    probe = dataclasses.replace(item, browser=browser, meta=dict(item.meta), blobs=[])

    def judge() -> str:
        return Engine.for_config(config).evaluate(probe).value

    try:
        return await asyncio.to_thread(judge)
    except Exception:
        log.exception("provisional verdict failed on %s", item.url)
        return "error"


def condition_line(item: CheckItem) -> str | None:
    """The evidence line naming the condition a behaviour needed, if it needed one."""
    browser = item.browser or {}
    kept = browser.get("condition")
    tried = browser.get("conditions") or []
    if not kept or len(tried) < 2 or (kept["profile"] == "desktop" and not kept["referer"]):
        return None
    who = f"a phone ({kept['device']})" if kept.get("device") else "a desktop browser"
    where = (
        f"coming from {defang(kept['referer'])}" if kept.get("referer") else "typing the address"
    )
    others = ", ".join(
        f"{t['profile']} with {'referer' if t.get('referer') else 'no referer'}: {t['verdict']}"
        for t in tried
        if (t["profile"], t.get("referer")) != (kept["profile"], kept.get("referer"))
    )
    return f"{defang(item.url)} showed this only to {who} {where}; the other visits: {others}"
