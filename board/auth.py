"""Who is asking: analysts' passwords and sessions, bearer tokens, and the roles.

- Passwords are hashed with argon2id (argon2-cffi's defaults, rehashed on log-in
  when those defaults move).
- A session cookie and a bearer token are 256 random bits; only their sha256 is
  stored, so a copy of the database cannot be replayed against the board.
- ``board.token``, when set, is an admin bearer token that needs no database row.

Roles, strongest first: ``admin`` (everything), ``analyst`` (every page and every
record, whatever its TLP), ``researcher`` (the API only: their own submissions in
full, of the rest only TLP:CLEAR and TLP:GREEN).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from store.db import Database
from store.models import TOKEN_ROLES, USER_ROLES, ApiToken, BoardSession, BoardUser
from tocsin.config import Config
from tocsin.errors import UsageError

_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs what a wrong password does.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
TOKEN_PREFIX = "tcs_"  # noqa: S105 - a prefix that makes leaked tokens greppable
ANALYST_ROLES = ("admin", "analyst")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``name`` owns submissions; ``role`` decides the rest."""

    name: str
    role: str  # admin | analyst | researcher
    via: str  # session | token | config

    @property
    def is_analyst(self) -> bool:
        return self.role in ANALYST_ROLES


def digest(secret: str) -> str:
    """The stored form of a session cookie or a bearer token."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _check_name(name: str) -> str:
    if not NAME.match(name or ""):
        raise UsageError(
            f"NAME: {name!r} is not a valid name "
            "(1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit)"
        )
    return name


# --------------------------------------------------------------------------- users


def add_user(session: Session, name: str, role: str, password: str, now: datetime) -> bool:
    """Create or update a log-in; True when it was created. Ends the user's sessions
    when the password changes."""
    _check_name(name)
    if role not in USER_ROLES:
        raise UsageError(f"--role: expected one of {', '.join(USER_ROLES)}, got {role!r}")
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"password: at least {MIN_PASSWORD} characters, please")
    user = session.scalars(select(BoardUser).where(BoardUser.name == name)).one_or_none()
    hashed = _hasher.hash(password)
    if user is None:
        session.add(
            BoardUser(name=name, role=role, password_hash=hashed, created_at=now, updated_at=now)
        )
        return True
    user.role, user.password_hash, user.updated_at = role, hashed, now
    session.execute(delete(BoardSession).where(BoardSession.user_id == user.id))
    return False


def remove_user(session: Session, name: str) -> bool:
    user = session.scalars(select(BoardUser).where(BoardUser.name == name)).one_or_none()
    if user is None:
        return False
    session.execute(delete(BoardSession).where(BoardSession.user_id == user.id))
    session.delete(user)
    return True


def list_users(session: Session) -> list[BoardUser]:
    return list(session.scalars(select(BoardUser).order_by(BoardUser.name)))


# --------------------------------------------------------------------------- sessions


def login(
    session: Session, name: str, password: str, now: datetime, ttl: timedelta
) -> tuple[str, Principal] | None:
    """Check a password; on success open a session and return its cookie value."""
    user = session.scalars(select(BoardUser).where(BoardUser.name == name[:64])).one_or_none()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = now
    cookie = secrets.token_urlsafe(32)
    session.add(
        BoardSession(
            session_hash=digest(cookie), user_id=user.id, created_at=now, expires_at=now + ttl
        )
    )
    # Expired sessions go as new ones come, so the table stays the size of who is logged in.
    session.execute(delete(BoardSession).where(BoardSession.expires_at < now))
    return cookie, Principal(user.name, user.role, "session")


def session_principal(session: Session, cookie: str | None, now: datetime) -> Principal | None:
    if not cookie or len(cookie) > 100:
        return None
    row = session.execute(
        select(BoardUser.name, BoardUser.role)
        .join(BoardSession, BoardSession.user_id == BoardUser.id)
        .where(BoardSession.session_hash == digest(cookie), BoardSession.expires_at > now)
    ).first()
    return Principal(row.name, row.role, "session") if row else None


def logout(session: Session, cookie: str | None) -> None:
    if cookie:
        session.execute(delete(BoardSession).where(BoardSession.session_hash == digest(cookie)))


# --------------------------------------------------------------------------- bearer tokens


def create_token(session: Session, name: str, role: str, now: datetime) -> str:
    """Make a bearer token for ``name``; the token itself is returned once, never stored."""
    _check_name(name)
    if role not in TOKEN_ROLES:
        raise UsageError(f"--role: expected one of {', '.join(TOKEN_ROLES)}, got {role!r}")
    live = session.scalars(
        select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
    ).first()
    if live is not None:
        raise UsageError(f"token {name!r} exists; `tocsin token revoke {name}` first")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            name=name,
            role=role,
            token_hash=digest(token),
            prefix=token[:10],
            created_at=now,
        )
    )
    return token


def revoke_token(session: Session, name: str, now: datetime) -> int:
    """Revoke every live token of ``name``; returns how many."""
    tokens = list(
        session.scalars(
            select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
        )
    )
    for token in tokens:
        token.revoked_at = now
    return len(tokens)


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.name, ApiToken.id)))


def bearer_principal(
    session: Session, config: Config, token: str | None, now: datetime
) -> Principal | None:
    if not token or len(token) > 200:
        return None
    if config.board.token and hmac.compare_digest(
        token.encode("utf-8", "surrogatepass"), config.board.token.encode()
    ):
        return Principal("admin", "admin", "config")
    row = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == digest(token), ApiToken.revoked_at.is_(None))
    ).one_or_none()
    if row is None:
        return None
    return Principal(row.name, row.role, "token")


def touch_token(db: Database, token: str, now: datetime) -> None:
    """Note when a token was last used, at most once a minute, and never at the cost of
    the request: a reader's transaction that turns writer can lose to another worker's
    on SQLite, so this is its own short write, and a busy store skips it."""
    try:
        with db.claim() as session:
            session.execute(
                update(ApiToken)
                .where(
                    ApiToken.token_hash == digest(token),
                    or_(
                        ApiToken.last_used_at.is_(None),
                        ApiToken.last_used_at < now - timedelta(minutes=1),
                    ),
                )
                .values(last_used_at=now)
            )
    except OperationalError:
        pass
