"""``tocsin crawl`` and ``tocsin worker`` say how many checks the store dropped because
their lease was taken over (``RunContext.dropped``): a crawl presumed dead whose URLs
another crawl took over, which stores their checks instead.

The take-over is real rows in the store: a ``sitecustomize`` on the crawl's
``PYTHONPATH`` (the spawned check worker inherits it) gives the leases of the URLs
marked ``steal`` to another token just before the store writer's transaction, as a
crawl that claimed them meanwhile would.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

from crawl_support import add_urls, new_store, run_cli, sandbox_config, start_cli
from sqlalchemy import select

from store.db import Database
from store.models import Url
from tocsin.cli.worker import stopped_line

NOW = "2026-03-02T10:00:00Z"
THIEF = "another-crawl"
STEAL = f'''"""Test only: another crawl takes over the leases of the URLs marked steal."""
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from pipelines import store
from store.models import Url

_store_batch = store.StoreWriter.store_batch


def store_batch(self, items, now):
    stolen = [item.url_id for item in items if "steal" in item.url]
    if stolen:
        with self.db.session() as session:
            session.execute(
                update(Url)
                .where(Url.id.in_(stolen))
                .values(
                    lease_token={THIEF!r},
                    lease_expires_at=datetime.now(UTC) + timedelta(hours=1),  # wall clock
                )
            )
    return _store_batch(self, items, now)


store.StoreWriter.store_batch = store_batch
'''


def _thief(folder: Path) -> dict[str, str]:
    """The environment that installs the lease thief in the crawl's processes."""
    site_dir = folder / "thief"
    site_dir.mkdir()
    (site_dir / "sitecustomize.py").write_text(STEAL, encoding="utf-8")
    return {"PYTHONPATH": str(site_dir)}


def _urls(sandbox) -> list[str]:
    pages = [sandbox.url(site) for site in ("clean-bookshop", "clean-daycare", "clean-chapel")]
    return [f"{page}?steal={n}" for n, page in enumerate(pages)] + [f"{pages[0]}?n=1"]


def _stolen(db: Database) -> set[int]:
    with db.session() as session:
        return set(session.scalars(select(Url.id).where(Url.lease_token == THIEF)))


def test_crawl_prints_the_checks_dropped(sandbox, tmp_path: Path) -> None:
    db_url = new_store(f"sqlite:///{tmp_path / 'tocsin.db'}")
    config = sandbox_config(sandbox, tmp_path, db_url, browser={"enabled": False})
    db = Database(db_url)
    add_urls(db, _urls(sandbox))
    crawl = run_cli(tmp_path, config, "--now", NOW, "crawl", env=_thief(tmp_path))
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    assert "Checked 1 URLs" in crawl.stdout
    assert "Dropped 3 checks: their lease was taken over by another crawl" in crawl.stdout
    assert len(_stolen(db)) == 3  # left to the crawl that took them
    db.dispose()


def test_worker_prints_the_checks_dropped(sandbox, tmp_path: Path, private_pg_url: str) -> None:
    config = sandbox_config(
        sandbox, tmp_path, private_pg_url, browser={"enabled": False}, worker={"heartbeat": "1s"}
    )
    assert run_cli(tmp_path, config, "init").returncode == 0
    db = Database(private_pg_url)
    add_urls(db, _urls(sandbox))
    queued = run_cli(tmp_path, config, "--now", NOW, "crawl", "--enqueue")
    assert "queued 4 due URLs in 1 batches" in queued.stdout, queued.stdout + queued.stderr
    log = tmp_path / "worker.log"
    worker = start_cli(tmp_path, config, "--now", NOW, "worker", log=log, env=_thief(tmp_path))
    try:
        deadline = time.monotonic() + 120
        while len(_stolen(db)) < 3 or "dropped 3 checks" not in log.read_text(errors="replace"):
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    said = log.read_text(errors="replace")
    assert worker.returncode == 0, said
    assert "dropped 3 checks: their lease was taken over" in said  # the job's line
    assert stopped_line(Counter(batches=1, checked=1, dropped=3)) in said  # the summary
    db.dispose()
