"""The analysts' pages: rendered on the server, complete without JavaScript.

Each handler reads through ``board.queries`` and renders one template of
``templates/board/``. Every form posts with the session's CSRF token.
"""

from __future__ import annotations

import hmac
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from board import auth, charts, queries, security, tlp
from board.survival import Step
from board.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Board,
    analyst,
    analyst_or_token,
    board_of,
    check_csrf,
)
from store.incidents import request_recheck, set_tlp
from store.models import Campaign, Evidence
from tocsin.errors import TocsinError, UsageError

router = APIRouter()
Analyst = Annotated[auth.Principal, Depends(analyst)]
PackageReader = Annotated[auth.Principal, Depends(analyst_or_token)]
FormText = Annotated[str, Form(max_length=10_000)]
FormLabel = Annotated[str, Form(alias="tlp", max_length=20)]

CAMPAIGN_SORTS = {
    "name": lambda r: r.name.lower(),
    "family": lambda r: r.family,
    "sites": lambda r: r.stats.sites,
    "open": lambda r: r.stats.open,
    "notified": lambda r: r.stats.notified,
    "escalated": lambda r: r.stats.escalated,
    "resolved": lambda r: r.stats.resolved,
    "recompromised": lambda r: r.stats.recompromised,
    "median": lambda r: (r.stats.median_days_to_resolve is None, r.stats.median_days_to_resolve),
    "first_seen": lambda r: r.first_seen,
    "last_seen": lambda r: r.last_seen,
}
CAMPAIGN_STATES = {
    "open": lambda r: r.stats.open > 0,
    "escalated": lambda r: r.stats.escalated > 0,
    "resolved": lambda r: r.stats.open == 0 and r.stats.resolved > 0,
    "recompromised": lambda r: r.stats.recompromised > 0,
}


def _page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1_000_000))
    except ValueError:
        return 1


def _pages(request: Request, total: int, page: int, size: int) -> dict[str, Any]:
    """Paging links that keep the other query parameters."""
    last = max(1, math.ceil(total / size))
    params = dict(request.query_params)

    def link(n: int) -> str:
        return "?" + urlencode({**params, "page": n})

    return {
        "page": page,
        "last": last,
        "total": total,
        "prev": link(page - 1) if page > 1 else None,
        "next": link(page + 1) if page < last else None,
    }


def _sort_links(request: Request, sort: str, descending: bool) -> dict[str, str]:
    params = {k: v for k, v in request.query_params.items() if k != "page"}

    def link(column: str) -> str:
        flip = "asc" if column == sort and descending else "desc"
        return "?" + urlencode({**params, "sort": column, "dir": flip})

    return {column: link(column) for column in (*CAMPAIGN_SORTS, *queries.INCIDENT_SORTS)}


# --------------------------------------------------------------------------- log-in


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    board = board_of(request)
    return _login_page(board, request, next, None, 200)


def _login_page(
    board: Board, request: Request, next_url: str, error: str | None, status: int
) -> HTMLResponse:
    nonce = security.new_nonce()
    response = board.render(
        request,
        "login.html.j2",
        code=status,
        csrf=nonce,
        next=_safe_next(next_url),
        error=error,
        user=None,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        security.signed(board.key, nonce),
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=board.secure_cookies(request),
    )
    return response


def _safe_next(target: str | None) -> str:
    """Only a path on this board: never ``//evil``, ``/\\evil`` or a full URL."""
    target = target or "/"
    if not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return "/"
    return target[:2000]


@router.post("/login", response_model=None)
def login(
    request: Request,
    name: FormText = "",
    password: FormText = "",
    csrf: FormText = "",
    next: FormText = "/",
) -> Response:
    # A plain def: argon2 takes tens of milliseconds, which must not hold the event loop.
    board = board_of(request)
    next_url = _safe_next(next or "/")
    wait = board.blocked(request)
    if wait is not None:
        response = _login_page(
            board, request, next_url, "Too many failed log-ins. Try again later.", 429
        )
        response.headers["Retry-After"] = str(wait)
        return response
    # The log-in form's CSRF token is a double submit: the form's value must match the
    # signed cookie set with the form (a cross-site page can set neither).
    expected = security.unsign(board.key, request.cookies.get(LOGIN_CSRF_COOKIE))
    if expected is None or not hmac.compare_digest(expected, csrf):
        return _login_page(board, request, next_url, "The form expired; please try again.", 403)
    with board.db.session() as session:
        done = auth.login(session, name, password, board.now(), board.config.board.session_ttl)
    if done is None:
        board.failed(request)
        return _login_page(board, request, next_url, "Wrong name or password.", 401)
    cookie, _ = done
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(board.config.board.session_ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=board.secure_cookies(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout", dependencies=[Depends(check_csrf)])
def logout(request: Request, user: Analyst) -> RedirectResponse:
    board = board_of(request)
    with board.db.session() as session:
        auth.logout(session, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# --------------------------------------------------------------------------- campaigns


@router.get("/", response_class=HTMLResponse)
def campaigns(
    request: Request,
    user: Analyst,
    q: str = "",
    family: str = "",
    state: str = "",
    label: str = "",
    sort: str = "open",
    dir: str = "desc",
    page: str | None = None,
) -> HTMLResponse:
    board = board_of(request)
    with board.db.session() as session:
        rows = board.campaigns(session)
        status = board.status(session)
    families = sorted({r.family for r in rows if r.family})
    needle = q.strip().lower()
    chosen = [
        r
        for r in rows
        if (not needle or needle in r.name.lower())
        and (not family or r.family == family)
        and (state not in CAMPAIGN_STATES or CAMPAIGN_STATES[state](r))
        and (not tlp.parse(label) or r.tlp == tlp.parse(label))
    ]
    sort = sort if sort in CAMPAIGN_SORTS else "open"
    descending = dir != "asc"
    chosen.sort(key=CAMPAIGN_SORTS[sort], reverse=descending)
    size = board.config.board.page_size
    number = _page_number(page)
    shown = chosen[(number - 1) * size : number * size]
    return board.render(
        request,
        "campaigns.html.j2",
        rows=shown,
        status=status,
        families=families,
        labels=tlp.TLP_LABELS,
        filters={"q": q, "family": family, "state": state, "label": label},
        states=list(CAMPAIGN_STATES),
        sort=sort,
        descending=descending,
        sorts=_sort_links(request, sort, descending),
        paging=_pages(request, len(chosen), number, size),
    )


def _curve_chart(
    name_steps: list[tuple[str, list[Step]]], title: str, chart_id: str, legend: bool = False
) -> Markup:
    return charts.step_chart(
        [charts.km_series(name, steps) for name, steps in name_steps],
        title=title,
        x_label="days since the first notice",
        y_label="sites still compromised",
        chart_id=chart_id,
        legend=legend,
    )


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(
    request: Request,
    user: Analyst,
    campaign_id: int,
    sort: str = "first_seen",
    dir: str = "desc",
    state: str = "",
    page: str | None = None,
) -> HTMLResponse:
    board = board_of(request)
    size = board.config.board.page_size
    number = _page_number(page)
    now = board.now()
    with board.db.session() as session:
        row = next((r for r in board.campaigns(session) if r.id == campaign_id), None)
        if row is None:
            return _not_found(board, request, "No such campaign.")
        # The curves are counted to the hour: an open site's age moves them even when
        # the store does not.
        detail, charts_ = board.cache.get(
            session,
            ("campaign", campaign_id, now.replace(minute=0, second=0, microsecond=0)),
            lambda s: _campaign_view(s, row, now),
        )
        incidents, total = queries.list_incidents(
            session,
            default_tlp=board.default_tlp,
            campaign_id=campaign_id,
            state=state or None,
            sort=sort,
            descending=dir != "asc",
            offset=(number - 1) * size,
            limit=size,
        )
    overall, by_level, timeline = charts_
    return board.render(
        request,
        "campaign.html.j2",
        c=detail,
        row=row,
        incidents=incidents,
        overall=overall,
        by_level=by_level,
        timeline=timeline,
        labels=tlp.TLP_LABELS,
        sort=sort,
        descending=dir != "asc",
        sorts=_sort_links(request, sort, dir != "asc"),
        state=state,
        paging=_pages(request, total, number, size),
    )


def _campaign_view(
    session: Session, row: queries.CampaignRow, now: datetime
) -> tuple[queries.CampaignDetail, tuple[Markup, Markup, Markup]]:
    """A campaign's aggregates and its three charts, made once per store version."""
    detail = queries.campaign_detail(session, row.id, now)
    curves = detail.curves
    overall = _curve_chart(
        [(f"all notified sites (n={curves.notified})", curves.overall)],
        f"Remediation curve: {row.name}",
        "km-all",
    )
    by_level = _curve_chart(
        [(f"level {level}", steps) for level, steps in sorted(curves.by_level.items())],
        "By ladder level reached",
        "km-level",
        legend=True,
    )
    timeline = charts.bar_chart(
        detail.timeline_days,
        list(detail.timeline.items()),
        title="Timeline",
        x_label="day",
        y_label="incidents",
        chart_id="timeline",
    )
    return detail, (overall, by_level, timeline)


@router.post("/campaigns/{campaign_id}/tlp", dependencies=[Depends(check_csrf)])
def campaign_tlp(
    request: Request, user: Analyst, campaign_id: int, label: FormLabel = ""
) -> Response:
    board = board_of(request)
    parsed = tlp.parse(label)
    with board.db.claim() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            return _not_found(board, request, "No such campaign.")
        set_tlp(session, campaign, parsed, board.now(), actor=f"board:{user.name}")
    board.cache.invalidate()
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


# --------------------------------------------------------------------------- incidents


@router.get("/incidents/{ident}", response_class=HTMLResponse)
def incident_page(request: Request, user: Analyst, ident: str) -> HTMLResponse:
    board = board_of(request)
    with board.db.session() as session:
        incident = queries.find_incident(session, ident)
        if incident is None:
            return _not_found(board, request, "No such incident.")
        detail = queries.incident_detail(
            session, incident, board.evidence, default_tlp=board.default_tlp
        )
    return board.render(
        request,
        "incident.html.j2",
        d=detail,
        labels=tlp.TLP_LABELS,
        queued=request.query_params.get("queued"),
    )


@router.post("/incidents/{ident}/recheck", dependencies=[Depends(check_csrf)])
def incident_recheck(request: Request, user: Analyst, ident: str) -> Response:
    board = board_of(request)
    with board.db.claim() as session:
        incident = queries.find_incident(session, ident)
        if incident is None:
            return _not_found(board, request, "No such incident.")
        queued = request_recheck(session, incident, board.now(), actor=f"board:{user.name}")
        ticket = incident.public_id
    board.cache.invalidate()
    return RedirectResponse(
        f"/incidents/{ticket}?queued={'yes' if queued else 'no'}", status_code=303
    )


@router.post("/incidents/{ident}/tlp", dependencies=[Depends(check_csrf)])
def incident_tlp(request: Request, user: Analyst, ident: str, label: FormLabel = "") -> Response:
    board = board_of(request)
    parsed = tlp.parse(label)
    with board.db.claim() as session:
        incident = queries.find_incident(session, ident)
        if incident is None:
            return _not_found(board, request, "No such incident.")
        set_tlp(session, incident, parsed, board.now(), actor=f"board:{user.name}")
        ticket = incident.public_id
    board.cache.invalidate()
    return RedirectResponse(f"/incidents/{ticket}", status_code=303)


# --------------------------------------------------------------------------- evidence packages


@router.get("/incidents/{ident}/package", response_model=None)
def incident_package(request: Request, user: PackageReader, ident: str) -> Response:
    board = board_of(request)
    with board.db.session() as session:
        incident = queries.find_incident(session, ident)
        if incident is None:
            return _not_found(board, request, "No such incident.")
        ticket = incident.public_id
        ids = [incident.id]
    return package_response(board, request, ids, {"incidents": [ticket]}, ticket)


@router.get("/campaigns/{campaign_id}/package", response_model=None)
def campaign_package(request: Request, user: PackageReader, campaign_id: int) -> Response:
    board = board_of(request)
    with board.db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            return _not_found(board, request, "No such campaign.")
        name = campaign.name
        from handoff.package import select_incidents  # the package's YARA only when asked

        try:
            ids = select_incidents(session, [], name)
        except UsageError:
            return _not_found(board, request, "This campaign has no incidents.")
    return package_response(board, request, ids, {"campaign": name}, f"campaign-{campaign_id}")


def package_response(
    board: Board, request: Request, ids: list[int], scope: dict[str, Any], label: str
) -> Response:
    """Write the package to a temporary file and stream it; the file goes when sent.
    The board's pages and the CSIRT's portal link (board.portal) both answer with it."""
    from handoff.package import write_package

    handle, name = tempfile.mkstemp(prefix="tocsin-package-", suffix=".zip")
    os.close(handle)
    path = Path(name)
    try:
        write_package(board.db, board.config, ids, path, board.now(), scope)
    except TocsinError as exc:
        path.unlink(missing_ok=True)
        return board.render(
            request, "error.html.j2", code=502, title="No package", message=str(exc)
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    filename = f"tocsin-package-{label}.zip"  # our own ticket or a number: no quoting needed
    return FileResponse(
        path,
        media_type="application/zip",
        filename=filename,
        headers={"Cache-Control": "private, no-store"},
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


# --------------------------------------------------------------------------- networks, search


@router.get("/networks/{asn}", response_class=HTMLResponse)
def network_page(
    request: Request, user: Analyst, asn: int, state: str = "", page: str | None = None
) -> HTMLResponse:
    board = board_of(request)
    size = board.config.board.page_size
    number = _page_number(page)
    with board.db.session() as session:
        network = board.cache.get(
            session, ("network", asn), lambda s: queries.network_detail(s, asn)
        )
        if network is None:
            return _not_found(board, request, f"No site on AS{asn} yet.")
        incidents, total = queries.list_incidents(
            session,
            default_tlp=board.default_tlp,
            asn=asn,
            state=state or None,
            offset=(number - 1) * size,
            limit=size,
        )
    return board.render(
        request,
        "network.html.j2",
        n=network,
        incidents=incidents,
        state=state,
        paging=_pages(request, total, number, size),
    )


@router.get("/search", response_class=HTMLResponse, response_model=None)
def search_page(request: Request, user: Analyst, q: str = "") -> Response:
    board = board_of(request)
    with board.db.session() as session:
        result = queries.search(session, q, board.campaigns(session), board.default_tlp)
    # One exact hit by ticket or ASN: go straight there.
    if result.kind == "ticket" and len(result.incidents) == 1:
        return RedirectResponse(f"/incidents/{result.incidents[0].ticket}", status_code=303)
    if result.kind == "asn":
        return RedirectResponse(f"/networks/{result.asns[0]}", status_code=303)
    return board.render(request, "search.html.j2", r=result)


# --------------------------------------------------------------------------- evidence


@router.get("/evidence/{sha256}", response_model=None)
def evidence(request: Request, user: Analyst, sha256: str) -> Response:
    board = board_of(request)
    with board.db.session() as session:
        blob = session.scalars(select(Evidence).where(Evidence.sha256 == sha256).limit(1)).first()
    return evidence_response(board, request, blob)


def evidence_response(board: Board, request: Request, blob: Evidence | None) -> Response:
    """A screenshot as an image; everything else (DOM, logs, payload zips) as a download,
    never rendered: a DOM is the attacker's HTML."""
    if blob is None or not board.evidence.exists(blob.sha256):
        return _not_found(board, request, "No such evidence.")
    data = board.evidence.get(blob.sha256)
    if blob.kind == "screenshot" and data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Response(data, media_type="image/png", headers={"Cache-Control": "private"})
    suffix = {"payload_zip": "zip", "requests": "json"}.get(blob.kind, "txt")
    media = "application/zip" if suffix == "zip" else "application/octet-stream"
    name = f"{blob.kind}-{blob.sha256[:12]}.{suffix}"  # made of our own words and hex only
    return Response(
        data,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


def _not_found(board: Board, request: Request, message: str) -> HTMLResponse:
    return board.render(request, "error.html.j2", code=404, title="Not found", message=message)
