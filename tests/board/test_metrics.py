"""/metrics' job-duration histogram, /healthz's verdict per job (ok, stale: older than
`serve.stale_after` intervals, never) and its 503 when the store cannot be read."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from board_support import BoardProcess
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from board.metrics import job_health
from store import job_leases
from store.db import Database
from tocsin.config import Config, FeedConfig, ServeConfig
from tocsin.sandbox.core import to_toml

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TOKEN = "metrics-test-admin-token-0123456789abcdef"


def test_job_health_by_interval() -> None:
    config = Config(
        serve=ServeConfig(crawl_every="5m", notify_every="15m"),
        feeds=[FeedConfig(url="https://feed.example/", source="f", every="1h")],
    )

    def row(name: str, ago: timedelta | None) -> SimpleNamespace:
        return SimpleNamespace(name=name, last_success_at=None if ago is None else NOW - ago)

    rows = [
        row("crawl", timedelta(minutes=16)),  # 3 intervals of 5 min, and more
        row("notify", timedelta(minutes=44)),  # under 3 x 15 min
        row("feed:f", timedelta(hours=2)),
        row("enrich", None),
        row("feed:removed", timedelta(days=9)),  # no longer in the config: no interval
    ]
    assert job_health(config, rows, NOW) == {
        "crawl": {"age_seconds": 960.0, "state": "stale"},
        "notify": {"age_seconds": 2640.0, "state": "ok"},
        "feed:f": {"age_seconds": 7200.0, "state": "ok"},
        "enrich": {"age_seconds": None, "state": "never"},
        "feed:removed": {"age_seconds": 777600.0, "state": "ok"},
    }


def _runs(db: Database, name: str, seconds: list[float]) -> None:
    """Record finished runs of ``name`` that took ``seconds`` (as the scheduler does)."""
    for took in seconds:
        held = job_leases.take(db, name, timedelta(0), "test:1", timedelta(minutes=5))
        assert held is not None
        job_leases.finish(
            db, replace(held, started_at=held.started_at - timedelta(seconds=took)), None
        )


def test_job_durations_histogram_and_healthz_503(
    db_url: str, tmp_path: Path, make_cli: type
) -> None:
    """Runs recorded in the store reach /metrics as a histogram; a store the board cannot
    read makes /healthz answer 503, and it recovers with the store."""
    db = Database(db_url)
    _runs(db, "crawl", [3, 10, 40, 40, 7200])  # clear of the bounds: a run adds its overhead
    _runs(db, "notify", [2])  # and 3 s of slack before 5 s
    config = tmp_path / "tocsin.toml"
    config.write_text(
        to_toml({"database": {"url": db_url}, "board": {"token": TOKEN}}), encoding="utf-8"
    )
    with BoardProcess(make_cli(tmp_path, config)) as board, board.client() as http:
        assert http.get("/metrics").status_code == 401
        scraped = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert scraped.status_code == 200
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(scraped.text)
            for sample in family.samples
            if family.name == "tocsin_job_duration_seconds"
        }

        def bucket(job: str, le: str) -> float:
            return samples[("tocsin_job_duration_seconds_bucket", (("job", job), ("le", le)))]

        assert [bucket("crawl", le) for le in ("1.0", "5.0", "15.0", "60.0", "+Inf")] == [
            0,
            1,
            2,
            4,
            5,
        ]
        assert samples[("tocsin_job_duration_seconds_count", (("job", "crawl"),))] == 5
        total = samples[("tocsin_job_duration_seconds_sum", (("job", "crawl"),))]
        assert abs(total - 7293) < 10  # each run's own overhead is milliseconds
        assert bucket("notify", "5.0") == 1 and bucket("notify", "+Inf") == 1

        assert http.get("/healthz").json()["jobs"]["crawl"]["state"] == "ok"
        with db.engine.begin() as conn:  # the store loses the table the check reads
            conn.execute(text("ALTER TABLE job_leases RENAME TO job_leases_away"))
        try:
            down = http.get("/healthz")
            assert down.status_code == 503 and down.json() == {"status": "unavailable"}
        finally:
            with db.engine.begin() as conn:
                conn.execute(text("ALTER TABLE job_leases_away RENAME TO job_leases"))
        assert http.get("/healthz").status_code == 200
    db.dispose()
