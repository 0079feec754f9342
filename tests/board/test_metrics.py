"""/healthz's verdict per job: ok, stale (older than `serve.stale_after` intervals), never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from board.metrics import job_health
from tocsin.config import Config, FeedConfig, ServeConfig

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


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
