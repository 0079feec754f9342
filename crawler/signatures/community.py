"""Community rule packs: fiddleitm (JSON) and IOK (Sigma-style YAML).

``signatures.community_rules`` lists files or folders; a ``.json`` file is a
fiddleitm rule list, a folder of ``.yml``/``.yaml`` files (or one such file) is
IOK. Both target what a browser sees, so they run over a check's page facts:
the served HTML, the final DOM, script and stylesheet bodies, the page title,
the hostname and every request URL.

How much they count is ``signatures.community_verdict``: by default a match
alone makes a page ``suspicious`` (third-party rules vary in quality, and a
notice must rest on our own checks) while adding to the evidence and rules of a
malicious verdict. Rules that only describe technique ("Obfuscation",
"Fingerprinting") are informational whatever the setting.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tocsin.errors import ConfigError

log = logging.getLogger("tocsin.signatures")

_INFO_ONLY = re.compile(r"obfuscation|fingerprint|google ad url|google captcha", re.I)
_FIDDLEITM_FAMILIES = (
    (re.compile(r"skimmer|magecart", re.I), "card-skimmer"),
    (
        re.compile(
            r"clearfake|socgholish|fake.?(chrome)?.?update|fakebat|clickfix|smartape|kongtuke|"
            r"coresec|binance|hacked site",
            re.I,
        ),
        "fake-update",
    ),
    (re.compile(r"\btds\b|keitaro|redirect", re.I), "malicious-redirect"),
    (re.compile(r"miner|coinhive", re.I), "cryptominer"),
    (
        re.compile(
            r"phish|tycoon|rockstar|mamba|sneaky|flowerstorm|greatness|voidproxy|kratos|"
            r"authenticator|techscam|2fa",
            re.I,
        ),
        "phishing",
    ),
    (re.compile(r"gootloader", re.I), "seo-cloaking"),
)


@dataclass
class PageText:
    """What community rules look at, per field."""

    html: str = ""
    dom: str = ""
    js: list[str] = field(default_factory=list)
    css: list[str] = field(default_factory=list)
    title: str = ""
    hostname: str = ""
    requests: list[str] = field(default_factory=list)
    cookies: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)

    def field(self, name: str) -> list[str]:
        value = {
            "html": [self.html],
            "dom": [self.dom],
            "js": self.js,
            "css": self.css,
            "title": [self.title],
            "hostname": [self.hostname],
            "requests": self.requests,
            "cookies": self.cookies,
            "headers": self.headers,
            "response_body": [self.html, self.dom, *self.js],
            "full_url": self.requests,
        }.get(name)
        if value is None:  # unknown IOK fields (favicon hashes, form structure...)
            value = [self.dom or self.html]
        return [v for v in value if v]


@dataclass
class CommunityRule:
    rule: str  # fiddleitm:<name> | iok:<file stem>
    title: str
    family: str | None
    info_only: bool
    test: Callable[[PageText], bool]


# --------------------------------------------------------------------------- fiddleitm


def _fiddleitm_condition(cond: dict[str, Any]) -> Callable[[PageText], bool]:
    key, kind, value = cond.get("key", ""), cond.get("type", "string"), str(cond.get("value", ""))
    if kind == "regex":
        try:
            pattern = re.compile(value)
        except re.error:
            pattern = re.compile(re.escape(value))
        return lambda page: any(pattern.search(text) for text in page.field(key))
    return lambda page: any(value in text for text in page.field(key))


def load_fiddleitm(path: Path) -> list[CommunityRule]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError("signatures.community_rules", f"{path}: {exc}") from None
    rules = []
    for entry in data if isinstance(data, list) else []:
        name = str(entry.get("rule_name", "")).strip()
        alternatives = [
            [_fiddleitm_condition(c) for c in group]
            for group in entry.get("conditions", [])
            if isinstance(group, list) and group
        ]
        if not name or not alternatives:
            continue

        def test(
            page: PageText, alternatives: list[list[Callable[[PageText], bool]]] = alternatives
        ) -> bool:
            return any(all(check(page) for check in group) for group in alternatives)

        family = next((fam for pattern, fam in _FIDDLEITM_FAMILIES if pattern.search(name)), None)
        rules.append(
            CommunityRule(
                rule=f"fiddleitm:{name}",
                title=name,
                family=family or "injected-script",
                info_only=bool(_INFO_ONLY.search(name)),
                test=test,
            )
        )
    return rules


# --------------------------------------------------------------------------- IOK (Sigma)


def _value_test(modifiers: list[str], value: Any) -> Callable[[str], bool]:
    text = str(value)
    if "re" in modifiers:
        try:
            pattern = re.compile(text, re.I | re.S)
        except re.error:
            pattern = re.compile(re.escape(text), re.I)
        return lambda s: bool(pattern.search(s))
    needle = text.lower()
    if "contains" in modifiers:
        return lambda s: needle in s.lower()
    if "startswith" in modifiers:
        return lambda s: s.lower().startswith(needle)
    if "endswith" in modifiers:
        return lambda s: s.lower().endswith(needle)
    if "*" in needle or "?" in needle:
        return lambda s: fnmatch.fnmatchcase(s.lower(), needle)
    return lambda s: s.lower().strip() == needle


def _field_test(key: str, value: Any) -> Callable[[PageText], bool]:
    name, *modifiers = key.split("|")
    values = value if isinstance(value, list) else [value]
    tests = [_value_test(modifiers, v) for v in values if v is not None]
    combine = all if "all" in modifiers else any

    def test(page: PageText) -> bool:
        texts = page.field(name)
        return bool(tests) and combine(any(t(text) for text in texts) for t in tests)

    return test


def _selection_test(selection: Any) -> Callable[[PageText], bool]:
    if isinstance(selection, list):  # a list of maps (or values): any of them
        parts = [_selection_test(s) for s in selection]
        return lambda page: any(p(page) for p in parts)
    if isinstance(selection, dict):  # a map: all of its fields
        parts = [_field_test(str(k), v) for k, v in selection.items()]
        return lambda page: all(p(page) for p in parts)
    needle = str(selection).lower()  # a bare keyword: anywhere in the page
    return lambda page: needle in (page.dom or page.html).lower()


_TOKEN = re.compile(r"\(|\)|\bnot\b|\band\b|\bor\b|(?:all|any|\d+)\s+of\s+[\w*]+|[\w*]+", re.I)


def _condition(
    text: str, names: dict[str, Callable[[PageText], bool]]
) -> Callable[[PageText], bool]:
    """Parse a Sigma condition (and, or, not, parentheses, ``N of x*``, ``all of them``)."""
    tokens = _TOKEN.findall(text)
    pos = 0

    def peek() -> str | None:
        return tokens[pos].lower() if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def group(token: str) -> Callable[[PageText], bool]:
        count, _, pattern = token.lower().split(None, 2)
        chosen = [
            fn
            for name, fn in names.items()
            if pattern == "them" or fnmatch.fnmatchcase(name.lower(), pattern)
        ]
        if count == "all":
            return lambda page: bool(chosen) and all(fn(page) for fn in chosen)
        need = 1 if count == "any" else int(count)
        return lambda page: sum(1 for fn in chosen if fn(page)) >= need

    def atom() -> Callable[[PageText], bool]:
        token = take()
        low = token.lower()
        if low == "(":
            inner = disjunction()
            if peek() == ")":
                take()
            return inner
        if low == "not":
            inner = atom()
            return lambda page: not inner(page)
        if " of " in low:
            return group(token)
        if token in names:
            return names[token]
        raise ValueError(f"unknown selection {token!r}")

    def conjunction() -> Callable[[PageText], bool]:
        parts = [atom()]
        while peek() == "and":
            take()
            parts.append(atom())
        return lambda page: all(p(page) for p in parts)

    def disjunction() -> Callable[[PageText], bool]:
        parts = [conjunction()]
        while peek() == "or":
            take()
            parts.append(conjunction())
        return lambda page: any(p(page) for p in parts)

    result = disjunction()
    if pos != len(tokens):
        raise ValueError(f"unexpected {tokens[pos]!r}")
    return result


def load_iok_file(path: Path) -> CommunityRule | None:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        detection = dict(doc["detection"])
        condition = str(detection.pop("condition"))
        names = {str(k): _selection_test(v) for k, v in detection.items()}
        test = _condition(condition, names)
    except Exception as exc:
        log.debug("IOK rule %s skipped: %s", path.name, exc)
        return None
    tags = [str(t) for t in doc.get("tags") or []]
    family = "seo-cloaking" if "cloaking" in tags else "phishing"
    return CommunityRule(
        rule=f"iok:{path.stem}",
        title=str(doc.get("title") or path.stem),
        family=family,
        info_only=False,
        test=test,
    )


def load(paths: Iterable[str]) -> list[CommunityRule]:
    """Every rule under ``signatures.community_rules``."""
    rules: list[CommunityRule] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted([*path.rglob("*.yml"), *path.rglob("*.yaml"), *path.rglob("*.json")])
        elif path.is_file():
            files = [path]
        else:
            raise ConfigError("signatures.community_rules", f"no such file or folder: {raw}")
        for file in files:
            if file.suffix == ".json":
                rules.extend(load_fiddleitm(file))
            else:
                found = load_iok_file(file)
                if found is not None:
                    rules.append(found)
    return rules
