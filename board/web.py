"""The board's shared request plumbing: its state, templates, who is asking, errors.

Routes live in ``pages`` (analysts), ``portal`` (recipients) and ``api``
(scripts); they all reach the store, the clock and the settings through the one
:class:`Board` object made by ``board.app.create_app``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from board import auth, security, tlp
from board.queries import CampaignRow, campaign_rows
from store.db import Database
from store.evidence import EvidenceStore
from store.models import Campaign, Check, Event, Notice, Url
from store.queries import campaign_stats, status_summary
from tocsin.clock import Clock
from tocsin.config import Config

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "board"
SESSION_COOKIE = "tocsin_session"
LOGIN_CSRF_COOKIE = "tocsin_login"


class LoginRequired(Exception):
    """An analyst page was asked for without a session: go to the log-in form."""


class Forbidden(Exception):
    """A logged-in user whose role may not do this."""


class ApiError(Exception):
    """An API error: ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())[:500]
        self.headers = headers or {}


class StoreCache:
    """Views that cost a pass over many rows (the campaign list and status summary, a
    campaign's curves, networks, timeline and charts, a network's record), kept until
    the store moves.

    The store's version is the newest event, check, URL, notice and campaign id: every
    change the board shows moves one of them. It is looked up at most every ``refresh``
    seconds. A view made for an older version is served as it is while a background
    thread makes it again, at most once every ``min_age`` seconds per view: under a
    running pipeline the store moves every second, and making the campaign list anew
    costs most of a second. So pages trail the pipeline by up to ``min_age`` plus that,
    and no request waits for a view that exists. Only the first request for a view
    computes it in line.
    """

    def __init__(self, db: Database, refresh: float = 2.0, min_age: float = 15.0) -> None:
        self.db = db
        self.refresh = refresh
        self.min_age = min_age
        self.size = 512
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self._checked = 0.0
        # key -> (store version, value, when it was made)
        self._entries: OrderedDict[Any, tuple[tuple[Any, ...], Any, float]] = OrderedDict()
        self._busy: set[Any] = set()

    @staticmethod
    def version(session: Session) -> tuple[Any, ...]:
        return tuple(
            session.scalar(select(func.max(column)))
            for column in (Event.id, Check.id, Url.id, Notice.id, Campaign.id)
        )

    def stamp(self, session: Session) -> tuple[Any, ...]:
        if self._stamp is None or time.monotonic() - self._checked >= self.refresh:
            self._stamp = self.version(session)
            self._checked = time.monotonic()
        return self._stamp

    def get(self, session: Session, key: Any, compute: Callable[[Session], Any]) -> Any:
        """The view ``key``; ``compute(session)`` makes it (in a session of its own when
        it runs in the background)."""
        stamp = self.stamp(session)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                made_for, value, made_at = found
                stale = made_for != stamp and time.monotonic() - made_at >= self.min_age
                if stale and key not in self._busy:
                    self._busy.add(key)
                    threading.Thread(
                        target=self._remake, args=(key, compute, stamp), daemon=True
                    ).start()
                return value
        value = compute(session)
        self._keep(key, stamp, value)
        return value

    def _remake(self, key: Any, compute: Callable[[Session], Any], stamp: tuple) -> None:
        try:
            with self.db.session() as session:
                self._keep(key, stamp, compute(session))
        except Exception:  # the old copy stays; the next request tries again
            log.exception("board: could not refresh %r", key)
        finally:
            with self._lock:
                self._busy.discard(key)

    def _keep(self, key: Any, stamp: tuple[Any, ...], value: Any) -> None:
        with self._lock:
            self._entries[key] = (stamp, value, time.monotonic())
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def invalidate(self) -> None:
        """After a write made here: forget every view, so that the page the writer is
        sent to next shows the change (other workers see it within their refresh)."""
        with self._lock:
            self._checked = 0.0
            self._entries.clear()


@dataclass
class Board:
    """Everything a request handler needs, made once per board process."""

    config: Config
    db: Database
    clock: Clock = field(default_factory=Clock)
    key: bytes = b""
    cache: StoreCache = field(init=False)

    def __post_init__(self) -> None:
        # board.secret signs CSRF tokens; without it a random key per process will do
        # (forms open across a restart then ask to be sent again).
        self.key = self.key or self.config.board.secret.encode() or secrets.token_bytes(32)
        self.cache = StoreCache(self.db)
        self._touched: dict[str, float] = {}
        board = self.config.board
        self.limiter = security.FailureLimiter(self.db, board.max_failures, board.rate_window)
        self.evidence = EvidenceStore.from_config(self.config)
        self.https = board.base_url.lower().startswith("https://")
        self.trusted = tuple(board.trusted_proxies)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(when=_when, tlp=tlp.tlp_label, pct=_pct, days=_days)

    @property
    def default_tlp(self) -> str:
        return self.config.board.default_tlp

    def now(self) -> datetime:
        return self.clock.now()

    def summary(self, session: Session) -> dict[str, Any]:
        """The campaign rows and the status summary, from one pass over the incidents."""

        def make(s: Session) -> dict[str, Any]:
            stats = campaign_stats(s)
            return {
                "campaigns": campaign_rows(s, self.default_tlp, stats),
                "status": status_summary(s, stats),
            }

        return self.cache.get(session, "summary", make)

    def campaigns(self, session: Session) -> list[CampaignRow]:
        return self.summary(session)["campaigns"]

    def status(self, session: Session) -> dict[str, Any]:
        return self.summary(session)["status"]

    def client(self, request: Request) -> str:
        return security.client_address(request.scope, self.trusted)

    def blocked(self, request: Request) -> int | None:
        """Seconds the client must wait after too many failures, or None."""
        return self.limiter.retry_after(self.client(request), self.now())

    def touch(self, token: str) -> None:
        """Record a token's use (for `tocsin token list`), once a minute per worker."""
        key = auth.digest(token)
        if time.monotonic() - self._touched.get(key, -1e9) >= 60:
            self._touched[key] = time.monotonic()
            auth.touch_token(self.db, token, self.now())

    def failed(self, request: Request) -> None:
        """Count a failed log-in, a wrong token or a portal miss against the client."""
        self.limiter.fail(self.client(request), self.now())

    def secure_cookies(self, request: Request) -> bool:
        return self.https or request.url.scheme == "https"

    def render(
        self, request: Request, template: str, code: int = 200, **context: Any
    ) -> HTMLResponse:
        context.setdefault("user", getattr(request.state, "principal", None))
        context.setdefault("csrf", getattr(request.state, "csrf", ""))
        html = self.templates.get_template(template).render(
            nonce=request.state.nonce,
            request_path=request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=code)


def board_of(request: Request) -> Board:
    return request.app.state.board


# --------------------------------------------------------------------------- who is asking


def analyst(request: Request) -> auth.Principal:
    """The logged-in analyst or admin, else :class:`LoginRequired`."""
    board = board_of(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    with board.db.session() as session:
        principal = auth.session_principal(session, cookie, board.now())
    if principal is None:
        raise LoginRequired
    if not principal.is_analyst:
        raise Forbidden
    request.state.principal = principal
    request.state.csrf = security.csrf_token(board.key, "session:" + auth.digest(cookie or ""))
    return principal


async def check_csrf(request: Request) -> None:
    """Every analyst form carries the session's CSRF token."""
    board = board_of(request)
    form = await request.form()
    binding = "session:" + auth.digest(request.cookies.get(SESSION_COOKIE) or "")
    if not security.csrf_ok(board.key, binding, _field(form, "csrf")):
        raise Forbidden


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def api_principal(request: Request) -> auth.Principal:
    """The bearer of a valid token, else 401; 429 instead once an address has sent too
    many wrong ones. A valid token is served whatever its address did: a 256-bit token
    cannot be guessed, and a shared address must not lock its honest users out."""
    board = board_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    principal = None
    if scheme.lower() == "bearer" and token.strip():
        with board.db.session() as session:
            principal = auth.bearer_principal(session, board.config, token.strip(), board.now())
    if principal is not None:
        if principal.via == "token":
            board.touch(token.strip())
        request.state.principal = principal
        return principal
    wait = board.blocked(request)
    if wait is not None:
        raise ApiError(429, "too many failed attempts; try later", {"Retry-After": str(wait)})
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "a bearer token is required (Authorization: Bearer TOKEN)", _CHALLENGE)
    board.failed(request)
    raise ApiError(401, "the bearer token is not valid", _CHALLENGE)


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tocsin"'}


def analyst_or_token(request: Request) -> auth.Principal:
    """An analyst by session (the pages' links) or by bearer token (scripts): a request
    with an Authorization header is judged as the API judges it (401, 403 for a
    researcher); without one, as the pages do (log-in, 403 for a non-analyst)."""
    if request.headers.get("authorization"):
        return api_analyst(request)
    return analyst(request)


def api_analyst(request: Request) -> auth.Principal:
    principal = api_principal(request)
    if not principal.is_analyst:
        raise ApiError(403, "this needs an analyst's token")
    return principal


# --------------------------------------------------------------------------- errors


def login_redirect(request: Request, _exc: Exception) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def forbidden_page(request: Request, _exc: Exception) -> HTMLResponse:
    return board_of(request).render(
        request, "error.html.j2", code=403, title="Not allowed", message=_FORBIDDEN
    )


_FORBIDDEN = "This action is not allowed, or its form has expired. Go back, reload and try again."


def api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)


# --------------------------------------------------------------------------- template filters


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _days(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"
