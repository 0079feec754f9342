"""Making attacker-supplied text safe to put in a notice.

Hostnames, titles, URLs and evidence lines come from compromised pages. In a
notice they must never break out of their line (CR/LF could forge headers or
paragraphs), carry invisible direction overrides (which can make a URL read
backwards), run on without bound, or be clickable. Everything a template
prints from the store goes through :func:`one_line`; URLs and hosts through
:func:`defang` / :func:`defang_host` as well.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from tocsin.safe_text import csv_cell as neutral_cell

_SPACES = re.compile(r"\s+")
_ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})$"
)


def one_line(value: object, limit: int = 300) -> str:
    """One printable line: control and format characters dropped, whitespace collapsed.

    Unicode categories Cc (controls, CR, LF, NUL) and Cf (format: bidi
    overrides, zero-width joiners) are removed, as are line and paragraph
    separators; the result is cut to ``limit`` characters with an ellipsis.
    """
    if value is None:
        return ""
    text = str(value)
    if text.isprintable():  # the common case: no controls, format or odd spaces
        cleaned = text.strip()
        if "  " in cleaned:
            cleaned = _SPACES.sub(" ", cleaned)
        if len(cleaned) > limit:
            cleaned = cleaned[: max(limit - 1, 0)].rstrip() + "…"
        return cleaned
    cleaned = "".join(
        " " if ch in "\t\r\n\u2028\u2029\x0b\x0c\x85" else ch
        for ch in text
        if ch in "\t\r\n\u2028\u2029\x0b\x0c\x85" or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    cleaned = _SPACES.sub(" ", cleaned).strip()
    if len(cleaned) > limit:
        cleaned = cleaned[: max(limit - 1, 0)].rstrip() + "…"
    return cleaned


def server_text(value: bytes | str, limit: int = 500) -> str:
    """What a mail server said (SMTP reply, IMAP error), decoded, as one printable line."""
    return one_line(value.decode("utf-8", "replace") if isinstance(value, bytes) else value, limit)


def _defang_fallback(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return defang_host(url)
    host, slash, path = rest.partition("/")
    scheme = {"http": "hxxp", "https": "hxxps"}.get(scheme.lower(), scheme)
    return f"{scheme}://{defang_host(host)}{slash}{path}"


@lru_cache(maxsize=16384)  # pure; a notice defangs each URL twice (text and CSV)
def defang(url: object, limit: int = 400) -> str:
    """``http://evil.example/x`` -> ``hxxp://evil[.]example/x``, on one bounded line.

    Uses the ingest stage's ``tocsin.urls.defang`` when it is there, so every
    stage defangs alike.
    """
    text = one_line(url, limit=limit * 2)
    try:
        from tocsin.urls import defang as shared_defang  # the ingest stage's
    except ImportError:
        defanged = _defang_fallback(text)
    else:
        try:
            defanged = shared_defang(text)
        except Exception:
            defanged = _defang_fallback(text)
    return one_line(defanged, limit=limit)


_URL_IN_TEXT = re.compile(r"\b(?:https?|ftp|wss?)://[^\s<>\"']+", re.IGNORECASE)


def defang_text(value: object, limit: int = 500) -> str:
    """One line of free text (an evidence line) with every URL in it defanged."""
    text = one_line(value, limit=limit * 2)
    return one_line(_URL_IN_TEXT.sub(lambda m: defang(m.group(0)), text), limit=limit)


@lru_cache(maxsize=16384)
def defang_host(host: object) -> str:
    """``shop.example.com`` -> ``shop[.]example[.]com``; IPs keep their dots but get one bracket."""
    text = one_line(host, limit=255)
    return text.replace("[.]", ".").replace(".", "[.]")


def valid_address(address: str) -> bool:
    """A plain ``local@domain`` address with nothing that could bend a header or a command."""
    return bool(address) and len(address) <= 254 and bool(_ADDRESS.match(address))


def csv_cell(value: object) -> str:
    """A notice's CSV cell: one bounded line that a spreadsheet will not execute."""
    return neutral_cell(one_line(value, limit=2000))
