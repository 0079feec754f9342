"""``tocsin crawl --enqueue`` and two ``tocsin worker`` processes on PostgreSQL checking
2,000 sandbox URLs, with workers killed at three points (issue 14):

1. one worker's whole process group (reactor, check worker, Playwright's driver) is
   SIGKILLed by the test at about a quarter done, in the middle of a batch with pages
   still to confirm in Chromium; Chromium, in a session of its own, must go too;
2. a worker dies after fetching but before storing: its check worker kills the group
   as it is about to open the store transaction for a chosen batch;
3. a worker dies after storing but before the job ends: every check of a chosen batch
   is committed, and the worker kills its group as procrastinate is about to mark
   the job done.

The faults are a ``sitecustomize`` on the workers' ``PYTHONPATH`` (the spawned check
worker inherits it), armed by files the test writes: production code has no test
hooks. Killed workers are replaced so the run finishes. Afterwards every URL has
exactly one check, nothing is due, no lease is left, each killed batch was retried
exactly once (by a survivor, after the dead worker's heartbeat went stale), and the
sandbox's hit log shows URLs fetched twice only within the killed batches: the cost of
a kill is one more fetch of the URLs in flight, and none for a batch already stored.
Most URLs take the triage path; 40 pages go to Chromium and get the catalogue's verdict,
and no process any worker had (Chromium's included) outlives it.
On SQLite both commands refuse in one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from crawl_support import (
    add_urls,
    alive,
    checks_per_url,
    job_statuses,
    process_tree,
    role,
    run_cli,
    sandbox_config,
    session_of,
    start_cli,
    wait_for,
)
from sqlalchemy import func, select, text

from store import leases
from store.db import Database
from store.models import Check
from tocsin.sandbox.web import url_hit_key
from tocsin.urls import normalise_url

NOW = "2026-03-02T10:00:00Z"
URLS = 2000
BATCH = 100  # 20 batches: enough to kill three of them, well apart
# Per 20 URLs: direct payloads and offline pages (404, 410, refused, no DNS), the triage
# path; but every 50th URL is a page the triage sends to Chromium (two a batch, 40 in all),
# clean or compromised, so that each worker runs its kept Chromium and a kill finds it busy.
MIX = (("payload", 12), ("offline", 8))
PAGE_EVERY = 50
PAGES = ("brochure", "injected-script", "hidden-iframe")  # behaviours of clean/compromised sites

FAULTS = '''"""Test only: kills at chosen points of a crawl worker (tests/crawl/test_workers.py)."""
import json
import os
import signal
from pathlib import Path

import procrastinate.manager as manager
from pipelines import store

FAULTS = Path({folder!r})


def _take(name):
    """The armed fault's payload, for the first process to get here; else None."""
    fired = FAULTS / f"{{name}}.fired-{{os.getpid()}}"
    try:
        os.rename(FAULTS / f"{{name}}.armed", fired)
    except OSError:
        return None
    return json.loads(fired.read_text())


def _die():
    os.killpg(os.getpgrp(), signal.SIGKILL)  # the worker, its check worker, any browser


_register = manager.JobManager.register_worker


async def register_worker(self):
    worker_id = await _register(self)
    (FAULTS / f"worker-{{os.getpid()}}").write_text(str(worker_id))
    return worker_id


_store_batch = store.StoreWriter.store_batch


def store_batch(self, items, now):
    """Kill 2: the checks are fetched; the worker dies before the store transaction."""
    try:
        target = set(json.loads((FAULTS / "before-store.armed").read_text()))
    except (OSError, ValueError):
        target = set()
    ids = [item.url_id for item in items]
    if target & set(ids) and _take("before-store") is not None:
        (FAULTS / "before-store.ids").write_text(json.dumps(ids))
        _die()
    return _store_batch(self, items, now)


_finish = manager.JobManager.finish_job


async def finish_job(self, job, status, delete_job):
    """Kill 3: the batch's checks are committed; the worker dies before the job ends."""
    try:
        target = json.loads((FAULTS / "before-done.armed").read_text())
    except (OSError, ValueError):
        target = None
    if job.id == target and _take("before-done") is not None:
        _die()
    return await _finish(self, job, status, delete_job)


manager.JobManager.register_worker = register_worker
store.StoreWriter.store_batch = store_batch
manager.JobManager.finish_job = finish_job
'''


def sandbox_urls(sandbox: Any, count: int) -> dict[str, Any]:
    """``count`` distinct URLs (a query string each: the sites serve their pages whatever
    the query) and their sites: payloads and offline pages mixed so that every batch has
    some of each, and every ``PAGE_EVERY``-th a page for Chromium."""
    sites = {
        kind: [s for s in sandbox.select([kind]) if s.behaviour in ("brochure", "payload", "none")]
        for kind, _ in MIX
    }
    pages = [s for s in sandbox.select(["clean", "compromised"]) if s.behaviour in PAGES]
    pattern = [kind for kind, share in MIX for _ in range(share)]
    urls = {}
    for n in range(count):
        if n % PAGE_EVERY == PAGE_EVERY // 2:
            site = pages[(n // PAGE_EVERY) % len(pages)]
        else:
            kind = pattern[n % len(pattern)]
            site = sites[kind][(n // len(pattern)) % len(sites[kind])]
        entry = sandbox.url(site.id)
        urls[f"{entry}{'&' if '?' in entry else '?'}n={n}"] = site
    return urls


def _batches(db: Database) -> dict[int, set[int]]:
    """Each crawl batch job's URL ids."""
    with db.session() as session:
        rows = session.execute(text("SELECT id, args FROM procrastinate_jobs ORDER BY id"))
        return {job: set(args["url_ids"]) for job, args in rows}


def _doing(db: Database, worker_id: int) -> set[int]:
    with db.session() as session:
        return set(
            session.scalars(
                text("SELECT id FROM procrastinate_jobs WHERE worker_id = :w AND status = 'doing'"),
                {"w": worker_id},
            )
        )


def _stored(db: Database, among: set[int] | None = None) -> int:
    query = select(func.count()).select_from(Check)
    if among is not None:
        query = query.where(Check.url_id.in_(sorted(among)))
    with db.session() as session:
        return int(session.scalar(query) or 0)


def _check_workers(pid: int) -> set[int]:
    """The spawned check worker processes of ``pid`` (pipelines/worker.py): its children
    only, since a check worker's own short-lived children (forked to run a program) show
    the same command line until they exec."""
    found = set()
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.Error):
                if "multiprocessing.spawn" in " ".join(child.cmdline()):
                    found.add(child.pid)
    return found


def _arm(faults: Path, name: str, payload: object) -> None:
    """Arm a fault: written whole, then renamed, so no process reads half of it."""
    draft = faults / f"{name}.draft"
    draft.write_text(json.dumps(payload))
    draft.rename(faults / f"{name}.armed")


def _fired(faults: Path, name: str) -> bool:
    return any(faults.glob(f"{name}.fired-*"))


class Workers:
    """The ``tocsin worker`` processes of the test: started, replaced when they die."""

    def __init__(self, folder: Path, config: Path, faults: Path) -> None:
        self.folder, self.config, self.faults = folder, config, faults
        self.procs: list[subprocess.Popen[bytes]] = []
        self.check_workers: dict[
            int, set[tuple[int, int, str]]
        ] = {}  # worker pid -> check workers seen
        self.trees: dict[int, dict[int, psutil.Process]] = {}  # worker pid -> processes seen

    def start(self) -> subprocess.Popen[bytes]:
        log = self.folder / f"worker-{len(self.procs)}.log"
        env = {"PYTHONPATH": str(self.faults)}
        proc = start_cli(self.folder, self.config, "--now", NOW, "worker", log=log, env=env)
        self.procs.append(proc)
        return proc

    def live(self) -> list[subprocess.Popen[bytes]]:
        return [proc for proc in self.procs if proc.poll() is None]

    def worker_id(self, proc: subprocess.Popen[bytes]) -> int | None:
        """Its procrastinate worker id, once registered (the fault hook writes it down)."""
        with contextlib.suppress(OSError, ValueError):
            return int((self.faults / f"worker-{proc.pid}").read_text())
        return None

    def watch(self) -> None:
        for proc in self.live():
            self.check_workers.setdefault(proc.pid, set()).update(_check_workers(proc.pid))
            self.trees.setdefault(proc.pid, {}).update((p.pid, p) for p in process_tree(proc.pid))

    def replace_dead(self, want: int = 2) -> int:
        """Start workers until ``want`` live; how many were started."""
        started = 0
        while len(self.live()) < want:
            self.start()
            started += 1
        return started

    def stop(self) -> None:
        for proc in self.live():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def output(self) -> str:
        logs = sorted(self.folder.glob("worker-*.log"))
        return "\n".join(log.read_text(errors="replace")[-2000:] for log in logs)


@pytest.mark.serial  # kills mid-batch and heartbeats going stale: timing
def test_2000_urls_two_workers_killed_at_three_points(sandbox, tmp_path, private_pg_url) -> None:
    started = time.monotonic()
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "sitecustomize.py").write_text(FAULTS.format(folder=str(faults)), encoding="utf-8")
    config = sandbox_config(
        sandbox,
        tmp_path,
        private_pg_url,
        # The browser is on; one visit a page (no condition visits) keeps Chromium's share small.
        browser={"condition_visits": False},
        crawl={"batch_size": BATCH, "per_domain": 8},
        worker={"heartbeat": "1s", "stalled_after": "5s"},
    )
    first = run_cli(tmp_path, config, "init")
    assert first.returncode == 0 and "installed the job queue's tables" in first.stdout
    second = run_cli(tmp_path, config, "init")  # safe to repeat
    assert second.returncode == 0 and "job queue" not in second.stdout, second.stderr
    db = Database(private_pg_url)
    planned = sandbox_urls(sandbox, URLS)
    ids = add_urls(db, planned)
    urls = {url_id: url for url, url_id in ids.items()}
    assert len(urls) == URLS
    sites = {ids[normalise_url(url)]: site for url, site in planned.items()}
    pages = {url_id for url_id, site in sites.items() if site.kind in ("clean", "compromised")}
    assert len(pages) == URLS // PAGE_EVERY
    queued = run_cli(tmp_path, config, "--now", NOW, "crawl", "--enqueue")
    assert queued.returncode == 0, queued.stderr
    assert f"queued {URLS} due URLs in {URLS // BATCH} batches" in queued.stdout
    again = run_cli(tmp_path, config, "--now", NOW, "crawl", "--enqueue")  # nothing twice
    assert "queued 0 due URLs in 0 batches" in again.stdout, again.stdout + again.stderr
    batches = _batches(db)
    order = sorted(batches)
    # Kills 2 and 3 are armed for batches at about a half and three quarters.
    before_store, before_done = order[len(order) // 2], order[3 * len(order) // 4]
    _arm(faults, "before-store", sorted(batches[before_store]))
    _arm(faults, "before-done", before_done)
    sandbox.clear_hits()  # from here on: the workers' fetches only
    setup = time.monotonic() - started

    workers = Workers(tmp_path, config, faults)
    killed: dict[str, int] = {}  # which kill -> the batch (job) it hit
    victims: list[subprocess.Popen[bytes]] = []  # kill 1's worker
    tree: list[psutil.Process] = []  # and its processes just before the kill
    roles: set[str] = set()  # what they are
    apart: set[str] = set()  # those in a session of their own
    fetched_unstored: list[int] = []  # kill 2: the URLs fetched, never stored by that attempt
    try:
        workers.replace_dead()

        # Kill 1: a quarter done, a worker halfway through a batch (some of its checks
        # stored, not all, and a page for Chromium not yet): its whole process group.
        def a_worker_a_quarter_done_in_a_batch() -> bool:
            workers.watch()
            if _stored(db) < URLS // 4:
                return False
            for proc in workers.live():
                worker_id = workers.worker_id(proc)
                for job in _doing(db, worker_id) if worker_id is not None else ():
                    if not 0 < _stored(db, batches[job]) < len(batches[job]):
                        continue
                    if _stored(db, batches[job] & pages) == len(batches[job] & pages):
                        continue  # its Chromium pages are done
                    procs = process_tree(proc.pid)
                    if "chromium-browser" in {role(p) for p in procs}:
                        victims.append(proc)
                        tree.extend(procs)
                        roles.update(role(p) for p in procs)
                        apart.update(role(p) for p in procs if session_of(p) != proc.pid)
                        return True
            return False

        wait_for("a worker in a batch, a quarter done", a_worker_a_quarter_done_in_a_batch, 180)
        (victim,) = victims
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = time.monotonic() - started
        # Chromium is in a session of its own (Playwright's driver spawns it detached), so
        # killpg misses it; it quits as the driver's end of its DevTools pipe closes.
        assert {"driver", "chromium-browser", "check-worker"} <= roles, roles
        wait_for("nothing of the killed worker alive", lambda: not alive(tree), 10)
        gone_after = time.monotonic() - started - killed_at
        worker_id = workers.worker_id(victim)
        assert worker_id is not None
        (in_hand,) = _doing(db, worker_id)  # stays in hand until a survivor finds it silent
        killed["sigkill"] = in_hand
        assert in_hand not in (before_store, before_done), "kill 1 hit a batch armed for 2 or 3"
        workers.replace_dead()

        def all_done() -> bool:
            """Replace the dead; note kills 2 and 3 as they happen, checking what was stored."""
            workers.watch()
            if "before-store" not in killed and _fired(faults, "before-store"):
                # The ids are written down before the kill: read them once it is done.
                wait_for("the store kill", lambda: len(workers.live()) < 2, 10)
                ids = json.loads((faults / "before-store.ids").read_text())
                fetched_unstored.extend(ids)
                assert _stored(db, set(ids)) == 0, "kill 2 came after the store"
                killed["before-store"] = before_store
            if "before-done" not in killed and _fired(faults, "before-done"):
                # Every check of the batch is committed, and the job is not done.
                assert _stored(db, batches[before_done]) == len(batches[before_done])
                assert job_statuses(db)[before_done] == "doing"
                killed["before-done"] = before_done
            workers.replace_dead()
            statuses = job_statuses(db).values()
            return all(s == "succeeded" for s in statuses) and leases.held(db) == 0

        wait_for("the workers to finish every batch", all_done, 300)
        took = time.monotonic() - started
    finally:
        workers.stop()
    output = workers.output()
    # Nothing of any worker outlives it: killed (kills 2 and 3 too) or stopped.
    everything = [p for seen in workers.trees.values() for p in seen.values()]
    wait_for("no process of a worker left", lambda: not alive(everything), 15)
    assert set(killed) == {"sigkill", "before-store", "before-done"}, (killed, output)

    # One check per URL, nothing due, no lease left, no job besides the batches.
    assert checks_per_url(db) == dict.fromkeys(urls, 1), output
    # The pages went to Chromium and got the catalogue's verdict.
    with db.session() as session:
        found = session.scalars(select(Check).where(Check.url_id.in_(pages)))
        checks = {check.url_id: check for check in found}
    for url_id in pages:
        check, site = checks[url_id], sites[url_id]
        assert check.route == "browser", (site.id, check.route, check.route_reason)
        assert check.verdict == site.verdict, (site.id, check.verdict, check.error)
    assert leases.unclaimed_due(db, leases.wall_now()) == 0 and leases.held(db) == 0
    assert set(job_statuses(db)) == set(batches)
    # Each killed batch was retried once; no other batch was.
    with db.session() as session:
        retried = dict(
            session.execute(
                text(
                    "SELECT job_id, count(*) FROM procrastinate_events "
                    "WHERE type = 'deferred_for_retry' GROUP BY job_id"
                )
            ).all()
        )
    assert retried == dict.fromkeys(killed.values(), 1), (retried, killed)
    # A worker keeps one check worker from batch to batch.
    assert all(len(seen) <= 1 for seen in workers.check_workers.values()), workers.check_workers

    # The hit log: URLs fetched more than once are all in the killed batches. A check of
    # a page fetches it more than once (the triage, its cloaking variants, Chromium): the
    # same number for every page of a batch nobody killed.
    hits = sandbox.hits()
    fetches = {url_id: hits[url_hit_key(url)] for url_id, url in urls.items()}
    assert sum(1 for n in fetches.values() if n) >= URLS // 2, "the hit log misses the fetches"
    in_killed = set().union(*(batches[job] for job in killed.values()))
    per_page = {fetches[url_id] for url_id in pages - in_killed}
    assert len(per_page) == 1 and min(per_page) > 1, per_page
    (page_fetches,) = per_page
    once = {url_id: page_fetches if url_id in pages else 1 for url_id in urls}
    repeated = {url_id for url_id, n in fetches.items() if n > once[url_id]}
    assert repeated and repeated <= in_killed, sorted(repeated - in_killed)[:20]
    # Kill 2's checks were fetched again (those whose site answers at all); kill 3's
    # batch was stored whole, so its retry fetched nothing.
    assert fetched_unstored and all(fetches[u] != once[u] for u in fetched_unstored)
    assert not repeated & batches[before_done]
    print(
        f"\n{URLS} URLs in {len(batches)} batches, two workers, killed at 3 points "
        f"(SIGKILL at {killed_at:.1f}s), {len(workers.procs)} worker processes in all: "
        f"setup {setup:.1f}s, total {took:.1f}s; fetched again: {len(repeated)} URLs "
        f"({len(repeated & batches[in_hand])} of the SIGKILLed batch, "
        f"{len(repeated & batches[before_store])} of the fetch-before-store one); "
        f"{len(pages)} pages in Chromium, each fetched {page_fetches} times "
        f"({len(pages & batches[in_hand])} in the SIGKILLed batch), its {len(tree)} "
        f"processes ({', '.join(sorted(roles))}) gone {gone_after:.1f}s after the SIGKILL; "
        f"in a session of their own: {', '.join(sorted(apart)) or 'none'}"
    )
    db.dispose()


def test_jobs_need_postgresql(sqlite_cli) -> None:
    for args in (["worker"], ["crawl", "--enqueue"]):
        proc = sqlite_cli(*args)
        assert proc.returncode == 2
        assert proc.stderr.strip().count("\n") == 0 and "needs PostgreSQL" in proc.stderr
