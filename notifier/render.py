"""Jinja2 rendering of notices: one shared structure, one phrase file per language.

``templates/notices/_shared/notice.txt.j2`` (and ``notice.html.j2``) lay out
every notice; ``templates/notices/<lang>/_phrases.txt.j2`` holds what each
language says (family labels, clean-up advice, subject and intro per role and
kind). The structure cannot drift between languages, and adding a family or a
sentence is one edit per phrase file. A language without a phrase file falls
back to English. The shared template exports its ``subject``.

HTML templates are autoescaped. Plain-text templates are text/plain, where
markup is inert, but every value printed in either passes through
:func:`notifier.safety.one_line` (the environment's ``finalize``): no value
from a page can add a line, forge a header or hide behind a bidi override.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.nodes
from markupsafe import Markup, escape

import templates
from notifier.safety import defang, defang_host, one_line
from tocsin.errors import NotifyError

NOTICES = Path(templates.__file__).resolve().parent / "notices"
FALLBACK = "en"
PHRASES = "_phrases.txt.j2"
SHARED_TEXT = "_shared/notice.txt.j2"
SHARED_HTML = "_shared/notice.html.j2"
# Context keys other parts of the pipeline may set; absent, the notice leaves their
# sentences out (the templates use StrictUndefined).
OPTIONAL: dict[str, Any] = {
    "cdn_origin_unknown": False,
    "cdn_origin": "",
    "owner_web_forms": (),
    "security_txt_expired": False,
    "package": None,  # the CSIRT's evidence package link (notifier.compose)
}
ROLES = ("owner", "hosting", "registrar", "cert")
KINDS = ("first", "followup")


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Markup):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return one_line(value, limit=2000)


@jinja2.pass_eval_context
def _block(eval_ctx: jinja2.nodes.EvalContext, value: Any) -> Any:
    """A multi-line block that a macro of a text template built from values already
    finalised (finalize would otherwise fold it onto one line). In an autoescaped
    (HTML) template it escapes the whole text, even when it comes marked safe: a macro
    of a text template called from HTML returns Markup of unescaped values."""
    if eval_ctx.autoescape:
        return escape(str.__str__(value))
    return Markup(str(value))  # noqa: S704 - text/plain, parts already passed one_line


@jinja2.pass_eval_context
def _pad(eval_ctx: jinja2.nodes.EvalContext, label: str, width: int) -> Any:
    """A template's own label padded to a column by display width (a CJK character
    takes two), so the fields of every language line up; at least one space."""
    columns = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in label)
    text = str(label) + " " * max(width - columns, 1)
    if eval_ctx.autoescape:
        return escape(text)
    return Markup(text)  # noqa: S704 - a phrase of the templates, not a value


def _date(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    return value.strftime(fmt) if value else ""


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(NOTICES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # installed files: no stat() of four templates per notice
    )
    env.filters["defang"] = defang
    env.filters["defang_host"] = defang_host
    env.filters["one_line"] = one_line
    env.filters["date"] = _date
    env.filters["block"] = _block
    env.filters["pad"] = _pad
    return env


def languages() -> list[str]:
    """The languages notices can be written in (a folder with a phrase file each)."""
    return sorted(
        p.name
        for p in NOTICES.iterdir()
        if p.is_dir() and not p.name.startswith("_") and (p / PHRASES).is_file()
    )


def pick_language(language: str | None) -> str:
    """``ja-JP`` -> ``ja``, ``pt-BR`` -> ``pt`` when there are phrases for it; else English."""
    if language:
        base = language.strip().lower().replace("_", "-").split("-")[0]
        if base and base.isalpha() and (NOTICES / base / PHRASES).is_file():
            return base
    return FALLBACK


def _template(name: str, language: str) -> jinja2.Template:
    env = environment()
    for lang in dict.fromkeys((language, FALLBACK)):
        try:
            return env.get_template(f"{lang}/{name}")
        except jinja2.TemplateNotFound:
            continue
    raise NotifyError(f"no notice template {name} in {language} or {FALLBACK}")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


def render_notice(
    role: str, kind: str, language: str, context: dict[str, Any], *, html: bool = False
) -> Rendered:
    """Subject, plain text and (optionally) HTML of one notice."""
    language = pick_language(language)
    role = role if role in ROLES else "hosting"
    kind = kind if kind in KINDS else "first"
    values = {**OPTIONAL, **context, "lang": language, "role": role, "kind": kind}
    env = environment()
    try:
        module = env.get_template(SHARED_TEXT).make_module(values)
        text, subject = str(module), str(getattr(module, "subject", ""))
        html_text = env.get_template(SHARED_HTML).render(values) if html else None
    except jinja2.TemplateError as exc:
        raise NotifyError(f"cannot render {language}/{role}_{kind}: {exc}") from None
    return Rendered(subject=one_line(subject, 250), text=_tidy(text), html=html_text)


def render_text(name: str, language: str, context: dict[str, Any]) -> Rendered:
    """Any other plain-text template with a ``subject`` block (the ASN digest)."""
    template = _template(name, pick_language(language))
    text = template.render(context)
    block = template.blocks.get("subject")
    subject = "".join(block(template.new_context(dict(context)))) if block else ""
    return Rendered(subject=one_line(subject, 250), text=_tidy(text), html=None)


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if not line and out and not out[-1]:
            continue
        out.append(line)
    while out and not out[0]:
        out.pop(0)
    return "\n".join(out).rstrip() + "\n"
