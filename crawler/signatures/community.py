"""Community rule packs: fiddleitm (JSON) and IOK (Sigma-style YAML).

A ``.json`` file is a fiddleitm rule list; a folder of ``.yml``/``.yaml`` files (or
one such file) is IOK. The packs bundled with tocsin, and the copies ``tocsin rules
update`` fetches, are found by :mod:`crawler.signatures.rulepacks`;
``signatures.community_rules`` adds files or folders of one's own. Both formats
target what a browser sees, so they run over a check's page facts: the served HTML,
the final DOM, script and stylesheet bodies, the page title, the hostname and
every request URL.

How much they count is ``signatures.community_verdict``: by default a match
alone makes a page ``suspicious`` (third-party rules vary in quality, and a
notice must rest on our own checks) while adding to the evidence and rules of a
malicious verdict. Rules that only describe technique ("Obfuscation",
"Fingerprinting") are informational whatever the setting.

Regular expressions are third-party input that runs over attacker pages, so they
run under the ``regex`` module with a timeout (:data:`REGEX_TIMEOUT` per search,
:data:`PAGE_BUDGET` for all rules over one page), and a pattern that backtracks
catastrophically on a probe string is refused when the pack is read.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex
import yaml

from tocsin.errors import ConfigError

log = logging.getLogger("tocsin.signatures")

REGEX_TIMEOUT = 0.25  # seconds one search may take before it counts as no match
PAGE_BUDGET = 5.0  # seconds all community rules may take over one page
PROBE_TIMEOUT = 0.1  # a pattern slower than this on a probe string is refused at load
_PROBE_LENGTH = 4000
_EXCERPT = 40  # characters of context either side of a match

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


class RuleError(ValueError):
    """One rule of a pack that cannot be used: which, and why."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"rule {rule}: {reason}")
        self.rule = rule
        self.reason = reason


@dataclass(frozen=True)
class Hit:
    """Why a rule matched: the page field and the matched text with some context."""

    field: str
    excerpt: str


Result = list[Hit] | None  # None: no match; a list (maybe empty): a match, and why


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
    deadline: float | None = None  # time.monotonic() after which regexes stop
    _fields: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _lower: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def field(self, name: str) -> list[str]:
        """The texts of one field (computed once: set the fields before the first test)."""
        cached = self._fields.get(name)
        if cached is None:
            cached = self._fields[name] = self._field(name)
        return cached

    def _field(self, name: str) -> list[str]:
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

    def lowered(self, name: str) -> list[str]:
        """``field(name)`` in lower case, computed once per page (a DOM runs to megabytes)."""
        cached = self._lower.get(name)
        if cached is None:
            cached = self._lower[name] = [text.lower() for text in self.field(name)]
        return cached

    def regex_timeout(self) -> float:
        if self.deadline is None:
            return REGEX_TIMEOUT
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the page's community-rule time budget is spent")
        return min(REGEX_TIMEOUT, left)


@dataclass
class CommunityRule:
    rule: str  # fiddleitm:<name> | iok:<file stem>
    title: str
    family: str | None
    info_only: bool
    explain: Callable[[PageText], Result]
    source: str = ""  # the file it was read from
    digest: str = ""  # of its definition: tells a modified rule on update

    def test(self, page: PageText) -> bool:
        return self.explain(page) is not None


def _hit(name: str, text: str, start: int, end: int) -> Hit:
    left = max(0, start - _EXCERPT)
    excerpt = text[left : min(end, start + 200) + _EXCERPT]
    return Hit(name, ("…" if left else "") + excerpt + ("…" if end + _EXCERPT < len(text) else ""))


def _probes(pattern: str) -> list[str]:
    """Strings that make a backtracking pattern blow up: runs of the characters it names."""
    chars = dict.fromkeys(c for c in pattern if c.isalnum() or c in " -_./=<>\"'%")
    chars.update(dict.fromkeys("a1 "))
    return [c * _PROBE_LENGTH + "\x00!" for c in list(chars)[:12]]


@functools.lru_cache(maxsize=4096)
def compile_regex(pattern: str, flags: int = 0) -> regex.Pattern[str]:
    """Compile and probe ``pattern``; raise ValueError if it is invalid or backtracks
    catastrophically (``(a+)+$`` on a run of ``a``)."""
    try:
        compiled = regex.compile(pattern, flags)
    except (regex.error, ValueError, OverflowError) as exc:
        raise ValueError(f"bad regex {pattern[:100]!r}: {exc}") from None
    for probe in _probes(pattern):
        try:
            compiled.search(probe, timeout=PROBE_TIMEOUT)
        except TimeoutError:
            raise ValueError(
                f"regex {pattern[:100]!r} backtracks catastrophically (over {PROBE_TIMEOUT} s "
                f"on {_PROBE_LENGTH} characters of {probe[0]!r})"
            ) from None
    return compiled


# --------------------------------------------------------------------------- fiddleitm


def _fiddleitm_condition(cond: Any) -> Callable[[PageText], Result]:
    if not isinstance(cond, dict):
        raise ValueError(f"a condition must be an object, got {cond!r:.60}")
    key, kind, value = cond.get("key", ""), cond.get("type", "string"), str(cond.get("value", ""))
    if not key or not value:
        raise ValueError(f"a condition needs a key and a value, got {cond!r:.100}")
    if kind == "regex":
        pattern = compile_regex(value)

        def search(page: PageText) -> Result:
            for text in page.field(key):
                match = pattern.search(text, timeout=page.regex_timeout(), concurrent=True)
                if match:
                    return [_hit(key, text, *match.span())]
            return None

        return search
    if kind != "string":
        raise ValueError(f"unknown condition type {kind!r:.40}")

    def contains(page: PageText) -> Result:
        for text in page.field(key):
            at = text.find(value)
            if at >= 0:
                return [_hit(key, text, at, at + len(value))]
        return None

    return contains


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def load_fiddleitm(path: Path, problems: list[RuleError] | None = None) -> list[CommunityRule]:
    """The rules of a fiddleitm ``rules.json``; a rule that cannot be used goes to
    ``problems`` (or is logged) and is left out."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError("signatures.community_rules", f"{path}: {exc}") from None
    if not isinstance(data, list):
        raise ConfigError("signatures.community_rules", f"{path}: not a fiddleitm rule list")
    rules = []
    for number, entry in enumerate(data, 1):
        name = str(entry.get("rule_name", "")).strip() if isinstance(entry, dict) else ""
        try:
            if not name:
                raise RuleError(f"#{number}", "no rule_name")
            groups = entry.get("conditions")
            if not isinstance(groups, list) or not groups:
                raise RuleError(name, "no conditions")
            alternatives = [
                [_fiddleitm_condition(c) for c in group]
                for group in groups
                if isinstance(group, list) and group
            ]
            if not alternatives:
                raise RuleError(name, "no conditions")
        except RuleError as exc:
            _problem(exc, path, problems)
            continue
        except ValueError as exc:
            _problem(RuleError(name, str(exc)), path, problems)
            continue

        def explain(
            page: PageText, alternatives: list[list[Callable[[PageText], Result]]] = alternatives
        ) -> Result:
            for group in alternatives:
                hits: list[Hit] = []
                for check in group:
                    found = check(page)
                    if found is None:
                        break
                    hits.extend(found)
                else:
                    return hits
            return None

        family = next((fam for pattern, fam in _FIDDLEITM_FAMILIES if pattern.search(name)), None)
        rules.append(
            CommunityRule(
                rule=f"fiddleitm:{name}",
                title=name,
                family=family or "injected-script",
                info_only=bool(_INFO_ONLY.search(name)),
                explain=explain,
                source=str(path),
                digest=_digest(json.dumps(entry, sort_keys=True).encode()),
            )
        )
    return rules


def _problem(error: RuleError, path: Path, problems: list[RuleError] | None) -> None:
    if problems is None:
        log.warning("community rule %s (%s) left out: %s", error.rule, path.name, error.reason)
    else:
        problems.append(error)


# --------------------------------------------------------------------------- IOK (Sigma)

Matcher = Callable[[str, str], tuple[int, int] | None]  # (text, lowered) -> span


def _value_test(modifiers: list[str], value: Any) -> Callable[[PageText, str, str, str], Result]:
    text = str(value)
    if "re" in modifiers:
        pattern = compile_regex(text, regex.I | regex.S)

        def search(page: PageText, name: str, raw: str, low: str) -> Result:
            match = pattern.search(raw, timeout=page.regex_timeout(), concurrent=True)
            return [_hit(name, raw, *match.span())] if match else None

        return search
    needle = text.lower()
    matcher: Matcher
    if "contains" in modifiers:

        def matcher(raw: str, low: str) -> tuple[int, int] | None:
            at = low.find(needle)
            return (at, at + len(needle)) if at >= 0 else None

    elif "startswith" in modifiers:

        def matcher(raw: str, low: str) -> tuple[int, int] | None:
            return (0, len(needle)) if low.startswith(needle) else None

    elif "endswith" in modifiers:

        def matcher(raw: str, low: str) -> tuple[int, int] | None:
            return (len(low) - len(needle), len(low)) if low.endswith(needle) else None

    elif "*" in needle or "?" in needle:

        def matcher(raw: str, low: str) -> tuple[int, int] | None:
            return (0, len(low)) if fnmatch.fnmatchcase(low, needle) else None

    else:

        def matcher(raw: str, low: str) -> tuple[int, int] | None:
            return (0, len(low)) if low.strip() == needle else None

    def test(page: PageText, name: str, raw: str, low: str) -> Result:
        span = matcher(raw, low)
        if span is None:
            return None
        shown = raw if len(raw) == len(low) else low  # lower() changed lengths: show that
        return [_hit(name, shown, *span)]

    return test


def _field_test(key: str, value: Any) -> Callable[[PageText], Result]:
    name, *modifiers = key.split("|")
    values = value if isinstance(value, list) else [value]
    tests = [_value_test(modifiers, v) for v in values if v is not None]
    need_all = "all" in modifiers

    def explain(page: PageText) -> Result:
        if not tests:
            return None
        raws, lows = page.field(name), page.lowered(name)
        hits: list[Hit] = []
        for value_test in tests:
            found = None
            for i in range(len(raws)):
                found = value_test(page, name, raws[i], lows[i])
                if found is not None:
                    break
            if found is None and need_all:
                return None
            if found is not None:
                hits.extend(found)
                if not need_all:
                    return hits
        return hits if need_all else None

    return explain


def _selection_test(selection: Any) -> Callable[[PageText], Result]:
    if isinstance(selection, list):  # a list of maps (or values): any of them
        parts = [_selection_test(s) for s in selection]

        def any_of(page: PageText) -> Result:
            return next((found for p in parts if (found := p(page)) is not None), None)

        return any_of
    if isinstance(selection, dict):  # a map: all of its fields
        parts = [_field_test(str(k), v) for k, v in selection.items()]
        return _all_of(parts)
    needle = str(selection).lower()  # a bare keyword: anywhere in the page

    def keyword(page: PageText) -> Result:
        name = "dom" if page.dom else "html"
        raw, low = (page.field(name) or [""])[0], (page.lowered(name) or [""])[0]
        at = low.find(needle)
        return (
            [_hit(name, raw if len(raw) == len(low) else low, at, at + len(needle))]
            if (needle and at >= 0)
            else None
        )

    return keyword


def _all_of(parts: list[Callable[[PageText], Result]]) -> Callable[[PageText], Result]:
    def all_of(page: PageText) -> Result:
        hits: list[Hit] = []
        for part in parts:
            found = part(page)
            if found is None:
                return None
            hits.extend(found)
        return hits

    return all_of


_TOKEN = re.compile(r"\(|\)|\bnot\b|\band\b|\bor\b|(?:all|any|\d+)\s+of\s+[\w*]+|[\w*]+", re.I)


def _condition(
    text: str, names: dict[str, Callable[[PageText], Result]]
) -> Callable[[PageText], Result]:
    """Parse a Sigma condition (and, or, not, parentheses, ``N of x*``, ``all of them``)."""
    tokens = _TOKEN.findall(text)
    pos = 0

    def peek() -> str | None:
        return tokens[pos].lower() if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError(f"condition {text!r:.100} ends too early")
        pos += 1
        return tokens[pos - 1]

    def group(token: str) -> Callable[[PageText], Result]:
        count, _, pattern = token.lower().split(None, 2)
        chosen = [
            fn
            for name, fn in names.items()
            if pattern == "them" or fnmatch.fnmatchcase(name.lower(), pattern)
        ]
        if not chosen:
            raise ValueError(f"{token!r} names no selection")
        if count == "all":
            return _all_of(chosen)
        need = 1 if count == "any" else int(count)

        def some_of(page: PageText) -> Result:
            hits: list[Hit] = []
            matched = 0
            for fn in chosen:
                found = fn(page)
                if found is not None:
                    matched += 1
                    hits.extend(found)
                    if matched >= need:
                        return hits
            return None

        return some_of

    def atom() -> Callable[[PageText], Result]:
        token = take()
        low = token.lower()
        if low == "(":
            inner = disjunction()
            if peek() == ")":
                take()
            return inner
        if low == "not":
            negated = atom()
            return lambda page: [] if negated(page) is None else None
        if " of " in low:
            return group(token)
        if token in names:
            return names[token]
        raise ValueError(f"unknown selection {token!r}")

    def conjunction() -> Callable[[PageText], Result]:
        parts = [atom()]
        while peek() == "and":
            take()
            parts.append(atom())
        return parts[0] if len(parts) == 1 else _all_of(parts)

    def disjunction() -> Callable[[PageText], Result]:
        parts = [conjunction()]
        while peek() == "or":
            take()
            parts.append(conjunction())
        if len(parts) == 1:
            return parts[0]
        return lambda page: next((found for p in parts if (found := p(page)) is not None), None)

    result = disjunction()
    if pos != len(tokens):
        raise ValueError(f"unexpected {tokens[pos]!r} in the condition")
    return result


_TAB = "\ue000"  # stands in for a TAB that PyYAML refuses where Go's YAML takes it


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ten times faster


def _yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        if "\t" not in text:
            raise
    return _untab(yaml.load(text.replace("\t", _TAB), Loader=_LOADER))  # noqa: S506


def _untab(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(_TAB, "\t")
    if isinstance(value, list):
        return [_untab(v) for v in value]
    if isinstance(value, dict):
        return {_untab(k): _untab(v) for k, v in value.items()}
    return value


def load_iok_file(path: Path, problems: list[RuleError] | None = None) -> CommunityRule | None:
    """One IOK indicator, or None (the reason goes to ``problems``, or the log)."""
    try:
        raw = path.read_bytes()
        doc = _yaml(raw.decode("utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("detection"), dict):
            raise ValueError("no detection map")
        detection = dict(doc["detection"])
        if "condition" not in detection:
            raise ValueError("no condition")
        condition = str(detection.pop("condition"))
        names = {str(k): _selection_test(v) for k, v in detection.items()}
        explain = _condition(condition, names)
    except Exception as exc:  # YAML, encoding, regex, condition: the rule is unusable
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        _problem(RuleError(path.stem, reason), path, problems)
        return None
    tags = [str(t) for t in doc.get("tags") or []]
    family = "seo-cloaking" if "cloaking" in tags else "phishing"
    return CommunityRule(
        rule=f"iok:{path.stem}",
        title=str(doc.get("title") or path.stem),
        family=family,
        info_only=False,
        explain=explain,
        source=str(path),
        digest=_digest(raw),
    )


def load(
    paths: Iterable[str | Path], problems: list[RuleError] | None = None
) -> list[CommunityRule]:
    """Every rule in these files and folders (fiddleitm ``.json``, IOK ``.yml``)."""
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
                rules.extend(load_fiddleitm(file, problems))
            else:
                found = load_iok_file(file, problems)
                if found is not None:
                    rules.append(found)
    return rules
