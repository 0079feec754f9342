"""Portal tokens: the per-recipient link a notice carries to ask for a re-check.

A token is 192 random bits plus an HMAC-SHA256 tag under ``board.secret``,
so the board can refuse a forged token before touching the database. Only
the token's sha256 is stored (:class:`~store.models.PortalToken`): a leaked
database does not leak working links.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import datetime

from sqlalchemy.orm import Session

from store.models import PortalToken
from tocsin.config import Config

log = logging.getLogger(__name__)
_warned = False


def _tag(secret: str, body: str) -> str:
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return digest[:32]


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(config: Config) -> str:
    """``<random>.<tag>``; unsigned (random part only) when ``board.secret`` is empty."""
    global _warned
    body = secrets.token_urlsafe(24)
    if not config.board.secret:
        if not _warned:
            log.warning("board.secret is empty: portal tokens are random but not signed")
            _warned = True
        return body
    return f"{body}.{_tag(config.board.secret, body)}"


def verify(config: Config, token: str) -> str | None:
    """The hash to look up when ``token`` is well-formed and its tag is right, else None."""
    if not token or len(token) > 200:
        return None
    body, _, tag = token.partition(".")
    if config.board.secret:
        if not tag or not hmac.compare_digest(tag, _tag(config.board.secret, body)):
            return None
    elif tag:
        return None
    return token_hash(token)


def portal_url(config: Config, token: str) -> str:
    return f"{config.board.base_url.rstrip('/')}/portal/{token}"


def issue(
    session: Session, config: Config, *, contact_id: int, notice_id: int | None, now: datetime
) -> str:
    """Create and store (hashed) a token for one recipient; return the portal URL."""
    token = new_token(config)
    session.add(
        PortalToken(
            contact_id=contact_id,
            notice_id=notice_id,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + config.notify.portal_ttl,
            revoked=False,
        )
    )
    return portal_url(config, token)
