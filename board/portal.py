"""The recipients' portal at ``/portal/{token}``: the link every notice carries.

The token stands for one contact (an abuse desk, a site owner). Its holder sees
the incidents that contact was told about, with their evidence, whatever their
TLP label; can ask for a re-check ("I fixed it"), which alone changes nothing
until the re-check finds the site clean; and can choose the notices' language
and opt out of a notice type, stored on the contact where the notifier reads
them. A token of the national CSIRT (the ladder's last rung, role ``cert``) also
fetches the evidence package of the incidents it was told about, at
``/portal/{token}/package``: the CSIRT's notice links there instead of
attaching a zip. A token that is expired, revoked, forged or unknown gets the same 404 as
any other, and counts towards the client address's failure limit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from board import queries, security
from board.pages import evidence_response, package_response
from board.web import Board, board_of
from notifier import tokens
from notifier.render import NOTICES
from store.incidents import request_recheck
from store.models import Contact, Incident, NoticeItem, PortalToken, Recipient

router = APIRouter()

# What a recipient may opt out of: the X-ARF types the notifier sends (notifier.suppress).
NOTICE_TYPES = {
    "malware": "malware distribution (downloads, drive-by, fake updates)",
    "phishing": "phishing pages",
    "remote_compromise": "compromised site (injected scripts, redirects, skimmers, miners, spam)",
}


def languages() -> list[str]:
    """The languages notices are written in (one folder of templates each)."""
    return sorted(p.name for p in NOTICES.iterdir() if p.is_dir() and not p.name.startswith("_"))


def _contact(board: Board, session: Session, token: str, now: datetime) -> Contact | None:
    digest = tokens.verify(board.config, token)
    if digest is None:
        return None
    row = session.scalars(select(PortalToken).where(PortalToken.token_hash == digest)).first()
    if row is None or row.revoked or (row.expires_at is not None and row.expires_at <= now):
        return None
    return session.get(Contact, row.contact_id)


def _missing(board: Board, request: Request) -> HTMLResponse:
    """The one answer to every bad token: it says nothing about why. Past the client's
    failure limit the answer is 429. (A valid token is served whatever its address did.)"""
    wait = board.blocked(request)
    if wait is not None:
        response = board.render(request, "portal_missing.html.j2", code=429, user=None)
        response.headers["Retry-After"] = str(wait)
        return response
    board.failed(request)
    return board.render(request, "portal_missing.html.j2", code=404, user=None)


def _csrf(board: Board, token: str) -> str:
    return security.csrf_token(board.key, "portal:" + tokens.token_hash(token))


@router.get("/portal/{token}", response_class=HTMLResponse)
def portal(request: Request, token: str) -> HTMLResponse:
    board = board_of(request)
    with board.db.session() as session:
        contact = _contact(board, session, token, board.now())
        if contact is None:
            return _missing(board, request)
        incidents = queries.contact_incidents(session, contact.id, board.default_tlp)
        details = [
            queries.incident_detail(
                session,
                session.get(Incident, row.id),
                board.evidence,
                default_tlp=board.default_tlp,
                max_checks=1,
            )
            for row in incidents[:50]
        ]
    return board.render(
        request,
        "portal.html.j2",
        user=None,
        contact=contact,
        details=details,
        more=max(0, len(incidents) - len(details)),
        token=token,
        csrf=_csrf(board, token),
        languages=languages(),
        types=NOTICE_TYPES,
        message=request.query_params.get("done"),
    )


async def _form(board: Board, request: Request, token: str) -> dict[str, str | list[str]] | None:
    form = await request.form()
    if not security.csrf_ok(board.key, "portal:" + tokens.token_hash(token), form.get("csrf")):
        return None
    return {key: form.getlist(key) if key == "optout" else str(form.get(key)) for key in form}


@router.post("/portal/{token}/recheck", response_model=None)
async def portal_recheck(request: Request, token: str) -> Response:
    board = board_of(request)
    form = await _form(board, request, token)
    return await run_in_threadpool(_recheck, board, request, token, form)


def _with_contact(
    board: Board,
    request: Request,
    token: str,
    form: dict | None,
    action: Callable[[Session, Contact, dict], str | None],
) -> Response:
    """Run a portal form's ``action`` for the token's contact in one write transaction.
    ``action`` returns what to tell the recipient, or None for "not yours" (404)."""
    outcome = None
    with board.db.claim() as session:
        contact = _contact(board, session, token, board.now())
        if contact is not None:
            outcome = "expired" if form is None else action(session, contact, form)
    # Counting a failure writes: only once the claim above has let go of the store.
    return _missing(board, request) if outcome is None else _back(token, outcome)


def _recheck(board: Board, request: Request, token: str, form: dict | None) -> Response:
    def queue(session: Session, contact: Contact, form: dict) -> str | None:
        ticket = str(form.get("incident") or "")
        incident = queries.find_incident(session, ticket) if ticket.startswith("TCS-") else None
        told = incident is not None and session.scalar(
            select(NoticeItem.id).where(
                NoticeItem.incident_id == incident.id, NoticeItem.contact_id == contact.id
            )
        )
        if not told:
            return None
        queued = request_recheck(session, incident, board.now(), actor=f"portal:{contact.id}")
        return "recheck" if queued else "recheck-pending"

    return _with_contact(board, request, token, form, queue)


@router.post("/portal/{token}/preferences", response_model=None)
async def portal_preferences(request: Request, token: str) -> Response:
    board = board_of(request)
    form = await _form(board, request, token)
    return await run_in_threadpool(_preferences, board, request, token, form)


def _preferences(board: Board, request: Request, token: str, form: dict | None) -> Response:
    def save(session: Session, contact: Contact, form: dict) -> str:
        language = str(form.get("language") or "")
        if language in languages():
            contact.language = language
            contact.languages = [language]
            # Every rung of this contact follows the choice: follow-ups come in it too.
            session.execute(
                update(Recipient)
                .where(Recipient.contact_id == contact.id)
                .values(language=language)
            )
        chosen = form.get("optout") or []
        contact.optout_types = sorted({t for t in chosen if t in NOTICE_TYPES})
        return "saved"

    return _with_contact(board, request, token, form, save)


def _back(token: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/portal/{token}?done={done}", status_code=303)


@router.get("/portal/{token}/evidence/{sha256}", response_model=None)
def portal_evidence(request: Request, token: str, sha256: str) -> Response:
    board = board_of(request)
    with board.db.session() as session:
        contact = _contact(board, session, token, board.now())
        if contact is None:
            return _missing(board, request)
        told = [r.id for r in queries.contact_incidents(session, contact.id, board.default_tlp)]
        blob = queries.evidence_of_incidents(session, told, sha256) if told else None
    if blob is None or blob.kind != "screenshot":
        return board.render(request, "portal_missing.html.j2", code=404, user=None)
    return evidence_response(board, request, blob)


@router.get("/portal/{token}/package", response_model=None)
def portal_package(request: Request, token: str) -> Response:
    """The evidence package of the incidents this token's CSIRT was told about, streamed
    like the board's own download. Any other token, or a CSIRT with none: 404."""
    board = board_of(request)
    with board.db.session() as session:
        contact = _contact(board, session, token, board.now())
        if contact is None:
            return _missing(board, request)
        ids = queries.csirt_package_incidents(session, contact.id)
        tickets = [session.get(Incident, i).public_id for i in ids]
    if not ids:
        return board.render(request, "portal_missing.html.j2", code=404, user=None)
    return package_response(board, request, ids, {"incidents": tickets}, "portal")
