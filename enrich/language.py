"""Which language to write to a recipient in.

In order: the contact's own ``Preferred-Languages`` (security.txt, or the
CSIRT list); the site's country-code TLD; the network's RDAP country; the
default (English). A ``.jp`` site on a Japanese network is written to in
Japanese. The notifier falls back to English when it has no template for the
chosen language.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).with_name("data") / "languages.json"
_TAG = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$")


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, str], dict[str, str], frozenset[str]]:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    return data["countries"], data["cctld_country"], frozenset(data["vanity_cctlds"])


def normalise_tag(tag: str) -> str | None:
    """A BCP 47 tag reduced to its primary language (``ja-JP`` -> ``ja``), or None."""
    tag = (tag or "").strip().lower().replace("_", "-")
    if not _TAG.match(tag):
        return None
    primary = tag.split("-", 1)[0]
    return primary if primary not in ("und", "mul", "zxx") else None


def country_language(country: str | None) -> str | None:
    """The language for a country code (``JP`` -> ``ja``)."""
    if not country:
        return None
    return _tables()[0].get(country.strip().lower())


def cctld_country(host_or_suffix: str | None) -> str | None:
    """The country a host's TLD names (``www.shop.co.jp`` -> ``jp``), or None for gTLDs
    and vanity ccTLDs such as ``.io`` or ``.tv``."""
    if not host_or_suffix:
        return None
    tld = host_or_suffix.strip().lower().rstrip(".").rsplit(".", 1)[-1]
    _countries, cctld_map, vanity = _tables()
    if len(tld) != 2 or not tld.isalpha() or tld in vanity:
        return None
    return cctld_map.get(tld, tld)


@dataclass(frozen=True)
class Choice:
    language: str
    why: str  # preferred-languages | cctld | network-country | default


def choose(
    preferred: Iterable[str] = (),
    *,
    host: str | None = None,
    network_country: str | None = None,
    default: str = "en",
) -> Choice:
    """The recipient's language, and which rule chose it."""
    for tag in preferred:
        language = normalise_tag(tag)
        if language:
            return Choice(language, "preferred-languages")
    language = country_language(cctld_country(host))
    if language:
        return Choice(language, "cctld")
    language = country_language(network_country)
    if language:
        return Choice(language, "network-country")
    return Choice(normalise_tag(default) or "en", "default")
