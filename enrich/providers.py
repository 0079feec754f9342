"""Recognising CDN fronts and large shared-hosting providers.

The patterns are data (``enrich/data/providers.json``, extended with
``enrich.providers_file``), matched against the origin ASN (``asn``: a list of
numbers), the AS name, the RDAP holder and network name, and the CNAME chain.
Both facts change what a notice must say:
a CDN's abuse desk can forward a report but cannot clean the origin, and a
shared-hosting provider must act on one customer account, not on the address.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tocsin.errors import ConfigError

DATA = Path(__file__).with_name("data") / "providers.json"
FIELDS = ("as_name", "org", "cname")


@dataclass(frozen=True)
class Pattern:
    name: str
    as_name: re.Pattern[str] | None
    org: re.Pattern[str] | None
    cname: re.Pattern[str] | None
    asns: frozenset[int] = frozenset()  # the network's origin ASNs (names change, numbers less)


def _compile(entries: list[dict], where: str) -> list[Pattern]:
    patterns = []
    for entry in entries:
        try:
            compiled = {
                f: re.compile(entry[f], re.IGNORECASE) if entry.get(f) else None for f in FIELDS
            }
        except re.error as exc:
            raise ConfigError("enrich.providers_file", f"{where}: bad pattern: {exc}") from None
        try:
            asns = frozenset(int(a) for a in entry.get("asn") or [])
        except (TypeError, ValueError):
            raise ConfigError("enrich.providers_file", f"{where}: asn must be numbers") from None
        patterns.append(Pattern(name=str(entry.get("name", "?")), **compiled, asns=asns))
    return patterns


@dataclass(frozen=True)
class Match:
    name: str
    evidence: str  # what matched, for the ladder's note


class ProviderPatterns:
    def __init__(self, cdn: list[Pattern], shared: list[Pattern]) -> None:
        self.cdn = cdn
        self.shared = shared

    @classmethod
    def load(cls, extra_file: str = "") -> ProviderPatterns:
        data = json.loads(DATA.read_text(encoding="utf-8"))
        cdn = _compile(data["cdn"], str(DATA))
        shared = _compile(data["shared_hosting"], str(DATA))
        if extra_file:
            try:
                extra = json.loads(Path(extra_file).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError("enrich.providers_file", str(exc)) from None
            # the operator's own entries are tried first
            cdn = _compile(extra.get("cdn", []), extra_file) + cdn
            shared = _compile(extra.get("shared_hosting", []), extra_file) + shared
        return cls(cdn, shared)

    @staticmethod
    def _match(
        patterns: list[Pattern],
        as_name: str,
        orgs: Iterable[str],
        cnames: Iterable[str],
        asn: int | None = None,
    ) -> Match | None:
        orgs = [o for o in orgs if o]
        cnames = [c for c in cnames if c]
        for pattern in patterns:
            if asn is not None and asn in pattern.asns:
                return Match(pattern.name, f"AS{asn}" + (f" ({as_name})" if as_name else ""))
            if pattern.as_name and as_name and pattern.as_name.search(as_name):
                return Match(pattern.name, f"AS name {as_name}")
            for org in orgs:
                if pattern.org and pattern.org.search(org):
                    return Match(pattern.name, f"RDAP holder {org}")
            for cname in cnames:
                if pattern.cname and pattern.cname.search(cname):
                    return Match(pattern.name, f"CNAME {cname}")
        return None

    def cdn_of(
        self,
        as_name: str | None,
        orgs: Iterable[str],
        cnames: Iterable[str],
        asn: int | None = None,
    ) -> Match | None:
        match = self._match(self.cdn, as_name or "", orgs, cnames, asn)
        if match and match.name.startswith("a "):  # the generic rule: name the holder
            holder = next((o for o in orgs if o), None) or (as_name or match.name)
            return Match(holder, match.evidence)
        return match

    def shared_of(self, as_name: str | None, orgs: Iterable[str]) -> Match | None:
        match = self._match(self.shared, as_name or "", orgs, ())
        if match and match.name.startswith("a "):
            holder = next((o for o in orgs if o), None) or (as_name or match.name)
            return Match(holder, match.evidence)
        return match
