"""Hostile text made safe for the three places tocsin writes it outside a notice.

AS names, campaign names, page titles and reject lines are chosen by third
parties. Printed raw, ``ESC[2J`` clears an analyst's terminal, OSC sequences
set its title or forge hyperlinks, CR overwrites a line, and bidi overrides
make ``exe.txt`` read as ``txt.exe``; in a CSV opened in a spreadsheet,
``=HYPERLINK(...)`` runs. These are the only functions that deal with it, so
every CSV, every terminal line and every JSON line behaves alike.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls except TAB and LF (harmless layout), DEL, C1 controls, the bidi
# embeddings/overrides/isolates and marks, and the Unicode line separators.
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_TERMINAL_UNSAFE = re.compile(f"[{_UNSAFE}]")
# In JSON text (ASCII punctuation outside strings) these can only be inside a
# string, where \\uXXXX is an exact, reversible spelling of them.
_JSON_UNSAFE = re.compile(f"[{_UNSAFE}]")

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(text: str) -> str:
    """``text`` with every control and bidi character shown as ``\\xNN``/``\\uNNNN``.

    Escaped rather than dropped, so an analyst sees that a value was hostile.
    Newlines and tabs are kept: they cannot rewrite what is already on screen.
    """
    if text.isprintable():  # the common case; isprintable() is False for all of _UNSAFE
        return text
    return _TERMINAL_UNSAFE.sub(_escape, text)


def json_text(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that keeps non-ASCII text readable but escapes control and bidi
    characters as ``\\uXXXX``, so the line is safe on a terminal and parses back to
    exactly the original strings."""
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def csv_cell(value: Any) -> Any:
    """A CSV cell no spreadsheet runs as a formula (OWASP "CSV injection").

    Text that starts with ``= + - @``, TAB, CR or LF (or their full-width forms),
    also after leading spaces, gets a leading apostrophe, which spreadsheets read
    as "this is text". Other values (numbers, None) are returned unchanged.
    """
    if isinstance(value, str) and value.lstrip(" ").startswith(FORMULA_STARTS):
        return "'" + value
    return value
