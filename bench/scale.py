"""Scale benchmark (issue 14): URLs/s of one and two ``tocsin worker`` processes.

Against one sandbox (in a child process, ``bench/sandbox_proc.py``), for two paths:

1. **triage**: every scale URL (40% offline, 30% direct payloads, 30% pages) with
   the browser off: routing, hashing, rules, verdicts, evidence, the store;
2. **browser**: the sandbox's pages alone, each confirmed in Chromium;

it runs 1 worker, then 2 workers, and prints URLs/s for each and the ratio
(goal: 2 workers >= 1.7x one, where the cores allow it), with the load average
beside the figures (other work on the machine shows there), and the CPU seconds
of the workers, the sandbox and the local PostgreSQL server.

Each measurement is real: a PostgreSQL schema of its own (dropped at the end),
``tocsin init``, the URLs loaded as ingest would, the workers started and
registered, then ``tocsin crawl --enqueue`` queues the batches. The rate is the
URLs over the time from the first batch's start to the last batch's end, as the
job queue records them (``procrastinate_events``): neither the workers' start nor
the enqueue command's own start counts.

    .venv/bin/python bench/scale.py                      # a few minutes
    .venv/bin/python bench/scale.py --urls 2000 --pages 200 --batch 100 --page-batch 20

Options: --pg URL (default: the local server's ``test`` database), --workers 1,2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
OPEN_JOBS = "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"


@dataclass
class Run:
    """One measurement: ``workers`` workers on ``urls`` URLs."""

    path: str
    workers: int
    urls: int
    checked: int
    seconds: float
    load: tuple[float, float]  # 1-minute load average before and after
    verdicts: Counter[str]
    cpu: float  # CPU seconds of the workers' process trees (Chromium included)
    sandbox_cpu: float  # and of the sandbox's servers
    server_cpu: float  # and of the whole PostgreSQL server, if local (other clients too)

    @property
    def rate(self) -> float:
        return self.checked / self.seconds if self.seconds else 0.0


@contextlib.contextmanager
def schema(base: str) -> Iterator[str]:
    """A PostgreSQL schema of the bench's own, dropped afterwards; yields its URL."""
    from sqlalchemy import create_engine, text

    name = f"tocsin_scale_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{base}?options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def tocsin(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "tocsin", "--config", str(config), *args]


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of these processes and every descendant (reaped ones included)."""
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    total += t.user + t.system + t.children_user + t.children_system
    return total


def postmaster() -> list[int]:
    """PostgreSQL's main process on this machine (its tree: every backend), if any."""
    import psutil

    for proc in psutil.process_iter(["name", "ppid"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["name"] == "postgres" and psutil.Process(proc.info["ppid"]).name() != (
                "postgres"
            ):
                return [proc.pid]
    return []


def warmed(pid: int, browser: bool) -> bool:
    """Has this worker spawned its check worker (and Chromium, for the browser path)?"""
    import psutil

    seen = set()
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                line = " ".join(child.cmdline())
                seen.add("spawn" if "multiprocessing.spawn" in line else child.name().lower())
    return "spawn" in seen and (not browser or any("chrom" in name for name in seen))


def warm_up(db: Any, config: Path, procs: list[subprocess.Popen[bytes]], browser: bool) -> None:
    """One-URL batches until every worker has run one: its first batch starts the reactor,
    the check worker and Chromium, a cost paid once per worker, not per batch."""
    for _ in range(10):
        cold = [proc for proc in procs if not warmed(proc.pid, browser)]
        if not cold:
            return
        enqueue = tocsin(config, "crawl", "--enqueue", "--limit", str(len(cold)))
        subprocess.run(enqueue, check=True, capture_output=True)
        wait("the warm-up", lambda: scalar(db, OPEN_JOBS) == 0, 600, procs)
    print("  a worker did not warm up: its first batch is in the figures")


def scalar(db: Any, sql: str) -> Any:
    from sqlalchemy import text

    with db.session() as session:
        return session.scalar(text(sql))


def wait(what: str, done: Any, timeout: float, workers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if any(proc.poll() is not None for proc in workers):
            raise RuntimeError(f"a worker exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def measure(
    sandbox: Any, folder: Path, pg: str, path: str, urls: list[str], workers: int, batch: int
) -> Run:
    """Crawl ``urls`` with ``workers`` worker processes; the rate from the job queue's log."""
    from bench.crawl import load_urls
    from store.db import Database
    from tocsin.app import App

    folder.mkdir(parents=True)
    with schema(pg) as url:
        tables: dict[str, Any] = {
            "crawl": {"concurrency": 64, "per_domain": 8, "batch_size": batch},
            "enrich": {"in_crawl": False},  # bench/enrich.py measures enrichment
            "browser": {"enabled": path == "browser"},
            "evidence": {"dir": str(folder / "evidence")},
        }
        config = sandbox.write_config(folder / "tocsin.toml", url, **tables)
        tables["crawl"] = {**tables["crawl"], "batch_size": 1}  # the warm-up's enqueue
        warm_config = sandbox.write_config(folder / "warm.toml", url, **tables)
        subprocess.run(tocsin(config, "init"), check=True, capture_output=True)
        app = App(config_path=config)
        load_urls(app, urls)
        db = Database(url)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for n in range(workers):
                with (folder / f"worker-{n}.log").open("wb") as log:
                    procs.append(
                        subprocess.Popen(
                            tocsin(config, "worker"),
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
            registered = "SELECT count(*) FROM procrastinate_workers"
            wait("the workers", lambda: scalar(db, registered) >= workers, 120, procs)
            warm_up(db, warm_config, procs, browser=path == "browser")
            last_warm = scalar(db, "SELECT coalesce(max(id), 0) FROM procrastinate_jobs")
            warm_checks = scalar(db, "SELECT count(*) FROM checks")
            warm_last = int(scalar(db, "SELECT coalesce(max(id), 0) FROM checks"))
            before = os.getloadavg()[0]
            pids = [proc.pid for proc in procs]
            cpu0, sandbox0 = cpu_seconds(pids), cpu_seconds([sandbox.pid])
            server = postmaster()
            server0 = cpu_seconds(server)
            subprocess.run(tocsin(config, "crawl", "--enqueue"), check=True, capture_output=True)
            wait("the batches", lambda: scalar(db, OPEN_JOBS) == 0, 3600, procs)
            after = os.getloadavg()[0]
            cpu = cpu_seconds(pids) - cpu0
            sandbox_cpu = cpu_seconds([sandbox.pid]) - sandbox0
            server_cpu = cpu_seconds(server) - server0
            seconds = scalar(
                db,
                "SELECT extract(epoch FROM max(at) FILTER (WHERE type IN ('succeeded', 'failed'))"
                " - min(at) FILTER (WHERE type = 'started')) FROM procrastinate_events"
                f" WHERE job_id > {int(last_warm)}",
            )
            failed = scalar(
                db, "SELECT count(*) FROM procrastinate_jobs WHERE status <> 'succeeded'"
            )
            if failed:
                print(f"  {failed} batches did not succeed: see {folder}/worker-*.log")
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        from sqlalchemy import text

        with db.session() as session:
            counts = text("SELECT verdict, count(*) FROM checks WHERE id > :last GROUP BY 1")
            verdicts = Counter(dict(session.execute(counts, {"last": warm_last}).all()))
        db.dispose()
        app.db.dispose()
    return Run(
        path,
        workers,
        len(urls) - warm_checks,
        sum(verdicts.values()),
        float(seconds or 0),
        (before, after),
        verdicts,
        cpu,
        sandbox_cpu,
        server_cpu,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=600, help="scale URLs, the triage path")
    parser.add_argument("--pages", type=int, default=40, help="pages of the browser path")
    parser.add_argument("--batch", type=int, default=50, help="crawl.batch_size, triage")
    parser.add_argument("--page-batch", type=int, default=5, help="crawl.batch_size, browser")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    parser.add_argument("--pg", default=PG)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    from bench.sandbox_proc import SandboxProcess

    with (
        tempfile.TemporaryDirectory(prefix="tocsin-bench-scale-") as tmp,
        SandboxProcess(Path(tmp) / "sandbox", scale=args.urls) as sandbox,
    ):
        scale = sandbox.sites
        mix = Counter(s["tags"][1] for s in scale)
        pages = [s["url"] for s in scale if s["tags"][1] == "page"][: args.pages]
        paths = {
            "triage": ([s["url"] for s in scale], args.batch),
            "browser": (pages, args.page_batch),
        }
        print(f"sandbox: {len(scale)} URLs ({dict(mix)}); {os.cpu_count()} cores; PostgreSQL")
        for path, (urls, batch) in paths.items():
            runs = []
            for workers in counts:
                folder = Path(tmp) / f"{path}-{workers}"
                run = measure(sandbox, folder, args.pg, path, urls, workers, batch)
                runs.append(run)
                print(
                    f"{path:8} {workers} worker{'s' if workers > 1 else ' '}: "
                    f"{run.checked}/{run.urls} URLs in {run.seconds:6.1f}s = "
                    f"{run.rate:6.1f} URLs/s  (batches of {batch}; load {run.load[0]:.1f} -> "
                    f"{run.load[1]:.1f}) verdicts {dict(run.verdicts)}",
                    flush=True,
                )
                done = max(run.checked, 1)
                per_url = (run.cpu + run.sandbox_cpu) / done
                print(
                    f"{'':8}   CPU: workers {run.cpu:.1f}s ({run.cpu / done * 1000:.0f}"
                    f" ms/URL), sandbox {run.sandbox_cpu:.1f}s, PostgreSQL {run.server_cpu:.1f}s"
                    f" (the whole server: other clients too); {os.cpu_count()} free cores would"
                    f" give at most {(os.cpu_count() or 1) / per_url:.1f} URLs/s (not counting it)",
                    flush=True,
                )
            if len(runs) > 1 and runs[0].rate:
                ratio = runs[-1].rate / runs[0].rate
                print(
                    f"{path:8} {runs[-1].workers} workers / {runs[0].workers}: {ratio:.2f}x "
                    f"(goal >= 1.7x where the cores allow it; load now "
                    f"{' '.join(f'{x:.1f}' for x in os.getloadavg())})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
