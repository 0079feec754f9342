"""``database.url`` as it may be shown: on the terminal, in errors and in logs.

A PostgreSQL URL carries its password, and what tocsin prints ends up in cron
mail, log files and bug reports. So every place that shows the URL, and every
driver error quoted with it, goes through :func:`shown_url` and
:func:`mask_password` first. The password in the query string
(``?password=...``, which psycopg accepts) is masked too.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from sqlalchemy.engine import make_url

MASK = "***"
# user:password@, for a URL SQLAlchemy cannot parse: from the user's colon to the last
# "@" before the host (a password may hold both); too much masked beats too little.
_USERINFO = re.compile(r"(:)[^/?#\s]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)
# A password this short would mask unrelated letters of an error message; drivers
# do not quote the password in their messages anyway (this is the second line).
_MIN_SECRET = 4


def shown_url(url: str) -> str:
    """``url`` with its password (in the user part or the query) replaced by ``***``."""
    try:
        parsed = make_url(url)
    except Exception:  # unparsable: mask by shape, never show the raw text
        return _QUERY_PASSWORD.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<1>{MASK}@", url))
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": MASK})
    return parsed.render_as_string(hide_password=True)


def _secrets(url: str) -> set[str]:
    found: set[str] = set()
    for pattern in (_USERINFO, _QUERY_PASSWORD):
        for match in pattern.finditer(url):
            raw = url[match.end(1) : match.end()].removesuffix("@")
            found.update({raw, unquote(raw), quote(unquote(raw), safe="")})
    try:
        parsed = make_url(url)
    except Exception:
        return {s for s in found if len(s) >= _MIN_SECRET}
    if parsed.password:
        found.add(str(parsed.password))
    query_password = parsed.query.get("password")
    if isinstance(query_password, str):
        found.add(query_password)
    return {s for s in found if len(s) >= _MIN_SECRET}


def mask_password(text: str, url: str) -> str:
    """``text`` (an error message) with ``url`` and its password masked wherever they appear."""
    text = text.replace(url, shown_url(url))
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
