"""``/metrics`` (Prometheus text, bearer token) and ``/healthz`` (job ages, anyone).

Both read the store, not this process: the schedule runs in ``tocsin serve``'s main
process (or in another ``serve`` on the same store) and the board's workers are
separate processes, so what the jobs did is what ``job_leases`` says
(``store/job_leases.py``). Job durations are therefore counted in the store too: each
job's row keeps a count per duration bucket, which the histogram reads.

Who may read them: ``/metrics`` counts the store's contents, which the board shows
only to analysts, so it takes an analyst's (or ``board.token``'s) bearer token, as
the API does. ``/healthz`` is for load balancers and service managers that carry no
token: it says only each job's age and ``ok``/``stale``/``never``, nothing of the
store's contents; with no scheduled job yet it is the contract's ``{"status": "ok"}``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from board.web import api_analyst, board_of
from store import job_leases
from store.leases import is_due, wall_now
from store.models import Check, Notice, Url
from tocsin.config import Config

router = APIRouter()
log = logging.getLogger(__name__)

NOTICE_STATES = ("sent", "bounced", "failed")


def intervals(config: Config) -> dict[str, float]:
    """Each scheduled job's interval in seconds, by the job's name."""
    serve = config.serve
    every = {
        "crawl": serve.crawl_every,
        "enrich": serve.enrich_every,
        "notify": serve.notify_every,
        "recheck": serve.recheck_every,
        "inbox": serve.inbox_every,
    }
    every.update({feed.job: feed.every for feed in config.feeds})
    return {name: delta.total_seconds() for name, delta in every.items()}


def job_health(config: Config, rows: list[Any], now: datetime) -> dict[str, dict[str, Any]]:
    """Per job: age of its last success in seconds (None: never) and ok/stale/never."""
    every = intervals(config)
    health = {}
    for row in rows:
        if row.last_success_at is None:
            health[row.name] = {"age_seconds": None, "state": "never"}
            continue
        age = max(0.0, (now - row.last_success_at).total_seconds())
        limit = every.get(row.name, 0) * config.serve.stale_after
        state = "stale" if limit and age > limit else "ok"
        health[row.name] = {"age_seconds": round(age, 1), "state": state}
    return health


@router.get("/healthz", response_model=None)
def healthz(request: Request) -> dict[str, Any] | JSONResponse:
    board = board_of(request)
    try:
        rows = job_leases.jobs(board.db)
    except SQLAlchemyError:  # the board is up but cannot read the store: not healthy
        log.warning("healthz: cannot read the store", exc_info=True)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    if not rows:
        return {"status": "ok"}
    return {"status": "ok", "jobs": job_health(board.config, rows, wall_now())}


@router.get("/metrics")
def metrics(request: Request) -> Response:
    api_analyst(request)
    board = board_of(request)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StoreCollector(board.db, board.config, board.now()))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class _StoreCollector:
    """The store's figures at the moment of the scrape."""

    def __init__(self, db: Any, config: Config, now: datetime) -> None:
        self.db, self.config, self.now = db, config, now

    def collect(self) -> Any:
        with self.db.session() as session:
            due = session.scalar(select(func.count()).select_from(Url).where(is_due(self.now)))
            verdicts = session.execute(
                select(Check.verdict, func.count()).group_by(Check.verdict)
            ).all()
            notices = dict(
                session.execute(
                    select(Notice.state, func.count())
                    .where(Notice.state.in_(NOTICE_STATES))
                    .group_by(Notice.state)
                ).all()
            )
        yield GaugeMetricFamily("tocsin_urls_due", "URLs due for a check now.", value=due or 0)
        checks = CounterMetricFamily(
            "tocsin_checks", "Checks stored, by verdict.", labels=["verdict"]
        )
        for verdict, count in sorted(verdicts):
            checks.add_metric([verdict], count)
        yield checks
        states = GaugeMetricFamily("tocsin_notices", "Notices by state.", labels=["state"])
        for state in NOTICE_STATES:
            states.add_metric([state], notices.get(state, 0))
        yield states
        yield from self._jobs()

    def _jobs(self) -> Any:
        rows = job_leases.jobs(self.db)
        now = wall_now()
        duration = GaugeMetricFamily(
            "tocsin_job_last_duration_seconds", "How long the job's last run took.", labels=["job"]
        )
        age = GaugeMetricFamily(
            "tocsin_job_last_success_age_seconds",
            "Seconds since the job last ran to its end.",
            labels=["job"],
        )
        success = GaugeMetricFamily(
            "tocsin_job_last_success_timestamp_seconds",
            "When the job last ran to its end (Unix time).",
            labels=["job"],
        )
        running = GaugeMetricFamily(
            "tocsin_job_running", "1 while a process holds the job's lease.", labels=["job"]
        )
        histogram = HistogramMetricFamily(
            "tocsin_job_duration_seconds", "How long the job's runs took.", labels=["job"]
        )
        for row in rows:
            if row.runs:
                histogram.add_metric(
                    [row.name], _cumulative(row.duration_buckets), sum_value=row.duration_sum
                )
            if row.last_duration is not None:
                duration.add_metric([row.name], row.last_duration)
            if row.last_success_at is not None:
                age.add_metric([row.name], max(0.0, (now - row.last_success_at).total_seconds()))
                success.add_metric([row.name], row.last_success_at.timestamp())
            live = row.token is not None and row.expires_at is not None and row.expires_at > now
            running.add_metric([row.name], 1 if live else 0)
        yield from (histogram, duration, age, success, running)


def _cumulative(counts: list[int] | None) -> list[tuple[str, float]]:
    """Prometheus buckets (``le``, runs at most that long) from per-bucket counts."""
    buckets, total = [], 0
    padded = list(counts or []) + [0] * len(job_leases.DURATION_BUCKETS)
    for bound, count in zip(job_leases.DURATION_BUCKETS, padded, strict=False):
        total += count
        buckets.append((floatToGoString(bound), total))
    return buckets
