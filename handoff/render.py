"""README.txt and timeline.html from ``templates/handoff/``.

``timeline.html`` is rendered with autoescape on (every crawled string is
escaped) and carries no script: a Content-Security-Policy in the page refuses
any, and URLs are written as defanged text, never as links. ``README.txt``
shows control and bidi characters escaped (``tocsin.safe_text.terminal_text``),
so a hostile title cannot rewrite the reader's terminal.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from tocsin.safe_text import terminal_text
from tocsin.urls import defang

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "handoff"


def _when(value: datetime | str | None) -> str:
    if isinstance(value, str):  # read back from the spool (ISO-8601)
        value = datetime.fromisoformat(value)
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


def render(name: str, context: dict[str, Any]) -> Iterator[bytes]:
    """The rendered template in UTF-8 pieces of about 64 KiB, as it is generated: the
    incidents may be a spool read from disk, never all in memory."""
    buffer: list[str] = []
    size = 0
    for piece in _env.get_template(name).generate(**context):
        buffer.append(piece)
        size += len(piece)
        if size >= 65536:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode()
