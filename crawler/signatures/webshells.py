"""Webshells: the attacker's own control panel left on a compromised site.

A webshell page (WSO, b374k, Alfa and their many copies) shows three things no
legitimate page shows together: the server's system details (``uname``, PHP
version, safe mode, disabled functions), a file manager with Unix permission
strings and per-file actions, and a form that runs commands. A name alone
(``b374k``) is weaker evidence: a security blog may mention it; it counts only
with one of the three.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from crawler.signatures.behaviour import Facts, _ioc, _text_of
from crawler.signatures.verdict import Finding
from tocsin.urls import defang

_NAMED = re.compile(
    r"\bWSO\s*\d(\.\d+)*|\bb374k\b|\balfa\s*(team|shell)\b|~\s*ALFA\b|\bFilesMan\b|"
    r"\bIndoXploit\b|\bc99\s*shell\b|\br57\s*shell\b|\bMini\s*Shell\b",
    re.I,
)
_SYSINFO = re.compile(
    r"\buname\s*:|\bphp\s*(version)?\s*:\s*\d|\bsafe[_ ]?mode\s*:|disable[_ ]?functions\s*:|"
    r"open_basedir\s*:|\bserver\s*ip\s*:|\b(hdd|free)\s*:\s*[\d.]+\s*[GM]B",
    re.I,
)
_SYSINFO_CHEAP = re.compile(
    r"uname|safe[_ ]?mode|disable_?functions|php\s*version|server\s*ip|open_basedir|hdd", re.I
)
_PERMS = re.compile(r"(?<![\w-])[dl-][rwxsStT-]{9}(?![\w-])")
_CMD_FIELD = re.compile(
    r"<(input|textarea)[^>]+name\s*=\s*[\"']?(c|cmd|command|cmdexe|p1|exec|execute|shell)[\"'\s>]",
    re.I,
)
_CMD_WORDS = re.compile(
    r"\b(execute|run\s+command|command|console|terminal|self[- ]?remove|back[- ]?connect|"
    r"bind\s+port|reverse\s+shell)\b",
    re.I,
)
_FILE_ACTIONS = re.compile(r"\b(chmod|rename|touch|delete|edit|download|upload)\b", re.I)


def _signals(markup: str) -> dict[str, str]:
    """Which of the webshell signs a page shows, each with the text that showed it."""
    if not (_NAMED.search(markup) or _SYSINFO_CHEAP.search(markup)):
        return {}  # every verdict needs a name or system details: most pages stop here
    text = _text_of(markup)
    found: dict[str, str] = {}
    if named := _NAMED.search(markup):
        found["name"] = named.group(0)
    if sysinfo := _SYSINFO.search(text):
        found["system details"] = sysinfo.group(0)
    perms = _PERMS.findall(text)
    actions = {a.lower() for a in _FILE_ACTIONS.findall(text)}
    if len(perms) >= 3 and len(actions) >= 2:
        found["file manager"] = f"{len(perms)} files with permissions, {', '.join(sorted(actions))}"
    field = _CMD_FIELD.search(markup)
    if field and _CMD_WORDS.search(text):
        found["command form"] = f"a field named \u201c{field.group(2)}\u201d"
    return found


def webshell(facts: Facts) -> Iterator[Finding]:
    best: dict[str, str] = {}
    where = ""
    for label, markup in (
        (facts.where(), facts.served_html),
        (facts.where(facts.browser.get("final_url")), facts.browser.get("dom") or ""),
    ):
        if not markup.strip():
            continue
        found = _signals(markup[:500_000])
        if len(found) > len(best):
            best, where = found, label
    generic = [k for k in best if k != "name"]
    if not (("name" in best and generic) or len(generic) >= 3):
        return
    kind = best.get("name", "unnamed")
    details = "; ".join(f"{k}: {v}" for k, v in best.items())
    url = facts.item.final_url or facts.item.url
    finding = Finding(
        "tocsin.webshell",
        "webshell",
        "malicious",
        0.95 if "name" in best and len(generic) >= 2 else 0.9,
        [f"{defang(url)} ({where}) is a webshell's control panel ({details[:300]})"],
        cluster=[f"webshell:{re.sub(r'[^a-z0-9]+', '-', kind.lower())}"],
    )
    _ioc(finding, url)
    yield finding


CHECKS = (webshell,)
