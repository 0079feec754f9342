"""SEO cloaking: what search engines get that a visitor does not, and whether it is spam.

A clean shop may serve search engines a pre-rendered copy of its single-page
app (dynamic rendering) while a plain fetch gets an empty shell. Comparing the
Googlebot copy with that shell, and counting words like "cheap" or "ブランド",
once reported a clean Japanese shop to its provider. So the copies a search
engine (``bot``) and a visitor from a search page (``referer``) get are
compared with the page **Chromium rendered** (plus the plain copy), and only
two things make it cloaking:

- an outbound **link farm**: many links to other registrable domains that the
  rendered page does not link to (a sister domain with the same name on another
  suffix, as in a language switcher, is the site's own);
- **foreign-language spam**: text the rendered page does not have, in another
  language or script than the page's, with pharma, casino, counterfeit-brand,
  adult or loan terms in context (a brand *next to* "replica", not "brand" alone).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crawler.signatures.domains import host_of, registered_domain
from crawler.signatures.markup import PageText, extract
from crawler.signatures.verdict import Finding
from tocsin.urls import defang

if TYPE_CHECKING:
    from crawler.signatures.behaviour import Facts

# A link farm: at least this many distinct new outbound URLs, or this many new domains.
FARM_MIN_LINKS = 10
FARM_MIN_DOMAINS = 6
# Foreign-language spam: at least this many lexicon hits in the added text.
SPAM_MIN_HITS = 3
# Added text shorter than this (letters) is too little to tell its language.
LANG_MIN_LETTERS = 20

_BRANDS = (
    r"louis\s*vuitton|vuitton|rolex|gucci|chanel|herm[eè]s|prada|cartier|dior|balenciaga|"
    r"ルイ\s*ヴィトン|ヴィトン|エルメス|シャネル|グッチ|ロレックス|プラダ|カルティエ|"
    r"路易威登|劳力士|香奈儿|古驰|爱马仕|루이비통|롤렉스|샤넬|구찌|에르메스|"
    r"луи\s*виттон|ролекс|шанель|гуччи"
)
_FAKE = (
    r"replica|fake|knock-?offs?|counterfeit|imitat\w*|r[ée]plicas?|fälschung\w*|"
    r"スーパーコピー|コピー品|偽物|n級|高仿|仿品|精仿|复刻|a货|레플리카|짝퉁|реплик\w*|подделк\w*"
)
# Terms that are spam on their own (none of them is an ordinary shop word).
_STRONG = re.compile(
    r"viagra|cialis|levitra|kamagra|sildenafil|tadalafil|vardenafil|priligy|"
    r"(online|canadian|cheap)\s+pharmacy|without\s+(a\s+)?prescription|no\s+prescription|"
    r"rezeptfrei|sans\s+ordonnance|sin\s+receta|sem\s+receita|バイアグラ|シアリス|"
    r"伟哥|威而钢|万艾可|비아그라|시알리스|виагр\w*|сиалис\w*|"
    r"online[\s-]*casino|casino[\s-]*online|live\s+casino|slot\s*gacor|judi\s+(online|slot|bola)|"
    r"situs\s+(slot|judi)|free\s+spins|no\s+deposit\s+bonus|sportwetten|casino\s+en\s+ligne|"
    r"apuestas\s+deportivas|オンラインカジノ|カジノ|在线赌场|博彩|百家乐|赌博|真人娱乐|"
    r"온라인\s*카지노|카지노|바카라|토토사이트|онлайн[\s-]*казино|казино|букмекер\w*|"
    r"payday\s+loans?|porn\w*|xxx|escort\s+service|成人视频|アダルト動画|야동|порно|"
    r"スーパーコピー|偽物|n級品|高仿|짝퉁|"
    rf"(?:{_BRANDS}).{{0,40}}?(?:{_FAKE})|(?:{_FAKE}).{{0,40}}?(?:{_BRANDS})",
    re.I | re.S,
)

_STOPWORD_LINES = """
en: the and of to for with is are your our you this that from on in
de: der die das und mit für ist nicht sie wir ein eine zu auf den dem ihre
fr: le les et des pour avec est une du vous nos dans sur au aux votre
es: el los las y para con es una del por su nuestros en al sus usted
pt: o os as e para com é um uma do da em seu nossos ao dos das você
nl: het en van een voor met is op zijn wij onze je uw niet bij
it: il gli e di per con è un una del della nostri sono che nel
id: dan yang di untuk dengan ini itu dari ke kami anda terpercaya
"""
_STOPWORDS = {
    lang: frozenset(words.split())
    for lang, words in (line.split(":") for line in _STOPWORD_LINES.strip().splitlines())
}
_WORD = re.compile(r"[^\W\d_]+", re.U)
LANG_NAMES = {
    "ja": "Japanese", "zh": "Chinese", "ko": "Korean", "ru": "Russian", "en": "English",
    "de": "German", "fr": "French", "es": "Spanish", "pt": "Portuguese", "nl": "Dutch",
    "it": "Italian", "id": "Indonesian", "latin": "Latin-script", "ar": "Arabic",
    "th": "Thai", "el": "Greek",
}  # fmt: skip
_NON_LATIN = {"ja", "zh", "ko", "ru", "ar", "th", "el", "uk", "bg", "he", "hi", "fa"}


def script_counts(text: str) -> Counter[str]:
    """Letters of ``text`` by script: kana, han, hangul, cyrillic, latin, arabic, thai, greek."""
    counts: Counter[str] = Counter()
    for ch in text:
        o = ord(ch)
        if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9D:
            counts["kana"] += 1
        elif 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF:
            counts["han"] += 1
        elif 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF:
            counts["hangul"] += 1
        elif 0x0400 <= o <= 0x04FF:
            counts["cyrillic"] += 1
        elif 0x0600 <= o <= 0x06FF:
            counts["arabic"] += 1
        elif 0x0E00 <= o <= 0x0E7F:
            counts["thai"] += 1
        elif 0x0370 <= o <= 0x03FF:
            counts["greek"] += 1
        elif ch.isalpha() and o < 0x250:
            counts["latin"] += 1
    return counts


def language_of(text: str) -> str:
    """A best guess at ``text``'s language: an ISO 639-1 code, ``latin`` or ``""``.

    By script first (kana means Japanese, hangul Korean, han alone Chinese,
    cyrillic Russian), then, for Latin script, by common short words. ``""``:
    too little text to tell.
    """
    counts = script_counts(text)
    total = sum(counts.values())
    if total < LANG_MIN_LETTERS:
        return ""
    if (
        counts["kana"] >= 0.1 * (counts["kana"] + counts["han"])
        and counts["kana"] + counts["han"] >= 0.3 * total
    ):
        return "ja"
    top = counts.most_common(1)[0][0]
    if top in ("han", "kana"):
        return "zh" if counts["kana"] == 0 else "ja"
    script_lang = {"hangul": "ko", "cyrillic": "ru", "arabic": "ar", "thai": "th", "greek": "el"}
    if top in script_lang:
        return script_lang[top]
    words = Counter(w.lower() for w in _WORD.findall(text))
    scores = {lang: sum(words[w] for w in stop) for lang, stop in _STOPWORDS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    ranked = sorted(scores.values(), reverse=True)
    if ranked[0] >= 3 and ranked[0] >= 1.5 * ranked[1]:
        return best
    return "latin"


def foreign_language(page: str, added: str) -> bool:
    """True when text in language ``added`` is clearly not in the page's language ``page``."""
    if not page or not added or page == added:
        return False
    if added == "latin":
        return page in _NON_LATIN  # unknown Latin-script text on a Japanese page
    if page == "latin":
        return added in _NON_LATIN
    return True


def spam_hits(text: str) -> list[str]:
    """Spam terms in context found in ``text`` (lower-cased, at most 50)."""
    return [" ".join(m.group(0).lower().split()) for m in _STRONG.finditer(text)][:50]


@dataclass
class Difference:
    """How a search engine's copy differs from the page a visitor's browser rendered."""

    new_links: list[str] = field(default_factory=list)  # outbound, not on the rendered page
    new_domains: Counter[str] = field(default_factory=Counter)
    added_text: str = ""
    page_lang: str = ""
    added_lang: str = ""
    spam: list[str] = field(default_factory=list)

    @property
    def link_farm(self) -> bool:
        return len(self.new_links) >= FARM_MIN_LINKS or len(self.new_domains) >= FARM_MIN_DOMAINS

    @property
    def foreign_spam(self) -> bool:
        return len(self.spam) >= SPAM_MIN_HITS and foreign_language(self.page_lang, self.added_lang)

    @property
    def cloaked(self) -> bool:
        return self.link_farm or self.foreign_spam


def _label(domain: str) -> str:
    return domain.split(".")[0]


def compare(
    reference: list[PageText], copy: PageText, site_domain: str, foreign: object
) -> Difference:
    """What ``copy`` adds to the ``reference`` pages (the rendered DOM, the plain copy).

    ``foreign(host) -> bool`` says whether a host is another party (not the
    site, not a well-known third party).
    """
    ref_domains = {registered_domain(host_of(u)) for page in reference for u in page.links}
    ref_blocks = {b for page in reference for b in page.blocks}
    ref_text = " ".join(page.text for page in reference)
    diff = Difference()
    seen: set[str] = set()
    for url in copy.links:
        host = host_of(url)
        if not host or url in seen or not foreign(host):  # type: ignore[operator]
            continue
        domain = registered_domain(host)
        if domain in ref_domains or _label(domain) == _label(site_domain):
            continue  # linked from the rendered page, or a sister domain (a language switcher)
        seen.add(url)
        diff.new_links.append(url)
        diff.new_domains[domain] += 1
    added: list[str] = []
    for block in copy.blocks[:2000]:
        if block in ref_blocks or (len(ref_text) < 200_000 and block in ref_text):
            continue
        added.append(block)
    diff.added_text = " ".join(added)
    diff.page_lang = next((page.lang for page in reference if page.lang), "") or language_of(
        ref_text
    )
    diff.spam = spam_hits(diff.added_text)
    # The language of the spam itself: a link farm's anchor texts beside it say little.
    spammy = [block for block in added if spam_hits(block)]
    diff.added_lang = language_of(" ".join(spammy)) or language_of(diff.added_text)
    return diff


_NAMEISH = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://)?[\w-]+(?:\.[\w-]+)*\.[a-z][\w-]*[^\s\"'<>]*")


def _excerpt(text: str, term: str, width: int = 80) -> str:
    """A short quote of the spam around ``term``, with any name or URL in it defanged."""
    at = text.lower().find(term[:20])
    start = max(0, at - 15) if at >= 0 else 0
    quote = " ".join(text[start : start + width].split())
    return _NAMEISH.sub(lambda m: defang(m.group(0)), quote)


def seo_cloaking(facts: Facts) -> Iterator[Finding]:
    """The ``bot`` or ``referer`` copy adds a link farm or foreign-language spam."""
    item = facts.item
    if not item.variants:
        return
    base = item.final_url or item.url
    reference: list[PageText] = []
    dom = facts.browser.get("dom") or ""
    if dom:
        reference.append(extract(dom, facts.browser.get("final_url") or base))
    if item.served_html:
        reference.append(extract(item.served_html, base))
    if not reference:
        return
    site = facts.domains.site
    for name in ("bot", "referer"):
        variant = item.variants.get(name) or {}
        markup = variant.get("html") or ""
        if not markup or variant.get("status") not in (200, 203):
            continue
        diff = compare(reference, extract(markup, base), site, facts.domains.foreign)
        if not diff.cloaked:
            continue
        yield _finding(facts, name, diff, rendered=bool(dom))
        return


def _finding(facts: Facts, name: str, diff: Difference, *, rendered: bool) -> Finding:
    """Malicious against the rendered page; against the plain copy alone only suspicious
    (a single-page app's pre-rendered copy differs from its empty shell by design)."""
    compared_with = (
        "the page Chromium rendered" if rendered else "the page as served (no rendered page)"
    )
    who = "search engines (Googlebot)" if name == "bot" else "visitors coming from a search engine"
    url = facts.item.final_url or facts.item.url
    details: list[str] = []
    top = ""
    if diff.new_links:
        top = diff.new_domains.most_common(1)[0][0]
        domains = ", ".join(defang(d) for d, _ in diff.new_domains.most_common(3))
        details.append(
            f"{len(diff.new_links)} links to {len(diff.new_domains)} other site(s) not on the "
            f"rendered page ({domains})"
        )
    if diff.foreign_spam:
        terms = ", ".join(dict.fromkeys(diff.spam))
        page = LANG_NAMES.get(diff.page_lang, diff.page_lang)
        added = LANG_NAMES.get(diff.added_lang, diff.added_lang)
        excerpt = _excerpt(diff.added_text, diff.spam[0])
        details.append(f"{added} spam on a {page} page ({terms[:120]}: \u201c{excerpt}\u201d)")
    both = diff.link_farm and diff.foreign_spam
    finding = Finding(
        "tocsin.seo-cloaking",
        "seo-cloaking",
        "malicious" if rendered else "suspicious",
        (0.9 if both else 0.85) if rendered else 0.6,
        [f"{defang(url)} shows {who} a different page than {compared_with}: " + "; ".join(details)],
        cluster=[f"host:{top}"] if top else [f"cloaking:{facts.domains.site}"],
    )
    if top:
        finding.add_ioc("domains", top)
        finding.add_ioc("urls", diff.new_links[0])
    else:
        finding.add_ioc("urls", url)
    return finding
