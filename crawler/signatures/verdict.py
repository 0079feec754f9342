"""Findings, and how they add up to one verdict per check."""

from __future__ import annotations

from dataclasses import dataclass, field

# When several families are found, the most specific wins: a skimmer loaded by an
# injected script is a card-skimmer; a known-bad host is the last resort.
FAMILY_PRECEDENCE = (
    "malware-download",
    "malicious-redirect",
    "card-skimmer",
    "fake-update",
    "cryptominer",
    "webshell",
    "phishing",
    "drive-by-download",
    "hidden-iframe",
    "seo-cloaking",
    "injected-script",
    "known-bad-host",
)
SEVERITIES = ("malicious", "suspicious", "info")
IOC_KINDS = ("domains", "urls", "ips", "sha256")


@dataclass
class Finding:
    """One rule or check that matched, with what a person needs to see it too."""

    rule: str  # e.g. tocsin.hidden-iframe, yara.page.coinhive_style_miner, fiddleitm:...
    family: str | None
    severity: str  # malicious | suspicious | info
    confidence: float
    evidence: list[str] = field(default_factory=list)
    iocs: dict[str, list[str]] = field(default_factory=dict)
    cluster: list[str] = field(default_factory=list)  # campaign keys, best first

    def add_ioc(self, kind: str, value: str | None) -> None:
        if value:
            values = self.iocs.setdefault(kind, [])
            if value not in values:
                values.append(value)


@dataclass
class Verdict:
    value: str
    family: str | None = None
    confidence: float | None = None
    rules: list[str] = field(default_factory=list)
    iocs: dict[str, list[str]] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    cluster: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None  # why the check failed (value "error"), kept on the check


def _rank(family: str | None) -> int:
    try:
        return FAMILY_PRECEDENCE.index(family or "")
    except ValueError:
        return len(FAMILY_PRECEDENCE)


def combine(findings: list[Finding], *, max_lines: int = 20, max_iocs: int = 50) -> Verdict:
    """One verdict from many findings: the strongest severity, then the family by precedence."""
    for severity in ("malicious", "suspicious"):
        voting = [f for f in findings if f.severity == severity and f.family]
        if voting:
            break
    else:
        return Verdict(
            "clean",
            rules=sorted({f.rule for f in findings}),
            evidence=[line for f in findings for line in f.evidence][:max_lines],
            findings=findings,
        )
    family = min((f.family for f in voting), key=_rank)
    lead = sorted(
        (f for f in voting if f.family == family), key=lambda f: f.confidence, reverse=True
    )
    others = [f for f in findings if f not in lead]
    confidence = lead[0].confidence
    corroborating = {f.rule for f in others if f.severity in ("malicious", "suspicious")}
    confidence = min(0.99, confidence + 0.02 * len(corroborating))
    ordered = lead + sorted(others, key=lambda f: (SEVERITIES.index(f.severity), _rank(f.family)))
    iocs: dict[str, list[str]] = {}
    for finding in ordered:
        for kind, values in finding.iocs.items():
            bucket = iocs.setdefault(kind, [])
            for value in values:
                if value not in bucket and len(bucket) < max_iocs:
                    bucket.append(value)
    lines: list[str] = []
    for finding in ordered:
        for line in finding.evidence:
            if line not in lines:
                lines.append(line)
    cluster = [key for f in lead for key in f.cluster]
    return Verdict(
        severity,
        family=family,
        confidence=round(confidence, 2),
        rules=list(dict.fromkeys(f.rule for f in ordered)),
        iocs=iocs,
        evidence=lines[:max_lines],
        cluster=list(dict.fromkeys(cluster)),
        findings=findings,
    )
