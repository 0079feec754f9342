"""README.txt and timeline.html from ``templates/handoff/``.

``timeline.html`` is rendered with autoescape on (every crawled string is
escaped) and carries no script: a Content-Security-Policy in the page refuses
any, and URLs are written as defanged text, never as links. ``README.txt``
shows control and bidi characters escaped (``tocsin.safe_text.terminal_text``),
so a hostile title cannot rewrite the reader's terminal.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from tocsin.safe_text import terminal_text
from tocsin.urls import defang

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "handoff"


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _text(value: Any) -> str:
    return terminal_text("" if value is None else str(value))


def _defang(value: Any) -> str:
    return defang(str(value or ""))


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_env.filters.update(when=_when, text=_text, defang=_defang)


def render(name: str, context: dict[str, Any]) -> str:
    return _env.get_template(name).render(**context)
