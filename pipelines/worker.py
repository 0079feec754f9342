"""The check worker: verdict, evidence and store for every check, in a process of its own.

Why a process: a crawl is CPU-bound in one interpreter. Scrapy's reactor needs
a core to fetch at full rate, and judging (rules over bodies), zipping payloads
(AES key derivation) and writing rows (the ORM) took their share of the same
GIL: the triage rate was 0.6 to 0.75 of a bare Scrapy spider's. In a spawned
process that work gets the second core, and the reactor only ships items.

There is one worker per tocsin process, started when a crawl opens and kept for
later crawls (spawning re-imports tocsin, ~1.5 s). It takes one batch at a
time, so each crawl keeps a single writer. A crawl is a *job* in the worker,
named by a token: its verdict engine, evidence keeper and store writer, with
their caches. If the worker dies (killed, out of memory), the batch it held
fails; the crawl then hands its checks over again one at a time (a new worker
starts), so a check that kills the worker is found and stored as an ``error``
instead of failing every batch it is put in (``pipelines.checks``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from typing import Any

from crawler.items import CheckItem, CheckOutcome
from crawler.signatures.engine import Engine
from pipelines.evidence import EvidenceKeeper
from pipelines.store import StoreWriter
from pipelines.verdict import judge
from store.db import Database
from tocsin.config import Config

log = logging.getLogger("tocsin.crawl.worker")

# A full disk (or quota): every later evidence write would fail the same way.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True)
class Postponed:
    """A check that was not stored because its evidence could not be written (no space
    left): nothing of it is kept, so its URL stays as it was, due at once for the next
    crawl, and not ``error`` with its next check hours away. The crawl stops."""

    reason: str


def no_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_SPACE


# ---------------------------------------------------------------- in the worker


@dataclass
class Job:
    """One crawl's verdict, evidence and store components (in the worker process)."""

    db: Database
    engine: Engine
    keeper: EvidenceKeeper
    writer: StoreWriter

    @classmethod
    def for_config(cls, config: Config) -> Job:
        db = Database(config.database.url)
        return cls(
            db, Engine.for_config(config), EvidenceKeeper(config, db), StoreWriter(db, config)
        )

    def handle(
        self, items: list[CheckItem], now: datetime
    ) -> list[CheckOutcome | Postponed | None]:
        """Judge and keep each check, then store the batch in one transaction.

        A rule that fails is logged and skipped by the engine; a check that fails
        otherwise becomes an ``error`` saying so, and the rest of the batch goes on.
        When the evidence folder is full, that check and the rest of the batch are
        :class:`Postponed` (not tried: they would fail alike); the ones kept before
        are stored.
        """
        kept: list[CheckItem] = []
        full: Postponed | None = None
        for item in items:
            if full is not None:
                continue
            try:
                judge(self.engine, item)
                self.keeper.keep(item)
            except Exception as exc:
                if no_space(exc):
                    log.debug("evidence: no space for %s", item.url, exc_info=True)
                    where = self.keeper.store.root
                    full = Postponed(f"cannot write evidence in {where}: {exc.strerror}")
                    continue
                log.error("judging %s failed", item.url, exc_info=True)
                item.fail(f"tocsin failed to judge this check ({type(exc).__name__}: {exc})"[:300])
            kept.append(item)
        stored = iter(self.writer.store_batch(kept, now) if kept else [])
        kept_ids = {id(item) for item in kept}
        return [next(stored) if id(item) in kept_ids else full for item in items]


_JOBS: dict[str, Job] = {}


def start_job(token: str, config: Config) -> None:
    """Build ``token``'s components before its first batch arrives."""
    if token not in _JOBS:
        _JOBS[token] = Job.for_config(config)


def handle_batch(
    token: str, config: Config, now: datetime, items: list[CheckItem]
) -> list[CheckOutcome | Postponed | None]:
    """The worker's entry point for a batch of ``token``'s checks."""
    start_job(token, config)  # a no-op, unless this worker replaced one that died
    return _JOBS[token].handle(items, now)


def end_job(token: str) -> None:
    job = _JOBS.pop(token, None)
    if job is not None:
        job.db.dispose()


def _start(level: int, parent: int) -> None:
    # Ctrl-C is the parent's to handle: it stops the crawl gracefully, and the batches
    # in flight must still be stored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    threading.Thread(target=_follow, args=(parent,), name="follow-parent", daemon=True).start()


def _follow(parent: int, every: float = 0.5) -> None:
    """Exit once the parent is gone.

    A parent SIGKILLed alone (the kernel's out-of-memory killer, ``kill -9`` of its
    pid) cannot shut the pool down, and the worker would wait forever on a call queue
    whose write end it holds itself, with its store connections open (measured: it
    stayed, with multiprocessing's resource tracker). Nothing is lost by going: an
    uncommitted store transaction rolls back and the batch's leases stay for the retry.
    Polling, not ``PR_SET_PDEATHSIG``: that fires when the spawning *thread* ends.
    """
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


# ------------------------------------------------------------- in the crawl


class CheckWorker:
    """The parent's handle on the worker process; replaced when it breaks."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        with self._lock:
            for _ in range(2):
                if self._pool is None:
                    level = logging.getLogger().getEffectiveLevel()
                    self._pool = ProcessPoolExecutor(
                        1,
                        mp_context=get_context("spawn"),
                        initializer=_start,
                        initargs=(level, os.getpid()),
                    )
                try:
                    return self._pool.submit(fn, *args)
                except BrokenProcessPool:
                    log.warning("the check worker died; starting a new one")
                    self._pool = None
            raise BrokenProcessPool("the check worker cannot be started")

    def end(self, token: str) -> None:
        """Free ``token``'s job in the worker, if the worker still runs (no need to wait)."""
        with self._lock:
            if self._pool is not None:
                with contextlib.suppress(BrokenProcessPool, RuntimeError):  # dead, shut down
                    self._pool.submit(end_job, token)

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


WORKER = CheckWorker()
