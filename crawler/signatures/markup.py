"""Text, text blocks and links of attacker-controlled HTML, without ever raising.

lxml refuses strings with NUL or other C0 control bytes ("All strings must be
XML compatible") and raises on empty or odd documents. One such byte after a
``<script>`` once made the cloaking check raise and be skipped, so a cloaked
site was judged clean. Here control bytes are dropped before parsing (except
tab, newline, carriage return), and whatever still fails to parse falls back
to a tag-stripping regex, so callers always get an answer.
"""

from __future__ import annotations

import html as html_lib
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

from lxml import etree
from lxml import html as lxml_html

# C0 controls except \t \n \r, DEL, the C1 range, lone surrogates and non-characters
# that libxml2 rejects.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_TAG = re.compile(r"<[^>]*>")
_DROP_BLOCKS = re.compile(r"<(script|style|noscript|template)\b.*?</\1\s*>", re.I | re.S)
_HREF = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*["']?([^"'\s>]+)""", re.I)
_LANG = re.compile(r"""<html\b[^>]*?\blang\s*=\s*["']?([A-Za-z]{2,3})""", re.I)
MAX_LINKS = 2000
log = logging.getLogger("tocsin.signatures")
MAX_BLOCKS = 5000


def clean_markup(markup: str) -> str:
    """``markup`` without the control bytes libxml2 refuses."""
    return _CONTROL.sub(" ", markup or "")


@dataclass
class PageText:
    """What a reader and a crawler take from a page: its words, blocks and links."""

    text: str = ""
    blocks: list[str] = field(default_factory=list)  # visible text runs, whitespace-normalised
    links: list[str] = field(default_factory=list)  # absolute <a href> targets, in order
    lang: str = ""  # the <html lang> primary subtag, lower case, or ""
    parsed: bool = True  # False: the regex fallback was used


def _norm(text: str) -> str:
    return " ".join(text.split())


def _parse(markup: str) -> etree._Element | None:
    try:
        return lxml_html.document_fromstring(markup)
    except (ValueError, etree.ParserError, etree.XMLSyntaxError, TypeError):
        return None


def extract(markup: str | bytes | None, base: str = "") -> PageText:
    """The visible text, text blocks, links and language of ``markup``; never raises."""
    if isinstance(markup, bytes):
        markup = markup.decode("utf-8", "replace")
    markup = clean_markup(markup or "")
    if not markup.strip():
        return PageText()
    try:
        doc = _parse(markup)
        if doc is not None:
            return _from_tree(doc, base)
    except Exception:  # a hostile page must not break the check
        log.debug("markup: the tree parse failed; reading by regex", exc_info=True)
    return _from_regex(markup, base)


def _from_tree(doc: etree._Element, base: str) -> PageText:
    lang = (doc.get("lang") or "").split("-")[0].lower() if doc.tag == "html" else ""
    links: list[str] = []
    for href in doc.xpath("//a/@href|//area/@href")[:MAX_LINKS]:
        url = _absolute(base, str(href))
        if url:
            links.append(url)
    for node in doc.xpath("//script|//style|//noscript|//template"):
        node.drop_tree()  # keeps the tail: text after a </script> is still read
    blocks: list[str] = []
    for text in doc.itertext():
        if text.strip():
            blocks.append(_norm(text))
            if len(blocks) >= MAX_BLOCKS:
                break
    return PageText(" ".join(blocks), blocks, links, lang)


def _from_regex(markup: str, base: str) -> PageText:
    lang_match = _LANG.search(markup)
    body = _DROP_BLOCKS.sub(" ", markup)
    blocks = [_norm(html_lib.unescape(part)) for part in _TAG.split(body) if part.strip()][
        :MAX_BLOCKS
    ]
    links = [
        url for url in (_absolute(base, html_lib.unescape(h)) for h in _HREF.findall(markup)) if url
    ][:MAX_LINKS]
    lang = lang_match.group(1).lower() if lang_match else ""
    return PageText(" ".join(blocks), blocks, links, lang, parsed=False)


def _absolute(base: str, href: str) -> str:
    href = href.strip()
    if not href or href.startswith(("#", "javascript:", "mailto:", "tel:", "data:")):
        return ""
    try:
        return urljoin(base, href)
    except ValueError:
        return ""
