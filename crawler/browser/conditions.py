"""The condition plan of one URL: which browser visits to make, and which one to keep.

The first visit is as a desktop with no referer. Redirects and loaders that fire only
for phones or only for visitors from a search engine are caught by visiting again
under the other conditions of :func:`crawler.browser.profiles.condition_plan`, but
only while the visits so far are not malicious (the detection engine judges each
one, in a thread), only for a page whose scripts read something a condition changes
(``browser.condition_gate``: user agent, touch, screen or window size, referrer, as
noted by ``person.js``) and only while ``browser.visit_budget`` lasts, so a clean
page costs at most ``browser.max_visits`` visits, and one if it reads none of these.
The kept visit is the worst one (malicious, then suspicious, then the first); the
evidence says under which condition it was seen and what the others showed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from crawler.browser.profiles import Condition, condition_plan
from crawler.items import Blob, CheckItem
from tocsin.config import Config
from tocsin.urls import defang, host_of

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
        out["probes"] = list(self.browser.get("condition_probes") or [])
        # Which hosts the visit contacted: what a visit not kept did is still on record.
        hosts = {host_of(r.get("url") or "") for r in self.browser.get("requests", [])}
        out["hosts"] = sorted(h for h in hosts if h)[:50]
        if self.problem:
            out["problem"] = self.problem[:200]
        return out


@dataclass
class ConditionRun:
    """The plan and what came of it so far, for one URL."""

    config: Config
    plan: list[Condition]
    outcomes: list[Outcome] = field(default_factory=list)

    @classmethod
    def for_config(cls, config: Config) -> ConditionRun:
        return cls(config, condition_plan(config))

    @property
    def current(self) -> Condition:
        return self.plan[min(len(self.outcomes), len(self.plan) - 1)]

    def worth_judging(self, browser: dict[str, Any]) -> bool:
        """Whether the visit just made needs a verdict now: a later condition's always
        (it may be the one to keep), the first only when another could follow."""
        if self.outcomes:
            return True
        return len(self.plan) > 1 and self._may_go_on(browser)

    def next_condition(self) -> Condition | None:
        """The next condition to try, or None: the plan is done (see the module doc)."""
        if not self.outcomes or len(self.outcomes) >= len(self.plan):
            return None
        last = self.outcomes[-1]
        if last.problem or last.verdict not in ("clean", "suspicious"):
            return None  # malicious already, failed, or not worth judging
        if not self._may_go_on(self.outcomes[0].browser):
            return None
        return self.plan[len(self.outcomes)]

    def _may_go_on(self, first: dict[str, Any]) -> bool:
        if self.config.browser.condition_gate and not first.get("condition_probes"):
            return False  # the page reads nothing a condition changes
        # Browser time spent on this URL's visits (not time queued behind other pages).
        spent = sum(o.elapsed_ms for o in self.outcomes) / 1000
        return spent < self.config.browser.visit_budget.total_seconds()

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
