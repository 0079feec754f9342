"""YARA-X rules: the bundled ``rules/*.yar`` plus ``signatures.rules_dir``.

Each rule's metadata says what a match means: ``family``, ``severity``
(malicious | suspicious | info), ``confidence``, ``scope`` (payload: served files
and downloads; page: documents, scripts and the DOM; any) and ``description``,
which becomes the evidence line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yara_x

from tocsin.errors import ConfigError

log = logging.getLogger("tocsin.signatures")

BUNDLED = Path(__file__).with_name("rules")


@dataclass(frozen=True)
class YaraHit:
    rule: str  # namespace.identifier
    family: str | None
    severity: str
    confidence: float
    description: str
    scope: str
    offset: int | None
    length: int = 0  # of the first matched pattern, for `tocsin rules test`


class YaraRules:
    """Compiled once per run; scanning is thread-safe with one scanner per call."""

    def __init__(self, paths: list[Path], timeout: int = 10) -> None:
        compiler = yara_x.Compiler()
        self.sources: list[str] = []
        for path in paths:
            compiler.new_namespace(path.stem.replace("-", "_"))
            try:
                compiler.add_source(path.read_text(encoding="utf-8"), origin=str(path))
            except yara_x.CompileError as exc:
                raise ConfigError("signatures.rules_dir", f"{path}: {exc}") from None
            self.sources.append(str(path))
        self.rules = compiler.build()
        self.timeout = timeout

    def describe(self) -> list[tuple[str, str, dict[str, str]]]:
        """Every rule: its name as checks record it, the file it is in, its metadata."""
        files = {Path(p).stem.replace("-", "_"): p for p in self.sources}
        return [
            (
                f"yara.{rule.namespace}.{rule.identifier}",
                files.get(rule.namespace, ""),
                {str(k): str(v) for k, v in rule.metadata},
            )
            for rule in self.rules
        ]

    @classmethod
    def load(cls, rules_dir: str = "") -> YaraRules:
        paths = sorted(BUNDLED.glob("*.yar"))
        if rules_dir:
            extra = Path(rules_dir)
            if not extra.is_dir():
                raise ConfigError("signatures.rules_dir", f"not a folder: {rules_dir}")
            paths += sorted(extra.glob("*.yar"))
        return cls(paths)

    def scan(self, data: bytes, scope: str) -> list[YaraHit]:
        """Rules of ``scope`` (or ``any``) that match ``data``."""
        if not data:
            return []
        scanner = yara_x.Scanner(self.rules)
        scanner.set_timeout(self.timeout)
        try:
            results = scanner.scan(data)
        except Exception as exc:  # yara_x.TimeoutError, ScanError
            log.warning("YARA scan failed: %s", exc)
            return []
        hits = []
        for match in results.matching_rules:
            meta = dict(match.metadata)
            rule_scope = str(meta.get("scope", "any"))
            if rule_scope not in ("any", scope):
                continue
            offset, length = None, 0
            for pattern in match.patterns:
                if pattern.matches:
                    offset, length = pattern.matches[0].offset, pattern.matches[0].length
                    break
            try:
                confidence = float(meta.get("confidence", 0.7))
            except (TypeError, ValueError):
                confidence = 0.7
            hits.append(
                YaraHit(
                    rule=f"yara.{match.namespace}.{match.identifier}",
                    family=str(meta["family"]) if meta.get("family") else None,
                    severity=str(meta.get("severity", "suspicious")),
                    confidence=confidence,
                    description=str(meta.get("description", match.identifier)),
                    scope=rule_scope,
                    offset=offset,
                    length=length,
                )
            )
        return hits
