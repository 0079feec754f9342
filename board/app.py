"""The board as one ASGI app: the analysts' pages, the portal and the API.

``create_app`` wires them together; ``tocsin board`` serves it with uvicorn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from board import api, metrics, pages, portal
from board.security import Guard
from board.web import (
    ApiError,
    Board,
    Forbidden,
    LoginRequired,
    api_error,
    board_of,
    forbidden_page,
    login_redirect,
)
from store.db import Database
from tocsin.clock import Clock
from tocsin.config import Config

STATIC = Path(__file__).with_name("static")


def create_app(
    config: Config, db: Database, clock: Clock | None = None, key: bytes | None = None
) -> Guard:
    """The whole board; the outermost layer (:class:`Guard`) caps bodies and sets headers.
    ``key`` signs CSRF tokens: the same for every worker of one board."""
    board = Board(config, db, clock or Clock(), key=key or b"")
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=_lifespan)
    app.state.board = board
    app.add_exception_handler(LoginRequired, login_redirect)
    app.add_exception_handler(Forbidden, forbidden_page)
    # Answered as the API answers: /metrics, and a bearer token on a package download.
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error_page)
    app.add_exception_handler(RequestValidationError, _bad_request_page)
    app.include_router(metrics.router)  # /healthz, /metrics
    app.include_router(pages.router)
    app.include_router(portal.router)
    api_app = api.create()
    api_app.state.board = board
    app.mount("/api/v1", api_app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return Guard(app, max_body=config.board.max_body, https=board.https)


# Threads that run the handlers, per worker. They share one interpreter, so past a few
# more only wait for its lock; the database pool is sized to match (board/server.py).
THREADS = 8


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    yield


def _bad_request_page(request: Request, exc: Exception) -> Response:
    """A malformed path (``/campaigns/abc``) is a page that does not exist; a malformed
    query or form is a bad request. Never FastAPI's JSON on an HTML page."""
    assert isinstance(exc, RequestValidationError)
    in_path = any(e.get("loc", ("",))[0] == "path" for e in exc.errors())
    code, title = (404, "Not found") if in_path else (400, "Bad request")
    return board_of(request).render(
        request, "error.html.j2", code=code, title=title, message="The request was not understood."
    )


def _http_error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Not found", 405: "Not allowed", 422: "Bad request"}
    return board_of(request).render(
        request,
        "error.html.j2",
        code=exc.status_code,
        title=titles.get(exc.status_code, "Error"),
        message=titles.get(exc.status_code, "The request could not be served."),
    )
