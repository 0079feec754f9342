"""Two ``tocsin crawl`` runs at once on one store check every due URL exactly once.

Before leases (issue 14) both runs read the same due URLs and both checked each
of them. Small claims (``crawl.batch_size`` 3) make the two runs interleave.
"""

from __future__ import annotations

import time

from crawl_support import add_urls, checks_per_url, sample_sites, sandbox_config, start_cli

from store import leases, migrate
from store.db import Database

NOW = "2026-03-02T10:00:00Z"


def test_two_crawls_at_once_check_each_url_once(sandbox, tmp_path, db_url) -> None:
    db = Database(db_url)
    migrate.upgrade(db)
    ids = set(add_urls(db, [sandbox.url(site) for site in sample_sites()]).values())
    # Leases of 10 s: a crawl that did not extend its leases would lose some to the other.
    config = sandbox_config(sandbox, tmp_path, db_url, crawl={"batch_size": 3, "lease_seconds": 10})
    started = time.monotonic()
    procs = [
        start_cli(tmp_path, config, "--now", NOW, "crawl", log=tmp_path / f"crawl-{n}.log")
        for n in (1, 2)
    ]
    for proc in procs:
        proc.wait(timeout=300)
    logs = [(tmp_path / f"crawl-{n}.log").read_text() for n in (1, 2)]
    for proc, log in zip(procs, logs, strict=True):
        assert proc.returncode in (0, 1), log[-3000:]
        assert "were not checked" not in log, log[-3000:]
        assert "lease is lost" not in log, log[-3000:]
    assert checks_per_url(db) == dict.fromkeys(ids, 1), logs
    checked = [int(log.split("Checked ")[1].split()[0]) for log in logs]
    assert sum(checked) == len(ids), checked  # (before leases: twice each, when they overlap)
    assert leases.unclaimed_due(db, leases.wall_now()) == 0
    assert leases.held(db) == 0
    print(f"two crawls, {len(ids)} URLs: {time.monotonic() - started:.1f}s, split {checked}")
    db.dispose()
