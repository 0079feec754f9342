"""A ``tocsin worker`` keeps one Chromium across its batches (``crawler.browser.kept``).

One worker on PostgreSQL runs three batches of sandbox pages, queued one at a
time. The first two are confirmed by the same Chromium browser process (it
stays up while the worker waits between them); Chromium is then SIGKILLed and
the third batch is confirmed by a fresh one. No renderer is left between batches
(every page closed), every page has its one check with the catalogue's verdict,
and SIGTERM leaves no Chromium behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil
from crawl_support import (
    add_urls,
    alive,
    checks_per_url,
    job_statuses,
    process_tree,
    role,
    run_cli,
    sample_sites,
    sandbox_config,
    start_cli,
    wait_for,
)
from sqlalchemy import select

from store.db import Database
from store.models import Check
from tocsin.sandbox.catalogue import CATALOGUE

NOW = "2026-03-02T10:00:00Z"
BATCH = 2


def _browsers(pid: int) -> set[int]:
    """Chromium's browser processes under ``pid`` (its other processes carry ``--type=``)."""
    found = set()
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "chrom" in child.name().lower() and not any(
                arg.startswith("--type=") for arg in child.cmdline()
            ):
                found.add(child.pid)
    return found


def _count(pid: int, arg: str) -> int:
    """The processes under ``pid`` with ``arg`` on their command line."""
    count = 0
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            count += arg in child.cmdline()
    return count


def _in_group(pgid: int) -> list[int]:
    """The live processes of a process group (the worker started a session of its own)."""
    alive = []
    for proc in psutil.process_iter(["pid", "status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc.pid)
    return alive


def test_a_worker_keeps_one_chromium_across_batches(sandbox, tmp_path, private_pg_url) -> None:
    started = time.monotonic()
    config = sandbox_config(sandbox, tmp_path, private_pg_url, crawl={"batch_size": BATCH})
    assert run_cli(tmp_path, config, "init").returncode == 0
    db = Database(private_pg_url)
    sites = sample_sites(clean=3, compromised=3)  # pages: every URL goes to Chromium
    ids = dict(
        zip(sites, add_urls(db, [sandbox.url(site) for site in sites]).values(), strict=True)
    )
    log = tmp_path / "worker.log"
    worker = start_cli(tmp_path, config, "--now", NOW, "worker", log=log)
    seen: list[set[int]] = []  # the browser processes after each batch
    renderers: list[int] = []  # and their renderers
    drivers: list[int] = []  # and Playwright's drivers
    try:
        for _ in range(3):
            queued = run_cli(
                tmp_path, config, "--now", NOW, "crawl", "--enqueue", "--limit", str(BATCH)
            )
            assert "queued 2 due URLs in 1 batches" in queued.stdout, queued.stdout + queued.stderr
            wait_for(
                "the batch",
                lambda: set(job_statuses(db).values()) == {"succeeded"},
                120,
            )
            seen.append(_browsers(worker.pid))
            renderers.append(_count(worker.pid, "--type=renderer"))  # one or more a page
            drivers.append(_count(worker.pid, "run-driver"))  # Playwright's node process
            if len(seen) == 2:  # Chromium crashes between batches: the next one relaunches it
                for pid in seen[-1]:
                    os.kill(pid, signal.SIGKILL)
        assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
        tree = process_tree(worker.pid)  # Chromium included: it is not in the worker's group
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    output = log.read_text(errors="replace")[-3000:]
    first, second, third = seen
    assert len(first) == 1 and first == second, (seen, output)  # kept while the worker waited
    assert len(third) == 1 and third != first, (seen, output)  # relaunched after the crash
    assert renderers == [0, 0, 0], renderers  # no page of a batch is left open for the next
    assert drivers == [1, 1, 1], drivers  # one Playwright, kept (Chromium's crash spares it)
    wait_for("the worker's children to go", lambda: not _in_group(worker.pid), 10)
    wait_for("the worker's processes to go", lambda: not alive(tree), 10)

    assert checks_per_url(db) == dict.fromkeys(ids.values(), 1), output
    expected = {site.id: site.verdict for site in CATALOGUE}
    with db.session() as session:
        checks = {c.url_id: c for c in session.scalars(select(Check))}
    for site in sites:
        check = checks[ids[site]]
        assert check.route == "browser", (site, check.route, check.route_reason)
        assert check.verdict == expected[site], (site, check.verdict, check.error)
    db.dispose()
    print(f"three batches, one kept Chromium then a fresh one: {time.monotonic() - started:.1f}s")


def test_a_worker_killed_alone_leaves_nothing(sandbox, tmp_path, private_pg_url) -> None:
    """SIGKILL of the worker's pid alone (the out-of-memory killer picks one process):
    Playwright's driver sees its stdin close and takes Chromium with it, and the check
    worker, which no signal reaches, notices its parent is gone and exits."""
    started = time.monotonic()
    config = sandbox_config(sandbox, tmp_path, private_pg_url, crawl={"batch_size": BATCH})
    assert run_cli(tmp_path, config, "init").returncode == 0
    db = Database(private_pg_url)
    add_urls(db, [sandbox.url(site) for site in sample_sites(clean=1, compromised=1)])
    log = tmp_path / "worker.log"
    worker = start_cli(tmp_path, config, "--now", NOW, "worker", log=log)
    try:
        queued = run_cli(tmp_path, config, "--now", NOW, "crawl", "--enqueue")
        assert "queued 2 due URLs in 1 batches" in queued.stdout, queued.stdout + queued.stderr
        wait_for("the batch", lambda: set(job_statuses(db).values()) == {"succeeded"}, 120)
        tree = process_tree(worker.pid)
        roles = {role(proc) for proc in tree}
        assert {"driver", "chromium-browser", "check-worker"} <= roles, roles
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        killed = time.monotonic()
        wait_for("nothing of the worker alive", lambda: not alive(tree), 10)
        gone = time.monotonic() - killed
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)  # whatever is left in its group
    counts = checks_per_url(db)  # the batch was stored before the kill
    assert len(counts) == 2 and set(counts.values()) == {1}, counts
    db.dispose()
    print(
        f"worker SIGKILLed alone: its {len(tree)} processes ({', '.join(sorted(roles))}) gone "
        f"{gone:.1f}s later; {time.monotonic() - started:.1f}s"
    )
