"""What every response gets and every request is held to, in one place.

- :class:`Guard`, a plain ASGI middleware (no per-request task, unlike Starlette's
  ``BaseHTTPMiddleware``): it refuses a body over ``board.max_body`` with 413
  before the app reads it, makes the CSP nonce, and sets the security headers.
- :class:`FailureLimiter`: failed log-ins, wrong tokens and portal-link misses per
  client address, counted in the store so that every board worker sees them.
- CSRF tokens: an HMAC of what the form is bound to (a session, a portal token)
  under the board's key, so they need no storage and cannot be moved between them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from store.db import Database
from store.models import BoardFailure

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


class Guard:
    """Body cap, CSP nonce (``scope["state"]["nonce"]``) and security headers."""

    def __init__(self, app: ASGIApp, *, max_body: int, https: bool) -> None:
        self.app = app
        self.max_body = max_body
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = new_nonce()
        scope.setdefault("state", {})["nonce"] = nonce
        path: str = scope.get("path", "")
        headers = self._headers(path, nonce, scope.get("scheme") == "https")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in headers if k not in present
                ]
            await send(message)

        if scope["method"] in ("POST", "PUT", "PATCH"):
            body = await self._read_capped(scope, receive)
            if body is None:
                await self._too_large(path, send_with_headers)
                return
            receive = _replay(body)
        await self.app(scope, receive, send_with_headers)

    def _headers(self, path: str, nonce: str, https: bool) -> list[tuple[bytes, bytes]]:
        headers = [
            *COMMON_HEADERS,
            (b"content-security-policy", CSP.format(nonce=nonce).encode()),
            # A portal URL holds its recipient's token: it must not leak in a Referer.
            (b"referrer-policy", b"no-referrer" if path.startswith("/portal") else b"same-origin"),
        ]
        if not path.startswith("/static/"):
            headers.append((b"cache-control", b"no-store"))
        if self.https or https:
            headers.append((b"strict-transport-security", b"max-age=31536000"))
        return headers

    async def _read_capped(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it is known to pass the cap."""
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    if int(value) > self.max_body:
                        return None
                except ValueError:
                    return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, path: str, send: Send) -> None:
        reason = f"the request body is over board.max_body ({self.max_body} bytes)"
        if path.startswith("/api/"):
            body, kind = json.dumps({"error": reason}).encode(), b"application/json"
        else:
            body, kind = reason.encode(), b"text/plain; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", kind),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class FailureLimiter:
    """At most ``limit`` failures per address within ``window``; then 429 until the oldest
    ages out. Kept in the store (``board_failures``), so every board worker, and a
    restarted board, counts the same failures."""

    def __init__(self, db: Database, limit: int, window: timedelta) -> None:
        self.db = db
        self.limit = limit
        self.window = window

    def retry_after(self, address: str, now: datetime) -> int | None:
        """Seconds until ``address`` may try again, or None when it may now."""
        with self.db.session() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(BoardFailure.at)).where(
                    BoardFailure.address == address[:64], BoardFailure.at > now - self.window
                )
            ).one()
        if count < self.limit or oldest is None:
            return None
        return max(1, int((oldest + self.window - now).total_seconds()) + 1)

    def fail(self, address: str, now: datetime) -> None:
        with self.db.session() as session:
            session.execute(delete(BoardFailure).where(BoardFailure.at <= now - self.window))
            session.add(BoardFailure(address=address[:64], at=now))


def client_address(scope: Scope, trusted_proxies: tuple[str, ...]) -> str:
    """The peer's address, or the nearest untrusted hop of X-Forwarded-For when the peer
    is a trusted proxy. A client cannot choose its own address to dodge the limiter."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return peer
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
            for hop in reversed(hops):
                if not _trusted(hop, trusted_proxies):
                    return hop[:64]
    return peer


def _trusted(address: str, proxies: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for proxy in proxies:
        try:
            if ip in ipaddress.ip_network(proxy, strict=False):
                return True
        except ValueError:
            continue
    return False


def csrf_token(key: bytes, binding: str) -> str:
    """The form token for ``binding`` (e.g. ``session:<hash>``, ``portal:<hash>``)."""
    mac = hmac.new(key, b"csrf:" + binding.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode()


def csrf_ok(key: bytes, binding: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(key, binding), str(token))


def signed(key: bytes, value: str) -> str:
    """``value.signature``: a cookie the board made itself (the log-in form's CSRF cookie)."""
    mac = hmac.new(key, b"cookie:" + value.encode(), hashlib.sha256).digest()
    return f"{value}.{base64.urlsafe_b64encode(mac[:18]).decode()}"


def unsign(key: bytes, cookie: str | None) -> str | None:
    if not cookie or "." not in cookie or len(cookie) > 200:
        return None
    value = cookie.rsplit(".", 1)[0]
    return value if hmac.compare_digest(signed(key, value), cookie) else None
