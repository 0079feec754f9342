"""The HTTP API under ``/api/v1``: JSON for scripts and researchers, bearer tokens only.

Every error is ``{"error": "one line"}`` with 400 (malformed), 401 (no or wrong
token), 403 (role), 404 (unknown, or not yours), 413 (too large) or 422 (a field
is wrong); never a 500 for anything a client can send. TLP applies to
researchers (see ``board.tlp``).
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError
from sqlalchemy import exists, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from board import queries, tlp
from board.auth import Principal
from board.web import ApiError, api_analyst, api_error, api_principal, board_of
from ingest import ingest_urls
from store.incidents import new_public_id
from store.models import VERDICTS, FeedSubmission, IncidentUrl, Submission
from store.queries import export_records, iso, tlp_label, write_csv
from tocsin import __version__

Caller = Annotated[Principal, Depends(api_principal)]
AnalystCaller = Annotated[Principal, Depends(api_analyst)]


class SubmissionIn(BaseModel):
    """A URL list to check. ``source`` names the feed; ``campaign`` tags every URL."""

    model_config = ConfigDict(extra="forbid")
    urls: list[StrictStr]
    source: StrictStr = Field(default="api", min_length=1, max_length=100)
    campaign: StrictStr | None = Field(default=None, min_length=1, max_length=200)


class Rejected(BaseModel):
    line: str
    reason: str


class SubmissionOut(BaseModel):
    id: str
    lines: int
    new: int
    duplicate: int
    rejected: list[Rejected]


def create() -> FastAPI:
    """The API as its own app (mounted at /api/v1), so its OpenAPI document is its own."""
    api = FastAPI(
        title="tocsin API",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        description="Submit suspect URLs and follow what became of them. "
        "Authenticate with `Authorization: Bearer TOKEN` (`tocsin token create`).",
    )
    api.add_exception_handler(ApiError, api_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    for path, handler in (
        ("/status", status),
        ("/urls", urls),
        ("/submissions", my_submissions),
        ("/submissions/{public_id}", submission),
        ("/campaigns", campaigns),
        ("/campaigns/{campaign_id}", campaign),
        ("/incidents", incidents),
        ("/incidents/{ident}", incident),
        ("/networks/{asn}", network),
        ("/export.csv", export_csv),
    ):
        api.add_api_route(path, _plain_json(handler), methods=["GET"], response_model=None)
    api.add_api_route(
        "/submissions", submit, methods=["POST"], status_code=201, response_model=SubmissionOut
    )
    return api


def _plain_json(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Send what a handler returns with json.dumps: FastAPI's own encoder walks every
    value of a 100-record page in Python and cost more than the queries behind it."""

    @functools.wraps(handler)
    def send(*args: Any, **kwargs: Any) -> Response:
        result = handler(*args, **kwargs)
        return result if isinstance(result, Response) else JSONResponse(result)

    return send


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = (exc.errors() or [{}])[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
    return JSONResponse(
        {"error": f"{where}: {first.get('msg', 'invalid value')}"[:300]}, status_code=422
    )


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"error": str(exc.detail)[:300]}, status_code=exc.status_code, headers=exc.headers
    )


def _researcher(caller: Principal) -> str | None:
    """The name whose submissions the caller owns, when TLP limits what they see."""
    return None if caller.is_analyst else caller.name


# --------------------------------------------------------------------------- status and URLs


def _encoded(data: Any) -> bytes:
    return json.dumps(data).encode()


def _json_bytes(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def status(request: Request, caller: Caller) -> Response:
    """The `tocsin status --json` summary. Researchers get the counters and the
    campaigns labelled TLP:CLEAR or TLP:GREEN."""
    board = board_of(request)

    def make(s: Session) -> bytes:
        summary = board.status(s)
        if caller.is_analyst:
            return _encoded(summary)
        visible = {r.name for r in board.campaigns(s) if tlp.shareable(r.tlp)}
        shown = [c for c in summary["campaigns"] if c["name"] in visible]
        # Which addresses bounce, and why, is for analysts: researchers get the counts.
        bounces = {**summary.get("bounces", {}), "contacts": []}
        return _encoded({**summary, "campaigns": shown, "bounces": bounces})

    # Encoded once per store version and audience: 2,000 campaigns make 300 kB of JSON.
    with board.db.session() as session:
        return _json_bytes(board.cache.get(session, ("status.json", caller.is_analyst), make))


def _cursor(value: str | None) -> int:
    if not value:
        return 0
    if not value.isdigit() or len(value) > 18:
        raise ApiError(422, "cursor: not a cursor this API gave out")
    return int(value)


def _limit(request: Request, value: int | None) -> int:
    size = board_of(request).config.board.page_size
    if value is None:
        return size
    if not 1 <= value <= queries.MAX_LIST:
        raise ApiError(422, f"limit: expected 1 to {queries.MAX_LIST}")
    return value


def urls(
    request: Request,
    caller: Caller,
    verdict: str | None = None,
    campaign: str | None = None,
    asn: int | None = None,
    submission: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Export records, filtered, oldest first; pass `next` back as `cursor`."""
    if verdict and verdict not in VERDICTS:
        raise ApiError(422, f"verdict: expected one of {', '.join(VERDICTS)}")
    board = board_of(request)
    with board.db.session() as session:
        items, after = queries.list_urls(
            session,
            default_tlp=board.default_tlp,
            verdict=verdict,
            campaign=campaign,
            asn=asn,
            submission=submission,
            after=_cursor(cursor),
            limit=_limit(request, limit),
            researcher=_researcher(caller),
        )
    return {"items": items, "next": None if after is None else str(after)}


# --------------------------------------------------------------------------- submissions


async def submit(request: Request, caller: Caller) -> SubmissionOut:
    """Check a list of URLs: the same accounting as `tocsin ingest` (body:
    `{"urls": [...], "source": "name", "campaign": null}`)."""
    board = board_of(request)
    body = await request.body()
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"malformed JSON: {str(exc)[:200]}") from None
    try:
        given = SubmissionIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        if first["type"] == "extra_forbidden":
            raise ApiError(422, f"{where}: unknown field") from None
        raise ApiError(422, f"{where}: {first['msg']}") from None
    if len(given.urls) > board.config.board.max_urls:
        raise ApiError(
            413,
            f"urls: {len(given.urls)} URLs, over board.max_urls ({board.config.board.max_urls})",
        )
    return await run_in_threadpool(_store_submission, request, caller, given)


def _store_submission(request: Request, caller: Principal, given: SubmissionIn) -> SubmissionOut:
    board = board_of(request)
    now = board.now()
    public_id = new_public_id("SUB")
    report = ingest_urls(
        board.config,
        board.db,
        now,
        given.urls,
        ref=f"api:{public_id}",
        source_name=given.source.strip(),
        campaign=given.campaign.strip() if given.campaign else None,
    )
    with board.db.session() as session:
        session.add(
            Submission(
                public_id=public_id,
                run_id=report.run_id,
                submitter=caller.name,
                source=given.source.strip(),
                campaign=given.campaign,
                created_at=now,
                lines=len(given.urls),
            )
        )
        rejected = queries.submission_rejects(session, report.run_id, given.urls)
    return SubmissionOut(
        id=public_id,
        lines=len(given.urls),
        new=report.new,
        duplicate=report.duplicate,
        rejected=[Rejected(**r) for r in rejected],
    )


def _submission_json(view: queries.SubmissionView) -> dict[str, Any]:
    s = view.submission
    urls = []
    for record in view.records:
        ticket = (record.get("incident") or {}).get("id")
        urls.append({**record, "notified": view.notified.get(ticket, []) if ticket else []})
    return {
        "id": s.public_id,
        "created": iso(s.created_at),
        "source": s.source,
        "campaign": s.campaign,
        "submitter": s.submitter,
        "lines": s.lines,
        "rejected": view.rejected,
        "urls": urls,
        "next": None if view.next_line is None else str(view.next_line),
    }


def submission(
    request: Request,
    caller: Caller,
    public_id: str,
    limit: int | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """What became of each URL: verdict, family, incident, whom tocsin told and when.
    Long submissions come in pages (`limit`, default 100): pass `next` back as `cursor`."""
    board = board_of(request)
    size = 100 if limit is None else _limit(request, limit)
    with board.db.session() as session:
        found = session.scalars(
            select(Submission).where(Submission.public_id == public_id[:32])
        ).first()
        if found is None or not (caller.is_analyst or found.submitter == caller.name):
            raise ApiError(404, "no such submission")
        view = queries.submission_view(
            session, found, board.default_tlp, after_line=_cursor(cursor), limit=size
        )
        return _submission_json(view)


def my_submissions(request: Request, caller: Caller) -> dict[str, Any]:
    """The caller's submissions, newest first (analysts: everyone's)."""
    board = board_of(request)
    with board.db.session() as session:
        query = select(Submission).order_by(Submission.id.desc()).limit(queries.MAX_LIST)
        if not caller.is_analyst:
            query = query.where(Submission.submitter == caller.name)
        return {
            "items": [
                {
                    "id": s.public_id,
                    "created": iso(s.created_at),
                    "source": s.source,
                    "campaign": s.campaign,
                    "submitter": s.submitter,
                    "lines": s.lines,
                }
                for s in session.scalars(query)
            ]
        }


# --------------------------------------------------------------------------- campaigns, incidents


def campaigns(
    request: Request, caller: Caller, family: str | None = None, q: str | None = None
) -> Response:
    board = board_of(request)
    needle = (q or "").lower()

    def make(s: Session) -> bytes:
        rows = board.campaigns(s)
        return _encoded(
            {
                "items": [
                    r.as_json()
                    for r in rows
                    if (caller.is_analyst or tlp.shareable(r.tlp))
                    and (not family or r.family == family)
                    and needle in r.name.lower()
                ]
            }
        )

    with board.db.session() as session:
        if family or needle:
            return _json_bytes(make(session))
        return _json_bytes(board.cache.get(session, ("campaigns.json", caller.is_analyst), make))


def campaign(request: Request, caller: Caller, campaign_id: int) -> Response:
    """A campaign with its remediation curves and its networks."""
    board = board_of(request)
    with board.db.session() as session:
        row = next((r for r in board.campaigns(session) if r.id == campaign_id), None)
        if row is None or not (caller.is_analyst or tlp.shareable(row.tlp)):
            raise ApiError(404, "no such campaign")
        now = board.now()
        # Encoded once per store version (and hour): a large campaign's curves are
        # thousands of steps, a megabyte of JSON.
        body = board.cache.get(
            session,
            ("campaign.json", campaign_id, now.replace(minute=0, second=0, microsecond=0)),
            lambda s: _encoded(_campaign_json(row, queries.campaign_detail(s, campaign_id, now))),
        )
    return _json_bytes(body)


def _campaign_json(row: queries.CampaignRow, detail: queries.CampaignDetail) -> dict[str, Any]:
    curves, networks = detail.curves, detail.networks
    return {
        **row.as_json(),
        "iocs": detail.iocs,
        "remediation": {
            "notified": curves.notified,
            "median_days": curves.median_days,
            "overall": [_step(s) for s in curves.overall],
            "by_level": {str(k): [_step(s) for s in v] for k, v in curves.by_level.items()},
        },
        "networks_total": len(networks),
        "networks": [
            {
                "asn": n.asn,
                "as_name": n.as_name,
                "incidents": n.incidents,
                "open": n.open,
                "resolved": n.resolved,
                "median_days_to_clean": n.median_days_to_clean,
                "notices": n.notices,
                "bounce_rate": n.bounce_rate,
                "reply_rate": n.reply_rate,
            }
            for n in networks[:100]
        ],
    }


def _step(step: Any) -> dict[str, Any]:
    return {
        "days": round(step.t, 3),
        "still_compromised": round(step.survival, 4),
        "at_risk": step.at_risk,
        "resolved": step.events,
        "censored": step.censored,
    }


def incidents(
    request: Request,
    caller: Caller,
    campaign: int | None = None,
    asn: int | None = None,
    state: str | None = None,
    limit: int | None = None,
    page: int = 1,
) -> dict[str, Any]:
    """Incidents, newest first, by page."""
    board = board_of(request)
    size = _limit(request, limit)
    with board.db.session() as session:
        rows, total = queries.list_incidents(
            session,
            default_tlp=board.default_tlp,
            campaign_id=campaign,
            asn=asn,
            state=state,
            offset=(max(1, page) - 1) * size,
            limit=size,
            shareable_only=not caller.is_analyst,
        )
    return {"items": [r.as_json() for r in rows], "total": total, "page": max(1, page)}


def _owns(session: Any, name: str, incident_id: int) -> bool:
    """The researcher submitted one of the incident's URLs."""
    return bool(
        session.scalar(
            select(
                exists()
                .where(IncidentUrl.incident_id == incident_id)
                .where(FeedSubmission.url_id == IncidentUrl.url_id)
                .where(FeedSubmission.run_id == Submission.run_id)
                .where(Submission.submitter == name)
            )
        )
    )


def incident(request: Request, caller: Caller, ident: str) -> dict[str, Any]:
    """An incident: its site and network, URLs, checks, notices (without their text for
    researchers) and its history."""
    board = board_of(request)
    with board.db.session() as session:
        found = queries.find_incident(session, ident)
        if found is None:
            raise ApiError(404, "no such incident")
        detail = queries.incident_detail(
            session, found, board.evidence, default_tlp=board.default_tlp
        )
        if not caller.is_analyst and not (
            tlp.shareable(detail.tlp) or _owns(session, caller.name, found.id)
        ):
            raise ApiError(404, "no such incident")
        urls = list(queries.records_for(session, detail.urls, board.default_tlp))
    return _incident_json(detail, urls, full=caller.is_analyst)


def _incident_json(d: queries.IncidentDetail, urls: list[Any], *, full: bool) -> dict[str, Any]:
    i, site = d.incident, d.site
    return {
        "id": i.public_id,
        "tlp": tlp_label(d.tlp),
        "campaign": {"id": d.campaign.id, "name": d.campaign.name},
        "state": i.state,
        "level": i.level,
        "family": i.family,
        "first_seen": iso(i.first_seen),
        "last_confirmed": iso(i.last_confirmed),
        "first_notified": iso(i.first_notified),
        "resolved": iso(i.resolved_at),
        "recheck_requested": iso(i.recheck_requested_at),
        "reopened": i.reopen_count,
        "site": {
            "host": site.host,
            "registered_domain": site.registered_domain,
            "ips": list(site.ips or []),
            "asn": site.asn,
            "as_name": site.as_name,
            "prefix": site.prefix,
            "country": site.country,
            "registrar": site.registrar,
        },
        "urls": urls,
        "checks": [
            {
                "id": v.check.id,
                "kind": v.check.kind,
                "started": iso(v.check.started_at),
                "verdict": v.check.verdict,
                "family": v.check.family,
                "rules": list(v.check.rules or []),
                "iocs": dict(v.check.iocs or {}),
                "evidence": list(v.check.evidence_lines or []),
                "final_url": v.check.final_url,
                "redirect_chain": list(v.check.redirect_chain or []),
                "title": v.title,
                "blobs": [
                    {"kind": b.kind, "sha256": b.sha256, "size": b.size, "note": b.note}
                    for b in v.evidence
                ],
            }
            for v in d.checks
        ],
        "payload_sha256": [sha for sha, _ in d.payload_hashes],
        "notices": [
            {
                "ticket": n.ticket,
                "recipient": n.recipient if full else None,
                "role": n.role,
                "level": n.level,
                "language": n.language,
                "state": n.state,
                "sent": iso(n.sent_at),
                "replies": len(n.replies),
                **({"subject": n.subject, "text": n.text} if full else {}),
            }
            for n in d.notices
        ],
        "events": [{"at": iso(e.at), "kind": e.kind, "actor": e.actor} for e in d.events],
    }


def network(request: Request, caller: Caller, asn: int) -> dict[str, Any]:
    """How a network's abuse desk behaves: incidents, notices, bounces, replies."""
    board = board_of(request)
    with board.db.session() as session:
        found = board.cache.get(session, ("network", asn), lambda s: queries.network_detail(s, asn))
    if found is None:
        raise ApiError(404, "no site on that network")
    return found.as_json()


def export_csv(request: Request, caller: AnalystCaller, campaign: str | None = None) -> Any:
    """The `tocsin export --format csv` rows, streamed."""
    board = board_of(request)

    def rows() -> Iterator[bytes]:
        with board.db.session() as session:
            buffer = io.StringIO()
            records = export_records(session, campaign=campaign, default_tlp=board.default_tlp)
            batch: list[dict[str, Any]] = []
            header = True
            for record in records:
                batch.append(record)
                if len(batch) >= 500:
                    write_csv(batch, buffer, header=header)
                    header = False
                    batch = []
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
            write_csv(batch, buffer, header=header)
            yield buffer.getvalue().encode()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="tocsin-export.csv"'},
    )
