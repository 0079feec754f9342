"""Helpers of the crawl tests: URLs into a store, sandbox configs, the CLI."""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import func, select, text

from crawler.signatures.rulepacks import BUNDLED_DIR
from store.db import Database
from store.models import Check, Url
from tocsin.sandbox.catalogue import CATALOGUE
from tocsin.urls import host_of, normalise_url, url_hash

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FEED_KINDS = ("compromised", "payload", "clean", "tricky-clean", "offline", "hostile")
COMMUNITY = BUNDLED_DIR  # the community packs bundled with tocsin

# Fast bounds for tests: hostile pages hit them on purpose.
FAST = {
    "browser": {"navigation_timeout": "8s", "page_timeout": "25s", "settle_time": "0.6s"},
    "crawl": {"download_timeout": "8s", "retries": 1},
    "enrich": {"in_crawl": False},  # enrichment has its own tests
}


def new_store(url: str) -> str:
    """``url`` made a store at the current schema, as ``tocsin init`` makes it (no other
    command creates one); returns the URL."""
    from store import migrate

    database = Database(url)
    migrate.upgrade(database)
    database.dispose()
    return url


def add_urls(
    db: Database, urls: Iterable[str], *, now: datetime = T0, campaign: str | None = None
) -> dict[str, int]:
    """Insert pending URLs as ingest would (normalised, hashed); url -> id.

    In one transaction with one look-up and one flush: thousands of URLs take a second.
    """
    wanted = {url_hash(url): url for url in map(normalise_url, urls)}
    with db.session() as session:
        known = session.execute(
            select(Url.url_hash, Url.id).where(Url.url_hash.in_(list(wanted)))
        ).all()
        ids = {wanted[hashed]: url_id for hashed, url_id in known}
        rows = [
            Url(
                url=url,
                url_hash=hashed,
                host=host_of(url),
                first_seen=now,
                last_seen=now,
                verdict="pending",
                campaign_hint=campaign,
            )
            for hashed, url in wanted.items()
            if url not in ids
        ]
        session.add_all(rows)
        session.flush()
        ids.update({row.url: row.id for row in rows})
    return ids


def run_cli(
    cwd: Path, config: Path, *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``tocsin --config CONFIG ARGS...`` as a user runs it (``env``: variables to add)."""
    return subprocess.run(
        _command(config, args),
        cwd=cwd,
        env={**_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_cli(
    cwd: Path, config: Path, *args: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``tocsin --config CONFIG ARGS...`` started in a session (process group) of its own,
    so that a test can kill it with every child it spawned; stdout and stderr to ``log``
    (``env``: variables to add)."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            _command(config, args),
            cwd=cwd,
            env={**_env(), **(env or {})},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _command(config: Path, args: Iterable[str]) -> list[str]:
    return [sys.executable, "-m", "tocsin", "--config", str(config), *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env["COLUMNS"] = "200"
    return env


def sandbox_config(sandbox: Any, folder: Path, db_url: str, guard: str = "open", **tables: Any):
    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in FAST.items()}
    for table, values in tables.items():
        merged.setdefault(table, {}).update(values)
    return sandbox.write_config(folder / "tocsin.toml", db_url, guard=guard, **merged)


@dataclass
class Crawl:
    """A finished crawl: its store, config, the CLI's answer, and the sites by URL id."""

    db: Database
    config: Path
    folder: Path
    returncode: int
    stdout: str
    stderr: str
    sites: dict[int, Any]  # url id -> SiteSpec
    ids: dict[str, int]  # site id -> url id
    sandbox: Any


def crawl_urls(
    sandbox: Any, folder: Path, urls: dict[str, str], *, timeout: float = 300, **tables: Any
) -> Crawl:
    """One ``tocsin crawl`` of ``urls`` (name -> URL; a name that is a catalogue site id
    maps to its SiteSpec) into a fresh SQLite store in ``folder``; ``tables`` as in
    :func:`sandbox_config`."""
    from store import migrate

    db_url = f"sqlite:///{folder / 'tocsin.db'}"
    config = sandbox_config(sandbox, folder, db_url, **tables)
    db = Database(db_url)
    migrate.upgrade(db)
    by_url = add_urls(db, urls.values())
    ids = {name: by_url[normalise_url(u)] for name, u in urls.items()}
    proc = run_cli(folder, config, "--now", "2026-03-02T10:00:00Z", "crawl", timeout=timeout)
    return Crawl(
        db=db,
        config=config,
        folder=folder,
        returncode=proc.returncode,
        stdout=proc.stdout,
        stderr=proc.stderr,
        sites={ids[name]: sandbox.sites.get(name) for name in urls},
        ids=ids,
        sandbox=sandbox,
    )


def sample_sites(**take: int) -> list[str]:
    """A few dozen quick sandbox sites: offline, payloads, and some pages for Chromium
    (``take``: how many of each kind)."""
    take = take or {"offline": 4, "payload": 12, "clean": 3, "compromised": 3}
    chosen = []
    for site in CATALOGUE:
        if take.get(site.kind, 0) > 0 and not site.id.startswith("ssrf"):
            take[site.kind] -= 1
            chosen.append(site.id)
    return chosen


def checks_per_url(db: Database) -> dict[int, int]:
    with db.session() as session:
        rows = session.execute(select(Check.url_id, func.count()).group_by(Check.url_id))
        return {row[0]: row[1] for row in rows}


def pe_bytes() -> bytes:
    """The smallest header that reads as a PE32 executable (for payload checks)."""
    header = bytearray(512)
    header[:2] = b"MZ"
    struct.pack_into("<I", header, 0x3C, 0x80)
    header[0x80:0x84] = b"PE\x00\x00"
    struct.pack_into("<H", header, 0x84, 0x14C)
    return bytes(header)


def wait_for(what: str, done: Callable[[], bool], timeout: float) -> None:
    """Poll ``done`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def job_statuses(db: Database) -> dict[int, str]:
    """The job queue's jobs: id to status."""
    with db.session() as session:
        return dict(session.execute(text("SELECT id, status FROM procrastinate_jobs")).all())


def process_tree(pid: int) -> list[psutil.Process]:
    """``pid`` and every process under it: the worker, its check worker, Playwright's node
    driver, and Chromium's processes (children of the driver, in a session of their own)."""
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (a zombie is dead; ``is_running`` tells a reused pid apart)."""
    found = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def session_of(proc: psutil.Process) -> int | None:
    """Its session id (Chromium's differs from its worker's); None once it is gone."""
    with contextlib.suppress(OSError):
        return os.getsid(proc.pid)
    return None


def role(proc: psutil.Process) -> str:
    """What a worker's process is, for messages: driver, chromium-<type>, check-worker."""
    with contextlib.suppress(psutil.Error):
        line = proc.cmdline()
        if "run-driver" in line:
            return "driver"
        if "chrom" in proc.name().lower():
            kind = next((a[7:] for a in line if a.startswith("--type=")), "browser")
            return f"chromium-{kind}"
        if "multiprocessing.spawn" in " ".join(line):
            return "check-worker"
        return proc.name()
    return "gone"
