"""A full disk during the crawl's evidence writes (issue 12, point 8).

Evidence that could not be written for lack of space used to turn each check into
``error`` with a traceback, due again only after ``crawl.error_retry_after`` (6 h),
and the crawl went on failing the same way. Now: one line, the crawl stops, and
the URLs stay due at once.

The crawl is the real one (``tocsin crawl`` in a subprocess, its check worker, the
sandbox's payloads). What cannot run here portably is a full disk without root (a
small tmpfs needs ``mount``): the evidence store's one file-write function,
``EvidenceStore.put``, raises ``ENOSPC`` in the crawl's processes, installed by a
``sitecustomize`` on ``PYTHONPATH`` (the spawned check worker inherits it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from crawl_support import add_urls, new_store, run_cli, sandbox_config
from sqlalchemy import func, select

from store.db import Database
from store.models import Check, Evidence, Url

NOW = "2026-03-02T10:00:00Z"
PAYLOADS = ("payload-elf", "payload-apk", "payload-pe")  # each keeps a zip of its payload
SLOW_PAGES = 12
FULL_DISK = '''"""Test only: the evidence store's writes fail as on a full disk."""
import errno
import os

from store import evidence


def _no_space(self, data):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.root))


evidence.EvidenceStore.put = _no_space
'''


@contextmanager
def slow_pages(delay: float) -> Iterator[tuple[str, list[str]]]:
    """A loopback server whose every page is a 404 after ``delay`` seconds (offline: no
    evidence), counting the requests it got: how far the crawl went."""
    hits: list[str] = []

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            time.sleep(delay)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_a_full_disk_stops_the_crawl_and_leaves_the_urls_due(sandbox, tmp_path: Path) -> None:
    site_dir = tmp_path / "full-disk"
    site_dir.mkdir()
    (site_dir / "sitecustomize.py").write_text(FULL_DISK, encoding="utf-8")
    db_url = new_store(f"sqlite:///{tmp_path / 'tocsin.db'}")
    evidence_dir = tmp_path / "evidence"
    config = sandbox_config(
        sandbox,
        tmp_path,
        db_url,
        browser={"enabled": False},
        crawl={"concurrency": 1, "per_domain": 1},  # one URL at a time, in id order
        evidence={"dir": str(evidence_dir)},
    )
    db = Database(db_url)
    with slow_pages(delay=1.5) as (base, hits):
        pages = [f"{base}/page/{n}" for n in range(SLOW_PAGES)]
        ids = add_urls(db, [sandbox.url(site) for site in PAYLOADS] + pages)
        payload_ids = sorted(ids.values())[: len(PAYLOADS)]

        full = run_cli(tmp_path, config, "--now", NOW, "crawl", env={"PYTHONPATH": str(site_dir)})

        # One line, no traceback, exit 1.
        assert full.returncode == 1, full.stderr[-3000:]
        assert "Traceback" not in full.stderr
        said = full.stderr.strip().splitlines()
        [line] = [s for s in said if "enrich.in_crawl is off" not in s]  # (FAST turns it off)
        assert line.startswith(f"tocsin: crawl stopped: cannot write evidence in {evidence_dir}: ")
        assert "No space left on device" in line and "left due for the next crawl" in line
        # Stopped early: the later pages were never asked for (12 x 1.5 s otherwise).
        assert len(hits) < SLOW_PAGES, hits
        # Nothing marked `error`; the payloads have no check and stay due at once.
        with db.session() as session:
            urls = {u.id: u for u in session.scalars(select(Url))}
            assert "error" not in {u.verdict for u in urls.values()}
            for url_id in payload_ids:
                assert (urls[url_id].verdict, urls[url_id].next_check_at) == ("pending", None)
            stored = session.scalar(
                select(func.count()).select_from(Check).where(Check.url_id.in_(payload_ids))
            )
            assert stored == 0
            due = sum(1 for u in urls.values() if u.verdict == "pending")

        # Space again: the next crawl, at the same moment, checks every one of them.
        again = run_cli(tmp_path, config, "--now", NOW, "crawl")
        assert again.returncode == 0, again.stderr[-3000:]
        assert f"Checked {due} URLs" in again.stdout
    with db.session() as session:
        verdicts = {u.id: u.verdict for u in session.scalars(select(Url))}
        kept = session.scalars(
            select(Evidence.sha256).join(Check).where(Check.url_id.in_(payload_ids))
        ).all()
    assert [verdicts[i] for i in payload_ids] == ["malicious"] * len(PAYLOADS)
    assert set(verdicts.values()) == {"malicious", "offline"}
    assert kept and all((evidence_dir / s[:2] / s[2:4] / s).is_file() for s in kept)
    db.dispose()
