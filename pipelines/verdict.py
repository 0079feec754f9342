"""The verdict: every rule and check over a check's record, one verdict.

Runs in the check worker (``pipelines.worker``), before the evidence and the
store; the engine is built once per configuration.
"""

from __future__ import annotations

from crawler.browser.conditions import condition_line
from crawler.items import CheckItem
from crawler.signatures.engine import Engine


def judge(engine: Engine, item: CheckItem) -> None:
    """Fill in ``item``'s verdict, family, confidence, rules, IOCs and evidence lines."""
    verdict = engine.evaluate(item)
    item.verdict = verdict.value
    item.family = verdict.family
    item.confidence = verdict.confidence
    item.rules = verdict.rules
    item.iocs = verdict.iocs
    item.evidence_lines = verdict.evidence
    line = condition_line(item) if verdict.value in ("malicious", "suspicious") else None
    if line:  # the behaviour needed a phone or a search referer: say so first
        item.evidence_lines = [line, *verdict.evidence]
    item.meta["cluster"] = verdict.cluster
    if verdict.error and not item.error:
        item.error = verdict.error
