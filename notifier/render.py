"""Jinja2 rendering of notices: ``templates/notices/<lang>/<role>_<kind>.txt.j2``.

Adding a language is adding a folder of templates; a missing template falls
back to English. Each role/kind template defines a ``subject`` block, so the
subject lives next to the body it introduces.

HTML templates are autoescaped. Plain-text templates are text/plain, where
markup is inert, but every value printed in either passes through
:func:`notifier.safety.one_line` (the environment's ``finalize``): no value
from a page can add a line, forge a header or hide behind a bidi override.
"""

from __future__ import annotations

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
    (HTML) template it escapes like anything else."""
    if eval_ctx.autoescape:
        return escape(value)
    return Markup(str(value))  # noqa: S704 - text/plain, parts already passed one_line


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
    )
    env.filters["defang"] = defang
    env.filters["defang_host"] = defang_host
    env.filters["one_line"] = one_line
    env.filters["date"] = _date
    env.filters["block"] = _block
    return env


def languages() -> list[str]:
    """The languages that have notice templates."""
    return sorted(p.name for p in NOTICES.iterdir() if p.is_dir() and not p.name.startswith("_"))


def pick_language(language: str | None) -> str:
    """``ja-JP`` -> ``ja`` when there are Japanese templates; else English."""
    if language:
        base = language.strip().lower().replace("_", "-").split("-")[0]
        if base and (NOTICES / base).is_dir():
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


def has_template(name: str, language: str) -> bool:
    return (NOTICES / language / name).is_file() or (NOTICES / FALLBACK / name).is_file()


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
    template = _template(f"{role}_{kind}.txt.j2", language)
    try:
        text = template.render(context)
        subject_block = template.blocks.get("subject")
        subject = (
            "".join(subject_block(template.new_context(dict(context)))) if subject_block else ""
        )
        html_text = None
        if html and has_template("notice.html.j2", language):
            html_text = _template("notice.html.j2", language).render(
                {**context, "role": role, "kind": kind}
            )
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
