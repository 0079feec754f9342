"""The detection engine: every rule and check over one check's record, one verdict.

Sources of findings:

- the Python behaviour checks (:mod:`crawler.signatures.behaviour`), one per family;
- YARA-X rules over the payload, downloads (scope ``payload``), and over the served
  HTML, the final DOM and script bodies (scope ``page``);
- the known-bad list (inside the behaviour checks);
- community rules (fiddleitm, IOK), weighted by ``signatures.community_verdict``.

Routes decide first: ``offline`` and ``error`` checks keep those verdicts (a
hostile page is an error even if it looks clean), except that strong malicious
findings win over an error (an attacker must not hide a skimmer behind an
infinite loop).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from crawler.items import CheckItem
from crawler.signatures import behaviour, community, executables, kits, rulepacks, webshells
from crawler.signatures.domains import host_of
from crawler.signatures.knownbad import KnownBad
from crawler.signatures.verdict import Finding, Verdict, combine
from crawler.signatures.yara import YaraRules
from tocsin.config import Config
from tocsin.urls import defang

log = logging.getLogger("tocsin.signatures")

_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()


class Engine:
    """Loaded once per configuration: rules compiled, lists read."""

    def __init__(self, config: Config) -> None:
        sig = config.signatures
        self.config = config
        self.yara = YaraRules.load(sig.rules_dir)
        self.known_bad = KnownBad.load(sig.known_bad)
        self.community = rulepacks.load_rules(config)
        self.community_verdict = sig.community_verdict
        self.allow = list(sig.allow_domains)

    @classmethod
    def for_config(cls, config: Config) -> Engine:
        key = config.signatures.model_dump_json() + config.network.model_dump_json()
        with _LOCK:
            engine = _ENGINES.get(key)
            if engine is None:
                engine = _ENGINES[key] = cls(config)
        return engine

    def _resolve(self, host: str) -> tuple[str, ...]:
        """Addresses of ``host`` for the known-bad list (hosts file and DNS cache)."""
        from crawler.net import NetPolicy

        try:
            policy = NetPolicy.for_config(self.config.network, max_age=1.0)  # per page: no stat
            return policy.resolver.resolve(host).addresses
        except Exception:
            return ()

    # ------------------------------------------------------------------ verdicts

    def evaluate(self, item: CheckItem) -> Verdict:
        """The verdict of one check (also sets nothing on the item)."""
        if item.payload is not None and "payload_sha256" not in item.meta:
            item.meta["payload_sha256"] = hashlib.sha256(item.payload).hexdigest()
        if item.route == "offline":
            return Verdict(
                "offline", evidence=[f"{defang(item.url)} is offline: {item.route_reason}"]
            )
        failures: list[str] = []
        findings = self.findings(item, failures)
        verdict = combine(findings)
        if failures and verdict.value != "malicious":
            # A check that could not look at the page has not found it clean: an error,
            # retried on the error schedule, with the reason kept.
            reason = "; ".join(failures)
            return Verdict(
                "error",
                rules=verdict.rules,
                iocs=verdict.iocs,
                evidence=[f"the check of {defang(item.url)} failed: {reason}", *verdict.evidence],
                findings=findings,
                error=reason,
            )
        if item.route in ("error", "blocked"):
            strong = verdict.value == "malicious" and (verdict.confidence or 0) >= 0.85
            if not strong:
                lines = [
                    f"the check of {defang(item.url)} failed: {item.error or item.route_reason}"
                ]
                return Verdict(
                    "error",
                    rules=verdict.rules,
                    iocs=verdict.iocs,
                    evidence=lines + verdict.evidence,
                    findings=findings,
                )
        return verdict

    def findings(self, item: CheckItem, failures: list[str] | None = None) -> list[Finding]:
        """Every finding; a check that raises is logged and named in ``failures``."""
        facts = behaviour.Facts.of(item, self.allow, self.known_bad, self._resolve)
        found: list[Finding] = []
        for check in (
            *behaviour.CHECKS,
            *kits.CHECKS,
            *webshells.CHECKS,
            executables.known_bad_hash,
        ):
            try:
                found.extend(check(facts))
            except Exception as exc:
                log.exception("check %s failed on %s", check.__name__, item.url)
                if failures is not None:
                    detail = " ".join(str(exc).split())[:200]
                    failures.append(
                        f"the {check.__name__.replace('_', '-')} check failed on this page "
                        f"({type(exc).__name__}{': ' + detail if detail else ''})"
                    )
        found.extend(self._yara(item))
        found.extend(self._community(item, facts))
        return found

    def _yara(self, item: CheckItem) -> list[Finding]:
        targets: list[tuple[str, str, bytes]] = []  # scope, what, data
        if item.payload is not None:
            targets.append(
                ("payload", f"the file at {defang(item.final_url or item.url)}", item.payload)
            )
        browser = item.browser or {}
        for download in browser.get("downloads", []):
            if download.get("data"):
                targets.append(
                    (
                        "payload",
                        f"the download {defang(download.get('url') or '')}",
                        download["data"],
                    )
                )
        if item.served_html:
            targets.append(
                (
                    "page",
                    f"the page {defang(item.final_url or item.url)}",
                    item.served_html.encode(),
                )
            )
        if browser.get("dom"):
            targets.append(
                (
                    "page",
                    f"the final page {defang(browser.get('final_url') or item.url)}",
                    browser["dom"].encode(),
                )
            )
        for url, body in (browser.get("bodies") or {}).items():
            targets.append(
                (
                    "page",
                    f"{browser.get('body_types', {}).get(url, 'resource')} {defang(url)}",
                    body,
                )
            )
        findings: dict[str, Finding] = {}
        for scope, what, data in targets:
            for hit in self.yara.scan(data, scope):
                finding = findings.get(hit.rule)
                if finding is None:
                    finding = findings[hit.rule] = Finding(
                        hit.rule, hit.family, hit.severity, hit.confidence, []
                    )
                line = f"{hit.description} in {what}"
                if len(finding.evidence) < 3 and line not in finding.evidence:
                    finding.evidence.append(line)
                if scope == "payload" and item.meta.get("payload_sha256") and data is item.payload:
                    finding.add_ioc("sha256", item.meta["payload_sha256"])
                    finding.cluster.append(f"sha256:{item.meta['payload_sha256']}")
        return list(findings.values())

    def _community(self, item: CheckItem, facts: behaviour.Facts) -> list[Finding]:
        if not self.community or self.community_verdict == "ignore":
            return []
        page = self.page_text(item)
        out = []
        for rule in self.community:
            try:
                matched = rule.test(page)
            except TimeoutError as exc:  # a regex cut off: no match, and said so
                log.warning("community rule %s gave up on %s: %s", rule.rule, item.url[:200], exc)
                continue
            except Exception:
                log.debug("community rule %s failed", rule.rule, exc_info=True)
                continue
            if not matched:
                continue
            severity = "info" if rule.info_only else self.community_verdict
            out.append(
                Finding(
                    rule.rule,
                    rule.family,
                    severity,
                    0.6 if severity == "suspicious" else 0.8,
                    [f"community rule \u201c{rule.title}\u201d matches {facts.where()}"],
                )
            )
        return out

    @staticmethod
    def page_text(item: CheckItem) -> community.PageText:
        """What community rules read of a check, with this page's time budget."""
        browser = item.browser or {}
        html = item.served_html or browser.get("served_html") or ""
        if item.payload is not None and not html:
            html = item.payload[:2_000_000].decode("utf-8", "replace")
        return community.PageText(
            html=html,
            dom=browser.get("dom") or "",
            js=[
                body.decode("utf-8", "replace")
                for url, body in (browser.get("bodies") or {}).items()
                if browser.get("body_types", {}).get(url) == "script"
            ]
            + list(browser.get("inline_scripts") or []),
            title=browser.get("title") or "",
            hostname=host_of(item.final_url or item.url),
            requests=[item.url, *(r.get("url") or "" for r in browser.get("requests", []))],
            deadline=time.monotonic() + community.PAGE_BUDGET,
        )
